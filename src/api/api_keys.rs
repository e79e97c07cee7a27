//! `/auth/api-keys`: create (the key is shown once), list without secrets,
//! revoke, rotate. Only a user's access token manages keys: an API key is
//! refused here (`credential_not_accepted`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::extract::{AuthUser, JsonBody};
use super::paging::{Page, Paging, PagingQuery};
use super::{rfc3339, ApiState};
use crate::accounts::api_keys::KeyRequest;
use crate::accounts::Client;
use crate::error::GatewayError;
use crate::store::api_keys::ApiKey;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    name: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    org_id: Option<Uuid>,
    #[serde(default)]
    client_id: Option<Uuid>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct KeyView {
    #[schema(format = Uuid)]
    id: String,
    name: String,
    /// Only in the answer that creates or rotates the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    prefix: String,
    scopes: Vec<String>,
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    #[schema(format = Uuid)]
    org_id: Option<String>,
    #[schema(format = Uuid)]
    client_id: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    last_used_at: Option<String>,
}

impl KeyView {
    fn new(k: ApiKey, secret: Option<String>) -> KeyView {
        KeyView {
            id: k.id.to_string(),
            name: k.name,
            key: secret,
            prefix: k.prefix,
            scopes: k.scopes,
            expires_at: k.expires_at.map(rfc3339),
            org_id: k.org_id.map(|o| o.to_string()),
            client_id: k.client_id.map(|c| c.to_string()),
            created_at: rfc3339(k.created_at),
            last_used_at: k.last_used_at.map(rfc3339),
        }
    }
}

fn key_id(id: &str) -> Result<Uuid, GatewayError> {
    Uuid::parse_str(id).map_err(|_| GatewayError::NotFound("API key"))
}

#[utoipa::path(post, operation_id = "create_api_key", path = "/auth/api-keys", summary = "Create an API key (shown once)",
    request_body = CreateKey,
    security(("bearer" = [])),
    responses((status = 201, description = "The key, with its secret `key`", body = KeyView)))]
pub async fn create(
    State(state): State<Arc<ApiState>>,
    client: Client,
    user: AuthUser,
    JsonBody(body): JsonBody<CreateKey>,
) -> Result<Response, GatewayError> {
    let request = KeyRequest {
        name: body.name,
        scopes: body.scopes,
        expires_at: body.expires_at,
        org_id: body.org_id,
        client_id: body.client_id,
    };
    let (key, secret) = state
        .accounts
        .create_api_key(user.id()?, request, &client)
        .await?;
    Ok((StatusCode::CREATED, Json(KeyView::new(key, Some(secret)))).into_response())
}

#[utoipa::path(get, operation_id = "list_api_keys", path = "/auth/api-keys", summary = "The caller's API keys, without secrets",
    params(PagingQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "A page of keys", body = Page<KeyView>)))]
pub async fn list(
    State(state): State<Arc<ApiState>>,
    user: AuthUser,
    paging: Paging,
) -> Result<Response, GatewayError> {
    let keys = state
        .accounts
        .api_keys(user.id()?, paging.limit + 1, paging.cursor)
        .await?;
    let page = Page::from_overfetch(
        keys,
        paging.limit,
        |k| KeyView::new(k, None),
        |v| v.id.clone(),
    );
    Ok(Json(page).into_response())
}

#[utoipa::path(delete, operation_id = "revoke_api_key", path = "/auth/api-keys/{id}", summary = "Revoke an API key",
    params(("id" = Uuid, Path, description = "An API key id")),
    security(("bearer" = [])),
    responses((status = 204, description = "Revoked")))]
pub async fn revoke(
    State(state): State<Arc<ApiState>>,
    client: Client,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Response, GatewayError> {
    state
        .accounts
        .revoke_api_key(user.id()?, key_id(&id)?, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(post, operation_id = "rotate_api_key", path = "/auth/api-keys/{id}/rotate", summary = "Replace an API key; the old one dies",
    params(("id" = Uuid, Path, description = "An API key id")),
    security(("bearer" = [])),
    responses((status = 200, description = "The new key, with its secret `key`", body = KeyView)))]
pub async fn rotate(
    State(state): State<Arc<ApiState>>,
    client: Client,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Response, GatewayError> {
    let (key, secret) = state
        .accounts
        .rotate_api_key(user.id()?, key_id(&id)?, &client)
        .await?;
    Ok(Json(KeyView::new(key, Some(secret))).into_response())
}
