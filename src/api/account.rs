//! Account deletion for the signed-in user: schedule (202), cancel, status.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::extract::{AuthUser, JsonBody};
use super::{rfc3339, ApiState};
use crate::accounts::Client;
use crate::error::GatewayError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteBody {
    password: String,
}

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
        Json(serde_json::json!({ "scheduled_for": rfc3339(when) })),
    )
        .into_response())
}

pub async fn cancel(
    State(state): State<Arc<ApiState>>,
    client: Client,
    user: AuthUser,
) -> Result<Response, GatewayError> {
    state.accounts.cancel_deletion(user.id()?, &client).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn status(
    State(state): State<Arc<ApiState>>,
    user: AuthUser,
) -> Result<Response, GatewayError> {
    let when = state.accounts.deletion_status(user.id()?).await?;
    Ok(Json(serde_json::json!({ "scheduled_for": when.map(rfc3339) })).into_response())
}
