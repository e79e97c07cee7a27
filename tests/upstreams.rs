//! Upstream pools and the admin listener from the outside (DESIGN.md §3
//! `[[upstreams]]`, §7, §8 "Upstream down", §10 "Operations"): round robin,
//! failover, health, timeouts, body limits, metrics and readiness.

mod common;

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const ROUTE: &str = r#"
[[routes]]
name = "app"
path = "/**"
upstream = "app"
auth = "public"
"#;

async fn gateway_over(backends: &[SocketAddr]) -> TestGateway {
    TestGateway::start(&format!("{}{ROUTE}", upstream("app", backends))).await
}

/// A loopback address where nothing listens.
fn dead_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// Fails the test instead of hanging when `fut` takes longer than `secs`.
async fn within<T>(secs: u64, what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {secs} s"))
}

/// Polls `check` every 100 ms for up to `secs`; true once it holds.
async fn eventually<F, Fut>(secs: u64, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn healthy_series(backend: SocketAddr) -> String {
    format!("portcullis_upstream_healthy{{backend=\"{backend}\",upstream=\"app\"}}")
}

async fn admin_get(gw: &TestGateway, path: &str) -> RawResponse {
    raw_get(gw.admin, path, &[]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn round_robin_spreads_requests() {
    let (a, b) = (Echo::start("a").await, Echo::start("b").await);
    let gw = gateway_over(&[a.addr, b.addr]).await;
    let mut served = Vec::new();
    for i in 0..10 {
        let r = raw_get(gw.addr, &format!("/rr/{i}"), &[]).await;
        assert_eq!(r.status, 200);
        served.push(r.json()["upstream"].as_str().unwrap().to_string());
    }
    let (na, nb) = (a.proxied().len(), b.proxied().len());
    assert_eq!(na + nb, 10);
    assert!(na >= 3 && nb >= 3, "a={na} b={nb} order={served:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_backend_is_skipped_and_reported_unhealthy() {
    let live = Echo::start("live").await;
    let dead = dead_addr();
    let gw = gateway_over(&[live.addr, dead]).await;
    for i in 0..6 {
        let r = within(3, "failover", raw_get(gw.addr, &format!("/f/{i}"), &[])).await;
        assert_eq!(
            r.status,
            200,
            "request {i}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.json()["upstream"], "live");
    }
    assert_eq!(live.proxied().len(), 6);

    let reported = eventually(3, || async {
        let text = gw.metrics().await;
        metric(&text, &healthy_series(dead)) == Some(0.0)
    })
    .await;
    let text = gw.metrics().await;
    assert!(reported, "dead backend not reported unhealthy:\n{text}");
    assert_eq!(
        metric(&text, &healthy_series(live.addr)),
        Some(1.0),
        "{text}"
    );

    let ready = admin_get(&gw, "/readyz").await;
    assert_eq!(ready.status, 200);
    let body = ready.json();
    assert_eq!(body["upstreams"]["app"]["healthy"], 1, "{body}");
    assert_eq!(body["upstreams"]["app"]["total"], 2, "{body}");

    // Once marked unhealthy, the dead backend is not even tried.
    for i in 0..4 {
        let r = within(3, "skip", raw_get(gw.addr, &format!("/g/{i}"), &[])).await;
        assert_eq!(r.status, 200);
    }
}

fn assert_upstream_down(r: &RawResponse) {
    match r.status {
        502 => assert_problem(r, 502, "bad_gateway"),
        503 => assert_problem(r, 503, "upstream_unavailable"),
        other => panic!(
            "expected 502/503, got {other}: {}",
            String::from_utf8_lossy(&r.body)
        ),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn all_backends_down_fails_fast_and_recovers_without_restart() {
    let addr = dead_addr();
    let gw = gateway_over(&[addr]).await;
    let r = within(3, "dead upstream", raw_get(gw.addr, "/x", &[])).await;
    assert_upstream_down(&r);
    assert!(r.header("x-request-id").is_some());

    // After the health check has run, still a quick problem, never a hang.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = within(3, "unhealthy upstream", raw_get(gw.addr, "/y", &[])).await;
    assert_upstream_down(&r);
    let text = gw.metrics().await;
    assert_eq!(metric(&text, &healthy_series(addr)), Some(0.0), "{text}");
    assert_eq!(
        admin_get(&gw, "/readyz").await.json()["upstreams"]["app"]["healthy"],
        0
    );

    // The backend comes back on the same port: served again, no restart.
    let late = Echo::start_at(addr, "late").await;
    let recovered = eventually(5, || async {
        let r = within(3, "recovering", raw_get(gw.addr, "/z", &[])).await;
        r.status == 200 && r.json()["upstream"] == "late"
    })
    .await;
    assert!(recovered, "the gateway did not use the revived backend");
    assert!(!late.proxied().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_upstream_times_out_with_504() {
    let echo = Echo::start("slow").await;
    let body = format!(
        "\n[[upstreams]]\nname = \"app\"\nbackends = [\"{}\"]\nhealth_check = {{ path = \"/healthz\", interval = \"1s\" }}\nconnect_timeout = \"500ms\"\nread_timeout = \"300ms\"\n{ROUTE}",
        echo.addr
    );
    let gw = TestGateway::start(&body).await;
    let started = Instant::now();
    let r = within(5, "slow upstream", raw_get(gw.addr, "/slow", &[])).await;
    assert_problem(&r, 504, "upstream_timeout");
    assert!(started.elapsed() < Duration::from_millis(3000));
    // A fast request on the same upstream is unaffected.
    assert_eq!(raw_get(gw.addr, "/fast", &[]).await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn per_route_body_limit_is_inclusive() {
    let echo = Echo::start("app").await;
    let body = format!(
        "{}\n[[routes]]\nname = \"small\"\npath = \"/small/**\"\nupstream = \"app\"\nauth = \"public\"\nmax_body_bytes = 10\n{ROUTE}",
        upstream("app", &[echo.addr])
    );
    let gw = TestGateway::start(&body).await;
    let post = |len: usize| {
        format!(
            "POST /small/x HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: {len}\r\n\r\n{}",
            "a".repeat(len)
        )
    };
    let r = raw(gw.addr, &post(11)).await;
    assert_problem(&r, 413, "payload_too_large");
    assert!(echo.proxied().is_empty(), "the upstream saw nothing");

    let r = raw(gw.addr, &post(10)).await;
    assert_eq!(r.status, 200);
    assert_eq!(echo.last().body_len, 10);

    // Chunked bodies are counted as they stream.
    let chunked = "POST /small/y HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n6\r\naaaaaa\r\n6\r\naaaaaa\r\n0\r\n\r\n";
    let r = within(5, "chunked", raw(gw.addr, chunked)).await;
    assert_problem(&r, 413, "payload_too_large");

    // Other routes have no limit.
    let r = raw(gw.addr, &post(100).replace("/small/x", "/other")).await;
    assert_eq!(r.status, 200);
    assert_eq!(echo.last().body_len, 100);
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_endpoints() {
    let echo = Echo::start("app").await;
    let gw = gateway_over(&[echo.addr]).await;

    let h = admin_get(&gw, "/healthz").await;
    assert_eq!(h.status, 200);
    assert_eq!(h.json(), serde_json::json!({"status": "ok"}));

    let ready = admin_get(&gw, "/readyz").await;
    assert_eq!(ready.status, 200);
    let body: Value = ready.json();
    assert!(
        matches!(body["status"].as_str(), Some("ok" | "degraded")),
        "{body}"
    );
    assert!(
        body.get("database").is_some() && body.get("redis").is_some(),
        "{body}"
    );

    assert_eq!(raw_get(gw.addr, "/hello", &[]).await.status, 200);
    assert_problem(&raw_get(gw.addr, "/x%2fy", &[]).await, 400, "invalid_path");
    let text = gw.metrics().await;
    let allowed = metric(
        &text,
        r#"portcullis_requests_total{decision="allow",route="app",status="200"}"#,
    );
    assert_eq!(allowed, Some(1.0), "{text}");
    assert!(
        text.contains(r#"portcullis_request_duration_seconds_count{route="app"} 1"#),
        "{text}"
    );
    assert!(text.contains("portcullis_request_duration_seconds_bucket"));
    assert!(
        text.contains(r#"status="400""#),
        "refusals are counted too:\n{text}"
    );

    let missing = admin_get(&gw, "/nope").await;
    assert_eq!(missing.status, 404);
    assert!(admin_get(&gw, "/metricsx").await.status == 404);
}

/// A backend that still speaks HTTP/1.0: it answers `response` to every
/// request and closes the connection.
async fn http10_backend(response: &'static [u8]) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(response).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_answers_in_its_own_http_version() {
    for response in [
        &b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 18\r\n\r\nfrom an old server"[..],
        // Framed only by the end of the connection.
        &b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nfrom an old server"[..],
    ] {
        let gw = gateway_over(&[http10_backend(response).await]).await;
        let answer = exchange(
            gw.addr,
            b"GET /old HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            Duration::from_secs(3),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains("from an old server"), "{answer}");
    }
}
