//! Mailed single-use tokens: password reset and email verification.
//! Requests for mail answer the same whether or not the address has an
//! account; the token itself is created and mailed off the response path.

use chrono::Duration;
use uuid::Uuid;

use super::{Accounts, Client};
use crate::crypto::tokens::{random_token, sha256_hex};
use crate::error::GatewayError;
use crate::mail::{self, templates};
use crate::store::account_tokens::{self, NewToken, Purpose};
use crate::store::users::{self, User};
use crate::store::{audit, lockouts};

/// Random bytes in a mailed token (256 bits).
const TOKEN_BYTES: usize = 32;
/// Longest token worth looking up (ours are 43 characters).
const MAX_TOKEN_LEN: usize = 128;
const RESET_TTL_MINUTES: i64 = 60;
const VERIFY_TTL_HOURS: i64 = 24;

impl Accounts {
    /// Checks both throttles for a mail to `email`: per client IP and per
    /// recipient address.
    fn throttle_mail(&self, email: &str, client: &Client) -> Result<(), GatewayError> {
        self.mail_ip_throttle.check(client.ip)?;
        self.mail_recipient_throttle
            .check_recipient(&users::email_key(email))
    }

    /// Creates a token of `purpose` for `user`, mailed to their current
    /// address (older tokens of the purpose stop working). A reset request
    /// is audited with the `origin` that asked for it.
    async fn mail_token(
        &self,
        user: &User,
        purpose: Purpose,
        origin: &audit::Origin,
    ) -> Result<(), GatewayError> {
        let db = self.db().await?;
        if purpose == Purpose::ResetPassword {
            audit::record(
                db,
                "password_reset_requested",
                Some(user.id),
                None,
                origin,
                serde_json::json!({}),
            )
            .await;
        }
        let token = random_token(TOKEN_BYTES);
        let now = self.clock.now();
        let (ttl, kind, mail) = match purpose {
            Purpose::ResetPassword => {
                let link = self.mailer.link(mail::RESET_PASSWORD_PATH, &token);
                (
                    Duration::minutes(RESET_TTL_MINUTES),
                    "reset",
                    templates::reset_password(&link, &token, RESET_TTL_MINUTES),
                )
            }
            Purpose::VerifyEmail => {
                let link = self.mailer.link(mail::VERIFY_EMAIL_PATH, &token);
                (
                    Duration::hours(VERIFY_TTL_HOURS),
                    "verify",
                    templates::verify_email(&link, &token, VERIFY_TTL_HOURS),
                )
            }
        };
        account_tokens::issue(
            db,
            NewToken {
                purpose,
                user: user.id,
                email_key: &users::email_key(&user.email),
                hash: &sha256_hex(&token),
                expires_at: now + ttl,
            },
            now,
        )
        .await?;
        // Often run in the background, outside any request's group commit:
        // the token is on disk before the mail carrying it leaves.
        db.sync().await?;
        self.mailer.send(&user.email, mail);
        tracing::debug!(user = %user.id, kind, "account mail queued");
        Ok(())
    }

    /// Runs `mail_token` in the background: the caller answers at once, the
    /// same for every address.
    fn mail_token_later(
        self: &std::sync::Arc<Self>,
        user: User,
        purpose: Purpose,
        origin: audit::Origin,
    ) {
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me.mail_token(&user, purpose, &origin).await {
                tracing::error!(user = %user.id, error = e.detail(), cause = e.log_cause(), "account mail not queued");
            }
        });
    }

    /// Sends the verification mail for the user's current address.
    pub fn send_verification(self: &std::sync::Arc<Self>, user: User) {
        self.mail_token_later(user, Purpose::VerifyEmail, audit::Origin::default());
    }

    /// `POST /auth/forgot-password`: mails a reset token when an active
    /// account has `email`; answers the same either way.
    pub async fn forgot_password(
        self: &std::sync::Arc<Self>,
        email: &str,
        client: &Client,
    ) -> Result<(), GatewayError> {
        self.throttle_mail(email, client)?;
        let db = self.db().await?;
        if let Some(user) = users::by_email(db, email).await?.filter(|u| u.is_active) {
            // Everything that only happens for real accounts happens after
            // the answer, so the answer takes the same time for any address.
            self.mail_token_later(user, Purpose::ResetPassword, client.origin());
        }
        Ok(())
    }

    /// `POST /auth/reset-password`: sets the password and revokes every
    /// session. Does not log in; TOTP still applies at the next login.
    pub async fn reset_password(
        &self,
        token: &str,
        new_password: &str,
        client: &Client,
    ) -> Result<(), GatewayError> {
        self.config
            .accounts
            .password
            .check(new_password)
            .map_err(|m| GatewayError::validation("new_password", m))?;
        let token_hash = mailed_token_hash(token, "reset")?;
        let hash = self.hasher.hash(new_password).await?;
        let db = self.db().await?;
        let Some((user, sessions)) =
            account_tokens::reset_password(db, &token_hash, &hash, self.clock.now()).await?
        else {
            return Err(GatewayError::InvalidMailedToken("reset"));
        };
        self.revoke_in_memory(sessions.iter().copied());
        // Whoever reads the mail may sign in again at once.
        lockouts::clear(db, &format!("account:{user}")).await?;
        audit::record(
            db,
            "password_reset",
            Some(user),
            Some(user),
            &client.origin(),
            serde_json::json!({"sessions_revoked": sessions}),
        )
        .await;
        Ok(())
    }

    /// `POST /auth/resend-verification`: mails a new verification token to
    /// an unverified account with `email`; answers the same either way.
    pub async fn resend_verification(
        self: &std::sync::Arc<Self>,
        email: &str,
        client: &Client,
    ) -> Result<(), GatewayError> {
        self.throttle_mail(email, client)?;
        let db = self.db().await?;
        if let Some(user) = users::by_email(db, email)
            .await?
            .filter(|u| u.is_active && !u.email_verified)
        {
            self.send_verification(user);
        }
        Ok(())
    }

    /// `POST /auth/verify-email`: marks the address the token was sent to
    /// as verified, if the account still has it.
    pub async fn verify_email(&self, token: &str, client: &Client) -> Result<Uuid, GatewayError> {
        let token_hash = mailed_token_hash(token, "verification")?;
        let db = self.db().await?;
        let user = account_tokens::verify_email(db, &token_hash, self.clock.now())
            .await?
            .ok_or(GatewayError::InvalidMailedToken("verification"))?;
        audit::record(
            db,
            "email_verified",
            Some(user),
            Some(user),
            &client.origin(),
            serde_json::json!({}),
        )
        .await;
        Ok(user)
    }
}

/// The stored form of a presented token; a token no mail of ours could
/// carry is refused before any lookup.
fn mailed_token_hash(token: &str, what: &'static str) -> Result<String, GatewayError> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(GatewayError::InvalidMailedToken(what));
    }
    Ok(sha256_hex(token))
}
