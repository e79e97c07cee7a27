//! Hot-path micro-benchmarks (DESIGN.md §9): route matching at 10 / 1 000 /
//! 10 000 rules, JWT verification per algorithm with and without the
//! verified-token cache, the authz decision, and the combined per-request
//! work for a cached JWT (verify + revocation + route match + authz).
//! Run: `cargo bench --bench hot_path`. Not run in CI (only compiled).

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use http::Method;
use portcullis::authn::jwt::TokenVerifier;
use portcullis::authn::keys::{generate, KeyAlgorithm, SigningKey};
use portcullis::authz::authorize;
use portcullis::policy::{normalize_path, split_path, RouteTable};
use portcullis::revocation::RevocationSet;
use portcullis::Config;
use serde_json::json;

/// A config with `n` routes: `/svc{i}/items/{id}` plus a catch-all.
fn config_with_routes(n: usize, alg: &str, key_path: &std::path::Path) -> Config {
    let mut text = format!(
        "[tokens]\nalgorithm = \"{alg}\"\nsigning_key = \"file:{}\"\n[[upstreams]]\nname = \"app\"\nbackends = [\"127.0.0.1:3000\"]\n",
        key_path.display()
    );
    for i in 0..n {
        text.push_str(&format!(
            "[[routes]]\nname = \"r{i}\"\npath = \"/svc{i}/orgs/{{org_id}}/**\"\nupstream = \"app\"\nauth = \"jwt\"\norg_param = \"org_id\"\nroles = [\"member\"]\n"
        ));
    }
    text.push_str(
        "[[routes]]\nname = \"fallback\"\npath = \"/**\"\nupstream = \"app\"\nauth = \"public\"\n",
    );
    Config::from_toml(&text, std::path::Path::new(".")).expect("bench config is valid")
}

fn key_file(dir: &std::path::Path, alg: KeyAlgorithm) -> std::path::PathBuf {
    let path = dir.join(format!("{alg:?}.key"));
    std::fs::write(&path, generate(alg).unwrap()).unwrap();
    path
}

fn route_matching(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), KeyAlgorithm::EdDSA);
    let mut group = c.benchmark_group("route_match");
    for n in [10usize, 1_000, 10_000] {
        let config = config_with_routes(n, "EdDSA", &key);
        let routes: Arc<RouteTable> = config.routes.clone();
        // A path matching the last numbered rule: worst case for a linear scan.
        let path = format!(
            "/svc{}/orgs/0190c9a4-1111-7000-8000-000000000001/items/42?x=1",
            n - 1
        );
        group.bench_with_input(BenchmarkId::new("normalize+match", n), &path, |b, path| {
            b.iter(|| {
                let (p, _) = path.split_once('?').unwrap();
                let normalized = normalize_path(black_box(p.as_bytes()), false).unwrap();
                let segments = split_path(&normalized);
                black_box(routes.find(&segments, "api.example.com", &Method::GET))
            })
        });
    }
    group.finish();
}

fn claims() -> serde_json::Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    json!({
        "iss": "portcullis", "aud": "portcullis",
        "sub": "0190c9a4-0000-7000-8000-0000000000aa",
        "iat": now, "exp": now + 900, // tokens.access_ttl's default
        "jti": "0190c9a4-0000-7000-8000-0000000000bb",
        "sid": "0190c9a4-0000-7000-8000-0000000000cc",
        "roles": ["user"], "scope": "orders:read",
        "orgs": {"0190c9a4-1111-7000-8000-000000000001": "admin"},
    })
}

fn jwt_verification(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("jwt_verify");
    for alg in [
        KeyAlgorithm::EdDSA,
        KeyAlgorithm::ES256,
        KeyAlgorithm::RS256,
        KeyAlgorithm::HS256,
    ] {
        let path = key_file(dir.path(), alg);
        let config = config_with_routes(1, &format!("{alg:?}"), &path);
        let key = Arc::new(SigningKey::load(alg, &config.tokens.signing_key).unwrap());
        let token = key.sign("at+jwt", &claims()).unwrap();
        let verifier = TokenVerifier::new(&config.tokens, key.clone(), Vec::new());
        group.bench_function(BenchmarkId::new("cached", format!("{alg:?}")), |b| {
            b.iter(|| rt.block_on(verifier.verify(black_box(&token))).unwrap())
        });
        group.bench_function(BenchmarkId::new("uncached", format!("{alg:?}")), |b| {
            b.iter(|| {
                rt.block_on(verifier.verify_uncached(black_box(&token)))
                    .unwrap()
            })
        });
    }
    group.finish();
}

fn full_check(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = key_file(dir.path(), KeyAlgorithm::EdDSA);
    let config = config_with_routes(1_000, "EdDSA", &path);
    let key = Arc::new(SigningKey::load(KeyAlgorithm::EdDSA, &config.tokens.signing_key).unwrap());
    let token = key.sign("at+jwt", &claims()).unwrap();
    let verifier = TokenVerifier::new(&config.tokens, key, Vec::new());
    let revocations = RevocationSet::new();
    let routes = config.routes.clone();
    let rbac = config.rbac.clone();
    let request_path = "/svc500/orgs/0190c9a4-1111-7000-8000-000000000001/items/42";
    rt.block_on(verifier.verify(&token)).unwrap();

    c.bench_function("authz_decision", |b| {
        let (user, _) = rt.block_on(verifier.verify(&token)).unwrap();
        let rule = &routes.rules()[500];
        b.iter(|| {
            authorize(
                &rule.requirements,
                black_box(&user),
                Some("0190c9a4-1111-7000-8000-000000000001"),
                &rbac,
            )
            .unwrap()
        })
    });
    c.bench_function("block_on_ready_future_baseline", |b| {
        b.iter(|| rt.block_on(async { black_box(1) }))
    });
    c.bench_function("cached_jwt+revocation+route_match+authz", |b| {
        b.iter(|| {
            let (user, _) = rt.block_on(verifier.verify(black_box(&token))).unwrap();
            revocations.check(&user).unwrap();
            let normalized = normalize_path(request_path.as_bytes(), false).unwrap();
            let segments = split_path(&normalized);
            let index = routes.find(&segments, "", &Method::GET).unwrap();
            let rule = &routes.rules()[index];
            let org = rule.pattern.capture("org_id", &segments);
            black_box(authorize(&rule.requirements, &user, org, &rbac).unwrap())
        })
    });
}

criterion_group!(benches, route_matching, jwt_verification, full_check);
criterion_main!(benches);
