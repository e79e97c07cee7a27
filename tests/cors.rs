//! CORS from the outside (DESIGN.md §10 "CORS"): with `[cors]` the gateway
//! answers preflights itself, on proxied routes and on its own endpoints,
//! and marks answers for allowed origins; without it `OPTIONS` is an
//! ordinary request.

mod common;

use common::*;
use serde_json::json;

const APP: &str = "https://app.example.com";

fn routes(echo: &Echo, cors: &str) -> String {
    format!(
        r#"{cors}
{}
[[routes]]
name = "orders"
path = "/orders/**"
methods = ["GET", "POST"]
upstream = "app"
auth = "jwt"

[[routes]]
name = "public"
path = "/public/**"
upstream = "app"
auth = "public"
"#,
        upstream("app", &[echo.addr])
    )
}

const CORS: &str = r#"
[cors]
allowed_origins = ["https://app.example.com/"]
allowed_methods = ["GET", "POST"]
allowed_headers = ["Authorization", "Content-Type"]
max_age = "10m"
"#;

async fn setup(cors: &str) -> (TestGateway, Echo) {
    let echo = Echo::start("app").await;
    let gw = TestGateway::start(&routes(&echo, cors)).await;
    (gw, echo)
}

fn preflight(path: &str, origin: &str, method: &str) -> String {
    format!(
        "OPTIONS {path} HTTP/1.1\r\nHost: localhost\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: {method}\r\nAccess-Control-Request-Headers: authorization\r\n\r\n"
    )
}

fn vary_origin(r: &RawResponse) -> bool {
    r.headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("vary") && v.to_ascii_lowercase().contains("origin"))
}

#[tokio::test(flavor = "multi_thread")]
async fn preflights_are_answered_by_the_gateway() {
    let (gw, echo) = setup(CORS).await;
    for path in ["/orders/1", "/public/x", "/auth/login", "/auth/me"] {
        let r = raw(gw.addr, &preflight(path, APP, "POST")).await;
        assert_eq!(
            r.status,
            204,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.header("Access-Control-Allow-Origin"), Some(APP), "{path}");
        assert_eq!(r.header("Access-Control-Allow-Methods"), Some("GET, POST"));
        assert_eq!(
            r.header("Access-Control-Allow-Headers"),
            Some("authorization, content-type")
        );
        assert_eq!(r.header("Access-Control-Allow-Credentials"), Some("true"));
        assert_eq!(r.header("Access-Control-Max-Age"), Some("600"));
        assert!(vary_origin(&r), "{path}: {:?}", r.headers);
        assert!(r.body.is_empty());
    }
    assert!(echo.proxied().is_empty(), "a preflight reached the backend");

    // A method no route serves, or a path nothing serves: nothing to allow.
    let r = raw(gw.addr, &preflight("/orders/1", APP, "DELETE")).await;
    assert_problem(&r, 404, "not_found");
    let r = raw(gw.addr, &preflight("/nowhere", APP, "GET")).await;
    assert_problem(&r, 404, "not_found");
}

#[tokio::test(flavor = "multi_thread")]
async fn foreign_origins_get_nothing() {
    let (gw, echo) = setup(CORS).await;
    for origin in [
        "https://evil.example.com",
        "https://app.example.com.evil.example",
        "http://app.example.com",
        "null",
    ] {
        let r = raw(gw.addr, &preflight("/orders/1", origin, "GET")).await;
        assert_problem(&r, 403, "origin_not_allowed");
        assert!(
            r.header("Access-Control-Allow-Origin").is_none(),
            "{origin}"
        );
        assert!(
            r.header("Access-Control-Allow-Methods").is_none(),
            "{origin}"
        );

        let r = raw_get(gw.addr, "/public/x", &[("Origin", origin)]).await;
        assert_eq!(r.status, 200);
        assert!(
            r.header("Access-Control-Allow-Origin").is_none(),
            "{origin}"
        );
        assert!(vary_origin(&r), "{origin}: {:?}", r.headers);
    }
    assert_eq!(
        echo.proxied().len(),
        4,
        "only the actual requests are forwarded"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_to_an_allowed_origin_say_so_proxied_or_local() {
    let (gw, _echo) = setup(CORS).await;
    let token = format!("Bearer {}", gw.sign(&gw.claims()));
    let origin = [("Origin", APP)];
    let cases = [
        raw_get(
            gw.addr,
            "/orders/1",
            &[("Origin", APP), ("Authorization", &token)],
        )
        .await,
        raw_get(gw.addr, "/orders/1", &origin).await,
        raw_get(gw.addr, "/public/x", &origin).await,
        raw_get(gw.addr, "/auth/me", &origin).await,
        raw_get(gw.addr, "/.well-known/jwks.json", &origin).await,
        raw_get(gw.addr, "/nowhere", &origin).await,
    ];
    let statuses: Vec<u16> = cases.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 401, 200, 401, 200, 404]);
    for r in &cases {
        assert_eq!(
            r.header("Access-Control-Allow-Origin"),
            Some(APP),
            "{}",
            r.status
        );
        assert_eq!(r.header("Access-Control-Allow-Credentials"), Some("true"));
        assert!(vary_origin(r), "{:?}", r.headers);
    }
    // No Origin, no CORS headers.
    let r = raw_get(gw.addr, "/public/x", &[]).await;
    assert!(r.header("Access-Control-Allow-Origin").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn without_cors_options_is_an_ordinary_request() {
    let (gw, echo) = setup("").await;
    // The orders route serves GET and POST only.
    let r = raw(gw.addr, &preflight("/orders/1", APP, "GET")).await;
    assert_problem(&r, 404, "not_found");
    let r = raw(gw.addr, &preflight("/public/x", APP, "GET")).await;
    assert_eq!(r.status, 200);
    assert_eq!(echo.last().method, "OPTIONS");
    assert!(r.header("Access-Control-Allow-Origin").is_none());
}

#[test]
fn cors_origins_must_be_origins() {
    for (origins, credentials) in [
        (json!(["https://app.example.com/path"]), true),
        (json!(["app.example.com"]), true),
        (json!(["https://user@app.example.com"]), true),
        (json!(["*"]), true),
    ] {
        let text =
            format!("[cors]\nallowed_origins = {origins}\nallow_credentials = {credentials}\n");
        let err = portcullis::Config::from_toml(&text, std::path::Path::new("."))
            .expect_err(&text)
            .to_string();
        assert!(err.contains("cors.allowed_origins"), "{text}: {err}");
    }
    let ok = "[cors]\nallowed_origins = [\"*\"]\nallow_credentials = false\n";
    assert!(portcullis::Config::from_toml(ok, std::path::Path::new(".")).is_ok());
}
