//! Refresh tokens from the outside (DESIGN.md §6, §10 "Tokens"): rotation,
//! reuse within and after the grace, concurrent refreshes, the refresh
//! cookie and its cross-site guards, and the absolute refresh lifetime.
//! Every test runs on each database backend.

mod common;

use std::time::Duration;

use common::accounts::*;
use common::http::*;
use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn refresh_rotates_and_the_new_access_token_is_forwarded() {
    for backend in backends().await {
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo, "").await;
        let t = register_and_login(&gw, "rot@example.com").await;
        let r = refresh(&gw, &t.refresh).await;
        let n = Tokens::from(&r);
        assert_ne!(
            n.refresh, t.refresh,
            "{}: rotation issues a new token",
            backend.name
        );
        assert_ne!(n.access, t.access);
        assert_eq!(n.session, t.session, "same session");
        let cookie = r.header("set-cookie").expect("refresh cookie");
        assert!(cookie.starts_with(&format!("portcullis_refresh={}", n.refresh)));

        let r = api(&gw, &n.access).await;
        assert_eq!(r.status, 200, "{}: {}", backend.name, r.text);
        let seen = echo.last();
        assert_eq!(
            seen.header("x-auth-session-id").as_deref(),
            Some(&*t.session)
        );
        assert_eq!(seen.header("x-auth-method").as_deref(), Some("jwt"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reuse_within_the_grace_is_refused_without_revoking() {
    for backend in backends().await {
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo, "").await;
        let t = register_and_login(&gw, "grace@example.com").await;
        let n = Tokens::from(&refresh(&gw, &t.refresh).await);
        let r = refresh(&gw, &t.refresh).await;
        problem(&r, 401, "refresh_token_rotated");
        assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
        // Not revoked: the access tokens and the newest refresh token work.
        assert_eq!(api(&gw, &n.access).await.status, 200, "{}", backend.name);
        assert_eq!(api(&gw, &t.access).await.status, 200);
        let newest = Tokens::from(&refresh(&gw, &n.refresh).await);
        assert_eq!(api(&gw, &newest.access).await.status, 200);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reuse_after_the_grace_revokes_the_whole_session() {
    for backend in backends().await {
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo, "refresh_reuse_grace = \"1s\"").await;
        let t = register_and_login(&gw, "reuse@example.com").await;
        let other = login(&gw, "reuse@example.com").await;
        let n = Tokens::from(&refresh(&gw, &t.refresh).await);
        tokio::time::sleep(Duration::from_millis(1200)).await;
        problem(&refresh(&gw, &t.refresh).await, 401, "refresh_token_reused");
        let r = refresh(&gw, &n.refresh).await;
        assert_eq!(
            r.status, 401,
            "{}: newest token dies too: {}",
            backend.name, r.text
        );
        assert_revoked(&gw, &n.access).await;
        assert_revoked(&gw, &t.access).await;
        // Only that session.
        assert_eq!(api(&gw, &other.access).await.status, 200);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_refreshes_of_one_token_have_exactly_one_winner() {
    for backend in backends().await {
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo, "").await;
        let t = register_and_login(&gw, "race@example.com").await;
        let url = gw.url("/auth/refresh");
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (url, token) = (url.clone(), t.refresh.clone());
                tokio::spawn(async move {
                    send(client().post(url).json(&json!({"refresh_token": token}))).await
                })
            })
            .collect();
        let mut statuses = Vec::new();
        for task in tasks {
            let r = task.await.unwrap();
            if r.status == 401 {
                assert_eq!(r.json()["code"], "refresh_token_rotated", "{}", r.text);
            }
            statuses.push(r.status);
        }
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "{}: {statuses:?}",
            backend.name
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 401).count(),
            7,
            "{statuses:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_by_cookie_and_its_cross_site_guards() {
    for backend in backends().await {
        let echo = Echo::start("app").await;
        let cors = "\n[cors]\nallowed_origins = [\"https://app.example\"]";
        let gw = start(&backend, &echo, cors).await;
        register(&gw, "cookie@example.com").await;
        let r = login_as(&gw, "cookie@example.com", PASSWORD, UA).await;
        let t = Tokens::from(&r);
        let set = r
            .header("set-cookie")
            .expect("login sets the refresh cookie");
        assert!(
            set.starts_with(&format!("portcullis_refresh={};", t.refresh)),
            "{set}"
        );
        for attr in ["HttpOnly", "SameSite=Lax", "Path=/auth"] {
            assert!(set.contains(attr), "{set}");
        }
        assert!(!set.contains("Secure"), "cookie_secure = false: {set}");

        let post = |cookie: &str| {
            client()
                .post(gw.url("/auth/refresh"))
                .header("Cookie", format!("portcullis_refresh={cookie}"))
        };
        let r = send(
            post(&t.refresh)
                .header("Content-Type", "application/json")
                .body(""),
        )
        .await;
        let n = Tokens::from(&r);
        assert_ne!(n.refresh, t.refresh, "{}", backend.name);

        // No JSON content type, no X-Requested-With: a possible form post;
        // or a foreign Origin.
        let json = "application/json";
        for rb in [
            post(&n.refresh)
                .header("Content-Type", "text/plain")
                .body(""),
            post(&n.refresh),
            post(&n.refresh)
                .header("Content-Type", json)
                .header("Origin", "https://evil.example"),
        ] {
            problem(&send(rb).await, 403, "cross_site_refused");
        }
        // The refused attempts did not consume the token.
        let r = send(post(&n.refresh).header("X-Requested-With", "XMLHttpRequest")).await;
        let n2 = Tokens::from(&r);

        let r = send(post(&n2.refresh).json(&json!({"refresh_token": "something-else"}))).await;
        problem(&r, 400, "conflicting_credentials");
        let r = send(
            client()
                .post(gw.url("/auth/refresh"))
                .header("Content-Type", "application/json")
                .body(""),
        )
        .await;
        assert_eq!(r.status, 422, "no token at all: {}", r.text);
        assert_eq!(r.json()["field"], "refresh_token");
        // The gateway's own origin (server.public_url) is allowed.
        let own = format!("http://{}", gw.addr);
        let r = send(
            post(&n2.refresh)
                .header("Content-Type", "application/json")
                .header("Origin", &own),
        )
        .await;
        let n2 = Tokens::from(&r);
        // So is one in cors.allowed_origins (DESIGN.md §10).
        let r = send(
            post(&n2.refresh)
                .header("Content-Type", "application/json")
                .header("Origin", "https://app.example"),
        )
        .await;
        let n2 = Tokens::from(&r);
        // Same token in body and cookie is fine.
        let r = send(post(&n2.refresh).json(&json!({"refresh_token": n2.refresh}))).await;
        assert_eq!(r.status, 200, "{}: {}", backend.name, r.text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cookie_alone_refreshes_with_an_empty_object_and_logs_out() {
    for backend in backends().await {
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo, "").await;
        let t = register_and_login(&gw, "cookie-only@example.com").await;
        let with_cookie = |path: &str, cookie: &str| {
            client()
                .post(gw.url(path))
                .header("Cookie", format!("portcullis_refresh={cookie}"))
        };
        let r = send(with_cookie("/auth/refresh", &t.refresh).json(&json!({}))).await;
        assert_eq!(
            r.status, 200,
            "{}: {{}} with the cookie: {}",
            backend.name, r.text
        );
        let n = Tokens::from(&r);
        let r = send(with_cookie("/auth/refresh", &n.refresh).json(&json!({"extra": 1}))).await;
        assert_field(&r, "extra", "unknown fields stay refused");

        // Logout with the cookie only: the same cross-site rule as refresh.
        let r = send(with_cookie("/auth/logout", &n.refresh)).await;
        problem(&r, 403, "cross_site_refused");
        assert_eq!(api(&gw, &n.access).await.status, 200, "not logged out");
        let r =
            send(with_cookie("/auth/logout", &n.refresh).header("X-Requested-With", "fetch")).await;
        assert_eq!(r.status, 204, "{}: {}", backend.name, r.text);
        let cleared = r.header("set-cookie").unwrap_or_default();
        assert!(
            cleared.starts_with("portcullis_refresh=;") && cleared.contains("Max-Age=0"),
            "{cleared}"
        );
        assert_revoked(&gw, &n.access).await;
        let r = send(with_cookie("/auth/refresh", &n.refresh).json(&json!({}))).await;
        problem(&r, 401, "invalid_refresh_token");
        // A stale cookie still gets cleared; no cookie and no token is a 401.
        let r =
            send(with_cookie("/auth/logout", &n.refresh).header("X-Requested-With", "fetch")).await;
        assert_eq!(r.status, 204, "{}", r.text);
        let r = send(client().post(gw.url("/auth/logout"))).await;
        problem(&r, 401, "unauthenticated");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_refresh_tokens_and_access_tokens_as_refresh_tokens_are_refused() {
    for backend in backends().await {
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo, "").await;
        let t = register_and_login(&gw, "garbage@example.com").await;
        for bad in ["garbage", "", &t.access] {
            let r = refresh(&gw, bad).await;
            problem(&r, 401, "invalid_refresh_token");
        }
        // A refresh token is not an access token either.
        let r = api(&gw, &t.refresh).await;
        assert_eq!(r.status, 401, "{}: {}", backend.name, r.text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_ttl_is_absolute_from_login() {
    // Wide margins: a slow CI machine may take seconds between steps, so
    // nothing here depends on how long a login or refresh takes.
    for backend in backends().await {
        let echo = Echo::start("app").await;
        let body = format!("{}{}{}", backend.config(), accounts(""), routes(&echo));
        let gw = TestGateway::start_extra("", "refresh_ttl = \"8s\"", &body).await;
        let first = register_and_login(&gw, "ttl@example.com").await;
        let logged_in = std::time::Instant::now();
        tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
        // Rotation inside the window works, but does not extend it: the
        // access token is capped at the session end, 8 s after login.
        let rotated = refresh(&gw, &first.refresh).await;
        assert_eq!(rotated.status, 200, "{}: {}", backend.name, rotated.text);
        let next = Tokens::from(&rotated);
        assert!(
            rotated.json()["expires_in"].as_u64().unwrap() <= 7,
            "{}: access token capped at the session end",
            backend.name
        );
        let end = std::time::Duration::from_millis(8500);
        tokio::time::sleep(end.saturating_sub(logged_in.elapsed())).await;
        let late = refresh(&gw, &next.refresh).await;
        problem(&late, 401, "invalid_refresh_token");
    }
}
