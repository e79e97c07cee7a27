//! `X-Auth-Token`: a 60-second JWT signed by the gateway key asserting the
//! identity it forwards (DESIGN.md §10). `typ: identity+jwt`, so it is never
//! accepted as an access token.

use serde::Serialize;

use crate::authn::jwt::now_secs;
use crate::authn::keys::SigningKey;
use crate::authz::OrgContext;
use crate::principal::UserIdentity;

pub const ASSERTION_TTL_SECS: i64 = 60;

#[derive(Serialize)]
struct IdentityClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    roles: &'a [String],
    su: bool,
    scope: String,
    method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    org_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    org_role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
}

pub fn sign(
    key: &SigningKey,
    issuer: &str,
    audience: &str,
    user: &UserIdentity,
    org: Option<&OrgContext>,
    method: &str,
) -> Result<String, String> {
    let now = now_secs();
    let claims = IdentityClaims {
        iss: issuer,
        aud: audience,
        sub: &user.user_id.0,
        iat: now,
        exp: now + ASSERTION_TTL_SECS,
        jti: uuid::Uuid::new_v4().to_string(),
        email: user.email.as_deref(),
        roles: &user.roles,
        su: user.superuser,
        scope: user.scopes.join(" "),
        method,
        org_id: org.map(|o| o.id.to_string()),
        org_role: org.and_then(|o| o.role).map(|r| r.as_str()),
        sid: user.session.map(|s| s.to_string()),
    };
    key.sign("identity+jwt", &claims)
}
