//! Sessions and their refresh tokens. A session is one login; its refresh
//! tokens form a rotation family: each use marks the presented token rotated
//! and issues the next. Presenting a rotated token after the grace period
//! revokes the whole session. Refresh tokens are stored only as SHA-256.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{bounded, from_json_list, on_db, to_json_list, Db, StoreError};

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
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub amr: &'a [String],
    pub expires_at: DateTime<Utc>,
    pub refresh_hash: &'a str,
    pub max_sessions: u32,
}

/// A user's live sessions, newest first; served by the partial index
/// `sessions_user_live` (migration 0004), so revoked sessions, which are
/// kept, cost nothing here however many pile up.
fn live_sql() -> String {
    format!(
        "SELECT {COLUMNS} FROM sessions WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC, id DESC"
    )
}

/// Creates a session with its first refresh token and revokes the oldest
/// live sessions beyond `max_sessions`. Returns the session and the ids
/// evicted, all in one transaction.
pub async fn create(
    db: &Db,
    new: NewSession<'_>,
    now: DateTime<Utc>,
) -> Result<(Session, Vec<Uuid>), StoreError> {
    let id = Uuid::now_v7();
    let amr = to_json_list(new.amr);
    let live_sql = live_sql();
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
            .bind(new.ip)
            .bind(new.user_agent)
            .bind(&amr)
            .execute(&mut *tx)
            .await?;
            sqlx::query("INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES ($1, $2, $3)")
                .bind(new.refresh_hash)
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let live: Vec<SessionRow> = sqlx::query_as(sqlx::AssertSqlSafe(live_sql.as_str()))
                .bind(new.user_id)
                .fetch_all(&mut *tx)
                .await?;
            let evicted: Vec<Uuid> = live
                .into_iter()
                .filter(|s| s.expires_at > now)
                .skip(new.max_sessions as usize)
                .map(|s| s.id)
                .collect();
            for old in &evicted {
                sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(old)
                    .execute(&mut *tx)
                    .await?;
            }
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
        ip: new.ip.map(String::from),
        user_agent: new.user_agent.map(String::from),
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
    bounded(async {
        let sql = "SELECT id FROM sessions WHERE revoked_at > $1";
        let ids: Vec<Uuid> = on_db!(db, |pool| sqlx::query_scalar(sql)
            .bind(since)
            .fetch_all(pool)
            .await)?;
        Ok(ids)
    })
    .await
}

/// Sessions deleted per statement by `prune`, so no delete holds the
/// database's write lock for long.
const PRUNE_BATCH: i64 = 1000;

/// Deletes sessions (with their refresh tokens) that ended, by revocation
/// or expiry, before `before`: nothing can use them any more, and no token
/// of theirs still verifies when `before` is a token lifetime ago. Returns
/// how many went.
pub async fn prune(db: &Db, before: DateTime<Utc>) -> Result<u64, StoreError> {
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

    /// The live-session query must not walk a user's revoked sessions: a
    /// login (max_sessions_per_user) ran it on every session the account
    /// ever had, and slowed down with each one.
    #[tokio::test]
    async fn live_sessions_are_read_through_the_partial_index() {
        let config = DatabaseConfig {
            url: "sqlite::memory:".into(),
            max_connections: 1,
            auto_migrate: true,
        };
        let db = Db::connect(&config, std::path::Path::new("."))
            .await
            .unwrap();
        db.migrate().await.unwrap();
        let Db::Sqlite(pool) = &db else {
            unreachable!("sqlite::memory: is SQLite")
        };
        let explain = format!("EXPLAIN QUERY PLAN {}", live_sql());
        let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(explain))
            .bind(Uuid::nil())
            .fetch_all(pool)
            .await
            .unwrap();
        let details: Vec<&str> = plan.iter().map(|row| row.3.as_str()).collect();
        assert!(
            details
                .iter()
                .any(|d| d.contains("USING INDEX sessions_user_live")),
            "plan: {details:?}"
        );
    }
}
