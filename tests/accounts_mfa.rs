//! TOTP second factor from the outside: setup (the secret shown once, the
//! otpauth URI), enable (recovery codes), login with a code per time step
//! (once each, ±1 step, never older than the last one used), recovery
//! codes, lockout, `amr` in access and refreshed tokens, the OAuth password
//! grant, routes that require MFA, disable, and password reset keeping TOTP
//! on. Codes are computed with `totp-rs`, independently of the gateway, at
//! times read from the gateway's injectable clock (moved, never slept on).
//! Every test runs on each database backend.

mod common;

use chrono::Duration;
use common::accounts::{api, refresh, routes, Tokens, PASSWORD};
use common::http::{bearer, problem, send, Resp};
use common::login::{decode, form, LOCKOUT_3, LOCKOUT_FAR, THROTTLE_OFF};
use common::mail::{mails_to, Mail, MAIL_FILE};
use common::*;
use serde_json::{json, Value};
use totp_rs::{Algorithm, Secret, TOTP};

/// The TOTP period in seconds.
const STEP: i64 = 30;

/// A proxied route that needs an access token with `otp` in `amr`.
const MFA_ROUTE: &str =
    "\n[[routes]]\nname = \"secure\"\npath = \"/secure/**\"\nupstream = \"app\"\nauth = \"jwt\"\nmfa = true\n";

/// A gateway on `backend` with cheap hashing, login/register throttles out
/// of the way, `extra` lines in `[accounts]` (a `[mail]` table must come
/// last), `/api/**` (JWT) and `/secure/**` (JWT + MFA).
async fn start(backend: &Backend, echo: &Echo, extra: &[&str]) -> TestGateway {
    let mut lines = vec![THROTTLE_OFF];
    lines.extend_from_slice(extra);
    TestGateway::start(&format!(
        "{}{}{}{MFA_ROUTE}",
        backend.config(),
        common::login::accounts(&lines),
        routes(echo)
    ))
    .await
}

fn totp(secret: &str) -> TOTP {
    let bytes = Secret::Encoded(secret.to_string())
        .to_bytes()
        .unwrap_or_else(|e| panic!("secret {secret} is not base32: {e:?}"));
    TOTP::new_unchecked(Algorithm::SHA1, 6, 1, STEP as u64, bytes)
}

/// The code of `secret` `steps` time steps away from the gateway's now.
fn code(gw: &TestGateway, secret: &str, steps: i64) -> String {
    let at = gw.state.accounts.clock.now().timestamp() + steps * STEP;
    totp(secret).generate(at as u64)
}

/// A six-digit code valid at none of the steps -2..=+2.
fn wrong_code(gw: &TestGateway, secret: &str) -> String {
    let valid: Vec<String> = (-2..=2).map(|s| code(gw, secret, s)).collect();
    (123_456..)
        .map(|n: u32| format!("{:06}", n % 1_000_000))
        .find(|c| !valid.contains(c))
        .unwrap()
}

/// Moves the gateway's clock to one second into the next time step, so a
/// test has ~28 s of real time before codes computed now go stale.
fn align(gw: &TestGateway) {
    let clock = &gw.state.accounts.clock;
    let into = clock.now().timestamp().rem_euclid(STEP);
    clock.advance(Duration::seconds(STEP - into + 1));
}

fn advance_steps(gw: &TestGateway, steps: i64) {
    gw.state
        .accounts
        .clock
        .advance(Duration::seconds(steps * STEP));
}

async fn register(gw: &TestGateway, email: &str) {
    let r = send(
        client()
            .post(gw.url("/auth/register"))
            .json(&json!({"email": email, "password": PASSWORD})),
    )
    .await;
    assert_eq!(r.status, 201, "register {email}: {}", r.text);
}

/// `POST /auth/login` with the password and the `extra` fields.
async fn login_with(gw: &TestGateway, email: &str, password: &str, extra: Value) -> Resp {
    let mut body = json!({"email": email, "password": password});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    send(client().post(gw.url("/auth/login")).json(&body)).await
}

