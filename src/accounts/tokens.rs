//! Issuing a token pair for a session: the access JWT (DESIGN.md §6 claims)
//! and an opaque refresh token, stored only as its SHA-256.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::authn::keys::SigningKey;
use crate::config::Config;
use crate::store::sessions::Session;
use crate::store::users::User;

/// Random bytes in a refresh token (256 bits).
pub const REFRESH_TOKEN_BYTES: usize = 32;

/// A refresh that passed its checks just before its session was revoked
/// may still sign an access token a moment later (its store calls are each
/// bounded by `store::OPERATION_TIMEOUT`); revocations cover that too.
const IN_FLIGHT: std::time::Duration = std::time::Duration::from_secs(60);

/// How long after a revocation a token it refuses can still be unexpired.
fn refusal_span(config: &Config) -> std::time::Duration {
    config.tokens.access_ttl + IN_FLIGHT
}

/// The latest `exp` (seconds) of an access token of a session or account
/// revoked at `at` (seconds): how long its in-memory entry must refuse.
pub fn latest_exp(config: &Config, at: i64) -> i64 {
    at.saturating_add(refusal_span(config).as_secs() as i64)
}

/// How long after a revocation a token it refuses could still verify (the
/// latest `exp` plus the verification leeway): what the database must
/// remember to rebuild the in-memory set at start.
pub fn revocation_memory(config: &Config) -> chrono::Duration {
    chrono::Duration::from_std(refusal_span(config) + config.tokens.leeway)
        .unwrap_or(chrono::Duration::days(1))
}

#[derive(Serialize)]
struct AccessClaims<'a> {
    iss: &'a str,
    /// RFC 9068 §2.2: the client the token was issued to. Password login
    /// and refresh serve the gateway's own first-party client, named by
    /// the issuer (`tokens.issuer`). Not required when verifying, so tokens
    /// from before this claim keep working.
    client_id: &'a str,
    aud: &'a [String],
    sub: String,
    exp: i64,
    iat: i64,
    nbf: i64,
    jti: String,
    sid: String,
    scope: &'a str,
    roles: &'a [String],
    orgs: &'a BTreeMap<String, String>,
    email: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    su: bool,
    amr: &'a [String],
}

/// What login and refresh answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub session_id: String,
}

/// Signs an access token issued at `now` and returns it with its `exp`.
fn access_token(
    config: &Config,
    key: &SigningKey,
    user: &User,
    session: &Session,
    orgs: &BTreeMap<String, String>,
    now: i64,
) -> Result<(String, i64), String> {
    let ttl = config.tokens.access_ttl.as_secs() as i64;
    // Never past the session's absolute end.
    let exp = (now + ttl).min(session.expires_at.timestamp());
    let claims = AccessClaims {
        iss: &config.tokens.issuer,
        client_id: &config.tokens.issuer,
        aud: &config.tokens.audience,
        sub: user.id.to_string(),
        exp,
        iat: now,
        nbf: now,
        jti: uuid::Uuid::new_v4().to_string(),
        sid: session.id.to_string(),
        scope: "",
        roles: &user.roles,
        orgs,
        email: &user.email,
        su: user.is_superuser,
        amr: &session.amr,
    };
    Ok((key.sign("at+jwt", &claims)?, exp))
}

pub fn pair(
    config: &Config,
    key: &SigningKey,
    user: &User,
    session: &Session,
    orgs: &BTreeMap<String, String>,
    refresh_token: String,
) -> Result<TokenPair, String> {
    let now = chrono::Utc::now().timestamp();
    let (access, exp) = access_token(config, key, user, session, orgs, now)?;
    Ok(TokenPair {
        access_token: access,
        refresh_token,
        token_type: "bearer",
        expires_in: (exp - now).max(0) as u64,
        session_id: session.id.to_string(),
    })
}
