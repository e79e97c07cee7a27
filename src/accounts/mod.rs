//! The account service behind `/auth`: users, login with lockout and
//! throttles, sessions and refresh-token rotation, and the bridge to the
//! in-memory revocation set (a revoked session is refused on the very next
//! proxied request). HTTP shapes live in `api`; this module is the logic.
//!
//! - `mfa`: TOTP and recovery codes; `recovery`: password reset and email
//!   verification by mail; `deletion`: scheduled account deletion
//! - `api_keys`, `orgs`: keys and organizations
//! - `throttle`, `tokens`, `clock`: per-IP/per-address throttles, token
//!   pairs and how long a revocation must last, the clock of time-dependent
//!   rules
//! - `housekeeping`: forgetting ended sessions and expired mailed tokens

pub mod api_keys;
pub mod clock;
pub mod deletion;
mod housekeeping;
pub mod mfa;
pub mod orgs;
pub mod recovery;
pub mod throttle;
pub mod tokens;

use std::net::IpAddr;
use std::sync::Arc;

use chrono::Utc;
use uuid::Uuid;

use crate::authn::api_keys::ApiKeyVerifier;
use crate::authn::jwt::now_secs;
use crate::authn::keys::SigningKey;
use crate::config::Config;
use crate::crypto::password::Hasher;
use crate::crypto::seal::Sealer;
use crate::crypto::tokens::{random_token, sha256_hex};
use crate::error::GatewayError;
use crate::mail::Mailer;
use crate::principal::SessionId;
use crate::revocation::RevocationSet;
use crate::store::audit::{self, Origin};
use crate::store::sessions::{self, NewSession, Rotation, Session};
use crate::store::users::{self, User};
use crate::store::{lockouts, Db, LazyDb};
use clock::Clock;
use mfa::SecondFactor;
use throttle::Throttle;
use tokens::TokenPair;

/// Who is calling, for throttles, sessions and the audit log.
#[derive(Debug, Clone)]
pub struct Client {
    pub ip: IpAddr,
    pub user_agent: Option<String>,
}

impl Client {
    pub fn origin(&self) -> Origin {
        Origin {
            ip: Some(self.ip.to_string()),
            user_agent: self.user_agent.clone(),
        }
    }
}

pub struct Accounts {
    pub config: Arc<Config>,
    key: Arc<SigningKey>,
    revocations: Arc<RevocationSet>,
    pub hasher: Hasher,
    db: Arc<LazyDb>,
    /// The API-key cache, told about every change that affects a key.
    pub keys: Arc<ApiKeyVerifier>,
    pub login_throttle: Throttle,
    pub register_throttle: Throttle,
    /// Forgot-password and resend-verification requests per client IP.
    pub mail_ip_throttle: Throttle,
    /// The same, per recipient address.
    pub mail_recipient_throttle: Throttle,
    pub mailer: Mailer,
    /// Seals TOTP secrets at rest.
    totp_key: Sealer,
    pub clock: Clock,
}

/// What a login presents.
#[derive(Debug, Clone, Copy)]
pub struct LoginAttempt<'a> {
    /// Email or username.
    pub login: &'a str,
    pub password: &'a str,
    pub second_factor: SecondFactor<'a>,
}

/// Label of the key that seals TOTP secrets (derived from the server secret).
pub const TOTP_SEAL_LABEL: &str = "portcullis totp secret v1";

impl Accounts {
    pub fn new(
        config: Arc<Config>,
        key: Arc<SigningKey>,
        revocations: Arc<RevocationSet>,
        db: Arc<LazyDb>,
        keys: Arc<ApiKeyVerifier>,
        mailer: Mailer,
        totp_key: Sealer,
    ) -> Result<Self, String> {
        let a = &config.accounts;
        let clock = Clock::default();
        Ok(Self {
            hasher: Hasher::new(a.argon2)?,
            login_throttle: Throttle::new(a.throttle_login, clock.clone()),
            register_throttle: Throttle::new(a.throttle_register, clock.clone()),
            mail_ip_throttle: Throttle::new(a.throttle_forgot_password, clock.clone()),
            mail_recipient_throttle: Throttle::new(a.throttle_forgot_password, clock.clone()),
            mailer,
            totp_key,
            clock,
            config,
            key,
            revocations,
            db,
            keys,
        })
    }

