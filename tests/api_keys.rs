//! API keys from the outside (DESIGN.md §4, §5, §6, §10): creation (the
//! secret shown once), listing without secrets and paging, validation,
//! revocation and rotation taking effect on the very next request, where a
//! key is accepted (headers only, routes by auth mode, never the account
//! endpoints), forged keys, and what the upstream sees. Every test runs on
//! each database backend.

mod common;

use common::accounts::*;
use common::http::*;
use common::keys::*;
use common::*;
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn keys_are_created_once_then_listed_without_secrets_and_paged() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = start_keys(&backend, &echo, "").await;
        let (_, token) = user(&gw, "lister@example.com").await;

        let r = list_keys(&gw, &token, "").await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.json(), json!({"items": [], "next_cursor": null}), "{b}");

        let client_id = uuid::Uuid::new_v4().to_string();
        let r = create_key(
            &gw,
            &token,
            &json!({"name": "ci", "scopes": ["orders:write", "orders:read"], "client_id": client_id}),
        )
        .await;
        assert_eq!(r.status, 201, "{b}: {}", r.text);
        let created = r.json();
        for field in [
            "id",
            "name",
            "key",
            "prefix",
            "scopes",
            "expires_at",
            "org_id",
            "client_id",
            "created_at",
            "last_used_at",
        ] {
            assert!(
                created.get(field).is_some(),
                "{b}: {field} missing: {created}"
            );
        }
        let first = Key::from(&r);
        assert!(first.key.starts_with("sk_"), "{b}: {created}");
        assert!(first.key.len() >= 3 + 43, "{b}: at least 32 random bytes");
        assert!(uuid::Uuid::parse_str(&first.id).is_ok(), "{b}: {created}");
        assert_eq!(created["name"], "ci");
        let prefix = created["prefix"].as_str().unwrap();
        assert!(
            prefix.starts_with("sk_") && first.key.starts_with(prefix),
            "{b}"
        );
        assert!(
            prefix.len() < first.key.len() / 2,
            "{b}: the prefix is short"
        );
        assert_eq!(
            scope_set(&created["scopes"]),
            ["orders:read", "orders:write"]
        );
        assert_eq!(created["client_id"], client_id.as_str());
        assert_eq!(created["expires_at"], Value::Null);
        assert_eq!(created["org_id"], Value::Null);
        assert_eq!(created["last_used_at"], Value::Null);
        assert!(
            created["created_at"].as_str().unwrap().ends_with('Z'),
            "{b}"
        );

        let second = new_key(&gw, &token, "deploy", &[]).await;
        let third = new_key(&gw, &token, "backup", &["backup:run"]).await;
        assert_ne!(first.key, second.key);

        let r = list_keys(&gw, &token, "").await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        for k in [&first, &second, &third] {
            assert!(
                !r.text.contains(&k.key),
                "{b}: a secret is listed: {}",
                r.text
            );
        }
        let body = r.json();
        assert_eq!(body["next_cursor"], Value::Null, "{b}");
        let items = body["items"].as_array().unwrap();
        let ids: Vec<&str> = items.iter().map(|k| k["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [&first.id, &second.id, &third.id], "{b}: {body}");
        for item in items {
            assert!(item.get("key").is_none(), "{b}: {item}");
            assert!(item.get("prefix").is_some(), "{b}: {item}");
        }
        assert_eq!(items[0]["prefix"], prefix);
        assert_eq!(items[0]["client_id"], client_id.as_str());

        // Paging: two, then the rest; the cursor is opaque.
        let r = list_keys(&gw, &token, "?limit=2").await;
        let page = r.json();
        assert_eq!(page["items"].as_array().unwrap().len(), 2, "{b}: {page}");
        let cursor = page["next_cursor"]
            .as_str()
            .expect("a next page")
            .to_string();
        let r = list_keys(&gw, &token, &format!("?limit=2&cursor={cursor}")).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let page = r.json();
        let rest = page["items"].as_array().unwrap();
        assert_eq!(rest.len(), 1, "{b}: {page}");
        assert_eq!(rest[0]["id"], third.id.as_str());
        assert_eq!(page["next_cursor"], Value::Null);

        // Another user sees none of them.
        let (_, other) = user(&gw, "other@example.com").await;
        let r = list_keys(&gw, &other, "").await;
        assert_eq!(r.json()["items"], json!([]), "{b}: {}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn creation_is_validated_field_by_field() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = start_keys(&backend, &echo, "").await;
        let (_, token) = user(&gw, "valid@example.com").await;
        let past = (chrono::Utc::now() - chrono::Duration::minutes(5))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let cases = [
            (json!({"scopes": ["a"]}), "name"),
            (json!({"name": "   ", "scopes": []}), "name"),
            (json!({"name": "x", "scopes": ["has space"]}), "scopes"),
            (json!({"name": "x", "scopes": [""]}), "scopes"),
            (
                json!({"name": "x", "scopes": [], "expires_at": past}),
                "expires_at",
            ),
            (json!({"name": "x", "expires_at": "tomorrow"}), "expires_at"),
        ];
        for (body, field) in cases {
            let r = create_key(&gw, &token, &body).await;
            problem(&r, 422, "validation_failed");
            assert_eq!(r.json()["field"], field, "{b}: {body}: {}", r.text);
        }
        let post = |ct: &str, body: &str| {
            client()
                .post(gw.url("/auth/api-keys"))
                .header("Authorization", bearer(&token))
                .header("Content-Type", ct)
                .body(body.to_string())
        };
        let r = send(post("application/json", "{\"name\": ")).await;
        problem(&r, 400, "invalid_json");
        let r = send(post("text/plain", "{\"name\": \"x\", \"scopes\": []}")).await;
        assert_eq!(r.status, 415, "{b}: {}", r.text);
        // Nothing was created.
        let r = list_keys(&gw, &token, "").await;
        assert_eq!(r.json()["items"], json!([]), "{b}: {}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn revoked_key_fails_on_the_next_request_and_only_its_owner_can_revoke() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = start_keys(&backend, &echo, "").await;
        let (_, alice) = user(&gw, "alice@example.com").await;
        let (_, mallory) = user(&gw, "mallory@example.com").await;
        let k = new_key(&gw, &alice, "svc", &[]).await;
        let keep = new_key(&gw, &alice, "keep", &[]).await;
        let theirs = new_key(&gw, &mallory, "theirs", &[]).await;
        assert_eq!(with_key(&gw, "/k/x", &k.key).await.status, 200, "{b}");

        // Someone else's key id is not found, and stays alive.
        let path = format!("/auth/api-keys/{}", theirs.id);
        problem(
            &authed(&gw, Method::DELETE, &path, &alice).await,
            404,
            "not_found",
        );
        let rot = format!("{path}/rotate");
        problem(
            &authed(&gw, Method::POST, &rot, &alice).await,
            404,
            "not_found",
        );
        assert_eq!(with_key(&gw, "/k/x", &theirs.key).await.status, 200, "{b}");
        let unknown = format!("/auth/api-keys/{}", uuid::Uuid::new_v4());
        problem(
            &authed(&gw, Method::DELETE, &unknown, &alice).await,
            404,
            "not_found",
        );
        let junk = "/auth/api-keys/not-a-uuid";
        problem(
            &authed(&gw, Method::DELETE, junk, &alice).await,
            404,
            "not_found",
        );

        let path = format!("/auth/api-keys/{}", k.id);
        let r = authed(&gw, Method::DELETE, &path, &alice).await;
        assert_eq!(r.status, 204, "{b}: {}", r.text);
        let r = with_key(&gw, "/k/x", &k.key).await;
        problem(&r, 401, "invalid_api_key");
        problem(
            &with_bearer(&gw, "/k/x", &k.key).await,
            401,
            "invalid_api_key",
        );
        problem(
            &authed(&gw, Method::DELETE, &path, &alice).await,
            404,
            "not_found",
        );
        let rot = format!("{path}/rotate");
        problem(
            &authed(&gw, Method::POST, &rot, &alice).await,
            404,
            "not_found",
        );

        let r = list_keys(&gw, &alice, "").await;
        let ids: Vec<Value> = r.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].clone())
            .collect();
        assert_eq!(ids, [json!(keep.id)], "{b}: {}", r.text);
        assert_eq!(with_key(&gw, "/k/x", &keep.key).await.status, 200, "{b}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_kills_the_old_key_at_once_and_keeps_its_settings() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = start_keys(&backend, &echo, "").await;
        let (_, token) = user(&gw, "rotor@example.com").await;
        let old = new_key(&gw, &token, "svc", &[ORDERS_READ]).await;
        // Cached as valid before the rotation.
        assert_eq!(
            with_key(&gw, "/scoped/x", &old.key).await.status,
            200,
            "{b}"
        );

        let path = format!("/auth/api-keys/{}/rotate", old.id);
        let r = authed(&gw, Method::POST, &path, &token).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let new = Key::from(&r);
        assert!(new.key.starts_with("sk_"), "{b}");
        assert_ne!(new.key, old.key);
        assert_eq!(new.body["name"], "svc");
        assert_eq!(scope_set(&new.body["scopes"]), [ORDERS_READ]);
        assert!(new.key.starts_with(new.body["prefix"].as_str().unwrap()));

        let r = with_key(&gw, "/scoped/x", &old.key).await;
        problem(&r, 401, "invalid_api_key");
        let r = with_key(&gw, "/scoped/x", &new.key).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(echo.last().header("X-Auth-Key-Id"), Some(new.id.clone()));

        let r = list_keys(&gw, &token, "").await;
        assert!(!r.text.contains(&new.key), "{b}: {}", r.text);
        let items = r.json()["items"].as_array().unwrap().clone();
        assert_eq!(items.len(), 1, "{b}: {}", r.text);
        assert_eq!(items[0]["id"], new.id.as_str());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_come_from_headers_only_and_only_where_the_route_takes_them() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = start_keys(&backend, &echo, "").await;
        let (_, jwt) = user(&gw, "modes@example.com").await;
        let k = new_key(&gw, &jwt, "svc", &[]).await;

        for path in ["/k/x", "/keyonly/x"] {
            let r = with_key(&gw, path, &k.key).await;
            assert_eq!(r.status, 200, "{b}: {path} X-API-Key: {}", r.text);
            let r = with_bearer(&gw, path, &k.key).await;
            assert_eq!(r.status, 200, "{b}: {path} Bearer: {}", r.text);
        }
        // A JWT where only keys go, a key where only JWTs go.
        let r = authed(&gw, Method::GET, "/keyonly/x", &jwt).await;
        problem(&r, 401, "credential_not_accepted");
        problem(
            &with_key(&gw, "/api/x", &k.key).await,
            401,
            "credential_not_accepted",
        );
        problem(
            &with_bearer(&gw, "/api/x", &k.key).await,
            401,
            "credential_not_accepted",
        );
        assert_eq!(
            authed(&gw, Method::GET, "/k/x", &jwt).await.status,
            200,
            "{b}"
        );

        // A key and a JWT at once is a conflict.
        let r = send(
            client()
                .get(gw.url("/k/x"))
                .header("X-API-Key", &k.key)
                .header("Authorization", bearer(&jwt)),
        )
        .await;
        problem(&r, 400, "conflicting_credentials");

        // Never from the query string: nothing reaches the upstream.
        let before = echo.proxied().len();
        for path in ["/k/x", "/keyonly/x"] {
            let r = send(client().get(gw.url(&format!("{path}?api_key={}", k.key)))).await;
            problem(&r, 401, "unauthenticated");
            assert!(r.header("www-authenticate").unwrap().contains("Bearer"));
        }
        assert_eq!(
            echo.proxied().len(),
            before,
            "{b}: the upstream saw a request"
        );

        // The account endpoints want the user's own token.
        for (method, path) in [
            (Method::GET, "/auth/me"),
            (Method::GET, "/auth/api-keys"),
            (Method::GET, "/auth/sessions"),
        ] {
            for rb in [
                client()
                    .request(method.clone(), gw.url(path))
                    .header("X-API-Key", &k.key),
                client()
                    .request(method.clone(), gw.url(path))
                    .header("Authorization", bearer(&k.key)),
            ] {
                problem(&send(rb).await, 401, "credential_not_accepted");
            }
        }
        for (path, body) in [
            ("/auth/api-keys", json!({"name": "escalate", "scopes": []})),
            (
                "/auth/change-password",
                json!({"current_password": PASSWORD, "new_password": "another long passphrase"}),
            ),
        ] {
            let rb = client()
                .post(gw.url(path))
                .header("X-API-Key", &k.key)
                .json(&body);
            problem(&send(rb).await, 401, "credential_not_accepted");
        }
        let rotate = format!("/auth/api-keys/{}/rotate", k.id);
        let rb = client()
            .post(gw.url(&rotate))
            .header("Authorization", bearer(&k.key));
        problem(&send(rb).await, 401, "credential_not_accepted");
        let r = list_keys(&gw, &jwt, "").await;
        assert_eq!(
            r.json()["items"].as_array().unwrap().len(),
            1,
            "{b}: {}",
            r.text
        );
        // The password is unchanged.
        login(&gw, "modes@example.com").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_and_forged_keys_are_refused_with_a_challenge() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = start_keys(&backend, &echo, "").await;
        let (_, token) = user(&gw, "forger@example.com").await;
        let real = new_key(&gw, &token, "svc", &[]).await.key;
        let mut flipped = real.clone().into_bytes();
        let i = flipped.len() - 5;
        flipped[i] = if flipped[i] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        let before = echo.proxied().len();
        for bad in [
            random_key(),
            flipped,
            real[..real.len() - 1].to_string(),
            format!("{real}A"),
            "sk_".to_string() + "x",
            "sk_!!!!".to_string(),
        ] {
            for r in [
                with_key(&gw, "/k/x", &bad).await,
                with_bearer(&gw, "/keyonly/x", &bad).await,
            ] {
                problem(&r, 401, "invalid_api_key");
                let challenge = r.header("www-authenticate").expect("a challenge");
                assert!(challenge.contains("Bearer"), "{b}: {challenge}");
            }
        }
        assert_eq!(
            echo.proxied().len(),
            before,
            "{b}: the upstream saw a request"
        );
        assert_eq!(with_key(&gw, "/k/x", &real).await.status, 200, "{b}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_gets_the_key_identity_and_never_the_key() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = start_keys(&backend, &echo, "").await;
        let (owner, token) = user(&gw, "owner@example.com").await;
        let client_id = uuid::Uuid::new_v4().to_string();
        let bound = new_key_with(
            &gw,
            &token,
            json!({"name": "site", "scopes": ["orders:write", "orders:read"], "client_id": client_id}),
        )
        .await;
        let plain = new_key(&gw, &token, "plain", &[]).await;
        let forged = uuid::Uuid::new_v4().to_string();
        let forgeries = [
            ("X-Auth-Key-Id", forged.as_str()),
            ("X-Auth-User-Id", forged.as_str()),
            ("X-Auth-Client-Id", forged.as_str()),
            ("X-Auth-Method", "jwt"),
        ];

        for via_header in [true, false] {
            let r = if via_header {
                with_key_headers(&gw, "/k/x", &bound.key, &forgeries).await
            } else {
                let mut rb = client()
                    .get(gw.url("/k/x"))
                    .header("Authorization", bearer(&bound.key));
                for (k, v) in forgeries {
                    rb = rb.header(k, v);
                }
                send(rb).await
            };
            assert_eq!(r.status, 200, "{b}: {}", r.text);
            let seen = echo.last();
            let ctx = format!("{b}, via X-API-Key: {via_header}: {:?}", seen.headers);
            assert_eq!(seen.header_all("X-Auth-Method"), ["api_key"], "{ctx}");
            assert_eq!(
                seen.header_all("X-Auth-Key-Id"),
                [bound.id.as_str()],
                "{ctx}"
            );
            assert_eq!(seen.header_all("X-Auth-User-Id"), [owner.as_str()], "{ctx}");
            assert_eq!(
                seen.header_all("X-Auth-Client-Id"),
                [client_id.as_str()],
                "{ctx}"
            );
            let scopes = seen.header("X-Auth-Scopes").expect("X-Auth-Scopes");
            assert_eq!(
                scope_set(&Value::String(scopes)),
                ["orders:read", "orders:write"],
                "{ctx}"
            );
            assert!(seen.header("X-API-Key").is_none(), "{ctx}");
            assert!(seen.header("Authorization").is_none(), "{ctx}");
            for (name, value) in &seen.headers {
                assert!(
                    !value.contains(&bound.key),
                    "{ctx}: the key leaked in {name}"
                );
            }
        }

        // No client id: none forwarded, a forged one is dropped.
        let r = with_key_headers(&gw, "/keyonly/x", &plain.key, &forgeries).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let seen = echo.last();
        assert_eq!(seen.header_all("X-Auth-Key-Id"), [plain.id.as_str()], "{b}");
        assert!(
            seen.header("X-Auth-Client-Id").is_none(),
            "{b}: {:?}",
            seen.headers
        );
        assert!(
            seen.header("X-Auth-Scopes").is_none(),
            "{b}: no scopes, no header"
        );
        assert!(seen.header("X-API-Key").is_none(), "{b}");

        // A JWT carries no key id, whatever the client sends.
        let r = send(
            client()
                .get(gw.url("/k/x"))
                .header("Authorization", bearer(&token))
                .header("X-Auth-Key-Id", &forged),
        )
        .await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let seen = echo.last();
        assert_eq!(seen.header("X-Auth-Method").as_deref(), Some("jwt"), "{b}");
        assert!(
            seen.header("X-Auth-Key-Id").is_none(),
            "{b}: {:?}",
            seen.headers
        );
    }
}
