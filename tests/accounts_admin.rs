//! Superuser endpoints (DESIGN.md §6, §10 "Shapes"): user listing and
//! paging, user updates and their effect on live tokens, the audit log,
//! readiness, and behaviour while PostgreSQL is down. Every test runs on each database backend.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use base64::Engine;
use common::accounts::set_superuser;
use common::http::{bearer, problem, Resp};
use common::*;
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery staple";
const UA: &str = "accounts-admin-test/1.0";
const ADMIN: &str = "root@example.com";

const ACCOUNTS: &str = "\n[accounts]\nargon2 = { memory_kib = 1024, iterations = 1, parallelism = 1 }\ncookie_secure = false\nthrottle = { login = \"1000/m\", register = \"1000/m\" }\n";

fn routes(echo: &Echo) -> String {
    format!(
        "{}\n[[routes]]\nname = \"api\"\npath = \"/api/**\"\nupstream = \"app\"\nauth = \"jwt\"\n",
        upstream("app", &[echo.addr])
    )
}

async fn start(backend: &Backend, echo: &Echo) -> TestGateway {
    TestGateway::start(&format!("{}{}{}", backend.config(), ACCOUNTS, routes(echo))).await
}

async fn send(rb: reqwest::RequestBuilder) -> Resp {
    common::http::send(rb.header("User-Agent", UA)).await
}

/// The claims of a JWT (not verified: the gateway's own token).
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Registers `email`; returns the user's id.
async fn register(gw: &TestGateway, email: &str) -> String {
    let r = send(
        client()
            .post(gw.url("/auth/register"))
            .json(&json!({"email": email, "password": PASSWORD})),
    )
    .await;
    assert_eq!(r.status, 201, "register: {}", r.text);
    r.json()["id"].as_str().unwrap().to_string()
}

async fn login_resp(gw: &TestGateway, email: &str, password: &str) -> Resp {
    send(
        client()
            .post(gw.url("/auth/login"))
            .json(&json!({"email": email, "password": password})),
    )
    .await
}

/// Logs in; returns the token response body.
async fn login(gw: &TestGateway, email: &str) -> Value {
    let r = login_resp(gw, email, PASSWORD).await;
    assert_eq!(r.status, 200, "login {email}: {}", r.text);
    r.json()
}

