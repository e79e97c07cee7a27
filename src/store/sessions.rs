//! Sessions and their refresh tokens. A session is one login; its refresh
//! tokens form a rotation family: each use marks the presented token rotated
//! and issues the next. Presenting a rotated token after the grace period
//! revokes the whole session. Refresh tokens are stored only as SHA-256.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::audit::{insert_event, NewEvent, Origin};
use super::{bounded, from_json_list, ids_since, on_db, to_json_list, Db, StoreError};

#[derive(Debug, Clone, sqlx::FromRow)]
struct SessionRow {
    id: Uuid,
    user_id: Uuid,
    created_at: DateTime<Utc>,
    last_used_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
    ip: Option<String>,
    user_agent: Option<String>,
    amr: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub id: Uuid,
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub amr: Vec<String>,
}

impl From<SessionRow> for Session {
    fn from(r: SessionRow) -> Self {
        Session {
            id: r.id,
            user_id: r.user_id,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            ip: r.ip,
            user_agent: r.user_agent,
            amr: from_json_list(&r.amr),
        }
    }
}

impl Session {
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

const COLUMNS: &str =
    "id, user_id, created_at, last_used_at, expires_at, revoked_at, ip, user_agent, amr";

pub struct NewSession<'a> {
    pub user_id: Uuid,
    pub origin: &'a Origin,
    pub amr: &'a [String],
    pub expires_at: DateTime<Utc>,
    pub refresh_hash: &'a str,
    pub max_sessions: u32,
    /// The audit event that opens the session (`login_succeeded`), written
    /// in the same transaction with detail `{session, amr}`.
    pub event: &'a str,
}

/// A user's live sessions, newest first; served by the partial index
/// `sessions_user_live` (migration 0004), so revoked sessions, which are
/// kept, cost nothing here however many pile up.
fn live_sql() -> String {
    format!(
        "SELECT {COLUMNS} FROM sessions WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC, id DESC"
    )
}

/// Revokes (at $1) the live sessions of user $2 beyond the newest $3, in
/// one statement, through the same partial index.
const EVICT_SQL: &str = "UPDATE sessions SET revoked_at = $1 \
     WHERE user_id = $2 AND revoked_at IS NULL AND expires_at > $1 AND id NOT IN \
     (SELECT id FROM sessions WHERE user_id = $2 AND revoked_at IS NULL AND expires_at > $1 \
      ORDER BY created_at DESC, id DESC LIMIT $3) \
     RETURNING id";

/// Creates a session with its first refresh token, revokes the oldest live
/// sessions beyond `max_sessions`, and writes the audit events (the
/// evictions', then `new.event`), all in one transaction: a login leaves
/// all of it or nothing. Returns the session and the ids evicted.
pub async fn create(
    db: &Db,
    new: NewSession<'_>,
    now: DateTime<Utc>,
) -> Result<(Session, Vec<Uuid>), StoreError> {
    db.note_write();
    let id = Uuid::now_v7();
    let amr = to_json_list(new.amr);
    let event = |kind, detail: serde_json::Value| NewEvent {
        kind,
        user_id: Some(new.user_id),
        actor_id: None,
        origin: new.origin,
        detail: detail.to_string(),
        at: now,
    };
    let opened = event(
        new.event,
        serde_json::json!({"session": id, "amr": new.amr}),
    );
    let evicted = bounded(async {
        on_db!(db, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, ip, user_agent, amr) \
                 VALUES ($1, $2, $3, $3, $4, $5, $6, $7)",
            )
            .bind(id)
            .bind(new.user_id)
            .bind(now)
            .bind(new.expires_at)
            .bind(new.origin.ip.as_deref())
            .bind(new.origin.user_agent.as_deref())
            .bind(&amr)
            .execute(&mut *tx)
            .await?;
            sqlx::query("INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES ($1, $2, $3)")
                .bind(new.refresh_hash)
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let evicted: Vec<Uuid> = sqlx::query_scalar(EVICT_SQL)
                .bind(now)
                .bind(new.user_id)
                .bind(i64::from(new.max_sessions))
                .fetch_all(&mut *tx)
                .await?;
            if !evicted.is_empty() {
                let gone = event("session_evicted", serde_json::json!({"sessions": evicted}));
                insert_event!(gone).execute(&mut *tx).await?;
            }
            insert_event!(opened).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(evicted)
        })
    })
    .await?;
    let session = Session {
        id,
        user_id: new.user_id,
        created_at: now,
        last_used_at: now,
        expires_at: new.expires_at,
        revoked_at: None,
        ip: new.origin.ip.clone(),
        user_agent: new.origin.user_agent.clone(),
        amr: new.amr.to_vec(),
    };
    Ok((session, evicted))
}

