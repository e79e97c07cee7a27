//! Reading the account API's OpenAPI document in tests.

use serde_json::Value;

/// Every account route (README's table), as (method, path).
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/auth/register"),
    ("post", "/auth/login"),
    ("post", "/auth/token"),
    ("post", "/auth/refresh"),
    ("post", "/auth/logout"),
    ("get", "/auth/me"),
    ("patch", "/auth/me"),
    ("post", "/auth/change-password"),
    ("post", "/auth/forgot-password"),
    ("post", "/auth/reset-password"),
    ("post", "/auth/verify-email"),
    ("post", "/auth/resend-verification"),
    ("post", "/auth/mfa/totp/setup"),
    ("post", "/auth/mfa/totp/enable"),
    ("post", "/auth/mfa/totp/disable"),
    ("post", "/auth/account/delete"),
    ("get", "/auth/account/delete"),
    ("post", "/auth/account/delete/cancel"),
    ("get", "/auth/sessions"),
    ("delete", "/auth/sessions"),
    ("delete", "/auth/sessions/{id}"),
    ("post", "/auth/api-keys"),
    ("get", "/auth/api-keys"),
    ("delete", "/auth/api-keys/{id}"),
    ("post", "/auth/api-keys/{id}/rotate"),
    ("post", "/auth/orgs"),
    ("get", "/auth/orgs"),
    ("get", "/auth/orgs/{id}/members"),
    ("post", "/auth/orgs/{id}/members"),
    ("patch", "/auth/orgs/{id}/members/{user_id}"),
    ("delete", "/auth/orgs/{id}/members/{user_id}"),
    ("get", "/auth/admin/users"),
    ("patch", "/auth/admin/users/{id}"),
    ("get", "/auth/admin/audit"),
    ("get", "/auth/openapi.json"),
    ("get", "/.well-known/jwks.json"),
];

pub const METHODS: [&str; 6] = ["get", "post", "put", "patch", "delete", "options"];

/// Follows a local `$ref` (`#/components/...`) once.
pub fn deref<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v["$ref"].as_str() {
        Some(r) => doc
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("{r} does not resolve")),
        None => v,
    }
}

/// Every `$ref` in `v`.
pub fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r);
            }
            m.values().for_each(|v| refs(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// The property names of the request body schema for `content_type`.
pub fn body_properties(doc: &Value, op: &Value, content_type: &str) -> Vec<String> {
    let mut schema = &op["requestBody"]["content"][content_type]["schema"];
    assert!(!schema.is_null(), "no {content_type} body in {op}");
    // An optional body is `oneOf: [null, {$ref}]`.
    if let Some(one_of) = schema["oneOf"].as_array() {
        schema = one_of.iter().find(|s| s["type"] != "null").unwrap();
    }
    let props = deref(doc, schema)["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("no properties in {schema}"));
    props.keys().cloned().collect()
}

pub const NIL: &str = "00000000-0000-0000-0000-000000000000";

/// Runs `openapi-spec-validator` (PyPI) on the document when it is
/// installed; the suite does not depend on it.
pub fn validate_if_tool_installed(document: &str) {
    let tool = "openapi-spec-validator";
    let present = std::process::Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, document).unwrap();
    let out = std::process::Command::new(tool)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{tool}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
