//! Organizations: who may change which membership (`may_change`, a pure
//! rule), and the operations behind `/auth/orgs`. Callers who are not
//! members of an org get 404 for it, never 403, so org ids do not leak.
//!
//! Rules: any member may list members; admins and owners add, re-role and
//! remove members; only owners grant the owner role or touch an owner;
//! anyone may leave; the last owner can neither leave nor be demoted.
//! Removing a member revokes their sessions at once (their tokens still
//! claim the org) and their keys bound to the org.

use std::collections::BTreeMap;

use chrono::Utc;
use uuid::Uuid;

use super::{Accounts, Client};
use crate::error::GatewayError;
use crate::principal::OrgRole;
use crate::store::orgs::{self, Change, Member, Membership};
use crate::store::{audit, users, Db};

/// A change to one membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    Add(OrgRole),
    SetRole { from: OrgRole, to: OrgRole },
    Remove(OrgRole),
}

/// Whether a member with role `actor` may make `change` (to themselves
/// when `on_self`). The last-owner rule is the store's, inside its
/// transaction.
pub fn may_change(actor: OrgRole, on_self: bool, change: MemberChange) -> Result<(), GatewayError> {
    if on_self && matches!(change, MemberChange::Remove(_)) {
        return Ok(());
    }
    if actor < OrgRole::Admin {
        return Err(GatewayError::OrgRoleRequired("manage members"));
    }
    let touches_owner = match change {
        MemberChange::Add(role) | MemberChange::Remove(role) => role == OrgRole::Owner,
        MemberChange::SetRole { from, to } => from == OrgRole::Owner || to == OrgRole::Owner,
    };
    if touches_owner && actor != OrgRole::Owner {
        return Err(GatewayError::OrgRoleRequired(
            "grant, change or remove the owner role",
        ));
    }
    Ok(())
}

/// The `orgs` claim of an access token: `{org id: role}`.
pub async fn claims(db: &Db, user_id: Uuid) -> Result<BTreeMap<String, String>, GatewayError> {
    Ok(orgs::memberships(db, user_id)
        .await?
        .into_iter()
        .map(|m| (m.org_id.to_string(), m.role.as_str().to_string()))
        .collect())
}

async fn member_or_404(db: &Db, org_id: Uuid, user_id: Uuid) -> Result<Member, GatewayError> {
    orgs::member(db, org_id, user_id)
        .await?
        .ok_or(GatewayError::NotFound("member"))
}

/// Who a new member is.
pub enum NewMember<'a> {
    Email(&'a str),
    UserId(Uuid),
}

