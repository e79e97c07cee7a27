//! Helpers for the organization suites: a gateway with org-scoped proxied
//! routes, users with their ids and tokens, the `/auth/orgs` calls, org-bound
//! API keys, token decoding and a superuser for the audit log.

use base64::Engine as _;
use serde_json::{json, Value};

use super::accounts::{self, Tokens};
use super::http::*;
use super::*;

/// Proxied org routes (JWT or API key), the admin-only one first since the
/// first matching rule wins, and `/any/**` for any credential without an org.
pub fn org_routes(echo: &Echo) -> String {
    format!(
        "{}\n[[routes]]\nname = \"any\"\npath = \"/any/**\"\nupstream = \"app\"\nauth = \"authenticated\"\n\
         \n[[routes]]\nname = \"org-admin\"\npath = \"/orgs/{{org_id}}/admin/**\"\nupstream = \"app\"\nauth = \"authenticated\"\norg_param = \"org_id\"\nroles = [\"admin\"]\n\
         \n[[routes]]\nname = \"org\"\npath = \"/orgs/{{org_id}}/**\"\nupstream = \"app\"\nauth = \"authenticated\"\norg_param = \"org_id\"\n",
        accounts::routes(echo)
    )
}

/// A gateway on `backend` with accounts, `/api/**` and the org routes.
pub async fn start_orgs(backend: &Backend, echo: &Echo) -> TestGateway {
    TestGateway::start(&format!(
        "{}{}{}",
        backend.config(),
        accounts::accounts(""),
        org_routes(echo)
    ))
    .await
}

/// A registered, logged-in user.
#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub email: String,
    pub tokens: Tokens,
}

impl User {
    pub fn access(&self) -> &str {
        &self.tokens.access
    }
}

/// Registers and logs in `email`.
pub async fn user(gw: &TestGateway, email: &str) -> User {
    let id = accounts::register(gw, email).await["id"]
        .as_str()
        .expect("a user id")
        .to_string();
    User {
        id,
        email: email.to_string(),
        tokens: accounts::login(gw, email).await,
    }
}

/// Refreshes `u`'s tokens (so the access token carries current orgs).
pub async fn refreshed(gw: &TestGateway, u: &User) -> User {
    let tokens = Tokens::from(&accounts::refresh(gw, &u.tokens.refresh).await);
    User {
        tokens,
        ..u.clone()
    }
}

/// A request with a JSON body and `token` as bearer.
pub async fn json_call(
    gw: &TestGateway,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Value,
) -> Resp {
    send(
        client()
            .request(method, gw.url(path))
            .header("Authorization", bearer(token))
            .json(&body),
    )
    .await
}

pub async fn get(gw: &TestGateway, path: &str, token: &str) -> Resp {
    accounts::authed(gw, reqwest::Method::GET, path, token).await
}

/// `POST /auth/orgs {name}`.
pub async fn create_org_resp(gw: &TestGateway, token: &str, name: &str) -> Resp {
    json_call(
        gw,
        reqwest::Method::POST,
        "/auth/orgs",
        token,
        json!({ "name": name }),
    )
    .await
}

/// Creates an org; returns its id.
pub async fn create_org(gw: &TestGateway, token: &str, name: &str) -> String {
    let r = create_org_resp(gw, token, name).await;
    assert_eq!(r.status, 201, "create org: {}", r.text);
    r.json()["id"].as_str().unwrap().to_string()
}

pub fn members_path(org: &str) -> String {
    format!("/auth/orgs/{org}/members")
}

pub fn member_path(org: &str, user_id: &str) -> String {
    format!("/auth/orgs/{org}/members/{user_id}")
}

/// `POST /auth/orgs/{org}/members` with `body`.
pub async fn add_resp(gw: &TestGateway, token: &str, org: &str, body: Value) -> Resp {
    json_call(gw, reqwest::Method::POST, &members_path(org), token, body).await
}

/// Adds `email` to `org` with `role`; returns the member view.
pub async fn add(gw: &TestGateway, token: &str, org: &str, email: &str, role: &str) -> Value {
    let r = add_resp(gw, token, org, json!({"email": email, "role": role})).await;
    assert_eq!(r.status, 201, "add {email} as {role}: {}", r.text);
    r.json()
}

/// `PATCH /auth/orgs/{org}/members/{user_id} {role}`.
pub async fn set_role(gw: &TestGateway, token: &str, org: &str, user_id: &str, role: &str) -> Resp {
    json_call(
        gw,
        reqwest::Method::PATCH,
        &member_path(org, user_id),
        token,
        json!({ "role": role }),
    )
    .await
}

/// `DELETE /auth/orgs/{org}/members/{user_id}`.
pub async fn remove(gw: &TestGateway, token: &str, org: &str, user_id: &str) -> Resp {
    accounts::authed(
        gw,
        reqwest::Method::DELETE,
        &member_path(org, user_id),
        token,
    )
    .await
}

/// `GET /auth/orgs/{org}/members` answered 200; returns (user id, role) pairs.
pub async fn member_roles(gw: &TestGateway, token: &str, org: &str) -> Vec<(String, String)> {
    let r = get(gw, &members_path(org), token).await;
    assert_eq!(r.status, 200, "members: {}", r.text);
    r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["user_id"].as_str().unwrap().to_string(),
                m["role"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The role `user_id` has in `org`, as its member list says.
pub async fn role_of(gw: &TestGateway, token: &str, org: &str, user_id: &str) -> Option<String> {
    member_roles(gw, token, org)
        .await
        .into_iter()
        .find(|(id, _)| id == user_id)
        .map(|(_, role)| role)
}

/// `POST /auth/api-keys` with `body`.
pub async fn create_key_resp(gw: &TestGateway, token: &str, body: Value) -> Resp {
    json_call(gw, reqwest::Method::POST, "/auth/api-keys", token, body).await
}

/// Creates a key bound to `org` with `scopes`; returns the secret.
pub async fn org_key(gw: &TestGateway, token: &str, org: &str, scopes: &[&str]) -> String {
    let r = create_key_resp(
        gw,
        token,
        json!({"name": "k", "scopes": scopes, "org_id": org}),
    )
    .await;
    assert_eq!(r.status, 201, "create key: {}", r.text);
    let body = r.json();
    assert_eq!(body["org_id"], org, "{body}");
    body["key"].as_str().unwrap().to_string()
}

/// `GET path` on the proxy with a bearer token.
pub async fn proxied(gw: &TestGateway, path: &str, token: &str) -> Resp {
    get(gw, path, token).await
}

/// `GET path` on the proxy with an `X-API-Key`.
pub async fn proxied_key(gw: &TestGateway, path: &str, key: &str) -> Resp {
    send(client().get(gw.url(path)).header("X-API-Key", key)).await
}

/// The claims of a JWT (decoded, not verified: the gateway's own token).
pub fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The `orgs` claim of an access token.
pub fn org_claim(jwt: &str) -> Value {
    claims(jwt)["orgs"].clone()
}
