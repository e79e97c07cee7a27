//! Login from the outside (DESIGN.md §6, §10 Accounts/Tokens): JSON and
//! OAuth2 form logins, the access token's claims, enumeration safety,
//! lockout and throttles, the RFC 6749 token endpoint, and rehashing when
//! the argon2 cost changes. Every test runs on each database backend.

mod common;

use common::login::*;
use common::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn login_as_json_and_oauth2_form_issues_working_tokens() {
    for backend in backends().await {
        let b = backend.name;
        let gw = relaxed(&backend).await;
        let user = register(&gw, "Bob@Example.com", Some("bobby"), PASSWORD).await;
        let id = user["id"].as_str().unwrap().to_string();
        let url = gw.url("/auth/login");

        let by_email = attempt(&gw, "bob@example.com", PASSWORD, "").await;
        let body = json!({"username": "bobby", "password": PASSWORD});
        let by_username = post_json(&url, &body).await;
        let body = form(&[("username", "Bob@Example.com"), ("password", PASSWORD)]);
        let by_form = post(&url, FORM, body, "").await;
        let mut sessions = Vec::new();
        for (how, r) in [
            ("email", by_email),
            ("name", by_username),
            ("form", by_form),
        ] {
            let ctx = format!("{b}: login by {how}");
            assert_eq!(r.status, 200, "{ctx}: {}", r.text);
            let pair = r.json();
            assert_token_pair(&pair, &ctx);
            let cookie = r.header("set-cookie").unwrap_or_default();
            let refresh = pair["refresh_token"].as_str().unwrap();
            let prefix = format!("portcullis_refresh={refresh};");
            assert!(cookie.starts_with(&prefix), "{ctx}: {cookie}");
            for attr in ["HttpOnly", "SameSite=Lax", "Path=/auth"] {
                let has = cookie.split("; ").any(|a| a == attr);
                assert!(has, "{ctx}: {attr} in {cookie}");
            }
            assert!(!cookie.contains("Secure"), "{ctx}: cookie_secure=false");

            let me = get_bearer(&gw, "/auth/me", &pair["access_token"]).await;
            assert_eq!(me.status, 200, "{ctx}: /auth/me {}", me.text);
            let me = me.json();
            assert_eq!(me["email"], "Bob@Example.com", "{ctx}");
            assert_eq!(me["id"], id.as_str(), "{ctx}");
            assert_eq!(me["orgs"], json!([]), "{ctx}");
            assert!(!me.to_string().contains("$argon2"), "{ctx}: {me}");

            let (header, claims) = decode(pair["access_token"].as_str().unwrap());
            assert_eq!(header["typ"], "at+jwt", "{ctx}: {header}");
            assert!(header["kid"].is_string(), "{ctx}: {header}");
            assert_eq!(claims["iss"], "portcullis", "{ctx}");
            // RFC 9068 §2.2: the gateway's own client, named by the issuer.
            assert_eq!(claims["client_id"], "portcullis", "{ctx}: {claims}");
            let aud = &claims["aud"];
            let aud_ok = *aud == "portcullis" || *aud == json!(["portcullis"]);
            assert!(aud_ok, "{ctx}: aud {aud}");
            assert_eq!(claims["sub"], id.as_str(), "{ctx}");
            assert_eq!(claims["sid"], pair["session_id"], "{ctx}");
            let jti = claims["jti"].as_str().unwrap_or("");
            assert!(!jti.is_empty(), "{ctx}: jti {claims}");
            let iat = claims["iat"].as_i64().unwrap();
            let exp = claims["exp"].as_i64().unwrap();
            assert_eq!(exp - iat, 900, "{ctx}: access_ttl 15m");
            assert!((iat - now()).abs() <= 5, "{ctx}: iat is now");
            assert_eq!(claims["roles"], json!(["user"]), "{ctx}");
            assert_eq!(claims["email"], "Bob@Example.com", "{ctx}");
            let su = claims.get("su").is_none_or(|v| v == false);
            assert!(su, "{ctx}: no su claim for a normal user: {claims}");
            sessions.push(pair["session_id"].to_string());
        }
        sessions.sort();
        sessions.dedup();
        assert_eq!(sessions.len(), 3, "{b}: each login is its own session");
        drop(gw);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_user_and_wrong_password_look_the_same() {
    for backend in backends().await {
        let b = backend.name;
        let gw = relaxed(&backend).await;
        register(&gw, "carol@example.com", Some("carol"), PASSWORD).await;
        let url = gw.url("/auth/login");
        let wrong = attempt(&gw, "carol@example.com", WRONG, "").await;
        let unknown = attempt(&gw, "nobody@example.com", WRONG, "").await;
        let body = json!({"username": "carol", "password": WRONG});
        let wrong_name = post_json(&url, &body).await;
        let body = json!({"username": "nobody", "password": WRONG});
        let unknown_name = post_json(&url, &body).await;
        for r in [&wrong, &unknown, &wrong_name, &unknown_name] {
            assert_problem_resp(r, 401, "invalid_credentials", b);
            assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{b}");
        }
        assert_eq!(wrong.text, unknown.text, "{b}: identical bodies");
        assert_eq!(wrong_name.text, unknown_name.text, "{b}: identical bodies");
        assert_eq!(wrong.text, wrong_name.text, "{b}: identical bodies");
        drop(gw);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lockout_is_per_account_and_covers_unknown_emails() {
    for backend in backends().await {
        let b = backend.name;
        // Each step comes from its own client IP (X-Forwarded-For from a
        // trusted peer), so what is seen is the per-account lockout.
        let gw = gateway(&backend, &[THROTTLE_OFF, LOCKOUT_3], true).await;
        register(&gw, "dave@example.com", None, PASSWORD).await;
        for i in 0..3 {
            let r = attempt(&gw, "dave@example.com", WRONG, "198.51.100.1").await;
            assert_problem_resp(&r, 401, "invalid_credentials", &format!("{b}: try {i}"));
        }
        for ip in ["198.51.100.1", "198.51.100.2"] {
            let r = attempt(&gw, "dave@example.com", PASSWORD, ip).await;
            let ctx = format!("{b}: right password when locked, from {ip}");
            assert_problem_resp(&r, 429, "too_many_attempts", &ctx);
            let secs = r.retry_after();
            assert!((1..=900).contains(&secs), "{ctx}: Retry-After {secs}");
        }
        let known = attempt(&gw, "Dave@Example.com", PASSWORD, "198.51.100.3").await;
        assert_eq!(known.status, 429, "{b}: any case of the email");

        // An email nobody has registered locks the same way (any case).
        for email in [
            "Ghost@Example.com",
            "ghost@example.com",
            "GHOST@example.com",
        ] {
            let r = attempt(&gw, email, WRONG, "198.51.100.4").await;
            assert_problem_resp(&r, 401, "invalid_credentials", &format!("{b}: {email}"));
        }
        let ghost = attempt(&gw, "ghost@example.com", WRONG, "198.51.100.5").await;
        let ctx = format!("{b}: unknown email");
        assert_problem_resp(&ghost, 429, "too_many_attempts", &ctx);
        assert!(ghost.retry_after() >= 1, "{ctx}");
        assert_eq!(
            ghost.text, known.text,
            "{ctx}: same body as a locked account"
        );

        // /auth/token failures count like /auth/login failures.
        register(&gw, "erin@example.com", None, PASSWORD).await;
        for _ in 0..2 {
            let r = attempt(&gw, "erin@example.com", WRONG, "198.51.100.6").await;
            assert_eq!(r.status, 401, "{b}");
        }
        let token_url = gw.url("/auth/token");
        let body = form(&password_grant("erin@example.com", WRONG));
        let r = post(&token_url, FORM, body, "198.51.100.7").await;
        assert_eq!(r.status, 400, "{b}: {}", r.text);
        let r = attempt(&gw, "erin@example.com", PASSWORD, "198.51.100.8").await;
        let ctx = format!("{b}: a /auth/token failure counts");
        assert_problem_resp(&r, 429, "too_many_attempts", &ctx);
        let body = form(&password_grant("erin@example.com", PASSWORD));
        let r = post(&token_url, FORM, body, "198.51.100.9").await;
        assert_eq!(r.status, 429, "{b}: locked on /auth/token too: {}", r.text);
        assert!(r.retry_after() >= 1, "{b}");
        drop(gw);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lockout_ends_after_its_duration_and_success_resets_the_count() {
    for backend in backends().await {
        let b = backend.name;
        let lockout = "lockout = { max_failures = 2, window = \"10m\", duration = \"3s\" }";
        let gw = gateway(&backend, &[THROTTLE_OFF, lockout], true).await;
        register(&gw, "ivan@example.com", None, PASSWORD).await;
        let r = attempt(&gw, "ivan@example.com", WRONG, "192.0.2.1").await;
        assert_eq!(r.status, 401, "{b}");
        login(&gw, "ivan@example.com", PASSWORD).await;
        let r = attempt(&gw, "ivan@example.com", WRONG, "192.0.2.2").await;
        assert_eq!(r.status, 401, "{b}: a success forgets earlier failures");
        login(&gw, "ivan@example.com", PASSWORD).await;

        for ip in ["192.0.2.3", "192.0.2.4"] {
            let r = attempt(&gw, "ivan@example.com", WRONG, ip).await;
            assert_eq!(r.status, 401, "{b}: {}", r.text);
        }
        let r = attempt(&gw, "ivan@example.com", PASSWORD, "192.0.2.5").await;
        assert_problem_resp(&r, 429, "too_many_attempts", &format!("{b}: locked"));
        let wait = r.retry_after();
        assert!((1..=3).contains(&wait), "{b}: {:?}", r.headers);
        // Waiting exactly Retry-After (on the accounts' clock) is enough.
        gw.state
            .accounts
            .clock
            .advance(chrono::Duration::seconds(wait as i64));
        login(&gw, "ivan@example.com", PASSWORD).await;
        drop(gw);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn login_and_register_are_throttled_per_ip() {
    for backend in backends().await {
        let b = backend.name;
        let throttle = "throttle = { login = \"2/m\", register = \"2/m\" }";
        // The default cookie_secure (true) here.
        let body = format!(
            "{}\n[accounts]\n{CHEAP}\n{LOCKOUT_FAR}\n{throttle}\n",
            backend.config()
        );
        let gw = TestGateway::start_trusting_localhost(&body).await;
        let ip = "203.0.113.1";
        register(&gw, "frank@example.com", None, PASSWORD).await;
        let ok = attempt(&gw, "frank@example.com", PASSWORD, ip).await;
        assert_eq!(ok.status, 200, "{b}: {}", ok.text);
        let cookie = ok.header("set-cookie").unwrap_or_default();
        assert!(cookie.split("; ").any(|a| a == "Secure"), "{b}: {cookie}");
        let r = attempt(&gw, "someone@example.com", WRONG, ip).await;
        assert_eq!(r.status, 401, "{b}");
        let r = attempt(&gw, "frank@example.com", PASSWORD, ip).await;
        assert_problem_resp(&r, 429, "too_many_attempts", &format!("{b}: 3rd login"));
        assert!(r.retry_after() >= 1, "{b}");
        let other = attempt(&gw, "frank@example.com", PASSWORD, "203.0.113.2").await;
        assert_eq!(other.status, 200, "{b}: per IP: {}", other.text);

        // Registration (the register() above came from the peer address).
        let url = gw.url("/auth/register");
        for n in 1..=3 {
            let body = json!({"email": format!("g{n}@example.com"), "password": PASSWORD});
            let r = post(&url, JSON, body.to_string(), "203.0.113.3").await;
            if n < 3 {
                assert_eq!(r.status, 201, "{b}: register {n}: {}", r.text);
            } else {
                assert_problem_resp(&r, 429, "too_many_attempts", &format!("{b}: 3rd"));
                assert!(r.retry_after() >= 1, "{b}");
            }
        }
        drop(gw);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_burst_locks_the_account_not_the_ip() {
    for backend in backends().await {
        let b = backend.name;
        let lockout = "lockout = { max_failures = 5, window = \"10m\", duration = \"15m\" }";
        let gw = gateway(&backend, &[THROTTLE_OFF, lockout], true).await;
        register(&gw, "nat-a@example.com", None, PASSWORD).await;
        register(&gw, "nat-b@example.com", None, PASSWORD).await;
        let nat = "198.51.100.77";
        // max_failures = 5: five failures are answered as such, the fifth
        // locks, and the sixth attempt is refused even with the password.
        for i in 1..=5 {
            let r = attempt(&gw, "nat-a@example.com", WRONG, nat).await;
            assert_problem_resp(&r, 401, "invalid_credentials", &format!("{b}: try {i}"));
        }
        let r = attempt(&gw, "nat-a@example.com", PASSWORD, nat).await;
        assert_problem_resp(&r, 429, "too_many_attempts", &format!("{b}: locked"));
        let wait = r.retry_after();
        assert!((899..=900).contains(&wait), "{b}: Retry-After {wait}");

        // Another account behind the same address is not locked out.
        let r = attempt(&gw, "nat-b@example.com", PASSWORD, nat).await;
        assert_eq!(r.status, 200, "{b}: B from the same IP: {}", r.text);
        let r = attempt(&gw, "nat-b@example.com", WRONG, nat).await;
        assert_problem_resp(&r, 401, "invalid_credentials", &format!("{b}: B wrong"));

        // A second short of Retry-After it is still locked; at it, not.
        let clock = &gw.state.accounts.clock;
        clock.advance(chrono::Duration::seconds(wait as i64 - 2));
        let r = attempt(&gw, "nat-a@example.com", PASSWORD, nat).await;
        assert_eq!(r.status, 429, "{b}: before Retry-After: {}", r.text);
        clock.advance(chrono::Duration::seconds(2));
        let r = attempt(&gw, "nat-a@example.com", PASSWORD, nat).await;
        assert_eq!(r.status, 200, "{b}: after Retry-After: {}", r.text);
        drop(gw);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_login_throttle_allows_exactly_its_count() {
    for backend in backends().await {
        let b = backend.name;
        let throttle = "throttle = { login = \"4/m\", register = \"1000/m\" }";
        let gw = gateway(&backend, &[LOCKOUT_FAR, throttle], true).await;
        register(&gw, "quota@example.com", None, PASSWORD).await;
        let ip = "203.0.113.40";
        for i in 1..=4 {
            let password = if i % 2 == 0 { PASSWORD } else { WRONG };
            let r = attempt(&gw, "quota@example.com", password, ip).await;
            assert_ne!(r.status, 429, "{b}: attempt {i} of 4: {}", r.text);
        }
        let r = attempt(&gw, "quota@example.com", PASSWORD, ip).await;
        assert_problem_resp(&r, 429, "too_many_attempts", &format!("{b}: 5th"));
        let wait = r.retry_after();
        assert!((59..=60).contains(&wait), "{b}: Retry-After {wait}");

        // Half a minute on, the window still holds four attempts.
        let clock = &gw.state.accounts.clock;
        clock.advance(chrono::Duration::seconds(30));
        let r = attempt(&gw, "quota@example.com", PASSWORD, ip).await;
        assert_eq!(r.status, 429, "{b}: 30 s later: {}", r.text);
        let wait = r.retry_after();
        assert!((29..=30).contains(&wait), "{b}: Retry-After {wait}");
        clock.advance(chrono::Duration::seconds(wait as i64));
        for i in 1..=4 {
            let r = attempt(&gw, "quota@example.com", PASSWORD, ip).await;
            assert_eq!(r.status, 200, "{b}: after Retry-After, {i}: {}", r.text);
        }
        let r = attempt(&gw, "quota@example.com", PASSWORD, ip).await;
        assert_eq!(r.status, 429, "{b}: and again the 5th: {}", r.text);
        drop(gw);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_login_body_must_be_a_json_object() {
    for backend in backends().await {
        let b = backend.name;
        let gw = relaxed(&backend).await;
        register(&gw, "array@example.com", None, PASSWORD).await;
        let url = gw.url("/auth/login");
        for body in [
            json!(["array@example.com", null, PASSWORD]),
            json!("array@example.com"),
            json!(null),
        ] {
            let r = post_json(&url, &body).await;
            let ctx = format!("{b}: {body}");
            assert_problem_resp(&r, 422, "validation_failed", &ctx);
            assert_eq!(r.json()["field"], "body", "{ctx}: {}", r.text);
            assert!(r.header("set-cookie").is_none(), "{ctx}: no session");
        }
        let r = post(&url, JSON, "[1,", "").await;
        assert_problem_resp(&r, 400, "invalid_json", b);
        // Refresh reads its JSON body the same way.
        let r = post_json(&gw.url("/auth/refresh"), &json!(["token"])).await;
        assert_problem_resp(&r, 422, "validation_failed", &format!("{b}: refresh"));
        drop(gw);
    }
}

fn password_grant<'a>(login: &'a str, password: &'a str) -> [(&'a str, &'a str); 3] {
    let grant = ("grant_type", "password");
    [grant, ("username", login), ("password", password)]
}

fn refresh_grant(token: &Value) -> String {
    let token = token.as_str().expect("a token string");
    form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
}

#[tokio::test(flavor = "multi_thread")]
async fn token_endpoint_speaks_rfc6749() {
    for backend in backends().await {
        let b = backend.name;
        let gw = relaxed(&backend).await;
        register(&gw, "gina@example.com", None, PASSWORD).await;
        let url = gw.url("/auth/token");
        let no_store = |r: &Resp| r.header("cache-control") == Some("no-store");
        let oauth_error = |r: &Resp, error: &str, ctx: &str| {
            assert_eq!(r.status, 400, "{b}: {ctx}: {}", r.text);
            assert_eq!(r.json()["error"], error, "{b}: {ctx}: {}", r.text);
            assert!(no_store(r), "{b}: {ctx}: Cache-Control no-store");
        };

        let body = form(&password_grant("gina@example.com", PASSWORD));
        let r = post(&url, FORM, body, "").await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        assert!(no_store(&r), "{b}: Cache-Control no-store");
        let first = r.json();
        assert_token_pair(&first, b);
        let r = get_bearer(&gw, "/auth/me", &first["access_token"]).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);

        let body = form(&password_grant("gina@example.com", WRONG));
        oauth_error(&post(&url, FORM, body, "").await, "invalid_grant", "wrong");
        let body = form(&password_grant("gina@example.com", PASSWORD)[1..]);
        let r = post(&url, FORM, body, "").await;
        oauth_error(&r, "invalid_request", "no grant_type");
        let body = "grant_type=client_credentials&client_id=x&client_secret=y";
        let r = post(&url, FORM, body, "").await;
        oauth_error(&r, "unsupported_grant_type", "client_credentials");
        let body = json!({"grant_type": "password", "username": "gina@example.com"});
        let r = post_json(&url, &body).await;
        oauth_error(&r, "invalid_request", "JSON body");

        let r = post(&url, FORM, refresh_grant(&first["refresh_token"]), "").await;
        assert_eq!(r.status, 200, "{b}: refresh grant: {}", r.text);
        let second = r.json();
        assert_token_pair(&second, b);
        let rotated = second["refresh_token"] != first["refresh_token"];
        assert!(rotated, "{b}: a new refresh token");
        assert_ne!(second["access_token"], first["access_token"], "{b}");
        assert_eq!(second["session_id"], first["session_id"], "{b}");
        let r = get_bearer(&gw, "/auth/me", &second["access_token"]).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);

        // The old refresh token is dead; a token of the other kind is refused.
        let r = post(&url, FORM, refresh_grant(&first["refresh_token"]), "").await;
        oauth_error(&r, "invalid_grant", "rotated refresh token");
        let r = post(&url, FORM, refresh_grant(&second["access_token"]), "").await;
        oauth_error(&r, "invalid_grant", "access token as refresh token");
        let r = get_bearer(&gw, "/auth/me", &second["refresh_token"]).await;
        assert_eq!(r.status, 401, "{b}: refresh token as bearer: {}", r.text);
        drop(gw);
    }
}

async fn stored_hashes(url: &str) -> Vec<String> {
    const SQL: &str = "SELECT password_hash FROM users";
    if let Some(path) = url.strip_prefix("sqlite://") {
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        let rows: Vec<String> = sqlx::query_scalar(SQL).fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        let rows: Vec<String> = sqlx::query_scalar(SQL).fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn login_rehashes_when_the_argon2_cost_changes() {
    for backend in backends().await {
        let b = backend.name;
        // Two gateways (two data directories) on one database.
        let dir = tempfile::tempdir().unwrap();
        let url = match b {
            "sqlite" => format!("sqlite://{}", dir.path().join("p.db").display()),
            _ => backend.url.clone(),
        };
        let config = |memory: u32| {
            let argon2 = CHEAP.replace("1024", &memory.to_string());
            format!("\n[database]\nurl = \"{url}\"\n\n[accounts]\n{argon2}\n{THROTTLE_OFF}\n")
        };
        let gw = TestGateway::start(&config(1024)).await;
        register(&gw, "hana@example.com", None, PASSWORD).await;
        drop(gw);
        let before = stored_hashes(&url).await;
        assert_eq!(before.len(), 1, "{b}");
        let old_cost = before[0].starts_with("$argon2id$v=19$m=1024,t=1,p=1$");
        assert!(old_cost, "{b}: {}", before[0]);

        let gw = TestGateway::start(&config(2048)).await;
        let r = attempt(&gw, "hana@example.com", WRONG, "").await;
        assert_eq!(r.status, 401, "{b}");
        let hashes = stored_hashes(&url).await;
        assert_eq!(hashes, before, "{b}: no rehash on a failed login");
        login(&gw, "hana@example.com", PASSWORD).await;
        let after = stored_hashes(&url).await;
        let new_cost = after[0].starts_with("$argon2id$v=19$m=2048,t=1,p=1$");
        assert!(new_cost, "{b}: rehashed at the new cost: {}", after[0]);
        login(&gw, "hana@example.com", PASSWORD).await;
        let hashes = stored_hashes(&url).await;
        assert_eq!(hashes, after, "{b}: no rehash at the same cost");
        drop(gw);
    }
}
