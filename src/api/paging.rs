//! Cursor paging for lists: `?limit=&cursor=` in, `{"items": [...],
//! "next_cursor": "…" | null}` out (DESIGN.md §10 Shapes).

use axum::extract::Query;
use serde::{Deserialize, Serialize};

use crate::error::GatewayError;

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PagingQuery {
    /// Items per page, 1–200 (default 50).
    #[serde(default)]
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    cursor: Option<String>,
}

/// `?limit=&cursor=`, validated: limit 1–200 (default 50), cursor an id
/// returned by the previous page.
pub struct Paging {
    pub limit: u32,
    pub cursor: Option<uuid::Uuid>,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Paging {
    type Rejection = GatewayError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let Query(q) = Query::<PagingQuery>::from_request_parts(parts, state)
            .await
            .map_err(|e| GatewayError::validation("query", e.body_text()))?;
        let limit = match q.limit {
            None => DEFAULT_LIMIT,
            Some(n) if (1..=MAX_LIMIT).contains(&n) => n,
            Some(_) => {
                return Err(GatewayError::validation(
                    "limit",
                    format!("must be between 1 and {MAX_LIMIT}"),
                ))
            }
        };
        let cursor = q
            .cursor
            .as_deref()
            .map(|c| {
                uuid::Uuid::parse_str(c).map_err(|_| {
                    GatewayError::validation("cursor", "is not a cursor from this API")
                })
            })
            .transpose()?;
        Ok(Paging { limit, cursor })
    }
}

/// A page of a list: `{"items": [...], "next_cursor": "…" | null}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page from `rows` fetched with `limit + 1`: the extra row only says
    /// that there is a next page, whose cursor is the last item's id.
    pub fn from_overfetch<R>(
        rows: Vec<R>,
        limit: u32,
        view: impl Fn(R) -> T,
        cursor_of: impl Fn(&T) -> String,
    ) -> Page<T> {
        let more = rows.len() > limit as usize;
        let items: Vec<T> = rows.into_iter().take(limit as usize).map(view).collect();
        let next_cursor = if more {
            items.last().map(cursor_of)
        } else {
            None
        };
        Page { items, next_cursor }
    }
}
