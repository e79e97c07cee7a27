//! Header hygiene from the outside (DESIGN.md §5, §10 "Forwarding"): what a
//! client may not send, the identity and forwarding headers the gateway
//! adds, `X-Request-Id`, and the optional `X-Auth-Token` assertion.

mod common;

use common::*;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{json, Value};

/// A public and a jwt route over one echo upstream; `extra` is prepended to
/// the body (e.g. a `[headers]` section).
fn body(echo: &Echo, extra: &str) -> String {
    format!(
        r#"{extra}
{}
[[routes]]
name = "private"
path = "/private/**"
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

async fn setup_with(extra: &str) -> (TestGateway, Echo) {
    let echo = Echo::start("app").await;
    let gw = TestGateway::start(&body(&echo, extra)).await;
    (gw, echo)
}

async fn setup() -> (TestGateway, Echo) {
    setup_with("").await
}

/// The same routes behind a gateway that trusts 127.0.0.1 as a proxy.
async fn setup_trusted() -> (TestGateway, Echo) {
    let echo = Echo::start("app").await;
    let b = body(&echo, "");
    let gw = TestGateway::start_trusting_localhost(&b).await;
    (gw, echo)
}

/// Every value of a header whose name folds (case, `_` → `-`) to `name`.
fn folded(seen: &common::echo::Seen, name: &str) -> Vec<String> {
    let want = name.to_ascii_lowercase().replace('_', "-");
    seen.headers
        .iter()
        .filter(|(k, _)| k.to_ascii_lowercase().replace('_', "-") == want)
        .map(|(_, v)| v.clone())
        .collect()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Identity headers a client tries to smuggle in.
const FORGED: &[(&str, &str)] = &[
    ("X-Auth-User-Id", "00000000-0000-0000-0000-000000000001"),
    ("X-Auth-User-Id", "00000000-0000-0000-0000-000000000002"),
    ("x-auth-roles", "superuser"),
    ("X_AUTH_USER_ID", "00000000-0000-0000-0000-000000000003"),
    ("X-AUTH-ORG-ID", "00000000-0000-0000-0000-000000000004"),
    ("X-Auth-Method", "api_key"),
    ("Remote-User", "root"),
    ("REMOTE_USER", "root"),
    ("X-Forwarded-User", "root"),
    ("X-Forwarded-Email", "root@example.com"),
    ("Remote-Groups", "admins"),
    ("Forwarded", "for=6.6.6.6;host=evil.example;proto=https"),
    ("X-Real-IP", "6.6.6.6"),
];

#[tokio::test(flavor = "multi_thread")]
async fn forged_identity_headers_never_reach_a_public_route() {
    let (gw, echo) = setup().await;
    let r = raw_get(gw.addr, "/public/x", FORGED).await;
    assert_eq!(r.status, 200);
    let seen = echo.last();
    for name in [
        "x-auth-user-id",
        "x-auth-roles",
        "x-auth-org-id",
        "x-auth-method",
        "remote-user",
        "x-forwarded-user",
        "x-forwarded-email",
        "remote-groups",
        "forwarded",
    ] {
        assert!(
            folded(&seen, name).is_empty(),
            "{name} forwarded: {:?}",
            seen.headers
        );
    }
    let forged_auth: Vec<_> = seen
        .headers
        .iter()
        .filter(|(k, _)| {
            k.to_ascii_lowercase()
                .replace('_', "-")
                .starts_with("x-auth-")
        })
        .collect();
    assert!(forged_auth.is_empty(), "{forged_auth:?}");
    assert_eq!(folded(&seen, "x-real-ip"), vec!["127.0.0.1"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_identity_headers_are_replaced_on_a_jwt_route() {
    let (gw, echo) = setup().await;
    let claims = gw.claims();
    let sub = claims["sub"].as_str().unwrap().to_string();
    let mut claims = claims;
    claims["roles"] = json!(["admin"]);
    let auth = bearer(&gw.sign(&claims));
    let mut headers: Vec<(&str, &str)> = FORGED.to_vec();
    headers.push(("Authorization", &auth));
    let r = raw_get(gw.addr, "/private/x", &headers).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let seen = echo.last();
    assert_eq!(folded(&seen, "x-auth-user-id"), vec![sub]);
    assert_eq!(folded(&seen, "x-auth-roles"), vec!["admin"]);
    assert_eq!(folded(&seen, "x-auth-method"), vec!["jwt"]);
    assert!(
        folded(&seen, "x-auth-org-id").is_empty(),
        "no org on this route"
    );
    for name in [
        "remote-user",
        "x-forwarded-user",
        "x-forwarded-email",
        "remote-groups",
        "forwarded",
    ] {
        assert!(folded(&seen, name).is_empty(), "{name} forwarded");
    }
    assert_eq!(folded(&seen, "x-real-ip"), vec!["127.0.0.1"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn identity_headers_describe_the_caller() {
    let (gw, echo) = setup().await;
    let mut claims = gw.claims();
    claims["roles"] = json!(["admin", "user"]);
    claims["scope"] = json!("orders:read orders:write");
    claims["email"] = json!("carol@example.com");
    let r = raw_get(
        gw.addr,
        "/private/me",
        &[("Authorization", &bearer(&gw.sign(&claims)))],
    )
    .await;
    assert_eq!(r.status, 200);
    let seen = echo.last();
    let one = |name: &str| {
        let v = seen.header_all(name);
        assert_eq!(v.len(), 1, "{name}: {v:?}");
        v[0].clone()
    };
    assert_eq!(one("X-Auth-User-Id"), claims["sub"].as_str().unwrap());
    assert_eq!(one("X-Auth-Email"), "carol@example.com");
    assert_eq!(one("X-Auth-Roles"), "admin,user");
    assert_eq!(one("X-Auth-Scopes"), "orders:read orders:write");
    assert_eq!(one("X-Auth-Method"), "jwt");
    assert_eq!(one("X-Auth-Session-Id"), claims["sid"].as_str().unwrap());
    assert!(seen.header("X-Auth-Token").is_none(), "off by default");
    assert!(
        seen.header("Authorization").is_none(),
        "the caller's token stays at the gateway"
    );

    assert_eq!(raw_get(gw.addr, "/public/x", &[]).await.status, 200);
    let anon = echo.last();
    let auth: Vec<_> = anon
        .headers
        .iter()
        .filter(|(k, _)| k.to_ascii_lowercase().starts_with("x-auth-"))
        .collect();
    assert!(auth.is_empty(), "anonymous request got {auth:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_reach_the_backend_only_where_a_route_opts_in() {
    let echo = Echo::start("app").await;
    let gw = TestGateway::start(&format!(
        r#"{}
[[routes]]
name = "forwarding"
path = "/forwarding/**"
upstream = "app"
auth = "jwt"
forward_credentials = true
"#,
        body(&echo, "")
    ))
    .await;
    let mut claims = gw.claims();
    claims["scope"] = json!("");
    let auth = bearer(&gw.sign(&claims));
    let creds = [("Authorization", auth.as_str()), ("X-Api-Key", "sk_other")];

    assert_eq!(
        raw_get(gw.addr, "/private/x", &creds[..1]).await.status,
        200
    );
    let seen = echo.last();
    assert!(seen.header("Authorization").is_none(), "{:?}", seen.headers);
    assert!(
        seen.header("X-Auth-Scopes").is_none(),
        "no scopes, no empty header: {:?}",
        seen.headers
    );

    // Public routes never look at a credential, and never pass one on.
    assert_eq!(raw_get(gw.addr, "/public/x", &creds).await.status, 200);
    let seen = echo.last();
    assert!(seen.header("Authorization").is_none(), "{:?}", seen.headers);
    assert!(seen.header("X-Api-Key").is_none(), "{:?}", seen.headers);

    assert_eq!(
        raw_get(gw.addr, "/forwarding/x", &creds[..1]).await.status,
        200
    );
    let seen = echo.last();
    assert_eq!(seen.header_all("Authorization"), [auth.as_str()]);
    assert_eq!(
        seen.header("X-Auth-User-Id").as_deref(),
        claims["sub"].as_str()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_header_cannot_drop_gateway_headers() {
    let (gw, echo) = setup().await;
    let claims = gw.claims();
    let auth = bearer(&gw.sign(&claims));
    let r = raw_get(
        gw.addr,
        "/private/x",
        &[
            ("Authorization", &auth),
            (
                "Connection",
                "close, X-Auth-User-Id, x-auth-roles, X-Auth-Method, X-Request-Id, X-Real-IP",
            ),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let seen = echo.last();
    assert_eq!(
        seen.header_all("X-Auth-User-Id"),
        vec![claims["sub"].as_str().unwrap().to_string()],
        "headers: {:?}",
        seen.headers
    );
    assert_eq!(seen.header_all("X-Auth-Roles"), vec!["user"]);
    assert_eq!(seen.header_all("X-Auth-Method"), vec!["jwt"]);
    assert_eq!(seen.header_all("X-Real-IP"), vec!["127.0.0.1"]);
    assert_eq!(
        seen.header_all("X-Request-Id"),
        vec![r.header("x-request-id").unwrap().to_string()]
    );

    // Nominating X-Forwarded-For is either refused outright (pingora's
    // policy) or has no effect; it never removes the gateway's value.
    let before = echo.proxied().len();
    let r = raw_get(
        gw.addr,
        "/public/x",
        &[
            ("Connection", "close, X-Forwarded-For"),
            ("X-Forwarded-For", "6.6.6.6"),
        ],
    )
    .await;
    match r.status {
        400 => {
            assert_problem(&r, 400, "bad_request");
            assert_eq!(echo.proxied().len(), before, "refused before the upstream");
        }
        200 => assert_eq!(echo.last().header_all("X-Forwarded-For"), vec!["127.0.0.1"]),
        other => panic!("unexpected {other}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarding_headers_from_an_untrusted_peer() {
    let (gw, echo) = setup().await;
    let r = raw(
        gw.addr,
        "GET /public/f HTTP/1.1\r\nHost: shop.example.com:8443\r\n\
         X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Host: evil.example\r\n\
         X-Forwarded-Proto: https\r\nX-Forwarded-Port: 1\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 200);
    let seen = echo.last();
    assert_eq!(seen.header_all("X-Forwarded-For"), vec!["127.0.0.1"]);
    assert_eq!(
        seen.header_all("X-Forwarded-Host"),
        vec!["shop.example.com:8443"]
    );
    assert_eq!(seen.header_all("X-Forwarded-Proto"), vec!["http"]);
    assert_eq!(seen.header_all("X-Real-IP"), vec!["127.0.0.1"]);
    assert!(seen.header("X-Forwarded-Port").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarding_headers_from_a_trusted_proxy() {
    let (gw, echo) = setup_trusted().await;
    let r = raw_get(
        gw.addr,
        "/public/f",
        &[
            ("X-Forwarded-For", "6.6.6.6, 1.2.3.4"),
            ("X-Forwarded-Proto", "https"),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    let seen = echo.last();
    assert_eq!(
        seen.header_all("X-Forwarded-For"),
        vec!["6.6.6.6, 1.2.3.4, 127.0.0.1"]
    );
    assert_eq!(seen.header_all("X-Real-IP"), vec!["1.2.3.4"]);
    assert_eq!(seen.header_all("X-Forwarded-Proto"), vec!["https"]);

    assert_eq!(
        raw_get(gw.addr, "/public/g", &[("X-Forwarded-For", "1.2.3.4")])
            .await
            .status,
        200
    );
    let seen = echo.last();
    assert_eq!(
        seen.header_all("X-Forwarded-For"),
        vec!["1.2.3.4, 127.0.0.1"]
    );
    assert_eq!(seen.header_all("X-Real-IP"), vec!["1.2.3.4"]);
}

fn is_generated_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id != "abc-123"
}

#[tokio::test(flavor = "multi_thread")]
async fn request_id_from_an_untrusted_client_is_replaced() {
    let (gw, echo) = setup().await;
    let r = raw_get(gw.addr, "/public/x", &[("X-Request-Id", "abc-123")]).await;
    assert_eq!(r.status, 200);
    let id = r.header("x-request-id").expect("response X-Request-Id");
    assert!(is_generated_id(id), "{id}");
    assert_eq!(echo.last().header_all("X-Request-Id"), vec![id.to_string()]);

    // Ids are per request.
    let again = raw_get(gw.addr, "/public/x", &[]).await;
    assert_ne!(again.header("x-request-id"), Some(id));

    // Local problem responses carry one too, and the upstream sees nothing.
    let before = echo.proxied().len();
    let nf = raw_get(gw.addr, "/nowhere", &[("X-Request-Id", "abc-123")]).await;
    assert_problem(&nf, 404, "not_found");
    let nf_id = nf.header("x-request-id").expect("problem has X-Request-Id");
    assert!(is_generated_id(nf_id), "{nf_id}");
    let unauth = raw_get(gw.addr, "/private/x", &[]).await;
    assert_problem(&unauth, 401, "unauthenticated");
    assert!(unauth.header("x-request-id").is_some());
    assert_eq!(echo.proxied().len(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn request_id_from_a_trusted_proxy_is_kept_only_if_valid() {
    let (gw, echo) = setup_trusted().await;
    let r = raw_get(gw.addr, "/public/x", &[("X-Request-Id", "abc-123")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-request-id"), Some("abc-123"));
    assert_eq!(echo.last().header_all("X-Request-Id"), vec!["abc-123"]);

    let long = "a".repeat(129);
    for bad in ["has space", "a/b", long.as_str()] {
        let r = raw_get(gw.addr, "/public/x", &[("X-Request-Id", bad)]).await;
        assert_eq!(r.status, 200, "{bad}");
        let id = r.header("x-request-id").unwrap().to_string();
        assert_ne!(id, bad);
        assert!(is_generated_id(&id), "{id}");
        assert_eq!(echo.last().header_all("X-Request-Id"), vec![id]);
    }
    let max = "b".repeat(128);
    let r = raw_get(gw.addr, "/public/x", &[("X-Request-Id", &max)]).await;
    assert_eq!(
        r.header("x-request-id"),
        Some(max.as_str()),
        "128 is allowed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn identity_token_is_a_short_lived_gateway_assertion() {
    let (gw, echo) = setup_with("[headers]\nidentity_token = true\n").await;
    let mut claims = gw.claims();
    claims["roles"] = json!(["admin"]);
    let sub = claims["sub"].as_str().unwrap().to_string();
    let r = raw_get(
        gw.addr,
        "/private/x",
        &[
            ("Authorization", &bearer(&gw.sign(&claims))),
            ("X-Auth-Token", "forged"),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    let tokens = echo.last().header_all("X-Auth-Token");
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    let token = tokens[0].clone();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("identity+jwt"));
    let mut v = Validation::new(Algorithm::EdDSA);
    v.set_audience(&["portcullis-upstream"]);
    let data = jsonwebtoken::decode::<Value>(&token, &gw.state.signing_key.decoding, &v)
        .expect("verifies with the gateway key");
    let c = data.claims;
    assert_eq!(c["sub"], sub.as_str());
    assert_eq!(c["iss"], "portcullis");
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 60);
    assert!(c["jti"].as_str().is_some_and(|j| !j.is_empty()));

    // Never accepted back as a credential.
    let before = echo.proxied().len();
    let replay = raw_get(gw.addr, "/private/x", &[("Authorization", &bearer(&token))]).await;
    assert_problem(&replay, 401, "invalid_token");
    assert_eq!(echo.proxied().len(), before);

    // A client-sent X-Auth-Token never reaches a public route.
    let r = raw_get(gw.addr, "/public/x", &[("X-Auth-Token", &token)]).await;
    assert_eq!(r.status, 200);
    assert!(echo.last().header("X-Auth-Token").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn custom_strip_rules_are_honoured() {
    let (gw, echo) =
        setup_with("[headers]\nstrip_prefixes = [\"X-Internal-\"]\nstrip = [\"X-Debug-User\"]\n")
            .await;
    let r = raw_get(
        gw.addr,
        "/public/x",
        &[
            ("X-Internal-Secret", "1"),
            ("x-internal-role", "2"),
            ("X_INTERNAL_TENANT", "3"),
            ("X-Debug-User", "4"),
            ("x_debug_user", "5"),
            ("X-DEBUG-USER", "6"),
            ("X-Internals", "kept"),
            ("X-Debug-User-Agent", "kept"),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    let seen = echo.last();
    for name in [
        "x-internal-secret",
        "x-internal-role",
        "x-internal-tenant",
        "x-debug-user",
    ] {
        assert!(folded(&seen, name).is_empty(), "{name}: {:?}", seen.headers);
    }
    assert_eq!(seen.header_all("X-Internals"), vec!["kept"]);
    assert_eq!(seen.header_all("X-Debug-User-Agent"), vec!["kept"]);
}

/// §1: the gateway "strips any identity headers the client tried to send".
/// Replacing `strip_prefixes` with a custom list must not let a client
/// forge the gateway's own `X-Auth-*` headers on a public route.
#[tokio::test(flavor = "multi_thread")]
async fn custom_strip_rules_still_protect_gateway_identity_headers() {
    let (gw, echo) =
        setup_with("[headers]\nstrip_prefixes = [\"X-Internal-\"]\nstrip = [\"X-Debug-User\"]\n")
            .await;
    let r = raw_get(
        gw.addr,
        "/public/x",
        &[
            ("X-Auth-User-Id", "00000000-0000-0000-0000-000000000001"),
            ("x_auth_roles", "superuser"),
            ("X-Auth-Token", "forged"),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    let seen = echo.last();
    for name in ["x-auth-user-id", "x-auth-roles", "x-auth-token"] {
        assert!(
            folded(&seen, name).is_empty(),
            "client-forged {name} reached the upstream: {:?}",
            seen.headers
        );
    }
}
