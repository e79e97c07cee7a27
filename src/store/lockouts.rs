//! Failure counters with lockout (`[accounts.lockout]`), keyed per account
//! (`account:<id>`) and per client IP (`ip:<addr>`). Kept in the database so
//! every instance sees the same lockout and a restart forgets nothing.

use chrono::{DateTime, Duration, Utc};

use super::{bounded, on_db, Db, StoreError};

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub max_failures: u32,
    pub window: Duration,
    pub duration: Duration,
}

#[derive(sqlx::FromRow)]
struct Row {
    failures: i32,
    window_started_at: DateTime<Utc>,
    locked_until: Option<DateTime<Utc>>,
}

async fn load(db: &Db, key: &str) -> Result<Option<Row>, StoreError> {
    bounded(async {
        Ok(on_db!(db, |pool| sqlx::query_as::<_, Row>(
            "SELECT failures, window_started_at, locked_until FROM lockouts WHERE key = $1"
        )
        .bind(key)
        .fetch_optional(pool)
        .await)?)
    })
    .await
}

/// The lockout state of several keys, read in one query.
pub struct Status {
    /// The latest lock end among the keys, if any is locked now.
    pub locked_until: Option<DateTime<Utc>>,
    /// Keys that have failures recorded (the others need no clearing).
    pub recorded: Vec<String>,
}

pub async fn status(db: &Db, keys: [&str; 2], now: DateTime<Utc>) -> Result<Status, StoreError> {
    #[derive(sqlx::FromRow)]
    struct KeyRow {
        key: String,
        locked_until: Option<DateTime<Utc>>,
    }
    let rows: Vec<KeyRow> = bounded(async {
        Ok(on_db!(db, |pool| sqlx::query_as::<_, KeyRow>(
            "SELECT key, locked_until FROM lockouts WHERE key = $1 OR key = $2"
        )
        .bind(keys[0])
        .bind(keys[1])
        .fetch_all(pool)
        .await)?)
    })
    .await?;
    Ok(Status {
        locked_until: rows
            .iter()
            .filter_map(|r| r.locked_until)
            .filter(|u| *u > now)
            .max(),
        recorded: rows.into_iter().map(|r| r.key).collect(),
    })
}

/// Counts a failure; returns the lock end when this failure locks `key`.
pub async fn record_failure(
    db: &Db,
    key: &str,
    policy: Policy,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let current = load(db, key).await?;
    let (failures, started) = match current {
        Some(r)
            if now - r.window_started_at <= policy.window
                && r.locked_until.is_none_or(|u| u > now) =>
        {
            (r.failures.saturating_add(1), r.window_started_at)
        }
        _ => (1, now),
    };
    let locked_until = (failures as u32 >= policy.max_failures).then(|| now + policy.duration);
    bounded(async {
        on_db!(db, |pool| sqlx::query(
            "INSERT INTO lockouts (key, failures, window_started_at, locked_until) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (key) DO UPDATE SET failures = $2, window_started_at = $3, locked_until = $4"
        )
        .bind(key)
        .bind(failures)
        .bind(started)
        .bind(locked_until)
        .execute(pool)
        .await.map(|r| r.rows_affected()))?;
        Ok(())
    })
    .await?;
    Ok(locked_until)
}

/// Forgets the failures of `key` (after a successful login).
pub async fn clear(db: &Db, key: &str) -> Result<(), StoreError> {
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
