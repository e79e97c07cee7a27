//! API keys: stored only as the SHA-256 of the key (hex) plus a short
//! prefix to recognise it; looked up by that hash together with what the
//! owner may do now (active flag, global roles, role in the key's org).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{bounded, from_json_list, on_db, to_json_list, Db, StoreError};
use crate::principal::OrgRole;

#[derive(Debug, Clone, sqlx::FromRow)]
struct KeyRow {
    id: Uuid,
    user_id: Uuid,
    prefix: String,
    name: String,
    scopes: String,
    org_id: Option<Uuid>,
    client_id: Option<Uuid>,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
}

/// A key as its owner sees it (never the secret).
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: Uuid,
    pub user_id: Uuid,
    pub prefix: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub org_id: Option<Uuid>,
    pub client_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<KeyRow> for ApiKey {
    fn from(r: KeyRow) -> Self {
        ApiKey {
            id: r.id,
            user_id: r.user_id,
            prefix: r.prefix,
            name: r.name,
            scopes: from_json_list(&r.scopes),
            org_id: r.org_id,
            client_id: r.client_id,
            created_at: r.created_at,
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
        }
    }
}

const COLUMNS: &str =
    "id, user_id, prefix, name, scopes, org_id, client_id, created_at, expires_at, last_used_at";

pub struct NewApiKey<'a> {
    pub user_id: Uuid,
    pub hash: &'a str,
    pub prefix: &'a str,
    pub name: &'a str,
    pub scopes: &'a [String],
    pub org_id: Option<Uuid>,
    pub client_id: Option<Uuid>,
    pub expires_at: Option<DateTime<Utc>>,
}

const INSERT: &str = "INSERT INTO api_keys (id, user_id, key_hash, prefix, name, scopes, org_id, client_id, created_at, expires_at) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

pub async fn create(db: &Db, new: NewApiKey<'_>, now: DateTime<Utc>) -> Result<ApiKey, StoreError> {
    db.note_write();
    let id = Uuid::now_v7();
    let scopes = to_json_list(new.scopes);
    bounded(async {
        on_db!(db, |pool| sqlx::query(INSERT)
            .bind(id)
            .bind(new.user_id)
            .bind(new.hash)
            .bind(new.prefix)
            .bind(new.name)
            .bind(&scopes)
            .bind(new.org_id)
            .bind(new.client_id)
            .bind(now)
            .bind(new.expires_at)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    })
    .await?;
    Ok(ApiKey {
        id,
        user_id: new.user_id,
        prefix: new.prefix.to_string(),
        name: new.name.to_string(),
        scopes: new.scopes.to_vec(),
        org_id: new.org_id,
        client_id: new.client_id,
        created_at: now,
        expires_at: new.expires_at,
        last_used_at: None,
    })
}

/// The owner's live (unrevoked) keys in creation order after `cursor`.
pub async fn list(
    db: &Db,
    user_id: Uuid,
    limit: u32,
    cursor: Option<Uuid>,
) -> Result<Vec<ApiKey>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM api_keys WHERE user_id = $1 AND revoked_at IS NULL AND id > $2 ORDER BY id LIMIT $3"
    );
    bounded(async {
        let rows = on_db!(db, |pool| sqlx::query_as::<_, KeyRow>(sqlx::AssertSqlSafe(
            sql.as_str()
        ))
        .bind(user_id)
        .bind(cursor.unwrap_or(Uuid::nil()))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(ApiKey::from).collect())
    })
    .await
}

