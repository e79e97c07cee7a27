//! Logging in with TOTP on, from the outside: a code per time step (once
//! each, ±1 step, never older than the last one used), recovery codes (once
//! each), wrong codes counting toward lockout, `amr` in access and refreshed
//! tokens, the OAuth password grant at `/auth/token`, routes that require
//! MFA, and password reset keeping TOTP on. Codes are computed with
//! `totp-rs`, independently of the gateway, at times read from the
//! gateway's injectable clock (moved, never slept on); enrollment is in
//! `accounts_mfa`. Every test runs on each database backend.

mod common;

use common::accounts::{api, me, refresh, Tokens, PASSWORD};
use common::http::{bearer, problem, send, Resp};
use common::login::{form, LOCKOUT_3, LOCKOUT_FAR};
use common::mail::MAIL_FILE;
use common::mfa::{
    access_of, advance_steps, amr, assert_mfa_code_refused, code, login_recovery, login_with,
    mfa_user, register, start, wrong_code,
};
use common::recovery::{forgot, nth_with, reset, RESET_SUBJECT};
use common::*;
use serde_json::json;

async fn login_code(gw: &TestGateway, email: &str, code: &str) -> Resp {
    login_with(gw, email, PASSWORD, json!({ "totp_code": code })).await
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
        // The lockout is the account's: another one on the same address
        // still logs in.
        register(&gw, "bystander@example.com").await;
        let r = login_with(&gw, "bystander@example.com", PASSWORD, json!({})).await;
        assert_eq!(r.status, 200, "{b}: same IP, other account: {}", r.text);
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
async fn password_reset_does_not_turn_totp_off() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = start(&backend, &echo, &[LOCKOUT_FAR, MAIL_FILE]).await;
        let u = mfa_user(&gw, "reset@example.com").await;
        let email = u.email.as_str();

        let r = forgot(&gw, email).await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);
        let mail = nth_with(&gw, email, RESET_SUBJECT, 1).await;
        let new = "a brand new passphrase here";
        let r = reset(&gw, &mail.token(), new).await;
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
