//! Helpers for the email verification and password reset suites: posts to
//! the mail-request endpoints, the profile, mails read back from the outbox
//! by subject (waiting for the mail worker), the verification token of a
//! mail and a gateway that mails to files.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use super::accounts::*;
use super::http::*;
use super::mail::*;
use super::*;

pub const VERIFY_SUBJECT: &str = "Confirm your email address";
pub const VERIFY_LINK: &str = "https://app.example.test/verify-email?token=";
pub const RESET_SUBJECT: &str = "Reset your password";
pub const RESET_LINK: &str = "https://app.example.test/reset-password?token=";

pub async fn post_to(gw: &TestGateway, path: &str, body: Value) -> Resp {
    send(client().post(gw.url(path)).json(&body)).await
}

pub async fn resend(gw: &TestGateway, email: &str) -> Resp {
    post_to(gw, "/auth/resend-verification", json!({ "email": email })).await
}

pub async fn forgot(gw: &TestGateway, email: &str) -> Resp {
    post_to(gw, "/auth/forgot-password", json!({ "email": email })).await
}

pub async fn reset(gw: &TestGateway, token: &str, new_password: &str) -> Resp {
    let body = json!({ "token": token, "new_password": new_password });
    post_to(gw, "/auth/reset-password", body).await
}

pub async fn verify(gw: &TestGateway, token: &str) -> Resp {
    post_to(gw, "/auth/verify-email", json!({ "token": token })).await
}

pub fn assert_accepted(r: &Resp, ctx: &str) {
    assert_eq!(r.status, 202, "{ctx}: {}", r.text);
    assert_eq!(r.text, "", "{ctx}: a 202 carries no body");
}

/// Mails to `to` with `subject`, oldest first.
pub fn with_subject(gw: &TestGateway, to: &str, subject: &str) -> Vec<Mail> {
    mails_to(gw, to)
        .into_iter()
        .filter(|m| m.subject == subject)
        .collect()
}

/// Waits (up to 10 s) for the `n`-th mail to `to` with `subject`.
pub async fn nth_with(gw: &TestGateway, to: &str, subject: &str, n: usize) -> Mail {
    for _ in 0..200 {
        let mails = with_subject(gw, to, subject);
        if mails.len() >= n {
            return mails[n - 1].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all: Vec<_> = outbox(gw).into_iter().map(|m| (m.to, m.subject)).collect();
    panic!("expected {n} mail(s) {subject:?} to {to}; outbox: {all:?}");
}

/// After a pause for the mail worker, exactly `n` mails `subject` to `to`.
pub async fn assert_count_with(gw: &TestGateway, to: &str, subject: &str, n: usize) {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mails = with_subject(gw, to, subject);
    assert_eq!(mails.len(), n, "{subject:?} mails to {to}: {mails:?}");
}

/// The token of the `n`-th verification mail, checking the mail's shape.
pub async fn verify_token(gw: &TestGateway, to: &str, n: usize) -> String {
    let mail = nth_with(gw, to, VERIFY_SUBJECT, n).await;
    assert!(mail.to.contains(to), "To: {}", mail.to);
    assert!(mail.link().starts_with(VERIFY_LINK), "{}", mail.link());
    let token = mail.token();
    assert!(token.len() >= 32, "a long random token: {token}");
    token
}

pub async fn mail_gateway(backend: &Backend, echo: &Echo) -> TestGateway {
    start(backend, echo, MAIL_FILE).await
}
