//! Password reset and email verification: the mail-requesting endpoints
//! answer 202 whatever the address; the token-spending ones 204.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::auth::valid_email;
use super::extract::JsonBody;
use super::ApiState;
use crate::accounts::Client;
use crate::error::GatewayError;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailBody {
    email: String,
}

impl EmailBody {
    fn checked(&self) -> Result<&str, GatewayError> {
        valid_email(&self.email).map_err(|m| GatewayError::validation("email", m))?;
        Ok(&self.email)
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    token: String,
    new_password: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    token: String,
}

#[utoipa::path(post, path = "/auth/forgot-password",
    summary = "Mail a password-reset link (202 whether or not the address has an account)",
    request_body = EmailBody,
    responses((status = 202, description = "Accepted")))]
pub async fn forgot_password(
    State(state): State<Arc<ApiState>>,
    client: Client,
    JsonBody(body): JsonBody<EmailBody>,
) -> Result<Response, GatewayError> {
    state
        .accounts
        .forgot_password(body.checked()?, &client)
        .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

#[utoipa::path(post, path = "/auth/reset-password",
    summary = "Set a new password with a mailed token; every session ends",
    request_body = ResetBody,
    responses((status = 204, description = "Password set")))]
pub async fn reset_password(
    State(state): State<Arc<ApiState>>,
    client: Client,
    JsonBody(body): JsonBody<ResetBody>,
) -> Result<Response, GatewayError> {
    state
        .accounts
        .reset_password(&body.token, &body.new_password, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(post, path = "/auth/resend-verification",
    summary = "Mail a new verification link (202 whatever the address)",
    request_body = EmailBody,
    responses((status = 202, description = "Accepted")))]
pub async fn resend_verification(
    State(state): State<Arc<ApiState>>,
    client: Client,
    JsonBody(body): JsonBody<EmailBody>,
) -> Result<Response, GatewayError> {
    state
        .accounts
        .resend_verification(body.checked()?, &client)
        .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

#[utoipa::path(post, path = "/auth/verify-email",
    summary = "Confirm the address a mailed token was sent to",
    request_body = TokenBody,
    responses((status = 204, description = "Verified")))]
pub async fn verify_email(
    State(state): State<Arc<ApiState>>,
    client: Client,
    JsonBody(body): JsonBody<TokenBody>,
) -> Result<Response, GatewayError> {
    state.accounts.verify_email(&body.token, &client).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
