//! `/auth/orgs`: create and list one's orgs, and manage members. An org the
//! caller does not belong to is 404 everywhere (no existence leak).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::extract::{AuthUser, JsonBody};
use super::paging::{Page, Paging, PagingQuery};
use super::{rfc3339, ApiState};
use crate::accounts::orgs::NewMember;
use crate::accounts::Client;
use crate::error::GatewayError;
use crate::principal::OrgRole;
use crate::store::orgs::{Member, Membership};

#[derive(Serialize, utoipa::ToSchema)]
pub struct OrgView {
    #[schema(format = Uuid)]
    id: String,
    name: String,
    /// owner, admin, member or viewer
    role: &'static str,
    #[schema(format = DateTime)]
    created_at: String,
}

impl From<Membership> for OrgView {
    fn from(m: Membership) -> Self {
        OrgView {
            id: m.org_id.to_string(),
            name: m.name,
            role: m.role.as_str(),
            created_at: rfc3339(m.created_at),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MemberView {
    #[schema(format = Uuid)]
    user_id: String,
    email: String,
    username: Option<String>,
    /// owner, admin, member or viewer
    role: &'static str,
    #[schema(format = DateTime)]
    joined_at: String,
}

impl From<Member> for MemberView {
    fn from(m: Member) -> Self {
        MemberView {
            user_id: m.user_id.to_string(),
            email: m.email,
            username: m.username,
            role: m.role.as_str(),
            joined_at: rfc3339(m.joined_at),
        }
    }
}

fn uuid_or_404(id: &str, what: &'static str) -> Result<Uuid, GatewayError> {
    Uuid::parse_str(id).map_err(|_| GatewayError::NotFound(what))
}

fn role(text: &str) -> Result<OrgRole, GatewayError> {
    OrgRole::parse(text)
        .ok_or_else(|| GatewayError::validation("role", "must be owner, admin, member or viewer"))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrg {
    name: String,
}

#[utoipa::path(post, operation_id = "create_org", path = "/auth/orgs", summary = "Create an organization (caller becomes owner)",
    request_body = CreateOrg,
    security(("bearer" = [])),
    responses((status = 201, description = "The organization", body = OrgView)))]
pub async fn create(
    State(state): State<Arc<ApiState>>,
    client: Client,
    user: AuthUser,
    JsonBody(body): JsonBody<CreateOrg>,
) -> Result<Response, GatewayError> {
    let org = state
        .accounts
        .create_org(user.id()?, &body.name, &client)
        .await?;
    Ok((StatusCode::CREATED, Json(OrgView::from(org))).into_response())
}

#[utoipa::path(get, operation_id = "list_orgs", path = "/auth/orgs", summary = "The caller's organizations",
    security(("bearer" = [])),
    responses((status = 200, description = "One page holding every organization", body = Page<OrgView>)))]
pub async fn list(
    State(state): State<Arc<ApiState>>,
    user: AuthUser,
) -> Result<Response, GatewayError> {
    let items = state
        .accounts
        .my_orgs(user.id()?)
        .await?
        .into_iter()
        .map(OrgView::from)
        .collect();
    Ok(Json(Page::<OrgView> {
        items,
        next_cursor: None,
    })
    .into_response())
}

#[utoipa::path(get, operation_id = "list_members", path = "/auth/orgs/{id}/members", summary = "Members of an organization",
    params(("id" = Uuid, Path, description = "An organization id"), PagingQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "A page of members", body = Page<MemberView>)))]
pub async fn members(
    State(state): State<Arc<ApiState>>,
    user: AuthUser,
    Path(org): Path<String>,
    paging: Paging,
) -> Result<Response, GatewayError> {
    let org = uuid_or_404(&org, "organization")?;
    let members = state
        .accounts
        .members(org, user.id()?, paging.limit + 1, paging.cursor)
        .await?;
    let page = Page::from_overfetch(members, paging.limit, MemberView::from, |m| {
        m.user_id.clone()
    });
    Ok(Json(page).into_response())
}

/// Exactly one of `email` and `user_id`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    user_id: Option<Uuid>,
    role: String,
}

#[utoipa::path(post, path = "/auth/orgs/{id}/members", summary = "Add a member (admin or owner)",
    params(("id" = Uuid, Path, description = "An organization id")),
    request_body = AddMember,
    security(("bearer" = [])),
    responses((status = 201, description = "The member", body = MemberView)))]
pub async fn add_member(
    State(state): State<Arc<ApiState>>,
    client: Client,
    user: AuthUser,
    Path(org): Path<String>,
    JsonBody(body): JsonBody<AddMember>,
) -> Result<Response, GatewayError> {
    let org = uuid_or_404(&org, "organization")?;
    let role = role(&body.role)?;
    let who = match (&body.email, body.user_id) {
        (Some(email), None) if email.contains('@') => NewMember::Email(email),
        (Some(_), None) => {
            return Err(GatewayError::validation("email", "is not an email address"))
        }
        (None, Some(id)) => NewMember::UserId(id),
        _ => {
            return Err(GatewayError::validation(
                "email",
                "give exactly one of email or user_id",
            ))
        }
    };
    let member = state
        .accounts
        .add_member(org, user.id()?, who, role, &client)
        .await?;
    Ok((StatusCode::CREATED, Json(MemberView::from(member))).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchMember {
    role: String,
}

#[utoipa::path(patch, path = "/auth/orgs/{id}/members/{user_id}", summary = "Change a member's role",
    params(("id" = Uuid, Path, description = "An organization id"),
        ("user_id" = Uuid, Path, description = "The member's user id")),
    request_body = PatchMember,
    security(("bearer" = [])),
    responses((status = 200, description = "The member", body = MemberView)))]
pub async fn update_member(
    State(state): State<Arc<ApiState>>,
    client: Client,
    user: AuthUser,
    Path((org, member)): Path<(String, String)>,
    JsonBody(body): JsonBody<PatchMember>,
) -> Result<Response, GatewayError> {
    let org = uuid_or_404(&org, "organization")?;
    let member = uuid_or_404(&member, "member")?;
    let role = role(&body.role)?;
    let updated = state
        .accounts
        .set_member_role(org, user.id()?, member, role, &client)
        .await?;
    Ok(Json(MemberView::from(updated)).into_response())
}

#[utoipa::path(delete, path = "/auth/orgs/{id}/members/{user_id}", summary = "Remove a member, or leave",
    params(("id" = Uuid, Path, description = "An organization id"),
        ("user_id" = Uuid, Path, description = "The member's user id")),
    security(("bearer" = [])),
    responses((status = 204, description = "Removed")))]
pub async fn remove_member(
    State(state): State<Arc<ApiState>>,
    client: Client,
    user: AuthUser,
    Path((org, member)): Path<(String, String)>,
) -> Result<Response, GatewayError> {
    let org = uuid_or_404(&org, "organization")?;
    let member = uuid_or_404(&member, "member")?;
    state
        .accounts
        .remove_member(org, user.id()?, member, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
