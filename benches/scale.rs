//! Scale benches (issue 4): the revocation set with 1 million entries
//! (lookup cost, memory per entry) and the rate limiter with 1 million
//! distinct keys (memory, and what periodic cleanup gives back). Memory is
//! the process's resident-set growth, printed once per run.
//! Run: `cargo bench --bench scale`. Not run in CI (only compiled).

use std::collections::HashMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use portcullis::authn::principal::{SessionId, UserId, UserIdentity};
use portcullis::config::Rate;
use portcullis::ratelimit::{RateKey, RateKeyKind, RateLimitSpec, RouteLimiter};
use portcullis::revocation::RevocationSet;
use uuid::Uuid;

#[path = "support/rss.rs"]
mod support;
use support::rss;

const ENTRIES: usize = 1_000_000;

fn user(session: Uuid, jti: &str) -> UserIdentity {
    UserIdentity {
        user_id: UserId(Uuid::now_v7().to_string()),
        issuer: "portcullis".into(),
        email: None,
        roles: vec!["user".into()],
        superuser: false,
        orgs: HashMap::new(),
        scopes: vec![],
        session: Some(SessionId(session)),
        jti: jti.into(),
        issued_at: 0,
        expires_at: i64::MAX,
        amr: vec![],
    }
}

fn revocations(c: &mut Criterion) {
    let set = RevocationSet::new();
    let before = rss();
    let mut sample = Vec::new();
    for i in 0..ENTRIES {
        let session = Uuid::now_v7();
        let jti = Uuid::new_v4().to_string();
        set.revoke_session(SessionId(session), i64::MAX);
        set.revoke_token(&jti, i64::MAX);
        if i % 100_000 == 0 {
            sample.push((session, jti));
        }
    }
    let grown = rss().saturating_sub(before);
    println!(
        "revocation set: {ENTRIES} sessions + {ENTRIES} token ids, {:.1} MiB, {} bytes per entry",
        grown as f64 / 1048576.0,
        grown / (2 * ENTRIES)
    );
    let live = user(Uuid::now_v7(), "not-revoked");
    let revoked = user(sample[5].0, &sample[5].1);
    let mut group = c.benchmark_group("revocation_1m");
    group.bench_function("check_not_revoked", |b| {
        b.iter(|| set.check(black_box(&live)).is_ok())
    });
    group.bench_function("check_revoked", |b| {
        b.iter(|| set.check(black_box(&revoked)).is_err())
    });
    group.finish();
}

fn limiter_keys(c: &mut Criterion) {
    let limiter = RouteLimiter::new(&RateLimitSpec {
        key: RateKeyKind::Ip,
        rate: Rate {
            count: 1000,
            per: Duration::from_secs(1),
        },
        burst: 10,
    });
    let ip = |i: usize| RateKey::Ip(IpAddr::V4(Ipv4Addr::from(0x0a00_0000u32 + i as u32)));
    let before = rss();
    for i in 0..ENTRIES {
        let _ = limiter.check(&ip(i));
    }
    let grown = rss().saturating_sub(before);
    let tracked = limiter.tracked_keys();
    // Every key is back to full after 10 ms at 1000/s; cleanup forgets them.
    std::thread::sleep(Duration::from_millis(50));
    limiter.retain_recent();
    println!(
        "rate limiter: {tracked} keys, {:.1} MiB ({} bytes per key); after cleanup {} keys, RSS {:.1} MiB above start",
        grown as f64 / 1048576.0,
        grown / ENTRIES,
        limiter.tracked_keys(),
        rss().saturating_sub(before) as f64 / 1048576.0
    );
    let mut i = 0usize;
    c.bench_function("ratelimit_check_among_1m_keys", |b| {
        b.iter(|| {
            i = (i + 7919) % ENTRIES;
            black_box(limiter.check(&ip(i))).is_ok()
        })
    });
}

criterion_group!(benches, revocations, limiter_keys);
criterion_main!(benches);
