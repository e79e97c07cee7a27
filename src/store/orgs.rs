//! Organizations and their members. Membership changes that could leave an
//! org without an owner run in a transaction that first locks the org row
//! (an `UPDATE` of it, which both SQLite and PostgreSQL serialize), so two
//! owners demoting each other at once cannot both succeed.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{bounded, on_db, Db, StoreError};
use crate::principal::OrgRole;

#[derive(Debug, Clone, sqlx::FromRow)]
struct OrgRow {
    id: Uuid,
    name: String,
    created_at: DateTime<Utc>,
    role: String,
}

/// An org as one of its members sees it.
#[derive(Debug, Clone)]
pub struct Membership {
    pub org_id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub role: OrgRole,
}

impl From<OrgRow> for Option<Membership> {
    fn from(r: OrgRow) -> Self {
        Some(Membership {
            org_id: r.id,
            name: r.name,
            created_at: r.created_at,
            role: OrgRole::parse(&r.role)?,
        })
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct MemberRow {
    user_id: Uuid,
    email: String,
    username: Option<String>,
    role: String,
    created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Member {
    pub user_id: Uuid,
    pub email: String,
    pub username: Option<String>,
    pub role: OrgRole,
    pub joined_at: DateTime<Utc>,
}

impl From<MemberRow> for Option<Member> {
    fn from(r: MemberRow) -> Self {
        Some(Member {
            user_id: r.user_id,
            email: r.email,
            username: r.username,
            role: OrgRole::parse(&r.role)?,
            joined_at: r.created_at,
        })
    }
}

const MEMBER_COLUMNS: &str =
    "m.user_id, u.email, u.username, m.role, m.created_at FROM org_members m JOIN users u ON u.id = m.user_id";

/// Creates an org with `owner` as its first owner.
pub async fn create(
    db: &Db,
    name: &str,
    owner: Uuid,
    now: DateTime<Utc>,
) -> Result<Membership, StoreError> {
    db.note_write();
    let id = Uuid::now_v7();
    bounded(async {
        on_db!(db, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(name)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO org_members (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(id)
            .bind(owner)
            .bind(OrgRole::Owner.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<_, StoreError>(())
        })
    })
    .await?;
    Ok(Membership {
        org_id: id,
        name: name.to_string(),
        created_at: now,
        role: OrgRole::Owner,
    })
}

/// Every org `user_id` belongs to, oldest first.
pub async fn memberships(db: &Db, user_id: Uuid) -> Result<Vec<Membership>, StoreError> {
    let sql = "SELECT o.id, o.name, o.created_at, m.role FROM org_members m JOIN orgs o ON o.id = m.org_id \
               WHERE m.user_id = $1 ORDER BY o.id";
    bounded(async {
        let rows = on_db!(db, |pool| sqlx::query_as::<_, OrgRow>(sql)
            .bind(user_id)
            .fetch_all(pool)
            .await)?;
        Ok(rows.into_iter().filter_map(Option::from).collect())
    })
    .await
}

/// `user_id`'s membership of `org_id`, if any.
pub async fn membership(
    db: &Db,
    org_id: Uuid,
    user_id: Uuid,
) -> Result<Option<Membership>, StoreError> {
    let sql = "SELECT o.id, o.name, o.created_at, m.role FROM org_members m JOIN orgs o ON o.id = m.org_id \
               WHERE m.org_id = $1 AND m.user_id = $2";
    bounded(async {
        let row = on_db!(db, |pool| sqlx::query_as::<_, OrgRow>(sql)
            .bind(org_id)
            .bind(user_id)
            .fetch_optional(pool)
            .await)?;
        Ok(row.and_then(Option::from))
    })
    .await
}

/// Members in user-id order after `cursor`, at most `limit`.
pub async fn members(
    db: &Db,
    org_id: Uuid,
    limit: u32,
    cursor: Option<Uuid>,
) -> Result<Vec<Member>, StoreError> {
    let sql = format!(
        "SELECT {MEMBER_COLUMNS} WHERE m.org_id = $1 AND m.user_id > $2 ORDER BY m.user_id LIMIT $3"
    );
    bounded(async {
        let rows = on_db!(db, |pool| sqlx::query_as::<_, MemberRow>(
            sqlx::AssertSqlSafe(sql.as_str())
        )
        .bind(org_id)
        .bind(cursor.unwrap_or(Uuid::nil()))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().filter_map(Option::from).collect())
    })
    .await
}

pub async fn member(db: &Db, org_id: Uuid, user_id: Uuid) -> Result<Option<Member>, StoreError> {
    let sql = format!("SELECT {MEMBER_COLUMNS} WHERE m.org_id = $1 AND m.user_id = $2");
    bounded(async {
        let row = on_db!(db, |pool| sqlx::query_as::<_, MemberRow>(
            sqlx::AssertSqlSafe(sql.as_str())
        )
        .bind(org_id)
        .bind(user_id)
        .fetch_optional(pool)
        .await)?;
        Ok(row.and_then(Option::from))
    })
    .await
}

/// Adds `user_id` with `role`; `Duplicate("member")` when already one.
pub async fn add(
    db: &Db,
    org_id: Uuid,
    user_id: Uuid,
    role: OrgRole,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    db.note_write();
    bounded(async {
        on_db!(db, |pool| sqlx::query(
            "INSERT INTO org_members (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)"
        )
        .bind(org_id)
        .bind(user_id)
        .bind(role.as_str())
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    })
    .await
}

/// The outcome of a change that must keep an owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<T> {
    Done(T),
    NotMember,
    LastOwner,
}

/// Takes the org row's write lock for the rest of the transaction.
const LOCK_ORG: &str = "UPDATE orgs SET name = name WHERE id = $1";
/// The member's role and the org's number of owners.
const MEMBER_AND_OWNERS: &str =
    "SELECT role, (SELECT COUNT(*) FROM org_members o WHERE o.org_id = $1 AND o.role = 'owner') \
                                 FROM org_members WHERE org_id = $1 AND user_id = $2";

/// Why a change to a member (currently `current`: role and owner count)
/// must not happen; `stays_owner` when the member remains an owner.
fn blocked<T>(current: Option<(String, i64)>, stays_owner: bool) -> Option<Change<T>> {
    match current {
        None => Some(Change::NotMember),
        Some((role, owners)) if role == OrgRole::Owner.as_str() && !stays_owner && owners <= 1 => {
            Some(Change::LastOwner)
        }
        Some(_) => None,
    }
}

/// Sets `user_id`'s role, unless that would leave the org without owners.
pub async fn set_role(
    db: &Db,
    org_id: Uuid,
    user_id: Uuid,
    role: OrgRole,
) -> Result<Change<()>, StoreError> {
    db.note_write();
    bounded(async {
        on_db!(db, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(LOCK_ORG).bind(org_id).execute(&mut *tx).await?;
            let current: Option<(String, i64)> = sqlx::query_as(MEMBER_AND_OWNERS)
                .bind(org_id)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(stop) = blocked(current, role == OrgRole::Owner) {
                return Ok(stop);
            }
            sqlx::query("UPDATE org_members SET role = $1 WHERE org_id = $2 AND user_id = $3")
                .bind(role.as_str())
                .bind(org_id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, StoreError>(Change::Done(()))
        })
    })
    .await
}

/// Removes `user_id` from the org and revokes their keys bound to it (so
/// they do not come back if the user is added again). Returns the revoked
/// keys' hashes.
pub async fn remove(
    db: &Db,
    org_id: Uuid,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Change<Vec<String>>, StoreError> {
    db.note_write();
    bounded(async {
        on_db!(db, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(LOCK_ORG).bind(org_id).execute(&mut *tx).await?;
            let current: Option<(String, i64)> = sqlx::query_as(MEMBER_AND_OWNERS)
                .bind(org_id)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(stop) = blocked(current, false) {
                return Ok(stop);
            }
            sqlx::query("DELETE FROM org_members WHERE org_id = $1 AND user_id = $2")
                .bind(org_id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            let hashes: Vec<String> = sqlx::query_scalar(
                "UPDATE api_keys SET revoked_at = $1 WHERE org_id = $2 AND user_id = $3 \
                 AND revoked_at IS NULL RETURNING key_hash",
            )
            .bind(now)
            .bind(org_id)
            .bind(user_id)
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<_, StoreError>(Change::Done(hashes))
        })
    })
    .await
}