pub async fn get(db: &Db, id: Uuid) -> Result<Option<Session>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM sessions WHERE id = $1");
    bounded(async {
        let row = on_db!(db, |pool| sqlx::query_as::<_, SessionRow>(
            sqlx::AssertSqlSafe(sql.as_str())
        )
        .bind(id)
        .fetch_optional(pool)
        .await)?;
        Ok(row.map(Session::from))
    })
    .await
}

/// The session a refresh token (current or rotated) belongs to.
pub async fn of_refresh_token(db: &Db, token_hash: &str) -> Result<Option<Session>, StoreError> {
    let id: Option<Uuid> = bounded(async {
        Ok(on_db!(db, |pool| sqlx::query_scalar(
            "SELECT session_id FROM refresh_tokens WHERE token_hash = $1"
        )
        .bind(token_hash)
        .fetch_optional(pool)
        .await)?)
    })
    .await?;
    match id {
        Some(id) => get(db, id).await,
        None => Ok(None),
    }
}

/// What presenting a refresh token led to.
#[derive(Debug, Clone, PartialEq)]
pub enum Rotation {
    /// The token was current: it is now rotated and `new_hash` is current.
    Rotated(Session),
    /// Unknown token, or its session is revoked or expired.
    Invalid,
    /// Already rotated within the grace period (two tabs racing): refused,
    /// nothing revoked.
    RecentlyRotated,
    /// Already rotated before the grace period: the session is now revoked.
    Reused(Session),
}

