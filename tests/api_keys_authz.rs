//! What an API key may do (DESIGN.md §10 Tokens): route scopes, the
//! owner's current global roles and active flag (a key never does more than
//! its owner could do now), expiry, client-id binding, per-key rate limits,
//! no database lookups for forged or known-bad keys, and `last_used_at`
//! written in batches. Every test runs on each database backend.

mod common;

use std::time::{Duration, Instant};

use common::accounts::*;
use common::http::*;
use common::keys::*;
use common::*;
use serde_json::{json, Value};

const CLIENT_HEADER: &str = "\n[api_keys]\nclient_id_header = \"X-Site-UUID\"\n";

#[tokio::test(flavor = "multi_thread")]
async fn route_scopes_apply_to_keys() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = start_keys(&backend, &echo, "").await;
        let (_, token) = user(&gw, "scoped@example.com").await;
        let reader = new_key(&gw, &token, "reader", &[ORDERS_READ, "x:y"]).await;
        let writer = new_key(&gw, &token, "writer", &["orders:write", "orders:*", "*"]).await;
        let none = new_key(&gw, &token, "none", &[]).await;

        let r = with_key(&gw, "/scoped/x", &reader.key).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let before = echo.proxied().len();
        for k in [&writer, &none] {
            problem(
                &with_key(&gw, "/scoped/x", &k.key).await,
                403,
                "insufficient_scope",
            );
            problem(
                &with_bearer(&gw, "/scoped/x", &k.key).await,
                403,
                "insufficient_scope",
            );
        }
        assert_eq!(
            echo.proxied().len(),
            before,
            "{b}: a refused request was forwarded"
        );
        // Scopes do not matter where the route asks for none.
        assert_eq!(with_key(&gw, "/k/x", &none.key).await.status, 200, "{b}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_follows_its_owners_current_global_roles() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = start_keys(&backend, &echo, "").await;
        let admin = superuser(&gw, &backend).await;
        let (id, token) = user(&gw, "climber@example.com").await;
        let k = new_key(
            &gw,
            &token,
            "powerful",
            &["admin", "*", "superuser", ORDERS_READ],
        )
        .await;

        // Cached before each change: the change must still show at once.
        assert_eq!(with_key(&gw, "/k/x", &k.key).await.status, 200, "{b}");
        problem(
            &with_key(&gw, "/staff/x", &k.key).await,
            403,
            "insufficient_role",
        );

        admin_patch(&gw, &admin, &id, json!({"roles": ["admin"]})).await;
        let r = with_key(&gw, "/staff/x", &k.key).await;
        assert_eq!(r.status, 200, "{b}: granted role not seen: {}", r.text);
        assert_eq!(echo.last().header("X-Auth-Roles").as_deref(), Some("admin"));

        admin_patch(&gw, &admin, &id, json!({"roles": ["user"]})).await;
        let r = with_key(&gw, "/staff/x", &k.key).await;
        problem(&r, 403, "insufficient_role");
        // Still a valid key for what the owner may do.
        let r = with_key(&gw, "/scoped/x", &k.key).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn deactivating_the_owner_stops_their_keys_on_the_next_request() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = start_keys(&backend, &echo, "").await;
        let admin = superuser(&gw, &backend).await;
        let (id, token) = user(&gw, "leaver@example.com").await;
        let (_, other_token) = user(&gw, "stayer@example.com").await;
        let k = new_key(&gw, &token, "svc", &[]).await;
        let other = new_key(&gw, &other_token, "svc", &[]).await;
        assert_eq!(with_key(&gw, "/k/x", &k.key).await.status, 200, "{b}");

        admin_patch(&gw, &admin, &id, json!({"is_active": false})).await;
        let r = with_key(&gw, "/k/x", &k.key).await;
        problem(&r, 401, "invalid_api_key");
        problem(
            &with_bearer(&gw, "/keyonly/x", &k.key).await,
            401,
            "invalid_api_key",
        );
        assert_eq!(with_key(&gw, "/k/x", &other.key).await.status, 200, "{b}");
    }
}

