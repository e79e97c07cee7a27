//! Sessions from the outside (DESIGN.md §6): logout, session listing and
//! revocation, the session cap, password change, revocations surviving a
//! restart, and the profile endpoint. Every test runs on each database
//! backend.

mod common;

use common::accounts::*;
use common::http::*;
use common::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn logout_kills_the_session_at_once_and_only_that_session() {
    for backend in backends().await {
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo, "").await;
        let t = register_and_login(&gw, "logout@example.com").await;
        let other = login(&gw, "logout@example.com").await;
        assert_eq!(api(&gw, &t.access).await.status, 200);

        let r = logout(&gw, &t.access).await;
        let cookie = r.header("set-cookie").expect("logout clears the cookie");
        assert!(cookie.starts_with("portcullis_refresh=;"), "{cookie}");
        assert!(cookie.contains("Max-Age=0"), "{cookie}");

        assert_revoked(&gw, &t.access).await;
        let r = authed(&gw, reqwest::Method::GET, "/auth/me", &t.access).await;
        assert_eq!(r.status, 401, "{}", r.text);
        assert_eq!(refresh(&gw, &t.refresh).await.status, 401);

        assert_eq!(
            api(&gw, &other.access).await.status,
            200,
            "{}",
            backend.name
        );
        let r = authed(&gw, reqwest::Method::GET, "/auth/me", &other.access).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["email"], "logout@example.com");
        Tokens::from(&refresh(&gw, &other.refresh).await);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_are_listed_and_revoked_one_by_one_or_all_but_current() {
    for backend in backends().await {
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo, "").await;
        register(&gw, "sess@example.com").await;
        let a = Tokens::from(&login_as(&gw, "sess@example.com", PASSWORD, "browser-a").await);
        let b = Tokens::from(&login_as(&gw, "sess@example.com", PASSWORD, "browser-b").await);

        let r = authed(&gw, reqwest::Method::GET, "/auth/sessions", &a.access).await;
        assert_eq!(r.status, 200, "{}: {}", backend.name, r.text);
        let body = r.json();
        assert_eq!(body["next_cursor"], Value::Null);
        assert!(body.as_object().unwrap().contains_key("next_cursor"));
        let items = body["items"].as_array().unwrap();
        assert_eq!(items.len(), 2, "{body}");
        for s in items {
            for key in [
                "id",
                "created_at",
                "last_used_at",
                "ip",
                "user_agent",
                "current",
            ] {
                assert!(s.get(key).is_some(), "{key} missing in {s}");
            }
            assert_eq!(s["ip"], "127.0.0.1");
            let ua = if s["id"] == a.session.as_str() {
                "browser-a"
            } else {
                "browser-b"
            };
            assert_eq!(s["user_agent"], ua, "{s}");
            assert!(s["created_at"].as_str().unwrap().ends_with('Z'), "{s}");
        }
        let current: Vec<_> = items.iter().filter(|s| s["current"] == true).collect();
        assert_eq!(current.len(), 1, "{body}");
        assert_eq!(current[0]["id"], a.session.as_str());

        let path = format!("/auth/sessions/{}", b.session);
        let r = authed(&gw, reqwest::Method::DELETE, &path, &a.access).await;
        assert_eq!(r.status, 204, "{}", r.text);
        assert_revoked(&gw, &b.access).await;
        assert_eq!(refresh(&gw, &b.refresh).await.status, 401);
        assert_eq!(api(&gw, &a.access).await.status, 200);

        let path = format!("/auth/sessions/{}", uuid::Uuid::new_v4());
        let r = authed(&gw, reqwest::Method::DELETE, &path, &a.access).await;
        problem(&r, 404, "not_found");

        // Another user's session is not ours to see or revoke.
        let mallory = register_and_login(&gw, "mallory@example.com").await;
        let path = format!("/auth/sessions/{}", mallory.session);
        let r = authed(&gw, reqwest::Method::DELETE, &path, &a.access).await;
        problem(&r, 404, "not_found");
        assert_eq!(
            api(&gw, &mallory.access).await.status,
            200,
            "{}",
            backend.name
        );

        // Revoke all but the current one.
        let c = login(&gw, "sess@example.com").await;
        let d = login(&gw, "sess@example.com").await;
        let r = authed(&gw, reqwest::Method::DELETE, "/auth/sessions", &a.access).await;
        assert_eq!(r.status, 204, "{}", r.text);
        assert_revoked(&gw, &c.access).await;
        assert_revoked(&gw, &d.access).await;
        assert_eq!(api(&gw, &a.access).await.status, 200);
        assert_eq!(api(&gw, &mallory.access).await.status, 200);
        let r = authed(&gw, reqwest::Method::GET, "/auth/sessions", &a.access).await;
        let items = r.json()["items"].as_array().unwrap().clone();
        assert_eq!(items.len(), 1, "{}", r.text);
        assert_eq!(items[0]["id"], a.session.as_str());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn max_sessions_per_user_evicts_the_oldest() {
    for backend in backends().await {
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo, "max_sessions_per_user = 2").await;
        let first = register_and_login(&gw, "max@example.com").await;
        let second = login(&gw, "max@example.com").await;
        assert_eq!(api(&gw, &first.access).await.status, 200);
        let third = login(&gw, "max@example.com").await;
        assert_revoked(&gw, &first.access).await;
        assert_eq!(
            refresh(&gw, &first.refresh).await.status,
            401,
            "{}",
            backend.name
        );
        assert_eq!(
            api(&gw, &second.access).await.status,
            200,
            "{}",
            backend.name
        );
        assert_eq!(api(&gw, &third.access).await.status, 200);

        // The eviction is audited, in the login's own transaction, just
        // before the login that caused it.
        let db = gw.state.accounts.db().await.unwrap();
        let events = portcullis::store::audit::list(db, 10, None).await.unwrap();
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds[..2],
            ["login_succeeded", "session_evicted"],
            "{}",
            backend.name
        );
        let detail: Value = serde_json::from_str(&events[1].detail).unwrap();
        assert_eq!(
            detail,
            json!({"sessions": [first.session]}),
            "{}",
            backend.name
        );
        let detail: Value = serde_json::from_str(&events[0].detail).unwrap();
        assert_eq!(
            detail["session"],
            third.session.as_str(),
            "{}",
            backend.name
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn change_password_revokes_other_sessions() {
    for backend in backends().await {
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo, "").await;
        let email = "pw@example.com";
        let me = register_and_login(&gw, email).await;
        let other = login(&gw, email).await;
        let change = |body: Value| {
            send(
                client()
                    .post(gw.url("/auth/change-password"))
                    .header("Authorization", bearer(&me.access))
                    .json(&body),
            )
        };
        let new = "an entirely new passphrase";
        let r = change(json!({"current_password": "wrong password!!", "new_password": new})).await;
        problem(&r, 422, "validation_failed");
        assert_eq!(r.json()["field"], "current_password");
        let r = change(json!({"current_password": PASSWORD, "new_password": "short"})).await;
        problem(&r, 422, "validation_failed");
        assert_eq!(r.json()["field"], "new_password");
        assert_eq!(
            api(&gw, &other.access).await.status,
            200,
            "failures revoke nothing"
        );

        let r = change(json!({"current_password": PASSWORD, "new_password": new})).await;
        assert_eq!(r.status, 204, "{}: {}", backend.name, r.text);
        assert_revoked(&gw, &other.access).await;
        assert_eq!(refresh(&gw, &other.refresh).await.status, 401);
        assert_eq!(api(&gw, &me.access).await.status, 200, "{}", backend.name);
        Tokens::from(&refresh(&gw, &me.refresh).await);

        problem(
            &login_as(&gw, email, PASSWORD, UA).await,
            401,
            "invalid_credentials",
        );
        Tokens::from(&login_as(&gw, email, new, UA).await);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn revocations_survive_a_restart() {
    for backend in backends().await {
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo, "").await;
        let gone = register_and_login(&gw, "restart@example.com").await;
        let revoked = login(&gw, "restart@example.com").await;
        let live = login(&gw, "restart@example.com").await;
        logout(&gw, &gone.access).await;
        let path = format!("/auth/sessions/{}", revoked.session);
        let r = authed(&gw, reqwest::Method::DELETE, &path, &live.access).await;
        assert_eq!(r.status, 204);

        let gw = gw.restart().await;
        assert_revoked(&gw, &gone.access).await;
        assert_revoked(&gw, &revoked.access).await;
        assert_eq!(api(&gw, &live.access).await.status, 200, "{}", backend.name);
        assert_eq!(refresh(&gw, &gone.refresh).await.status, 401);
        Tokens::from(&refresh(&gw, &live.refresh).await);
    }
}

/// Ended sessions do not pile up: the purge pass deletes those revoked or
/// expired longer ago than any of their access tokens could verify (their
/// refresh tokens go with them), and keeps recent revocations, which a
/// restart must still reload.
#[tokio::test(flavor = "multi_thread")]
async fn ended_sessions_are_forgotten_once_their_tokens_are_dead() {
    use chrono::{Duration, Utc};
    use portcullis::store::sessions;
    for backend in backends().await {
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo, "").await;
        let old = register_and_login(&gw, "prune@example.com").await;
        let recent = login(&gw, "prune@example.com").await;
        let live = login(&gw, "prune@example.com").await;
        logout(&gw, &recent.access).await;
        let db = gw.state.accounts.db().await.unwrap();
        let old_id = old.session.parse().unwrap();
        // Revoked two hours ago: longer than its access tokens live.
        assert!(
            sessions::revoke(db, old_id, Utc::now() - Duration::hours(2))
                .await
                .unwrap()
        );

        let pruned = gw.state.accounts.prune_ended().await.unwrap();
        assert_eq!(pruned, 1, "{}", backend.name);
        assert_eq!(sessions::get(db, old_id).await.unwrap(), None);
        assert_eq!(refresh(&gw, &old.refresh).await.status, 401);
        let recent_id = recent.session.parse().unwrap();
        assert!(sessions::get(db, recent_id).await.unwrap().is_some());
        assert_eq!(gw.state.accounts.prune_ended().await.unwrap(), 0);

        let gw = gw.restart().await;
        assert_revoked(&gw, &recent.access).await;
        assert_eq!(api(&gw, &live.access).await.status, 200, "{}", backend.name);
        let live = Tokens::from(&refresh(&gw, &live.refresh).await);

        // Expired sessions go the same way: as if a whole refresh_ttl had
        // passed, the live session is gone too, and its tokens with it.
        let db = gw.state.accounts.db().await.unwrap();
        let later = Utc::now() + Duration::days(400);
        assert_eq!(
            sessions::prune(db, later).await.unwrap(),
            2,
            "{}",
            backend.name
        );
        assert_eq!(refresh(&gw, &live.refresh).await.status, 401);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn patch_me_sets_and_clears_the_username() {
    for backend in backends().await {
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo, "").await;
        let t = register_and_login(&gw, "prof@example.com").await;
        let patch = |body: Value| {
            send(
                client()
                    .patch(gw.url("/auth/me"))
                    .header("Authorization", bearer(&t.access))
                    .json(&body),
            )
        };
        let r = patch(json!({"username": "new_name"})).await;
        assert_eq!(r.status, 200, "{}: {}", backend.name, r.text);
        assert_eq!(r.json()["username"], "new_name");
        assert_eq!(r.json()["email"], "prof@example.com");
        let r = authed(&gw, reqwest::Method::GET, "/auth/me", &t.access).await;
        assert_eq!(r.json()["username"], "new_name", "{}", r.text);
        // The username now logs in too.
        let r = send(
            client()
                .post(gw.url("/auth/login"))
                .json(&json!({"username": "new_name", "password": PASSWORD})),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);

        for bad in ["ab", "has space", "x/y", &"a".repeat(33)] {
            let r = patch(json!({"username": bad})).await;
            problem(&r, 422, "validation_failed");
            assert_eq!(r.json()["field"], "username", "{}", r.text);
        }
        let r = patch(json!({"email": "other@example.com"})).await;
        assert_eq!(r.status, 422, "unknown field: {}", r.text);
        let r = patch(json!({})).await;
        assert_eq!(r.json()["username"], "new_name", "absent leaves it");

        let r = patch(json!({"username": null})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json()["username"], Value::Null);
        let r = authed(&gw, reqwest::Method::GET, "/auth/me", &t.access).await;
        assert_eq!(r.json()["username"], Value::Null, "{}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn account_endpoints_need_an_access_token() {
    for backend in backends().await {
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo, "").await;
        let t = register_and_login(&gw, "kinds@example.com").await;

        let r = send(client().get(gw.url("/auth/me"))).await;
        problem(&r, 401, "unauthenticated");
        let www = r.header("www-authenticate").expect("WWW-Authenticate");
        assert!(www.starts_with("Bearer"), "{www}");

        let r = send(client().get(gw.url("/auth/me")).header("X-API-Key", "sk_x")).await;
        assert_eq!(r.status, 401, "{}: {}", backend.name, r.text);
        assert_eq!(r.json()["code"], "credential_not_accepted", "{}", r.text);
        assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));

        let r = send(
            client()
                .get(gw.url("/auth/sessions"))
                .header("Authorization", bearer("sk_x")),
        )
        .await;
        assert_eq!(r.status, 401, "{}", r.text);

        // The refresh token is not an access token.
        let r = authed(&gw, reqwest::Method::GET, "/auth/me", &t.refresh).await;
        assert_eq!(r.status, 401, "{}", r.text);
        let r = authed(&gw, reqwest::Method::GET, "/auth/me", &t.access).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
}
