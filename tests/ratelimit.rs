//! Per-route rate limits from the outside (DESIGN.md §3 `rate_limit`, §6
//! "rate limits 429 with `Retry-After`", §10 metrics): budgets, keys,
//! recovery, headers, and what the upstream sees.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

/// One route `name` at `/{name}/**` with `auth` and `rate_limit = { limit }`.
fn route(name: &str, auth: &str, limit: &str) -> String {
    format!(
        "\n[[routes]]\nname = \"{name}\"\npath = \"/{name}/**\"\nupstream = \"app\"\nauth = \"{auth}\"\nrate_limit = {{ {limit} }}\n"
    )
}

async fn setup(routes: &[String]) -> (TestGateway, Echo) {
    let echo = Echo::start("app").await;
    let body = format!("{}{}", upstream("app", &[echo.addr]), routes.concat());
    (TestGateway::start(&body).await, echo)
}

async fn setup_trusted(routes: &[String]) -> (TestGateway, Echo) {
    let echo = Echo::start("app").await;
    let body = format!("{}{}", upstream("app", &[echo.addr]), routes.concat());
    let gw = TestGateway::start_trusting_localhost(&body).await;
    (gw, echo)
}

fn header_u64(r: &RawResponse, name: &str) -> u64 {
    r.header(name)
        .unwrap_or_else(|| panic!("{name} missing: {:?}", r.headers))
        .parse()
        .unwrap_or_else(|e| panic!("{name} not an integer: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn ip_budget_then_429_with_retry_after() {
    let (gw, echo) = setup(&[route("limited", "public", r#"key = "ip", rate = "3/m""#)]).await;
    let mut remaining = Vec::new();
    for i in 0..3 {
        let r = raw_get(gw.addr, &format!("/limited/{i}"), &[]).await;
        assert_eq!(r.status, 200, "request {i}");
        assert_eq!(header_u64(&r, "RateLimit-Limit"), 3);
        remaining.push(header_u64(&r, "RateLimit-Remaining"));
    }
    assert_eq!(remaining, vec![2, 1, 0]);

    let r = raw_get(gw.addr, "/limited/3", &[]).await;
    assert_problem(&r, 429, "rate_limited");
    let retry = header_u64(&r, "Retry-After");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_eq!(header_u64(&r, "RateLimit-Limit"), 3);
    assert_eq!(header_u64(&r, "RateLimit-Remaining"), 0);
    assert!(header_u64(&r, "RateLimit-Reset") >= 1);
    assert!(r.header("x-request-id").is_some());
    assert_eq!(echo.proxied().len(), 3, "the upstream saw exactly 3");
}

#[tokio::test(flavor = "multi_thread")]
async fn budget_recovers_after_retry_after() {
    let (gw, echo) = setup(&[route(
        "fast",
        "public",
        r#"key = "ip", rate = "1/s", burst = 1"#,
    )])
    .await;
    assert_eq!(raw_get(gw.addr, "/fast/a", &[]).await.status, 200);
    let denied = raw_get(gw.addr, "/fast/b", &[]).await;
    assert_problem(&denied, 429, "rate_limited");
    assert_eq!(
        header_u64(&denied, "Retry-After"),
        1,
        "under a second rounds up to 1 s"
    );
    assert_eq!(echo.proxied().len(), 1);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = raw_get(gw.addr, "/fast/c", &[]).await;
    assert_eq!(r.status, 200, "one cell came back after 1 s");
    assert_eq!(echo.proxied().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn user_key_gives_each_user_a_budget() {
    let (gw, echo) = setup(&[route("per-user", "jwt", r#"key = "user", rate = "1/m""#)]).await;
    let mut alice_claims = gw.claims();
    alice_claims["roles"] = json!(["admin"]);
    let alice = format!("Bearer {}", gw.sign(&alice_claims));
    let bob = format!("Bearer {}", gw.token(|_| {}));
    let ok = raw_get(gw.addr, "/per-user/x", &[("Authorization", &alice)]).await;
    assert_eq!(ok.status, 200);
    assert_eq!(header_u64(&ok, "RateLimit-Limit"), 1);
    let denied = raw_get(gw.addr, "/per-user/x", &[("Authorization", &alice)]).await;
    assert_problem(&denied, 429, "rate_limited");
    // Same IP, different user: its own budget.
    let other = raw_get(gw.addr, "/per-user/x", &[("Authorization", &bob)]).await;
    assert_eq!(other.status, 200);
    assert_problem(
        &raw_get(gw.addr, "/per-user/x", &[("Authorization", &bob)]).await,
        429,
        "rate_limited",
    );
    assert_eq!(echo.proxied().len(), 2);

    // A fresh token of the same user shares the user's budget.
    let alice2 = format!(
        "Bearer {}",
        gw.token(|c| c["sub"] = alice_claims["sub"].clone())
    );
    assert_problem(
        &raw_get(gw.addr, "/per-user/x", &[("Authorization", &alice2)]).await,
        429,
        "rate_limited",
    );
    assert_eq!(echo.proxied().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn anonymous_callers_on_a_user_keyed_route_fall_back_to_ip() {
    let (gw, echo) = setup(&[route("anon", "public", r#"key = "user", rate = "1/m""#)]).await;
    assert_eq!(raw_get(gw.addr, "/anon/x", &[]).await.status, 200);
    assert_problem(&raw_get(gw.addr, "/anon/x", &[]).await, 429, "rate_limited");
    assert_eq!(echo.proxied().len(), 1, "never unlimited");
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_are_per_route() {
    let (gw, echo) = setup(&[
        route("one", "public", r#"key = "ip", rate = "1/m""#),
        route("two", "public", r#"key = "ip", rate = "1/m""#),
    ])
    .await;
    assert_eq!(raw_get(gw.addr, "/one/x", &[]).await.status, 200);
    assert_problem(&raw_get(gw.addr, "/one/x", &[]).await, 429, "rate_limited");
    assert_eq!(raw_get(gw.addr, "/two/x", &[]).await.status, 200);
    assert_eq!(echo.proxied().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn rejections_are_counted_in_metrics() {
    let (gw, _echo) = setup(&[route("metered", "public", r#"key = "ip", rate = "1/m""#)]).await;
    assert_eq!(raw_get(gw.addr, "/metered/x", &[]).await.status, 200);
    for _ in 0..2 {
        assert_problem(
            &raw_get(gw.addr, "/metered/x", &[]).await,
            429,
            "rate_limited",
        );
    }
    let text = gw.metrics().await;
    let count = metric(
        &text,
        r#"portcullis_ratelimit_rejections_total{route="metered"}"#,
    )
    .unwrap_or_else(|| panic!("no rejection metric in:\n{text}"));
    assert!(count >= 2.0, "{count}");
}

#[tokio::test(flavor = "multi_thread")]
async fn trusted_proxy_clients_have_separate_budgets() {
    let (gw, echo) =
        setup_trusted(&[route("behind", "public", r#"key = "ip", rate = "1/m""#)]).await;
    let xff = |ip: &'static str| [("X-Forwarded-For", ip)];
    assert_eq!(
        raw_get(gw.addr, "/behind/x", &xff("1.1.1.1")).await.status,
        200
    );
    assert_problem(
        &raw_get(gw.addr, "/behind/x", &xff("1.1.1.1")).await,
        429,
        "rate_limited",
    );
    assert_eq!(
        raw_get(gw.addr, "/behind/x", &xff("2.2.2.2")).await.status,
        200
    );
    // The client is the nearest untrusted hop, not the leftmost claim.
    assert_problem(
        &raw_get(gw.addr, "/behind/x", &xff("9.9.9.9, 2.2.2.2")).await,
        429,
        "rate_limited",
    );
    assert_eq!(echo.proxied().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn spoofed_forwarded_for_shares_one_budget_without_trusted_proxies() {
    let (gw, echo) = setup(&[route("direct", "public", r#"key = "ip", rate = "1/m""#)]).await;
    assert_eq!(
        raw_get(gw.addr, "/direct/x", &[("X-Forwarded-For", "1.1.1.1")])
            .await
            .status,
        200
    );
    for spoof in ["2.2.2.2", "3.3.3.3", "10.0.0.1, 4.4.4.4"] {
        assert_problem(
            &raw_get(gw.addr, "/direct/x", &[("X-Forwarded-For", spoof)]).await,
            429,
            "rate_limited",
        );
    }
    assert_problem(
        &raw_get(gw.addr, "/direct/x", &[("X-Real-IP", "5.5.5.5")]).await,
        429,
        "rate_limited",
    );
    assert_eq!(echo.proxied().len(), 1);
}
