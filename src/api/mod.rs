//! The account API under `/auth` (DESIGN.md §6), served in-process: the
//! gateway hands the request to this axum router as a tower service — no
//! second listener. Handlers are thin; the logic is in `accounts`.
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
pub mod bridge;
pub mod extract;
mod me;
mod mfa;
mod openapi;
mod orgs;
mod paging;
mod recovery;
pub mod runtime;

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::Router;
use serde::Serialize;

use crate::accounts::Accounts;
use crate::authn::Authenticator;
use crate::error::GatewayError;
use crate::store::users::User;
use crate::store::Db;

pub struct ApiState {
    pub accounts: Arc<Accounts>,
    pub authenticator: Arc<Authenticator>,
}

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/auth/register", post(auth::register))
        .route("/auth/login", post(auth::login))
        .route("/auth/token", post(auth::token))
        .route("/auth/refresh", post(auth::refresh))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/me", get(me::get_me).patch(me::patch_me))
        .route("/auth/change-password", post(me::change_password))
        .route("/auth/forgot-password", post(recovery::forgot_password))
        .route("/auth/reset-password", post(recovery::reset_password))
        .route("/auth/verify-email", post(recovery::verify_email))
        .route(
            "/auth/resend-verification",
            post(recovery::resend_verification),
        )
        .route("/auth/mfa/totp/setup", post(mfa::setup))
        .route("/auth/mfa/totp/enable", post(mfa::enable))
        .route("/auth/mfa/totp/disable", post(mfa::disable))
        .route(
            "/auth/account/delete",
            get(account::status).post(account::schedule),
        )
        .route("/auth/account/delete/cancel", post(account::cancel))
        .route(
            "/auth/sessions",
            get(me::list_sessions).delete(me::revoke_other_sessions),
        )
        .route("/auth/sessions/{id}", delete(me::revoke_session))
        .route("/auth/api-keys", get(api_keys::list).post(api_keys::create))
        .route("/auth/api-keys/{id}", delete(api_keys::revoke))
        .route("/auth/api-keys/{id}/rotate", post(api_keys::rotate))
        .route("/auth/orgs", get(orgs::list).post(orgs::create))
        .route(
            "/auth/orgs/{id}/members",
            get(orgs::members).post(orgs::add_member),
        )
        .route(
            "/auth/orgs/{id}/members/{user_id}",
            patch(orgs::update_member).delete(orgs::remove_member),
        )
        .route("/auth/admin/users", get(admin::list_users))
        .route("/auth/admin/users/{id}", patch(admin::update_user))
        .route("/auth/admin/audit", get(admin::audit))
        .route("/auth/openapi.json", get(openapi::document))
        .fallback(|| async { GatewayError::NotFound("endpoint") })
        .method_not_allowed_fallback(|| async {
            GatewayError::MethodNotAllowed("see /auth/openapi.json")
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            durable_writes,
        ))
        .with_state(state)
}

/// A request that may have written is answered only once its writes are on
/// disk (SQLite's group commit, `store::durability`); when they cannot be
/// made durable, the answer is a 503 instead.
async fn durable_writes(
    axum::extract::State(state): axum::extract::State<Arc<ApiState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let safe = matches!(
        *request.method(),
        http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
    );
    if safe {
        return next.run(request).await;
    }
    let _writing = state.accounts.opened_db().and_then(Db::writing);
    let response = next.run(request).await;
    // The first request opens the pool; look again.
    let Some(db) = state.accounts.opened_db() else {
        return response;
    };
    match db.sync().await {
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
#[derive(Serialize)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub username: Option<String>,
    pub roles: Vec<String>,
    pub is_active: bool,
    pub is_superuser: bool,
    pub email_verified: bool,
    pub mfa_enabled: bool,
    pub created_at: String,
    /// When a scheduled deletion happens; absent when none is scheduled.
    #[serde(skip_serializing_if = "Option::is_none")]
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

pub fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
