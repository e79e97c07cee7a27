//! Why a stage refused a request, as leaf types below every stage: the
//! stage that decides builds one (`policy` a `PathError`, `authn` a
//! `TokenError`, `authz` a `Denial`, `ratelimit` the `RateLimitHeaders` of a
//! refusal) and re-exports it; [`GatewayError`](super::GatewayError) carries
//! it and maps it to a problem in one place.

use std::fmt;

/// Why a path was refused; every variant is a 400 for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    NotOriginForm,
    EncodedSlash,
    EncodedBackslash,
    EncodedNul,
    EncodedHash,
    EncodedControl,
    Backslash,
    RawControlOrNonAscii,
    MalformedEscape,
    InvalidUtf8,
    Semicolon,
    DotSegmentParameters,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotOriginForm => "request path must start with \"/\"",
            Self::EncodedSlash => "encoded \"/\" (%2F) is not allowed in the path",
            Self::EncodedBackslash => "encoded \"\\\" (%5C) is not allowed in the path",
            Self::EncodedNul => "encoded NUL (%00) is not allowed in the path",
            Self::EncodedHash => "encoded \"#\" (%23) is not allowed in the path",
            Self::EncodedControl => "encoded control characters are not allowed in the path",
            Self::Backslash => "\"\\\" is not allowed in the path",
            Self::RawControlOrNonAscii => {
                "raw control or non-ASCII bytes are not allowed in the path; percent-encode them"
            }
            Self::MalformedEscape => "malformed percent-escape in the path",
            Self::InvalidUtf8 => "the path does not decode to valid UTF-8",
            Self::Semicolon => "\";\" is not allowed in the path",
            Self::DotSegmentParameters => {
                "a path segment of \".\", \"..\" or nothing may not carry \";\" parameters"
            }
        })
    }
}

/// Why a token was refused; always a 401 `invalid_token`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is too large")]
    Oversized,
    #[error("token is malformed")]
    Malformed,
    #[error("token type is not accepted here")]
    WrongType,
    #[error("token algorithm is not accepted")]
    WrongAlgorithm,
    #[error("token header has unsupported critical parameters")]
    Critical,
    #[error("token signing key is unknown")]
    UnknownKey,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token issuer is not trusted")]
    WrongIssuer,
    #[error("token audience is not accepted")]
    WrongAudience,
    #[error("token claims are missing or invalid")]
    InvalidClaims,
    #[error("token has been revoked")]
    Revoked,
}

/// Why an authenticated caller was refused (403).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    NotOrgMember,
    InsufficientRole,
    MissingPermission(String),
    MissingScope(String),
    MfaRequired,
}

impl Denial {
    pub fn code(&self) -> &'static str {
        match self {
            Denial::NotOrgMember => "not_org_member",
            Denial::InsufficientRole => "insufficient_role",
            Denial::MissingPermission(_) => "insufficient_permission",
            Denial::MissingScope(_) => "insufficient_scope",
            Denial::MfaRequired => "mfa_required",
        }
    }

    pub fn detail(&self) -> String {
        match self {
            Denial::NotOrgMember => "You are not a member of this organization".into(),
            Denial::InsufficientRole => "Your role does not allow this request".into(),
            Denial::MissingPermission(p) => format!("Missing permission {p:?}"),
            Denial::MissingScope(s) => format!("Missing scope {s:?}"),
            Denial::MfaRequired => "This route requires a second authentication factor".into(),
        }
    }
}

/// `RateLimit-*` response headers (IETF draft) and `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitHeaders {
    pub limit: u32,
    pub remaining: u32,
    pub reset_secs: u64,
}

impl RateLimitHeaders {
    pub fn pairs(&self) -> [(&'static str, String); 3] {
        [
            ("RateLimit-Limit", self.limit.to_string()),
            ("RateLimit-Remaining", self.remaining.to_string()),
            ("RateLimit-Reset", self.reset_secs.to_string()),
        ]
    }
}
