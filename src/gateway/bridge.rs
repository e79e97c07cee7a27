//! Hands a pingora request to the in-process axum router and writes its
//! answer back on the same connection. The body is read here, bounded by
//! `server.max_body_bytes` (inclusive): larger is 413 without reading on.

use axum::body::Body;
use axum::Router;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use tower::ServiceExt;

use super::ctx::RequestCtx;
use crate::accounts::Client;
use crate::error::GatewayError;
use crate::runtime::ApiRuntime;

/// Largest response body the router may produce (ours are small JSON).
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

async fn read_body(session: &mut Session, max: u64) -> Result<Bytes, GatewayError> {
    let headers = &session.req_header().headers;
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(GatewayError::PayloadTooLarge(max));
    }
    let expects_continue = headers
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if expects_continue {
        session
            .downstream_session
            .write_continue_response()
            .await
            .map_err(|_| GatewayError::BadRequest("The request body could not be read"))?;
    }
    let mut body = Vec::new();
    loop {
        match session.downstream_session.read_request_body().await {
            Ok(Some(chunk)) => {
                if (body.len() + chunk.len()) as u64 > max {
                    return Err(GatewayError::PayloadTooLarge(max));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(Bytes::from(body)),
            Err(_) => {
                return Err(GatewayError::BadRequest(
                    "The request body could not be read",
                ))
            }
        }
    }
}

/// Serves one `/auth/*` request; `path` is the normalized path. The router
/// runs on the API runtime; this (proxy) thread only moves bytes.
pub async fn serve(
    router: &Router,
    runtime: &ApiRuntime,
    session: &mut Session,
    ctx: &RequestCtx,
    path: &str,
    max_body: u64,
) -> Result<(), GatewayError> {
    let body = read_body(session, max_body).await?;
    let req_header = session.req_header();
    let mut parts = req_header.as_owned_parts();
    let target = match req_header.uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    parts.uri = target
        .parse()
        .map_err(|_| GatewayError::BadRequest("Invalid request target"))?;
    parts.extensions.insert(Client {
        ip: ctx.client_ip,
        user_agent: req_header
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect()),
    });
    let request = http::Request::from_parts(parts, Body::from(body));
    let router = router.clone();
    let (parts, body) = runtime
        .run(async move {
            let response = router
                .oneshot(request)
                .await
                .unwrap_or_else(|never| match never {});
            let (parts, body) = response.into_parts();
            let body = axum::body::to_bytes(body, MAX_RESPONSE_BYTES).await;
            (parts, body)
        })
        .await?;
    let body = body.map_err(|e| GatewayError::Internal(format!("response body: {e}")))?;

    let write = async {
        let mut resp = ResponseHeader::build(parts.status, Some(parts.headers.len() + 3))?;
        for (name, value) in &parts.headers {
            resp.append_header(name.clone(), value.clone())?;
        }
        // A 204 has no Content-Length (RFC 9110 §8.6).
        if parts.status != http::StatusCode::NO_CONTENT {
            resp.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())?;
        }
        if !parts.headers.contains_key(http::header::CACHE_CONTROL) {
            resp.insert_header(http::header::CACHE_CONTROL, "no-store")?;
        }
        resp.insert_header("X-Request-Id", ctx.request_id.as_str())?;
        for (name, value) in ctx.cors.headers() {
            resp.append_header(name, value)?;
        }
        let empty = body.is_empty();
        session.write_response_header(Box::new(resp), empty).await?;
        if !empty {
            session.write_response_body(Some(body), true).await?;
        }
        Ok::<_, Box<pingora::Error>>(())
    };
    if let Err(e) = write.await {
        tracing::debug!(error = %e, "client went away during an API response");
    }
    Ok(())
}
