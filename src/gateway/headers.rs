//! Header hygiene (DESIGN.md §5): what is removed from every incoming
//! request before anything else looks at it, and the identity and
//! forwarding headers the gateway adds on the way upstream.

use pingora::http::RequestHeader;

use crate::authz::OrgContext;
use crate::config::rules::must_strip;
use crate::config::HeaderConfig;
use crate::principal::{ApiKeyIdentity, UserIdentity};

/// Removes every header matching the strip rules (all values of each),
/// and their nominations in `Connection`.
pub fn strip_incoming(req: &mut RequestHeader, cfg: &HeaderConfig) {
    let doomed: Vec<http::HeaderName> = req
        .headers
        .keys()
        .filter(|name| must_strip(name.as_str(), cfg))
        .cloned()
        .collect();
    for name in doomed {
        req.remove_header(&name);
    }
    sanitize_connection(req, cfg);
}

/// A client's `Connection` may name headers as hop-by-hop, but not the ones
/// the gateway writes itself (they were stripped from the request above,
/// so the nomination means nothing) nor `Host`. pingora refuses a request
/// that nominates `Host` or `X-Forwarded-For/-Host/-Proto`; dropping such
/// tokens instead serves it, with the gateway's headers intact.
fn sanitize_connection(req: &mut RequestHeader, cfg: &HeaderConfig) {
    let values = req.headers.get_all(http::header::CONNECTION);
    let tokens = || {
        values
            .iter()
            .flat_map(|v| v.as_bytes().split(|&b| b == b','))
            .map(<[u8]>::trim_ascii)
            .filter(|t| !t.is_empty())
    };
    let protected = |token: &[u8]| {
        let name = String::from_utf8_lossy(token);
        name.eq_ignore_ascii_case("host") || must_strip(&name, cfg)
    };
    if !tokens().any(protected) {
        return;
    }
    let kept: Vec<String> = tokens()
        .filter(|t| !protected(t))
        .map(|t| String::from_utf8_lossy(t).into_owned())
        .collect();
    if kept.is_empty() {
        req.remove_header(&http::header::CONNECTION);
    } else {
        // Tokens are visible ASCII (they came from a header value).
        let _ = req.insert_header(http::header::CONNECTION, kept.join(", "));
    }
}

/// Removes the caller's credentials (the API-key headers and
/// `Authorization`): a backend gets identity headers, never a secret that
/// is valid at the gateway.
pub fn strip_credentials(req: &mut RequestHeader, api_key_headers: &[String]) {
    for name in api_key_headers {
        req.remove_header(name.as_str());
    }
    req.remove_header(&http::header::AUTHORIZATION);
}

/// The identity headers for an authenticated request, in a fixed order.
pub fn identity_headers(
    user: &UserIdentity,
    key: Option<&ApiKeyIdentity>,
    org: Option<&OrgContext>,
    method: &str,
) -> Vec<(&'static str, String)> {
    let mut roles = user.roles.clone();
    if user.superuser && !roles.iter().any(|r| r == "superuser") {
        roles.push("superuser".into());
    }
    let mut out = vec![
        ("X-Auth-User-Id", user.user_id.0.clone()),
        ("X-Auth-Issuer", user.issuer.clone()),
    ];
    if let Some(email) = &user.email {
        out.push(("X-Auth-Email", email.clone()));
    }
    out.push(("X-Auth-Roles", roles.join(",")));
    if let Some(org) = org {
        out.push(("X-Auth-Org-Id", org.id.to_string()));
        if let Some(role) = org.role {
            out.push(("X-Auth-Org-Role", role.as_str().to_string()));
        }
    }
    if !user.scopes.is_empty() {
        out.push(("X-Auth-Scopes", user.scopes.join(" ")));
    }
    out.push(("X-Auth-Method", method.to_string()));
    if let Some(session) = user.session {
        out.push(("X-Auth-Session-Id", session.to_string()));
    }
    if let Some(key) = key {
        out.push(("X-Auth-Key-Id", key.key_id.to_string()));
        if let Some(client) = key.client_id {
            out.push(("X-Auth-Client-Id", client.to_string()));
        }
    }
    out
}

/// A valid `X-Request-Id` from a trusted proxy: 1–128 of `[A-Za-z0-9._-]`.
pub fn valid_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> HeaderConfig {
        HeaderConfig {
            strip_prefixes: vec!["x-auth-".into()],
            strip: vec!["remote-user".into()],
            identity_token: false,
        }
    }

    #[test]
    fn strip_rules_fold_case_and_underscores() {
        let c = cfg();
        for name in [
            "X-Auth-User-Id",
            "x-auth-anything",
            "X_AUTH_USER_ID",
            "x_Auth-roles",
            "Remote-User",
            "REMOTE_USER",
            "X-Original-URL",
            "x_http_method_override",
            "Forwarded",
            "X-Forwarded-For",
            "X-Forwarded-Ssl",
            "x_forwarded_uri",
            "True-Client-IP",
            "X-Auth-Issuer",
        ] {
            assert!(must_strip(name, &c), "{name}");
        }
        for name in ["Authorization", "X-Api-Key", "Content-Type", "X-Authx"] {
            assert!(!must_strip(name, &c), "{name}");
        }
    }

    #[test]
    fn request_ids() {
        assert!(valid_request_id("abc-123_x.y"));
        assert!(!valid_request_id(""));
        assert!(!valid_request_id("has space"));
        assert!(!valid_request_id(&"a".repeat(129)));
    }
}
