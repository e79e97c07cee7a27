//! Register, login (JSON or OAuth2 password form), token (RFC 6749),
//! refresh (body or HttpOnly cookie) and logout.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::extract::{is_json, parse_json, AuthUser, JsonBody};
use super::openapi::{LoginForm, TokenForm};
use super::{ApiState, UserView};
use crate::accounts::mfa::SecondFactor;
use crate::accounts::tokens::TokenPair;
use crate::accounts::{Client, LoginAttempt};
use crate::error::GatewayError;
use crate::store::audit;
use crate::store::users::{self, NewUser};

pub const REFRESH_COOKIE: &str = "portcullis_refresh";

/// The body of `POST /auth/refresh`; without `refresh_token` (an empty body
/// or `{}`) the `portcullis_refresh` cookie is used.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    #[serde(default)]
    refresh_token: Option<String>,
}

pub fn valid_email(email: &str) -> Result<(), &'static str> {
    let ok = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.rsplit_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if ok {
        Ok(())
    } else {
        Err("must be an email address like name@example.com")
    }
}

pub fn valid_username(username: &str) -> Result<(), &'static str> {
    let ok = (3..=32).contains(&username.len())
        && username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err("must be 3–32 of letters, digits, '_', '.', '-'")
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    email: String,
    password: String,
    #[serde(default)]
    username: Option<String>,
}

#[utoipa::path(post, path = "/auth/register", summary = "Create an account",
    request_body = RegisterBody,
    responses((status = 201, description = "The new account", body = UserView)))]
pub async fn register(
    State(state): State<Arc<ApiState>>,
    client: Client,
    JsonBody(body): JsonBody<RegisterBody>,
) -> Result<Response, GatewayError> {
    let accounts = &state.accounts;
    if !accounts.config.accounts.registration_open {
        return Err(GatewayError::RegistrationClosed);
    }
    accounts.register_throttle.check(client.ip)?;
    super::validate_new_user(
        &accounts.config,
        &body.email,
        body.username.as_deref(),
        &body.password,
    )?;
    let db = accounts.db().await?;
    let hash = accounts.hasher.hash(&body.password).await?;
    let user = users::create(
        db,
        NewUser {
            email: &body.email,
            username: body.username.as_deref(),
            password_hash: &hash,
            superuser: false,
            email_verified: false,
        },
        chrono::Utc::now(),
    )
    .await?;
    audit::record(
        db,
        "user_registered",
        Some(user.id),
        None,
        &client.origin(),
        serde_json::json!({}),
    )
    .await;
    accounts.send_verification(user.clone());
    Ok((StatusCode::CREATED, Json(UserView::from(&user))).into_response())
}

/// Login credentials from JSON (`email` or `username`) or an OAuth2
/// password-grant form (`username`, which may be an email), with the
/// optional second factor (`totp_code` or `recovery_code`).
struct Credentials {
    login: String,
    password: String,
    totp_code: Option<String>,
    recovery_code: Option<String>,
}

impl Credentials {
    fn attempt(&self) -> LoginAttempt<'_> {
        LoginAttempt {
            login: &self.login,
            password: &self.password,
            second_factor: SecondFactor {
                totp_code: self.totp_code.as_deref(),
                recovery_code: self.recovery_code.as_deref(),
            },
        }
    }

    /// From the fields of an OAuth2 password-grant form.
    fn from_form(form: &mut HashMap<String, String>) -> Result<Credentials, GatewayError> {
        let login = form
            .remove("username")
            .ok_or_else(|| GatewayError::validation("username", "required"))?;
        let password = form
            .remove("password")
            .ok_or_else(|| GatewayError::validation("password", "required"))?;
        Ok(Credentials {
            login,
            password,
            totp_code: form.remove("totp_code"),
            recovery_code: form.remove("recovery_code"),
        })
    }
}

/// The JSON form of login credentials: `email` or `username`, one is
/// required.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginJson {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    username: Option<String>,
    password: String,
    #[serde(default)]
    totp_code: Option<String>,
    #[serde(default)]
    recovery_code: Option<String>,
}

fn form_fields(bytes: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(bytes).into_owned().collect()
}

