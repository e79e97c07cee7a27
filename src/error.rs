//! The one error type of the request pipeline, mapped to an HTTP problem
//! response (RFC 9457 `application/problem+json`) in exactly one place.
//! What the client reads (`detail`) is separate from what is logged
//! (`log_cause`): internal errors say "internal error" to the client.

use std::time::Duration;

use serde::Serialize;

pub mod refusals;

pub use refusals::{Denial, PathError, RateLimitHeaders, TokenError};

#[derive(Debug, Clone)]
pub enum GatewayError {
    BadPath(PathError),
    BadRequest(&'static str),
    NoRoute,
    MethodNotAllowed(&'static str),
    RouteDenied,
    ConflictingCredentials,
    MissingCredentials,
    CredentialNotAccepted,
    InvalidToken(TokenError),
    InvalidApiKey,
    /// A key bound to a client id came without it, or with another one.
    ClientIdMismatch,
    Forbidden(Denial),
    RateLimited(RateLimitHeaders),
    PayloadTooLarge(u64),
    NoHealthyUpstream,
    UpstreamConnect,
    UpstreamTimeout,
    Internal(String),
    // The account API (`/auth/*`).
    InvalidJson(String),
    Validation {
        field: String,
        message: String,
    },
    UnsupportedMediaType(&'static str),
    Duplicate(&'static str),
    InvalidCredentials,
    /// Locked out or throttled; `Retry-After` seconds.
    TooManyAttempts(u64),
    RegistrationClosed,
    AccountDisabled,
    InvalidRefreshToken,
    RefreshTokenRotated,
    RefreshTokenReused,
    NotFound(&'static str),
    AdminRequired,
    CrossSiteRefused,
    /// A CORS preflight from an origin `[cors]` does not allow.
    CorsOriginRefused,
    StoreUnavailable(String),
    /// An org-bound API key asked for a scope its owner's role lacks.
    ScopeNotPermitted(String),
    /// The caller's org role does not allow this membership change.
    OrgRoleRequired(&'static str),
    /// The change would leave an org without an owner.
    LastOwner,
    /// The change would leave no active superuser (nobody could administer).
    LastSuperuser,
    /// Deleting the account would leave these orgs with members but no owner.
    OrgsNeedOwner(Vec<String>),
    /// Password right, TOTP on, no code given: repeat with `totp_code`.
    MfaRequired,
    /// A wrong, reused or stale TOTP code or recovery code at login.
    InvalidMfaCode,
    MfaAlreadyEnabled,
    MfaNotEnabled,
    /// `enable` before `setup`.
    MfaSetupRequired,
    /// Password right, address unverified, verification required.
    EmailUnverified,
    /// A mailed token that is unknown, used, superseded or expired.
    InvalidMailedToken(&'static str),
}

/// An RFC 9457 problem body (`application/problem+json`).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'a str,
    status: u16,
    detail: &'a str,
    /// Stable, machine-readable error code.
    code: &'static str,
    /// The offending field, on 422 `validation_failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl GatewayError {
    pub fn status(&self) -> u16 {
        match self {
            Self::BadPath(_) | Self::BadRequest(_) | Self::ConflictingCredentials => 400,
            Self::MissingCredentials
            | Self::CredentialNotAccepted
            | Self::InvalidToken(_)
            | Self::InvalidApiKey
            | Self::ClientIdMismatch => 401,
            Self::RouteDenied | Self::Forbidden(_) => 403,
            Self::NoRoute => 404,
            Self::MethodNotAllowed(_) => 405,
            Self::PayloadTooLarge(_) => 413,
            Self::RateLimited(_) => 429,
            Self::Internal(_) => 500,
            Self::UpstreamConnect => 502,
            Self::NoHealthyUpstream => 503,
            Self::UpstreamTimeout => 504,
            Self::InvalidJson(_) => 400,
            Self::Validation { .. } => 422,
            Self::UnsupportedMediaType(_) => 415,
            Self::Duplicate(_) => 409,
            Self::InvalidCredentials
            | Self::InvalidRefreshToken
            | Self::RefreshTokenRotated
            | Self::RefreshTokenReused => 401,
            Self::TooManyAttempts(_) => 429,
            Self::RegistrationClosed
            | Self::AccountDisabled
            | Self::AdminRequired
            | Self::CrossSiteRefused
            | Self::CorsOriginRefused
            | Self::ScopeNotPermitted(_)
            | Self::OrgRoleRequired(_) => 403,
            Self::LastOwner | Self::OrgsNeedOwner(_) | Self::LastSuperuser => 409,
            Self::MfaRequired | Self::InvalidMfaCode => 401,
            Self::MfaAlreadyEnabled | Self::MfaNotEnabled | Self::MfaSetupRequired => 409,
            Self::EmailUnverified => 403,
            Self::InvalidMailedToken(_) => 400,
            Self::NotFound(_) => 404,
            Self::StoreUnavailable(_) => 503,
        }
    }

    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadPath(_) => "invalid_path",
            Self::BadRequest(_) => "bad_request",
            Self::NoRoute => "not_found",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::RouteDenied => "forbidden",
            Self::ConflictingCredentials => "conflicting_credentials",
            Self::MissingCredentials => "unauthenticated",
            Self::CredentialNotAccepted => "credential_not_accepted",
            Self::InvalidToken(TokenError::Revoked) => "token_revoked",
            Self::InvalidToken(_) => "invalid_token",
            Self::InvalidApiKey => "invalid_api_key",
            Self::ClientIdMismatch => "client_id_mismatch",
            Self::Forbidden(d) => d.code(),
            Self::RateLimited(_) => "rate_limited",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::NoHealthyUpstream => "upstream_unavailable",
            Self::UpstreamConnect => "bad_gateway",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::Internal(_) => "internal_error",
            Self::InvalidJson(_) => "invalid_json",
            Self::Validation { .. } => "validation_failed",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::Duplicate("email") => "email_taken",
            Self::Duplicate("username") => "username_taken",
            Self::Duplicate("member") => "already_member",
            Self::Duplicate(_) => "conflict",
            Self::InvalidCredentials => "invalid_credentials",
            Self::TooManyAttempts(_) => "too_many_attempts",
            Self::RegistrationClosed => "registration_closed",
            Self::AccountDisabled => "account_disabled",
            Self::InvalidRefreshToken => "invalid_refresh_token",
            Self::RefreshTokenRotated => "refresh_token_rotated",
            Self::RefreshTokenReused => "refresh_token_reused",
            Self::NotFound(_) => "not_found",
            Self::AdminRequired => "admin_required",
            Self::CrossSiteRefused => "cross_site_refused",
            Self::CorsOriginRefused => "origin_not_allowed",
            Self::StoreUnavailable(_) => "service_unavailable",
            Self::ScopeNotPermitted(_) => "scope_not_permitted",
            Self::OrgRoleRequired(_) => "insufficient_role",
            Self::LastOwner | Self::OrgsNeedOwner(_) => "last_owner",
            Self::LastSuperuser => "last_superuser",
            Self::MfaRequired => "mfa_required",
            Self::InvalidMfaCode => "invalid_mfa_code",
            Self::MfaAlreadyEnabled => "mfa_already_enabled",
            Self::MfaNotEnabled => "mfa_not_enabled",
            Self::MfaSetupRequired => "mfa_setup_required",
            Self::EmailUnverified => "email_unverified",
            Self::InvalidMailedToken("reset") => "invalid_reset_token",
            Self::InvalidMailedToken(_) => "invalid_verification_token",
        }
    }

    pub fn detail(&self) -> String {
        match self {
            Self::BadPath(e) => e.to_string(),
            Self::BadRequest(msg) => (*msg).to_string(),
            Self::NoRoute => "No route matches this request".into(),
            Self::MethodNotAllowed(allow) => format!("Allowed methods: {allow}"),
            Self::RouteDenied => "This route is closed".into(),
            Self::ConflictingCredentials => {
                "The request carries more than one credential; send exactly one".into()
            }
            Self::MissingCredentials => "Authentication is required".into(),
            Self::CredentialNotAccepted => {
                "This kind of credential is not accepted on this route".into()
            }
            Self::InvalidToken(e) => {
                let mut s = e.to_string();
                if let Some(first) = s.get_mut(0..1) {
                    first.make_ascii_uppercase();
                }
                s
            }
            Self::InvalidApiKey => "The API key is invalid, expired or revoked".into(),
            Self::ClientIdMismatch => "This API key is bound to a client id the request does not carry".into(),
            Self::Forbidden(d) => d.detail(),
            Self::RateLimited(_) => "Too many requests; retry later".into(),
            Self::PayloadTooLarge(max) => format!("The request body exceeds {max} bytes"),
            Self::NoHealthyUpstream => "No healthy backend is available".into(),
            Self::UpstreamConnect => "The backend could not be reached".into(),
            Self::UpstreamTimeout => "The backend did not answer in time".into(),
            Self::Internal(_) => "Internal error".into(),
            Self::InvalidJson(why) => format!("The body is not valid JSON: {why}"),
            Self::Validation { field, message } => format!("{field}: {message}"),
            Self::UnsupportedMediaType(expected) => format!("Send the body as {expected}"),
            Self::Duplicate("member") => "That user is already a member of this organization".into(),
            Self::Duplicate(field) => format!("That {field} is already taken"),
            Self::InvalidCredentials => "Incorrect email or password".into(),
            Self::TooManyAttempts(_) => "Too many attempts; retry later".into(),
            Self::RegistrationClosed => "Registration is closed; ask an administrator for an account".into(),
            Self::AccountDisabled => "This account is disabled".into(),
            Self::InvalidRefreshToken => "The refresh token is invalid or expired".into(),
            Self::RefreshTokenRotated => "This refresh token was just used; use the newest one".into(),
            Self::RefreshTokenReused => "This refresh token was already used; the session is revoked".into(),
            Self::NotFound(what) => format!("No such {what}"),
            Self::AdminRequired => "This endpoint is for administrators".into(),
            Self::CrossSiteRefused => {
                "Cookie-authenticated requests need a JSON content type or X-Requested-With, from an allowed origin".into()
            }
            Self::CorsOriginRefused => "This origin may not make cross-origin requests here".into(),
            Self::StoreUnavailable(_) => "The account service is temporarily unavailable".into(),
            Self::ScopeNotPermitted(scope) => {
                format!("Your role in this organization does not grant scope {scope:?}")
            }
            Self::OrgRoleRequired(what) => format!("Your role in this organization cannot {what}"),
            Self::LastOwner => "An organization must keep at least one owner".into(),
            Self::LastSuperuser => {
                "This is the only active superuser: promote another user before demoting or deactivating this one".into()
            }
            Self::OrgsNeedOwner(orgs) => format!(
                "You are the last owner of {}; make another member an owner (or remove the members) first",
                orgs.join(", ")
            ),
            Self::MfaRequired => {
                "This account uses two-factor authentication; repeat the login with totp_code or recovery_code".into()
            }
            Self::InvalidMfaCode => "The authentication code is wrong, expired or already used".into(),
            Self::MfaAlreadyEnabled => "Two-factor authentication is already on".into(),
            Self::MfaNotEnabled => "Two-factor authentication is not on".into(),
            Self::MfaSetupRequired => "Start with POST /auth/mfa/totp/setup".into(),
            Self::EmailUnverified => {
                "Confirm your email address first; POST /auth/resend-verification sends a new link".into()
            }
            Self::InvalidMailedToken(what) => {
                format!("This {what} link is invalid, expired or already used; ask for a new one")
            }
        }
    }

    /// What goes to the log in addition to the code (never secrets).
    pub fn log_cause(&self) -> Option<&str> {
        match self {
            Self::Internal(cause) | Self::StoreUnavailable(cause) => Some(cause),
            _ => None,
        }
    }

    /// Extra response headers: `WWW-Authenticate` on 401, `Retry-After` and
    /// `RateLimit-*` on 429.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::MissingCredentials
            | Self::InvalidCredentials
            | Self::MfaRequired
            | Self::InvalidMfaCode => {
                vec![("WWW-Authenticate", "Bearer".into())]
            }
            Self::InvalidRefreshToken | Self::RefreshTokenRotated | Self::RefreshTokenReused => {
                vec![("WWW-Authenticate", "Bearer error=\"invalid_token\"".into())]
            }
            Self::TooManyAttempts(secs) => vec![("Retry-After", secs.to_string())],
            Self::StoreUnavailable(_) => vec![("Retry-After", "1".into())],
            Self::CredentialNotAccepted
            | Self::InvalidToken(_)
            | Self::InvalidApiKey
            | Self::ClientIdMismatch => {
                let description = self.detail().replace('"', "'");
                vec![(
                    "WWW-Authenticate",
                    format!("Bearer error=\"invalid_token\", error_description=\"{description}\""),
                )]
            }
            Self::MethodNotAllowed(allow) => vec![("Allow", (*allow).to_string())],
            Self::RateLimited(h) => {
                let mut out = vec![("Retry-After", h.reset_secs.to_string())];
                out.extend(h.pairs());
                out
            }
            _ => Vec::new(),
        }
    }

    pub fn body(&self) -> Vec<u8> {
        let status = self.status();
        let title = http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error");
        let detail = self.detail();
        serde_json::to_vec(&Problem {
            kind: "about:blank",
            title,
            status,
            detail: &detail,
            code: self.code(),
            field: match self {
                Self::Validation { field, .. } => Some(field),
                _ => None,
            },
        })
        .unwrap_or_default()
    }
}

impl GatewayError {
    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        GatewayError::Validation {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// Seconds for `Retry-After`: rounded up, at least 1.
pub fn ceil_secs(d: Duration) -> u64 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    s.max(1)
}
