//! Helpers for the registration and login suites: gateways with chosen
//! `[accounts]` keys (optionally trusting X-Forwarded-For so each attempt
//! can come from its own client IP), raw posts, token decoding.

use base64::Engine as _;
use serde_json::{json, Value};

use super::*;

pub const CHEAP: &str = "argon2 = { memory_kib = 1024, iterations = 1, parallelism = 1 }";
pub const THROTTLE_OFF: &str =
    "throttle = { login = \"1000/m\", register = \"1000/m\", forgot_password = \"10/h\" }";
pub const LOCKOUT_FAR: &str =
    "lockout = { max_failures = 1000, window = \"10m\", duration = \"15m\" }";
pub const LOCKOUT_3: &str = "lockout = { max_failures = 3, window = \"10m\", duration = \"15m\" }";
pub const JSON: &str = "application/json";
pub const FORM: &str = "application/x-www-form-urlencoded";
pub const PASSWORD: &str = "correct horse battery staple";
pub const WRONG: &str = "wrong password!";

/// `[accounts]` with a cheap argon2 cost and insecure cookies, plus `extra`.
pub fn accounts(extra: &[&str]) -> String {
    format!(
        "\n[accounts]\n{CHEAP}\ncookie_secure = false\n{}\n",
        extra.join("\n")
    )
}

/// A gateway on `backend` with `[accounts]` extra lines; `trust` makes it
/// believe the test client's X-Forwarded-For (one client IP per request).
pub async fn gateway(backend: &Backend, extra: &[&str], trust: bool) -> TestGateway {
    let body = format!("{}{}", backend.config(), accounts(extra));
    if trust {
        TestGateway::start_trusting_localhost(&body).await
    } else {
        TestGateway::start(&body).await
    }
}

/// No throttles, no lockout in reach.
pub async fn relaxed(backend: &Backend) -> TestGateway {
    gateway(backend, &[THROTTLE_OFF, LOCKOUT_FAR], false).await
}

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Resp {
    pub async fn read(r: reqwest::Response) -> Resp {
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        let text = r.text().await.unwrap();
        Resp {
            status,
            headers,
            text,
        }
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
    pub fn retry_after(&self) -> u64 {
        let v = self.header("retry-after").and_then(|v| v.parse().ok());
        v.unwrap_or_else(|| panic!("no Retry-After seconds: {:?}", self.headers))
    }
}

/// POSTs `body` as `content_type`, as client `ip` unless it is empty.
pub async fn post(url: &str, content_type: &str, body: impl Into<Vec<u8>>, ip: &str) -> Resp {
    let mut req = client().post(url).header("content-type", content_type);
    if !ip.is_empty() {
        req = req.header("x-forwarded-for", ip);
    }
    Resp::read(req.body(body.into()).send().await.unwrap()).await
}

pub async fn post_json(url: &str, body: &Value) -> Resp {
    post(url, JSON, body.to_string(), "").await
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    s.extend_pairs(pairs);
    s.finish()
}

pub async fn get_bearer(gw: &TestGateway, path: &str, token: &Value) -> Resp {
    let token = token.as_str().expect("a token string");
    let req = client().get(gw.url(path)).bearer_auth(token);
    Resp::read(req.send().await.unwrap()).await
}

pub fn assert_problem_resp(r: &Resp, status: u16, code: &str, ctx: &str) {
    assert_eq!(r.status, status, "{ctx}: status; body {}", r.text);
    let ct = r.header("content-type");
    assert_eq!(ct, Some("application/problem+json"), "{ctx}");
    assert_eq!(r.json()["code"], code, "{ctx}: body {}", r.text);
    assert_eq!(r.json()["status"], status, "{ctx}");
}

/// Registers a user; asserts 201 and returns the user JSON.
pub async fn register(
    gw: &TestGateway,
    email: &str,
    username: Option<&str>,
    password: &str,
) -> Value {
    let mut body = json!({"email": email, "password": password});
    if let Some(u) = username {
        body["username"] = json!(u);
    }
    let r = post_json(&gw.url("/auth/register"), &body).await;
    assert_eq!(r.status, 201, "register {email}: {}", r.text);
    r.json()
}

/// A JSON login `{email, password}` as client `ip` ("" = the peer).
pub async fn attempt(gw: &TestGateway, login: &str, password: &str, ip: &str) -> Resp {
    let body = json!({"email": login, "password": password}).to_string();
    post(&gw.url("/auth/login"), JSON, body, ip).await
}

/// Logs in; asserts 200 and returns the token pair.
pub async fn login(gw: &TestGateway, email: &str, password: &str) -> Value {
    let r = attempt(gw, email, password, "").await;
    assert_eq!(r.status, 200, "login {email}: {}", r.text);
    r.json()
}

pub fn b64json(segment: &str) -> Value {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let bytes = engine.decode(segment).expect("base64url segment");
    serde_json::from_slice(&bytes).expect("JSON segment")
}

/// (header, claims) of a JWT, unverified.
pub fn decode(token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWS compact token: {token}");
    (b64json(parts[0]), b64json(parts[1]))
}

pub fn assert_token_pair(pair: &Value, ctx: &str) {
    for field in ["access_token", "refresh_token", "session_id"] {
        let ok = pair[field].as_str().is_some_and(|s| !s.is_empty());
        assert!(ok, "{ctx}: {field} in {pair}");
    }
    assert_eq!(pair["token_type"], "bearer", "{ctx}: {pair}");
    assert_eq!(pair["expires_in"], 900, "{ctx}: {pair}");
}
