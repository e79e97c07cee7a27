//! Sealing small secrets at rest (TOTP secrets) with XChaCha20-Poly1305
//! under a key derived from the gateway's own secret. The owner's id is
//! bound in as associated data, so a sealed value copied onto another row
//! does not open. Sealed form: base64url(nonce ‖ ciphertext ‖ tag).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

use super::secret::ServerSecret;

const NONCE_BYTES: usize = 24;

pub struct Sealer(XChaCha20Poly1305);

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(***)")
    }
}

impl Sealer {
    /// A sealer for one purpose; `label` keeps purposes' keys apart.
    pub fn new(secret: &ServerSecret, label: &str) -> Sealer {
        Sealer(XChaCha20Poly1305::new(&secret.derive(label).into()))
    }

    pub fn seal(&self, plaintext: &[u8], owner: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .0
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: owner,
                },
            )
            .expect("XChaCha20-Poly1305 encrypts any message this small");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// The plaintext, or an error when the value was not sealed by this
    /// key for this owner (or was altered).
    pub fn open(&self, sealed: &str, owner: &[u8]) -> Result<Vec<u8>, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(sealed)
            .map_err(|_| "sealed value is not base64url".to_string())?;
        if bytes.len() <= NONCE_BYTES {
            return Err("sealed value is too short".into());
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().expect("split at NONCE_BYTES");
        self.0
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: owner,
                },
            )
            .map_err(|_| "sealed value does not open with this key".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_only_for_its_owner_and_key() {
        let secret = ServerSecret::from_bytes(vec![7; 32]);
        let sealer = Sealer::new(&secret, "totp");
        let sealed = sealer.seal(b"top secret", b"alice");
        assert_ne!(sealer.seal(b"top secret", b"alice"), sealed, "fresh nonce");
        assert_eq!(sealer.open(&sealed, b"alice").unwrap(), b"top secret");
        assert!(sealer.open(&sealed, b"bob").is_err());
        assert!(Sealer::new(&secret, "other")
            .open(&sealed, b"alice")
            .is_err());
        let other_secret = ServerSecret::from_bytes(vec![8; 32]);
        assert!(Sealer::new(&other_secret, "totp")
            .open(&sealed, b"alice")
            .is_err());
        let mut tampered = sealed.into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(sealer.open(&tampered, b"alice").is_err());
        assert!(sealer.open("", b"alice").is_err());
        assert!(sealer.open("!!!", b"alice").is_err());
    }
}
