//! Writing responses the gateway answers itself (problems, JWKS) while
//! keeping the connection alive.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

use super::ctx::RequestCtx;
use crate::error::GatewayError;

/// Writes a complete response with `X-Request-Id` and `Cache-Control: no-store`.
pub async fn write(
    session: &mut Session,
    ctx: &RequestCtx,
    status: u16,
    content_type: &str,
    extra: &[(&'static str, String)],
    body: Vec<u8>,
) -> pingora::Result<()> {
    let cors = ctx.cors.headers();
    let mut resp = ResponseHeader::build(status, Some(4 + extra.len() + cors.len()))?;
    // A 204 has neither (RFC 9110 §8.6).
    if status != 204 {
        resp.insert_header("Content-Type", content_type)?;
        resp.insert_header("Content-Length", body.len().to_string())?;
    }
    if !extra
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("cache-control"))
    {
        resp.insert_header("Cache-Control", "no-store")?;
    }
    if !ctx.request_id.is_empty() {
        resp.insert_header("X-Request-Id", ctx.request_id.as_str())?;
    }
    for (name, value) in extra.iter().chain(&cors) {
        resp.append_header(*name, value.as_str())?;
    }
    let head_only = session.req_header().method == http::Method::HEAD || status == 204;
    session
        .write_response_header(Box::new(resp), head_only)
        .await?;
    if !head_only {
        session
            .write_response_body(Some(Bytes::from(body)), true)
            .await?;
    }
    Ok(())
}

/// Writes `err` as `application/problem+json` and records it in `ctx`.
pub async fn problem(
    session: &mut Session,
    ctx: &mut RequestCtx,
    err: GatewayError,
) -> pingora::Result<()> {
    ctx.decision = super::ctx::Decision::for_error(&err);
    let headers = &session.req_header().headers;
    let has_body = headers.contains_key(http::header::TRANSFER_ENCODING)
        || headers
            .get(http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    if has_body {
        // The body was not read: close rather than drain it for the client.
        session.set_keepalive(None);
    }
    let result = write(
        session,
        ctx,
        err.status(),
        "application/problem+json",
        &err.headers(),
        err.body(),
    )
    .await;
    ctx.error = Some(err);
    result
}
