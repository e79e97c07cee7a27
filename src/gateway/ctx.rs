//! Per-request state carried between pingora hooks.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use super::cors::CorsAnswer;
use crate::authz::OrgContext;
use crate::error::GatewayError;
use crate::principal::Principal;
use crate::ratelimit::RateLimitHeaders;

/// What the gateway decided, for metrics and the access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Forwarded upstream.
    Allow,
    /// Answered by the gateway itself (JWKS, …).
    Local,
    BadRequest,
    NoRoute,
    Unauthenticated,
    Forbidden,
    RateLimited,
    UpstreamError,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Local => "local",
            Decision::BadRequest => "bad_request",
            Decision::NoRoute => "no_route",
            Decision::Unauthenticated => "unauthenticated",
            Decision::Forbidden => "forbidden",
            Decision::RateLimited => "rate_limited",
            Decision::UpstreamError => "upstream_error",
        }
    }

    pub fn for_error(e: &GatewayError) -> Decision {
        match e.status() {
            401 => Decision::Unauthenticated,
            403 => Decision::Forbidden,
            404 => Decision::NoRoute,
            429 => Decision::RateLimited,
            500.. => Decision::UpstreamError,
            _ => Decision::BadRequest,
        }
    }
}

pub struct RequestCtx {
    pub started: Instant,
    pub request_id: String,
    pub client_ip: IpAddr,
    pub peer_ip: IpAddr,
    /// Whether the direct peer is a trusted proxy.
    pub peer_trusted: bool,
    /// `X-Forwarded-For` as received (only used from a trusted peer).
    pub incoming_xff: Option<String>,
    pub incoming_proto: Option<String>,
    /// The client's Host (or absolute-form authority), for `X-Forwarded-Host`.
    pub client_host: Option<String>,
    /// Absolute-form authority, forwarded as `Host`.
    pub absolute_authority: Option<String>,
    pub route: Option<usize>,
    /// Normalized path after `strip_path_prefix`, plus the raw query.
    pub upstream_uri: Option<String>,
    pub principal: Principal,
    pub org: Option<OrgContext>,
    pub rate_headers: Option<RateLimitHeaders>,
    /// CORS headers for every answer (empty without `[cors]` or `Origin`).
    pub cors: CorsAnswer,
    pub decision: Decision,
    pub error: Option<GatewayError>,
    pub failed_backends: Vec<SocketAddr>,
    pub body_bytes: u64,
}

impl RequestCtx {
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            request_id: String::new(),
            client_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            peer_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            peer_trusted: false,
            incoming_xff: None,
            incoming_proto: None,
            client_host: None,
            absolute_authority: None,
            route: None,
            upstream_uri: None,
            principal: Principal::Anonymous,
            org: None,
            rate_headers: None,
            cors: CorsAnswer::default(),
            decision: Decision::Allow,
            error: None,
            failed_backends: Vec::new(),
            body_bytes: 0,
        }
    }
}

impl Default for RequestCtx {
    fn default() -> Self {
        Self::new()
    }
}
