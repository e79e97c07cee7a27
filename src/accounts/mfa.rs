//! TOTP second factor: setup (a pending secret), enable (first code →
//! recovery codes), disable, and the check a login runs. Secrets are sealed
//! at rest with a key derived from the gateway's secret and bound to the
//! user id; a time step or recovery code is accepted once.

use uuid::Uuid;

use super::{Accounts, Client};
use crate::crypto::tokens::{normalize_recovery_code, recovery_code, sha256_hex};
use crate::crypto::totp;
use crate::error::GatewayError;
use crate::store::users::User;
use crate::store::{audit, mfa, Db};

/// Recovery codes handed out when TOTP is enabled.
pub const RECOVERY_CODES: usize = 10;

pub struct TotpSetup {
    /// Base32, for typing into an authenticator app.
    pub secret: String,
    pub otpauth_uri: String,
}

/// The second factor a login or `disable` presents.
#[derive(Debug, Clone, Copy, Default)]
pub struct SecondFactor<'a> {
    pub totp_code: Option<&'a str>,
    pub recovery_code: Option<&'a str>,
}

impl SecondFactor<'_> {
    pub fn is_empty(&self) -> bool {
        self.totp_code.is_none() && self.recovery_code.is_none()
    }
}

impl Accounts {
    fn open_secret(&self, user: &User, sealed: &str) -> Result<Vec<u8>, GatewayError> {
        self.totp_key.open(sealed, user.id.as_bytes()).map_err(|e| {
            GatewayError::Internal(format!(
                "TOTP secret of {}: {e} (was accounts.secret_encryption_key replaced?)",
                user.id
            ))
        })
    }

    /// Starts enrollment: a new secret, shown once, pending until `enable`.
    pub async fn totp_setup(&self, user_id: Uuid) -> Result<TotpSetup, GatewayError> {
        let db = self.db().await?;
        let user = self.signed_in_user(db, user_id).await?;
        if user.mfa_enabled() {
            return Err(GatewayError::MfaAlreadyEnabled);
        }
        let secret = totp::new_secret();
        mfa::set_pending(
            db,
            user.id,
            &self.totp_key.seal(&secret, user.id.as_bytes()),
        )
        .await?;
        let issuer = self
            .config
            .accounts
            .totp_issuer
            .as_deref()
            .unwrap_or(&self.config.tokens.issuer);
        Ok(TotpSetup {
            secret: totp::base32(&secret),
            otpauth_uri: totp::otpauth_uri(issuer, &user.email, &secret),
        })
    }

    /// Turns TOTP on with the first code from the app (that code counts as
    /// used) and returns the recovery codes, shown only now.
    pub async fn totp_enable(
        &self,
        user_id: Uuid,
        code: &str,
        client: &Client,
    ) -> Result<Vec<String>, GatewayError> {
        let db = self.db().await?;
        let user = self.signed_in_user(db, user_id).await?;
        if user.mfa_enabled() {
            return Err(GatewayError::MfaAlreadyEnabled);
        }
        let pending = user
            .totp_pending
            .clone()
            .ok_or(GatewayError::MfaSetupRequired)?;
        let secret = self.open_secret(&user, &pending)?;
        let now = self.clock.now();
        let step = totp::matching_step(&secret, code, now.timestamp(), None).ok_or_else(|| {
            GatewayError::validation("code", "is not the current code of the authenticator app")
        })?;
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| recovery_code()).collect();
        let hashes: Vec<String> = codes
            .iter()
            .map(|c| sha256_hex(&normalize_recovery_code(c)))
            .collect();
        if !mfa::enable(db, user.id, &pending, step, &hashes, now).await? {
            // Another setup or enable won the race.
            return Err(GatewayError::MfaSetupRequired);
        }
        audit::record(
            db,
            "mfa_enabled",
            Some(user.id),
            Some(user.id),
            &client.origin(),
            serde_json::json!({"method": "totp"}),
        )
        .await;
        Ok(codes)
    }

    /// Turns TOTP off; needs the password and a current code (or an unused
    /// recovery code).
    pub async fn totp_disable(
        &self,
        user_id: Uuid,
        password: &str,
        code: &str,
        client: &Client,
    ) -> Result<(), GatewayError> {
        let db = self.db().await?;
        let user = self.signed_in_user(db, user_id).await?;
        if !user.mfa_enabled() {
            return Err(GatewayError::MfaNotEnabled);
        }
        self.confirm_password(&user, password, "password").await?;
        let factor = if totp::looks_like_code(code) {
            SecondFactor {
                totp_code: Some(code),
                ..SecondFactor::default()
            }
        } else {
            SecondFactor {
                recovery_code: Some(code),
                ..SecondFactor::default()
            }
        };
        if !self.second_factor_ok(db, &user, factor, client).await? {
            return Err(GatewayError::validation(
                "code",
                "is not a current code or an unused recovery code",
            ));
        }
        mfa::disable(db, user.id, self.clock.now()).await?;
        audit::record(
            db,
            "mfa_disabled",
            Some(user.id),
            Some(user.id),
            &client.origin(),
            serde_json::json!({"method": "totp"}),
        )
        .await;
        Ok(())
    }

    /// Checks and spends a second factor of `user` (TOTP on). A TOTP code
    /// must be within ±1 step and newer than the last one used; a recovery
    /// code must be unused.
    pub(super) async fn second_factor_ok(
        &self,
        db: &Db,
        user: &User,
        factor: SecondFactor<'_>,
        client: &Client,
    ) -> Result<bool, GatewayError> {
        if let Some(code) = factor.recovery_code {
            let hash = sha256_hex(&normalize_recovery_code(code));
            let ok = mfa::use_recovery_code(db, user.id, &hash, self.clock.now()).await?;
            if ok {
                let left = mfa::recovery_codes_left(db, user.id).await?;
                audit::record(
                    db,
                    "recovery_code_used",
                    Some(user.id),
                    Some(user.id),
                    &client.origin(),
                    serde_json::json!({"left": left}),
                )
                .await;
            }
            return Ok(ok);
        }
        let (Some(code), Some(sealed)) = (factor.totp_code, user.totp_secret.as_deref()) else {
            return Ok(false);
        };
        let secret = self.open_secret(user, sealed)?;
        let now = self.clock.now().timestamp();
        match totp::matching_step(&secret, code, now, user.totp_last_step) {
            Some(step) => Ok(mfa::use_step(db, user.id, step).await?),
            None => Ok(false),
        }
    }
}
