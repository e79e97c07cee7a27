//! Single-use tokens sent by mail: password reset and email verification.
//! Only their SHA-256 is stored, with the address they were sent to. A new
//! token of a purpose supersedes the user's older ones, and spending one
//! is a single conditional write together with its effect.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{bounded, on_db, Db, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    ResetPassword,
    VerifyEmail,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::ResetPassword => "reset_password",
            Purpose::VerifyEmail => "verify_email",
        }
    }
}

pub struct NewToken<'a> {
    pub purpose: Purpose,
    pub user: Uuid,
    pub email_key: &'a str,
    pub hash: &'a str,
    pub expires_at: DateTime<Utc>,
}

/// Stores a token and retires the user's earlier unused ones of the same
/// purpose.
pub async fn issue(db: &Db, new: NewToken<'_>, now: DateTime<Utc>) -> Result<(), StoreError> {
    db.note_write();
    bounded(async {
        on_db!(db, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "UPDATE account_tokens SET used_at = $1 \
                 WHERE user_id = $2 AND purpose = $3 AND used_at IS NULL",
            )
            .bind(now)
            .bind(new.user)
            .bind(new.purpose.as_str())
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO account_tokens (token_hash, purpose, user_id, email_key, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(new.hash)
            .bind(new.purpose.as_str())
            .bind(new.user)
            .bind(new.email_key)
            .bind(now)
            .bind(new.expires_at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<_, StoreError>(())
        })
    })
    .await
}

const SPEND: &str = "UPDATE account_tokens SET used_at = $1 \
     WHERE token_hash = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $1 \
     RETURNING user_id, email_key";

/// Spends a reset token and, in the same transaction, sets the password
/// and revokes every session. Returns the user and the revoked session ids;
/// `None` when the token is unknown, spent, superseded or expired, or was
/// sent to an address the account no longer has.
pub async fn reset_password(
    db: &Db,
    hash: &str,
    password_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<(Uuid, Vec<Uuid>)>, StoreError> {
    db.note_write();
    bounded(async {
        on_db!(db, |pool| {
            let mut tx = pool.begin().await?;
            let spent: Option<(Uuid, String)> = sqlx::query_as(SPEND)
                .bind(now)
                .bind(hash)
                .bind(Purpose::ResetPassword.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            let Some((user, email_key)) = spent else {
                return Ok(None);
            };
            let changed = sqlx::query(
                "UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3 AND email_key = $4",
            )
            .bind(password_hash)
            .bind(now)
            .bind(user)
            .bind(&email_key)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed != 1 {
                // Sent to an old address: spend it anyway, change nothing.
                tx.commit().await?;
                return Ok(None);
            }
            let sessions: Vec<Uuid> = sqlx::query_scalar(
                "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL RETURNING id",
            )
            .bind(now)
            .bind(user)
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<_, StoreError>(Some((user, sessions)))
        })
    })
    .await
}

/// Spends a verification token and marks the address verified, if the
/// account still has the address the token was sent to.
pub async fn verify_email(
    db: &Db,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>, StoreError> {
    db.note_write();
    bounded(async {
        on_db!(db, |pool| {
            let mut tx = pool.begin().await?;
            let spent: Option<(Uuid, String)> = sqlx::query_as(SPEND)
                .bind(now)
                .bind(hash)
                .bind(Purpose::VerifyEmail.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            let Some((user, email_key)) = spent else {
                return Ok(None);
            };
            let verified = sqlx::query(
                "UPDATE users SET email_verified = TRUE, updated_at = $1 WHERE id = $2 AND email_key = $3",
            )
            .bind(now)
            .bind(user)
            .bind(&email_key)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok::<_, StoreError>((verified == 1).then_some(user))
        })
    })
    .await
}

/// Forgets tokens that expired more than a day ago.
pub async fn prune(db: &Db, now: DateTime<Utc>) -> Result<u64, StoreError> {
    db.note_write();
    bounded(async {
        let sql = "DELETE FROM account_tokens WHERE expires_at < $1";
        let n = on_db!(db, |pool| sqlx::query(sql)
            .bind(now - chrono::Duration::days(1))
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n)
    })
    .await
}
