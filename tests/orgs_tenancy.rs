//! Organizations as tenants (README "Account API", "Authentication"):
//! outsiders get 404 for an org, never 403; access tokens carry `orgs` from
//! login or refresh; proxied routes with `org_param` check membership and
//! role; removal revokes tokens and org-bound keys at once; org-bound keys
//! are limited by, and follow, their owner's role; org changes are audited.
//! Every test runs on each database backend.

mod common;

use common::accounts::{login, refresh, Tokens};
use common::http::*;
use common::orgs::*;
use common::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn outsiders_get_404_for_an_org_never_403() {
    for backend in backends().await {
        let echo = Echo::start("app").await;
        let gw = start_orgs(&backend, &echo).await;
        let alice = user(&gw, "alice@example.com").await;
        let bob = user(&gw, "bob@example.com").await;
        let carol = user(&gw, "carol@example.com").await;
        let a = create_org(&gw, alice.access(), "Alice's").await;
        let b = create_org(&gw, bob.access(), "Bob's").await;
        add(&gw, alice.access(), &a, &carol.email, "member").await;

        // Bob, owner of B, against A; and everyone against ids that are no org.
        let random = uuid::Uuid::new_v4().to_string();
        let mut cases: Vec<(&User, String, &str)> = vec![
            (&bob, a.clone(), alice.id.as_str()),
            (&bob, a.clone(), carol.id.as_str()),
            (&bob, a.to_uppercase(), carol.id.as_str()),
            (&alice, b.clone(), bob.id.as_str()),
            (&carol, b.clone(), bob.id.as_str()),
        ];
        for bad in [random.as_str(), "not-a-uuid", "1", "%20"] {
            cases.push((&alice, bad.to_string(), alice.id.as_str()));
        }
        for (who, org, target) in &cases {
            let what = format!("{} on org {org}", who.email);
            let r = get(&gw, &members_path(org), who.access()).await;
            assert_eq!(r.status, 404, "{}: GET {what}: {}", backend.name, r.text);
            problem(&r, 404, "not_found");
            for body in [
                json!({"email": who.email, "role": "owner"}),
                json!({"user_id": who.id, "role": "viewer"}),
            ] {
                let r = add_resp(&gw, who.access(), org, body).await;
                assert_eq!(r.status, 404, "POST {what}: {}", r.text);
                problem(&r, 404, "not_found");
            }
            for role in ["viewer", "owner"] {
                let r = set_role(&gw, who.access(), org, target, role).await;
                assert_eq!(r.status, 404, "PATCH {what}: {}", r.text);
                problem(&r, 404, "not_found");
            }
            let r = remove(&gw, who.access(), org, target).await;
            assert_eq!(r.status, 404, "DELETE {what}: {}", r.text);
            problem(&r, 404, "not_found");
        }
        // The same answer whether the org exists or not: nothing leaks.
        let exists = get(&gw, &members_path(&a), bob.access()).await;
        let absent = get(&gw, &members_path(&random), bob.access()).await;
        assert_eq!(exists.json()["code"], absent.json()["code"]);
        assert_eq!(exists.json()["title"], absent.json()["title"]);

        // A member of A cannot reach B's members through A's path either.
        let r = set_role(&gw, alice.access(), &a, &bob.id, "viewer").await;
        problem(&r, 404, "not_found");
        let r = remove(&gw, alice.access(), &a, &bob.id).await;
        problem(&r, 404, "not_found");

        // Nothing changed on either side; each owner lists only their own.
        let mut roles = member_roles(&gw, alice.access(), &a).await;
        roles.sort();
        let mut expected = vec![
            (alice.id.clone(), "owner".to_string()),
            (carol.id.clone(), "member".to_string()),
        ];
        expected.sort();
        assert_eq!(roles, expected, "{}", backend.name);
        assert_eq!(
            member_roles(&gw, bob.access(), &b).await,
            vec![(bob.id.clone(), "owner".to_string())]
        );
        for (who, only) in [(&alice, &a), (&bob, &b)] {
            let r = get(&gw, "/auth/orgs", who.access()).await;
            let ids: Vec<Value> = r.json()["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["id"].clone())
                .collect();
            assert_eq!(ids, vec![json!(only)], "{}: {}", who.email, r.text);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_carry_org_roles_from_login_or_refresh() {
    for backend in backends().await {
        let echo = Echo::start("app").await;
        let gw = start_orgs(&backend, &echo).await;
        let owner = user(&gw, "owner@example.com").await;
        let member = user(&gw, "member@example.com").await;
        assert_eq!(org_claim(owner.access()), json!({}), "no orgs yet");
        let org = create_org(&gw, owner.access(), "Acme").await;
        let owner = refreshed(&gw, &owner).await;
        assert_eq!(org_claim(owner.access()), json!({ &org: "owner" }));

        add(&gw, owner.access(), &org, &member.email, "member").await;
        assert_eq!(
            org_claim(member.access()),
            json!({}),
            "a token issued before the membership does not claim it"
        );
        let path = format!("/orgs/{org}/things");
        problem(
            &proxied(&gw, &path, member.access()).await,
            403,
            "not_org_member",
        );

        let member = refreshed(&gw, &member).await;
        assert_eq!(
            org_claim(member.access()),
            json!({ &org: "member" }),
            "{}",
            backend.name
        );
        let r = proxied(&gw, &path, member.access()).await;
        assert_eq!(r.status, 200, "{}: {}", backend.name, r.text);

        // A fresh login claims it too, and every org with its own role.
        let other = create_org(&gw, member.access(), "Member's own").await;
        let again = login(&gw, &member.email).await;
        assert_eq!(
            org_claim(&again.access),
            json!({ &org: "member", &other: "owner" })
        );
        set_role(&gw, owner.access(), &org, &member.id, "viewer").await;
        let fresh = Tokens::from(&refresh(&gw, &again.refresh).await);
        assert_eq!(
            org_claim(&fresh.access),
            json!({ &org: "viewer", &other: "owner" })
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn org_routes_check_membership_and_role() {
    for backend in backends().await {
        let echo = Echo::start("app").await;
        let gw = start_orgs(&backend, &echo).await;
        let owner = user(&gw, "owner@example.com").await;
        let member = user(&gw, "member@example.com").await;
        let viewer = user(&gw, "viewer@example.com").await;
        let stranger = user(&gw, "stranger@example.com").await;
        let org = create_org(&gw, owner.access(), "Acme").await;
        let elsewhere = create_org(&gw, stranger.access(), "Elsewhere").await;
        add(&gw, owner.access(), &org, &member.email, "member").await;
        add(&gw, owner.access(), &org, &viewer.email, "viewer").await;
        let owner = refreshed(&gw, &owner).await;
        let member = refreshed(&gw, &member).await;
        let viewer = refreshed(&gw, &viewer).await;

        // A member reaches their org, and the upstream learns org and role
        // (never what the client claimed).
        let r = send(
            client()
                .get(gw.url(&format!("/orgs/{org}/orders?page=2")))
                .header("Authorization", bearer(member.access()))
                .header("X-Auth-Org-Role", "owner")
                .header("X-Auth-Org-Id", &elsewhere),
        )
        .await;
        assert_eq!(r.status, 200, "{}: {}", backend.name, r.text);
        let seen = echo.last();
        assert_eq!(seen.target, format!("/orgs/{org}/orders?page=2"));
        assert_eq!(seen.header_all("X-Auth-Org-Id"), vec![org.clone()]);
        assert_eq!(seen.header_all("X-Auth-Org-Role"), vec!["member"]);
        assert_eq!(seen.header("X-Auth-User-Id"), Some(member.id.clone()));

        // Another org, or no org at all, is not theirs.
        let before = echo.proxied().len();
        for path in [
            format!("/orgs/{elsewhere}/orders"),
            format!("/orgs/{}/orders", uuid::Uuid::new_v4()),
            "/orgs/not-a-uuid/orders".to_string(),
        ] {
            let r = proxied(&gw, &path, member.access()).await;
            problem(&r, 403, "not_org_member");
        }
        let r = proxied(&gw, &format!("/orgs/{org}/orders"), stranger.access()).await;
        problem(&r, 403, "not_org_member");

        // The admin route: viewer and member refused, owner passes.
        let admin_path = format!("/orgs/{org}/admin/settings");
        for who in [&viewer, &member] {
            let r = proxied(&gw, &admin_path, who.access()).await;
            problem(&r, 403, "insufficient_role");
        }
        let r = proxied(&gw, &format!("/orgs/{elsewhere}/admin/x"), owner.access()).await;
        problem(&r, 403, "not_org_member");
        assert_eq!(echo.proxied().len(), before, "refusals are never forwarded");
        let r = proxied(&gw, &admin_path, owner.access()).await;
        assert_eq!(r.status, 200, "{}: {}", backend.name, r.text);
        let seen = echo.last();
        assert_eq!(seen.target, admin_path);
        assert_eq!(seen.header("X-Auth-Org-Role").as_deref(), Some("owner"));
        let r = proxied(&gw, &format!("/orgs/{org}/x"), viewer.access()).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            echo.last().header("X-Auth-Org-Role").as_deref(),
            Some("viewer")
        );

        // Without org_param, no org headers are made up.
        let r = proxied(&gw, "/api/x", owner.access()).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(echo.last().header("X-Auth-Org-Id"), None);
        assert_eq!(echo.last().header("X-Auth-Org-Role"), None);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn removal_revokes_tokens_and_org_keys_at_once() {
    for backend in backends().await {
        let echo = Echo::start("app").await;
        let gw = start_orgs(&backend, &echo).await;
        let owner = user(&gw, "owner@example.com").await;
        let admin = user(&gw, "admin@example.com").await;
        let member = user(&gw, "member@example.com").await;
        let bystander = user(&gw, "bystander@example.com").await;
        let org = create_org(&gw, owner.access(), "Acme").await;
        add(&gw, owner.access(), &org, &admin.email, "admin").await;
        add(&gw, owner.access(), &org, &member.email, "member").await;
        add(&gw, owner.access(), &org, &bystander.email, "member").await;
        let member = refreshed(&gw, &member).await;
        let bystander = refreshed(&gw, &bystander).await;
        let key = org_key(&gw, member.access(), &org, &["orders:read"]).await;
        let other_key = org_key(&gw, bystander.access(), &org, &[]).await;
        let personal = create_key_resp(&gw, member.access(), json!({"name": "mine"})).await;
        assert_eq!(personal.status, 201, "{}", personal.text);
        let personal = personal.json()["key"].as_str().unwrap().to_string();

        let path = format!("/orgs/{org}/orders");
        let r = proxied(&gw, &path, member.access()).await;
        assert_eq!(r.status, 200, "{}: {}", backend.name, r.text);
        let r = proxied_key(&gw, &path, &key).await;
        assert_eq!(r.status, 200, "{}: {}", backend.name, r.text);
        let seen = echo.last();
        assert_eq!(seen.header("X-Auth-Org-Id"), Some(org.clone()));
        assert_eq!(seen.header("X-Auth-Org-Role").as_deref(), Some("member"));
        assert_eq!(
            seen.header("X-API-Key"),
            None,
            "the secret is not forwarded"
        );
        assert_eq!(proxied_key(&gw, &path, &other_key).await.status, 200);
        assert_eq!(proxied_key(&gw, "/any/x", &personal).await.status, 200);

        let r = remove(&gw, admin.access(), &org, &member.id).await;
        assert_eq!(r.status, 204, "{}: {}", backend.name, r.text);

        // The very next requests are refused.
        problem(
            &proxied(&gw, &path, member.access()).await,
            401,
            "token_revoked",
        );
        problem(&proxied_key(&gw, &path, &key).await, 401, "invalid_api_key");
        let r = refresh(&gw, &member.tokens.refresh).await;
        assert_eq!(r.status, 401, "{}: {}", backend.name, r.text);
        // Others in the org keep working.
        assert_eq!(proxied(&gw, &path, bystander.access()).await.status, 200);
        assert_eq!(proxied_key(&gw, &path, &other_key).await.status, 200);
        assert_eq!(member_roles(&gw, owner.access(), &org).await.len(), 3);

        // Re-added, the member logs in anew; the old key stays dead.
        add(&gw, admin.access(), &org, &member.email, "member").await;
        problem(&proxied_key(&gw, &path, &key).await, 401, "invalid_api_key");
        let again = login(&gw, &member.email).await;
        assert_eq!(org_claim(&again.access), json!({ &org: "member" }));
        let r = proxied(&gw, &path, &again.access).await;
        assert_eq!(r.status, 200, "{}: {}", backend.name, r.text);
        problem(&proxied_key(&gw, &path, &key).await, 401, "invalid_api_key");
        // A key not bound to the org is not the org's to revoke.
        let r = proxied_key(&gw, "/any/x", &personal).await;
        assert_eq!(r.status, 200, "{}: {}", backend.name, r.text);
        let new_key = org_key(&gw, &again.access, &org, &[]).await;
        assert_eq!(proxied_key(&gw, &path, &new_key).await.status, 200);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn org_bound_key_scopes_are_limited_by_the_role() {
    for backend in backends().await {
        let echo = Echo::start("app").await;
        let gw = start_orgs(&backend, &echo).await;
        let owner = user(&gw, "owner@example.com").await;
        let viewer = user(&gw, "viewer@example.com").await;
        let stranger = user(&gw, "stranger@example.com").await;
        let org = create_org(&gw, owner.access(), "Acme").await;
        let elsewhere = create_org(&gw, stranger.access(), "Elsewhere").await;
        add(&gw, owner.access(), &org, &viewer.email, "viewer").await;

        let ask = |token: String, org: String, scopes: Value| {
            let gw = &gw;
            async move {
                create_key_resp(
                    gw,
                    &token,
                    json!({"name": "k", "scopes": scopes, "org_id": org}),
                )
                .await
            }
        };
        let v = viewer.access().to_string();
        for scopes in [
            json!(["orders:write"]),
            json!(["orders:read", "orders:write"]),
            json!(["members:manage"]),
            json!(["*"]),
        ] {
            let r = ask(v.clone(), org.clone(), scopes.clone()).await;
            assert_eq!(r.status, 403, "{}: {scopes}: {}", backend.name, r.text);
            problem(&r, 403, "scope_not_permitted");
        }
        let r = ask(v.clone(), org.clone(), json!(["orders:read"])).await;
        assert_eq!(r.status, 201, "{}: {}", backend.name, r.text);
        assert_eq!(r.json()["scopes"], json!(["orders:read"]));
        assert_eq!(r.json()["org_id"], org.as_str());
        // A key cannot manage orgs, nor mint keys.
        let key = r.json()["key"].as_str().unwrap().to_string();
        for (method, path) in [
            (reqwest::Method::GET, "/auth/orgs".to_string()),
            (reqwest::Method::GET, members_path(&org)),
            (reqwest::Method::POST, members_path(&org)),
            (reqwest::Method::POST, "/auth/api-keys".to_string()),
        ] {
            let r = send(
                client()
                    .request(method, gw.url(&path))
                    .header("X-API-Key", &key)
                    .json(&json!({"email": stranger.email, "role": "viewer", "name": "k"})),
            )
            .await;
            problem(&r, 401, "credential_not_accepted");
        }

        // Owners may grant anything; nobody binds a key to a foreign org.
        let r = ask(
            owner.access().to_string(),
            org.clone(),
            json!(["orders:write", "members:manage"]),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
        for target in [elsewhere.clone(), uuid::Uuid::new_v4().to_string()] {
            let r = ask(v.clone(), target.clone(), json!([])).await;
            problem(&r, 404, "not_found");
            let r = ask(owner.access().to_string(), target, json!(["orders:read"])).await;
            problem(&r, 404, "not_found");
        }
        let r = get(&gw, "/auth/api-keys", viewer.access()).await;
        let items = r.json()["items"].as_array().unwrap().clone();
        assert_eq!(items.len(), 1, "refusals create nothing: {}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn org_bound_key_follows_its_owners_role() {
    for backend in backends().await {
        let echo = Echo::start("app").await;
        let gw = start_orgs(&backend, &echo).await;
        let owner = user(&gw, "owner@example.com").await;
        let member = user(&gw, "member@example.com").await;
        let org = create_org(&gw, owner.access(), "Acme").await;
        let elsewhere = create_org(&gw, owner.access(), "Elsewhere").await;
        add(&gw, owner.access(), &org, &member.email, "member").await;
        let member = refreshed(&gw, &member).await;
        let key = org_key(&gw, member.access(), &org, &["orders:read", "orders:write"]).await;

        let admin_path = format!("/orgs/{org}/admin/settings");
        problem(
            &proxied_key(&gw, &admin_path, &key).await,
            403,
            "insufficient_role",
        );
        let r = proxied_key(&gw, &format!("/orgs/{org}/x"), &key).await;
        assert_eq!(r.status, 200, "{}: {}", backend.name, r.text);
        let seen = echo.last();
        assert_eq!(seen.header("X-Auth-Org-Role").as_deref(), Some("member"));
        assert_eq!(
            seen.header("X-Auth-Scopes").as_deref(),
            Some("orders:read orders:write")
        );
        // Even where the route names no org, the key acts in its own.
        let r = proxied_key(&gw, "/any/x", &key).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let seen = echo.last();
        assert_eq!(seen.header("X-Auth-Org-Id"), Some(org.clone()));
        assert_eq!(seen.header("X-Auth-Org-Role").as_deref(), Some("member"));
        // Bound to one org: another org's path is refused even were the
        // owner a member there.
        add(&gw, owner.access(), &elsewhere, &member.email, "owner").await;
        problem(
            &proxied_key(&gw, &format!("/orgs/{elsewhere}/x"), &key).await,
            403,
            "not_org_member",
        );

        let r = set_role(&gw, owner.access(), &org, &member.id, "admin").await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = proxied_key(&gw, &admin_path, &key).await;
        assert_eq!(
            r.status, 200,
            "{}: promoted without re-login: {}",
            backend.name, r.text
        );
        assert_eq!(
            echo.last().header("X-Auth-Org-Role").as_deref(),
            Some("admin")
        );

        let r = set_role(&gw, owner.access(), &org, &member.id, "viewer").await;
        assert_eq!(r.status, 200, "{}", r.text);
        problem(
            &proxied_key(&gw, &admin_path, &key).await,
            403,
            "insufficient_role",
        );
        let r = proxied_key(&gw, &format!("/orgs/{org}/x"), &key).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let seen = echo.last();
        assert_eq!(seen.header("X-Auth-Org-Role").as_deref(), Some("viewer"));
        assert_eq!(
            seen.header("X-Auth-Scopes").as_deref(),
            Some("orders:read"),
            "{}: a viewer's key loses the write scope",
            backend.name
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn org_changes_are_audited() {
    for backend in backends().await {
        let echo = Echo::start("app").await;
        let gw = start_orgs(&backend, &echo).await;
        let root = user(&gw, "root@example.com").await;
        common::accounts::set_superuser(&gw, &backend, &root.email, true).await;
        let root = refreshed(&gw, &root).await;
        assert_eq!(claims(root.access())["su"], true);
        let owner = user(&gw, "owner@example.com").await;
        let member = user(&gw, "member@example.com").await;
        let org = create_org(&gw, owner.access(), "Acme").await;
        add(&gw, owner.access(), &org, &member.email, "viewer").await;
        let r = set_role(&gw, owner.access(), &org, &member.id, "admin").await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = remove(&gw, owner.access(), &org, &member.id).await;
        assert_eq!(r.status, 204, "{}", r.text);

        let r = get(&gw, "/auth/admin/audit?limit=200", root.access()).await;
        assert_eq!(r.status, 200, "{}: {}", backend.name, r.text);
        let events = r.json()["items"].as_array().unwrap().clone();
        let find = |kind: &str| -> Value {
            events
                .iter()
                .find(|e| e["kind"] == kind)
                .unwrap_or_else(|| panic!("{}: no {kind} in {events:?}", backend.name))
                .clone()
        };
        let created = find("org_created");
        assert_eq!(created["user_id"], owner.id.as_str(), "{created}");
        assert_eq!(created["actor_id"], owner.id.as_str());
        assert_eq!(created["detail"]["org"], org.as_str(), "{created}");
        for (kind, role) in [
            ("org_member_added", json!("viewer")),
            ("org_member_role_changed", json!("admin")),
            ("org_member_removed", Value::Null),
        ] {
            let e = find(kind);
            assert_eq!(e["user_id"], member.id.as_str(), "{e}");
            assert_eq!(e["actor_id"], owner.id.as_str(), "{e}");
            assert_eq!(e["detail"]["org"], org.as_str(), "{e}");
            assert_eq!(e["detail"]["role"], role, "{e}");
            assert_eq!(e["ip"], "127.0.0.1", "{e}");
        }
        let kinds: Vec<&str> = events
            .iter()
            .filter(|e| e["kind"].as_str().unwrap().starts_with("org_"))
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "org_member_removed",
                "org_member_role_changed",
                "org_member_added",
                "org_created"
            ],
            "newest first"
        );
    }
}
