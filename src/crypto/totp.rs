//! TOTP (RFC 6238 over RFC 4226 HOTP): HMAC-SHA1, 6 digits, 30-second
//! steps, the parameters every authenticator app understands. Pure
//! functions over a secret and a time; replay protection (a step is used at
//! most once) lives with the stored last-used step.

use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use rand::RngCore;
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// Seconds per time step.
pub const STEP_SECS: i64 = 30;
/// Digits in a code.
pub const DIGITS: usize = 6;
/// Secret length: 160 bits, as RFC 4226 recommends for HMAC-SHA1.
pub const SECRET_BYTES: usize = 20;
/// Steps accepted on either side of the current one (clock drift).
const DRIFT_STEPS: i64 = 1;

pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut secret);
    secret
}

/// The time step `unix_secs` falls in.
pub fn step_at(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(STEP_SECS)
}

/// The HOTP code of `secret` for counter `step`.
pub fn code(secret: &[u8], step: i64) -> String {
    let mut mac =
        <Hmac<Sha1> as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(&(step as u64).to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    format!(
        "{:0width$}",
        binary % 10u32.pow(DIGITS as u32),
        width = DIGITS
    )
}

/// `candidate` without its spaces, when that is `DIGITS` ASCII digits.
fn normalized(candidate: &str) -> Option<String> {
    let digits: String = candidate.chars().filter(|c| !c.is_whitespace()).collect();
    (digits.len() == DIGITS && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// Whether `candidate` has the shape of a code: `DIGITS` ASCII digits,
/// spaces ignored.
pub fn looks_like_code(candidate: &str) -> bool {
    normalized(candidate).is_some()
}

/// The step whose code `candidate` is, within the drift window around
/// `unix_secs` and strictly after `used_up_to` (a used step, or one older
/// than it, never counts twice). Spaces in the candidate are ignored.
pub fn matching_step(
    secret: &[u8],
    candidate: &str,
    unix_secs: i64,
    used_up_to: Option<i64>,
) -> Option<i64> {
    let candidate = normalized(candidate)?;
    let now = step_at(unix_secs);
    // Check every step in the window (no early exit on a match).
    let mut found = None;
    for step in now - DRIFT_STEPS..=now + DRIFT_STEPS {
        let equal: bool = code(secret, step)
            .as_bytes()
            .ct_eq(candidate.as_bytes())
            .into();
        if equal && used_up_to.is_none_or(|used| step > used) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// RFC 4648 base32 without padding, as authenticator apps expect.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// The `otpauth://` URI an authenticator app scans as a QR code.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let issuer_enc = utf8_percent_encode(issuer, NON_ALPHANUMERIC);
    let account_enc = utf8_percent_encode(account, NON_ALPHANUMERIC);
    format!(
        "otpauth://totp/{issuer_enc}:{account_enc}?secret={}&issuer={issuer_enc}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        base32(secret)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 appendix B, truncated to 6 digits.
        for (t, expected) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
            (20_000_000_000, "353130"),
        ] {
            assert_eq!(code(RFC_SECRET, step_at(t)), expected, "t = {t}");
        }
    }

    #[test]
    fn window_and_replay() {
        let now = 1_111_111_111;
        let step = step_at(now);
        let current = code(RFC_SECRET, step);
        assert_eq!(matching_step(RFC_SECRET, &current, now, None), Some(step));
        assert_eq!(
            matching_step(RFC_SECRET, &code(RFC_SECRET, step - 1), now, None),
            Some(step - 1)
        );
        assert_eq!(
            matching_step(RFC_SECRET, &code(RFC_SECRET, step + 1), now, None),
            Some(step + 1)
        );
        assert_eq!(
            matching_step(RFC_SECRET, &code(RFC_SECRET, step - 2), now, None),
            None
        );
        assert_eq!(
            matching_step(RFC_SECRET, &code(RFC_SECRET, step + 2), now, None),
            None
        );
        // Used, or older than the last used step.
        assert_eq!(matching_step(RFC_SECRET, &current, now, Some(step)), None);
        assert_eq!(
            matching_step(RFC_SECRET, &code(RFC_SECRET, step - 1), now, Some(step)),
            None
        );
        let spaced = format!("{} {}", &current[..3], &current[3..]);
        assert_eq!(matching_step(RFC_SECRET, &spaced, now, None), Some(step));
        for bad in ["", "12345", "1234567", "abcdef", "１２３４５６"] {
            assert_eq!(matching_step(RFC_SECRET, bad, now, None), None, "{bad}");
        }
    }

    #[test]
    fn base32_matches_rfc4648() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(RFC_SECRET), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    }

    #[test]
    fn uri_escapes_issuer_and_account() {
        let uri = otpauth_uri("Acme Co", "a+b@example.com", RFC_SECRET);
        assert!(uri.starts_with("otpauth://totp/Acme%20Co:a%2Bb%40example%2Ecom?secret=GEZD"));
        assert!(uri.contains("&issuer=Acme%20Co&algorithm=SHA1&digits=6&period=30"));
    }
}
