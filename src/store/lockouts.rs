//! Failure counters with lockout (`[accounts.lockout]`), keyed per account
//! (`account:<id>`, or `account:<email>` for identifiers nobody has). Never
//! per client IP: users behind one NAT must not lock each other out (the
//! per-IP control is the login throttle). Kept in the database so every
//! instance sees the same lockout and a restart forgets nothing.

use chrono::{DateTime, Utc};

use super::{bounded, on_db, Db, StoreError};

pub use crate::config::LockoutPolicy as Policy;

/// The lockout state of one key.
pub struct Status {
    /// The lock end, if the key is locked now.
    pub locked_until: Option<DateTime<Utc>>,
    /// Whether failures are recorded (else there is nothing to clear).
    pub recorded: bool,
}

pub async fn status(db: &Db, key: &str, now: DateTime<Utc>) -> Result<Status, StoreError> {
    let row: Option<(Option<DateTime<Utc>>,)> = bounded(async {
        Ok(on_db!(db, |pool| sqlx::query_as(
            "SELECT locked_until FROM lockouts WHERE key = $1"
        )
        .bind(key)
        .fetch_optional(pool)
        .await)?)
    })
    .await?;
    Ok(Status {
        locked_until: row.and_then(|(u,)| u).filter(|u| *u > now),
        recorded: row.is_some(),
    })
}

/// Counts a failure in one statement (concurrent failures all count);
/// returns the lock end when this failure locks `key`. The failure that
/// reaches `max_failures` locks: `max_failures` failures are answered as
/// such, the attempts after them are refused until the lock ends. A window
/// that is over, or a lock that has ended, starts the count again.
pub async fn record_failure(
    db: &Db,
    key: &str,
    policy: Policy,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    db.note_write();
    let max = i32::try_from(policy.max_failures).unwrap_or(i32::MAX);
    let until = now + policy.duration;
    const FRESH: &str = "(lockouts.window_started_at < $3 \
                          OR (lockouts.locked_until IS NOT NULL AND lockouts.locked_until <= $2))";
    let sql = format!(
        "INSERT INTO lockouts (key, failures, window_started_at, locked_until) \
         VALUES ($1, 1, $2, CASE WHEN 1 >= $4 THEN $5 ELSE NULL END) \
         ON CONFLICT (key) DO UPDATE SET \
         failures = CASE WHEN {FRESH} THEN 1 ELSE lockouts.failures + 1 END, \
         window_started_at = CASE WHEN {FRESH} THEN $2 ELSE lockouts.window_started_at END, \
         locked_until = CASE WHEN (CASE WHEN {FRESH} THEN 1 ELSE lockouts.failures + 1 END) >= $4 \
         THEN $5 ELSE NULL END \
         RETURNING locked_until"
    );
    let locked: (Option<DateTime<Utc>>,) = bounded(async {
        Ok(on_db!(db, |pool| sqlx::query_as(sqlx::AssertSqlSafe(
            sql.as_str()
        ))
        .bind(key)
        .bind(now)
        .bind(now - policy.window)
        .bind(max)
        .bind(until)
        .fetch_one(pool)
        .await)?)
    })
    .await?;
    Ok(locked.0)
}

/// Forgets the failures of `key` (after a successful login).
pub async fn clear(db: &Db, key: &str) -> Result<(), StoreError> {
    db.note_write();
    bounded(async {
        on_db!(db, |pool| sqlx::query(
            "DELETE FROM lockouts WHERE key = $1"
        )
        .bind(key)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    })
    .await
}
