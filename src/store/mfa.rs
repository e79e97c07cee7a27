//! TOTP state and recovery codes. Every change that consumes something (a
//! time step, a recovery code, the pending secret) is one conditional
//! write, so two concurrent logins cannot both use the same code.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{bounded, on_db, Db, StoreError};

/// Stores the sealed secret from setup; a later setup replaces it.
pub async fn set_pending(db: &Db, user: Uuid, sealed: &str) -> Result<(), StoreError> {
    db.note_write();
    bounded(async {
        let sql = "UPDATE users SET totp_pending = $1 WHERE id = $2";
        on_db!(db, |pool| sqlx::query(sql)
            .bind(sealed)
            .bind(user)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    })
    .await
}

/// Turns the pending secret `sealed` on, records `step` as used and
/// replaces the recovery codes. False when the pending secret changed in
/// the meantime or TOTP is already on.
pub async fn enable(
    db: &Db,
    user: Uuid,
    sealed: &str,
    step: i64,
    code_hashes: &[String],
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    db.note_write();
    bounded(async {
        on_db!(db, |pool| {
            let mut tx = pool.begin().await?;
            let switched = sqlx::query(
                "UPDATE users SET totp_secret = totp_pending, totp_pending = NULL, \
                 totp_last_step = $1, updated_at = $2 \
                 WHERE id = $3 AND totp_pending = $4 AND totp_secret IS NULL",
            )
            .bind(step)
            .bind(now)
            .bind(user)
            .bind(sealed)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if switched != 1 {
                return Ok(false);
            }
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                .bind(user)
                .execute(&mut *tx)
                .await?;
            for hash in code_hashes {
                sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                    .bind(user)
                    .bind(hash)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok::<_, StoreError>(true)
        })
    })
    .await
}

/// Turns TOTP off and forgets the recovery codes.
pub async fn disable(db: &Db, user: Uuid, now: DateTime<Utc>) -> Result<(), StoreError> {
    db.note_write();
    bounded(async {
        on_db!(db, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "UPDATE users SET totp_secret = NULL, totp_pending = NULL, totp_last_step = NULL, \
                 updated_at = $1 WHERE id = $2",
            )
            .bind(now)
            .bind(user)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                .bind(user)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, StoreError>(())
        })
    })
    .await
}

/// Records `step` as used when it is newer than the last used one. False
/// when another request used this step (or a newer one) first.
pub async fn use_step(db: &Db, user: Uuid, step: i64) -> Result<bool, StoreError> {
    db.note_write();
    bounded(async {
        let sql = "UPDATE users SET totp_last_step = $1 \
                   WHERE id = $2 AND totp_secret IS NOT NULL \
                   AND (totp_last_step IS NULL OR totp_last_step < $1)";
        let n = on_db!(db, |pool| sqlx::query(sql)
            .bind(step)
            .bind(user)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    })
    .await
}

/// Spends one recovery code. False when it is unknown or already spent.
pub async fn use_recovery_code(
    db: &Db,
    user: Uuid,
    code_hash: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    db.note_write();
    bounded(async {
        let sql = "UPDATE recovery_codes SET used_at = $1 \
                   WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL";
        let n = on_db!(db, |pool| sqlx::query(sql)
            .bind(now)
            .bind(user)
            .bind(code_hash)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    })
    .await
}

/// Recovery codes not yet spent.
pub async fn recovery_codes_left(db: &Db, user: Uuid) -> Result<i64, StoreError> {
    bounded(async {
        let sql = "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL";
        let n: i64 = on_db!(db, |pool| sqlx::query_scalar(sql)
            .bind(user)
            .fetch_one(pool)
            .await)?;
        Ok(n)
    })
    .await
}
