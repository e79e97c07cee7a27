//! API-key hot path (DESIGN.md §9 "API key cache hit"; issue 4's 100 000
//! cached keys): verifying a key whose entry is cached, among `KEYS` warm
//! keys (memory per cached key printed), and refusing a forged key (wrong
//! tag: no lookup). Compare with `hot_path`'s cached JWT verification. Keys
//! live in a throwaway SQLite database.
//! Run: `cargo bench --bench api_keys`. Not run in CI (only compiled).

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use portcullis::api::runtime::ApiRuntime;
use portcullis::authn::api_keys::{ApiKeyVerifier, KeyCodec, KeyContext, KeyCounters};
use portcullis::crypto::secret::ServerSecret;
use portcullis::store::api_keys::{self, NewApiKey};
use portcullis::store::users::{self, NewUser};
use portcullis::store::LazyDb;
use portcullis::telemetry::Metrics;
use portcullis::Config;

#[path = "support/rss.rs"]
mod support;

const KEYS: usize = 100_000;

fn api_key_verification(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_toml(
        "[database]\nurl = \"sqlite://bench.db\"\n[[upstreams]]\nname = \"app\"\nbackends = [\"127.0.0.1:3000\"]\n",
        dir.path(),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let api_runtime = ApiRuntime::start(1).unwrap();
    let db = Arc::new(LazyDb::new(
        config.database.clone(),
        config.base_dir.clone(),
    ));
    let codec = Arc::new(KeyCodec::new(&ServerSecret::from_bytes(vec![1; 32])));
    let metrics = Metrics::new().unwrap();
    let counter = |r: &str| metrics.cache_requests.with_label_values(&["api_key", r]);
    let verifier = ApiKeyVerifier::new(
        codec.clone(),
        db.clone(),
        api_runtime.clone(),
        KeyContext {
            issuer: "portcullis".into(),
            rbac: config.rbac.clone(),
            client_id_header: None,
        },
        KeyCounters {
            hit: counter("hit"),
            miss: counter("miss"),
            rejected: counter("rejected"),
        },
    );
    // Create the keys on the API runtime, which owns the pool.
    let keys: Vec<String> = rt.block_on(async {
        let db = db.clone();
        let codec = codec.clone();
        api_runtime
            .run(async move {
                let db = db.get().await.unwrap();
                db.migrate().await.unwrap();
                let now = chrono::Utc::now();
                let user = users::create(
                    db,
                    NewUser {
                        email: "bench@example.com",
                        username: None,
                        password_hash: "x",
                        superuser: false,
                        email_verified: true,
                    },
                    now,
                )
                .await
                .unwrap();
                let mut keys = Vec::with_capacity(KEYS);
                for _ in 0..KEYS {
                    let k = codec.generate();
                    api_keys::create(
                        db,
                        NewApiKey {
                            user_id: user.id,
                            hash: &k.hash,
                            prefix: &k.prefix,
                            name: "bench",
                            scopes: &["orders:read".to_string()],
                            org_id: None,
                            client_id: None,
                            expires_at: None,
                        },
                        now,
                    )
                    .await
                    .unwrap();
                    keys.push(k.key);
                }
                keys
            })
            .await
            .unwrap()
    });
    let before = support::rss();
    rt.block_on(async {
        for k in &keys {
            verifier.verify(k, &http::HeaderMap::new()).await.unwrap();
        }
    });
    let grown = support::rss().saturating_sub(before);
    println!(
        "API-key cache: {KEYS} keys, {:.1} MiB, {} bytes per cached key",
        grown as f64 / 1048576.0,
        grown / KEYS
    );

    let mut group = c.benchmark_group("api_key");
    let mut i = 0usize;
    group.bench_function(format!("cache_hit_among_{KEYS}"), |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            rt.block_on(verifier.verify(black_box(&keys[i]), &http::HeaderMap::new()))
                .unwrap()
        })
    });
    let forged = KeyCodec::new(&ServerSecret::from_bytes(vec![2; 32]))
        .generate()
        .key;
    group.bench_function("forged_refused_without_lookup", |b| {
        b.iter(|| {
            rt.block_on(verifier.verify(black_box(&forged), &http::HeaderMap::new()))
                .is_err()
        })
    });
    group.finish();
}

criterion_group!(benches, api_key_verification);
criterion_main!(benches);