/// Exchanges the refresh token `old_hash` for `new_hash`. Two concurrent
/// exchanges of the same token: exactly one is `Rotated`.
pub async fn rotate(
    db: &Db,
    old_hash: &str,
    new_hash: &str,
    now: DateTime<Utc>,
    reuse_grace: chrono::Duration,
) -> Result<Rotation, StoreError> {
    #[derive(sqlx::FromRow)]
    struct TokenRow {
        session_id: Uuid,
        rotated_at: Option<DateTime<Utc>>,
    }
    let token: Option<TokenRow> = bounded(async {
        Ok(on_db!(db, |pool| sqlx::query_as(
            "SELECT session_id, rotated_at FROM refresh_tokens WHERE token_hash = $1"
        )
        .bind(old_hash)
        .fetch_optional(pool)
        .await)?)
    })
    .await?;
    let Some(token) = token else {
        return Ok(Rotation::Invalid);
    };
    let Some(session) = get(db, token.session_id).await? else {
        return Ok(Rotation::Invalid);
    };
    if !session.is_live(now) {
        return Ok(Rotation::Invalid);
    }
    if let Some(rotated_at) = token.rotated_at {
        if now - rotated_at <= reuse_grace {
            return Ok(Rotation::RecentlyRotated);
        }
        revoke(db, session.id, now).await?;
        return Ok(Rotation::Reused(session));
    }
    db.note_write();
    let won = bounded(async {
        on_db!(db, |pool| {
            let mut tx = pool.begin().await?;
            let claimed = sqlx::query("UPDATE refresh_tokens SET rotated_at = $1 WHERE token_hash = $2 AND rotated_at IS NULL")
                .bind(now)
                .bind(old_hash)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if claimed != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            sqlx::query("INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES ($1, $2, $3)")
                .bind(new_hash)
                .bind(session.id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE sessions SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(session.id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, StoreError>(true)
        })
    })
    .await?;
    if won {
        Ok(Rotation::Rotated(Session {
            last_used_at: now,
            ..session
        }))
    } else {
        Ok(Rotation::RecentlyRotated)
    }
}

/// Revokes one session; false when it was already revoked or unknown.
pub async fn revoke(db: &Db, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
    db.note_write();
    bounded(async {
        let n = on_db!(db, |pool| sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL"
        )
        .bind(now)
        .bind(id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    })
    .await
}

/// Revokes every live session of `user_id` except `keep`; returns their ids.
pub async fn revoke_all(
    db: &Db,
    user_id: Uuid,
    keep: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<Vec<Uuid>, StoreError> {
    let ids: Vec<Uuid> = list_live(db, user_id, now)
        .await?
        .into_iter()
        .map(|s| s.id)
        .filter(|id| Some(*id) != keep)
        .collect();
    for id in &ids {
        revoke(db, *id, now).await?;
    }
    Ok(ids)
}

/// Live sessions of a user, newest first.
pub async fn list_live(
    db: &Db,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<Session>, StoreError> {
    let sql = live_sql();
    bounded(async {
        let rows = on_db!(db, |pool| sqlx::query_as::<_, SessionRow>(
            sqlx::AssertSqlSafe(sql.as_str())
        )
        .bind(user_id)
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .map(Session::from)
            .filter(|s| s.is_live(now))
            .collect())
    })
    .await
}

/// Ids of sessions revoked after `since`: what the in-memory revocation
/// set must hold after a restart (older ones' tokens have all expired).
pub async fn revoked_since(db: &Db, since: DateTime<Utc>) -> Result<Vec<Uuid>, StoreError> {
    ids_since(db, "SELECT id FROM sessions WHERE revoked_at > $1", since).await
}

/// Sessions deleted per statement by `prune`, so no delete holds the
/// database's write lock for long.
const PRUNE_BATCH: i64 = 1000;

/// Deletes sessions (with their refresh tokens) that ended, by revocation
/// or expiry, before `before`: nothing can use them any more, and no token
/// of theirs still verifies when `before` is a token lifetime ago. Returns
/// how many went.
pub async fn prune(db: &Db, before: DateTime<Utc>) -> Result<u64, StoreError> {
    db.note_write();
    const ENDED: [&str; 2] = [
        "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE revoked_at < $1 LIMIT $2)",
        "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE expires_at < $1 LIMIT $2)",
    ];
    let mut pruned = 0;
    for sql in ENDED {
        loop {
            let n = bounded(async {
                Ok(on_db!(db, |pool| sqlx::query(sql)
                    .bind(before)
                    .bind(PRUNE_BATCH)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected()))?)
            })
            .await?;
            pruned += n;
            if n < PRUNE_BATCH as u64 {
                break;
            }
        }
    }
    Ok(pruned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatabaseConfig;

    /// The live-session query and the login's eviction must not walk a
    /// user's revoked sessions: a login (max_sessions_per_user) ran them on
    /// every session the account ever had, and slowed down with each one.
    #[tokio::test]
    async fn live_sessions_are_read_through_the_partial_index() {
        let config = DatabaseConfig {
            url: "sqlite::memory:".into(),
            max_connections: 1,
            auto_migrate: true,
            sync_interval: std::time::Duration::ZERO,
        };
        let db = Db::connect(&config, std::path::Path::new("."))
            .await
            .unwrap();
        db.migrate().await.unwrap();
        let Db::Sqlite(pool, _) = &db else {
            unreachable!("sqlite::memory: is SQLite")
        };
        type Plan = Vec<(i64, i64, i64, String)>;
        let explain = |sql: &str| format!("EXPLAIN QUERY PLAN {sql}");
        let live: Plan = sqlx::query_as(sqlx::AssertSqlSafe(explain(&live_sql())))
            .bind(Uuid::nil())
            .fetch_all(pool)
            .await
            .unwrap();
        let evict: Plan = sqlx::query_as(sqlx::AssertSqlSafe(explain(EVICT_SQL)))
            .bind(Utc::now())
            .bind(Uuid::nil())
            .bind(10_i64)
            .fetch_all(pool)
            .await
            .unwrap();
        for (sql, plan) in [("live", live), ("evict", evict)] {
            let details: Vec<&str> = plan.iter().map(|row| row.3.as_str()).collect();
            let indexed = details
                .iter()
                .any(|d| d.contains("USING INDEX sessions_user_live"));
            let scans = details.iter().any(|d| d.starts_with("SCAN"));
            assert!(indexed && !scans, "{sql}: {details:?}");
        }
    }
}
