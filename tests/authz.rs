//! Authorization from the outside (DESIGN.md §3 routes, §10 Matching):
//! global roles (any of, superuser passes), permissions from `[rbac.roles]`
//! (all of), scopes (all of), org tenancy with the org role hierarchy, and
//! MFA. 401 means "who are you?", 403 "not you"; a refused request never
//! reaches the upstream.

mod common;

use common::*;
use serde_json::{json, Value};

const ORG: &str = "0190c9a4-1111-7000-8000-000000000001";
const OTHER_ORG: &str = "0190c9a4-2222-7000-8000-000000000002";

async fn setup() -> (TestGateway, Echo) {
    let echo = Echo::start("app").await;
    let body = format!(
        r#"{}
[[routes]]
name = "admin"
path = "/admin/**"
upstream = "app"
auth = "jwt"
roles = ["admin", "ops"]

[[routes]]
name = "orders"
path = "/orders/**"
upstream = "app"
auth = "jwt"
permissions = ["orders:read", "orders:write"]

[[routes]]
name = "members"
path = "/members/**"
upstream = "app"
auth = "jwt"
permissions = ["orders:read", "members:manage"]

[[routes]]
name = "reports"
path = "/reports/**"
upstream = "app"
auth = "jwt"
scopes = ["reports:read", "reports:export"]

[[routes]]
name = "org-settings"
path = "/orgs/{{org_id}}/settings/**"
upstream = "app"
auth = "jwt"
roles = ["admin"]
org_param = "org_id"

[[routes]]
name = "org"
path = "/orgs/{{org_id}}/**"
upstream = "app"
auth = "jwt"
org_param = "org_id"

[[routes]]
name = "secure"
path = "/secure/**"
upstream = "app"
auth = "jwt"
mfa = true
"#,
        upstream("app", &[echo.addr])
    );
    (TestGateway::start(&body).await, echo)
}

/// `GET path` with a token of the default claims edited by `edit`.
async fn get_as(gw: &TestGateway, path: &str, edit: impl FnOnce(&mut Value)) -> RawResponse {
    let auth = format!("Bearer {}", gw.token(edit));
    raw_get(gw.addr, path, &[("Authorization", &auth)]).await
}

fn roles(list: &[&str]) -> impl FnOnce(&mut Value) {
    let list = json!(list);
    move |c: &mut Value| c["roles"] = list
}

fn org_role(org: &str, role: &str) -> impl FnOnce(&mut Value) {
    let orgs = json!({ org: role });
    move |c: &mut Value| c["orgs"] = orgs
}

fn assert_ok(r: &RawResponse, case: &str) {
    let body = String::from_utf8_lossy(&r.body);
    assert_eq!(r.status, 200, "{case}: {body}");
}

/// A 403 problem with `code` (no `WWW-Authenticate`: the caller is known).
fn assert_forbidden(r: &RawResponse, code: &str, case: &str) {
    let body = String::from_utf8_lossy(&r.body);
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (403, Some(code)),
        "{case}: {body}"
    );
    assert_problem(r, 403, code);
    assert!(r.header("www-authenticate").is_none(), "{case}");
}

