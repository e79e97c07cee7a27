//! Users: created by registration or `portcullis user create`, found by
//! email (case-insensitive) or username.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{bounded, from_json_list, on_db, to_json_list, Db, StoreError};

#[derive(Debug, Clone, sqlx::FromRow)]
struct UserRow {
    id: Uuid,
    email: String,
    username: Option<String>,
    password_hash: String,
    roles: String,
    is_active: bool,
    is_superuser: bool,
    email_verified: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    totp_secret: Option<String>,
    totp_pending: Option<String>,
    totp_last_step: Option<i64>,
    deletion_scheduled_for: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub username: Option<String>,
    pub password_hash: String,
    pub roles: Vec<String>,
    pub is_active: bool,
    pub is_superuser: bool,
    pub email_verified: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Sealed TOTP secret; `Some` means TOTP is on.
    pub totp_secret: Option<String>,
    /// Sealed secret from setup, waiting for its first code.
    pub totp_pending: Option<String>,
    pub totp_last_step: Option<i64>,
    pub deletion_scheduled_for: Option<DateTime<Utc>>,
}

impl User {
    pub fn mfa_enabled(&self) -> bool {
        self.totp_secret.is_some()
    }
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: r.id,
            email: r.email,
            username: r.username,
            password_hash: r.password_hash,
            roles: from_json_list(&r.roles),
            is_active: r.is_active,
            is_superuser: r.is_superuser,
            email_verified: r.email_verified,
            created_at: r.created_at,
            updated_at: r.updated_at,
            totp_secret: r.totp_secret,
            totp_pending: r.totp_pending,
            totp_last_step: r.totp_last_step,
            deletion_scheduled_for: r.deletion_scheduled_for,
        }
    }
}

pub struct NewUser<'a> {
    pub email: &'a str,
    pub username: Option<&'a str>,
    pub password_hash: &'a str,
    pub superuser: bool,
    /// Operators vouch for the addresses of users they create.
    pub email_verified: bool,
}

const COLUMNS: &str = "id, email, username, password_hash, roles, is_active, is_superuser, \
     email_verified, created_at, updated_at, totp_secret, totp_pending, totp_last_step, \
     deletion_scheduled_for";

/// The key emails are unique by.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

pub fn username_key(username: &str) -> String {
    username.to_ascii_lowercase()
}

pub async fn create(db: &Db, new: NewUser<'_>, now: DateTime<Utc>) -> Result<User, StoreError> {
    db.note_write();
    let id = Uuid::now_v7();
    let roles = to_json_list(&["user".to_string()]);
    bounded(async {
        let sql = "INSERT INTO users (id, email, email_key, username, username_key, password_hash, roles, \
                   is_active, is_superuser, email_verified, created_at, updated_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, TRUE, $8, $10, $9, $9)";
        on_db!(db, |pool| sqlx::query(sql)
            .bind(id)
            .bind(new.email)
            .bind(email_key(new.email))
            .bind(new.username)
            .bind(new.username.map(username_key))
            .bind(new.password_hash)
            .bind(&roles)
            .bind(new.superuser)
            .bind(now)
            .bind(new.email_verified)
            .execute(pool)
            .await.map(|r| r.rows_affected()))?;
        Ok(())
    })
    .await?;
    by_id(db, id)
        .await?
        .ok_or_else(|| StoreError::Other("user vanished after insert".into()))
}

pub async fn by_id(db: &Db, id: Uuid) -> Result<Option<User>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
    bounded(async {
        let row = on_db!(db, |pool| sqlx::query_as::<_, UserRow>(
            sqlx::AssertSqlSafe(sql.as_str())
        )
        .bind(id)
        .fetch_optional(pool)
        .await)?;
        Ok(row.map(User::from))
    })
    .await
}

pub async fn by_email(db: &Db, email: &str) -> Result<Option<User>, StoreError> {
    by_key(db, "email_key", &email_key(email)).await
}

/// Finds a user by email (when `login` contains `@`) or username.
pub async fn by_login(db: &Db, login: &str) -> Result<Option<User>, StoreError> {
    if login.contains('@') {
        by_email(db, login).await
    } else {
        by_key(db, "username_key", &username_key(login)).await
    }
}

/// The user whose unique `column` (one of ours, never input) is `key`.
async fn by_key(db: &Db, column: &str, key: &str) -> Result<Option<User>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE {column} = $1");
    bounded(async {
        let row = on_db!(db, |pool| sqlx::query_as::<_, UserRow>(
            sqlx::AssertSqlSafe(sql.as_str())
        )
        .bind(key)
        .fetch_optional(pool)
        .await)?;
        Ok(row.map(User::from))
    })
    .await
}

