//! JWT authentication from the outside (DESIGN.md §4, §5, §10 Tokens): what
//! a valid token forwards, every way a token is refused (always 401
//! `invalid_token`, never 500, never forwarded), the credential chain, the
//! verified-token cache with revocation re-checked on hits, trusted external
//! issuers and the other signing algorithms.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey};
use portcullis::authn::keys::{generate, KeyAlgorithm, SigningKey};
use portcullis::authn::principal::SessionId;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const IDP: &str = "https://idp.test";
const AUTHZ: &str = "Authorization";

/// One route per `auth` mode, all to the echo upstream.
fn routes(echo: &Echo) -> String {
    let mut out = upstream("app", &[echo.addr]);
    for (name, auth) in [
        ("jwt", "jwt"),
        ("any", "authenticated"),
        ("keys", "api_key"),
        ("public", "public"),
    ] {
        out.push_str(&format!(
            "\n[[routes]]\nname = \"{name}\"\npath = \"/{name}/**\"\nupstream = \"app\"\nauth = \"{auth}\"\n"
        ));
    }
    out
}

async fn setup() -> (TestGateway, Echo) {
    let echo = Echo::start("app").await;
    let gw = TestGateway::start(&routes(&echo)).await;
    (gw, echo)
}

async fn get(gw: &TestGateway, path: &str, token: &str) -> RawResponse {
    let auth = format!("Bearer {token}");
    raw_get(gw.addr, path, &[(AUTHZ, &auth)]).await
}

