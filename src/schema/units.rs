//! Parsing of the small value languages used in the config file: durations
//! (`"30s"`, `"15m"`, `"1h30m"`, `"30d"`), rates (`"20/s"`, `"100/m"`,
//! `"1000/h"`), secrets (`"env:VAR"`, `"file:PATH"`) and the signing
//! algorithm (`"EdDSA"`, …), a leaf type that `authn` and the CLI consume.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use jsonwebtoken::Algorithm;

pub use crate::crypto::secret::SecretSource;

/// Parses a duration such as `"500ms"`, `"30s"`, `"15m"`, `"1h30m"`, `"30d"`.
/// A bare `"0"` is zero. Anything else is an error message for the user.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!(
                "invalid duration {text:?}: expected a number, e.g. \"30s\""
            ));
        }
        let value: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid duration {text:?}: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let step = match unit {
            "ms" => Duration::from_millis(value),
            "s" => Duration::from_secs(value),
            "m" => Duration::from_secs(value.saturating_mul(60)),
            "h" => Duration::from_secs(value.saturating_mul(3600)),
            "d" => Duration::from_secs(value.saturating_mul(86_400)),
            "" => {
                return Err(format!(
                    "invalid duration {text:?}: missing unit (ms, s, m, h or d)"
                ))
            }
            other => return Err(format!("invalid duration {text:?}: unknown unit {other:?}")),
        };
        total = total.saturating_add(step);
    }
    Ok(total)
}

/// A rate: `count` events per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

/// Parses `"N/s"`, `"N/m"` or `"N/h"` with N ≥ 1.
pub fn parse_rate(text: &str) -> Result<Rate, String> {
    let (n, unit) = text
        .trim()
        .split_once('/')
        .ok_or_else(|| format!("invalid rate {text:?}: expected \"N/s\", \"N/m\" or \"N/h\""))?;
    let count: u32 = n
        .trim()
        .parse()
        .map_err(|_| format!("invalid rate {text:?}: {n:?} is not a whole number"))?;
    if count == 0 {
        return Err(format!(
            "invalid rate {text:?}: must allow at least 1 request"
        ));
    }
    let per = match unit.trim() {
        "s" => Duration::from_secs(1),
        "m" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        other => {
            return Err(format!(
                "invalid rate {text:?}: unknown unit {other:?} (s, m or h)"
            ))
        }
    };
    Ok(Rate { count, per })
}

/// `SecretSource`'s config syntax (the type is a `crypto` leaf).
impl SecretSource {
    /// Parses `"env:VAR"` or `"file:PATH"`; relative paths resolve against
    /// `base_dir` (the config file's directory).
    pub fn parse(text: &str, base_dir: &Path) -> Result<Self, String> {
        if let Some(var) = text.strip_prefix("env:") {
            if var.is_empty() {
                return Err("\"env:\" needs a variable name".into());
            }
            Ok(Self::Env(var.to_string()))
        } else if let Some(path) = text.strip_prefix("file:") {
            if path.is_empty() {
                return Err("\"file:\" needs a path".into());
            }
            Ok(Self::File(resolve_path(base_dir, path)))
        } else {
            // Never repeat `text`: it is most likely the secret itself.
            Err("must come from \"env:VAR\" or \"file:PATH\" (inline secrets are refused)".into())
        }
    }

    /// Reads the secret's bytes. A missing file or variable is an error that
    /// names it.
    pub fn read(&self) -> Result<Vec<u8>, String> {
        match self {
            Self::Env(var) => std::env::var(var)
                .map(String::into_bytes)
                .map_err(|_| format!("environment variable {var} is not set")),
            Self::File(path) => {
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
            }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Env(var) => format!("env:{var}"),
            Self::File(path) => format!("file:{}", path.display()),
        }
    }
}

/// A URL without its password (`scheme://user:***@host…`), for messages
/// and `Debug`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// Resolves a config-relative path against the config file's directory.
pub fn resolve_path(base_dir: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base_dir.join(p)
    }
}

/// The algorithms the gateway signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    EdDSA,
    ES256,
    RS256,
    HS256,
}

impl FromStr for KeyAlgorithm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "EdDSA" => Ok(Self::EdDSA),
            "ES256" => Ok(Self::ES256),
            "RS256" => Ok(Self::RS256),
            "HS256" => Ok(Self::HS256),
            _ => Err(format!("{s:?} is not one of EdDSA, ES256, RS256, HS256")),
        }
    }
}

impl KeyAlgorithm {
    pub fn jwt(self) -> Algorithm {
        match self {
            Self::EdDSA => Algorithm::EdDSA,
            Self::ES256 => Algorithm::ES256,
            Self::RS256 => Algorithm::RS256,
            Self::HS256 => Algorithm::HS256,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        for bad in [
            "",
            "10",
            "s",
            "10x",
            "-5s",
            "1.5s",
            "99999999999999999999999s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn rates() {
        assert_eq!(
            parse_rate("20/s").unwrap(),
            Rate {
                count: 20,
                per: Duration::from_secs(1)
            }
        );
        assert_eq!(parse_rate("10/h").unwrap().per, Duration::from_secs(3600));
        for bad in ["20", "0/s", "x/s", "20/d", "/s", "-1/s"] {
            assert!(parse_rate(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn secrets() {
        let base = Path::new("/etc/portcullis");
        assert_eq!(
            SecretSource::parse("file:data/key.pem", base).unwrap(),
            SecretSource::File("/etc/portcullis/data/key.pem".into())
        );
        assert_eq!(
            SecretSource::parse("file:/abs/key", base).unwrap(),
            SecretSource::File("/abs/key".into())
        );
        assert_eq!(
            SecretSource::parse("env:KEY", base).unwrap(),
            SecretSource::Env("KEY".into())
        );
        let inline = SecretSource::parse("plaintext-secret", base).unwrap_err();
        assert!(!inline.contains("plaintext-secret"), "{inline}");
        assert!(SecretSource::parse("env:", base).is_err());
        assert_eq!(
            redact_url("postgres://app:hunter2@db/x"),
            "postgres://app:***@db/x"
        );
    }
}