async fn login_code(gw: &TestGateway, email: &str, code: &str) -> Resp {
    login_with(gw, email, PASSWORD, json!({ "totp_code": code })).await
}

async fn login_recovery(gw: &TestGateway, email: &str, code: &str) -> Resp {
    login_with(gw, email, PASSWORD, json!({ "recovery_code": code })).await
}

async fn post_auth(gw: &TestGateway, path: &str, token: &str, body: Value) -> Resp {
    send(
        client()
            .post(gw.url(path))
            .header("Authorization", bearer(token))
            .json(&body),
    )
    .await
}

async fn me(gw: &TestGateway, token: &str) -> Resp {
    let r = send(
        client()
            .get(gw.url("/auth/me"))
            .header("Authorization", bearer(token)),
    )
    .await;
    assert_eq!(r.status, 200, "me: {}", r.text);
    r
}

/// `POST /auth/mfa/totp/setup` answered 200: (secret, otpauth URI).
async fn setup(gw: &TestGateway, token: &str) -> (String, String) {
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

async fn enable(gw: &TestGateway, token: &str, code: &str) -> Resp {
    post_auth(gw, "/auth/mfa/totp/enable", token, json!({ "code": code })).await
}

async fn disable(gw: &TestGateway, token: &str, password: &str, code: &str) -> Resp {
    let body = json!({"password": password, "code": code});
    post_auth(gw, "/auth/mfa/totp/disable", token, body).await
}

/// The recovery codes of an `enable` answered 200.
fn recovery_codes(r: &Resp) -> Vec<String> {
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
struct MfaUser {
    email: String,
    before: Tokens,
    secret: String,
    recovery: Vec<String>,
}

async fn mfa_user(gw: &TestGateway, email: &str) -> MfaUser {
    register(gw, email).await;
    let before = common::accounts::login(gw, email).await;
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
fn amr(access: &str) -> Value {
    decode(access).1["amr"].clone()
}

fn access_of(r: &Resp, ctx: &str) -> String {
    assert_eq!(r.status, 200, "{ctx}: {}", r.text);
    r.json()["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{ctx}: {}", r.text))
        .to_string()
}

fn assert_field(r: &Resp, field: &str, ctx: &str) {
    problem(r, 422, "validation_failed");
    assert_eq!(r.json()["field"], field, "{ctx}: {}", r.text);
}

fn assert_mfa_code_refused(r: &Resp, ctx: &str) {
    assert_eq!(r.status, 401, "{ctx}: {}", r.text);
    assert_eq!(r.json()["code"], "invalid_mfa_code", "{ctx}: {}", r.text);
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .unwrap()
        .to_string()
}

/// (label, query pairs) of an `otpauth://totp/` URI.
fn parse_otpauth(uri: &str) -> (String, Vec<(String, String)>) {
    let rest = uri
        .strip_prefix("otpauth://totp/")
        .unwrap_or_else(|| panic!("not an otpauth TOTP URI: {uri}"));
    let (label, query) = rest.split_once('?').expect("a query");
    let pairs = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    (percent_decode(label), pairs)
}

fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread")]
async fn setup_shows_a_base32_secret_and_otpauth_uri_once() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo, &[LOCKOUT_FAR]).await;
        let email = "setup@example.com";
        register(&gw, email).await;
        let t = common::accounts::login(&gw, email).await;
        assert_eq!(me(&gw, &t.access).await.json()["mfa_enabled"], false, "{b}");

        let (first, uri) = setup(&gw, &t.access).await;
        assert!(
            first.len() >= 16
                && first
                    .bytes()
                    .all(|c| c.is_ascii_uppercase() || (b'2'..=b'7').contains(&c)),
            "{b}: RFC 4648 base32 without padding, at least 80 bits: {first}"
        );
        let bytes = Secret::Encoded(first.clone()).to_bytes().unwrap();
        assert!(bytes.len() >= 10, "{b}: {} secret bytes", bytes.len());
        let (label, pairs) = parse_otpauth(&uri);
        assert_eq!(label, format!("portcullis:{email}"), "{b}: {uri}");
        assert_eq!(param(&pairs, "secret"), Some(first.as_str()), "{b}: {uri}");
        assert_eq!(param(&pairs, "issuer"), Some("portcullis"), "{b}: {uri}");
        assert_eq!(param(&pairs, "algorithm"), Some("SHA1"), "{b}: {uri}");
        assert_eq!(param(&pairs, "digits"), Some("6"), "{b}: {uri}");
        assert_eq!(param(&pairs, "period"), Some("30"), "{b}: {uri}");

        // Never shown again: not in the profile, and setup makes a new one.
        let r = me(&gw, &t.access).await;
        assert!(
            !r.text.contains(&first),
            "{b}: me shows the secret: {}",
            r.text
        );
        assert_eq!(r.json()["mfa_enabled"], false, "{b}: pending is not on");
        let (second, uri2) = setup(&gw, &t.access).await;
        assert_ne!(second, first, "{b}: a second setup replaces the secret");
        assert!(!uri2.contains(&first), "{b}: {uri2}");
        let r = me(&gw, &t.access).await;
        assert!(!r.text.contains(&second), "{b}: {}", r.text);

        // The replaced secret's codes do not enable.
        align(&gw);
        let stale = code(&gw, &first, 0);
        assert!(
            (-1..=1).all(|s| code(&gw, &second, s) != stale),
            "{b}: codes collide"
        );
        let r = enable(&gw, &t.access, &stale).await;
        assert_field(&r, "code", &format!("{b}: the replaced secret's code"));
        assert_eq!(me(&gw, &t.access).await.json()["mfa_enabled"], false);
        let codes = recovery_codes(&enable(&gw, &t.access, &code(&gw, &second, 0)).await);
        assert_eq!(codes.len(), 10, "{b}");
        let r = me(&gw, &t.access).await;
        assert_eq!(r.json()["mfa_enabled"], true, "{b}: {}", r.text);
        assert!(!r.text.contains(&second), "{b}: {}", r.text);
        let r = post_auth(&gw, "/auth/mfa/totp/setup", &t.access, json!({})).await;
        problem(&r, 409, "mfa_already_enabled");
        assert!(!r.text.contains(&second), "{b}: {}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn totp_issuer_names_the_issuer_in_the_uri() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo, &["totp_issuer = \"Acme Corp\""]).await;
        let email = "issuer@example.com";
        register(&gw, email).await;
        let t = common::accounts::login(&gw, email).await;
        let (secret, uri) = setup(&gw, &t.access).await;
        let (label, pairs) = parse_otpauth(&uri);
        assert_eq!(label, format!("Acme Corp:{email}"), "{b}: {uri}");
        assert_eq!(param(&pairs, "issuer"), Some("Acme Corp"), "{b}: {uri}");
        assert_eq!(param(&pairs, "secret"), Some(secret.as_str()), "{b}");
        assert!(!uri.contains(' '), "{b}: the URI is encoded: {uri}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn enable_needs_setup_and_a_current_code_and_returns_ten_recovery_codes() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo, &[LOCKOUT_FAR]).await;
        let email = "enable@example.com";
        register(&gw, email).await;
        let t = common::accounts::login(&gw, email).await;

        let r = enable(&gw, &t.access, "123456").await;
        problem(&r, 409, "mfa_setup_required");
        let (secret, _) = setup(&gw, &t.access).await;
        align(&gw);
        let r = enable(&gw, &t.access, &wrong_code(&gw, &secret)).await;
        assert_field(&r, "code", &format!("{b}: a wrong code"));
        let r = enable(&gw, &t.access, &code(&gw, &secret, 0)[..5]).await;
        assert_field(&r, "code", &format!("{b}: five digits"));
        let r = enable(&gw, &t.access, &code(&gw, &secret, 3)).await;
        assert_field(&r, "code", &format!("{b}: three steps ahead"));
        assert_eq!(me(&gw, &t.access).await.json()["mfa_enabled"], false);
        // The login still needs no code.
        let r = login_with(&gw, email, PASSWORD, json!({})).await;
        assert_eq!(r.status, 200, "{b}: not enabled yet: {}", r.text);

        let codes = recovery_codes(&enable(&gw, &t.access, &code(&gw, &secret, 0)).await);
        assert_eq!(codes.len(), 10, "{b}: {codes:?}");
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(distinct.len(), 10, "{b}: distinct: {codes:?}");
        for c in &codes {
            let groups: Vec<&str> = c.split('-').collect();
            let shaped = groups.len() == 3
                && groups.iter().all(|g| {
                    g.len() == 4
                        && g.bytes()
                            .all(|x| x.is_ascii_lowercase() || x.is_ascii_digit())
                });
            assert!(shaped, "{b}: a code like k7qm-2xcd-p4ta: {c}");
        }
        let r = me(&gw, &t.access).await;
        assert_eq!(r.json()["mfa_enabled"], true, "{b}: {}", r.text);
        for c in &codes {
            assert!(!r.text.contains(c.as_str()), "{b}: me shows {c}");
        }

        let r = enable(&gw, &t.access, &code(&gw, &secret, 0)).await;
        problem(&r, 409, "mfa_already_enabled");
        let r = post_auth(&gw, "/auth/mfa/totp/setup", &t.access, json!({})).await;
        problem(&r, 409, "mfa_already_enabled");
        let r = login_with(&gw, email, PASSWORD, json!({})).await;
        problem(&r, 401, "mfa_required");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn login_takes_each_code_once_within_one_step_and_never_an_older_one() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo, &[LOCKOUT_FAR]).await;
        let u = mfa_user(&gw, "steps@example.com").await;
        let (email, s) = (u.email.as_str(), u.secret.as_str());
        // The clock sits in the step E the enabling code was for.

        let r = login_with(&gw, email, PASSWORD, json!({})).await;
        problem(&r, 401, "mfa_required");
        let www = r.header("www-authenticate");
        assert!(
            www.as_deref().is_some_and(|v| v.starts_with("Bearer")),
            "{b}: WWW-Authenticate: {www:?}"
        );
        assert!(r.json().get("access_token").is_none(), "{b}: {}", r.text);
        // A wrong password never reveals that TOTP is on.
        let r = login_with(
            &gw,
            email,
            "wrong password!",
            json!({"totp_code": code(&gw, s, 1)}),
        )
        .await;
        problem(&r, 401, "invalid_credentials");

        let r = login_code(&gw, email, &code(&gw, s, 0)).await;
        assert_mfa_code_refused(&r, &format!("{b}: the enabling code (step E)"));
        let r = login_code(&gw, email, "abcdef").await;
        assert_mfa_code_refused(&r, &format!("{b}: not digits"));

        advance_steps(&gw, 1); // now E+1
        let r = login_code(&gw, email, &code(&gw, s, 0)).await;
        let access = access_of(&r, &format!("{b}: the next step's code"));
        assert_eq!(amr(&access), json!(["pwd", "otp"]), "{b}");
        assert_eq!(api(&gw, &access).await.status, 200, "{b}");
        let r = login_code(&gw, email, &code(&gw, s, 0)).await;
        assert_mfa_code_refused(&r, &format!("{b}: the same code again"));
        let r = login_code(&gw, email, &code(&gw, s, -1)).await;
        assert_mfa_code_refused(&r, &format!("{b}: step E, older than E+1"));

        // +1 step is accepted; then the current one is older than the last used.
        let r = login_code(&gw, email, &code(&gw, s, 1)).await;
        access_of(&r, &format!("{b}: one step ahead (E+2)"));
        let r = login_code(&gw, email, &code(&gw, s, 0)).await;
        assert_mfa_code_refused(&r, &format!("{b}: E+1 after E+2 was used"));

        advance_steps(&gw, 3); // now E+4, last used E+2
        let r = login_code(&gw, email, &code(&gw, s, -1)).await;
        let access = access_of(&r, &format!("{b}: one step behind (E+3)"));
        assert_eq!(amr(&access), json!(["pwd", "otp"]), "{b}");

        advance_steps(&gw, 3); // now E+7, last used E+3
        let r = login_code(&gw, email, &code(&gw, s, -2)).await;
        assert_mfa_code_refused(&r, &format!("{b}: two steps behind (E+5)"));
        let r = login_code(&gw, email, &code(&gw, s, 2)).await;
        assert_mfa_code_refused(&r, &format!("{b}: two steps ahead (E+9)"));
        let r = login_code(&gw, email, &code(&gw, s, 0)).await;
        access_of(&r, &format!("{b}: the current code (E+7)"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn recovery_codes_work_once_each_whatever_the_case_and_dashes() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo, &[LOCKOUT_FAR]).await;
        let u = mfa_user(&gw, "recovery@example.com").await;
        let email = u.email.as_str();

        let r = login_recovery(&gw, email, &u.recovery[0].to_uppercase()).await;
        let access = access_of(&r, &format!("{b}: an upper-cased recovery code"));
        assert_eq!(amr(&access), json!(["pwd", "otp"]), "{b}");
        let r = login_recovery(&gw, email, &u.recovery[0]).await;
        assert_mfa_code_refused(&r, &format!("{b}: a used recovery code"));

        let r = login_recovery(&gw, email, &u.recovery[1].replace('-', "")).await;
        let access = access_of(&r, &format!("{b}: a recovery code without dashes"));
        assert_eq!(amr(&access), json!(["pwd", "otp"]), "{b}");
        let r = login_recovery(&gw, email, &u.recovery[1].to_uppercase()).await;
        assert_mfa_code_refused(&r, &format!("{b}: used, in another spelling"));

        let r = login_recovery(&gw, email, "aaaa-bbbb-cccc").await;
        assert_mfa_code_refused(&r, &format!("{b}: a made-up recovery code"));
        // Other codes are untouched.
        let r = login_recovery(&gw, email, &u.recovery[9]).await;
        access_of(&r, &format!("{b}: another recovery code"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_codes_count_toward_lockout() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo, &[LOCKOUT_3]).await;
        let u = mfa_user(&gw, "lockout@example.com").await;
        let (email, s) = (u.email.as_str(), u.secret.as_str());
        advance_steps(&gw, 1);

        let wrong = wrong_code(&gw, s);
        for i in 0..3 {
            let r = login_code(&gw, email, &wrong).await;
            assert_mfa_code_refused(&r, &format!("{b}: wrong code #{}", i + 1));
        }
        let r = login_code(&gw, email, &code(&gw, s, 0)).await;
        problem(&r, 429, "too_many_attempts");
        let retry: u64 = r
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{b}: Retry-After: {:?}", r.headers));
        assert!(retry > 0 && retry <= 15 * 60, "{b}: Retry-After {retry}");
        let r = login_recovery(&gw, email, &u.recovery[0]).await;
        problem(&r, 429, "too_many_attempts");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn amr_says_how_the_user_logged_in_and_refresh_keeps_it() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo, &[LOCKOUT_FAR]).await;
        register(&gw, "plain@example.com").await;
        let t = common::accounts::login(&gw, "plain@example.com").await;
        assert_eq!(amr(&t.access), json!(["pwd"]), "{b}: no TOTP");
        let again = Tokens::from(&refresh(&gw, &t.refresh).await);
        assert_eq!(amr(&again.access), json!(["pwd"]), "{b}: refreshed");

        let u = mfa_user(&gw, "otp@example.com").await;
        assert_eq!(amr(&u.before.access), json!(["pwd"]), "{b}");
        advance_steps(&gw, 1);
        let r = login_code(&gw, &u.email, &code(&gw, &u.secret, 0)).await;
        let first = Tokens::from(&r);
        assert_eq!(amr(&first.access), json!(["pwd", "otp"]), "{b}");
        let second = Tokens::from(&refresh(&gw, &first.refresh).await);
        assert_eq!(amr(&second.access), json!(["pwd", "otp"]), "{b}: refreshed");
        let third = Tokens::from(&refresh(&gw, &second.refresh).await);
        assert_eq!(amr(&third.access), json!(["pwd", "otp"]), "{b}: twice");
        // A pwd-only session from before enabling stays pwd-only.
        let old = Tokens::from(&refresh(&gw, &u.before.refresh).await);
        assert_eq!(
            amr(&old.access),
            json!(["pwd"]),
            "{b}: refresh adds nothing"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn token_endpoint_password_grant_needs_the_second_factor() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo, &[LOCKOUT_FAR]).await;
        let u = mfa_user(&gw, "grant@example.com").await;
        let (email, s) = (u.email.as_str(), u.secret.as_str());
        advance_steps(&gw, 1);
        let grant = |extra: &[(&str, &str)]| {
            let mut pairs = vec![
                ("grant_type", "password"),
                ("username", email),
                ("password", PASSWORD),
            ];
            pairs.extend_from_slice(extra);
            let body = form(&pairs);
            send(
                client()
                    .post(gw.url("/auth/token"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body),
            )
        };
        let oauth_error = |r: &Resp, error: &str, ctx: &str| {
            assert_eq!(r.status, 400, "{b}: {ctx}: {}", r.text);
            assert_eq!(r.json()["error"], error, "{b}: {ctx}: {}", r.text);
            assert!(r.json().get("access_token").is_none(), "{b}: {ctx}");
        };

        oauth_error(&grant(&[]).await, "mfa_required", "no code");
        let wrong = wrong_code(&gw, s);
        let r = grant(&[("totp_code", &wrong)]).await;
        oauth_error(&r, "invalid_grant", "a wrong code");
        let current = code(&gw, s, 0);
        let r = grant(&[("totp_code", &current)]).await;
        let access = access_of(&r, &format!("{b}: the current code"));
        assert_eq!(amr(&access), json!(["pwd", "otp"]), "{b}");
        let r = grant(&[("totp_code", &current)]).await;
        oauth_error(&r, "invalid_grant", "the same code again");
        let r = grant(&[("recovery_code", &u.recovery[3])]).await;
        let access = access_of(&r, &format!("{b}: a recovery code"));
        assert_eq!(amr(&access), json!(["pwd", "otp"]), "{b}");
        let r = grant(&[("recovery_code", &u.recovery[3])]).await;
        oauth_error(&r, "invalid_grant", "a used recovery code");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mfa_routes_take_only_otp_tokens() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo, &[LOCKOUT_FAR]).await;
        let secure = |token: String| {
            send(
                client()
                    .get(gw.url("/secure/x"))
                    .header("Authorization", bearer(&token)),
            )
        };
        register(&gw, "nototp@example.com").await;
        let plain = common::accounts::login(&gw, "nototp@example.com").await;
        problem(&secure(plain.access.clone()).await, 403, "mfa_required");
        assert_eq!(api(&gw, &plain.access).await.status, 200, "{b}");

        let u = mfa_user(&gw, "secure@example.com").await;
        let r = secure(u.before.access.clone()).await;
        problem(&r, 403, "mfa_required");
        advance_steps(&gw, 1);
        let r = login_code(&gw, &u.email, &code(&gw, &u.secret, 0)).await;
        let t = Tokens::from(&r);
        let r = secure(t.access.clone()).await;
        assert_eq!(r.status, 200, "{b}: an otp token passes: {}", r.text);
        assert_eq!(api(&gw, &t.access).await.status, 200, "{b}");
        let refreshed = Tokens::from(&refresh(&gw, &t.refresh).await);
        let r = secure(refreshed.access).await;
        assert_eq!(r.status, 200, "{b}: a refreshed otp token: {}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn disable_needs_the_password_and_a_code() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo, &[LOCKOUT_FAR]).await;
        register(&gw, "early@example.com").await;
        let early = common::accounts::login(&gw, "early@example.com").await;
        let r = disable(&gw, &early.access, PASSWORD, "123456").await;
        problem(&r, 409, "mfa_not_enabled");

        let u = mfa_user(&gw, "disable@example.com").await;
        let (email, s, t) = (u.email.as_str(), u.secret.as_str(), &u.before.access);
        advance_steps(&gw, 1);
        let r = disable(&gw, t, "wrong password!", &code(&gw, s, 0)).await;
        assert_field(&r, "password", &format!("{b}: wrong password"));
        let r = disable(&gw, t, PASSWORD, &wrong_code(&gw, s)).await;
        assert_field(&r, "code", &format!("{b}: wrong code"));
        let r = disable(&gw, t, PASSWORD, "aaaa-bbbb-cccc").await;
        assert_field(&r, "code", &format!("{b}: a made-up recovery code"));
        assert_eq!(me(&gw, t).await.json()["mfa_enabled"], true, "{b}");
        let r = login_with(&gw, email, PASSWORD, json!({})).await;
        problem(&r, 401, "mfa_required");

        let r = disable(&gw, t, PASSWORD, &code(&gw, s, 0)).await;
        assert_eq!(r.status, 204, "{b}: {}", r.text);
        assert_eq!(me(&gw, t).await.json()["mfa_enabled"], false, "{b}");
        let r = login_with(&gw, email, PASSWORD, json!({})).await;
        let access = access_of(&r, &format!("{b}: no code needed any more"));
        assert_eq!(amr(&access), json!(["pwd"]), "{b}");
        let r = disable(&gw, t, PASSWORD, &code(&gw, s, 0)).await;
        problem(&r, 409, "mfa_not_enabled");

        // On again with a new secret: the old recovery codes are gone, and
        // a new recovery code turns it off.
        let (secret2, _) = setup(&gw, t).await;
        assert_ne!(secret2, u.secret, "{b}");
        advance_steps(&gw, 1);
        let codes2 = recovery_codes(&enable(&gw, t, &code(&gw, &secret2, 0)).await);
        let r = login_recovery(&gw, email, &u.recovery[5]).await;
        assert_mfa_code_refused(&r, &format!("{b}: a recovery code of the first enable"));
        let r = disable(&gw, t, PASSWORD, &codes2[0]).await;
        assert_eq!(
            r.status, 204,
            "{b}: disable with a recovery code: {}",
            r.text
        );
        assert_eq!(me(&gw, t).await.json()["mfa_enabled"], false, "{b}");
    }
}

