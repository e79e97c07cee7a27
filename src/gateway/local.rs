//! Endpoints the gateway answers itself, before the route table:
//! `/.well-known/jwks.json` and the account API under `/auth` (never
//! forwarded upstream).

use pingora::proxy::Session;

use super::ctx::RequestCtx;
use super::respond;
use crate::error::GatewayError;
use crate::state::AppState;

pub enum LocalEndpoint {
    Jwks,
    AccountApi,
}

pub fn route(path: &str) -> Option<LocalEndpoint> {
    if path == "/.well-known/jwks.json" {
        Some(LocalEndpoint::Jwks)
    } else if path == "/auth" || path.starts_with("/auth/") {
        Some(LocalEndpoint::AccountApi)
    } else {
        None
    }
}

pub async fn serve(
    state: &AppState,
    session: &mut Session,
    ctx: &mut RequestCtx,
    endpoint: LocalEndpoint,
    normalized: &str,
) -> Result<(), GatewayError> {
    match endpoint {
        LocalEndpoint::Jwks => {
            let method = &session.req_header().method;
            if method != http::Method::GET && method != http::Method::HEAD {
                return Err(GatewayError::MethodNotAllowed("GET, HEAD"));
            }
            let body = serde_json::to_vec(&state.signing_key.jwks())
                .map_err(|e| GatewayError::Internal(format!("jwks: {e}")))?;
            let extra = [("Cache-Control", "public, max-age=300".to_string())];
            if let Err(e) =
                respond::write(session, ctx, 200, "application/json", &extra, body).await
            {
                tracing::debug!(error = %e, "client went away during a local response");
            }
            Ok(())
        }
        LocalEndpoint::AccountApi => {
            super::bridge::serve(
                &state.api,
                &state.api_runtime,
                session,
                ctx,
                normalized,
                state.config.server.max_body_bytes,
            )
            .await
        }
    }
}
