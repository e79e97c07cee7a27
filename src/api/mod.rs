//! The account API under `/auth` (DESIGN.md §6), served in-process: the
//! gateway hands the request to this axum router as a tower service — no
//! second listener (`gateway::bridge` does the handing). Handlers are thin;
//! the logic is in `accounts`.
//!
//! - `auth`: register, login, token (RFC 6749), refresh, logout
//! - `me`: profile, password change, sessions
//! - `recovery`: forgot/reset password, verify email (mailed tokens)
//! - `mfa`: TOTP setup, enable, disable
//! - `account`: scheduled account deletion
//! - `api_keys`: create, list, revoke and rotate API keys
//! - `orgs`: organizations and their members
//! - `admin`: users and the audit log (superusers, re-checked in the DB)
//! - `openapi`: the OpenAPI document of these routes

mod account;
mod admin;
mod api_keys;
mod auth;
pub mod extract;
mod me;
mod mfa;
mod openapi;
mod orgs;
mod paging;
mod recovery;
pub use crate::runtime;

pub use crate::accounts::clock::rfc3339;

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::accounts::Accounts;
use crate::authn::Authenticator;
use crate::error::GatewayError;
use crate::store::durability;
use crate::store::users::User;

pub struct ApiState {
    pub accounts: Arc<Accounts>,
    pub authenticator: Arc<Authenticator>,
}

pub fn router(state: Arc<ApiState>) -> Router {
    let (router, _) = routes().split_for_parts();
    router
        .fallback(|| async { GatewayError::NotFound("endpoint") })
        .method_not_allowed_fallback(openapi::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            durable_writes,
        ))
        .with_state(state)
}

/// Every route with its handler; the handlers' `#[utoipa::path]`
/// attributes give both the methods a path is routed for and its OpenAPI
/// operation, so the document cannot miss or misdescribe a route.
fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::token))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(me::get_me, me::patch_me))
        .routes(routes!(me::change_password))
        .routes(routes!(recovery::forgot_password))
        .routes(routes!(recovery::reset_password))
        .routes(routes!(recovery::verify_email))
        .routes(routes!(recovery::resend_verification))
        .routes(routes!(mfa::setup))
        .routes(routes!(mfa::enable))
        .routes(routes!(mfa::disable))
        .routes(routes!(account::status, account::schedule))
        .routes(routes!(account::cancel))
        .routes(routes!(me::list_sessions, me::revoke_other_sessions))
        .routes(routes!(me::revoke_session))
        .routes(routes!(api_keys::list, api_keys::create))
        .routes(routes!(api_keys::revoke))
        .routes(routes!(api_keys::rotate))
        .routes(routes!(orgs::list, orgs::create))
        .routes(routes!(orgs::members, orgs::add_member))
        .routes(routes!(orgs::update_member, orgs::remove_member))
        .routes(routes!(admin::list_users))
        .routes(routes!(admin::update_user))
        .routes(routes!(admin::audit))
        .routes(routes!(openapi::document))
}

/// A request that wrote is answered only once its writes are on disk
/// (SQLite's group commit, `store::durability`); when they cannot be made
/// durable, the answer is a 503 instead. A request that wrote nothing —
/// whatever its method, e.g. an anonymous 401, 405 or 422 — is answered at
/// once and never counts among the writers that share a sync.
async fn durable_writes(
    axum::extract::State(state): axum::extract::State<Arc<ApiState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (response, writes) = durability::tracking(next.run(request)).await;
    if !writes.any() {
        return response;
    }
    // A request that wrote has opened the pool.
    let Some(db) = state.accounts.opened_db() else {
        return response;
    };
    let synced = db.sync().await;
    drop(writes);
    match synced {
        Ok(()) => response,
        Err(e) => GatewayError::from(e).into_response(),
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        if let Some(cause) = self.log_cause() {
            tracing::error!(code = self.code(), cause, "account API error");
        }
        let mut resp = (
            http::StatusCode::from_u16(self.status())
                .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR),
            [(http::header::CONTENT_TYPE, "application/problem+json")],
            self.body(),
        )
            .into_response();
        for (name, value) in self.headers() {
            if let Ok(v) = http::HeaderValue::from_str(&value) {
                resp.headers_mut().append(name, v);
            }
        }
        resp
    }
}

/// Field checks for a new account (registration and `user create`).
pub fn validate_new_user(
    config: &crate::config::Config,
    email: &str,
    username: Option<&str>,
    password: &str,
) -> Result<(), GatewayError> {
    auth::valid_email(email).map_err(|m| GatewayError::validation("email", m))?;
    if let Some(u) = username {
        auth::valid_username(u).map_err(|m| GatewayError::validation("username", m))?;
    }
    config
        .accounts
        .password
        .check(password)
        .map_err(|m| GatewayError::validation("password", m))
}

/// The public view of a user (never the password hash).
#[derive(Serialize, utoipa::ToSchema)]
pub struct UserView {
    #[schema(format = Uuid)]
    pub id: String,
    pub email: String,
    pub username: Option<String>,
    pub roles: Vec<String>,
    pub is_active: bool,
    pub is_superuser: bool,
    pub email_verified: bool,
    pub mfa_enabled: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When a scheduled deletion happens; absent when none is scheduled.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub deletion_scheduled_for: Option<String>,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id.to_string(),
            email: u.email.clone(),
            username: u.username.clone(),
            roles: u.roles.clone(),
            is_active: u.is_active,
            is_superuser: u.is_superuser,
            email_verified: u.email_verified,
            mfa_enabled: u.mfa_enabled(),
            created_at: rfc3339(u.created_at),
            deletion_scheduled_for: u.deletion_scheduled_for.map(rfc3339),
        }
    }
}