/// Waits (up to 10 s) for a mail to `to` with `subject`; returns the newest.
async fn mail_with_subject(gw: &TestGateway, to: &str, subject: &str) -> Mail {
    for _ in 0..200 {
        if let Some(m) = mails_to(gw, to).into_iter().rfind(|m| m.subject == subject) {
            return m;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no mail {subject:?} to {to}: {:?}", mails_to(gw, to));
}

#[tokio::test(flavor = "multi_thread")]
async fn password_reset_does_not_turn_totp_off() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo, &[LOCKOUT_FAR, MAIL_FILE]).await;
        let u = mfa_user(&gw, "reset@example.com").await;
        let email = u.email.as_str();

        let r = send(
            client()
                .post(gw.url("/auth/forgot-password"))
                .json(&json!({ "email": email })),
        )
        .await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        let mail = mail_with_subject(&gw, email, "Reset your password").await;
        let new = "a brand new passphrase here";
        let r = send(
            client()
                .post(gw.url("/auth/reset-password"))
                .json(&json!({"token": mail.token(), "new_password": new})),
        )
        .await;
        assert_eq!(r.status, 204, "{b}: {}", r.text);
        assert_eq!(api(&gw, &u.before.access).await.status, 401, "{b}");

        let r = login_with(&gw, email, new, json!({})).await;
        problem(&r, 401, "mfa_required");
        advance_steps(&gw, 1);
        let r = login_with(
            &gw,
            email,
            new,
            json!({"totp_code": code(&gw, &u.secret, 0)}),
        )
        .await;
        let access = access_of(&r, &format!("{b}: new password and a code"));
        assert_eq!(amr(&access), json!(["pwd", "otp"]), "{b}");
        assert_eq!(me(&gw, &access).await.json()["mfa_enabled"], true, "{b}");
    }
}