fn assert_ok(r: &RawResponse) {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

/// A 401 problem with `code` and a `WWW-Authenticate: Bearer error=…`.
fn assert_refused(r: &RawResponse, code: &str, case: &str) {
    let (body, got) = (String::from_utf8_lossy(&r.body), r.json()["code"].clone());
    assert_eq!(
        (r.status, got.as_str()),
        (401, Some(code)),
        "{case}: {body}"
    );
    assert_problem(r, 401, code);
    let www = r.header("www-authenticate").unwrap_or_default();
    let bearer = www.starts_with(r#"Bearer error="invalid_token""#);
    assert!(bearer, "{case}: WWW-Authenticate {www:?}");
}

/// `token` on `path` is a 401 `invalid_token`.
async fn refused(gw: &TestGateway, path: &str, token: &str, case: &str) {
    assert_refused(&get(gw, path, token).await, "invalid_token", case);
}

fn b64json(v: &Value) -> String {
    B64.encode(serde_json::to_vec(v).unwrap())
}

/// A token built by hand: any header, any claims, signed with `key` or
/// with an empty signature.
fn forge(header: &Value, claims: &Value, key: Option<(&EncodingKey, Algorithm)>) -> String {
    let msg = format!("{}.{}", b64json(header), b64json(claims));
    let sig = key
        .map(|(k, alg)| jsonwebtoken::crypto::sign(msg.as_bytes(), k, alg).unwrap())
        .unwrap_or_default();
    format!("{msg}.{sig}")
}

/// The gateway's own private key, read from the file it created at start.
fn own_key(gw: &TestGateway) -> EncodingKey {
    let pem = std::fs::read(gw.dir.path().join("data/signing-key.pem")).unwrap();
    EncodingKey::from_ed_pem(&pem).unwrap()
}

fn own_header(gw: &TestGateway) -> Value {
    json!({"alg": "EdDSA", "typ": "at+jwt", "kid": gw.state.signing_key.kid})
}

fn with(mut v: Value, edit: impl FnOnce(&mut Value)) -> Value {
    edit(&mut v);
    v
}

/// A token under `header`, signed by a throwaway Ed25519 key.
fn signed_by_stranger(header: &Value, claims: &Value) -> String {
    let pem = generate(KeyAlgorithm::EdDSA).unwrap();
    let key = EncodingKey::from_ed_pem(&pem).unwrap();
    forge(header, claims, Some((&key, Algorithm::EdDSA)))
}

fn new_key(alg: KeyAlgorithm) -> SigningKey {
    SigningKey::from_material(alg, &generate(alg).unwrap()).unwrap()
}

/// Sum of `portcullis_cache_requests_total{cache="jwt",result=…}`.
fn cache_count(metrics: &str, result: &str) -> u64 {
    let label = format!("result=\"{result}\"");
    metrics
        .lines()
        .filter(|l| l.starts_with("portcullis_cache_requests_total{"))
        .filter(|l| l.contains("cache=\"jwt\"") && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test(flavor = "multi_thread")]
async fn valid_token_forwards_the_identity() {
    let (gw, echo) = setup().await;
    let claims = gw.claims();
    let token = gw.sign(&claims);
    let auth = format!("Bearer {token}");
    // A client-sent identity header is replaced, never passed through.
    let headers = [
        ("Authorization", auth.as_str()),
        ("X-Auth-User-Id", "someone-else"),
    ];
    for path in ["/jwt/orders", "/any/orders"] {
        assert_ok(&raw_get(gw.addr, path, &headers).await);
        let seen = echo.last();
        assert_eq!(seen.target, path);
        for (name, value) in [
            ("x-auth-user-id", &claims["sub"]),
            ("x-auth-method", &json!("jwt")),
            ("x-auth-session-id", &claims["sid"]),
            ("x-auth-email", &json!("alice@example.com")),
            ("x-auth-roles", &json!("user")),
        ] {
            assert_eq!(
                seen.header_all(name),
                vec![value.as_str().unwrap()],
                "{path} {name}"
            );
        }
    }
    // Expired, but within the 30 s leeway.
    assert_ok(&get(&gw, "/jwt/x", &gw.token(|c| c["exp"] = json!(now() - 5))).await);
    // A hand-built token with the standard header is accepted: the forged
    // variants in the other tests fail only for what they change.
    let own = own_key(&gw);
    let t = forge(
        &own_header(&gw),
        &gw.claims(),
        Some((&own, Algorithm::EdDSA)),
    );
    assert_ok(&get(&gw, "/jwt/x", &t).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn public_routes_ignore_credentials_and_forward_no_identity() {
    let (gw, echo) = setup().await;
    let headers = [(AUTHZ, "Bearer not.a.token"), ("X-Auth-User-Id", "admin")];
    assert_ok(&raw_get(gw.addr, "/public/x", &headers).await);
    let seen = echo.last();
    assert!(seen.header("x-auth-user-id").is_none());
    assert!(seen.header("x-auth-method").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_signatures_and_headers_are_refused() {
    let (gw, echo) = setup().await;
    let kid = gw.state.signing_key.kid.clone();
    let claims = gw.claims();
    let good = gw.sign(&claims);
    let parts: Vec<&str> = good.split('.').collect();
    let tampered_claims = with(claims.clone(), |c| c["sub"] = json!(uuid::Uuid::new_v4()));
    let tampered = format!("{}.{}.{}", parts[0], b64json(&tampered_claims), parts[2]);

    let same_kid_other_key = signed_by_stranger(&own_header(&gw), &claims);

    let none_header = json!({"alg": "none", "typ": "at+jwt", "kid": kid});
    let none = forge(&none_header, &claims, None);
    // Algorithm confusion: HMAC keyed with the (public) verification key.
    let hs_header = json!({"alg": "HS256", "typ": "at+jwt", "kid": kid});
    let hs = |secret: &[u8]| {
        let key = EncodingKey::from_secret(secret);
        forge(&hs_header, &claims, Some((&key, Algorithm::HS256)))
    };
    let jwk = serde_json::to_value(&gw.state.signing_key.jwks().keys[0]).unwrap();
    let hs_public = hs(&B64.decode(jwk["x"].as_str().unwrap()).unwrap());
    let hs_jwk = hs(jwk.to_string().as_bytes());

    let own = own_key(&gw);
    let signed = |h: Value| forge(&h, &claims, Some((&own, Algorithm::EdDSA)));
    let crit = signed(with(own_header(&gw), |h| h["crit"] = json!(["exp"])));
    let unknown_kid = signed(with(own_header(&gw), |h| h["kid"] = json!("not-our-key")));
    let no_kid = signed(json!({"alg": "EdDSA", "typ": "at+jwt"}));
    let no_typ = signed(json!({"alg": "EdDSA", "kid": kid}));
    let typ_jwt = gw.state.signing_key.sign("JWT", &claims).unwrap();
    let typ_identity = gw.state.signing_key.sign("identity+jwt", &claims).unwrap();

    let before = echo.proxied().len();
    for (case, token) in [
        ("payload tampered", tampered),
        ("other key, same kid", same_kid_other_key),
        ("alg none", none),
        ("HS256 keyed with the public key", hs_public),
        ("HS256 keyed with the public JWK", hs_jwk),
        ("crit header", crit),
        ("unknown kid", unknown_kid),
        ("no kid", no_kid),
        ("no typ", no_typ),
        ("typ JWT", typ_jwt),
        ("typ identity+jwt", typ_identity),
    ] {
        refused(&gw, "/jwt/x", &token, case).await;
        refused(&gw, "/any/x", &token, case).await;
    }
    assert_eq!(
        echo.proxied().len(),
        before,
        "no refused token reached the upstream"
    );
    assert_eq!(get(&gw, "/jwt/x", &good).await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_with_bad_claims_are_refused() {
    let (gw, echo) = setup().await;
    let n = now();
    // (claim, value): `null` removes the claim.
    let cases = [
        ("exp", json!(n - 120)), // expired beyond the 30 s leeway
        ("nbf", json!(n + 300)),
        ("iat", json!(n + 300)),
        ("iss", json!("https://evil.example")),
        ("iss", json!(7)),
        ("aud", json!("someone-else")),
        ("aud", json!(["a", "b"])),
        ("exp", json!((n + 900).to_string())),
        ("exp", json!(n + 3600)), // longer than tokens.access_ttl (15 min) after iat
        ("sub", json!("alice")),
        ("sid", json!("session-1")),
        ("jti", json!(42)),
        ("exp", Value::Null),
        ("iat", Value::Null),
        ("jti", Value::Null),
        ("sub", Value::Null),
        ("aud", Value::Null),
        ("iss", Value::Null),
    ];
    let before = echo.proxied().len();
    for (claim, value) in cases {
        let token = gw.token(|c| match value.is_null() {
            true => drop(c.as_object_mut().unwrap().remove(claim)),
            false => c[claim] = value.clone(),
        });
        let case = format!("{claim} = {value}");
        refused(&gw, "/jwt/x", &token, &case).await;
    }
    assert_eq!(echo.proxied().len(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_and_oversized_tokens_are_refused() {
    let (gw, echo) = setup().await;
    let oversized = gw.token(|c| c["pad"] = json!("x".repeat(9 * 1024)));
    assert!(oversized.len() > 8 * 1024);
    let good = gw.sign(&gw.claims());
    let before = echo.proxied().len();
    for (case, token) in [
        ("two segments", "a.b".to_string()),
        ("four segments", "a.b.c.d".to_string()),
        ("garbage base64", "!!!.@@@.###".to_string()),
        (
            "not json",
            format!("{}.{}.{}", B64.encode("nope"), B64.encode("nope"), "c2ln"),
        ),
        ("valid token plus a segment", format!("{good}.x")),
        ("oversized", oversized),
    ] {
        refused(&gw, "/jwt/x", &token, case).await;
    }
    assert_eq!(echo.proxied().len(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_and_wrong_kind_credentials() {
    let (gw, echo) = setup().await;
    let before = echo.proxied().len();
    for path in ["/jwt/x", "/any/x", "/keys/x"] {
        let r = raw_get(gw.addr, path, &[]).await;
        assert_problem(&r, 401, "unauthenticated");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{path}");
        let r = raw_get(gw.addr, path, &[(AUTHZ, "Basic dXNlcjpwYXNzd29yZA==")]).await;
        assert_refused(&r, "credential_not_accepted", path);
    }
    // No key store exists yet: every API key is unknown, never anonymous.
    let bearer_key = [(AUTHZ, "Bearer sk_test_0123456789")];
    let header_key = [("X-API-Key", "sk_test_0123456789")];
    for (path, headers) in [
        ("/keys/x", &bearer_key),
        ("/keys/x", &header_key),
        ("/any/x", &bearer_key),
        ("/any/x", &header_key),
    ] {
        let r = raw_get(gw.addr, path, headers).await;
        assert_refused(&r, "invalid_api_key", path);
    }
    let r = get(&gw, "/keys/x", &gw.sign(&gw.claims())).await;
    assert_refused(&r, "credential_not_accepted", "jwt on api_key");
    for headers in [&bearer_key, &header_key] {
        let r = raw_get(gw.addr, "/jwt/x", headers).await;
        assert_refused(&r, "credential_not_accepted", "api key on jwt");
    }
    assert_eq!(echo.proxied().len(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_credentials_are_a_400() {
    let (gw, echo) = setup().await;
    let a = format!("Bearer {}", gw.sign(&gw.claims()));
    let b = format!("Bearer {}", gw.sign(&gw.claims()));
    let before = echo.proxied().len();
    for path in ["/jwt/x", "/any/x", "/keys/x"] {
        for headers in [
            [(AUTHZ, a.as_str()), (AUTHZ, b.as_str())],
            [(AUTHZ, a.as_str()), (AUTHZ, a.as_str())],
            [(AUTHZ, a.as_str()), ("X-API-Key", "sk_test_1")],
            [("X-API-Key", "sk_test_1"), ("X-API-Key", "sk_test_2")],
        ] {
            let r = raw_get(gw.addr, path, &headers).await;
            assert_eq!(r.status, 400, "{path} {headers:?}");
            assert_problem(&r, 400, "conflicting_credentials");
        }
    }
    assert_eq!(echo.proxied().len(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn verified_tokens_are_cached() {
    let (gw, _echo) = setup().await;
    let token = gw.sign(&gw.claims());
    let m = gw.metrics().await;
    let (hits, misses) = (cache_count(&m, "hit"), cache_count(&m, "miss"));
    assert_eq!(get(&gw, "/jwt/x", &token).await.status, 200);
    assert_eq!(get(&gw, "/any/y", &token).await.status, 200);
    assert_eq!(get(&gw, "/jwt/z", &token).await.status, 200);
    let m = gw.metrics().await;
    assert_eq!(cache_count(&m, "miss"), misses + 1, "{m}");
    assert_eq!(cache_count(&m, "hit"), hits + 2, "{m}");
    assert!(gw.state.authenticator.verifier.cached_entries() >= 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn revocation_is_rechecked_on_cache_hits() {
    let (gw, echo) = setup().await;
    let n = now();
    let by_session = gw.claims();
    let by_jti = gw.claims();
    let by_user_claims = with(gw.claims(), |c| {
        c["iat"] = json!(n - 60);
        c["exp"] = json!(n - 60 + 900);
    });
    let bystander = gw.sign(&gw.claims());
    let tokens = [
        gw.sign(&by_session),
        gw.sign(&by_jti),
        gw.sign(&by_user_claims),
    ];
    for t in &tokens {
        assert_eq!(get(&gw, "/jwt/x", t).await.status, 200);
    }
    assert!(gw.state.authenticator.verifier.cached_entries() >= 3);

    let revs = &gw.state.revocations;
    let sid = uuid::Uuid::parse_str(by_session["sid"].as_str().unwrap()).unwrap();
    revs.revoke_session(SessionId(sid), n + 900);
    let (jti, exp) = (by_jti["jti"].as_str().unwrap(), by_jti["exp"].as_i64());
    revs.revoke_token(jti, exp.unwrap());
    revs.revoke_user_before(by_user_claims["sub"].as_str().unwrap(), n - 30, n + 900);

    let before = echo.proxied().len();
    for (case, t) in ["session", "jti", "user"].iter().zip(&tokens) {
        assert_refused(&get(&gw, "/jwt/x", t).await, "token_revoked", case);
        assert_refused(&get(&gw, "/any/x", t).await, "token_revoked", case);
    }
    assert_eq!(echo.proxied().len(), before);
    // Another user's token, and a new token of the cut-off user, still work.
    assert_eq!(get(&gw, "/jwt/x", &bystander).await.status, 200);
    let fresh = gw.token(|c| c["sub"] = by_user_claims["sub"].clone());
    assert_eq!(get(&gw, "/jwt/x", &fresh).await.status, 200);
}

fn jwks_of(keys: &[&SigningKey]) -> String {
    let all: Vec<_> = keys.iter().flat_map(|k| k.jwks().keys).collect();
    json!({ "keys": all }).to_string()
}

fn idp_claims() -> Value {
    json!({
        "iss": IDP, "aud": "orders", "sub": "idp-user-7",
        "iat": now(), "exp": now() + 600, "jti": uuid::Uuid::new_v4().to_string(),
        "realm_access": { "roles": ["buyer", "auditor"] },
    })
}

/// A token of the external issuer signed by `key`, claims edited.
fn idp_token(key: &SigningKey, edit: impl FnOnce(&mut Value)) -> String {
    key.sign("JWT", &with(idp_claims(), edit)).unwrap()
}

/// A gateway trusting `IDP` with its keys from `source` (`jwks_file = …`).
async fn start_trusting(source: &str, echo: &Echo) -> TestGateway {
    let body = format!(
        "\n[[tokens.trusted_issuers]]\nissuer = \"{IDP}\"\n{source}\naudience = [\"orders\"]\nroles_claim = \"realm_access.roles\"\n{}",
        routes(echo)
    );
    TestGateway::start(&body).await
}

#[tokio::test(flavor = "multi_thread")]
async fn trusted_issuer_with_a_jwks_file() {
    let echo = Echo::start("app").await;
    let idp = new_key(KeyAlgorithm::EdDSA);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idp-jwks.json");
    std::fs::write(&path, jwks_of(&[&idp])).unwrap();
    let gw = start_trusting(&format!("jwks_file = \"{}\"", path.display()), &echo).await;

    assert_ok(&get(&gw, "/jwt/orders", &idp_token(&idp, |_| {})).await);
    let seen = echo.last();
    assert_eq!(seen.header("x-auth-user-id").as_deref(), Some("idp-user-7"));
    assert_eq!(
        seen.header("x-auth-roles").as_deref(),
        Some("buyer,auditor")
    );
    assert_eq!(seen.header("x-auth-method").as_deref(), Some("jwt"));

    let stranger = new_key(KeyAlgorithm::EdDSA);
    let before = echo.proxied().len();
    for (case, token) in [
        ("aud", idp_token(&idp, |c| c["aud"] = json!("portcullis"))),
        ("key not in the JWKS", idp_token(&stranger, |_| {})),
        ("exp", idp_token(&idp, |c| c["exp"] = json!(now() - 120))),
        ("iss", idp_token(&idp, |c| c["iss"] = json!("https://evil"))),
        ("sub null", idp_token(&idp, |c| c["sub"] = Value::Null)),
        // The issuer's key does not sign for the gateway's own issuer.
        ("own iss", idp.sign("at+jwt", &gw.claims()).unwrap()),
    ] {
        refused(&gw, "/jwt/orders", &token, case).await;
    }
    assert_eq!(echo.proxied().len(), before);
    // External issuers never grant the gateway's superuser flag.
    let su = idp_token(&idp, |c| c["su"] = json!(true));
    assert_ok(&get(&gw, "/jwt/orders", &su).await);
    assert_eq!(
        echo.last().header("x-auth-roles").as_deref(),
        Some("buyer,auditor")
    );
}

/// A JWKS endpoint serving whatever `body` holds, counting fetches.
struct JwksServer {
    url: String,
    body: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
}

impl JwksServer {
    async fn start(initial: String) -> JwksServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        let body = Arc::new(Mutex::new(initial));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (b, f) = (body.clone(), fetches.clone());
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let (b, f) = (b.clone(), f.clone());
                tokio::spawn(async move {
                    let (mut buf, mut chunk) = (Vec::new(), [0u8; 2048]);
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    f.fetch_add(1, Ordering::SeqCst);
                    let body = b.lock().unwrap().clone();
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = s.write_all(resp.as_bytes()).await;
                });
            }
        });
        JwksServer { url, body, fetches }
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn trusted_issuer_with_a_jwks_url_rotates_and_rate_limits_refetches() {
    let echo = Echo::start("app").await;
    let (a, b) = (new_key(KeyAlgorithm::EdDSA), new_key(KeyAlgorithm::ES256));
    let jwks = JwksServer::start(jwks_of(&[&a])).await;
    let gw = start_trusting(&format!("jwks_url = \"{}\"", jwks.url), &echo).await;
    let unknown_kid = || {
        let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": uuid::Uuid::new_v4()});
        signed_by_stranger(&header, &idp_claims())
    };

    assert_ok(&get(&gw, "/jwt/x", &idp_token(&a, |_| {})).await);
    assert_eq!(
        echo.last().header("x-auth-roles").as_deref(),
        Some("buyer,auditor")
    );
    let baseline = jwks.fetches();
    assert!(baseline >= 1, "the JWKS was fetched");

    // The issuer rotates: key B is published next to A. B's unknown kid
    // triggers one refetch right away (scheduled fetches, like the one at
    // start, do not use up the unknown-kid cooldown) and is accepted.
    *jwks.body.lock().unwrap() = jwks_of(&[&a, &b]);
    assert_ok(&get(&gw, "/jwt/x", &idp_token(&b, |_| {})).await);
    assert_eq!(jwks.fetches(), baseline + 1, "one refetch for the new kid");
    assert_ok(&get(&gw, "/jwt/x", &idp_token(&a, |_| {})).await);

    // A flood of unknown kids within the cooldown never turns into a flood
    // of fetches.
    let after_rotation = jwks.fetches();
    for _ in 0..5 {
        refused(&gw, "/jwt/x", &unknown_kid(), "random kid").await;
    }
    assert_eq!(jwks.fetches(), after_rotation, "cooldown: no refetch");
    assert_ok(&get(&gw, "/jwt/x", &idp_token(&b, |_| {})).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn each_signing_algorithm_signs_and_verifies() {
    for (alg, kty) in [
        ("ES256", Some("EC")),
        ("RS256", Some("RSA")),
        ("HS256", None),
    ] {
        let echo = Echo::start("app").await;
        let body = routes(&echo);
        let gw = TestGateway::start_extra("", &format!("algorithm = \"{alg}\""), &body).await;
        let key = &gw.state.signing_key;
        assert_eq!(key.algorithm.jwt(), alg.parse::<Algorithm>().unwrap());
        let claims = gw.claims();
        assert_ok(&get(&gw, "/jwt/x", &gw.sign(&claims)).await);
        assert_eq!(
            echo.last().header("x-auth-user-id").as_deref(),
            claims["sub"].as_str()
        );
        // The same claims under another algorithm, with this key's kid.
        let other = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": key.kid});
        let t = signed_by_stranger(&other, &claims);
        refused(&gw, "/jwt/x", &t, alg).await;

        let r = raw_get(gw.addr, "/.well-known/jwks.json", &[]).await;
        assert_eq!(r.status, 200, "{alg}");
        let keys = r.json()["keys"].as_array().cloned().unwrap_or_default();
        match kty {
            Some(kty) => {
                assert_eq!(keys.len(), 1, "{alg}: {keys:?}");
                assert_eq!(
                    (&keys[0]["kty"], &keys[0]["kid"]),
                    (&json!(kty), &json!(key.kid))
                );
                for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
                    assert!(keys[0].get(private).is_none(), "{alg}: {private} published");
                }
            }
            None => assert!(
                keys.is_empty(),
                "the HS256 secret is never published: {keys:?}"
            ),
        }
        let material = std::fs::read(gw.dir.path().join("data/signing-key.pem")).unwrap();
        assert!(
            material.trim_ascii().len() >= 32,
            "{alg}: key file created at start"
        );
    }
}
