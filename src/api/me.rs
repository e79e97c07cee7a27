//! The caller's own account: profile, password change, sessions.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::auth::{valid_email, valid_username};
use super::extract::{AuthUser, JsonBody};
use super::paging::Page;
use super::{rfc3339, ApiState, UserView};
use crate::accounts::Client;
use crate::error::GatewayError;
use crate::store::users::{self, User};
use crate::store::{audit, sessions};

async fn current(state: &ApiState, user: &AuthUser) -> Result<User, GatewayError> {
    let db = state.accounts.db().await?;
    state.accounts.signed_in_user(db, user.id()?).await
}

/// The caller's profile with their organizations.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Me {
    #[serde(flatten)]
    user: UserView,
    orgs: Vec<super::orgs::OrgView>,
}

#[utoipa::path(get, path = "/auth/me", summary = "The caller's profile",
    security(("bearer" = [])),
    responses((status = 200, description = "The profile", body = Me)))]
pub async fn get_me(
    State(state): State<Arc<ApiState>>,
    user: AuthUser,
) -> Result<Response, GatewayError> {
    let u = current(&state, &user).await?;
    let orgs = state.accounts.my_orgs(u.id).await?;
    Ok(Json(Me {
        user: UserView::from(&u),
        orgs: orgs.into_iter().map(Into::into).collect(),
    })
    .into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchMe {
    /// `null` clears the username; absent leaves it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    username: Option<Option<String>>,
    /// A new address: unverified until the mail sent to it is answered.
    #[serde(default)]
    email: Option<String>,
    /// Required with `email`.
    #[serde(default)]
    current_password: Option<String>,
}

/// Distinguishes an explicit `null` (Some(None)) from an absent field (None).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[utoipa::path(patch, path = "/auth/me", summary = "Change the caller's username or email",
    request_body = PatchMe,
    security(("bearer" = [])),
    responses((status = 200, description = "The updated profile", body = Me)))]
pub async fn patch_me(
    State(state): State<Arc<ApiState>>,
    user: AuthUser,
    JsonBody(body): JsonBody<PatchMe>,
) -> Result<Response, GatewayError> {
    let accounts = &state.accounts;
    let db = accounts.db().await?;
    let id = user.id()?;
    if let Some(Some(u)) = &body.username {
        valid_username(u).map_err(|m| GatewayError::validation("username", m))?;
    }
    let new_email = match &body.email {
        Some(email) => {
            valid_email(email).map_err(|m| GatewayError::validation("email", m))?;
            let me = current(&state, &user).await?;
            let password = body.current_password.as_deref().ok_or_else(|| {
                GatewayError::validation("current_password", "is required to change the email")
            })?;
            accounts
                .confirm_password(&me, password, "current_password")
                .await?;
            (users::email_key(email) != users::email_key(&me.email)).then_some(email)
        }
        None => None,
    };
    let change = users::ProfileChange {
        username: body.username.as_ref().map(|u| u.as_deref()),
        email: new_email.map(String::as_str),
    };
    users::update_profile(db, id, &change, chrono::Utc::now()).await?;
    if new_email.is_some() {
        // Cached API keys carry the owner's address.
        accounts.keys.evict_owner(id);
        if let Some(updated) = users::by_id(db, id).await? {
            accounts.send_verification(updated);
        }
    }
    get_me(State(state), user).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    current_password: String,
    new_password: String,
}

#[utoipa::path(post, path = "/auth/change-password",
    summary = "Change password; other sessions end",
    request_body = ChangePassword,
    security(("bearer" = [])),
    responses((status = 204, description = "Changed")))]
pub async fn change_password(
    State(state): State<Arc<ApiState>>,
    client: Client,
    user: AuthUser,
    JsonBody(body): JsonBody<ChangePassword>,
) -> Result<Response, GatewayError> {
    let accounts = &state.accounts;
    let u = current(&state, &user).await?;
    accounts
        .confirm_password(&u, &body.current_password, "current_password")
        .await?;
    accounts
        .config
        .accounts
        .password
        .check(&body.new_password)
        .map_err(|m| GatewayError::validation("new_password", m))?;
    let hash = accounts.hasher.hash(&body.new_password).await?;
    let db = accounts.db().await?;
    users::set_password(db, u.id, &hash, chrono::Utc::now()).await?;
    audit::record(
        db,
        "password_changed",
        Some(u.id),
        Some(u.id),
        &client.origin(),
        serde_json::json!({}),
    )
    .await;
    accounts
        .end_all_sessions(
            u.id,
            user.session(),
            Some(u.id),
            "sessions_revoked",
            &client,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionView {
    #[schema(format = Uuid)]
    id: String,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    last_used_at: String,
    #[schema(format = DateTime)]
    expires_at: String,
    ip: Option<String>,
    user_agent: Option<String>,
    current: bool,
}

#[utoipa::path(get, path = "/auth/sessions", summary = "The caller's live sessions",
    security(("bearer" = [])),
    responses((status = 200, description = "One page holding every live session", body = Page<SessionView>)))]
pub async fn list_sessions(
    State(state): State<Arc<ApiState>>,
    user: AuthUser,
) -> Result<Response, GatewayError> {
    let db = state.accounts.db().await?;
    let current = user.session();
    let items = sessions::list_live(db, user.id()?, chrono::Utc::now())
        .await?
        .into_iter()
        .map(|s| SessionView {
            id: s.id.to_string(),
            created_at: rfc3339(s.created_at),
            last_used_at: rfc3339(s.last_used_at),
            expires_at: rfc3339(s.expires_at),
            ip: s.ip,
            user_agent: s.user_agent,
            current: Some(s.id) == current,
        })
        .collect();
    Ok(Json(Page {
        items,
        next_cursor: None,
    })
    .into_response())
}

#[utoipa::path(delete, path = "/auth/sessions/{id}", summary = "End one session",
    params(("id" = Uuid, Path, description = "A session id")),
    security(("bearer" = [])),
    responses((status = 204, description = "Ended")))]
pub async fn revoke_session(
    State(state): State<Arc<ApiState>>,
    client: Client,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Response, GatewayError> {
    let id = uuid::Uuid::parse_str(&id).map_err(|_| GatewayError::NotFound("session"))?;
    if !state
        .accounts
        .end_session(user.id()?, id, "session_revoked", &client)
        .await?
    {
        return Err(GatewayError::NotFound("session"));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(delete, path = "/auth/sessions", summary = "End every other session",
    security(("bearer" = [])),
    responses((status = 204, description = "Ended")))]
pub async fn revoke_other_sessions(
    State(state): State<Arc<ApiState>>,
    client: Client,
    user: AuthUser,
) -> Result<Response, GatewayError> {
    let id = user.id()?;
    state
        .accounts
        .end_all_sessions(id, user.session(), Some(id), "sessions_revoked", &client)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
