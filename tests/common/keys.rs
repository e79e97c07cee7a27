//! Helpers for the API-key suites: a gateway with routes of every auth
//! mode a key meets, key creation and listing, proxied calls with a key,
//! a superuser made straight in the database, and the api_key cache
//! counters.

use base64::Engine as _;
use serde_json::{json, Value};

use super::accounts::*;
use super::http::*;
use super::*;

pub const ORDERS_READ: &str = "orders:read";

/// Routes for keys, specific before broad: `/scoped/**` needs the scope
/// `orders:read`, `/staff/**` the global role `admin`, `/keyonly/**` takes
/// only API keys, `/limited/**` allows 2 requests a minute per key, `/k/**`
/// takes any credential; `/api/**` (from `routes`) takes only JWTs.
pub fn key_routes(echo: &Echo) -> String {
    let route = |name: &str, auth: &str, extra: &str| {
        format!(
            "\n[[routes]]\nname = \"{name}\"\npath = \"/{name}/**\"\nupstream = \"app\"\nauth = \"{auth}\"\n{extra}\n"
        )
    };
    format!(
        "{}{}{}{}{}{}",
        routes(echo),
        route("scoped", "authenticated", "scopes = [\"orders:read\"]"),
        route("staff", "authenticated", "roles = [\"admin\"]"),
        route("keyonly", "api_key", ""),
        route(
            "limited",
            "authenticated",
            "rate_limit = { key = \"key\", rate = \"2/m\", burst = 2 }"
        ),
        route("k", "authenticated", ""),
    )
}

/// A gateway on `backend` with the key routes, plus `tail` appended to the
/// config (e.g. an `[api_keys]` table).
pub async fn start_keys(backend: &Backend, echo: &Echo, tail: &str) -> TestGateway {
    TestGateway::start(&format!(
        "{}{}{}{tail}",
        backend.config(),
        accounts(""),
        key_routes(echo)
    ))
    .await
}

/// Registers and logs in `email`; returns (user id, access token).
pub async fn user(gw: &TestGateway, email: &str) -> (String, String) {
    let id = register(gw, email).await["id"]
        .as_str()
        .expect("registration returns the id")
        .to_string();
    (id, login(gw, email).await.access)
}

/// `POST /auth/api-keys` with `body` as the user `token`.
pub async fn create_key(gw: &TestGateway, token: &str, body: &Value) -> Resp {
    send(
        client()
            .post(gw.url("/auth/api-keys"))
            .header("Authorization", bearer(token))
            .json(body),
    )
    .await
}

/// A created key.
#[derive(Clone, Debug)]
pub struct Key {
    pub id: String,
    pub key: String,
    pub body: Value,
}

impl Key {
    pub fn from(r: &Resp) -> Key {
        let body = r.json();
        Key {
            id: body["id"]
                .as_str()
                .unwrap_or_else(|| panic!("id: {}", r.text))
                .to_string(),
            key: body["key"]
                .as_str()
                .unwrap_or_else(|| panic!("key: {}", r.text))
                .to_string(),
            body,
        }
    }
}

/// Creates a key from `body`, asserting 201.
pub async fn new_key_with(gw: &TestGateway, token: &str, body: Value) -> Key {
    let r = create_key(gw, token, &body).await;
    assert_eq!(r.status, 201, "create {body}: {}", r.text);
    Key::from(&r)
}

/// Creates a key `name` with `scopes`, asserting 201.
pub async fn new_key(gw: &TestGateway, token: &str, name: &str, scopes: &[&str]) -> Key {
    new_key_with(gw, token, json!({"name": name, "scopes": scopes})).await
}

/// `GET /auth/api-keys{query}`.
pub async fn list_keys(gw: &TestGateway, token: &str, query: &str) -> Resp {
    authed(
        gw,
        reqwest::Method::GET,
        &format!("/auth/api-keys{query}"),
        token,
    )
    .await
}

/// `GET path` with `X-API-Key: key` and extra headers.
pub async fn with_key_headers(
    gw: &TestGateway,
    path: &str,
    key: &str,
    headers: &[(&str, &str)],
) -> Resp {
    let mut rb = client().get(gw.url(path)).header("X-API-Key", key);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    send(rb).await
}

/// `GET path` with `X-API-Key: key`.
pub async fn with_key(gw: &TestGateway, path: &str, key: &str) -> Resp {
    with_key_headers(gw, path, key, &[]).await
}

/// `GET path` with `Authorization: Bearer key`.
pub async fn with_bearer(gw: &TestGateway, path: &str, key: &str) -> Resp {
    send(
        client()
            .get(gw.url(path))
            .header("Authorization", bearer(key)),
    )
    .await
}

/// `sk_` + 51 base64url characters (38 random bytes): shaped like a key of
/// this gateway, but with a tag it never issued.
pub fn random_key() -> String {
    let mut raw = Vec::with_capacity(48);
    for _ in 0..3 {
        raw.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    raw.truncate(38);
    let key = format!(
        "sk_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    );
    assert_eq!(key.len(), 3 + 51);
    key
}

/// Registers `root@example.com` as a superuser; returns its access token.
pub async fn superuser(gw: &TestGateway, backend: &Backend) -> String {
    register(gw, "root@example.com").await;
    set_superuser(gw, backend, "root@example.com", true).await;
    login(gw, "root@example.com").await.access
}

/// `PATCH /auth/admin/users/{id}` with `body`, asserting 200.
pub async fn admin_patch(gw: &TestGateway, admin: &str, id: &str, body: Value) {
    let r = send(
        client()
            .patch(gw.url(&format!("/auth/admin/users/{id}")))
            .header("Authorization", bearer(admin))
            .json(&body),
    )
    .await;
    assert_eq!(r.status, 200, "patch {body}: {}", r.text);
}

/// `portcullis_cache_requests_total{cache="api_key",result=…}`.
pub fn key_cache(metrics: &str, result: &str) -> u64 {
    let label = format!("result=\"{result}\"");
    metrics
        .lines()
        .filter(|l| l.starts_with("portcullis_cache_requests_total{"))
        .filter(|l| l.contains("cache=\"api_key\"") && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Scopes as a sorted list, from a JSON array or a space-separated string.
pub fn scope_set(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = match v {
        Value::Array(a) => a
            .iter()
            .map(|s| s.as_str().unwrap_or_default().to_string())
            .collect(),
        Value::String(s) => s.split_whitespace().map(str::to_string).collect(),
        other => panic!("not scopes: {other}"),
    };
    out.sort();
    out
}
