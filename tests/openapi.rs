//! The OpenAPI document of the account API (`GET /auth/openapi.json`),
//! generated from the handlers: every route with its methods, bodies,
//! parameters, security and problem answers, references that resolve, and
//! the `Allow` header of a 405. The document does not depend on the
//! database, so these run on SQLite only.

mod common;

use std::collections::HashSet;

use common::http::{problem, Resp};
use common::openapi::{
    body_properties, deref, refs, validate_if_tool_installed, METHODS, NIL, ROUTES,
};
use common::*;
use serde_json::json;

async fn start() -> TestGateway {
    TestGateway::start(
        "\n[accounts]\nargon2 = { memory_kib = 1024, iterations = 1, parallelism = 1 }\n",
    )
    .await
}

async fn send(rb: reqwest::RequestBuilder) -> Resp {
    common::http::send(rb).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_document_describes_every_route_and_resolves() {
    let gw = start().await;
    {
        let r = send(client().get(gw.url("/auth/openapi.json"))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("application/json")
        );
        let doc = r.json();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{doc}");

        // Exactly the routes served, each with its methods, a success
        // response and a problem response.
        let paths = doc["paths"].as_object().unwrap();
        let mut documented = HashSet::new();
        for (path, item) in paths {
            for method in METHODS {
                if item.get(method).is_some() {
                    documented.insert((method.to_string(), path.clone()));
                }
            }
        }
        let listed: HashSet<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(documented, listed, "documented vs README's routes");
        let ids: Vec<&str> = ROUTES
            .iter()
            .map(|(m, p)| doc["paths"][p][m]["operationId"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids.iter().collect::<HashSet<_>>().len(),
            ids.len(),
            "{ids:?}"
        );
        for (method, path) in ROUTES {
            let op = &doc["paths"][path][method];
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path}: no success response"
            );
            if path.starts_with("/auth/") && *path != "/auth/openapi.json" {
                let problem = deref(&doc, &responses["default"]);
                assert!(
                    problem["content"]["application/problem+json"]["schema"].is_object(),
                    "{method} {path}: {problem}"
                );
                // And the gateway serves it (no 404 endpoint, no 405).
                let url = gw.url(&path.replace("{id}", NIL).replace("{user_id}", NIL));
                let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes());
                let r = send(client().request(method.unwrap(), url)).await;
                assert!(
                    ![404, 405].contains(&r.status),
                    "{path}: {} {}",
                    r.status,
                    r.text
                );
            }
        }

        // Request bodies: login as JSON and as a form, register, refresh.
        let login = &doc["paths"]["/auth/login"]["post"];
        let json = body_properties(&doc, login, "application/json");
        assert!(json.contains(&"email".into()) && json.contains(&"totp_code".into()));
        let form = body_properties(&doc, login, "application/x-www-form-urlencoded");
        assert!(form.contains(&"username".into()) && form.contains(&"password".into()));
        let register = &doc["paths"]["/auth/register"]["post"];
        let fields = body_properties(&doc, register, "application/json");
        assert!(fields.contains(&"email".into()), "{fields:?}");
        let refresh = &doc["paths"]["/auth/refresh"]["post"];
        let fields = body_properties(&doc, refresh, "application/json");
        assert_eq!(fields, ["refresh_token"]);
        assert_ne!(
            refresh["requestBody"]["required"], true,
            "the cookie suffices"
        );
        let token = &doc["paths"]["/auth/token"]["post"];
        let fields = body_properties(&doc, token, "application/x-www-form-urlencoded");
        assert!(fields.contains(&"grant_type".into()), "{fields:?}");
        let tokens = deref(
            &doc,
            &login["responses"]["200"]["content"]["application/json"]["schema"],
        );
        assert!(
            tokens["properties"]["refresh_token"].is_object(),
            "{tokens}"
        );

        // Paging parameters.
        let params = doc["paths"]["/auth/admin/users"]["get"]["parameters"]
            .as_array()
            .unwrap();
        for name in ["limit", "cursor"] {
            assert!(
                params
                    .iter()
                    .any(|p| p["name"] == name && p["in"] == "query"),
                "{name}: {params:?}"
            );
        }

        // /auth/token's errors are RFC 6749 JSON, not problems.
        let bad = &token["responses"]["400"]["content"];
        assert!(bad.get("application/problem+json").is_none(), "{bad}");
        let error = deref(&doc, &bad["application/json"]["schema"]);
        assert!(
            error["properties"]["error_description"].is_object(),
            "{error}"
        );

        // The refresh cookie, alone for refresh, an alternative for logout.
        let scheme = &doc["components"]["securitySchemes"]["refresh_cookie"];
        assert_eq!(scheme["type"], "apiKey", "{scheme}");
        assert_eq!(scheme["in"], "cookie");
        assert_eq!(scheme["name"], "portcullis_refresh");
        let cookie = json!({"refresh_cookie": []});
        let security = refresh["security"].as_array().unwrap();
        assert!(security.contains(&cookie), "{security:?}");
        let security = doc["paths"]["/auth/logout"]["post"]["security"]
            .as_array()
            .unwrap();
        assert!(security.contains(&cookie), "{security:?}");
        assert!(security.contains(&json!({"bearer": []})), "{security:?}");

        // The problem body, with `field` for 422.
        let problem = &doc["components"]["schemas"]["Problem"];
        for field in ["type", "title", "status", "detail", "code"] {
            assert!(problem["required"]
                .as_array()
                .unwrap()
                .contains(&json!(field)));
        }
        assert!(problem["properties"]["field"].is_object(), "{problem}");
        let invalid = deref(&doc, &register["responses"]["422"]);
        assert!(invalid["content"]["application/problem+json"].is_object());

        // Every reference resolves.
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(all.len() > 40, "{}", all.len());
        for r in all {
            assert!(r.starts_with("#/components/"), "{r}");
            assert!(doc.pointer(&r[1..]).is_some(), "{r} does not resolve");
        }
        validate_if_tool_installed(&r.text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_method_names_the_allowed_ones() {
    let gw = start().await;
    let member = format!("/auth/orgs/{NIL}/members/{NIL}");
    for (method, path, allow) in [
        ("DELETE", "/auth/login", "POST"),
        ("PUT", "/auth/me", "GET, HEAD, PATCH"),
        ("POST", "/auth/sessions", "GET, HEAD, DELETE"),
        ("GET", member.as_str(), "PATCH, DELETE"),
        ("POST", "/auth/openapi.json", "GET, HEAD"),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = send(client().request(method.clone(), gw.url(path))).await;
        problem(&r, 405, "method_not_allowed");
        assert_eq!(r.header("allow").as_deref(), Some(allow), "{method} {path}");
        assert!(r.json()["detail"].as_str().unwrap().contains(allow));
        assert!(!r.text.contains("see "), "{}", r.text);
    }
}
