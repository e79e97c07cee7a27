//! Account deletion for the signed-in user: schedule (202), cancel, status.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::extract::{AuthUser, JsonBody};
use super::{rfc3339, ApiState};
use crate::accounts::Client;
use crate::error::GatewayError;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteBody {
    password: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeletionSchedule {
    /// When the account will be deleted; `null` when nothing is scheduled.
    #[schema(format = DateTime)]
    scheduled_for: Option<String>,
}

#[utoipa::path(post, operation_id = "schedule_deletion", path = "/auth/account/delete",
    summary = "Schedule deletion after the grace period; every session ends",
    request_body = DeleteBody,
    security(("bearer" = [])),
    responses((status = 202, description = "Scheduled", body = DeletionSchedule)))]
pub async fn schedule(
    State(state): State<Arc<ApiState>>,
    client: Client,
    user: AuthUser,
    JsonBody(body): JsonBody<DeleteBody>,
) -> Result<Response, GatewayError> {
    let when = state
        .accounts
        .schedule_deletion(user.id()?, &body.password, &client)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(DeletionSchedule {
            scheduled_for: Some(rfc3339(when)),
        }),
    )
        .into_response())
}

#[utoipa::path(post, operation_id = "cancel_deletion", path = "/auth/account/delete/cancel", summary = "Cancel a scheduled deletion",
    security(("bearer" = [])),
    responses((status = 204, description = "Cancelled")))]
pub async fn cancel(
    State(state): State<Arc<ApiState>>,
    client: Client,
    user: AuthUser,
) -> Result<Response, GatewayError> {
    state.accounts.cancel_deletion(user.id()?, &client).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(get, operation_id = "deletion_status", path = "/auth/account/delete", summary = "When the account will be deleted",
    security(("bearer" = [])),
    responses((status = 200, description = "The schedule", body = DeletionSchedule)))]
pub async fn status(
    State(state): State<Arc<ApiState>>,
    user: AuthUser,
) -> Result<Response, GatewayError> {
    let when = state.accounts.deletion_status(user.id()?).await?;
    Ok(Json(DeletionSchedule {
        scheduled_for: when.map(rfc3339),
    })
    .into_response())
}