/// `ApiKeyVerifier::evict_owner` promises "the next request looks them up
/// again" after a status change; that must hold for reactivation too.
#[tokio::test(flavor = "multi_thread")]
async fn reactivating_the_owner_restores_their_keys_on_the_next_request() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = start_keys(&backend, &echo, "").await;
        let admin = superuser(&gw, &backend).await;
        let (id, token) = user(&gw, "returner@example.com").await;
        let k = new_key(&gw, &token, "svc", &[]).await;
        assert_eq!(with_key(&gw, "/k/x", &k.key).await.status, 200, "{b}");
        admin_patch(&gw, &admin, &id, json!({"is_active": false})).await;
        problem(&with_key(&gw, "/k/x", &k.key).await, 401, "invalid_api_key");

        admin_patch(&gw, &admin, &id, json!({"is_active": true})).await;
        let r = with_key(&gw, "/k/x", &k.key).await;
        assert_eq!(
            r.status, 200,
            "{b}: reactivated owner's key still refused: {}",
            r.text
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_key_is_refused() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = start_keys(&backend, &echo, "").await;
        let (_, token) = user(&gw, "brief@example.com").await;
        let expiry = chrono::Utc::now() + chrono::Duration::seconds(5);
        let at = expiry.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let k = new_key_with(&gw, &token, json!({"name": "brief", "expires_at": at})).await;
        let shown = k.body["expires_at"].as_str().expect("expires_at");
        assert!(shown.ends_with('Z'), "{b}: {shown}");
        let shown = chrono::DateTime::parse_from_rfc3339(shown).unwrap();
        assert_eq!(shown.timestamp(), expiry.timestamp(), "{b}");

        let r = with_key(&gw, "/k/x", &k.key).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        // Wait until well past the expiry (cached as valid meanwhile).
        let until = expiry + chrono::Duration::seconds(2);
        while chrono::Utc::now() < until {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        problem(&with_key(&gw, "/k/x", &k.key).await, 401, "invalid_api_key");
        problem(
            &with_bearer(&gw, "/keyonly/x", &k.key).await,
            401,
            "invalid_api_key",
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_bound_to_a_client_id_needs_that_id() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = start_keys(&backend, &echo, CLIENT_HEADER).await;
        let (_, token) = user(&gw, "site@example.com").await;
        let site = uuid::Uuid::new_v4().to_string();
        let bound = new_key_with(&gw, &token, json!({"name": "site", "client_id": site})).await;
        let free = new_key(&gw, &token, "free", &[]).await;

        let before = echo.proxied().len();
        let r = with_key(&gw, "/k/x", &bound.key).await;
        problem(&r, 401, "client_id_mismatch");
        assert!(r.header("www-authenticate").unwrap().contains("Bearer"));
        let other = uuid::Uuid::new_v4().to_string();
        for wrong in [other.as_str(), "not-a-uuid", ""] {
            let r = with_key_headers(&gw, "/k/x", &bound.key, &[("X-Site-UUID", wrong)]).await;
            problem(&r, 401, "client_id_mismatch");
        }
        // Forging the forwarded header does not stand in for the real one.
        let r = with_key_headers(&gw, "/k/x", &bound.key, &[("X-Auth-Client-Id", &site)]).await;
        problem(&r, 401, "client_id_mismatch");
        assert_eq!(
            echo.proxied().len(),
            before,
            "{b}: a refused request was forwarded"
        );

        let r = with_key_headers(&gw, "/k/x", &bound.key, &[("X-Site-UUID", &site)]).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let seen = echo.last();
        assert_eq!(seen.header_all("X-Auth-Client-Id"), [site.as_str()], "{b}");
        assert_eq!(seen.header("X-Auth-Key-Id"), Some(bound.id.clone()));

        // A key without a client id needs no header.
        let r = with_key(&gw, "/k/x", &free.key).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert!(echo.last().header("X-Auth-Client-Id").is_none(), "{b}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_client_id_header_the_client_id_is_only_forwarded() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = start_keys(&backend, &echo, "").await;
        let (_, token) = user(&gw, "fwd@example.com").await;
        let site = uuid::Uuid::new_v4().to_string();
        let bound = new_key_with(&gw, &token, json!({"name": "site", "client_id": site})).await;
        let r = with_key(&gw, "/k/x", &bound.key).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(
            echo.last().header_all("X-Auth-Client-Id"),
            [site.as_str()],
            "{b}"
        );
        let other = uuid::Uuid::new_v4().to_string();
        let r = with_key_headers(&gw, "/k/x", &bound.key, &[("X-Site-UUID", &other)]).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(
            echo.last().header_all("X-Auth-Client-Id"),
            [site.as_str()],
            "{b}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_and_revoked_keys_never_flood_the_database() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = start_keys(&backend, &echo, "").await;
        let (_, token) = user(&gw, "flood@example.com").await;
        let revoked = new_key(&gw, &token, "gone", &[]).await;
        assert_eq!(with_key(&gw, "/k/x", &revoked.key).await.status, 200, "{b}");
        let path = format!("/auth/api-keys/{}", revoked.id);
        let r = authed(&gw, reqwest::Method::DELETE, &path, &token).await;
        assert_eq!(r.status, 204, "{b}: {}", r.text);

        let proxied = echo.proxied().len();
        let metrics = gw.metrics().await;
        let (miss0, rejected0) = (key_cache(&metrics, "miss"), key_cache(&metrics, "rejected"));

        let mut tasks = tokio::task::JoinSet::new();
        for worker in 0..8 {
            let http = client();
            let url = gw.url("/k/flood");
            let revoked = revoked.key.clone();
            tasks.spawn(async move {
                let mut statuses = Vec::new();
                for i in 0..150 {
                    // 125 random keys and 25 uses of the revoked key each.
                    let key = if i % 6 == 5 {
                        revoked.clone()
                    } else {
                        random_key()
                    };
                    let r = send(http.get(&url).header("X-API-Key", &key)).await;
                    statuses.push((worker, i, r.status, r.json()["code"].clone()));
                }
                statuses
            });
        }
        let mut count = 0;
        while let Some(done) = tasks.join_next().await {
            for (worker, i, status, code) in done.unwrap() {
                assert_eq!(status, 401, "{b}: worker {worker} request {i}");
                assert_eq!(code, "invalid_api_key", "{b}: worker {worker} request {i}");
                count += 1;
            }
        }
        assert_eq!(count, 1200);
        assert_eq!(
            echo.proxied().len(),
            proxied,
            "{b}: the upstream saw a request"
        );

        let metrics = gw.metrics().await;
        let (miss, rejected) = (key_cache(&metrics, "miss"), key_cache(&metrics, "rejected"));
        assert!(
            miss - miss0 <= 5,
            "{b}: {} database lookups for 1200 bad keys",
            miss - miss0
        );
        assert!(
            rejected - rejected0 >= 1000,
            "{b}: only {} refused without a lookup",
            rejected - rejected0
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_key_has_its_own_rate_budget() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = start_keys(&backend, &echo, "").await;
        let (_, token) = user(&gw, "limited@example.com").await;
        let a = new_key(&gw, &token, "a", &[]).await;
        let c = new_key(&gw, &token, "b", &[]).await;
        for i in 0..2 {
            let r = with_key(&gw, &format!("/limited/{i}"), &a.key).await;
            assert_eq!(r.status, 200, "{b}: request {i}: {}", r.text);
        }
        let r = with_key(&gw, "/limited/2", &a.key).await;
        problem(&r, 429, "rate_limited");
        assert!(r.header("retry-after").is_some(), "{b}");
        let r = with_bearer(&gw, "/limited/3", &c.key).await;
        assert_eq!(
            r.status, 200,
            "{b}: key B shares key A's budget: {}",
            r.text
        );
        let r = with_key(&gw, "/limited/4", &c.key).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        problem(
            &with_key(&gw, "/limited/5", &c.key).await,
            429,
            "rate_limited",
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn last_use_is_recorded_in_a_batch() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = start_keys(&backend, &echo, "").await;
        let (_, token) = user(&gw, "used@example.com").await;
        let used = new_key(&gw, &token, "used", &[]).await;
        let idle = new_key(&gw, &token, "idle", &[]).await;
        let listed = |r: &Resp, id: &str| -> Value {
            r.json()["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|k| k["id"] == id)
                .cloned()
                .unwrap_or_else(|| panic!("{id} not listed: {}", r.text))
        };
        let r = list_keys(&gw, &token, "").await;
        assert_eq!(listed(&r, &used.id)["last_used_at"], Value::Null, "{b}");

        let started = chrono::Utc::now().timestamp();
        for _ in 0..3 {
            assert_eq!(with_key(&gw, "/k/x", &used.key).await.status, 200, "{b}");
        }
        let deadline = Instant::now() + Duration::from_secs(25);
        let stamp = loop {
            let r = list_keys(&gw, &token, "").await;
            assert_eq!(r.status, 200, "{b}: {}", r.text);
            if let Some(at) = listed(&r, &used.id)["last_used_at"].as_str() {
                assert_eq!(listed(&r, &idle.id)["last_used_at"], Value::Null, "{b}");
                break at.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "{b}: last_used_at still null after 25 s"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        assert!(stamp.ends_with('Z'), "{b}: {stamp}");
        let at = chrono::DateTime::parse_from_rfc3339(&stamp)
            .unwrap()
            .timestamp();
        let now = chrono::Utc::now().timestamp();
        assert!(at >= started - 1 && at <= now, "{b}: {stamp}");
    }
}
