//! Path normalization (DESIGN.md §4, §10). The normalized path is what is
//! matched **and** forwarded, so a backend never sees a different path from
//! the one the policy decided on.
//!
//! Steps, in one pass over the bytes: percent-escapes of unreserved
//! characters are decoded, every other kept escape is upper-cased; encoded
//! `/ \ NUL #` and control characters, raw backslashes, malformed escapes,
//! non-ASCII bytes, and `;` (raw or `%3B`, unless allowed) are rejected; the
//! fully decoded bytes must be valid UTF-8. Then repeated slashes collapse and
//! dot-segments are removed (RFC 3986 §5.2.4).

pub use crate::error::refusals::PathError;

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Normalizes a raw request path (without the query string).
pub fn normalize_path(raw: &[u8], allow_semicolons: bool) -> Result<String, PathError> {
    if raw.first() != Some(&b'/') {
        return Err(PathError::NotOriginForm);
    }
    // `kept`: the path with unreserved escapes decoded and the rest upper-cased.
    // `decoded`: every escape decoded, only to check UTF-8.
    let mut kept = Vec::with_capacity(raw.len());
    let mut decoded = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        match b {
            b'%' => {
                let (hi, lo) = match (raw.get(i + 1), raw.get(i + 2)) {
                    (Some(&h), Some(&l)) => (hex_value(h), hex_value(l)),
                    _ => (None, None),
                };
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(PathError::MalformedEscape);
                };
                let v = hi << 4 | lo;
                match v {
                    0x00 => return Err(PathError::EncodedNul),
                    b'/' => return Err(PathError::EncodedSlash),
                    b'\\' => return Err(PathError::EncodedBackslash),
                    b'#' => return Err(PathError::EncodedHash),
                    b';' if !allow_semicolons => return Err(PathError::Semicolon),
                    0x01..=0x1F | 0x7F => return Err(PathError::EncodedControl),
                    _ => {}
                }
                if is_unreserved(v) {
                    kept.push(v);
                } else {
                    kept.extend_from_slice(&[
                        b'%',
                        HEX_UPPER[(v >> 4) as usize],
                        HEX_UPPER[(v & 15) as usize],
                    ]);
                }
                decoded.push(v);
                i += 3;
            }
            b'\\' => return Err(PathError::Backslash),
            b';' if !allow_semicolons => return Err(PathError::Semicolon),
            0x00..=0x20 | 0x7F..=0xFF | b'#' => return Err(PathError::RawControlOrNonAscii),
            _ => {
                kept.push(b);
                decoded.push(b);
                i += 1;
            }
        }
    }
    if std::str::from_utf8(&decoded).is_err() {
        return Err(PathError::InvalidUtf8);
    }
    // `kept` is ASCII by construction.
    let kept = String::from_utf8(kept).map_err(|_| PathError::InvalidUtf8)?;
    // `/..;/` is a dot-segment to Tomcat-style servers: never let it through.
    if allow_semicolons
        && kept.split('/').any(|seg| {
            seg.split_once(';')
                .is_some_and(|(head, _)| matches!(head, "" | "." | ".."))
        })
    {
        return Err(PathError::DotSegmentParameters);
    }
    Ok(remove_dot_segments(&kept))
}