fn credentials(headers: &HeaderMap, bytes: &[u8]) -> Result<Credentials, GatewayError> {
    let ct = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if is_json(ct) {
        let body: LoginJson = parse_json(bytes)?;
        let login = body
            .email
            .or(body.username)
            .ok_or_else(|| GatewayError::validation("email", "email or username is required"))?;
        Ok(Credentials {
            login,
            password: body.password,
            totp_code: body.totp_code,
            recovery_code: body.recovery_code,
        })
    } else if ct.is_some_and(|c| c.starts_with("application/x-www-form-urlencoded")) {
        Credentials::from_form(&mut form_fields(bytes))
    } else {
        Err(GatewayError::UnsupportedMediaType(
            "application/json or application/x-www-form-urlencoded",
        ))
    }
}

pub fn refresh_cookie(state: &ApiState, value: &str, max_age: u64) -> String {
    let secure = if state.accounts.config.accounts.cookie_secure {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{REFRESH_COOKIE}={value}; HttpOnly; SameSite=Lax; Path=/auth; Max-Age={max_age}{secure}"
    )
}

fn with_cookie(state: &ApiState, pair: TokenPair) -> Response {
    let max_age = state.accounts.config.tokens.refresh_ttl.as_secs();
    let cookie = refresh_cookie(state, &pair.refresh_token, max_age);
    let mut resp = Json(pair).into_response();
    if let Ok(v) = http::HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(http::header::SET_COOKIE, v);
    }
    resp
}

#[utoipa::path(post, path = "/auth/login", summary = "Log in (JSON or OAuth2 password form)",
    request_body(content(
        (LoginJson = "application/json"),
        (LoginForm = "application/x-www-form-urlencoded"),
    )),
    responses((status = 200, description = "Tokens; the refresh token also as the HttpOnly cookie",
        body = TokenPair, headers(("Set-Cookie" = String, description = "portcullis_refresh=…; HttpOnly")))))]
pub async fn login(
    State(state): State<Arc<ApiState>>,
    client: Client,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, GatewayError> {
    let creds = credentials(&headers, &body)?;
    let (_, pair) = state.accounts.login(&creds.attempt(), &client).await?;
    Ok(with_cookie(&state, pair))
}

/// An RFC 6749 §5.2 error body (`application/json`, not problem+json).
#[derive(Serialize, utoipa::ToSchema)]
pub struct OAuthError<'a> {
    /// `invalid_request`, `invalid_grant`, `unsupported_grant_type`,
    /// `mfa_required` or `temporarily_unavailable`.
    error: &'a str,
    error_description: &'a str,
}

/// RFC 6749 §5.2 error response.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = OAuthError {
        error,
        error_description: description,
    };
    let mut resp = (status, Json(body)).into_response();
    resp.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    resp
}

fn oauth_from(e: GatewayError) -> Response {
    let description = e.detail();
    match e {
        // RFC 6749 has no code for a missing second factor; like other
        // token services we name it, so clients know to ask for a code.
        GatewayError::MfaRequired => {
            oauth_error(StatusCode::BAD_REQUEST, "mfa_required", &description)
        }
        GatewayError::InvalidCredentials
        | GatewayError::InvalidMfaCode
        | GatewayError::AccountDisabled
        | GatewayError::EmailUnverified
        | GatewayError::InvalidRefreshToken
        | GatewayError::RefreshTokenRotated
        | GatewayError::RefreshTokenReused => {
            oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", &description)
        }
        GatewayError::Validation { .. } | GatewayError::UnsupportedMediaType(_) => {
            oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &description)
        }
        GatewayError::TooManyAttempts(secs) => {
            let mut resp =
                oauth_error(StatusCode::TOO_MANY_REQUESTS, "invalid_grant", &description);
            if let Ok(v) = http::HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(http::header::RETRY_AFTER, v);
            }
            resp
        }
        GatewayError::StoreUnavailable(_) => oauth_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            &description,
        ),
        other => other.into_response(),
    }
}

/// `POST /auth/token`: OAuth2 token endpoint, form-encoded.
#[utoipa::path(post, path = "/auth/token",
    summary = "OAuth2 token endpoint (password, refresh_token grants)",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Tokens", body = TokenPair),
        (status = 400, description = "RFC 6749 §5.2 error", body = OAuthError),
        (status = 429, description = "Throttled or locked out (`Retry-After`)", body = OAuthError),
        (status = 503, description = "The account store is unavailable", body = OAuthError),
    ))]