/// Revokes the owner's key `id`; returns its hash, or `None` when the owner
/// has no such live key.
pub async fn revoke(
    db: &Db,
    user_id: Uuid,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<String>, StoreError> {
    db.note_write();
    bounded(async {
        on_db!(db, |pool| {
            let mut tx = pool.begin().await?;
            let hash: Option<String> = sqlx::query_scalar(
                "SELECT key_hash FROM api_keys WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
            )
            .bind(id)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
            if hash.is_some() {
                sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok::<_, StoreError>(hash)
        })
    })
    .await
}

/// Replaces the owner's key `id` by a new one with the same name, scopes,
/// org, client id and expiry, in one transaction. Returns the old hash and
/// the new key, or `None` when the owner has no such live key.
pub async fn rotate(
    db: &Db,
    user_id: Uuid,
    id: Uuid,
    hash: &str,
    prefix: &str,
    now: DateTime<Utc>,
) -> Result<Option<(String, ApiKey)>, StoreError> {
    db.note_write();
    let select = format!(
        "SELECT {COLUMNS} FROM api_keys WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL"
    );
    let new_id = Uuid::now_v7();
    bounded(async {
        on_db!(db, |pool| {
            let mut tx = pool.begin().await?;
            let old: Option<KeyRow> = sqlx::query_as(sqlx::AssertSqlSafe(select.as_str()))
                .bind(id)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(old) = old else {
                return Ok(None);
            };
            let old_hash: String = sqlx::query_scalar(
                "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 RETURNING key_hash",
            )
            .bind(now)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(INSERT)
                .bind(new_id)
                .bind(user_id)
                .bind(hash)
                .bind(prefix)
                .bind(&old.name)
                .bind(&old.scopes)
                .bind(old.org_id)
                .bind(old.client_id)
                .bind(now)
                .bind(old.expires_at)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            let mut key = ApiKey::from(old);
            key.id = new_id;
            key.prefix = prefix.to_string();
            key.created_at = now;
            key.last_used_at = None;
            Ok::<_, StoreError>(Some((old_hash, key)))
        })
    })
    .await
}

/// What the hot path needs to decide about a presented key.
#[derive(Debug, Clone, sqlx::FromRow)]
struct RecordRow {
    id: Uuid,
    user_id: Uuid,
    scopes: String,
    org_id: Option<Uuid>,
    client_id: Option<Uuid>,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    email: String,
    roles: String,
    is_active: bool,
    is_superuser: bool,
    deletion_scheduled_for: Option<DateTime<Utc>>,
    org_role: Option<String>,
}

#[derive(Debug, Clone)]
pub struct KeyRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub scopes: Vec<String>,
    pub org_id: Option<Uuid>,
    pub client_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked: bool,
    pub email: String,
    pub roles: Vec<String>,
    pub owner_active: bool,
    pub superuser: bool,
    /// The owner's current role in `org_id`; `None` when not a member.
    pub org_role: Option<OrgRole>,
}

/// Finds a key by the hex SHA-256 of the presented key.
pub async fn lookup(db: &Db, hash: &str) -> Result<Option<KeyRecord>, StoreError> {
    let sql = "SELECT k.id, k.user_id, k.scopes, k.org_id, k.client_id, k.created_at, k.expires_at, k.revoked_at, \
               u.email, u.roles, u.is_active, u.is_superuser, u.deletion_scheduled_for, m.role AS org_role \
               FROM api_keys k JOIN users u ON u.id = k.user_id \
               LEFT JOIN org_members m ON m.org_id = k.org_id AND m.user_id = k.user_id \
               WHERE k.key_hash = $1";
    bounded(async {
        let row = on_db!(db, |pool| sqlx::query_as::<_, RecordRow>(sql)
            .bind(hash)
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(|r| KeyRecord {
            id: r.id,
            user_id: r.user_id,
            scopes: from_json_list(&r.scopes),
            org_id: r.org_id,
            client_id: r.client_id,
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked: r.revoked_at.is_some(),
            email: r.email,
            roles: from_json_list(&r.roles),
            // An account waiting for deletion has no working keys.
            owner_active: r.is_active && r.deletion_scheduled_for.is_none(),
            superuser: r.is_superuser,
            org_role: r.org_role.as_deref().and_then(OrgRole::parse),
        }))
    })
    .await
}

/// Records last use (seconds since the epoch) for many keys at once.
pub async fn record_usage(db: &Db, uses: &[(Uuid, i64)]) -> Result<(), StoreError> {
    db.note_write();
    let stamped: Vec<(Uuid, DateTime<Utc>)> = uses
        .iter()
        .filter_map(|(id, secs)| DateTime::from_timestamp(*secs, 0).map(|t| (*id, t)))
        .collect();
    bounded(async {
        on_db!(db, |pool| {
            let mut tx = pool.begin().await?;
            for (id, at) in &stamped {
                sqlx::query(
                    "UPDATE api_keys SET last_used_at = $1 WHERE id = $2 \
                     AND (last_used_at IS NULL OR last_used_at < $1)",
                )
                .bind(at)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok::<_, StoreError>(())
        })
    })
    .await
}