/// Collapses repeated slashes and removes `.` and `..` segments; a `..` at
/// the root stays at the root. A trailing slash (or trailing `.`/`..`) is kept
/// as a trailing slash, as RFC 3986 does.
fn remove_dot_segments(path: &str) -> String {
    let segments: Vec<&str> = path[1..].split('/').collect();
    let last = segments.len() - 1;
    let mut stack: Vec<&str> = Vec::with_capacity(segments.len());
    let mut trailing_slash = false;
    for (i, seg) in segments.iter().enumerate() {
        let is_last = i == last;
        match *seg {
            "" | "." => {
                if is_last {
                    trailing_slash = true;
                }
            }
            ".." => {
                stack.pop();
                if is_last {
                    trailing_slash = true;
                }
            }
            s => {
                stack.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut out = String::with_capacity(path.len());
    for seg in &stack {
        out.push('/');
        out.push_str(seg);
    }
    if trailing_slash || stack.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(p: &str) -> Result<String, PathError> {
        normalize_path(p.as_bytes(), false)
    }

    #[test]
    fn keeps_ordinary_paths() {
        assert_eq!(n("/").unwrap(), "/");
        assert_eq!(n("/api/users").unwrap(), "/api/users");
        assert_eq!(n("/api/users/").unwrap(), "/api/users/");
        assert_eq!(n("/a-b_c.d~e").unwrap(), "/a-b_c.d~e");
    }

    #[test]
    fn removes_dot_segments_and_repeated_slashes() {
        assert_eq!(n("/public/../admin/x").unwrap(), "/admin/x");
        assert_eq!(n("/a/./b").unwrap(), "/a/b");
        assert_eq!(n("/../../etc/passwd").unwrap(), "/etc/passwd");
        assert_eq!(n("//admin//x").unwrap(), "/admin/x");
        assert_eq!(n("/a/b/..").unwrap(), "/a/");
        assert_eq!(n("/a/.").unwrap(), "/a/");
        assert_eq!(n("/..").unwrap(), "/");
        assert_eq!(n("/a/b/../../..").unwrap(), "/");
    }

    #[test]
    fn decodes_unreserved_escapes_before_dot_removal() {
        assert_eq!(n("/public/%2e%2e/admin").unwrap(), "/admin");
        assert_eq!(n("/public/.%2E/admin").unwrap(), "/admin");
        assert_eq!(n("/%61dmin").unwrap(), "/admin");
        assert_eq!(n("/a%7Eb").unwrap(), "/a~b");
    }

    #[test]
    fn uppercases_kept_escapes() {
        assert_eq!(n("/caf%c3%a9").unwrap(), "/caf%C3%A9");
        assert_eq!(n("/a%20b").unwrap(), "/a%20b");
        assert_eq!(n("/a%3fb").unwrap(), "/a%3Fb");
    }

    #[test]
    fn rejects_dangerous_encodings() {
        assert_eq!(n("/admin%2fx"), Err(PathError::EncodedSlash));
        assert_eq!(n("/admin%2Fx"), Err(PathError::EncodedSlash));
        assert_eq!(n("/a%5cb"), Err(PathError::EncodedBackslash));
        assert_eq!(n("/a%00b"), Err(PathError::EncodedNul));
        assert_eq!(n("/a%23b"), Err(PathError::EncodedHash));
        assert_eq!(n("/a%0ab"), Err(PathError::EncodedControl));
        assert_eq!(n("/a%7fb"), Err(PathError::EncodedControl));
        assert_eq!(n("/a\\b"), Err(PathError::Backslash));
        assert_eq!(n("/a%zz"), Err(PathError::MalformedEscape));
        assert_eq!(n("/a%2"), Err(PathError::MalformedEscape));
        assert_eq!(n("/a%"), Err(PathError::MalformedEscape));
        assert_eq!(n("*"), Err(PathError::NotOriginForm));
        assert_eq!(n(""), Err(PathError::NotOriginForm));
    }

    #[test]
    fn rejects_invalid_utf8_including_overlong_dots() {
        assert_eq!(n("/%C0%AE%C0%AE/admin"), Err(PathError::InvalidUtf8));
        assert_eq!(n("/%ff"), Err(PathError::InvalidUtf8));
        assert_eq!(
            normalize_path(b"/caf\xc3\xa9", false),
            Err(PathError::RawControlOrNonAscii)
        );
    }

    #[test]
    fn semicolons_need_opt_in() {
        assert_eq!(n("/admin;x/"), Err(PathError::Semicolon));
        assert_eq!(n("/admin%3bx/"), Err(PathError::Semicolon));
        assert_eq!(normalize_path(b"/a;v=1/b", true).unwrap(), "/a;v=1/b");
        assert_eq!(normalize_path(b"/a%3bb", true).unwrap(), "/a%3Bb");
        for sneaky in [
            "/public/..;/admin",
            "/public/.;x/admin",
            "/a/;x/b",
            "/public/%2e%2e;/admin",
        ] {
            assert_eq!(
                normalize_path(sneaky.as_bytes(), true),
                Err(PathError::DotSegmentParameters),
                "{sneaky}"
            );
        }
    }

    #[test]
    fn normalization_is_idempotent() {
        for p in ["/a/../b/%2e/c//d/", "/caf%c3%a9/%7euser", "/x/./y/../z"] {
            let once = n(p).unwrap();
            assert_eq!(n(&once).unwrap(), once, "{p}");
        }
    }
}
