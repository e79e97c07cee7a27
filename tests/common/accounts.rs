//! Helpers for the account suites: a gateway with cheap hashing and a
//! proxied JWT route, registration, login, refresh, and proxied calls.

use serde_json::{json, Value};

use super::http::*;
use super::*;

pub const PASSWORD: &str = "correct horse battery staple";
pub const UA: &str = "accounts-sessions-test/1.0";

/// The `[accounts]` table: cheap hashing, plain-HTTP cookies, throttles out
/// of the way, plus `extra` keys.
pub fn accounts(extra: &str) -> String {
    format!(
        "\n[accounts]\nargon2 = {{ memory_kib = 1024, iterations = 1, parallelism = 1 }}\ncookie_secure = false\nthrottle = {{ login = \"1000/m\", register = \"1000/m\" }}\n{extra}\n"
    )
}

pub fn routes(echo: &Echo) -> String {
    format!(
        "{}\n[[routes]]\nname = \"api\"\npath = \"/api/**\"\nupstream = \"app\"\nauth = \"jwt\"\n",
        upstream("app", &[echo.addr])
    )
}

pub async fn start(backend: &Backend, echo: &Echo, extra: &str) -> TestGateway {
    TestGateway::start(&format!(
        "{}{}{}",
        backend.config(),
        accounts(extra),
        routes(echo)
    ))
    .await
}

#[derive(Clone, Debug)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub session: String,
}

impl Tokens {
    pub fn from(r: &Resp) -> Tokens {
        assert_eq!(r.status, 200, "token response: {}", r.text);
        let b = r.json();
        assert_eq!(b["token_type"], "bearer");
        assert!(b["expires_in"].as_u64().unwrap() > 0);
        Tokens {
            access: b["access_token"].as_str().unwrap().to_string(),
            refresh: b["refresh_token"].as_str().unwrap().to_string(),
            session: b["session_id"].as_str().unwrap().to_string(),
        }
    }
}

pub async fn register(gw: &TestGateway, email: &str) -> Value {
    let r = send(
        client()
            .post(gw.url("/auth/register"))
            .json(&json!({"email": email, "password": PASSWORD})),
    )
    .await;
    assert_eq!(r.status, 201, "register: {}", r.text);
    r.json()
}

pub async fn login_as(gw: &TestGateway, email: &str, password: &str, ua: &str) -> Resp {
    send(
        client()
            .post(gw.url("/auth/login"))
            .header("User-Agent", ua)
            .json(&json!({"email": email, "password": password})),
    )
    .await
}

pub async fn login(gw: &TestGateway, email: &str) -> Tokens {
    Tokens::from(&login_as(gw, email, PASSWORD, UA).await)
}

pub async fn register_and_login(gw: &TestGateway, email: &str) -> Tokens {
    register(gw, email).await;
    login(gw, email).await
}

pub async fn refresh(gw: &TestGateway, token: &str) -> Resp {
    send(
        client()
            .post(gw.url("/auth/refresh"))
            .json(&json!({"refresh_token": token})),
    )
    .await
}

/// `GET /api/x` (a proxied JWT route) with `token`.
pub async fn api(gw: &TestGateway, token: &str) -> Resp {
    send(
        client()
            .get(gw.url("/api/x"))
            .header("Authorization", bearer(token)),
    )
    .await
}

/// `GET /auth/me`, which must answer 200.
pub async fn me(gw: &TestGateway, access: &str) -> Resp {
    let r = authed(gw, reqwest::Method::GET, "/auth/me", access).await;
    assert_eq!(r.status, 200, "GET /auth/me: {}", r.text);
    r
}

/// Logs the session of `access` out; asserts the 204.
pub async fn logout(gw: &TestGateway, access: &str) -> Resp {
    let r = authed(gw, reqwest::Method::POST, "/auth/logout", access).await;
    assert_eq!(r.status, 204, "logout: {}", r.text);
    r
}

pub async fn authed(gw: &TestGateway, method: reqwest::Method, path: &str, token: &str) -> Resp {
    send(
        client()
            .request(method, gw.url(path))
            .header("Authorization", bearer(token)),
    )
    .await
}

pub async fn assert_revoked(gw: &TestGateway, token: &str) {
    problem(&api(gw, token).await, 401, "token_revoked");
}

/// Sets `is_superuser` straight in the database (what `user create
/// --superuser` does), bypassing the API.
pub async fn set_superuser(gw: &TestGateway, backend: &db::Backend, email: &str, on: bool) {
    let sql = if on {
        "UPDATE users SET is_superuser = TRUE WHERE email_key = $1"
    } else {
        "UPDATE users SET is_superuser = FALSE WHERE email_key = $1"
    };
    let key = email.to_lowercase();
    let n = if backend.name == "sqlite" {
        let path = gw.dir.path().join("data/portcullis.db");
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let n = sqlx::query(sql).bind(&key).execute(&pool).await.unwrap();
        pool.close().await;
        n.rows_affected()
    } else {
        let pool = sqlx::PgPool::connect(&backend.url).await.unwrap();
        let n = sqlx::query(sql).bind(&key).execute(&pool).await.unwrap();
        pool.close().await;
        n.rows_affected()
    };
    assert_eq!(n, 1, "no user {email}");
}
