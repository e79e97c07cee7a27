//! `GET /auth/openapi.json`: an OpenAPI 3.1 document of the account API.

use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

/// (method, path, summary, needs a bearer token, success status)
const OPERATIONS: &[(&str, &str, &str, bool, &str)] = &[
    ("post", "/auth/register", "Create an account", false, "201"),
    (
        "post",
        "/auth/login",
        "Log in (JSON or OAuth2 password form)",
        false,
        "200",
    ),
    (
        "post",
        "/auth/token",
        "OAuth2 token endpoint (password, refresh_token grants)",
        false,
        "200",
    ),
    (
        "post",
        "/auth/refresh",
        "Exchange a refresh token (body or cookie) for a new pair",
        false,
        "200",
    ),
    (
        "post",
        "/auth/logout",
        "End the current session",
        true,
        "204",
    ),
    ("get", "/auth/me", "The caller's profile", true, "200"),
    (
        "patch",
        "/auth/me",
        "Change the caller's username",
        true,
        "200",
    ),
    (
        "post",
        "/auth/change-password",
        "Change password; other sessions end",
        true,
        "204",
    ),
    (
        "post",
        "/auth/forgot-password",
        "Mail a password-reset link (202 whether or not the address has an account)",
        false,
        "202",
    ),
    (
        "post",
        "/auth/reset-password",
        "Set a new password with a mailed token; every session ends",
        false,
        "204",
    ),
    (
        "post",
        "/auth/verify-email",
        "Confirm the address a mailed token was sent to",
        false,
        "204",
    ),
    (
        "post",
        "/auth/resend-verification",
        "Mail a new verification link (202 whatever the address)",
        false,
        "202",
    ),
    (
        "post",
        "/auth/mfa/totp/setup",
        "Start TOTP enrollment: {secret, otpauth_uri}",
        true,
        "200",
    ),
    (
        "post",
        "/auth/mfa/totp/enable",
        "Turn TOTP on with a first code: {recovery_codes}",
        true,
        "200",
    ),
    (
        "post",
        "/auth/mfa/totp/disable",
        "Turn TOTP off ({password, code})",
        true,
        "204",
    ),
    (
        "post",
        "/auth/account/delete",
        "Schedule deletion after the grace period ({password}); every session ends",
        true,
        "202",
    ),
    (
        "get",
        "/auth/account/delete",
        "When the account will be deleted: {scheduled_for}",
        true,
        "200",
    ),
    (
        "post",
        "/auth/account/delete/cancel",
        "Cancel a scheduled deletion",
        true,
        "204",
    ),
    (
        "get",
        "/auth/sessions",
        "The caller's live sessions",
        true,
        "200",
    ),
    (
        "delete",
        "/auth/sessions",
        "End every other session",
        true,
        "204",
    ),
    (
        "delete",
        "/auth/sessions/{id}",
        "End one session",
        true,
        "204",
    ),
    (
        "post",
        "/auth/api-keys",
        "Create an API key (shown once)",
        true,
        "201",
    ),
    (
        "get",
        "/auth/api-keys",
        "The caller's API keys, without secrets",
        true,
        "200",
    ),
    (
        "delete",
        "/auth/api-keys/{id}",
        "Revoke an API key",
        true,
        "204",
    ),
    (
        "post",
        "/auth/api-keys/{id}/rotate",
        "Replace an API key; the old one dies",
        true,
        "200",
    ),
    (
        "post",
        "/auth/orgs",
        "Create an organization (caller becomes owner)",
        true,
        "201",
    ),
    (
        "get",
        "/auth/orgs",
        "The caller's organizations",
        true,
        "200",
    ),
    (
        "get",
        "/auth/orgs/{id}/members",
        "Members of an organization",
        true,
        "200",
    ),
    (
        "post",
        "/auth/orgs/{id}/members",
        "Add a member (admin or owner)",
        true,
        "201",
    ),
    (
        "patch",
        "/auth/orgs/{id}/members/{user_id}",
        "Change a member's role",
        true,
        "200",
    ),
    (
        "delete",
        "/auth/orgs/{id}/members/{user_id}",
        "Remove a member, or leave",
        true,
        "204",
    ),
    (
        "get",
        "/auth/admin/users",
        "List users (superuser)",
        true,
        "200",
    ),
    (
        "patch",
        "/auth/admin/users/{id}",
        "Change is_active, is_superuser, roles (superuser)",
        true,
        "200",
    ),
    (
        "get",
        "/auth/admin/audit",
        "The audit log, newest first (superuser)",
        true,
        "200",
    ),
    ("get", "/auth/openapi.json", "This document", false, "200"),
    (
        "get",
        "/.well-known/jwks.json",
        "The gateway's public signing keys",
        false,
        "200",
    ),
];

pub async fn document() -> Response {
    let mut paths = Map::new();
    for (method, path, summary, bearer, status) in OPERATIONS {
        let mut op = json!({
            "summary": summary,
            "responses": {
                *status: {"description": "Success"},
                "default": {"description": "Problem", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
            }
        });
        if *bearer {
            op["security"] = json!([{"bearer": []}]);
        }
        let parameters: Vec<Value> = ["id", "user_id"]
            .into_iter()
            .filter(|name| path.contains(&format!("{{{name}}}")))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}))
            .collect();
        if !parameters.is_empty() {
            op["parameters"] = Value::Array(parameters);
        }
        let entry = paths
            .entry(path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        entry[*method] = op;
    }
    Json(json!({
        "openapi": "3.1.0",
        "info": {"title": "Portcullis account API", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": {"Problem": {"type": "object", "required": ["type", "title", "status", "detail", "code"],
                "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                    "detail": {"type": "string"}, "code": {"type": "string"}, "field": {"type": "string"}}}}
        }
    }))
    .into_response()
}
