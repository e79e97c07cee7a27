use std::collections::{BTreeMap, HashMap};

use super::roles::pattern_grants;
use super::*;
use crate::principal::{OrgRole, UserId};

fn rbac() -> RoleTable {
    let file = crate::schema::file::RbacFile::default();
    RoleTable::new(&file.roles).unwrap()
}

fn user() -> UserIdentity {
    UserIdentity {
        user_id: UserId("u1".into()),
        issuer: "portcullis".into(),
        email: None,
        roles: vec!["user".into()],
        superuser: false,
        orgs: HashMap::new(),
        scopes: vec![],
        session: None,
        jti: "j".into(),
        issued_at: 0,
        expires_at: i64::MAX,
        amr: vec!["pwd".into()],
    }
}

const ORG: &str = "0190c9a4-1111-7000-8000-000000000001";
const OTHER_ORG: &str = "0190c9a4-2222-7000-8000-000000000002";

fn in_org(role: OrgRole) -> UserIdentity {
    let mut u = user();
    u.orgs.insert(OrgId(ORG.parse().unwrap()), role);
    u
}

fn req(f: impl FnOnce(&mut Requirements)) -> Requirements {
    let mut r = Requirements::default();
    f(&mut r);
    r
}

#[test]
fn permission_patterns() {
    assert!(pattern_grants("*", "users:write"));
    assert!(pattern_grants("*:read", "users:read"));
    assert!(!pattern_grants("*:read", "users:write"));
    assert!(pattern_grants("users:*", "users:delete"));
    assert!(!pattern_grants("users:*", "orders:delete"));
    assert!(pattern_grants("users:read", "users:read"));
    assert!(!pattern_grants("users", "users:read"));
}

#[test]
fn global_roles_any_of() {
    let r = req(|r| r.roles = vec!["admin".into(), "ops".into()]);
    assert_eq!(
        authorize(&r, &user(), None, &rbac()),
        Err(Denial::InsufficientRole)
    );
    let mut u = user();
    u.roles.push("ops".into());
    assert_eq!(authorize(&r, &u, None, &rbac()), Ok(None));
    let mut su = user();
    su.superuser = true;
    assert_eq!(authorize(&r, &su, None, &rbac()), Ok(None));
}

#[test]
fn org_roles_are_hierarchical() {
    let r = req(|r| {
        r.org_param = Some("org_id".into());
        r.roles = vec!["admin".into()];
    });
    let rb = rbac();
    assert_eq!(
        authorize(&r, &in_org(OrgRole::Member), Some(ORG), &rb),
        Err(Denial::InsufficientRole)
    );
    let ok = authorize(&r, &in_org(OrgRole::Owner), Some(ORG), &rb)
        .unwrap()
        .unwrap();
    assert_eq!(ok.role, Some(OrgRole::Owner));
    assert!(authorize(&r, &in_org(OrgRole::Admin), Some(ORG), &rb).is_ok());
}

#[test]
fn tenancy() {
    let r = req(|r| r.org_param = Some("org_id".into()));
    let rb = rbac();
    let member = in_org(OrgRole::Viewer);
    assert!(authorize(&r, &member, Some(ORG), &rb).is_ok());
    assert!(authorize(&r, &member, Some(&ORG.to_uppercase()), &rb).is_ok());
    assert_eq!(
        authorize(&r, &member, Some(OTHER_ORG), &rb),
        Err(Denial::NotOrgMember)
    );
    assert_eq!(
        authorize(&r, &member, Some("not-a-uuid"), &rb),
        Err(Denial::NotOrgMember)
    );
    assert_eq!(authorize(&r, &member, None, &rb), Err(Denial::NotOrgMember));
}

#[test]
fn permissions_all_of_from_rbac() {
    let rb = rbac();
    let r = req(|r| {
        r.org_param = Some("org_id".into());
        r.permissions = vec!["members:manage".into(), "orders:read".into()];
    });
    assert_eq!(
        authorize(&r, &in_org(OrgRole::Member), Some(ORG), &rb),
        Err(Denial::MissingPermission("members:manage".into()))
    );
    assert!(authorize(&r, &in_org(OrgRole::Admin), Some(ORG), &rb).is_ok());
    // Without org_param, global roles map through the same table.
    let global = req(|r| r.permissions = vec!["orders:write".into()]);
    assert!(authorize(&global, &user(), None, &rb).is_err());
    let mut member = user();
    member.roles = vec!["member".into()];
    assert!(authorize(&global, &member, None, &rb).is_ok());
}

