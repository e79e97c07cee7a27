//! Helpers for the TOTP suites: a gateway with a route that requires MFA,
//! codes computed with `totp-rs` (independently of the gateway) at times
//! read from the gateway's injectable clock, which is moved, never slept
//! on; registration, login with a second factor, setup and enable, and a
//! user with TOTP on.

use chrono::Duration;
use serde_json::{json, Value};
use totp_rs::{Algorithm, Secret, TOTP};

use super::accounts::{routes, Tokens, PASSWORD};
use super::http::{bearer, problem, send, Resp};
use super::login::{decode, THROTTLE_OFF};
use super::*;

/// The TOTP period in seconds.
pub const STEP: i64 = 30;

/// A proxied route that needs an access token with `otp` in `amr`.
pub const MFA_ROUTE: &str =
    "\n[[routes]]\nname = \"secure\"\npath = \"/secure/**\"\nupstream = \"app\"\nauth = \"jwt\"\nmfa = true\n";

/// A gateway on `backend` with cheap hashing, login/register throttles out
/// of the way, `extra` lines in `[accounts]` (a `[mail]` table must come
/// last), `/api/**` (JWT) and `/secure/**` (JWT + MFA).
pub async fn start(backend: &Backend, echo: &Echo, extra: &[&str]) -> TestGateway {
    let mut lines = vec![THROTTLE_OFF];
    lines.extend_from_slice(extra);
    TestGateway::start(&format!(
        "{}{}{}{MFA_ROUTE}",
        backend.config(),
        super::login::accounts(&lines),
        routes(echo)
    ))
    .await
}

pub fn totp(secret: &str) -> TOTP {
    let bytes = Secret::Encoded(secret.to_string())
        .to_bytes()
        .unwrap_or_else(|e| panic!("secret {secret} is not base32: {e:?}"));
    TOTP::new_unchecked(Algorithm::SHA1, 6, 1, STEP as u64, bytes)
}

/// The code of `secret` `steps` time steps away from the gateway's now.
pub fn code(gw: &TestGateway, secret: &str, steps: i64) -> String {
    let at = gw.state.accounts.clock.now().timestamp() + steps * STEP;
    totp(secret).generate(at as u64)
}

/// A six-digit code valid at none of the steps -2..=+2.
pub fn wrong_code(gw: &TestGateway, secret: &str) -> String {
    let valid: Vec<String> = (-2..=2).map(|s| code(gw, secret, s)).collect();
    (123_456..)
        .map(|n: u32| format!("{:06}", n % 1_000_000))
        .find(|c| !valid.contains(c))
        .unwrap()
}

/// Moves the gateway's clock to one second into the next time step, so a
/// test has ~28 s of real time before codes computed now go stale.
pub fn align(gw: &TestGateway) {
    let clock = &gw.state.accounts.clock;
    let into = clock.now().timestamp().rem_euclid(STEP);
    clock.advance(Duration::seconds(STEP - into + 1));
}

pub fn advance_steps(gw: &TestGateway, steps: i64) {
    gw.state
        .accounts
        .clock
        .advance(Duration::seconds(steps * STEP));
}

pub async fn register(gw: &TestGateway, email: &str) {
    let r = send(
        client()
            .post(gw.url("/auth/register"))
            .json(&json!({"email": email, "password": PASSWORD})),
    )
    .await;
    assert_eq!(r.status, 201, "register {email}: {}", r.text);
}

/// `POST /auth/login` with the password and the `extra` fields.
pub async fn login_with(gw: &TestGateway, email: &str, password: &str, extra: Value) -> Resp {
    let mut body = json!({"email": email, "password": password});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    send(client().post(gw.url("/auth/login")).json(&body)).await
}

pub async fn login_recovery(gw: &TestGateway, email: &str, code: &str) -> Resp {
    login_with(gw, email, PASSWORD, json!({ "recovery_code": code })).await
}

pub async fn post_auth(gw: &TestGateway, path: &str, token: &str, body: Value) -> Resp {
    send(
        client()
            .post(gw.url(path))
            .header("Authorization", bearer(token))
            .json(&body),
    )
    .await
}

/// `POST /auth/mfa/totp/setup` answered 200: (secret, otpauth URI).
pub async fn setup(gw: &TestGateway, token: &str) -> (String, String) {
    let r = post_auth(gw, "/auth/mfa/totp/setup", token, json!({})).await;
    assert_eq!(r.status, 200, "setup: {}", r.text);
    let b = r.json();
    (
        b["secret"].as_str().expect("a secret").to_string(),
        b["otpauth_uri"]
            .as_str()
            .expect("an otpauth_uri")
            .to_string(),
    )
}

pub async fn enable(gw: &TestGateway, token: &str, code: &str) -> Resp {
    post_auth(gw, "/auth/mfa/totp/enable", token, json!({ "code": code })).await
}

/// The recovery codes of an `enable` answered 200.
pub fn recovery_codes(r: &Resp) -> Vec<String> {
    assert_eq!(r.status, 200, "enable: {}", r.text);
    r.json()["recovery_codes"]
        .as_array()
        .unwrap_or_else(|| panic!("recovery_codes: {}", r.text))
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

/// A user with TOTP on, enabled with the code of the current step (the
/// clock aligned first): tokens from before (amr pwd), secret, recovery codes.
pub struct MfaUser {
    pub email: String,
    pub before: Tokens,
    pub secret: String,
    pub recovery: Vec<String>,
}

pub async fn mfa_user(gw: &TestGateway, email: &str) -> MfaUser {
    register(gw, email).await;
    let before = super::accounts::login(gw, email).await;
    let (secret, _) = setup(gw, &before.access).await;
    align(gw);
    let recovery = recovery_codes(&enable(gw, &before.access, &code(gw, &secret, 0)).await);
    MfaUser {
        email: email.to_string(),
        before,
        secret,
        recovery,
    }
}

/// The `amr` claim of an access token.
pub fn amr(access: &str) -> Value {
    decode(access).1["amr"].clone()
}

pub fn access_of(r: &Resp, ctx: &str) -> String {
    assert_eq!(r.status, 200, "{ctx}: {}", r.text);
    r.json()["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{ctx}: {}", r.text))
        .to_string()
}

pub fn assert_mfa_code_refused(r: &Resp, ctx: &str) {
    assert_eq!(r.status, 401, "{ctx}: {}", r.text);
    assert_eq!(r.json()["code"], "invalid_mfa_code", "{ctx}: {}", r.text);
}