    /// The database, connecting on first use; 503 while it is unreachable.
    pub async fn db(&self) -> Result<&Db, GatewayError> {
        self.db.get().await.map_err(GatewayError::from)
    }

    /// The pool if it is open already (the group commit of
    /// `store::durability`, `/metrics`), without opening it.
    pub fn opened_db(&self) -> Option<&Db> {
        self.db.opened()
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn database_ready(&self) -> bool {
        self.db.ready().await
    }

    /// The account behind a caller's access token. An account purged
    /// since the token was issued answers like a revoked token (the purge
    /// revokes its tokens in memory a moment after the row is gone).
    pub async fn signed_in_user(&self, db: &Db, id: Uuid) -> Result<User, GatewayError> {
        users::by_id(db, id)
            .await?
            .ok_or(GatewayError::InvalidToken(
                crate::authn::jwt::TokenError::Revoked,
            ))
    }

    /// Re-authentication before a sensitive change: 422 naming `field`
    /// when `password` is not `user`'s.
    pub async fn confirm_password(
        &self,
        user: &User,
        password: &str,
        field: &str,
    ) -> Result<(), GatewayError> {
        if self
            .hasher
            .verify(password, Some(&user.password_hash))
            .await?
            .ok
        {
            Ok(())
        } else {
            Err(GatewayError::validation(field, "is incorrect"))
        }
    }

    /// Refuses the sessions' access tokens from the next request on, for
    /// as long as one of them could still verify.
    fn revoke_in_memory(&self, ids: impl IntoIterator<Item = Uuid>) {
        let until = tokens::latest_exp(&self.config, now_secs());
        for id in ids {
            self.revocations.revoke_session(SessionId(id), until);
        }
    }

    /// Starts a session for `user` (writing `event` with it) and returns
    /// its token pair.
    async fn start_session(
        &self,
        user: &User,
        client: &Client,
        amr: &[String],
        event: &str,
    ) -> Result<TokenPair, GatewayError> {
        let db = self.db().await?;
        let refresh = random_token(tokens::REFRESH_TOKEN_BYTES);
        let now = Utc::now();
        let ttl = chrono::Duration::from_std(self.config.tokens.refresh_ttl)
            .unwrap_or(chrono::Duration::days(30));
        let (session, evicted) = sessions::create(
            db,
            NewSession {
                user_id: user.id,
                origin: &client.origin(),
                amr,
                expires_at: now + ttl,
                refresh_hash: &sha256_hex(&refresh),
                max_sessions: self.config.accounts.max_sessions_per_user,
                event,
            },
            now,
        )
        .await?;
        self.revoke_in_memory(evicted);
        let orgs = orgs::claims(db, user.id).await?;
        tokens::pair(&self.config, &self.key, user, &session, &orgs, refresh)
            .map_err(GatewayError::Internal)
    }

    /// Password login, with the second factor when TOTP is on. Unknown
    /// users and wrong passwords look the same (status, body, and time: a
    /// dummy hash is verified). A locked account gets 429 even with the
    /// right password (lockout is per account, never per IP: the login
    /// throttle limits an IP); wrong TOTP codes count like wrong passwords,
    /// and the failure count is cleared only by a complete login.
    pub async fn login(
        &self,
        attempt: &LoginAttempt<'_>,
        client: &Client,
    ) -> Result<(User, TokenPair), GatewayError> {
        self.login_throttle.check(client.ip)?;
        let db = self.db().await?;
        let now = self.clock.now();
        let user = users::by_login(db, attempt.login).await?;
        // Unknown identifiers lock too, so lockout does not reveal accounts.
        let account_key = match &user {
            Some(u) => format!("account:{}", u.id),
            None => format!("account:{}", users::email_key(attempt.login)),
        };
        // Per account only: a shared NAT must not lock out its other users.
        let lockout = lockouts::status(db, &account_key, now).await?;
        if let Some(until) = lockout.locked_until {
            audit::record(
                db,
                "login_locked",
                user.as_ref().map(|u| u.id),
                None,
                &client.origin(),
                serde_json::json!({}),
            )
            .await;
            return Err(GatewayError::TooManyAttempts(retry_after(until, now)));
        }
        if attempt.password.len() > crate::crypto::password::MAX_PASSWORD_BYTES {
            return Err(GatewayError::InvalidCredentials);
        }
        let verified = self
            .hasher
            .verify(
                attempt.password,
                user.as_ref().map(|u| u.password_hash.as_str()),
            )
            .await?;
        let Some(user) = user.filter(|_| verified.ok) else {
            return Err(self
                .login_failed(
                    db,
                    user_id_for(&account_key),
                    &account_key,
                    client,
                    "password",
                )
                .await
                .unwrap_or(GatewayError::InvalidCredentials));
        };
        if let Some(reason) = self.refusal(&user) {
            audit::record(
                db,
                "login_failed",
                Some(user.id),
                None,
                &client.origin(),
                serde_json::json!({"reason": reason.code()}),
            )
            .await;
            return Err(reason);
        }
        let mut amr = vec!["pwd".to_string()];
        if user.mfa_enabled() {
            if attempt.second_factor.is_empty() {
                return Err(GatewayError::MfaRequired);
            }
            if !self
                .second_factor_ok(db, &user, attempt.second_factor, client)
                .await?
            {
                return Err(self
                    .login_failed(db, Some(user.id), &account_key, client, "mfa_code")
                    .await
                    .unwrap_or(GatewayError::InvalidMfaCode));
            }
            amr.push("otp".to_string());
        }
        if lockout.recorded {
            lockouts::clear(db, &account_key).await?;
        }
        if verified.needs_rehash {
            let hash = self.hasher.hash(attempt.password).await?;
            users::set_password(db, user.id, &hash, now).await?;
        }
        let pair = match self
            .start_session(&user, client, &amr, "login_succeeded")
            .await
        {
            // The account was purged while this login ran.
            Err(GatewayError::NotFound(_)) => return Err(GatewayError::InvalidCredentials),
            other => other?,
        };
        Ok((user, pair))
    }

    /// Why a user with the right password still may not log in.
    fn refusal(&self, user: &User) -> Option<GatewayError> {
        if !user.is_active {
            Some(GatewayError::AccountDisabled)
        } else if self.config.accounts.require_email_verification && !user.email_verified {
            Some(GatewayError::EmailUnverified)
        } else {
            None
        }
    }

    /// Records a failed attempt (`what` was wrong) against the account;
    /// `Some` only when recording itself failed.
    async fn login_failed(
        &self,
        db: &Db,
        user_id: Option<Uuid>,
        account_key: &str,
        client: &Client,
        what: &str,
    ) -> Option<GatewayError> {
        let now = self.clock.now();
        let policy = self.config.accounts.lockout;
        audit::record(
            db,
            "login_failed",
            user_id,
            None,
            &client.origin(),
            serde_json::json!({"reason": what}),
        )
        .await;
        match lockouts::record_failure(db, account_key, policy, now).await {
            Ok(Some(until)) => {
                audit::record(
                    db,
                    "lockout",
                    user_id,
                    None,
                    &client.origin(),
                    serde_json::json!({"key_kind": "account", "until": until}),
                )
                .await;
                None
            }
            Ok(None) => None,
            Err(e) => Some(e.into()),
        }
    }

    /// Exchanges a refresh token for a new pair (DESIGN.md §10 Tokens).
    pub async fn refresh(&self, token: &str, client: &Client) -> Result<TokenPair, GatewayError> {
        let db = self.db().await?;
        let now = Utc::now();
        let next = random_token(tokens::REFRESH_TOKEN_BYTES);
        let grace = chrono::Duration::from_std(self.config.accounts.refresh_reuse_grace)
            .unwrap_or_default();
        let rotation =
            match sessions::rotate(db, &sha256_hex(token), &sha256_hex(&next), now, grace).await {
                // The session went with a purged account meanwhile.
                Err(crate::store::StoreError::Vanished) => {
                    return Err(GatewayError::InvalidRefreshToken)
                }
                other => other?,
            };
        match rotation {
            Rotation::Invalid => Err(GatewayError::InvalidRefreshToken),
            Rotation::RecentlyRotated => Err(GatewayError::RefreshTokenRotated),
            Rotation::Reused(session) => {
                self.revoke_in_memory([session.id]);
                audit::record(
                    db,
                    "refresh_reuse_detected",
                    Some(session.user_id),
                    None,
                    &client.origin(),
                    serde_json::json!({"session": session.id}),
                )
                .await;
                Err(GatewayError::RefreshTokenReused)
            }
            Rotation::Rotated(session) => {
                let user = users::by_id(db, session.user_id)
                    .await?
                    .filter(|u| u.is_active);
                let Some(user) = user else {
                    sessions::revoke(db, session.id, now).await?;
                    self.revoke_in_memory([session.id]);
                    return Err(GatewayError::InvalidRefreshToken);
                };
                let orgs = orgs::claims(db, user.id).await?;
                tokens::pair(&self.config, &self.key, &user, &session, &orgs, next)
                    .map_err(GatewayError::Internal)
            }
        }
    }

    /// Revokes one session (logout, session revoke) in the database and in
    /// memory; the session's access tokens fail from the next request on.
    pub async fn end_session(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        kind: &str,
        client: &Client,
    ) -> Result<bool, GatewayError> {
        let db = self.db().await?;
        let owned = sessions::get(db, session_id)
            .await?
            .is_some_and(|s: Session| s.user_id == user_id);
        if !owned {
            return Ok(false);
        }
        sessions::revoke(db, session_id, Utc::now()).await?;
        self.revoke_in_memory([session_id]);
        audit::record(
            db,
            kind,
            Some(user_id),
            Some(user_id),
            &client.origin(),
            serde_json::json!({"session": session_id}),
        )
        .await;
        Ok(true)
    }

    /// Ends the live session a refresh token belongs to (logout with the
    /// refresh cookie alone); false when there is none.
    pub async fn end_session_of_refresh_token(
        &self,
        token: &str,
        client: &Client,
    ) -> Result<bool, GatewayError> {
        let db = self.db().await?;
        let session = sessions::of_refresh_token(db, &sha256_hex(token)).await?;
        match session.filter(|s| s.is_live(Utc::now())) {
            Some(s) => self.end_session(s.user_id, s.id, "logout", client).await,
            None => Ok(false),
        }
    }

    /// Revokes every session of `user_id` except `keep`.
    pub async fn end_all_sessions(
        &self,
        user_id: Uuid,
        keep: Option<Uuid>,
        actor: Option<Uuid>,
        kind: &str,
        client: &Client,
    ) -> Result<Vec<Uuid>, GatewayError> {
        let db = self.db().await?;
        let ids = sessions::revoke_all(db, user_id, keep, Utc::now()).await?;
        self.revoke_in_memory(ids.iter().copied());
        audit::record(
            db,
            kind,
            Some(user_id),
            actor,
            &client.origin(),
            serde_json::json!({"sessions": ids}),
        )
        .await;
        Ok(ids)
    }
}

fn user_id_for(account_key: &str) -> Option<Uuid> {
    account_key
        .strip_prefix("account:")
        .and_then(|k| Uuid::parse_str(k).ok())
}

/// Whole seconds until `until`, rounded up: waiting that long always ends
/// the lock (`status` unlocks at `until` exactly).
fn retry_after(until: chrono::DateTime<Utc>, now: chrono::DateTime<Utc>) -> u64 {
    crate::error::ceil_secs((until - now).to_std().unwrap_or_default())
}

/// Loads revoked, unexpired sessions, and accounts purged recently enough
/// that their tokens could still verify, into the in-memory set (at start,
/// so a restart forgets no revocation).
pub async fn load_revocations(
    db: &Db,
    revocations: &RevocationSet,
    config: &Config,
) -> Result<usize, GatewayError> {
    // Entries live one token lifetime from now: at most that much longer
    // than they need, and never shorter.
    let since = Utc::now() - tokens::revocation_memory(config);
    let until = tokens::latest_exp(config, now_secs());
    let ids = sessions::revoked_since(db, since).await?;
    for id in &ids {
        revocations.revoke_session(SessionId(*id), until);
    }
    let purged = crate::store::deletion::purged_since(db, since).await?;
    for id in &purged {
        revocations.revoke_user_before(&id.to_string(), i64::MAX, until);
    }
    Ok(ids.len() + purged.len())
}
