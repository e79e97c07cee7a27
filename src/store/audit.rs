//! The audit log: security events with time, user, actor, IP and user
//! agent. Never secrets. Ids are UUIDv7, so id order is time order and the
//! id is the paging cursor.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{bounded, on_db, Db, StoreError};

/// Who did it and from where.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AuditEvent {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub user_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    #[serde(skip)]
    pub detail: String,
}

/// An event to write.
pub struct NewEvent<'a> {
    pub kind: &'a str,
    pub user_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    pub origin: &'a Origin,
    /// JSON.
    pub detail: String,
    pub at: DateTime<Utc>,
}

/// The bound insert of a `NewEvent`, for `record` and for writers that put
/// their event in their own transaction (`.execute(&mut *tx)`).
macro_rules! insert_event {
    ($event:expr) => {
        sqlx::query(
            "INSERT INTO audit_events (id, at, kind, user_id, actor_id, ip, user_agent, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(uuid::Uuid::now_v7())
        .bind($event.at)
        .bind($event.kind)
        .bind($event.user_id)
        .bind($event.actor_id)
        .bind($event.origin.ip.as_deref())
        .bind($event.origin.user_agent.as_deref())
        .bind(&$event.detail)
    };
}
pub(crate) use insert_event;

/// Writes an event. A failure is logged, never surfaced: the action it
/// describes already happened.
pub async fn record(
    db: &Db,
    kind: &str,
    user_id: Option<Uuid>,
    actor_id: Option<Uuid>,
    origin: &Origin,
    detail: serde_json::Value,
) {
    db.note_write();
    let event = NewEvent {
        kind,
        user_id,
        actor_id,
        origin,
        detail: detail.to_string(),
        at: Utc::now(),
    };
    let result = bounded(async {
        on_db!(db, |pool| insert_event!(event)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    })
    .await;
    if let Err(e) = result {
        tracing::error!(kind, error = %e, "audit event not written");
    }
}

/// Events newest first, before `cursor`, at most `limit`.
pub async fn list(
    db: &Db,
    limit: u32,
    cursor: Option<Uuid>,
) -> Result<Vec<AuditEvent>, StoreError> {
    bounded(async {
        Ok(on_db!(db, |pool| sqlx::query_as::<_, AuditEvent>(
            "SELECT id, at, kind, user_id, actor_id, ip, user_agent, detail FROM audit_events \
             WHERE id < $1 ORDER BY id DESC LIMIT $2"
        )
        .bind(cursor.unwrap_or(Uuid::max()))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await)?)
    })
    .await
}
