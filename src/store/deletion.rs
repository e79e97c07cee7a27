//! Account deletion: scheduling (which also revokes every session), cancel,
//! and the purge of accounts whose grace period is over. Purging deletes
//! the user row; sessions, refresh tokens, API keys, memberships, mailed
//! tokens and recovery codes go with it (ON DELETE CASCADE), as do orgs the
//! user was the only member of. Audit rows keep the bare id as a tombstone,
//! and `deleted_users` keeps it while the account's tokens could still live.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{bounded, ids_since, on_db, Db, StoreError};

/// Orgs (by name) that would be left with members but no owner.
const ORPHANED_ORGS: &str = "SELECT o.name FROM orgs o JOIN org_members me ON me.org_id = o.id \
     WHERE me.user_id = $1 AND me.role = 'owner' \
     AND NOT EXISTS (SELECT 1 FROM org_members x WHERE x.org_id = o.id AND x.user_id <> $1 AND x.role = 'owner') \
     AND EXISTS (SELECT 1 FROM org_members y WHERE y.org_id = o.id AND y.user_id <> $1) \
     ORDER BY o.name";

/// Orgs the user is the only member of.
const SOLE_MEMBER_ORGS: &str = "SELECT me.org_id FROM org_members me WHERE me.user_id = $1 \
     AND NOT EXISTS (SELECT 1 FROM org_members x WHERE x.org_id = me.org_id AND x.user_id <> $1)";

pub enum Scheduled {
    /// Scheduled (or already scheduled) for this time; these sessions were
    /// revoked.
    At(DateTime<Utc>, Vec<Uuid>),
    /// The user is the last owner of orgs that have other members.
    LastOwner(Vec<String>),
}

/// Schedules deletion at `at` (an earlier schedule stands) and revokes
/// every session, in one transaction.
pub async fn schedule(
    db: &Db,
    user: Uuid,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Scheduled, StoreError> {
    db.note_write();
    bounded(async {
        on_db!(db, |pool| {
            let mut tx = pool.begin().await?;
            let orphaned: Vec<String> = sqlx::query_scalar(ORPHANED_ORGS)
                .bind(user)
                .fetch_all(&mut *tx)
                .await?;
            if !orphaned.is_empty() {
                return Ok(Scheduled::LastOwner(orphaned));
            }
            let when: DateTime<Utc> = sqlx::query_scalar(
                "UPDATE users SET deletion_scheduled_for = COALESCE(deletion_scheduled_for, $1), \
                 updated_at = $2 WHERE id = $3 RETURNING deletion_scheduled_for",
            )
            .bind(at)
            .bind(now)
            .bind(user)
            .fetch_one(&mut *tx)
            .await?;
            let sessions: Vec<Uuid> = sqlx::query_scalar(
                "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL RETURNING id",
            )
            .bind(now)
            .bind(user)
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<_, StoreError>(Scheduled::At(when, sessions))
        })
    })
    .await
}

/// Cancels a scheduled deletion; false when none was scheduled.
pub async fn cancel(db: &Db, user: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
    db.note_write();
    bounded(async {
        let sql = "UPDATE users SET deletion_scheduled_for = NULL, updated_at = $1 \
                   WHERE id = $2 AND deletion_scheduled_for IS NOT NULL";
        let n = on_db!(db, |pool| sqlx::query(sql)
            .bind(now)
            .bind(user)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    })
    .await
}

/// Accounts whose deletion is due, oldest schedule first.
pub async fn due(db: &Db, now: DateTime<Utc>, limit: u32) -> Result<Vec<Uuid>, StoreError> {
    bounded(async {
        let sql = "SELECT id FROM users WHERE deletion_scheduled_for IS NOT NULL \
                   AND deletion_scheduled_for <= $1 ORDER BY deletion_scheduled_for LIMIT $2";
        let ids: Vec<Uuid> = on_db!(db, |pool| sqlx::query_scalar(sql)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await)?;
        Ok(ids)
    })
    .await
}

pub enum Purge {
    /// Deleted: the sessions and API keys (hex hashes) that went with it,
    /// for the in-memory caches.
    Done {
        sessions: Vec<Uuid>,
        key_hashes: Vec<String>,
    },
    /// Still the last owner of orgs with other members; kept.
    Blocked(Vec<String>),
    /// Cancelled or already purged in the meantime.
    NotDue,
}

/// Deletes one account whose deletion is due, in one transaction.
pub async fn purge(db: &Db, user: Uuid, now: DateTime<Utc>) -> Result<Purge, StoreError> {
    db.note_write();
    bounded(async {
        on_db!(db, |pool| {
            let mut tx = pool.begin().await?;
            let due: Option<Uuid> = sqlx::query_scalar(
                "SELECT id FROM users WHERE id = $1 AND deletion_scheduled_for IS NOT NULL \
                 AND deletion_scheduled_for <= $2",
            )
            .bind(user)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            if due.is_none() {
                return Ok(Purge::NotDue);
            }
            let orphaned: Vec<String> = sqlx::query_scalar(ORPHANED_ORGS)
                .bind(user)
                .fetch_all(&mut *tx)
                .await?;
            if !orphaned.is_empty() {
                return Ok(Purge::Blocked(orphaned));
            }
            let sole: Vec<Uuid> = sqlx::query_scalar(SOLE_MEMBER_ORGS)
                .bind(user)
                .fetch_all(&mut *tx)
                .await?;
            let mut key_hashes: Vec<String> =
                sqlx::query_scalar("SELECT key_hash FROM api_keys WHERE user_id = $1")
                    .bind(user)
                    .fetch_all(&mut *tx)
                    .await?;
            for org in &sole {
                let org_keys: Vec<String> =
                    sqlx::query_scalar("SELECT key_hash FROM api_keys WHERE org_id = $1")
                        .bind(org)
                        .fetch_all(&mut *tx)
                        .await?;
                key_hashes.extend(org_keys);
                sqlx::query("DELETE FROM orgs WHERE id = $1")
                    .bind(org)
                    .execute(&mut *tx)
                    .await?;
            }
            let sessions: Vec<Uuid> = sqlx::query_scalar(
                "SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL",
            )
            .bind(user)
            .fetch_all(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM users WHERE id = $1")
                .bind(user)
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO deleted_users (id, deleted_at) VALUES ($1, $2)")
                .bind(user)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            key_hashes.sort();
            key_hashes.dedup();
            Ok::<_, StoreError>(Purge::Done {
                sessions,
                key_hashes,
            })
        })
    })
    .await
}

/// Accounts purged after `since` (their tokens may still be unexpired).
pub async fn purged_since(db: &Db, since: DateTime<Utc>) -> Result<Vec<Uuid>, StoreError> {
    ids_since(
        db,
        "SELECT id FROM deleted_users WHERE deleted_at > $1",
        since,
    )
    .await
}

/// Forgets purged ids from before `before` (no token of theirs can live).
pub async fn forget_purged(db: &Db, before: DateTime<Utc>) -> Result<u64, StoreError> {
    db.note_write();
    bounded(async {
        let sql = "DELETE FROM deleted_users WHERE deleted_at < $1";
        let n = on_db!(db, |pool| sqlx::query(sql)
            .bind(before)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n)
    })
    .await
}
