//! Bypass classes found in review, pinned from the outside: each test is a
//! request that once reached (or could reach) a backend it should not.

mod common;

use common::*;
use portcullis::authn::keys::{generate, KeyAlgorithm, SigningKey};
use serde_json::{json, Value};

const IDP: &str = "https://idp.test";

fn routes(echo: &Echo) -> String {
    format!(
        r#"{}
[[routes]]
name = "batch-delete"
path = "/v1/things:batchDelete"
upstream = "app"
auth = "jwt"
roles = ["admin"]

[[routes]]
name = "su-only"
path = "/su/**"
upstream = "app"
auth = "jwt"
roles = ["superuser"]

[[routes]]
name = "post-only"
path = "/reports/**"
methods = ["POST"]
upstream = "app"
auth = "jwt"

[[routes]]
name = "admin"
path = "/admin/**"
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

#[tokio::test(flavor = "multi_thread")]
async fn encoded_reserved_characters_match_like_their_decoded_form() {
    let echo = Echo::start("app").await;
    let gw = TestGateway::start(&routes(&echo)).await;
    for path in [
        "/v1/things:batchDelete",
        "/v1/things%3AbatchDelete",
        "/v1/things%3abatchDelete",
    ] {
        let r = raw_get(gw.addr, path, &[]).await;
        assert_problem(&r, 401, "unauthenticated");
    }
    assert!(
        echo.proxied().is_empty(),
        "never fell through to the public catch-all"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lower_case_methods_cannot_skip_method_filters() {
    let echo = Echo::start("app").await;
    let gw = TestGateway::start(&routes(&echo)).await;
    let r = raw(
        gw.addr,
        "post /reports/x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(echo.proxied().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn with_semicolons_allowed_matrix_parameters_cannot_dodge_rules() {
    let echo = Echo::start("app").await;
    let gw = TestGateway::start_extra("allow_semicolons = true", "", &routes(&echo)).await;
    // Matched on the part before ";", as Tomcat routes it.
    let r = raw_get(gw.addr, "/admin;jsessionid=abc/users", &[]).await;
    assert_problem(&r, 401, "unauthenticated");
    // "..;" is a dot-segment to such backends: refused outright.
    for sneaky in [
        "/public/..;/admin/users",
        "/public/.;x/admin",
        "/x/%2e%2e;/admin",
    ] {
        assert_problem(&raw_get(gw.addr, sneaky, &[]).await, 400, "invalid_path");
    }
    assert!(echo.proxied().is_empty());
    // Ordinary matrix parameters on a public route still work.
    assert_eq!(raw_get(gw.addr, "/files;v=2/a", &[]).await.status, 200);
    assert_eq!(echo.last().target, "/files;v=2/a");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_named_superuser_grants_nothing() {
    let echo = Echo::start("app").await;
    let gw = TestGateway::start(&routes(&echo)).await;
    let fake = gw.token(|c| c["roles"] = json!(["user", "superuser"]));
    assert_problem(
        &raw_get(
            gw.addr,
            "/su/x",
            &[("Authorization", &format!("Bearer {fake}"))],
        )
        .await,
        403,
        "insufficient_role",
    );
    let ok = raw_get(
        gw.addr,
        "/admin/x",
        &[("Authorization", &format!("Bearer {fake}"))],
    )
    .await;
    assert_eq!(ok.status, 200);
    assert_eq!(
        echo.last().header("x-auth-roles").as_deref(),
        Some("user"),
        "the label is not forwarded"
    );
    let real = gw.token(|c| c["su"] = json!(true));
    assert_eq!(
        raw_get(
            gw.addr,
            "/su/x",
            &[("Authorization", &format!("Bearer {real}"))]
        )
        .await
        .status,
        200
    );
    assert_eq!(
        echo.last().header("x-auth-roles").as_deref(),
        Some("user,superuser")
    );
}

fn idp_token(key: &SigningKey, edit: impl FnOnce(&mut Value)) -> String {
    let now = now();
    let mut claims = json!({
        "iss": IDP, "aud": "orders", "sub": "idp-user-7", "iat": now, "exp": now + 600,
        "roles": ["buyer", "superuser", "has,comma"], "email": "eve@idp.test",
    });
    edit(&mut claims);
    key.sign("JWT", &claims).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn external_issuers_cannot_escalate_or_spoof() {
    let echo = Echo::start("app").await;
    let idp =
        SigningKey::from_material(KeyAlgorithm::EdDSA, &generate(KeyAlgorithm::EdDSA).unwrap())
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, serde_json::to_string(&idp.jwks()).unwrap()).unwrap();
    let body = format!(
        "\n[[tokens.trusted_issuers]]\nissuer = \"{IDP}\"\njwks_file = \"{}\"\naudience = [\"orders\"]\n{}",
        jwks.display(),
        routes(&echo)
    );
    let gw = TestGateway::start(&body).await;
    let bearer = |t: &str| format!("Bearer {t}");

    let t = idp_token(&idp, |_| {});
    assert_problem(
        &raw_get(gw.addr, "/su/x", &[("Authorization", &bearer(&t))]).await,
        403,
        "insufficient_role",
    );
    assert_eq!(
        raw_get(gw.addr, "/admin/x", &[("Authorization", &bearer(&t))])
            .await
            .status,
        200
    );
    let seen = echo.last();
    assert_eq!(
        seen.header("x-auth-roles").as_deref(),
        Some("buyer"),
        "no superuser, no comma smuggling"
    );
    assert_eq!(
        seen.header("x-auth-issuer").as_deref(),
        Some(IDP),
        "backends can tell issuers apart"
    );
    assert_eq!(
        seen.header("x-auth-email"),
        None,
        "an unverified email is not identity"
    );

    let verified = idp_token(&idp, |c| c["email_verified"] = json!(true));
    assert_eq!(
        raw_get(
            gw.addr,
            "/admin/x",
            &[("Authorization", &bearer(&verified))]
        )
        .await
        .status,
        200
    );
    assert_eq!(
        echo.last().header("x-auth-email").as_deref(),
        Some("eve@idp.test")
    );

    let before = echo.proxied().len();
    for (case, token) in [
        (
            "nbf in the future",
            idp_token(&idp, |c| c["nbf"] = json!(now() + 3600)),
        ),
        ("empty sub", idp_token(&idp, |c| c["sub"] = json!(""))),
        (
            "sub with a newline",
            idp_token(&idp, |c| c["sub"] = json!("a\nX-Auth-User-Id: b")),
        ),
    ] {
        let r = raw_get(gw.addr, "/admin/x", &[("Authorization", &bearer(&token))]).await;
        assert_eq!(r.status, 401, "{case}");
    }
    assert_eq!(echo.proxied().len(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_client_forwarding_header_is_replaced() {
    let echo = Echo::start("app").await;
    let gw = TestGateway::start(&routes(&echo)).await;
    let forged = [
        ("X-Forwarded-Ssl", "on"),
        ("X-Forwarded-Uri", "/admin"),
        ("X_Forwarded_Method", "DELETE"),
        ("X-Forwarded-Scheme", "https"),
        ("True-Client-IP", "10.0.0.1"),
        ("X-Client-IP", "10.0.0.1"),
        ("Front-End-Https", "on"),
        ("X-Auth-Issuer", "https://trusted"),
    ];
    assert_eq!(raw_get(gw.addr, "/anything", &forged).await.status, 200);
    let seen = echo.last();
    for (name, _) in forged {
        assert!(
            seen.header_all(&name.replace('_', "-")).is_empty(),
            "{name} reached the upstream"
        );
    }
    assert_eq!(seen.header("x-forwarded-for").as_deref(), Some("127.0.0.1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_requests_with_bodies_close_the_connection() {
    let echo = Echo::start("app").await;
    let gw = TestGateway::start(&routes(&echo)).await;
    let r = raw(
        gw.addr,
        "POST /admin/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    )
    .await;
    assert_problem(&r, 401, "unauthenticated");
    assert_eq!(r.header("connection"), Some("close"));
}

#[test]
fn risky_configs_are_refused() {
    let problems =
        |text: &str| match portcullis::Config::from_toml(text, std::path::Path::new("/tmp")) {
            Ok(_) => Vec::new(),
            Err(e) => e.lines(),
        };
    let p = problems("[[tokens.trusted_issuers]]\nissuer = \"https://idp\"\njwks_url = \"http://idp.example.com/jwks\"\naudience = [\"x\"]\n");
    assert!(p.iter().any(|l| l.contains("jwks_url")), "{p:?}");
    let p = problems("[[tokens.trusted_issuers]]\nissuer = \"https://idp\"\njwks_url = \"http://127.0.0.1:9/jwks\"\naudience = [\"x\"]\n");
    assert!(p.is_empty(), "{p:?}");
    let p = problems("[tokens]\nalgorithm = \"HS256\"\nsigning_key = \"env:K\"\n[headers]\nidentity_token = true\n");
    assert!(
        p.iter().any(|l| l.contains("headers.identity_token")),
        "{p:?}"
    );
}
