//! Route matching and path normalization from the outside (DESIGN.md §4):
//! what matches, what is forwarded, and what is refused before the upstream
//! ever sees it.

mod common;

use common::*;

async fn setup() -> (TestGateway, Echo) {
    let echo = Echo::start("app").await;
    let body = format!(
        r#"{}
[[routes]]
name = "host-only"
hosts = ["api.example.com", "*.tenant.example"]
path = "/hosted/**"
upstream = "app"
auth = "public"

[[routes]]
name = "admin"
path = "/admin/**"
upstream = "app"
auth = "jwt"

[[routes]]
name = "closed"
path = "/closed/**"
auth = "deny"

[[routes]]
name = "get-only"
path = "/reports/*"
methods = ["GET"]
upstream = "app"
auth = "public"

[[routes]]
name = "exact"
path = "/exact"
upstream = "app"
auth = "public"

[[routes]]
name = "stripped"
path = "/svc/v1/**"
upstream = "app"
auth = "public"
strip_path_prefix = "/svc/v1"

[[routes]]
name = "public"
path = "/public/**"
upstream = "app"
auth = "public"
"#,
        upstream("app", &[echo.addr])
    );
    (TestGateway::start(&body).await, echo)
}

#[tokio::test(flavor = "multi_thread")]
async fn first_match_wins_and_unmatched_requests_get_404() {
    let (gw, echo) = setup().await;
    let r = raw_get(gw.addr, "/public/a/b?x=1&y=%2F", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        echo.last().target,
        "/public/a/b?x=1&y=%2F",
        "query forwarded verbatim"
    );
    assert!(r.header("x-request-id").is_some());

    let before = echo.proxied().len();
    for path in ["/nothing", "/", "/publicx", "/Public/a", "/exact/"] {
        let r = raw_get(gw.addr, path, &[]).await;
        assert_problem(&r, 404, "not_found");
    }
    assert_eq!(
        echo.proxied().len(),
        before,
        "unmatched requests never reach the upstream"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wildcards_exact_and_methods() {
    let (gw, echo) = setup().await;
    assert_eq!(raw_get(gw.addr, "/exact", &[]).await.status, 200);
    assert_eq!(raw_get(gw.addr, "/reports/q3", &[]).await.status, 200);
    assert_problem(
        &raw_get(gw.addr, "/reports/q3/detail", &[]).await,
        404,
        "not_found",
    );
    assert_problem(&raw_get(gw.addr, "/reports/", &[]).await, 404, "not_found");
    let post = raw(
        gw.addr,
        "POST /reports/q3 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert_problem(&post, 404, "not_found");
    assert!(echo.proxied().iter().all(|s| s.method == "GET"));
}

#[tokio::test(flavor = "multi_thread")]
async fn hosts_filter_including_absolute_form_targets() {
    let (gw, echo) = setup().await;
    let ok = raw(
        gw.addr,
        "GET /hosted/x HTTP/1.1\r\nHost: API.example.com:8443\r\n\r\n",
    )
    .await;
    assert_eq!(ok.status, 200);
    let sub = raw(
        gw.addr,
        "GET /hosted/x HTTP/1.1\r\nHost: a.tenant.example\r\n\r\n",
    )
    .await;
    assert_eq!(sub.status, 200);
    let wrong = raw(
        gw.addr,
        "GET /hosted/x HTTP/1.1\r\nHost: other.example.com\r\n\r\n",
    )
    .await;
    assert_problem(&wrong, 404, "not_found");
    // The absolute-form authority is the host that is matched and forwarded.
    let absolute = raw(
        gw.addr,
        "GET http://api.example.com/hosted/y HTTP/1.1\r\n\r\n",
    )
    .await;
    assert_eq!(absolute.status, 200);
    let seen = echo.last();
    assert_eq!(seen.target, "/hosted/y");
    assert_eq!(seen.header("host").as_deref(), Some("api.example.com"));
    let absolute_wrong = raw(
        gw.addr,
        "GET http://other.example.com/hosted/y HTTP/1.1\r\n\r\n",
    )
    .await;
    assert_problem(&absolute_wrong, 404, "not_found");
    // A Host that disagrees with the absolute-form authority is refused
    // outright (by pingora's HTTP/1 parser) and never forwarded.
    let before = echo.proxied().len();
    let smuggled = raw(
        gw.addr,
        "GET http://api.example.com/hosted/y HTTP/1.1\r\nHost: other.example.com\r\n\r\n",
    )
    .await;
    assert_eq!(smuggled.status, 400);
    assert_eq!(echo.proxied().len(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn normalized_path_is_matched_and_forwarded() {
    let (gw, echo) = setup().await;
    for (sent, forwarded) in [
        ("/public/../public/a", "/public/a"),
        ("/public//a///b", "/public/a/b"),
        ("/public/./a/%2e/b", "/public/a/b"),
        ("/%70ublic/a", "/public/a"),
        ("/public/caf%c3%a9", "/public/caf%C3%A9"),
    ] {
        let r = raw_get(gw.addr, sent, &[]).await;
        assert_eq!(r.status, 200, "{sent}");
        assert_eq!(echo.last().target, forwarded, "{sent}");
    }
    // Dot segments cannot climb out of a public route into a protected one.
    let before = echo.proxied().len();
    for sneaky in [
        "/public/../admin/users",
        "/public/%2e%2e/admin/users",
        "/public/.%2E/admin/users",
    ] {
        let r = raw_get(gw.addr, sneaky, &[]).await;
        assert_problem(&r, 401, "unauthenticated");
    }
    assert_eq!(echo.proxied().len(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn dangerous_paths_are_refused_before_the_upstream() {
    let (gw, echo) = setup().await;
    let cases = [
        "/public/a%2fb",
        "/public/a%2Fb",
        "/public/a%5cb",
        "/public/a%00b",
        "/public/a%23b",
        "/public/a%0ab",
        "/public/a\\b",
        "/public;x/a",
        "/public/a;jsessionid=1",
        "/public/a%3bb",
        "/public/%C0%AE%C0%AE/admin",
        "/public/%ff",
        "/public/a%zz",
    ];
    let before = echo.proxied().len();
    for path in cases {
        let r = raw_get(gw.addr, path, &[]).await;
        assert_problem(&r, 400, "invalid_path");
    }
    assert_eq!(
        echo.proxied().len(),
        before,
        "the upstream saw none of them"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn query_string_never_matches_and_case_matters() {
    let (gw, echo) = setup().await;
    let before = echo.proxied().len();
    assert_problem(
        &raw_get(gw.addr, "/nothing?/public/x", &[]).await,
        404,
        "not_found",
    );
    assert_problem(
        &raw_get(gw.addr, "/ADMIN/users", &[]).await,
        404,
        "not_found",
    );
    // Case-variant admin path does not reach the admin rule or the upstream.
    assert_eq!(echo.proxied().len(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn deny_routes_and_reserved_local_paths() {
    let (gw, echo) = setup().await;
    assert_problem(&raw_get(gw.addr, "/closed/x", &[]).await, 403, "forbidden");
    // /auth is the gateway's own API: answered locally, never forwarded.
    assert_problem(
        &raw_get(gw.addr, "/auth/login", &[]).await,
        405,
        "method_not_allowed",
    );
    assert_problem(
        &raw_get(gw.addr, "/auth/nothing-here", &[]).await,
        404,
        "not_found",
    );
    assert!(echo.proxied().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn strip_path_prefix_rewrites_what_is_forwarded() {
    let (gw, echo) = setup().await;
    assert_eq!(
        raw_get(gw.addr, "/svc/v1/orders/7?x=1", &[]).await.status,
        200
    );
    assert_eq!(echo.last().target, "/orders/7?x=1");
    assert_eq!(raw_get(gw.addr, "/svc/v1", &[]).await.status, 200);
    assert_eq!(echo.last().target, "/");
}

#[tokio::test(flavor = "multi_thread")]
async fn rewrite_and_override_headers_do_not_change_routing() {
    let (gw, echo) = setup().await;
    let r = raw_get(
        gw.addr,
        "/public/x",
        &[
            ("X-Original-URL", "/admin/users"),
            ("X-Rewrite-URL", "/admin/users"),
            ("X-HTTP-Method-Override", "DELETE"),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    let seen = echo.last();
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.target, "/public/x");
    for h in ["x-original-url", "x-rewrite-url", "x-http-method-override"] {
        assert!(seen.header(h).is_none(), "{h} was forwarded");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn jwks_is_served_locally() {
    let (gw, _echo) = setup().await;
    let r = raw_get(gw.addr, "/.well-known/jwks.json", &[]).await;
    assert_eq!(r.status, 200);
    let keys = r.json()["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kid"], gw.state.signing_key.kid);
    assert_eq!(keys[0]["kty"], "OKP");
    assert!(keys[0].get("d").is_none(), "no private material");
}
