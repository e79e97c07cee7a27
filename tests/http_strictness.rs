//! HTTP strictness from the outside (DESIGN.md §10 "HTTP strictness"):
//! request targets and `Host` headers a backend might read differently,
//! methods that are never forwarded, hop-by-hop tricks, pipelining, and
//! bodies framed only by their own request's headers.

mod common;

use std::time::Duration;

use common::*;

fn routes(echo: &Echo) -> String {
    format!(
        r#"{}
[[routes]]
name = "private"
path = "/private/**"
upstream = "app"
auth = "jwt"

[[routes]]
name = "public"
path = "/**"
upstream = "app"
auth = "public"
"#,
        upstream("app", &[echo.addr])
    )
}

async fn setup() -> (TestGateway, Echo) {
    let echo = Echo::start("app").await;
    let gw = TestGateway::start(&routes(&echo)).await;
    (gw, echo)
}

const QUIET: Duration = Duration::from_millis(700);

/// The status code of the first answer to `request`, and whether anything
/// reached the backend.
async fn refused(gw: &TestGateway, echo: &Echo, request: &[u8]) -> (Option<u16>, usize) {
    let before = echo.proxied().len();
    let answer = exchange(gw.addr, request, QUIET).await;
    let status = status_lines(&answer)
        .first()
        .and_then(|l| l.split(' ').nth(1).and_then(|c| c.parse().ok()));
    (status, echo.proxied().len() - before)
}

