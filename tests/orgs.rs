//! Organizations through `/auth/orgs` (README "Account API"): creating and
//! listing orgs, adding members by email or id, paging the member list,
//! and who may change which membership (owner > admin > member > viewer,
//! anyone may leave, the last owner stays). Every test runs on each
//! database backend.

mod common;

use common::accounts::PASSWORD;
use common::http::*;
use common::orgs::*;
use common::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn orgs_are_created_listed_and_shown_in_the_profile() {
    for backend in backends().await {
        let echo = Echo::start("app").await;
        let gw = start_orgs(&backend, &echo).await;
        let alice = user(&gw, "alice@example.com").await;
        let bob = user(&gw, "bob@example.com").await;

        let r = create_org_resp(&gw, alice.access(), "  Acme Corp  ").await;
        assert_eq!(r.status, 201, "{}: {}", backend.name, r.text);
        let acme = r.json();
        assert_eq!(acme["name"], "Acme Corp", "the name is trimmed: {acme}");
        assert_eq!(acme["role"], "owner");
        let acme_id = acme["id"].as_str().unwrap().to_string();
        uuid::Uuid::parse_str(&acme_id).expect("the id is a UUID");
        assert!(
            acme["created_at"].as_str().unwrap().ends_with('Z'),
            "{acme}"
        );
        let globex = create_org(&gw, alice.access(), "Globex").await;
        let initech = create_org(&gw, bob.access(), "Initech").await;

        for bad in ["", "   ", "\t\n", "bell\u{7}", &"x".repeat(101)] {
            let r = create_org_resp(&gw, alice.access(), bad).await;
            problem(&r, 422, "validation_failed");
            assert_eq!(r.json()["field"], "name", "{bad:?}: {}", r.text);
        }
        let r = send(
            client()
                .post(gw.url("/auth/orgs"))
                .json(&json!({"name": "No token"})),
        )
        .await;
        assert_eq!(r.status, 401, "{}", r.text);

        let r = get(&gw, "/auth/orgs", alice.access()).await;
        assert_eq!(r.status, 200, "{}: {}", backend.name, r.text);
        let body = r.json();
        assert!(
            body.as_object().unwrap().contains_key("next_cursor"),
            "{body}"
        );
        assert_eq!(body["next_cursor"], Value::Null);
        let items = body["items"].as_array().unwrap();
        let mut ids: Vec<&str> = items.iter().map(|o| o["id"].as_str().unwrap()).collect();
        ids.sort();
        let mut expected = vec![acme_id.as_str(), globex.as_str()];
        expected.sort();
        assert_eq!(ids, expected, "only alice's orgs: {body}");
        let listed = items.iter().find(|o| o["id"] == acme_id.as_str()).unwrap();
        assert_eq!(listed, &acme, "the list shows what creation answered");

        let r = get(&gw, "/auth/orgs", bob.access()).await;
        let items = r.json()["items"].as_array().unwrap().clone();
        assert_eq!(items.len(), 1, "{}", r.text);
        assert_eq!(items[0]["id"], initech.as_str());
        assert_eq!(items[0]["role"], "owner");

        let r = get(&gw, "/auth/me", alice.access()).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let orgs = r.json()["orgs"].as_array().unwrap().clone();
        assert_eq!(orgs.len(), 2, "{}", r.text);
        let mine = orgs.iter().find(|o| o["id"] == acme_id.as_str()).unwrap();
        assert_eq!(mine["name"], "Acme Corp");
        assert_eq!(mine["role"], "owner");

        // Added to an org, bob sees it with his role there.
        add(&gw, alice.access(), &acme_id, &bob.email, "viewer").await;
        let r = get(&gw, "/auth/me", bob.access()).await;
        let orgs = r.json()["orgs"].as_array().unwrap().clone();
        let acme_for_bob = orgs.iter().find(|o| o["id"] == acme_id.as_str());
        assert_eq!(
            acme_for_bob.map(|o| o["role"].clone()),
            Some(json!("viewer")),
            "{}",
            r.text
        );
        let r = get(&gw, "/auth/orgs", bob.access()).await;
        assert_eq!(r.json()["items"].as_array().unwrap().len(), 2, "{}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn members_are_added_by_email_or_id_and_listed_in_pages() {
    for backend in backends().await {
        let echo = Echo::start("app").await;
        let gw = start_orgs(&backend, &echo).await;
        let owner = user(&gw, "owner@example.com").await;
        let r = send(client().post(gw.url("/auth/register")).json(&json!({
            "email": "Carol@Example.com",
            "password": PASSWORD,
            "username": "carol",
        })))
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let carol_id = r.json()["id"].as_str().unwrap().to_string();
        let dave = user(&gw, "dave@example.com").await;
        let org = create_org(&gw, owner.access(), "Acme").await;

        // By email (any case), then by id.
        let r = add_resp(
            &gw,
            owner.access(),
            &org,
            json!({"email": "carol@EXAMPLE.com", "role": "member"}),
        )
        .await;
        assert_eq!(r.status, 201, "{}: {}", backend.name, r.text);
        let carol = r.json();
        assert_eq!(carol["user_id"], carol_id.as_str(), "{carol}");
        assert_eq!(carol["email"], "Carol@Example.com");
        assert_eq!(carol["username"], "carol");
        assert_eq!(carol["role"], "member");
        assert!(
            carol["joined_at"].as_str().unwrap().ends_with('Z'),
            "{carol}"
        );
        let r = add_resp(
            &gw,
            owner.access(),
            &org,
            json!({"user_id": dave.id, "role": "viewer"}),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let d = r.json();
        assert_eq!(d["user_id"], dave.id.as_str());
        assert_eq!(d["email"], "dave@example.com");
        assert_eq!(d["username"], Value::Null);
        assert_eq!(d["role"], "viewer");

        // Bad requests add nobody.
        let nobody = uuid::Uuid::new_v4().to_string();
        let bad = [
            json!({"email": "dave@example.com", "user_id": dave.id, "role": "viewer"}),
            json!({"role": "viewer"}),
            json!({"email": "dave@example.com", "role": "superuser"}),
            json!({"email": "dave@example.com", "role": "Owner"}),
            json!({"email": "dave@example.com", "role": ""}),
        ];
        for (i, body) in bad.iter().enumerate() {
            let r = add_resp(&gw, owner.access(), &org, body.clone()).await;
            problem(&r, 422, "validation_failed");
            if i >= 2 {
                assert_eq!(r.json()["field"], "role", "{body}: {}", r.text);
            }
        }
        for body in [
            json!({"email": "ghost@example.com", "role": "member"}),
            json!({"user_id": nobody, "role": "member"}),
        ] {
            let r = add_resp(&gw, owner.access(), &org, body.clone()).await;
            problem(&r, 404, "not_found");
        }
        for body in [
            json!({"email": "carol@example.com", "role": "admin"}),
            json!({"user_id": dave.id, "role": "viewer"}),
            json!({"user_id": owner.id, "role": "member"}),
        ] {
            let r = add_resp(&gw, owner.access(), &org, body.clone()).await;
            problem(&r, 409, "already_member");
        }
        assert_eq!(
            role_of(&gw, owner.access(), &org, &carol_id)
                .await
                .as_deref(),
            Some("member"),
            "a refused re-add changes nothing"
        );
        assert_eq!(
            role_of(&gw, owner.access(), &org, &owner.id)
                .await
                .as_deref(),
            Some("owner")
        );

        // Three members, one per page, each exactly once.
        let mut seen: Vec<Value> = Vec::new();
        let mut cursor: Option<String> = None;
        for page in 0.. {
            assert!(page < 5, "paging never ended");
            let path = match &cursor {
                Some(c) => format!("{}?limit=1&cursor={c}", members_path(&org)),
                None => format!("{}?limit=1", members_path(&org)),
            };
            let r = get(&gw, &path, dave.access()).await;
            assert_eq!(r.status, 200, "{}: {path}: {}", backend.name, r.text);
            let body = r.json();
            let items = body["items"].as_array().unwrap();
            assert_eq!(items.len(), 1, "{body}");
            seen.push(items[0].clone());
            match body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        let mut ids: Vec<&str> = seen
            .iter()
            .map(|m| m["user_id"].as_str().unwrap())
            .collect();
        let mut expected = vec![owner.id.as_str(), carol_id.as_str(), dave.id.as_str()];
        ids.sort();
        expected.sort();
        assert_eq!(ids, expected, "{}: {seen:?}", backend.name);
        let r = get(&gw, &members_path(&org), owner.access()).await;
        let all = r.json();
        assert_eq!(all["next_cursor"], Value::Null);
        assert_eq!(all["items"].as_array().unwrap(), &seen, "same order");
        for m in &seen {
            for key in ["user_id", "email", "username", "role", "joined_at"] {
                assert!(m.get(key).is_some(), "{key} missing in {m}");
            }
        }
        for bad in ["limit=0", "limit=1000", "cursor=garbage"] {
            let r = get(
                &gw,
                &format!("{}?{bad}", members_path(&org)),
                owner.access(),
            )
            .await;
            problem(&r, 422, "validation_failed");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn only_admins_manage_members_and_only_owners_touch_owners() {
    for backend in backends().await {
        let echo = Echo::start("app").await;
        let gw = start_orgs(&backend, &echo).await;
        let owner = user(&gw, "owner@example.com").await;
        let admin = user(&gw, "admin@example.com").await;
        let member = user(&gw, "member@example.com").await;
        let viewer = user(&gw, "viewer@example.com").await;
        let extra = user(&gw, "extra@example.com").await;
        let org = create_org(&gw, owner.access(), "Acme").await;
        add(&gw, owner.access(), &org, &admin.email, "admin").await;
        add(&gw, owner.access(), &org, &member.email, "member").await;
        add(&gw, owner.access(), &org, &viewer.email, "viewer").await;

        // Members and viewers may look but not touch.
        for who in [&member, &viewer] {
            assert_eq!(member_roles(&gw, who.access(), &org).await.len(), 4);
            let r = add_resp(
                &gw,
                who.access(),
                &org,
                json!({"email": extra.email, "role": "viewer"}),
            )
            .await;
            problem(&r, 403, "insufficient_role");
            let other = if who.id == member.id {
                &viewer
            } else {
                &member
            };
            problem(
                &set_role(&gw, who.access(), &org, &other.id, "viewer").await,
                403,
                "insufficient_role",
            );
            problem(
                &remove(&gw, who.access(), &org, &other.id).await,
                403,
                "insufficient_role",
            );
        }
        problem(
            &set_role(&gw, member.access(), &org, &member.id, "admin").await,
            403,
            "insufficient_role",
        );
        assert_eq!(
            role_of(&gw, owner.access(), &org, &member.id)
                .await
                .as_deref(),
            Some("member"),
            "{}",
            backend.name
        );
        assert_eq!(member_roles(&gw, owner.access(), &org).await.len(), 4);

        // An admin manages members and admins, never owners.
        let r = add_resp(
            &gw,
            admin.access(),
            &org,
            json!({"email": extra.email, "role": "owner"}),
        )
        .await;
        problem(&r, 403, "insufficient_role");
        let r = add_resp(
            &gw,
            admin.access(),
            &org,
            json!({"email": extra.email, "role": "member"}),
        )
        .await;
        assert_eq!(r.status, 201, "{}: {}", backend.name, r.text);
        let r = set_role(&gw, admin.access(), &org, &viewer.id, "member").await;
        assert_eq!(r.status, 200, "{}", r.text);
        let body = r.json();
        assert_eq!(body["user_id"], viewer.id.as_str());
        assert_eq!(body["role"], "member");
        assert_eq!(body["email"], viewer.email.as_str());
        let r = set_role(&gw, admin.access(), &org, &member.id, "admin").await;
        assert_eq!(r.json()["role"], "admin", "{}", r.text);
        let r = set_role(&gw, admin.access(), &org, &member.id, "viewer").await;
        assert_eq!(r.json()["role"], "viewer", "{}", r.text);
        for (target, role) in [
            (&member, "owner"),
            (&admin, "owner"),
            (&owner, "admin"),
            (&owner, "viewer"),
        ] {
            problem(
                &set_role(&gw, admin.access(), &org, &target.id, role).await,
                403,
                "insufficient_role",
            );
        }
        problem(
            &remove(&gw, admin.access(), &org, &owner.id).await,
            403,
            "insufficient_role",
        );
        let r = set_role(&gw, admin.access(), &org, &member.id, "nobody").await;
        problem(&r, 422, "validation_failed");
        assert_eq!(r.json()["field"], "role");
        let r = remove(&gw, admin.access(), &org, &extra.id).await;
        assert_eq!(r.status, 204, "{}: {}", backend.name, r.text);
        assert_eq!(r.text, "");
        let r = remove(&gw, admin.access(), &org, &extra.id).await;
        problem(&r, 404, "not_found");
        let r = set_role(&gw, admin.access(), &org, &extra.id, "viewer").await;
        problem(&r, 404, "not_found");
        assert_eq!(
            role_of(&gw, owner.access(), &org, &owner.id)
                .await
                .as_deref(),
            Some("owner")
        );

        // Owners grant the owner role and remove owners.
        let r = set_role(&gw, owner.access(), &org, &admin.id, "owner").await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json()["role"], "owner");
        add(&gw, owner.access(), &org, &extra.email, "owner").await;
        let r = remove(&gw, admin.access(), &org, &extra.id).await;
        assert_eq!(r.status, 204, "a new owner removes another: {}", r.text);
        let mut roles = member_roles(&gw, owner.access(), &org).await;
        roles.sort();
        let mut expected = vec![
            (owner.id.clone(), "owner".to_string()),
            (admin.id.clone(), "owner".to_string()),
            (member.id.clone(), "viewer".to_string()),
            (viewer.id.clone(), "member".to_string()),
        ];
        expected.sort();
        assert_eq!(roles, expected, "{}", backend.name);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn anyone_may_leave_but_the_last_owner_stays() {
    for backend in backends().await {
        let echo = Echo::start("app").await;
        let gw = start_orgs(&backend, &echo).await;
        let first = user(&gw, "first@example.com").await;
        let second = user(&gw, "second@example.com").await;
        let viewer = user(&gw, "viewer@example.com").await;
        let admin = user(&gw, "admin@example.com").await;
        let org = create_org(&gw, first.access(), "Acme").await;
        add(&gw, first.access(), &org, &viewer.email, "viewer").await;
        add(&gw, first.access(), &org, &admin.email, "admin").await;

        // The sole owner can neither leave nor step down.
        problem(
            &remove(&gw, first.access(), &org, &first.id).await,
            409,
            "last_owner",
        );
        for role in ["admin", "member", "viewer"] {
            problem(
                &set_role(&gw, first.access(), &org, &first.id, role).await,
                409,
                "last_owner",
            );
        }
        let r = set_role(&gw, first.access(), &org, &first.id, "owner").await;
        assert_eq!(r.status, 200, "staying owner is fine: {}", r.text);
        assert_eq!(
            role_of(&gw, admin.access(), &org, &first.id)
                .await
                .as_deref(),
            Some("owner"),
            "{}",
            backend.name
        );

        // Anyone else may leave, whatever their role.
        let r = remove(&gw, viewer.access(), &org, &viewer.id).await;
        assert_eq!(r.status, 204, "{}: {}", backend.name, r.text);
        let r = remove(&gw, admin.access(), &org, &admin.id).await;
        assert_eq!(r.status, 204, "{}", r.text);
        let roles = member_roles(&gw, first.access(), &org).await;
        assert_eq!(roles, vec![(first.id.clone(), "owner".to_string())]);

        // With two owners, one may demote the other, then not themselves.
        add(&gw, first.access(), &org, &second.email, "owner").await;
        let r = set_role(&gw, second.access(), &org, &first.id, "admin").await;
        assert_eq!(r.status, 200, "{}: {}", backend.name, r.text);
        assert_eq!(r.json()["role"], "admin");
        problem(
            &set_role(&gw, second.access(), &org, &second.id, "member").await,
            409,
            "last_owner",
        );
        problem(
            &remove(&gw, second.access(), &org, &second.id).await,
            409,
            "last_owner",
        );
        // The demoted admin cannot take the owner role back.
        problem(
            &set_role(&gw, first.access(), &org, &first.id, "owner").await,
            403,
            "insufficient_role",
        );

        // Two owners again: one steps down itself, then one leaves.
        let r = set_role(&gw, second.access(), &org, &first.id, "owner").await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = set_role(&gw, first.access(), &org, &first.id, "member").await;
        assert_eq!(r.status, 200, "an owner of two steps down: {}", r.text);
        let r = set_role(&gw, second.access(), &org, &first.id, "owner").await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = remove(&gw, first.access(), &org, &first.id).await;
        assert_eq!(r.status, 204, "{}: {}", backend.name, r.text);
        let roles = member_roles(&gw, second.access(), &org).await;
        assert_eq!(roles, vec![(second.id.clone(), "owner".to_string())]);
        problem(
            &remove(&gw, second.access(), &org, &second.id).await,
            409,
            "last_owner",
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_owners_racing_to_step_down_leave_one_owner() {
    for backend in backends().await {
        let echo = Echo::start("app").await;
        let gw = start_orgs(&backend, &echo).await;
        let a = user(&gw, "a@example.com").await;
        let b = user(&gw, "b@example.com").await;
        let org = create_org(&gw, a.access(), "Acme").await;
        add(&gw, a.access(), &org, &b.email, "owner").await;

        for round in 0..3 {
            // Each demotes the other at the same time: exactly one wins.
            // The loser is refused as the last owner (both checked their
            // own role first) or as no longer an owner (it ran second).
            let (ra, rb) = tokio::join!(
                set_role(&gw, a.access(), &org, &b.id, "admin"),
                set_role(&gw, b.access(), &org, &a.id, "admin"),
            );
            let (won, lost) = match (ra.status, rb.status) {
                (200, _) => (&ra, &rb),
                (_, 200) => (&rb, &ra),
                _ => panic!(
                    "{} round {round}: nobody won: {} / {}",
                    backend.name, ra.text, rb.text
                ),
            };
            assert_eq!(won.json()["role"], "admin", "{}", won.text);
            let code = lost.json()["code"].clone();
            assert!(
                (lost.status, code.clone()) == (409, json!("last_owner"))
                    || (lost.status, code) == (403, json!("insufficient_role")),
                "{} round {round}: both owners stepped down: {}",
                backend.name,
                lost.text
            );
            let roles = member_roles(&gw, a.access(), &org).await;
            let owners: Vec<_> = roles.iter().filter(|(_, r)| r == "owner").collect();
            assert_eq!(owners.len(), 1, "{} round {round}: {roles:?}", backend.name);
            let (winner, other) = if owners[0].0 == a.id {
                (&a, &b)
            } else {
                (&b, &a)
            };
            let r = set_role(&gw, winner.access(), &org, &other.id, "owner").await;
            assert_eq!(r.status, 200, "{}", r.text);
        }
        assert_eq!(
            member_roles(&gw, a.access(), &org).await.len(),
            2,
            "{}",
            backend.name
        );
    }
}
