//! Password reset from the outside: the token mailed by forgot-password
//! (read back from the `mail.mode = "file"` outbox), its single use,
//! supersession and hour-long validity (on the injectable clock), every
//! session revoked, the lockout cleared and TOTP kept on; and, for both
//! mail requests (forgot-password and resend-verification), answers that
//! do not reveal which addresses exist or are disabled, links on the fixed
//! `link_base` and the per-IP and per-recipient throttles. Email
//! verification is in `accounts_verification`. Every test runs on each
//! database backend.

mod common;

use common::accounts::*;
use common::http::*;
use common::mail::*;
use common::recovery::*;
use common::*;
use reqwest::Method;
use serde_json::{json, Value};

const NEW_PASSWORD: &str = "a brand new passphrase 42";
const THROTTLE_2: &str =
    "throttle = { login = \"1000/m\", register = \"1000/m\", forgot_password = \"2/h\" }";

/// The token of the `n`-th reset mail, checking the mail's shape.
async fn reset_token(gw: &TestGateway, to: &str, n: usize) -> String {
    let mail = nth_with(gw, to, RESET_SUBJECT, n).await;
    assert!(mail.to.contains(to), "To: {}", mail.to);
    assert!(mail.link().starts_with(RESET_LINK), "{}", mail.link());
    let token = mail.token();
    assert!(token.len() >= 32, "a long random token: {token}");
    token
}