pub async fn token(
    State(state): State<Arc<ApiState>>,
    client: Client,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ct = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !ct.is_some_and(|c| c.starts_with("application/x-www-form-urlencoded")) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "send application/x-www-form-urlencoded",
        );
    }
    let mut form = form_fields(&body);
    let result = match form.get("grant_type").map(String::as_str) {
        Some("password") => match Credentials::from_form(&mut form) {
            Ok(creds) => state
                .accounts
                .login(&creds.attempt(), &client)
                .await
                .map(|(_, pair)| pair),
            Err(_) => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "username and password are required",
                )
            }
        },
        Some("refresh_token") => match form.remove("refresh_token") {
            Some(token) => state.accounts.refresh(&token, &client).await,
            None => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "refresh_token is required",
                )
            }
        },
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "use password or refresh_token",
            )
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is required",
            )
        }
    };
    match result {
        Ok(pair) => {
            let mut resp = Json(pair).into_response();
            resp.headers_mut().insert(
                http::header::CACHE_CONTROL,
                http::HeaderValue::from_static("no-store"),
            );
            resp
        }
        Err(e) => oauth_from(e),
    }
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == REFRESH_COOKIE)
        .map(|(_, value)| value.to_string())
}

/// Cookie-authenticated requests must not be cross-site form posts.
fn check_cookie_request(state: &ApiState, headers: &HeaderMap) -> Result<(), GatewayError> {
    let ct = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !is_json(ct) && !headers.contains_key("x-requested-with") {
        return Err(GatewayError::CrossSiteRefused);
    }
    if let Some(origin) = headers
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    {
        let config = &state.accounts.config;
        let origin = origin.trim_end_matches('/');
        let allowed = config.server.public_url.eq_ignore_ascii_case(origin)
            || config.cors.as_ref().is_some_and(|c| {
                c.allowed_origins
                    .iter()
                    .any(|o| o.eq_ignore_ascii_case(origin))
            });
        if !allowed {
            return Err(GatewayError::CrossSiteRefused);
        }
    }
    Ok(())
}

#[utoipa::path(post, path = "/auth/refresh",
    summary = "Exchange a refresh token (body or cookie) for a new pair",
    request_body(content = Option<RefreshBody>, content_type = "application/json",
        description = "Optional: empty or `{}` uses the refresh cookie"),
    security((), ("refresh_cookie" = [])),
    responses((status = 200, description = "A new pair; the cookie is renewed", body = TokenPair)))]
pub async fn refresh(
    State(state): State<Arc<ApiState>>,
    client: Client,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, GatewayError> {
    let ct = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let from_body = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else if is_json(ct) {
        parse_json::<RefreshBody>(&body)?.refresh_token
    } else {
        return Err(GatewayError::UnsupportedMediaType("application/json"));
    };
    let from_cookie = cookie_token(&headers);
    let token = match (from_body, from_cookie) {
        (Some(b), Some(c)) if b != c => return Err(GatewayError::ConflictingCredentials),
        (Some(b), _) => b,
        (None, Some(c)) => {
            check_cookie_request(&state, &headers)?;
            c
        }
        (None, None) => {
            return Err(GatewayError::validation(
                "refresh_token",
                "required (in the body or the refresh cookie)",
            ))
        }
    };
    let pair = state.accounts.refresh(&token, &client).await?;
    Ok(with_cookie(&state, pair))
}

#[utoipa::path(post, path = "/auth/logout", summary = "End the current session",
    description = "The session is named by the access token or by the refresh cookie.",
    security(("bearer" = []), ("refresh_cookie" = [])),
    responses((status = 204, description = "Logged out; the cookie is cleared")))]
pub async fn logout(
    State(state): State<Arc<ApiState>>,
    client: Client,
    mut parts: http::request::Parts,
) -> Result<Response, GatewayError> {
    let cookie = cookie_token(&parts.headers);
    match cookie {
        // The refresh cookie alone names the session (same CSRF rule as
        // a cookie refresh); a bearer token, when sent, decides instead.
        Some(token) if !parts.headers.contains_key(http::header::AUTHORIZATION) => {
            check_cookie_request(&state, &parts.headers)?;
            state
                .accounts
                .end_session_of_refresh_token(&token, &client)
                .await?;
        }
        _ => {
            let user = AuthUser::from_request_parts(&mut parts, &state).await?;
            if let Some(session) = user.session() {
                state
                    .accounts
                    .end_session(user.id()?, session, "logout", &client)
                    .await?;
            }
        }
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = http::HeaderValue::from_str(&refresh_cookie(&state, "", 0)) {
        resp.headers_mut().append(http::header::SET_COOKIE, v);
    }
    Ok(resp)
}
