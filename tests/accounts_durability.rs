//! Writes are on disk before their response (SQLite's group commit,
//! `database.sync_interval`), seen from the outside through
//! `portcullis_database_syncs_total`: every writing request is answered
//! after a sync of the log, a lone writer is never held back, concurrent
//! writers share syncs, and reads sync nothing.

mod common;

use std::time::{Duration, Instant};

use common::login::*;
use common::*;

const SYNCS: &str = "portcullis_database_syncs_total";
const INTERVAL: Duration = Duration::from_millis(1000);

async fn syncs(gw: &TestGateway) -> u64 {
    let text = gw.metrics().await;
    metric(&text, SYNCS).unwrap_or_else(|| panic!("no {SYNCS} in:\n{text}")) as u64
}

/// The sync count once background writes (the verification mail a
/// registration sends, synced on its own) are done: two equal reads 300 ms
/// apart, within ten seconds.
async fn settled_syncs(gw: &TestGateway) -> u64 {
    let mut last = syncs(gw).await;
    for _ in 0..33 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = syncs(gw).await;
        if now == last {
            return now;
        }
        last = now;
    }
    panic!("the sync count never settled: {last}");
}

async fn sqlite_gateway() -> TestGateway {
    let body = format!(
        "\n[database]\nurl = \"sqlite://data/portcullis.db\"\nsync_interval = \"{}ms\"\n{}",
        INTERVAL.as_millis(),
        accounts(&[THROTTLE_OFF, LOCKOUT_FAR])
    );
    TestGateway::start(&body).await
}

#[tokio::test(flavor = "multi_thread")]
async fn every_write_is_synced_before_its_answer_and_concurrent_ones_share_syncs() {
    let gw = sqlite_gateway().await;
    let before_register = syncs(&gw).await;
    register(&gw, "first@example.com", None, PASSWORD).await;
    assert!(
        syncs(&gw).await > before_register,
        "registration answered without a sync"
    );
    let after_register = settled_syncs(&gw).await;

    // One writer after the other: each login is synced on its own, at once
    // (held back, the five would take at least four intervals).
    let started = Instant::now();
    for n in 1..=5 {
        let r = attempt(&gw, "first@example.com", PASSWORD, "").await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(syncs(&gw).await, after_register + n, "login {n}");
    }
    assert!(
        started.elapsed() < INTERVAL * 7 / 2,
        "a lone writer was held back: 5 logins took {:?}",
        started.elapsed()
    );

    // Reads write nothing and sync nothing.
    let pair = attempt(&gw, "first@example.com", PASSWORD, "").await.json();
    let before_reads = syncs(&gw).await;
    for _ in 0..3 {
        let me = get_bearer(&gw, "/auth/me", &pair["access_token"]).await;
        assert_eq!(me.status, 200, "{}", me.text);
    }
    assert_eq!(syncs(&gw).await, before_reads, "GET /auth/me synced");

    // Many writers at once: all answered, sharing syncs (one each without
    // the hold-back; with it, what is left of the burst, then one per
    // interval while logins go on).
    let before = syncs(&gw).await;
    let logins = (0..12).map(|_| {
        let url = gw.url("/auth/login");
        tokio::spawn(async move {
            let body = serde_json::json!({"email": "first@example.com", "password": PASSWORD});
            post_json(&url, &body).await.status
        })
    });
    for login in logins.collect::<Vec<_>>() {
        assert_eq!(login.await.unwrap(), 200);
    }
    let shared = syncs(&gw).await - before;
    assert!(
        (1..12).contains(&shared),
        "12 concurrent logins took {shared} syncs"
    );
}

/// One round of requests an anonymous caller can send cheaply, each
/// refused before anything is written.
async fn junk_round(client: &reqwest::Client, base: &str) {
    use reqwest::Method;
    let junk = [
        (Method::POST, "auth/logout", ""),
        (Method::DELETE, "auth/login", ""),
        (Method::POST, "auth/register", "{}"),
        (Method::POST, "auth/login", "{not json"),
        (Method::POST, "auth/nowhere", "{}"),
        (Method::PATCH, "auth/me", "{\"username\": \"x\"}"),
    ];
    for (method, path, body) in junk {
        let r = client
            .request(method.clone(), format!("{base}{path}"))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .expect("junk sent");
        assert!(
            r.status().is_client_error(),
            "{method} {path}: {}",
            r.status()
        );
    }
}

/// Requests that write nothing are answered without a sync and never count
/// as writers: a legitimate writer among them is still a lone writer,
/// synced at once and on its own.
#[tokio::test(flavor = "multi_thread")]
async fn requests_that_write_nothing_cost_no_sync_and_hold_no_writer_back() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let gw = sqlite_gateway().await;
    register(&gw, "lone@example.com", None, PASSWORD).await;
    let base = gw.url("/");
    let before = settled_syncs(&gw).await;
    for _ in 0..5 {
        junk_round(&client(), &base).await;
    }
    assert_eq!(
        syncs(&gw).await,
        before,
        "requests that wrote nothing were synced"
    );

    // Junk on eight connections while one client logs in, one login after
    // the other: each login is one sync of its own, none shared or added.
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let loops: Vec<_> = (0..8)
        .map(|_| {
            let (stop, base, client) = (stop.clone(), base.clone(), client());
            tokio::spawn(async move {
                let mut rounds = 0u32;
                while !stop.load(Ordering::Relaxed) && rounds < 10_000 {
                    junk_round(&client, &base).await;
                    rounds += 1;
                }
                rounds
            })
        })
        .collect();
    let before = syncs(&gw).await;
    for n in 1..=5 {
        let r = attempt(&gw, "lone@example.com", PASSWORD, "").await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(syncs(&gw).await, before + n, "login {n} among junk");
    }
    stop.store(true, Ordering::Relaxed);
    for l in loops {
        assert!(l.await.unwrap() > 0, "the junk loop never ran");
    }
}
