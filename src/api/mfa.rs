//! TOTP enrollment for the signed-in user: setup → enable (recovery codes)
//! → disable.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::extract::{AuthUser, JsonBody};
use super::ApiState;
use crate::accounts::Client;
use crate::error::GatewayError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnableBody {
    code: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisableBody {
    password: String,
    code: String,
}

pub async fn setup(
    State(state): State<Arc<ApiState>>,
    user: AuthUser,
) -> Result<Response, GatewayError> {
    let setup = state.accounts.totp_setup(user.id()?).await?;
    // Shown once; the bridge marks every /auth answer `no-store`.
    Ok(Json(serde_json::json!({
        "secret": setup.secret,
        "otpauth_uri": setup.otpauth_uri,
    }))
    .into_response())
}

pub async fn enable(
    State(state): State<Arc<ApiState>>,
    client: Client,
    user: AuthUser,
    JsonBody(body): JsonBody<EnableBody>,
) -> Result<Response, GatewayError> {
    let codes = state
        .accounts
        .totp_enable(user.id()?, &body.code, &client)
        .await?;
    Ok(Json(serde_json::json!({ "recovery_codes": codes })).into_response())
}

pub async fn disable(
    State(state): State<Arc<ApiState>>,
    client: Client,
    user: AuthUser,
    JsonBody(body): JsonBody<DisableBody>,
) -> Result<Response, GatewayError> {
    state
        .accounts
        .totp_disable(user.id()?, &body.password, &body.code, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