#[tokio::test(flavor = "multi_thread")]
async fn global_roles_are_any_of() {
    let (gw, echo) = setup().await;
    for list in [&["ops"][..], &["admin"], &["user", "ops"]] {
        assert_ok(
            &get_as(&gw, "/admin/x", roles(list)).await,
            &format!("{list:?}"),
        );
        assert_eq!(echo.last().header("x-auth-roles"), Some(list.join(",")));
    }
    let before = echo.proxied().len();
    for list in [&["user"][..], &[], &["Admin"], &["admins"], &["owner"]] {
        let r = get_as(&gw, "/admin/x", roles(list)).await;
        assert_forbidden(&r, "insufficient_role", &format!("{list:?}"));
    }
    // An org role is not a global role.
    let r = get_as(&gw, "/admin/x", org_role(ORG, "admin")).await;
    assert_forbidden(&r, "insufficient_role", "org admin");
    assert_eq!(echo.proxied().len(), before, "refused requests stay here");

    // The superuser flag passes every role check and is forwarded as a role.
    let r = get_as(&gw, "/admin/x", |c| c["su"] = json!(true)).await;
    assert_ok(&r, "superuser");
    assert_eq!(
        echo.last().header("x-auth-roles").as_deref(),
        Some("user,superuser")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unauthenticated_is_401_and_unauthorized_is_403() {
    let (gw, echo) = setup().await;
    let before = echo.proxied().len();
    for path in [
        "/admin/x",
        "/orders/x",
        "/reports/x",
        &format!("/orgs/{ORG}/x"),
        "/secure/x",
    ] {
        let r = raw_get(gw.addr, path, &[]).await;
        assert_problem(&r, 401, "unauthenticated");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{path}");
        // A bad token is a 401 too, whatever the claims would have granted.
        let forged = gw.token(|c| {
            c["su"] = json!(true);
            c["aud"] = json!("elsewhere");
        });
        let r = raw_get(
            gw.addr,
            path,
            &[("Authorization", &format!("Bearer {forged}"))],
        )
        .await;
        assert_problem(&r, 401, "invalid_token");
    }
    let r = get_as(&gw, "/admin/x", roles(&["user"])).await;
    assert_forbidden(&r, "insufficient_role", "valid token without the role");
    assert_eq!(echo.proxied().len(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn permissions_are_all_of_and_come_from_rbac_roles() {
    let (gw, echo) = setup().await;
    // Default [rbac.roles]: viewer *:read; member *:read *:write;
    // admin adds members:manage; owner *.
    for list in [
        &["member"][..],
        &["admin"],
        &["owner"],
        &["viewer", "member"],
    ] {
        assert_ok(
            &get_as(&gw, "/orders/x", roles(list)).await,
            &format!("{list:?}"),
        );
    }
    for list in [&["admin"][..], &["owner"]] {
        assert_ok(
            &get_as(&gw, "/members/x", roles(list)).await,
            &format!("{list:?}"),
        );
    }
    assert_ok(
        &get_as(&gw, "/members/x", |c| c["su"] = json!(true)).await,
        "superuser",
    );

    let before = echo.proxied().len();
    for (path, list) in [
        ("/orders/x", &["viewer"][..]),
        ("/orders/x", &["user"]),
        ("/orders/x", &[]),
        ("/members/x", &["member"]),
        ("/members/x", &["viewer"]),
    ] {
        let r = get_as(&gw, path, roles(list)).await;
        assert_forbidden(&r, "insufficient_permission", &format!("{path} {list:?}"));
    }
    // The missing permission is named; the one the viewer has is not.
    let r = get_as(&gw, "/orders/x", roles(&["viewer"])).await;
    let detail = r.json()["detail"].as_str().unwrap_or_default().to_string();
    assert!(detail.contains("orders:write"), "{detail}");
    // Org roles only grant inside their org: a route without org_param
    // does not see them.
    let r = get_as(&gw, "/orders/x", org_role(ORG, "owner")).await;
    assert_forbidden(&r, "insufficient_permission", "org owner on a global route");
    assert_eq!(echo.proxied().len(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn scopes_are_all_of_from_the_scope_claim() {
    let (gw, echo) = setup().await;
    for scope in [
        "reports:read reports:export",
        "openid reports:export  reports:read",
    ] {
        let r = get_as(&gw, "/reports/q3", |c| c["scope"] = json!(scope)).await;
        assert_ok(&r, scope);
        let seen = echo.last().header("x-auth-scopes").unwrap_or_default();
        assert!(seen.split(' ').any(|s| s == "reports:export"), "{seen}");
    }
    let before = echo.proxied().len();
    for scope in [
        "reports:read",
        "reports:export",
        "",
        "reports:read,reports:export",
        "reports",
    ] {
        let r = get_as(&gw, "/reports/q3", |c| c["scope"] = json!(scope)).await;
        assert_forbidden(&r, "insufficient_scope", scope);
    }
    // Roles do not stand in for scopes.
    let r = get_as(&gw, "/reports/q3", roles(&["owner", "admin"])).await;
    assert_forbidden(&r, "insufficient_scope", "roles without scopes");
    assert_eq!(echo.proxied().len(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn org_membership_is_checked_against_the_path() {
    let (gw, echo) = setup().await;
    let path = format!("/orgs/{ORG}/projects/7");
    assert_ok(&get_as(&gw, &path, org_role(ORG, "member")).await, "member");
    let seen = echo.last();
    assert_eq!(seen.target, path);
    assert_eq!(seen.header("x-auth-org-id").as_deref(), Some(ORG));
    assert_eq!(seen.header("x-auth-org-role").as_deref(), Some("member"));

    let before = echo.proxied().len();
    let cases = [
        (
            "other org in the path",
            format!("/orgs/{OTHER_ORG}/projects/7"),
        ),
        ("not a UUID", "/orgs/acme/projects/7".to_string()),
        ("nil UUID", format!("/orgs/{}/projects", uuid::Uuid::nil())),
    ];
    for (case, path) in &cases {
        let r = get_as(&gw, path, org_role(ORG, "owner")).await;
        assert_forbidden(&r, "not_org_member", case);
    }
    // No orgs claim at all, and a global "admin" role, are not membership.
    let r = get_as(&gw, &path, roles(&["admin", "owner"])).await;
    assert_forbidden(&r, "not_org_member", "no orgs claim");
    // A client cannot name its own org through headers.
    let auth = format!("Bearer {}", gw.token(org_role(OTHER_ORG, "owner")));
    let spoof = [("Authorization", auth.as_str()), ("X-Auth-Org-Id", ORG)];
    let r = raw_get(gw.addr, &path, &spoof).await;
    assert_forbidden(&r, "not_org_member", "spoofed org header");
    assert_eq!(echo.proxied().len(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn org_roles_are_hierarchical() {
    let (gw, echo) = setup().await;
    let settings = format!("/orgs/{ORG}/settings/billing");
    for role in ["owner", "admin"] {
        assert_ok(&get_as(&gw, &settings, org_role(ORG, role)).await, role);
        let seen = echo.last();
        assert_eq!(seen.header("x-auth-org-role").as_deref(), Some(role));
        assert_eq!(seen.header("x-auth-org-id").as_deref(), Some(ORG));
    }
    let before = echo.proxied().len();
    for role in ["member", "viewer"] {
        let r = get_as(&gw, &settings, org_role(ORG, role)).await;
        assert_forbidden(&r, "insufficient_role", role);
    }
    // The global "admin" role does not make an org member an org admin.
    let r = get_as(&gw, &settings, |c| {
        c["roles"] = json!(["admin"]);
        c["orgs"] = json!({ ORG: "member" });
    })
    .await;
    assert_forbidden(&r, "insufficient_role", "global admin, org member");
    // Being admin of another org does not count here.
    let r = get_as(&gw, &settings, org_role(OTHER_ORG, "owner")).await;
    assert_forbidden(&r, "not_org_member", "owner of another org");
    assert_eq!(echo.proxied().len(), before);

    // The member still reaches the org's other routes.
    let r = get_as(
        &gw,
        &format!("/orgs/{ORG}/projects"),
        org_role(ORG, "viewer"),
    )
    .await;
    assert_ok(&r, "viewer on the org route");
    // The superuser flag passes the org role check.
    let r = get_as(&gw, &settings, |c| c["su"] = json!(true)).await;
    assert_ok(&r, "superuser");
}

#[tokio::test(flavor = "multi_thread")]
async fn mfa_routes_need_a_second_factor() {
    let (gw, echo) = setup().await;
    let before = echo.proxied().len();
    for amr in [json!(["pwd"]), json!([]), json!(["pwd", "otp2"])] {
        let case = amr.to_string();
        let r = get_as(&gw, "/secure/x", |c| c["amr"] = amr).await;
        assert_forbidden(&r, "mfa_required", &case);
    }
    let r = get_as(&gw, "/secure/x", |_| {}).await;
    assert_forbidden(&r, "mfa_required", "no amr claim");
    let r = get_as(&gw, "/secure/x", |c| c["su"] = json!(true)).await;
    assert_forbidden(&r, "mfa_required", "superuser without a second factor");
    assert_eq!(echo.proxied().len(), before);

    for amr in [json!(["pwd", "otp"]), json!(["otp"])] {
        let case = amr.to_string();
        assert_ok(&get_as(&gw, "/secure/x", |c| c["amr"] = amr).await, &case);
    }
    assert_eq!(echo.proxied().len(), before + 2);
}
