//! Superuser endpoints: users and the audit log, with cursor paging.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::extract::{Admin, JsonBody};
use super::paging::{Page, Paging, PagingQuery};
use super::{rfc3339, ApiState, UserView};
use crate::accounts::Client;
use crate::error::GatewayError;
use crate::store::audit;
use crate::store::users::{self, AdminChange};

#[utoipa::path(get, path = "/auth/admin/users", summary = "List users (superuser)",
    params(PagingQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "A page of users", body = Page<UserView>)))]
pub async fn list_users(
    State(state): State<Arc<ApiState>>,
    _admin: Admin,
    paging: Paging,
) -> Result<Response, GatewayError> {
    let db = state.accounts.db().await?;
    let users = users::list(db, paging.limit + 1, paging.cursor).await?;
    let page = Page::from_overfetch(
        users,
        paging.limit,
        |u| UserView::from(&u),
        |v| v.id.clone(),
    );
    Ok(Json(page).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[serde(default)]
    is_active: Option<bool>,
    #[serde(default)]
    is_superuser: Option<bool>,
    #[serde(default)]
    roles: Option<Vec<String>>,
}

#[utoipa::path(patch, path = "/auth/admin/users/{id}",
    summary = "Change is_active, is_superuser, roles (superuser)",
    params(("id" = Uuid, Path, description = "A user id")),
    request_body = UserPatch,
    security(("bearer" = [])),
    responses((status = 200, description = "The updated user", body = UserView)))]
pub async fn update_user(
    State(state): State<Arc<ApiState>>,
    Admin(admin): Admin,
    client: Client,
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<UserPatch>,
) -> Result<Response, GatewayError> {
    let id = uuid::Uuid::parse_str(&id).map_err(|_| GatewayError::NotFound("user"))?;
    if let Some(roles) = &patch.roles {
        if roles.iter().any(|r| {
            r.is_empty()
                || r == "superuser"
                || !r.bytes().all(|b| b.is_ascii_graphic() && b != b',')
        }) {
            return Err(GatewayError::validation("roles", "role names are non-empty labels without spaces or commas; superuser is is_superuser"));
        }
    }
    let db = state.accounts.db().await?;
    let before = users::by_id(db, id)
        .await?
        .ok_or(GatewayError::NotFound("user"))?;
    let change = AdminChange {
        is_active: patch.is_active,
        is_superuser: patch.is_superuser,
        roles: patch.roles,
    };
    let after = users::admin_update(db, id, &change, chrono::Utc::now())
        .await?
        .ok_or(GatewayError::NotFound("user"))?;
    audit::record(
        db,
        "admin_user_updated",
        Some(id),
        Some(admin.id),
        &client.origin(),
        serde_json::json!({"is_active": after.is_active, "is_superuser": after.is_superuser, "roles": after.roles}),
    )
    .await;
    // API keys act with their owner's current roles: look them up again.
    state.accounts.keys.evict_owner(id);
    // Tokens carry roles and the superuser flag: any loss of rights ends
    // the user's sessions so old tokens stop at once.
    let lost_rights = (before.is_active && !after.is_active)
        || (before.is_superuser && !after.is_superuser)
        || before.roles.iter().any(|r| !after.roles.contains(r));
    if lost_rights {
        state
            .accounts
            .end_all_sessions(id, None, Some(admin.id), "sessions_revoked", &client)
            .await?;
    }
    Ok(Json(UserView::from(&after)).into_response())
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditView {
    #[schema(format = Uuid)]
    id: String,
    #[schema(format = DateTime)]
    at: String,
    kind: String,
    #[schema(format = Uuid)]
    user_id: Option<String>,
    #[schema(format = Uuid)]
    actor_id: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    #[schema(value_type = Object)]
    detail: serde_json::Value,
}

#[utoipa::path(get, operation_id = "list_audit_events", path = "/auth/admin/audit",
    summary = "The audit log, newest first (superuser)",
    params(PagingQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "A page of audit events", body = Page<AuditView>)))]
pub async fn audit(
    State(state): State<Arc<ApiState>>,
    _admin: Admin,
    paging: Paging,
) -> Result<Response, GatewayError> {
    let db = state.accounts.db().await?;
    let events = audit::list(db, paging.limit + 1, paging.cursor).await?;
    let page = Page::from_overfetch(
        events,
        paging.limit,
        |e| AuditView {
            id: e.id.to_string(),
            at: rfc3339(e.at),
            kind: e.kind,
            user_id: e.user_id.map(|u| u.to_string()),
            actor_id: e.actor_id.map(|u| u.to_string()),
            ip: e.ip,
            user_agent: e.user_agent,
            detail: serde_json::from_str(&e.detail).unwrap_or_default(),
        },
        |v| v.id.clone(),
    );
    Ok(Json(page).into_response())
}
