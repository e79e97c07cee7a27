//! Request extractors for the account API: the caller's address, the
//! authenticated user (same authenticator as proxied routes), an admin
//! re-checked in the database, and JSON bodies whose errors name the field.

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::ApiState;
use crate::accounts::Client;
use crate::error::GatewayError;
use crate::policy::AuthMode;
use crate::principal::UserIdentity;
use crate::store::users::{self, User};

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = GatewayError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Client>()
            .cloned()
            .ok_or_else(|| GatewayError::Internal("no client info on an API request".into()))
    }
}

/// A user authenticated by an access token (API keys are refused here).
pub struct AuthUser(pub Arc<UserIdentity>);

impl AuthUser {
    pub fn id(&self) -> Result<uuid::Uuid, GatewayError> {
        uuid::Uuid::parse_str(&self.0.user_id.0).map_err(|_| GatewayError::CredentialNotAccepted)
    }

    pub fn session(&self) -> Option<uuid::Uuid> {
        self.0.session.map(|s| s.0)
    }
}

impl FromRequestParts<Arc<ApiState>> for AuthUser {
    type Rejection = GatewayError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, Self::Rejection> {
        let auth = state
            .authenticator
            .authenticate(&parts.headers, AuthMode::Jwt)
            .await?;
        let user = auth
            .principal
            .user()
            .cloned()
            .ok_or(GatewayError::MissingCredentials)?;
        // Only this gateway's own users have accounts here.
        if user.issuer != state.accounts.config.tokens.issuer {
            return Err(GatewayError::CredentialNotAccepted);
        }
        Ok(AuthUser(Arc::new(user)))
    }
}

/// A superuser, re-checked in the database (not only the token claim).
pub struct Admin(pub User);

impl FromRequestParts<Arc<ApiState>> for Admin {
    type Rejection = GatewayError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, Self::Rejection> {
        let caller = AuthUser::from_request_parts(parts, state).await?;
        let db = state.accounts.db().await?;
        match users::by_id(db, caller.id()?).await? {
            Some(user) if user.is_superuser && user.is_active => Ok(Admin(user)),
            _ => Err(GatewayError::AdminRequired),
        }
    }
}

/// `application/json` body; malformed JSON is 400, a body that is not an
/// object or a missing or mistyped field is 422 naming it, another content
/// type is 415.
pub struct JsonBody<T>(pub T);

pub fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        let mime = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
    })
}

pub fn content_type(req: &Request) -> Option<&str> {
    req.headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}

/// Parses JSON bytes into `T`, classifying errors as the API promises.
/// Every body is a JSON object: serde would read an array into a struct
/// field by field (so `deny_unknown_fields` would mean nothing), hence any
/// other top-level value is 422 on `body` (malformed JSON stays 400).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, GatewayError> {
    let first = bytes
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    if first != Some(&b'{') {
        return match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            Ok(_) => Err(GatewayError::validation("body", "must be a JSON object")),
            Err(e) => Err(GatewayError::InvalidJson(e.to_string())),
        };
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_data() {
            let message = inner.to_string();
            // serde names missing fields only in the message.
            let field = match message.strip_prefix("missing field `") {
                Some(rest) => rest.split('`').next().unwrap_or("body").to_string(),
                None if path == "." => "body".to_string(),
                None => path,
            };
            GatewayError::validation(
                &field,
                message
                    .split(" at line")
                    .next()
                    .unwrap_or(&message)
                    .to_string(),
            )
        } else {
            GatewayError::InvalidJson(inner.to_string())
        }
    })
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = GatewayError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        if !is_json(content_type(&req)) {
            return Err(GatewayError::UnsupportedMediaType("application/json"));
        }
        let bytes = axum::body::to_bytes(req.into_body(), usize::MAX)
            .await
            .map_err(|e| GatewayError::InvalidJson(e.to_string()))?;
        parse_json(&bytes).map(JsonBody)
    }
}
