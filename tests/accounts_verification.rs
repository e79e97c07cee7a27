//! Email verification from the outside: the token mailed on registration
//! (read back from the `mail.mode = "file"` outbox), its single use,
//! supersession by a resend and expiry after a day (on the injectable
//! clock), changing the address through `PATCH /auth/me` (the password
//! asked for, verification restarted, username and email applied whole or
//! not at all) and `require_email_verification` at login. Password reset
//! and what both mail requests share are in `accounts_reset`. Every test
//! runs on each database backend.

mod common;

use common::accounts::*;
use common::http::*;
use common::mail::*;
use common::recovery::*;
use common::*;
use serde_json::{json, Value};

/// The caller's profile, `GET /auth/me` (answered 200).
async fn profile_of(gw: &TestGateway, access: &str) -> Value {
    me(gw, access).await.json()
}

/// The profile's `email_verified`.
async fn email_verified(gw: &TestGateway, access: &str) -> Value {
    profile_of(gw, access).await["email_verified"].clone()
}

async fn patch_me(gw: &TestGateway, access: &str, body: Value) -> Resp {
    send(
        client()
            .patch(gw.url("/auth/me"))
            .header("Authorization", bearer(access))
            .json(&body),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn registration_mails_a_verification_token_that_verifies_once() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = mail_gateway(&backend, &echo).await;
        let email = "verify@example.com";
        let t = register_and_login(&gw, email).await;
        assert_eq!(email_verified(&gw, &t.access).await, false, "{b}");

        let token = verify_token(&gw, email, 1).await;
        let mail = nth_with(&gw, email, VERIFY_SUBJECT, 1).await;
        assert!(
            !mail.body.contains(PASSWORD),
            "{b}: the mail never carries the password"
        );

        // Wrong, empty and absurd tokens change nothing.
        for bad in ["", "nope", &format!("{token}x"), &"a".repeat(5000)] {
            let r = verify(&gw, bad).await;
            problem(&r, 400, "invalid_verification_token");
        }
        assert_eq!(email_verified(&gw, &t.access).await, false, "{b}");

        let r = verify(&gw, &token).await;
        assert_eq!(r.status, 204, "{b}: {}", r.text);
        assert_eq!(r.text, "");
        let profile = profile_of(&gw, &t.access).await;
        assert_eq!(profile["email_verified"], true, "{b}: {profile}");
        assert_eq!(profile["email"], email);

        // Single use.
        problem(
            &verify(&gw, &token).await,
            400,
            "invalid_verification_token",
        );

        // Already verified: resend answers the same 202 and mails nothing.
        assert_accepted(&resend(&gw, email).await, b);
        assert_count_with(&gw, email, VERIFY_SUBJECT, 1).await;
        assert_eq!(email_verified(&gw, &t.access).await, true, "{b}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_mail_has_its_own_message_id_and_a_mime_version() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = mail_gateway(&backend, &echo).await;
        let email = "headers@example.com";
        register(&gw, email).await;
        assert_accepted(&resend(&gw, email).await, b);
        let mails = wait_for_mails(&gw, email, 2).await;
        let mut ids = Vec::new();
        for mail in &mails {
            let id = mail.header("Message-ID");
            let id = id.unwrap_or_else(|| panic!("{b}: no Message-ID in\n{}", mail.raw));
            // <random@the From address's domain> (the default From is
            // portcullis@localhost).
            let inner = id.strip_prefix('<').and_then(|i| i.strip_suffix('>'));
            let (left, right) = inner.and_then(|i| i.split_once('@')).unwrap_or_default();
            assert!(left.len() >= 16, "{b}: {id}");
            assert_eq!(right, "localhost", "{b}: {id}");
            assert_eq!(mail.header("MIME-Version").as_deref(), Some("1.0"), "{b}");
            ids.push(id);
        }
        ids.dedup();
        assert_eq!(ids.len(), 2, "{b}: unique ids {ids:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn resend_verification_supersedes_the_older_token() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = mail_gateway(&backend, &echo).await;
        let email = "resend@example.com";
        let t = register_and_login(&gw, email).await;
        let first = verify_token(&gw, email, 1).await;

        // Case does not matter for the address.
        assert_accepted(&resend(&gw, "Resend@Example.com").await, b);
        let second = verify_token(&gw, email, 2).await;
        assert_ne!(first, second, "{b}: a fresh token per mail");

        problem(
            &verify(&gw, &first).await,
            400,
            "invalid_verification_token",
        );
        assert_eq!(email_verified(&gw, &t.access).await, false, "{b}");
        let r = verify(&gw, &second).await;
        assert_eq!(r.status, 204, "{b}: {}", r.text);
        assert_eq!(email_verified(&gw, &t.access).await, true, "{b}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn verification_token_expires_after_a_day() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = mail_gateway(&backend, &echo).await;
        let email = "expire-verify@example.com";
        let t = register_and_login(&gw, email).await;
        let token = verify_token(&gw, email, 1).await;
        let clock = &gw.state.accounts.clock;
        clock.advance(chrono::Duration::hours(24) + chrono::Duration::minutes(1));
        problem(
            &verify(&gw, &token).await,
            400,
            "invalid_verification_token",
        );
        assert_eq!(email_verified(&gw, &t.access).await, false, "{b}");

        // A new mail brings a token that works.
        assert_accepted(&resend(&gw, email).await, b);
        let fresh = verify_token(&gw, email, 2).await;
        clock.advance(chrono::Duration::hours(23));
        let r = verify(&gw, &fresh).await;
        assert_eq!(r.status, 204, "{b}: 23 h old is still valid: {}", r.text);
        assert_eq!(email_verified(&gw, &t.access).await, true, "{b}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn changing_the_email_needs_the_password_and_restarts_verification() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = mail_gateway(&backend, &echo).await;
        let (old, new) = ("change-old@example.com", "change-new@example.com");
        let t = register_and_login(&gw, old).await;
        let old_token = verify_token(&gw, old, 1).await;
        register(&gw, "taken@example.com").await;
        nth_with(&gw, "taken@example.com", VERIFY_SUBJECT, 1).await;

        // Refusals: nothing changes and nothing is mailed.
        let r = patch_me(&gw, &t.access, json!({ "email": new })).await;
        assert_field(&r, "current_password", &format!("{b}: missing"));
        let body = json!({ "email": new, "current_password": "wrong password!" });
        let r = patch_me(&gw, &t.access, body).await;
        assert_field(&r, "current_password", &format!("{b}: wrong"));
        let body = json!({ "email": "not-an-email", "current_password": PASSWORD });
        let r = patch_me(&gw, &t.access, body).await;
        assert_field(&r, "email", &format!("{b}: malformed"));
        for taken in ["taken@example.com", "TAKEN@example.com"] {
            let body = json!({ "email": taken, "current_password": PASSWORD });
            let r = patch_me(&gw, &t.access, body).await;
            problem(&r, 409, "email_taken");
        }
        assert_eq!(profile_of(&gw, &t.access).await["email"], old, "{b}");
        assert_mail_count(&gw, new, 0).await;
        assert_count_with(&gw, "taken@example.com", VERIFY_SUBJECT, 1).await;

        let body = json!({ "email": new, "current_password": PASSWORD });
        let r = patch_me(&gw, &t.access, body).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(r.json()["email"], new, "{b}: {}", r.text);
        assert_eq!(r.json()["email_verified"], false, "{b}: {}", r.text);

        // The token mailed to the old address no longer verifies anything.
        let new_token = verify_token(&gw, new, 1).await;
        problem(
            &verify(&gw, &old_token).await,
            400,
            "invalid_verification_token",
        );
        assert_eq!(email_verified(&gw, &t.access).await, false, "{b}");
        let r = verify(&gw, &new_token).await;
        assert_eq!(r.status, 204, "{b}: {}", r.text);
        let profile = profile_of(&gw, &t.access).await;
        assert_eq!(profile["email"], new, "{b}");
        assert_eq!(profile["email_verified"], true, "{b}: {profile}");
        assert_count_with(&gw, old, VERIFY_SUBJECT, 1).await;

        // A verified address changed again is unverified again.
        let newer = "change-newer@example.com";
        let body = json!({ "email": newer, "current_password": PASSWORD });
        let r = patch_me(&gw, &t.access, body).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert_eq!(email_verified(&gw, &t.access).await, false, "{b}");
        verify_token(&gw, newer, 1).await;
        // The old address is free again and the new one logs in.
        register(&gw, old).await;
        login(&gw, newer).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_profile_change_applies_whole_or_not_at_all() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = mail_gateway(&backend, &echo).await;
        register(&gw, &format!("{b}-taken@example.com")).await;
        let email = format!("{b}-whole@example.com");
        let t = register_and_login(&gw, &email).await;

        // The new username is free, the new email is taken: nothing changes.
        let r = patch_me(
            &gw,
            &t.access,
            json!({"username": "brand_new", "email": format!("{b}-TAKEN@example.com"),
                   "current_password": PASSWORD}),
        )
        .await;
        problem(&r, 409, "email_taken");
        let profile = profile_of(&gw, &t.access).await;
        assert_eq!(profile["username"], Value::Null, "{b}: {profile}");
        assert_eq!(profile["email"], email.as_str(), "{b}");

        // An array is not an object, even with the right number of items.
        let r = patch_me(&gw, &t.access, json!(["brand_new"])).await;
        problem(&r, 422, "validation_failed");
        assert_eq!(r.json()["field"], "body", "{b}: {}", r.text);
        let profile = profile_of(&gw, &t.access).await;
        assert_eq!(profile["username"], Value::Null, "{b}: not renamed");

        // Both free: both change at once.
        let moved = format!("{b}-moved@example.com");
        let r = patch_me(
            &gw,
            &t.access,
            json!({"username": "brand_new", "email": moved, "current_password": PASSWORD}),
        )
        .await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let profile = profile_of(&gw, &t.access).await;
        assert_eq!(profile["username"], "brand_new", "{b}");
        assert_eq!(profile["email"], moved.as_str(), "{b}");
        assert_eq!(profile["email_verified"], false, "{b}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn required_verification_blocks_only_the_right_password_until_verified() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let extra = format!("require_email_verification = true\n{MAIL_FILE}");
        let gw = start(&backend, &echo, &extra).await;
        let email = "must-verify@example.com";
        register(&gw, email).await;

        let r = login_as(&gw, email, PASSWORD, UA).await;
        problem(&r, 403, "email_unverified");
        assert!(!r.text.contains("access_token"), "{b}: {}", r.text);
        let r = login_as(&gw, email, "wrong password!", UA).await;
        problem(&r, 401, "invalid_credentials");
        let r = login_as(&gw, "nobody@example.com", PASSWORD, UA).await;
        problem(&r, 401, "invalid_credentials");

        let token = verify_token(&gw, email, 1).await;
        let r = verify(&gw, &token).await;
        assert_eq!(r.status, 204, "{b}: {}", r.text);
        let t = login(&gw, email).await;
        assert_eq!(email_verified(&gw, &t.access).await, true, "{b}");
        assert_eq!(api(&gw, &t.access).await.status, 200, "{b}");
        let r = login_as(&gw, email, "wrong password!", UA).await;
        problem(&r, 401, "invalid_credentials");
    }
}
