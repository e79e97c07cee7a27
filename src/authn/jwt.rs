//! Access-token verification (DESIGN.md §4, §10 Tokens) with the
//! verified-token cache.
//!
//! Own tokens: header `typ: at+jwt`, `alg` pinned to the configured key,
//! `kid` equal to its thumbprint, no `crit`; claims `iss`, `aud`, `exp`,
//! `iat`, `sub` (a UUID), `jti` present and of the right JSON types, `nbf`
//! honoured, leeway from config. External tokens: the issuer's JWKS decides
//! the key and algorithm (never HMAC), `aud` from that issuer's config.
//!
//! The cache is keyed by SHA-256 of the token and an entry never outlives the
//! token's `exp`; it only saves the signature and claim parsing — revocation
//! and the route's requirements are checked by the caller on every request.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::jwks::ExternalIssuer;
use super::keys::SigningKey;
use crate::config::TokenConfig;
pub use crate::error::refusals::TokenError;
use crate::principal::{OrgId, OrgRole, SessionId, UserId, UserIdentity};

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
const CACHE_CAPACITY: u64 = 100_000;

impl From<jsonwebtoken::errors::Error> for TokenError {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        match e.kind() {
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::ImmatureSignature => TokenError::NotYetValid,
            ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
            ErrorKind::InvalidAudience => TokenError::WrongAudience,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                TokenError::WrongAlgorithm
            }
            ErrorKind::MissingRequiredClaim(_) | ErrorKind::InvalidSubject | ErrorKind::Json(_) => {
                TokenError::InvalidClaims
            }
            _ => TokenError::Malformed,
        }
    }
}

/// Whether a verification used the cache (for metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    Hit,
    Miss,
}

/// `aud` may be a string or a list; only its JSON type is checked here.
#[derive(Deserialize)]
#[serde(untagged)]
#[allow(dead_code)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct OwnClaims {
    sub: String,
    #[allow(dead_code)] // checked by jsonwebtoken; declared so its type is enforced
    iss: String,
    #[allow(dead_code)]
    aud: OneOrMany,
    exp: i64,
    iat: i64,
    #[serde(default)]
    #[allow(dead_code)]
    nbf: Option<i64>,
    jti: String,
    #[serde(default)]
    sid: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    orgs: HashMap<String, String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    su: bool,
    #[serde(default)]
    amr: Vec<String>,
}

#[derive(Deserialize)]
struct Peek {
    iss: Option<serde_json::Value>,
}

struct CacheExpiry;

impl moka::Expiry<[u8; 32], Arc<UserIdentity>> for CacheExpiry {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        value: &Arc<UserIdentity>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        let left = value.expires_at - now_secs();
        Some(Duration::from_secs(left.max(0) as u64))
    }
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub struct TokenVerifier {
    issuer: String,
    key: Arc<SigningKey>,
    validation: Validation,
    leeway: i64,
    /// `tokens.access_ttl`: no token of ours lives longer.
    max_lifetime: i64,
    external: Vec<Arc<ExternalIssuer>>,
    cache: moka::sync::Cache<[u8; 32], Arc<UserIdentity>>,
}

impl TokenVerifier {
    pub fn new(
        config: &TokenConfig,
        key: Arc<SigningKey>,
        external: Vec<Arc<ExternalIssuer>>,
    ) -> Self {
        let leeway = config.leeway.as_secs();
        let mut validation = Validation::new(key.algorithm.jwt());
        validation.leeway = leeway;
        validation.validate_nbf = true;
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&config.audience);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Self {
            issuer: config.issuer.clone(),
            key,
            validation,
            leeway: leeway as i64,
            max_lifetime: config.access_ttl.as_secs() as i64,
            external,
            cache: moka::sync::Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .expire_after(CacheExpiry)
                .build(),
        }
    }

    /// Verifies a bearer token, using the cache when possible.
    pub async fn verify(
        &self,
        token: &str,
    ) -> Result<(Arc<UserIdentity>, CacheOutcome), TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Oversized);
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(identity) = self.cache.get(&digest) {
            if identity.expires_at.saturating_add(self.leeway) < now_secs() {
                return Err(TokenError::Expired);
            }
            return Ok((identity, CacheOutcome::Hit));
        }
        let identity = Arc::new(self.verify_uncached(token).await?);
        self.cache.insert(digest, identity.clone());
        Ok((identity, CacheOutcome::Miss))
    }

    /// Full verification without the cache (the cache-miss path; also what
    /// the benchmarks measure as raw verification cost).
    pub async fn verify_uncached(&self, token: &str) -> Result<UserIdentity, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.crit.is_some() {
            return Err(TokenError::Critical);
        }
        let iss = peek_issuer(token)?;
        if iss == self.issuer {
            let typ_ok = header.typ.as_deref().is_some_and(|t| {
                t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
            });
            if !typ_ok {
                return Err(TokenError::WrongType);
            }
            if header.alg != self.key.algorithm.jwt() {
                return Err(TokenError::WrongAlgorithm);
            }
            if header.kid.as_deref() != Some(self.key.kid.as_str()) {
                return Err(TokenError::UnknownKey);
            }
            let claims: OwnClaims =
                jsonwebtoken::decode(token, &self.key.decoding, &self.validation)?.claims;
            self.own_identity(claims)
        } else if let Some(ext) = self.external.iter().find(|e| e.config.issuer == iss) {
            let kid = header.kid.as_deref().ok_or(TokenError::UnknownKey)?;
            let key = ext.key(kid).await.ok_or(TokenError::UnknownKey)?;
            if header.alg != key.algorithm {
                return Err(TokenError::WrongAlgorithm);
            }
            external_identity(token, ext, &key.key, key.algorithm, self.leeway)
        } else {
            Err(TokenError::WrongIssuer)
        }
    }

    fn own_identity(&self, c: OwnClaims) -> Result<UserIdentity, TokenError> {
        if c.iat > now_secs() + self.leeway {
            return Err(TokenError::InvalidClaims);
        }
        // Longer than this gateway issues (say, from before `access_ttl` was
        // lowered): refused, so a revocation never has to outlive
        // `access_ttl` to cover every token it refuses.
        if c.exp.saturating_sub(c.iat) > self.max_lifetime {
            return Err(TokenError::InvalidClaims);
        }
        let user_id = uuid::Uuid::parse_str(&c.sub).map_err(|_| TokenError::InvalidClaims)?;
        let session = c
            .sid
            .map(|s| uuid::Uuid::parse_str(&s).map(SessionId))
            .transpose()
            .map_err(|_| TokenError::InvalidClaims)?;
        let mut orgs = HashMap::with_capacity(c.orgs.len());
        for (id, role) in c.orgs {
            let id = uuid::Uuid::parse_str(&id).map_err(|_| TokenError::InvalidClaims)?;
            let role = OrgRole::parse(&role).ok_or(TokenError::InvalidClaims)?;
            orgs.insert(OrgId(id), role);
        }
        Ok(UserIdentity {
            user_id: UserId(user_id.to_string()),
            issuer: self.issuer.clone(),
            email: c.email,
            // Superuser status comes only from `su`, never from a role name.
            roles: plain_labels(c.roles),
            superuser: c.su,
            orgs,
            scopes: split_scopes(c.scope.as_deref()),
            session,
            jti: c.jti,
            issued_at: c.iat,
            expires_at: c.exp,
            amr: c.amr,
        })
    }

    /// Entries in the verified-token cache (for tests and metrics).
    pub fn cached_entries(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }
}