#[tokio::test(flavor = "multi_thread")]
async fn mail_requests_answer_the_same_for_unknown_addresses_and_mail_nothing() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = mail_gateway(&backend, &echo).await;
        let (known, unknown) = ("known@example.com", "unknown@example.com");
        register(&gw, known).await;
        nth_with(&gw, known, VERIFY_SUBJECT, 1).await;

        for path in ["/auth/forgot-password", "/auth/resend-verification"] {
            let a = post_to(&gw, path, json!({ "email": known })).await;
            let u = post_to(&gw, path, json!({ "email": unknown })).await;
            assert_accepted(&a, &format!("{b} {path} known"));
            assert_accepted(&u, &format!("{b} {path} unknown"));
            assert_eq!(a.text, u.text, "{b} {path}");
            assert_eq!(
                a.header("content-type"),
                u.header("content-type"),
                "{b} {path}"
            );
            assert_eq!(
                a.header("content-length"),
                u.header("content-length"),
                "{b} {path}"
            );
            let r = post_to(&gw, path, json!({ "email": "not-an-email" })).await;
            assert_field(&r, "email", &format!("{b} {path}"));
        }
        // The known address got one reset and one more verification mail.
        reset_token(&gw, known, 1).await;
        verify_token(&gw, known, 2).await;
        assert_mail_count(&gw, unknown, 0).await;
        assert_count_with(&gw, known, RESET_SUBJECT, 1).await;
        assert_count_with(&gw, known, VERIFY_SUBJECT, 2).await;
        assert_mail_count(&gw, "not-an-email", 0).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mailed_links_use_link_base_never_the_request_host() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = mail_gateway(&backend, &echo).await;
        let email = "host@example.com";
        let post_evil = |path: &str, body: Value| {
            let body = body.to_string();
            format!(
                "POST {path} HTTP/1.1\r\nHost: evil.example\r\nX-Forwarded-Host: evil.example\r\n\
                 X-Forwarded-Proto: http\r\nForwarded: host=evil.example\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        let body = json!({ "email": email, "password": PASSWORD });
        let r = raw(gw.addr, &post_evil("/auth/register", body)).await;
        assert_eq!(r.status, 201, "{b}: {}", String::from_utf8_lossy(&r.body));
        let r = raw(
            gw.addr,
            &post_evil("/auth/forgot-password", json!({ "email": email })),
        )
        .await;
        assert_eq!(r.status, 202, "{b}: {}", String::from_utf8_lossy(&r.body));

        let verify_mail = nth_with(&gw, email, VERIFY_SUBJECT, 1).await;
        let reset_mail = nth_with(&gw, email, RESET_SUBJECT, 1).await;
        for mail in [&verify_mail, &reset_mail] {
            assert!(!mail.raw.contains("evil.example"), "{b}: {}", mail.raw);
            assert!(!mail.body.contains("evil.example"), "{b}: {}", mail.body);
        }
        let link = reset_mail.link();
        assert!(link.starts_with(RESET_LINK), "{b}: {link}");
        assert_eq!(link, format!("{RESET_LINK}{}", reset_mail.token()));
        let link = verify_mail.link();
        assert!(link.starts_with(VERIFY_LINK), "{b}: {link}");
        assert_eq!(link, format!("{VERIFY_LINK}{}", verify_mail.token()));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reset_works_once_revokes_every_session_and_swaps_the_password() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = mail_gateway(&backend, &echo).await;
        let email = "reset@example.com";
        let first = register_and_login(&gw, email).await;
        let second = login(&gw, email).await;
        let bystander = register_and_login(&gw, "bystander@example.com").await;

        assert_accepted(&forgot(&gw, email).await, b);
        let token = reset_token(&gw, email, 1).await;
        // Asking for a reset changes nothing yet.
        assert_eq!(api(&gw, &first.access).await.status, 200, "{b}");
        login(&gw, email).await;

        // A weak new password is refused and does not spend the token.
        for weak in ["short", "password1234"] {
            let r = reset(&gw, &token, weak).await;
            assert_field(&r, "new_password", &format!("{b}: {weak}"));
        }
        problem(
            &reset(&gw, "not-a-real-token", NEW_PASSWORD).await,
            400,
            "invalid_reset_token",
        );
        problem(
            &reset(&gw, "", NEW_PASSWORD).await,
            400,
            "invalid_reset_token",
        );
        assert_eq!(api(&gw, &first.access).await.status, 200, "{b}");

        let r = reset(&gw, &token, NEW_PASSWORD).await;
        assert_eq!(r.status, 204, "{b}: {}", r.text);
        assert_eq!(r.text, "", "{b}: a reset does not log in");
        assert!(r.header("set-cookie").is_none(), "{b}: no session cookie");

        // Every session is dead at once.
        for t in [&first, &second] {
            assert_revoked(&gw, &t.access).await;
            let r = refresh(&gw, &t.refresh).await;
            assert_eq!(r.status, 401, "{b}: {}", r.text);
        }
        assert_eq!(api(&gw, &bystander.access).await.status, 200, "{b}");

        let r = login_as(&gw, email, PASSWORD, UA).await;
        problem(&r, 401, "invalid_credentials");
        let t = Tokens::from(&login_as(&gw, email, NEW_PASSWORD, UA).await);
        assert_eq!(api(&gw, &t.access).await.status, 200, "{b}");

        // Single use.
        let again = reset(&gw, &token, "yet another passphrase 7").await;
        problem(&again, 400, "invalid_reset_token");
        Tokens::from(&login_as(&gw, email, NEW_PASSWORD, UA).await);
        assert_eq!(api(&gw, &t.access).await.status, 200, "{b}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_newer_reset_request_supersedes_the_older_token() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = mail_gateway(&backend, &echo).await;
        let email = "supersede@example.com";
        register(&gw, email).await;
        assert_accepted(&forgot(&gw, email).await, b);
        let older = reset_token(&gw, email, 1).await;
        assert_accepted(&forgot(&gw, email).await, b);
        let newer = reset_token(&gw, email, 2).await;
        assert_ne!(older, newer, "{b}");

        let r = reset(&gw, &older, NEW_PASSWORD).await;
        problem(&r, 400, "invalid_reset_token");
        problem(
            &login_as(&gw, email, NEW_PASSWORD, UA).await,
            401,
            "invalid_credentials",
        );
        let r = reset(&gw, &newer, NEW_PASSWORD).await;
        assert_eq!(r.status, 204, "{b}: {}", r.text);
        Tokens::from(&login_as(&gw, email, NEW_PASSWORD, UA).await);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reset_token_is_valid_for_an_hour() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = mail_gateway(&backend, &echo).await;
        let email = "ttl@example.com";
        register(&gw, email).await;
        let clock = &gw.state.accounts.clock;

        assert_accepted(&forgot(&gw, email).await, b);
        let token = reset_token(&gw, email, 1).await;
        clock.advance(chrono::Duration::minutes(59));
        let r = reset(&gw, &token, NEW_PASSWORD).await;
        assert_eq!(r.status, 204, "{b}: 59 min old is still valid: {}", r.text);

        assert_accepted(&forgot(&gw, email).await, b);
        let token = reset_token(&gw, email, 2).await;
        clock.advance(chrono::Duration::minutes(61));
        let r = reset(&gw, &token, "yet another passphrase 7").await;
        problem(&r, 400, "invalid_reset_token");
        problem(
            &login_as(&gw, email, "yet another passphrase 7", UA).await,
            401,
            "invalid_credentials",
        );
        Tokens::from(&login_as(&gw, email, NEW_PASSWORD, UA).await);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reset_clears_the_lockout() {
    use common::login as l;
    for backend in backends().await {
        let b = backend.name;
        let gw = l::gateway(&backend, &[l::THROTTLE_OFF, l::LOCKOUT_3, MAIL_FILE], true).await;
        let email = "locked@example.com";
        l::register(&gw, email, None, l::PASSWORD).await;
        // Wrong passwords from three IPs lock the account, not one IP.
        for ip in ["10.1.1.1", "10.1.1.2", "10.1.1.3"] {
            let r = l::attempt(&gw, email, l::WRONG, ip).await;
            assert_eq!(r.status, 401, "{b}: {}", r.text);
        }
        let r = l::attempt(&gw, email, l::PASSWORD, "10.1.1.4").await;
        l::assert_problem_resp(&r, 429, "too_many_attempts", b);

        assert_accepted(&forgot(&gw, email).await, b);
        let token = reset_token(&gw, email, 1).await;
        let r = reset(&gw, &token, NEW_PASSWORD).await;
        assert_eq!(r.status, 204, "{b}: {}", r.text);
        let r = l::attempt(&gw, email, NEW_PASSWORD, "10.1.1.5").await;
        assert_eq!(r.status, 200, "{b}: the lockout is cleared: {}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reset_keeps_totp_required() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = mail_gateway(&backend, &echo).await;
        let email = "totp-reset@example.com";
        let t = register_and_login(&gw, email).await;
        let r = authed(&gw, Method::POST, "/auth/mfa/totp/setup", &t.access).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let secret = r.json()["secret"].as_str().unwrap().to_string();
        let totp = totp_rs::TOTP::new_unchecked(
            totp_rs::Algorithm::SHA1,
            6,
            1,
            30,
            totp_rs::Secret::Encoded(secret).to_bytes().unwrap(),
        );
        let clock = &gw.state.accounts.clock;
        let code = |at: chrono::DateTime<chrono::Utc>| totp.generate(at.timestamp() as u64);
        let r = send(
            client()
                .post(gw.url("/auth/mfa/totp/enable"))
                .header("Authorization", bearer(&t.access))
                .json(&json!({ "code": code(clock.now()) })),
        )
        .await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);

        assert_accepted(&forgot(&gw, email).await, b);
        let token = reset_token(&gw, email, 1).await;
        let r = reset(&gw, &token, NEW_PASSWORD).await;
        assert_eq!(r.status, 204, "{b}: {}", r.text);
        assert_revoked(&gw, &t.access).await;

        let r = login_as(&gw, email, NEW_PASSWORD, UA).await;
        problem(&r, 401, "mfa_required");
        clock.advance(chrono::Duration::seconds(30));
        let body =
            json!({ "email": email, "password": NEW_PASSWORD, "totp_code": code(clock.now()) });
        let r = send(client().post(gw.url("/auth/login")).json(&body)).await;
        let t = Tokens::from(&r);
        assert_eq!(me(&gw, &t.access).await.json()["mfa_enabled"], true, "{b}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn forgot_password_is_throttled_per_recipient_across_client_ips() {
    use common::login as l;
    for backend in backends().await {
        let b = backend.name;
        let gw = l::gateway(&backend, &[THROTTLE_2, l::LOCKOUT_FAR, MAIL_FILE], true).await;
        let (known, unknown) = ("throttled@example.com", "ghost@example.com");
        l::register(&gw, known, None, l::PASSWORD).await;
        let url = gw.url("/auth/forgot-password");
        let ask = |email: &str| json!({ "email": email }).to_string();

        for (email, upper) in [
            (known, "THROTTLED@example.com"),
            (unknown, "GHOST@example.com"),
        ] {
            for ip in ["10.0.0.1", "10.0.0.2"] {
                let r = l::post(&url, l::JSON, ask(email), ip).await;
                assert_eq!(r.status, 202, "{b} {email} from {ip}: {}", r.text);
            }
            // A third request for the address, from a fresh IP (and in
            // other case), is over the address's limit.
            let r = l::post(&url, l::JSON, ask(upper), "10.0.0.3").await;
            l::assert_problem_resp(&r, 429, "too_many_attempts", &format!("{b} {email}"));
            let secs = r.retry_after();
            assert!((1..=3600).contains(&secs), "{b}: Retry-After {secs}");
        }
        // resend-verification shares the per-address throttle.
        let resend_url = gw.url("/auth/resend-verification");
        let r = l::post(&resend_url, l::JSON, ask(known), "10.0.0.4").await;
        l::assert_problem_resp(&r, 429, "too_many_attempts", &format!("{b} resend"));
        assert!(r.retry_after() >= 1);

        // Another address from a fresh IP is not affected.
        let r = l::post(&url, l::JSON, ask("other@example.com"), "10.0.0.5").await;
        assert_eq!(r.status, 202, "{b}: {}", r.text);

        assert_count_with(&gw, known, RESET_SUBJECT, 2).await;
        assert_count_with(&gw, known, VERIFY_SUBJECT, 1).await;
        assert_mail_count(&gw, unknown, 0).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn forgot_password_is_throttled_per_client_ip_across_addresses() {
    use common::login as l;
    for backend in backends().await {
        let b = backend.name;
        let gw = l::gateway(&backend, &[THROTTLE_2, l::LOCKOUT_FAR, MAIL_FILE], true).await;
        let known = "ip-known@example.com";
        l::register(&gw, known, None, l::PASSWORD).await;
        let url = gw.url("/auth/forgot-password");
        let resend_url = gw.url("/auth/resend-verification");
        let ask = |email: &str| json!({ "email": email }).to_string();
        let ip = "10.9.9.9";

        for email in [known, "ip-ghost-1@example.com"] {
            let r = l::post(&url, l::JSON, ask(email), ip).await;
            assert_eq!(r.status, 202, "{b} {email}: {}", r.text);
        }
        for email in ["ip-ghost-2@example.com", known] {
            let r = l::post(&url, l::JSON, ask(email), ip).await;
            l::assert_problem_resp(&r, 429, "too_many_attempts", &format!("{b} {email}"));
            let secs = r.retry_after();
            assert!((1..=3600).contains(&secs), "{b}: Retry-After {secs}");
        }
        // resend-verification shares the per-IP throttle.
        let r = l::post(&resend_url, l::JSON, ask("ip-ghost-3@example.com"), ip).await;
        l::assert_problem_resp(&r, 429, "too_many_attempts", &format!("{b} resend"));

        // Another IP is not affected, for the same unknown address either.
        for email in ["ip-ghost-2@example.com", "ip-ghost-3@example.com"] {
            let r = l::post(&url, l::JSON, ask(email), "10.9.9.10").await;
            assert_eq!(r.status, 202, "{b} {email}: {}", r.text);
        }
        assert_count_with(&gw, known, RESET_SUBJECT, 1).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn disabled_accounts_get_no_mail_and_the_same_answer() {
    for backend in backends().await {
        let b = backend.name;
        let echo = Echo::start("app").await;
        let gw = mail_gateway(&backend, &echo).await;
        let admin = "recovery-root@example.com";
        register(&gw, admin).await;
        set_superuser(&gw, &backend, admin, true).await;
        let root = login(&gw, admin).await;
        let email = "disabled@example.com";
        let id = register(&gw, email).await["id"]
            .as_str()
            .unwrap()
            .to_string();
        nth_with(&gw, email, VERIFY_SUBJECT, 1).await;
        let r = send(
            client()
                .patch(gw.url(&format!("/auth/admin/users/{id}")))
                .header("Authorization", bearer(&root.access))
                .json(&json!({ "is_active": false })),
        )
        .await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);

        assert_accepted(&forgot(&gw, email).await, b);
        assert_accepted(&resend(&gw, email).await, b);
        assert_count_with(&gw, email, RESET_SUBJECT, 0).await;
        assert_count_with(&gw, email, VERIFY_SUBJECT, 1).await;
    }
}