#[test]
fn hierarchy_inherits_lower_role_permissions() {
    let mut roles = BTreeMap::new();
    roles.insert("viewer".to_string(), vec!["docs:read".to_string()]);
    roles.insert("admin".to_string(), vec!["members:manage".to_string()]);
    let rb = RoleTable::new(&roles).unwrap();
    assert!(rb.org_role_grants(OrgRole::Admin, "docs:read"));
    assert!(rb.org_role_grants(OrgRole::Owner, "members:manage"));
    assert!(!rb.org_role_grants(OrgRole::Viewer, "members:manage"));
}

#[test]
fn scopes_all_of_and_superuser_does_not_skip_them() {
    let r = req(|r| r.scopes = vec!["orders:read".into(), "orders:write".into()]);
    let mut u = user();
    u.superuser = true;
    u.scopes = vec!["orders:read".into()];
    assert_eq!(
        authorize(&r, &u, None, &rbac()),
        Err(Denial::MissingScope("orders:write".into()))
    );
    u.scopes.push("orders:write".into());
    assert!(authorize(&r, &u, None, &rbac()).is_ok());
}

#[test]
fn mfa() {
    let r = req(|r| r.mfa = true);
    assert_eq!(
        authorize(&r, &user(), None, &rbac()),
        Err(Denial::MfaRequired)
    );
    let mut u = user();
    u.amr.push("otp".into());
    assert!(authorize(&r, &u, None, &rbac()).is_ok());
}

#[test]
fn bad_rbac_tables_are_rejected() {
    let mut roles = BTreeMap::new();
    roles.insert("x".to_string(), vec!["nocolon".to_string()]);
    assert!(RoleTable::new(&roles).is_err());
}

#[test]
fn an_org_bound_caller_is_authorized_in_its_org_only() {
    let rb = rbac();
    let org = OrgId(ORG.parse().unwrap());
    let pin = Some(org);
    let admin_only = req(|r| r.roles = vec!["admin".into()]);
    // Without org_param the org role still decides, and the org is reported.
    let ok = authorize_in(&admin_only, &in_org(OrgRole::Admin), None, pin, &rb)
        .unwrap()
        .unwrap();
    assert_eq!(ok.id, org);
    assert_eq!(ok.role, Some(OrgRole::Admin));
    assert_eq!(
        authorize_in(&admin_only, &in_org(OrgRole::Member), None, pin, &rb),
        Err(Denial::InsufficientRole)
    );
    // Global roles do not count for an org-bound caller.
    let global = req(|r| r.roles = vec!["user".into()]);
    assert_eq!(
        authorize_in(&global, &in_org(OrgRole::Owner), None, pin, &rb),
        Err(Denial::InsufficientRole)
    );
    // A path naming another org is refused, even one the owner belongs to.
    let tenant = req(|r| r.org_param = Some("org_id".into()));
    let mut both = in_org(OrgRole::Owner);
    both.orgs
        .insert(OrgId(OTHER_ORG.parse().unwrap()), OrgRole::Owner);
    assert!(authorize_in(&tenant, &both, Some(ORG), pin, &rb).is_ok());
    assert_eq!(
        authorize_in(&tenant, &both, Some(OTHER_ORG), pin, &rb),
        Err(Denial::NotOrgMember)
    );
    // No longer a member: refused.
    assert_eq!(
        authorize_in(&tenant, &user(), Some(ORG), pin, &rb),
        Err(Denial::NotOrgMember)
    );
    let perm = req(|r| r.permissions = vec!["members:manage".into()]);
    assert!(authorize_in(&perm, &in_org(OrgRole::Admin), None, pin, &rb).is_ok());
    assert_eq!(
        authorize_in(&perm, &in_org(OrgRole::Member), None, pin, &rb),
        Err(Denial::MissingPermission("members:manage".into()))
    );
}