fn org_name(name: &str) -> Result<&str, GatewayError> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 100 {
        return Err(GatewayError::validation(
            "name",
            "must be 1 to 100 characters",
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(GatewayError::validation(
            "name",
            "must not contain control characters",
        ));
    }
    Ok(trimmed)
}

impl Accounts {
    pub async fn create_org(
        &self,
        user_id: Uuid,
        name: &str,
        client: &Client,
    ) -> Result<Membership, GatewayError> {
        let name = org_name(name)?;
        let db = self.db().await?;
        let org = orgs::create(db, name, user_id, Utc::now()).await?;
        audit::record(
            db,
            "org_created",
            Some(user_id),
            Some(user_id),
            &client.origin(),
            serde_json::json!({"org": org.org_id}),
        )
        .await;
        Ok(org)
    }

    pub async fn my_orgs(&self, user_id: Uuid) -> Result<Vec<Membership>, GatewayError> {
        Ok(orgs::memberships(self.db().await?, user_id).await?)
    }

    /// The caller's membership of `org_id`; 404 when there is none.
    pub async fn membership(
        &self,
        org_id: Uuid,
        user_id: Uuid,
    ) -> Result<Membership, GatewayError> {
        orgs::membership(self.db().await?, org_id, user_id)
            .await?
            .ok_or(GatewayError::NotFound("organization"))
    }

    pub async fn members(
        &self,
        org_id: Uuid,
        actor: Uuid,
        limit: u32,
        cursor: Option<Uuid>,
    ) -> Result<Vec<Member>, GatewayError> {
        self.membership(org_id, actor).await?;
        Ok(orgs::members(self.db().await?, org_id, limit, cursor).await?)
    }

    pub async fn add_member(
        &self,
        org_id: Uuid,
        actor: Uuid,
        who: NewMember<'_>,
        role: OrgRole,
        client: &Client,
    ) -> Result<Member, GatewayError> {
        let mine = self.membership(org_id, actor).await?;
        may_change(mine.role, false, MemberChange::Add(role))?;
        let db = self.db().await?;
        let user = match who {
            NewMember::Email(email) => users::by_login(db, email).await?,
            NewMember::UserId(id) => users::by_id(db, id).await?,
        }
        .ok_or(GatewayError::NotFound("user"))?;
        orgs::add(db, org_id, user.id, role, Utc::now()).await?;
        self.audit_member(
            db,
            "org_member_added",
            org_id,
            user.id,
            actor,
            Some(role),
            client,
        )
        .await;
        member_or_404(db, org_id, user.id).await
    }

    pub async fn set_member_role(
        &self,
        org_id: Uuid,
        actor: Uuid,
        target: Uuid,
        role: OrgRole,
        client: &Client,
    ) -> Result<Member, GatewayError> {
        let mine = self.membership(org_id, actor).await?;
        let db = self.db().await?;
        let current = member_or_404(db, org_id, target).await?;
        may_change(
            mine.role,
            actor == target,
            MemberChange::SetRole {
                from: current.role,
                to: role,
            },
        )?;
        match orgs::set_role(db, org_id, target, role).await? {
            Change::Done(()) => {}
            Change::NotMember => return Err(GatewayError::NotFound("member")),
            Change::LastOwner => return Err(GatewayError::LastOwner),
        }
        // Keys bound to the org carry the owner's role there.
        self.keys.evict_owner(target);
        self.audit_member(
            db,
            "org_member_role_changed",
            org_id,
            target,
            actor,
            Some(role),
            client,
        )
        .await;
        member_or_404(db, org_id, target).await
    }

    pub async fn remove_member(
        &self,
        org_id: Uuid,
        actor: Uuid,
        target: Uuid,
        client: &Client,
    ) -> Result<(), GatewayError> {
        let mine = self.membership(org_id, actor).await?;
        let db = self.db().await?;
        let current = member_or_404(db, org_id, target).await?;
        may_change(
            mine.role,
            actor == target,
            MemberChange::Remove(current.role),
        )?;
        let revoked_keys = match orgs::remove(db, org_id, target, Utc::now()).await? {
            Change::Done(hashes) => hashes,
            Change::NotMember => return Err(GatewayError::NotFound("member")),
            Change::LastOwner => return Err(GatewayError::LastOwner),
        };
        for hash in &revoked_keys {
            self.keys.evict(hash).await;
        }
        self.keys.evict_owner(target);
        self.audit_member(
            db,
            "org_member_removed",
            org_id,
            target,
            actor,
            None,
            client,
        )
        .await;
        // Their access tokens still list the org: end them now.
        self.end_all_sessions(target, None, Some(actor), "sessions_revoked", client)
            .await?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn audit_member(
        &self,
        db: &Db,
        kind: &str,
        org_id: Uuid,
        user_id: Uuid,
        actor: Uuid,
        role: Option<OrgRole>,
        client: &Client,
    ) {
        audit::record(
            db,
            kind,
            Some(user_id),
            Some(actor),
            &client.origin(),
            serde_json::json!({"org": org_id, "role": role.map(OrgRole::as_str)}),
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrgRole::*;

    fn ok(actor: OrgRole, on_self: bool, change: MemberChange) -> bool {
        may_change(actor, on_self, change).is_ok()
    }

    #[test]
    fn admins_manage_members_but_only_owners_touch_owners() {
        assert!(ok(Admin, false, MemberChange::Add(Member)));
        assert!(ok(Admin, false, MemberChange::Add(Admin)));
        assert!(!ok(Admin, false, MemberChange::Add(Owner)));
        assert!(ok(Owner, false, MemberChange::Add(Owner)));
        assert!(!ok(Member, false, MemberChange::Add(Viewer)));
        assert!(!ok(Viewer, false, MemberChange::Add(Viewer)));
        let demote_owner = MemberChange::SetRole {
            from: Owner,
            to: Admin,
        };
        assert!(!ok(Admin, false, demote_owner));
        assert!(ok(Owner, false, demote_owner));
        let promote = MemberChange::SetRole {
            from: Admin,
            to: Owner,
        };
        assert!(!ok(Admin, true, promote), "no self-promotion to owner");
        assert!(!ok(Admin, false, MemberChange::Remove(Owner)));
        assert!(ok(Admin, false, MemberChange::Remove(Member)));
        assert!(!ok(Member, false, MemberChange::Remove(Viewer)));
    }

    #[test]
    fn anyone_may_leave() {
        for role in OrgRole::ALL {
            assert!(ok(role, true, MemberChange::Remove(role)));
        }
        assert!(!ok(
            Member,
            true,
            MemberChange::SetRole {
                from: Member,
                to: Admin
            }
        ));
    }
}