pub async fn set_password(
    db: &Db,
    id: Uuid,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    db.note_write();
    bounded(async {
        let sql = "UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3";
        on_db!(db, |pool| sqlx::query(sql)
            .bind(hash)
            .bind(now)
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    })
    .await
}

/// What a user may change on their own account; `None` keeps a field.
#[derive(Debug, Default)]
pub struct ProfileChange<'a> {
    /// `Some(None)` clears the username.
    pub username: Option<Option<&'a str>>,
    /// A new address: unverified until a mail to it is answered.
    pub email: Option<&'a str>,
}

/// Applies a profile change in one statement (all or nothing, e.g. when
/// the new email or username is taken).
pub async fn update_profile(
    db: &Db,
    id: Uuid,
    change: &ProfileChange<'_>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    db.note_write();
    let username = change.username.flatten();
    bounded(async {
        let sql = "UPDATE users SET \
                   username = CASE WHEN $1 THEN $2 ELSE username END, \
                   username_key = CASE WHEN $1 THEN $3 ELSE username_key END, \
                   email = CASE WHEN $4 THEN $5 ELSE email END, \
                   email_key = CASE WHEN $4 THEN $6 ELSE email_key END, \
                   email_verified = CASE WHEN $4 THEN FALSE ELSE email_verified END, \
                   updated_at = $7 WHERE id = $8";
        on_db!(db, |pool| sqlx::query(sql)
            .bind(change.username.is_some())
            .bind(username)
            .bind(username.map(username_key))
            .bind(change.email.is_some())
            .bind(change.email.unwrap_or_default())
            .bind(change.email.map(email_key).unwrap_or_default())
            .bind(now)
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    })
    .await
}

/// What an admin may change on a user.
#[derive(Debug, Default)]
pub struct AdminChange {
    pub is_active: Option<bool>,
    pub is_superuser: Option<bool>,
    pub roles: Option<Vec<String>>,
}

/// Takes (PostgreSQL) the transaction-scoped lock that serializes changes
/// which may remove a superuser: without it two admins demoting each other
/// at once would each still see the other and leave none. SQLite
/// serializes writers by itself.
const LOCK_SUPERUSERS_PG: &str = "SELECT pg_advisory_xact_lock(7003514612437232236)";

/// Applies `change` unless it would leave no active superuser: the update
/// is conditional on another active superuser existing whenever it takes
/// an active superuser's rights away (`StoreError::LastSuperuser`, nothing
/// changed). `None` when there is no such user.
pub async fn admin_update(
    db: &Db,
    id: Uuid,
    change: &AdminChange,
    now: DateTime<Utc>,
) -> Result<Option<User>, StoreError> {
    db.note_write();
    let roles = change.roles.as_ref().map(|r| to_json_list(r));
    let sql = "UPDATE users SET is_active = COALESCE($1, is_active), \
               is_superuser = COALESCE($2, is_superuser), roles = COALESCE($3, roles), updated_at = $4 \
               WHERE id = $5 AND NOT (is_active AND is_superuser \
               AND NOT (COALESCE($1, is_active) AND COALESCE($2, is_superuser)) \
               AND NOT EXISTS (SELECT 1 FROM users o WHERE o.id <> $5 AND o.is_active AND o.is_superuser))";
    let updated = bounded(async {
        on_db!(db, |pool| {
            let mut tx = pool.begin().await?;
            if matches!(db, Db::Postgres(_)) {
                sqlx::query(LOCK_SUPERUSERS_PG).execute(&mut *tx).await?;
            }
            let n = sqlx::query(sql)
                .bind(change.is_active)
                .bind(change.is_superuser)
                .bind(roles.as_deref())
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok::<_, StoreError>(n > 0)
        })
    })
    .await?;
    match by_id(db, id).await? {
        Some(_) if !updated => Err(StoreError::LastSuperuser),
        user => Ok(user),
    }
}

/// Users in id (creation) order after `cursor`, at most `limit`.
pub async fn list(db: &Db, limit: u32, cursor: Option<Uuid>) -> Result<Vec<User>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id > $1 ORDER BY id LIMIT $2");
    bounded(async {
        let rows = on_db!(db, |pool| sqlx::query_as::<_, UserRow>(
            sqlx::AssertSqlSafe(sql.as_str())
        )
        .bind(cursor.unwrap_or(Uuid::nil()))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(User::from).collect())
    })
    .await
}
