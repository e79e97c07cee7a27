//! Registration from the outside (DESIGN.md §6, §10 Accounts): the user it
//! returns, duplicates, validation naming the field with nothing written,
//! and closed registration. Every test runs on each database backend.

mod common;

use common::login::*;
use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn register_returns_the_user_and_refuses_duplicates() {
    for backend in backends().await {
        let b = backend.name;
        let gw = relaxed(&backend).await;
        let url = gw.url("/auth/register");
        let user = register(&gw, "Alice.Smith@Example.com", Some("alice_s"), PASSWORD).await;
        let id = user["id"].as_str().unwrap_or("");
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{b}: id {user}");
        assert_eq!(user["email"], "Alice.Smith@Example.com", "{b}: as given");
        assert_eq!(user["username"], "alice_s", "{b}");
        assert_eq!(user["roles"], json!(["user"]), "{b}");
        assert_eq!(user["is_superuser"], false, "{b}");
        let text = user.to_string().to_lowercase();
        for secret in ["password", "hash", "$argon2", "correct horse"] {
            assert!(!text.contains(secret), "{b}: {secret:?} leaked in {user}");
        }

        let dup = json!({"email": "alice.smith@EXAMPLE.COM", "password": PASSWORD});
        assert_problem_resp(&post_json(&url, &dup).await, 409, "email_taken", b);
        let dup = json!({"email": "o@example.com", "username": "alice_s", "password": PASSWORD});
        assert_problem_resp(&post_json(&url, &dup).await, 409, "username_taken", b);
        let r = attempt(&gw, "o@example.com", PASSWORD, "").await;
        assert_problem_resp(&r, 401, "invalid_credentials", b);
        // Case-insensitive login by email.
        login(&gw, "ALICE.smith@example.com", PASSWORD).await;

        // Racing registrations of one email in several cases: one wins, the
        // rest are 409 (never 500/503, never two accounts).
        let racers = ["race", "RACE", "Race", "rAce", "racE", "raCE"].map(|local| {
            let email = format!("{local}@example.com");
            let (url, body) = (url.clone(), json!({"email": email, "password": PASSWORD}));
            tokio::spawn(async move { post_json(&url, &body).await })
        });
        let mut created = 0;
        for r in racers {
            let r = r.await.unwrap();
            if r.status == 201 {
                created += 1;
            } else {
                assert_problem_resp(&r, 409, "email_taken", &format!("{b}: race"));
            }
        }
        assert_eq!(created, 1, "{b}: exactly one racer wins");
        drop(gw);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn register_validation_names_the_field_and_writes_nothing() {
    for backend in backends().await {
        let b = backend.name;
        let gw = relaxed(&backend).await;
        let url = gw.url("/auth/register");
        #[rustfmt::skip]
        let cases = [
            (r#"{"email": "not-an-email", "password": "PW"}"#, "email"),
            (r#"{"email": "a b@example.com", "password": "PW"}"#, "email"),
            (r#"{"email": "v1@example.com", "username": "ab", "password": "PW"}"#, "username"),
            (r#"{"email": "v2@example.com", "username": "b d", "password": "PW"}"#, "username"),
            (r#"{"email": "v3@example.com", "password": "short"}"#, "password"),
            (r#"{"email": "v4@example.com", "password": "password1234"}"#, "password"),
            (r#"{"email": "v5@example.com", "password": "LONG"}"#, "password"),
            (r#"{"email": "v6@example.com"}"#, "password"),
            (r#"{"password": "PW"}"#, "email"),
            (r#"{"email": 5, "password": "PW"}"#, "email"),
        ];
        for (body, field) in cases {
            let body = body
                .replace("PW", PASSWORD)
                .replace("LONG", &"x".repeat(1025));
            let r = post(&url, JSON, body.clone(), "").await;
            let ctx = format!("{b}: {body}");
            assert_problem_resp(&r, 422, "validation_failed", &ctx);
            assert_eq!(r.json()["field"], field, "{ctx}: {}", r.text);
        }
        // Mass assignment is refused, not ignored.
        let body = json!({"email": "v7@example.com", "password": PASSWORD, "is_superuser": true});
        let r = post_json(&url, &body).await;
        assert_problem_resp(&r, 422, "validation_failed", b);

        // A body is an object: an array is not read field by field.
        let array = json!(["v10@example.com", PASSWORD]);
        let r = post_json(&url, &array).await;
        assert_problem_resp(&r, 422, "validation_failed", &format!("{b}: array"));
        assert_eq!(r.json()["field"], "body", "{b}: {}", r.text);
        let r = attempt(&gw, "v10@example.com", PASSWORD, "").await;
        assert_eq!(
            r.status, 401,
            "{b}: the array registered nobody: {}",
            r.text
        );

        let r = post(&url, JSON, "{\"email\": ", "").await;
        assert_problem_resp(&r, 400, "invalid_json", b);
        let plain = json!({"email": "v8@example.com", "password": PASSWORD}).to_string();
        let r = post(&url, "text/plain", plain, "").await;
        assert_problem_resp(&r, 415, "unsupported_media_type", b);
        let head = "{\"email\": \"v9@example.com\", \"password\": \"";
        let big = format!("{head}{}\"}}", "y".repeat(70_000));
        let r = post(&url, JSON, big, "").await;
        assert_problem_resp(&r, 413, "payload_too_large", b);
        // max_body_bytes is inclusive: exactly 65536 bytes is read (and
        // refused for its 60 KiB password, not for its size).
        let exact = format!("{head}{}\"}}", "z".repeat(65_536 - head.len() - 2));
        assert_eq!(exact.len(), 65_536);
        let r = post(&url, JSON, exact, "").await;
        assert_problem_resp(&r, 422, "validation_failed", &format!("{b}: 65536 B"));

        // None of the refused registrations created a user.
        for n in 1..=9 {
            for password in [PASSWORD, "short", "password1234"] {
                let r = attempt(&gw, &format!("v{n}@example.com"), password, "").await;
                assert_eq!(r.status, 401, "{b}: v{n} exists: {}", r.text);
            }
        }

        // Bounds: 1024 bytes is allowed, and passwords are never trimmed.
        let max = "p".repeat(1024);
        register(&gw, "max@example.com", None, &max).await;
        login(&gw, "max@example.com", &max).await;
        let spaced = "  spaced out password  ";
        register(&gw, "spaces@example.com", Some("spa.ce-d_3"), spaced).await;
        let r = attempt(&gw, "spaces@example.com", spaced.trim(), "").await;
        assert_eq!(r.status, 401, "{b}: a trimmed password must not match");
        login(&gw, "spaces@example.com", spaced).await;
        drop(gw);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn closed_registration_is_refused() {
    for backend in backends().await {
        let b = backend.name;
        let gw = gateway(
            &backend,
            &["registration = \"closed\"", THROTTLE_OFF],
            false,
        )
        .await;
        let body = json!({"email": "new@example.com", "password": PASSWORD});
        let r = post_json(&gw.url("/auth/register"), &body).await;
        assert_problem_resp(&r, 403, "registration_closed", b);
        let r = attempt(&gw, "new@example.com", PASSWORD, "").await;
        assert_problem_resp(&r, 401, "invalid_credentials", b);
        drop(gw);
    }
}
