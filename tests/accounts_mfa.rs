//! TOTP enrollment from the outside: setup (the secret shown once, the
//! otpauth URI and its issuer), enable (a current code, ten recovery codes
//! of one shape, never shown again) and disable (the password and a code or
//! a recovery code; enabling again drops the old recovery codes). Logging
//! in with a second factor is in `accounts_mfa_login`; the TOTP helpers are
//! in `common::mfa`. Every test runs on each database backend.

mod common;

use common::accounts::{me, PASSWORD};
use common::http::{assert_field, problem, Resp};
use common::login::LOCKOUT_FAR;
use common::mfa::{
    access_of, advance_steps, align, amr, assert_mfa_code_refused, code, enable, login_recovery,
    login_with, mfa_user, post_auth, recovery_codes, register, setup, start, wrong_code,
};
use common::*;
use serde_json::json;
use totp_rs::Secret;

async fn disable(gw: &TestGateway, token: &str, password: &str, code: &str) -> Resp {
    let body = json!({"password": password, "code": code});
    post_auth(gw, "/auth/mfa/totp/disable", token, body).await
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