#[tokio::test(flavor = "multi_thread")]
async fn odd_request_targets_are_refused_and_never_forwarded() {
    let (gw, echo) = setup().await;
    let cases: &[&[u8]] = &[
        b"GET /public/a#frag HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"GET /private#/../public HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"GET /public/a\x01b HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"GET /public/a\x7fb HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"GET /public/a\tb HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"GET /public/a\x00b HTTP/1.1\r\nHost: localhost\r\n\r\n",
    ];
    for request in cases {
        let (status, forwarded) = refused(&gw, &echo, request).await;
        let shown = String::from_utf8_lossy(request);
        assert_eq!(status, Some(400), "{shown:?}");
        assert_eq!(forwarded, 0, "{shown:?} reached the backend");
    }
    // The same request without the odd byte is served.
    let (status, forwarded) = refused(
        &gw,
        &echo,
        b"GET /public/ab HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!((status, forwarded), (Some(200), 1));
}

/// pingora percent-encodes a raw space before any hook runs: the policy and
/// the backend both see `%20`, so a space can never split what the gateway
/// judged from what the backend serves.
#[tokio::test(flavor = "multi_thread")]
async fn a_raw_space_is_judged_and_forwarded_as_the_same_escape() {
    let (gw, echo) = setup().await;
    let (status, forwarded) = refused(
        &gw,
        &echo,
        b"GET /private/x /public/y HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    assert_eq!(
        (status, forwarded),
        (Some(401), 0),
        "judged as one /private path"
    );
    let (status, _) = refused(
        &gw,
        &echo,
        b"GET /public/a b HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, Some(200));
    assert_eq!(echo.last().target, "/public/a%20b");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_or_malformed_hosts_are_refused() {
    let (gw, echo) = setup().await;
    let cases: &[&[u8]] = &[
        b"GET /public/x HTTP/1.1\r\n\r\n",
        b"GET /public/x HTTP/1.1\r\nHost: \r\n\r\n",
        b"GET /public/x HTTP/1.1\r\nHost: /etc/passwd\r\n\r\n",
        b"GET /public/x HTTP/1.1\r\nHost: example.com/x\r\n\r\n",
        b"GET /public/x HTTP/1.1\r\nHost: example.com:80:81\r\n\r\n",
        b"GET /public/x HTTP/1.1\r\nHost: user@example.com\r\n\r\n",
        b"GET /public/x HTTP/1.1\r\nHost: example.com:port\r\n\r\n",
        b"GET /public/x HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
    ];
    for request in cases {
        let (status, forwarded) = refused(&gw, &echo, request).await;
        let shown = String::from_utf8_lossy(request);
        assert_eq!(status, Some(400), "{shown:?}");
        assert_eq!(forwarded, 0, "{shown:?} reached the backend");
    }
    for host in ["example.com", "example.com:8080", "[::1]:8080", "127.0.0.1"] {
        let request =
            format!("GET /public/x HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let (status, forwarded) = refused(&gw, &echo, request.as_bytes()).await;
        assert_eq!((status, forwarded), (Some(200), 1), "{host}");
    }
    // An absolute-form target names its host itself.
    let (status, _) = refused(
        &gw,
        &echo,
        b"GET http://example.com/public/x HTTP/1.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, Some(200));
    // HTTP/1.0 had no Host requirement.
    let (status, _) = refused(&gw, &echo, b"GET /public/x HTTP/1.0\r\n\r\n").await;
    assert_eq!(status, Some(200));
}

#[tokio::test(flavor = "multi_thread")]
async fn trace_and_connect_are_refused_with_405() {
    let (gw, echo) = setup().await;
    for request in [
        "TRACE /public/x HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "TRACE /auth/me HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "CONNECT localhost:80 HTTP/1.1\r\nHost: localhost:80\r\n\r\n",
    ] {
        let (status, forwarded) = refused(&gw, &echo, request.as_bytes()).await;
        assert_eq!(status, Some(405), "{request:?}");
        assert_eq!(forwarded, 0, "{request:?} reached the backend");
    }
    let r = raw(
        gw.addr,
        "TRACE /public/x HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    assert_problem(&r, 405, "method_not_allowed");
    assert!(r.header("Allow").is_some_and(|a| !a.contains("TRACE")));
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_cannot_name_away_forwarding_headers() {
    let (gw, echo) = setup().await;
    let r = raw_get(
        gw.addr,
        "/public/x",
        &[(
            "Connection",
            "keep-alive, X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host, Host, X-Request-Id, X-Real-IP",
        )],
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let seen = echo.last();
    for name in [
        "X-Forwarded-For",
        "X-Forwarded-Proto",
        "X-Forwarded-Host",
        "X-Request-Id",
        "X-Real-IP",
    ] {
        assert_eq!(seen.header_all(name).len(), 1, "{name}: {:?}", seen.headers);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pipelined_requests_are_answered_in_order() {
    let (gw, _echo) = setup().await;
    let pipeline = b"GET /public/one HTTP/1.1\r\nHost: localhost\r\n\r\n\
GET /private/two HTTP/1.1\r\nHost: localhost\r\n\r\n\
GET /.well-known/jwks.json HTTP/1.1\r\nHost: localhost\r\n\r\n\
POST /auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}\
GET /public/five HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let answers = exchange(gw.addr, pipeline, Duration::from_secs(3)).await;
    let codes: Vec<String> = status_lines(&answers)
        .iter()
        .map(|l| l.split(' ').nth(1).unwrap_or("").to_string())
        .collect();
    // Either every request is answered in order, or the gateway stopped
    // early and said so on its last answer.
    let expected = ["200", "401", "200", "422", "200"];
    if codes.len() < expected.len() {
        let last = answers.rsplit("HTTP/1.1 ").next().unwrap_or("");
        assert!(
            last.to_ascii_lowercase().contains("connection: close"),
            "stopped after {codes:?} without Connection: close:\n{answers}"
        );
    }
    assert!(!codes.is_empty(), "no answer at all");
    assert_eq!(codes[..], expected[..codes.len()], "{answers}");
    assert_eq!(codes.len(), expected.len(), "{answers}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_get_body_is_framed_by_its_own_headers() {
    let (gw, echo) = setup().await;
    // The body of the first GET looks like a request; it must stay a body.
    let smuggled = b"GET /private/secret HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut request = format!(
        "GET /public/a HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
        smuggled.len()
    )
    .into_bytes();
    request.extend_from_slice(smuggled);
    request.extend_from_slice(
        b"GET /public/b HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    let answers = exchange(gw.addr, &request, Duration::from_secs(3)).await;
    let lines = status_lines(&answers);
    assert!(
        lines.iter().all(|l| l.contains(" 200 ")),
        "an answer other than 200 means the body was read as a request: {answers}"
    );
    let paths: Vec<String> = echo.proxied().iter().map(|s| s.target.clone()).collect();
    assert!(
        !paths.iter().any(|p| p.contains("secret")),
        "the body was forwarded as a request: {paths:?}"
    );
    assert!(paths.iter().any(|p| p == "/public/a"), "{paths:?}");

    // A HEAD with a body, and a refused GET with a body (not read).
    let mut request =
        b"HEAD /public/h HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello".to_vec();
    request.extend_from_slice(
        b"GET /private/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nGET /",
    );
    request.extend_from_slice(
        b"GET /public/after HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    let answers = exchange(gw.addr, &request, Duration::from_secs(3)).await;
    let lines = status_lines(&answers);
    assert!(
        lines.first().is_some_and(|l| l.contains(" 200 ")),
        "{answers}"
    );
    assert!(
        lines.get(1).is_some_and(|l| l.contains(" 401 ")),
        "{answers}"
    );
    if let Some(third) = lines.get(2) {
        assert!(third.contains(" 200 "), "{answers}");
    }
}
