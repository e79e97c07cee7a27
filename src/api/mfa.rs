//! TOTP enrollment for the signed-in user: setup → enable (recovery codes)
//! → disable.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::extract::{AuthUser, JsonBody};
use super::ApiState;
use crate::accounts::Client;
use crate::error::GatewayError;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnableBody {
    code: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableBody {
    password: String,
    /// A TOTP code or a recovery code.
    code: String,
}

/// A new TOTP secret (SHA-1, 6 digits, 30 s), shown once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TotpSetup {
    secret: String,
    otpauth_uri: String,
}

/// Single-use recovery codes, shown once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RecoveryCodes {
    recovery_codes: Vec<String>,
}

#[utoipa::path(post, operation_id = "totp_setup", path = "/auth/mfa/totp/setup", summary = "Start TOTP enrollment",
    security(("bearer" = [])),
    responses((status = 200, description = "The secret to enroll", body = TotpSetup)))]
pub async fn setup(
    State(state): State<Arc<ApiState>>,
    user: AuthUser,
) -> Result<Response, GatewayError> {
    let setup = state.accounts.totp_setup(user.id()?).await?;
    // Shown once; the bridge marks every /auth answer `no-store`.
    Ok(Json(TotpSetup {
        secret: setup.secret,
        otpauth_uri: setup.otpauth_uri,
    })
    .into_response())
}

#[utoipa::path(post, operation_id = "totp_enable", path = "/auth/mfa/totp/enable", summary = "Turn TOTP on with a first code",
    request_body = EnableBody,
    security(("bearer" = [])),
    responses((status = 200, description = "TOTP is on", body = RecoveryCodes)))]
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
    Ok(Json(RecoveryCodes {
        recovery_codes: codes,
    })
    .into_response())
}

#[utoipa::path(post, operation_id = "totp_disable", path = "/auth/mfa/totp/disable", summary = "Turn TOTP off",
    request_body = DisableBody,
    security(("bearer" = [])),
    responses((status = 204, description = "TOTP is off")))]
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