async fn access(gw: &TestGateway, email: &str) -> String {
    login(gw, email).await["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Registers a superuser and returns (id, access token).
async fn superuser(gw: &TestGateway, backend: &Backend) -> (String, String) {
    let id = register(gw, ADMIN).await;
    set_superuser(gw, backend, ADMIN, true).await;
    let token = access(gw, ADMIN).await;
    assert_eq!(claims(&token)["su"], true, "the token says superuser");
    (id, token)
}

async fn get(gw: &TestGateway, path: &str, token: &str) -> Resp {
    send(
        client()
            .get(gw.url(path))
            .header("Authorization", bearer(token)),
    )
    .await
}

async fn patch_user(gw: &TestGateway, token: &str, id: &str, body: Value) -> Resp {
    send(
        client()
            .patch(gw.url(&format!("/auth/admin/users/{id}")))
            .header("Authorization", bearer(token))
            .json(&body),
    )
    .await
}

async fn api(gw: &TestGateway, token: &str) -> Resp {
    send(
        client()
            .get(gw.url("/api/x"))
            .header("Authorization", bearer(token)),
    )
    .await
}

/// Follows `next_cursor` from `path` with `limit`; returns every page.
async fn pages(gw: &TestGateway, path: &str, limit: u32, token: &str) -> Vec<Vec<Value>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let url = match &cursor {
            Some(c) => format!("{path}?limit={limit}&cursor={c}"),
            None => format!("{path}?limit={limit}"),
        };
        let r = get(gw, &url, token).await;
        assert_eq!(r.status, 200, "{url}: {}", r.text);
        let body = r.json();
        assert!(
            body.as_object().unwrap().contains_key("next_cursor"),
            "{body}"
        );
        let items = body["items"].as_array().unwrap().clone();
        assert!(items.len() <= limit as usize, "{body}");
        out.push(items);
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
    panic!("paging never ended");
}

#[tokio::test(flavor = "multi_thread")]
async fn users_are_listed_and_paged() {
    for backend in backends().await {
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo).await;
        let (admin_id, token) = superuser(&gw, &backend).await;
        let mut ids = HashSet::from([admin_id]);
        for i in 0..5 {
            ids.insert(register(&gw, &format!("user{i}@example.com")).await);
        }

        let r = get(&gw, "/auth/admin/users", &token).await;
        assert_eq!(r.status, 200, "{}: {}", backend.name, r.text);
        let body = r.json();
        assert_eq!(body["items"].as_array().unwrap().len(), 6, "{body}");
        assert_eq!(body["next_cursor"], Value::Null);
        assert!(!r.text.contains("argon2"), "no password hashes: {}", r.text);

        let r = get(&gw, "/auth/admin/users?limit=2", &token).await;
        assert_eq!(r.json()["items"].as_array().unwrap().len(), 2);
        assert!(r.json()["next_cursor"].is_string(), "{}", r.text);

        let pages = pages(&gw, "/auth/admin/users", 2, &token).await;
        let seen: Vec<String> = pages
            .iter()
            .flatten()
            .map(|u| u["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(seen.len(), 6, "{}: each user once: {seen:?}", backend.name);
        assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), ids);
        assert!(pages.iter().all(|p| !p.is_empty()), "{pages:?}");

        for bad in [
            "limit=0",
            "limit=1000",
            "cursor=garbage",
            "limit=x",
            "bogus=1",
        ] {
            let r = get(&gw, &format!("/auth/admin/users?{bad}"), &token).await;
            problem(&r, 422, "validation_failed");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_endpoints_need_a_superuser_in_the_database() {
    for backend in backends().await {
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo).await;
        let (_, admin_token) = superuser(&gw, &backend).await;
        let someone = register(&gw, "plain@example.com").await;
        let plain = access(&gw, "plain@example.com").await;

        for path in ["/auth/admin/users", "/auth/admin/audit"] {
            problem(&get(&gw, path, &plain).await, 403, "admin_required");
            let r = send(client().get(gw.url(path))).await;
            problem(&r, 401, "unauthenticated");
        }
        let r = patch_user(&gw, &plain, &someone, json!({"is_superuser": true})).await;
        problem(&r, 403, "admin_required");

        assert_eq!(
            get(&gw, "/auth/admin/users", &admin_token).await.status,
            200
        );
        // Demoted in the database: the token still says su, the API says no.
        set_superuser(&gw, &backend, ADMIN, false).await;
        assert_eq!(claims(&admin_token)["su"], true);
        let r = get(&gw, "/auth/admin/users", &admin_token).await;
        problem(&r, 403, "admin_required");
        let r = patch_user(&gw, &admin_token, &someone, json!({"is_active": false})).await;
        problem(&r, 403, "admin_required");
        assert_eq!(api(&gw, &plain).await.status, 200, "{}", backend.name);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn disabling_a_user_stops_their_tokens_and_roles_reach_the_next_token() {
    for backend in backends().await {
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo).await;
        let (_, admin) = superuser(&gw, &backend).await;
        let id = register(&gw, "bob@example.com").await;
        let bob = access(&gw, "bob@example.com").await;
        assert_eq!(api(&gw, &bob).await.status, 200);

        let r = patch_user(&gw, &admin, &id, json!({"is_active": false})).await;
        assert_eq!(r.status, 200, "{}: {}", backend.name, r.text);
        assert_eq!(r.json()["is_active"], false);
        problem(&api(&gw, &bob).await, 401, "token_revoked");
        problem(
            &login_resp(&gw, "bob@example.com", PASSWORD).await,
            403,
            "account_disabled",
        );

        let r = patch_user(&gw, &admin, &id, json!({"is_active": true})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json()["is_active"], true);
        let bob = access(&gw, "bob@example.com").await;
        assert_eq!(api(&gw, &bob).await.status, 200);
        assert_eq!(echo.last().header("x-auth-roles").as_deref(), Some("user"));

        let r = patch_user(&gw, &admin, &id, json!({"roles": ["user", "editor"]})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json()["roles"], json!(["user", "editor"]));
        let next = access(&gw, "bob@example.com").await;
        assert_eq!(claims(&next)["roles"], json!(["user", "editor"]));
        assert_eq!(api(&gw, &next).await.status, 200, "{}", backend.name);
        assert_eq!(
            echo.last().header("x-auth-roles").as_deref(),
            Some("user,editor")
        );

        let unknown = uuid::Uuid::new_v4().to_string();
        let r = patch_user(&gw, &admin, &unknown, json!({"is_active": false})).await;
        problem(&r, 404, "not_found");
        for roles in [json!(["superuser"]), json!(["a b"]), json!([""])] {
            let r = patch_user(&gw, &admin, &id, json!({ "roles": roles })).await;
            problem(&r, 422, "validation_failed");
            assert_eq!(r.json()["field"], "roles");
        }
        let r = patch_user(&gw, &admin, &id, json!({"colour": "red"})).await;
        assert_eq!(r.status, 422, "unknown field: {}", r.text);
        // Rejected changes changed nothing.
        assert_eq!(api(&gw, &next).await.status, 200);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_last_active_superuser_can_be_neither_demoted_nor_deactivated() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo).await;
        let (root_id, root) = superuser(&gw, &backend).await;
        for body in [
            json!({"is_superuser": false}),
            json!({"is_active": false}),
            json!({"is_active": false, "is_superuser": false, "roles": ["user"]}),
        ] {
            let r = patch_user(&gw, &root, &root_id, body.clone()).await;
            problem(&r, 409, "last_superuser");
            let detail = r.json()["detail"].as_str().unwrap_or("").to_string();
            assert!(detail.contains("superuser"), "{b}: {body}: {detail}");
        }
        // Nothing changed: the session lives, the rights stay, no audit row.
        let r = get(&gw, "/auth/admin/users", &root).await;
        assert_eq!(r.status, 200, "{b}: still an admin: {}", r.text);
        let items = r.json()["items"].as_array().unwrap().clone();
        let me = items
            .into_iter()
            .find(|u| u["id"] == root_id.as_str())
            .unwrap();
        assert_eq!(
            (me["is_active"].clone(), me["is_superuser"].clone()),
            (json!(true), json!(true)),
            "{b}: {me}"
        );
        let audit = get(&gw, "/auth/admin/audit?limit=100", &root).await.json();
        let updated = audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "admin_user_updated" || e["kind"] == "sessions_revoked");
        assert!(!updated, "{b}: refused changes are not audited: {audit}");

        // With a second superuser, one of them may step down, and then the
        // other is the last one.
        let bob_id = register(&gw, "bob@example.com").await;
        let r = patch_user(&gw, &root, &bob_id, json!({"is_superuser": true})).await;
        assert_eq!(r.status, 200, "{b}: promote: {}", r.text);
        let bob = access(&gw, "bob@example.com").await;
        let r = patch_user(&gw, &root, &root_id, json!({"is_superuser": false})).await;
        assert_eq!(
            r.status, 200,
            "{b}: demote self with another left: {}",
            r.text
        );
        assert_eq!(r.json()["is_superuser"], false, "{b}");
        for body in [json!({"is_superuser": false}), json!({"is_active": false})] {
            let r = patch_user(&gw, &bob, &bob_id, body).await;
            problem(&r, 409, "last_superuser");
        }
        // Changes that keep a superuser still work, on anyone.
        let r = patch_user(&gw, &bob, &root_id, json!({"is_active": false})).await;
        assert_eq!(r.status, 200, "{b}: deactivate a non-superuser: {}", r.text);
        let r = patch_user(&gw, &bob, &bob_id, json!({"roles": ["user", "ops"]})).await;
        assert_eq!(
            r.status, 200,
            "{b}: roles of the last superuser: {}",
            r.text
        );
        assert_eq!(get(&gw, "/auth/admin/users", &bob).await.status, 200, "{b}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_log_records_account_events_without_secrets() {
    for backend in backends().await {
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo).await;
        let (admin_id, admin) = superuser(&gw, &backend).await;
        let email = "carol@example.com";
        let id = register(&gw, email).await;
        let wrong = "wrong password for carol";
        problem(
            &login_resp(&gw, email, wrong).await,
            401,
            "invalid_credentials",
        );
        let tokens = login(&gw, email).await;
        let (carol, refresh) = (
            tokens["access_token"].as_str().unwrap(),
            tokens["refresh_token"].as_str().unwrap(),
        );
        let r = send(
            client()
                .post(gw.url("/auth/logout"))
                .header("Authorization", bearer(carol)),
        )
        .await;
        assert_eq!(r.status, 204);
        let r = patch_user(&gw, &admin, &id, json!({"roles": ["user", "auditor"]})).await;
        assert_eq!(r.status, 200, "{}", r.text);

        let r = get(&gw, "/auth/admin/audit", &admin).await;
        assert_eq!(r.status, 200, "{}: {}", backend.name, r.text);
        for secret in [PASSWORD, wrong, refresh, carol, admin.as_str()] {
            assert!(!r.text.contains(secret), "audit leaks {secret}: {}", r.text);
        }
        let body = r.json();
        assert_eq!(body["next_cursor"], Value::Null);
        let events = body["items"].as_array().unwrap();
        let carols: Vec<&Value> = events
            .iter()
            .filter(|e| e["user_id"] == id.as_str())
            .collect();
        let kinds: Vec<&str> = carols.iter().map(|e| e["kind"].as_str().unwrap()).collect();
        let expected = [
            "admin_user_updated",
            "logout",
            "login_succeeded",
            "login_failed",
            "user_registered",
        ];
        assert_eq!(kinds, expected, "{}: newest first: {body}", backend.name);
        for e in &carols {
            assert_eq!(e["ip"], "127.0.0.1", "{e}");
            assert_eq!(e["user_agent"], UA, "{e}");
            assert!(e["at"].as_str().unwrap().ends_with('Z'), "{e}");
        }
        assert_eq!(carols[0]["actor_id"], admin_id.as_str(), "who changed it");
        let times: Vec<&str> = events.iter().map(|e| e["at"].as_str().unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");

        let pages = pages(&gw, "/auth/admin/audit", 2, &admin).await;
        let ids: Vec<&str> = pages
            .iter()
            .flatten()
            .map(|e| e["id"].as_str().unwrap())
            .collect();
        let all: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
        // Paging walks the same list (plus the events reading it might add).
        assert_eq!(&ids[ids.len() - all.len()..], &all[..], "{}", backend.name);
        assert_eq!(
            ids.iter().collect::<HashSet<_>>().len(),
            ids.len(),
            "no repeats"
        );
        for bad in ["limit=0", "limit=1000", "cursor=garbage"] {
            let r = get(&gw, &format!("/auth/admin/audit?{bad}"), &admin).await;
            problem(&r, 422, "validation_failed");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_reports_the_database() {
    for backend in backends().await {
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo).await;
        let r = send(client().get(format!("http://{}/readyz", gw.admin))).await;
        assert_eq!(r.status, 200, "{}: {}", backend.name, r.text);
        assert_eq!(r.json()["database"], "up", "{}", r.text);
        assert_eq!(r.json()["status"], "ok", "{}", r.text);
    }
}

/// Re-allows connections to a database when dropped (also on panic).
struct AllowConnections {
    admin_url: String,
    name: String,
}

impl AllowConnections {
    async fn set(&self, allow: bool) {
        let pool = sqlx::PgPool::connect(&self.admin_url).await.unwrap();
        let sql = format!("ALTER DATABASE {} ALLOW_CONNECTIONS {allow}", self.name);
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap();
        if !allow {
            sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            )
            .bind(&self.name)
            .execute(&pool)
            .await
            .unwrap();
        }
        pool.close().await;
    }
}

impl Drop for AllowConnections {
    fn drop(&mut self) {
        // Drop may run inside a runtime: use a thread with its own.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(pool) = sqlx::PgPool::connect(&admin_url).await {
                    let sql = format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await;
                    pool.close().await;
                }
            })
        })
        .join();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_down_gives_503_and_recovers_without_restart() {
    let Ok(admin_url) = std::env::var(db::DATABASE_ENV) else {
        eprintln!("PostgreSQL not configured: skipped");
        return;
    };
    if admin_url.is_empty() {
        return;
    }
    for backend in backends()
        .await
        .into_iter()
        .filter(|b| b.name == "postgres")
    {
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo).await;
        register(&gw, "dave@example.com").await;
        let token = access(&gw, "dave@example.com").await;
        let name = backend.url.rsplit('/').next().unwrap().to_string();
        let guard = AllowConnections {
            admin_url: admin_url.clone(),
            name,
        };
        guard.set(false).await;

        let started = std::time::Instant::now();
        let r = tokio::time::timeout(
            Duration::from_secs(15),
            login_resp(&gw, "dave@example.com", PASSWORD),
        )
        .await
        .expect("login answers while the database is down, never hangs");
        problem(&r, 503, "service_unavailable");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        // JWT routes need no database.
        let r = tokio::time::timeout(Duration::from_secs(15), api(&gw, &token))
            .await
            .expect("proxied request answers");
        assert_eq!(r.status, 200, "{}", r.text);
        let r = send(client().get(format!("http://{}/readyz", gw.admin))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json()["database"], "down", "{}", r.text);

        guard.set(true).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let r = tokio::time::timeout(
                Duration::from_secs(15),
                login_resp(&gw, "dave@example.com", PASSWORD),
            )
            .await
            .expect("login answers");
            if r.status == 200 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no recovery: {} {}",
                r.status,
                r.text
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        drop(gw);
        drop(guard);
    }
}
