//! Who is calling: the typed evidence the pipeline produces and everything
//! after it (authorization, rate limits, identity headers) reads. Never
//! rebuilt from headers.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use uuid::Uuid;

/// A user id: a UUID for users of this gateway, the `sub` claim for users of
/// a trusted external issuer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserId(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OrgId(pub Uuid);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(pub Uuid);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApiKeyId(pub Uuid);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for ApiKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Organization roles, ordered: owner > admin > member > viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OrgRole {
    Viewer,
    Member,
    Admin,
    Owner,
}

impl OrgRole {
    pub const ALL: [OrgRole; 4] = [
        OrgRole::Viewer,
        OrgRole::Member,
        OrgRole::Admin,
        OrgRole::Owner,
    ];

    pub fn parse(s: &str) -> Option<OrgRole> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OrgRole::Viewer => "viewer",
            OrgRole::Member => "member",
            OrgRole::Admin => "admin",
            OrgRole::Owner => "owner",
        }
    }
}

/// How the caller authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Jwt,
    ApiKey,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Jwt => "jwt",
            AuthMethod::ApiKey => "api_key",
        }
    }
}

/// A user authenticated by a verified access token.
#[derive(Debug, Clone, PartialEq)]
pub struct UserIdentity {
    pub user_id: UserId,
    pub issuer: String,
    pub email: Option<String>,
    /// Global roles (admin-assigned names, e.g. `user`).
    pub roles: Vec<String>,
    pub superuser: bool,
    pub orgs: HashMap<OrgId, OrgRole>,
    pub scopes: Vec<String>,
    pub session: Option<SessionId>,
    pub jti: String,
    /// `iat`, seconds since the epoch.
    pub issued_at: i64,
    /// `exp`, seconds since the epoch.
    pub expires_at: i64,
    /// Authentication methods (`pwd`, `otp`).
    pub amr: Vec<String>,
}

/// A request made with an API key: the key and its owner as they are now.
/// `owner` carries the owner's current global roles and superuser flag, the
/// key's scopes, and for an org-bound key the owner's current role in that
/// org (its only entry in `orgs`).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyIdentity {
    pub key_id: ApiKeyId,
    pub owner: UserIdentity,
    /// The org the key is bound to; every request is authorized in it.
    pub org: Option<OrgId>,
    pub client_id: Option<Uuid>,
    /// Seconds since the epoch; `None` never expires.
    pub expires_at: Option<i64>,
}

/// The caller of one request.
#[derive(Debug, Clone, Default)]
pub enum Principal {
    #[default]
    Anonymous,
    User(Arc<UserIdentity>),
    ApiKey(Arc<ApiKeyIdentity>),
}

impl Principal {
    /// The user the request acts for: the token's user, or the key's owner.
    pub fn user(&self) -> Option<&UserIdentity> {
        match self {
            Principal::User(u) => Some(u),
            Principal::ApiKey(k) => Some(&k.owner),
            Principal::Anonymous => None,
        }
    }

    pub fn api_key(&self) -> Option<&ApiKeyIdentity> {
        match self {
            Principal::ApiKey(k) => Some(k),
            _ => None,
        }
    }

    pub fn method(&self) -> Option<AuthMethod> {
        match self {
            Principal::User(_) => Some(AuthMethod::Jwt),
            Principal::ApiKey(_) => Some(AuthMethod::ApiKey),
            Principal::Anonymous => None,
        }
    }

    /// The org every request of this principal is authorized in (an
    /// org-bound API key's org).
    pub fn pinned_org(&self) -> Option<OrgId> {
        self.api_key().and_then(|k| k.org)
    }

    /// The id used in logs and per-user rate limits.
    pub fn id(&self) -> Option<&str> {
        self.user().map(|u| u.user_id.0.as_str())
    }
}