fn split_scopes(scope: Option<&str>) -> Vec<String> {
    scope
        .map(|s| s.split_ascii_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

/// Reads `iss` from the unverified payload, only to pick the key to verify
/// with; every claim is verified afterwards.
fn peek_issuer(token: &str) -> Result<String, TokenError> {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Malformed)?;
    let peek: Peek = serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;
    match peek.iss {
        Some(serde_json::Value::String(s)) => Ok(s),
        Some(_) => Err(TokenError::InvalidClaims),
        None => Err(TokenError::WrongIssuer),
    }
}

fn external_identity(
    token: &str,
    issuer: &ExternalIssuer,
    key: &DecodingKey,
    alg: Algorithm,
    leeway: i64,
) -> Result<UserIdentity, TokenError> {
    let mut v = Validation::new(alg);
    v.leeway = leeway as u64;
    v.validate_nbf = true;
    v.set_issuer(&[&issuer.config.issuer]);
    v.set_audience(&issuer.config.audience);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let claims: serde_json::Value = jsonwebtoken::decode(token, key, &v)?.claims;
    let str_claim = |name: &str| claims.get(name).and_then(|v| v.as_str()).map(String::from);
    let int_claim = |name: &str| -> Result<Option<i64>, TokenError> {
        match claims.get(name) {
            None => Ok(None),
            Some(v) => v.as_i64().map(Some).ok_or(TokenError::InvalidClaims),
        }
    };
    let sub = str_claim("sub")
        .filter(|s| is_header_safe(s))
        .ok_or(TokenError::InvalidClaims)?;
    let exp = int_claim("exp")?.ok_or(TokenError::InvalidClaims)?;
    let iat = int_claim("iat")?.unwrap_or(0);
    if iat > now_secs() + leeway {
        return Err(TokenError::InvalidClaims);
    }
    // Roles at a dotted path (`realm_access.roles`), as a list or a space list.
    let roles = issuer
        .config
        .roles_claim
        .split('.')
        .try_fold(&claims, |v, part| v.get(part))
        .map(string_list)
        .unwrap_or_default();
    let scopes = claims
        .get("scope")
        .or_else(|| claims.get("scp"))
        .map(string_list)
        .unwrap_or_default();
    // An address the issuer has not verified is not forwarded as identity.
    let email = str_claim("email")
        .filter(|_| claims.get("email_verified") == Some(&serde_json::Value::Bool(true)));
    Ok(UserIdentity {
        user_id: UserId(sub),
        issuer: issuer.config.issuer.clone(),
        email,
        // External issuers never grant the gateway's superuser flag, neither
        // by `su` nor by a role named "superuser".
        roles: plain_labels(roles),
        superuser: false,
        orgs: HashMap::new(),
        scopes,
        session: None,
        jti: str_claim("jti").unwrap_or_default(),
        issued_at: iat,
        expires_at: exp,
        amr: claims.get("amr").map(string_list).unwrap_or_default(),
    })
}

/// A JSON list of strings, or a space-separated string; labels that could
/// not travel as one item of a comma or space list are dropped.
fn string_list(value: &serde_json::Value) -> Vec<String> {
    let items: Vec<String> = match value {
        serde_json::Value::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(String::from))
            .collect(),
        serde_json::Value::String(s) => split_scopes(Some(s)),
        _ => Vec::new(),
    };
    items.into_iter().filter(|i| is_label(i)).collect()
}

/// Role or scope names: non-empty, header-safe, no separators.
fn is_label(s: &str) -> bool {
    is_header_safe(s) && !s.contains([',', ' '])
}

fn is_header_safe(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..0x7F).contains(&b))
}

/// Role names as labels; "superuser" is a flag, never a role name.
fn plain_labels(roles: Vec<String>) -> Vec<String> {
    roles
        .into_iter()
        .filter(|r| is_label(r) && r != "superuser")
        .collect()
}
