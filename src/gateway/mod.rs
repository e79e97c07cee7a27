//! The pingora `ProxyHttp` implementation: glue that runs each pipeline
//! stage in the right hook. The stages themselves live in their own modules.
//!
//! | pingora hook              | stage                                                    |
//! |---------------------------|----------------------------------------------------------|
//! | `request_filter`          | client identity + header hygiene (`headers`, `forwarded`)|
//! |                           | route: normalize + match (`policy`), local endpoints     |
//! |                           | authn + revocation (`authn`, `revocation`)               |
//! |                           | rate limit (`ratelimit`), authz (`authz`)                |
//! | `upstream_peer`           | backend selection (`upstreams`)                          |
//! | `fail_to_connect`         | retry on the next healthy backend                        |
//! | `upstream_request_filter` | normalized URI, `X-Forwarded-*`, identity headers        |
//! | `request_body_filter`     | per-route body limit                                     |
//! | `response_filter`         | `X-Request-Id`, `RateLimit-*` on the response            |
//! | `fail_to_proxy`           | problem+json for upstream failures                       |
//! | `logging`                 | metrics + one structured access-log line                 |

pub mod assertion;
mod bridge;
pub mod cors;
pub mod ctx;
pub mod forwarded;
pub mod headers;
mod host;
mod local;
pub mod respond;
mod strict;
pub use crate::upstreams;

use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::{HttpPeer, Peer};
use pingora::{Error, ErrorSource, ErrorType};

use crate::authz;
use crate::error::GatewayError;
use crate::policy::{match_segments, normalize_path, AuthMode};
use crate::ratelimit::RateKey;
use crate::state::AppState;
use cors::CorsAnswer;
use ctx::{Decision, RequestCtx};
use host::{absolute_form_authority, host_without_port};

pub struct Proxy {
    state: AppState,
}

/// How `request_filter` ended.
enum Admit {
    Forward,
    Answered,
}

impl Proxy {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }

    /// Records who the client is and removes every header it may not send.
    fn identify(&self, session: &mut Session, ctx: &mut RequestCtx) {
        let server = &self.state.config.server;
        let peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip())
            .unwrap_or(ctx.peer_ip);
        ctx.peer_ip = peer;
        ctx.peer_trusted = forwarded::is_trusted(peer, &server.trusted_proxies);
        let req = session.req_header();
        let xff: Vec<&str> = req
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        ctx.client_ip = forwarded::client_ip(peer, &xff, &server.trusted_proxies);
        if ctx.peer_trusted {
            ctx.incoming_xff = (!xff.is_empty()).then(|| xff.join(", "));
            ctx.incoming_proto = req
                .headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .filter(|p| *p == "http" || *p == "https")
                .map(String::from);
        }
        let trusted_id = req
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|id| ctx.peer_trusted && headers::valid_request_id(id));
        ctx.request_id = match trusted_id {
            Some(id) => id.to_string(),
            None => uuid::Uuid::now_v7().simple().to_string(),
        };
        ctx.absolute_authority = absolute_form_authority(req.raw_path());
        ctx.client_host = ctx.absolute_authority.clone().or_else(|| {
            req.headers
                .get(http::header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(String::from)
        });
        headers::strip_incoming(session.req_header_mut(), &self.state.config.headers);
    }

    /// Route, authenticate, limit and authorize one request.
    async fn admit(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Admit, GatewayError> {
        self.identify(session, ctx);
        strict::check_session(session, ctx.absolute_authority.is_some())?;
        let config = &self.state.config;
        let normalized = normalize_path(
            session.req_header().uri.path().as_bytes(),
            config.server.allow_semicolons,
        )
        .map_err(GatewayError::BadPath)?;
        if let Some(cors) = &config.cors {
            let req = session.req_header();
            ctx.cors = CorsAnswer::for_request(cors, &req.headers);
            if let Some(method) = cors::preflight_method(&req.method, &req.headers) {
                let served = local::route(&normalized).is_some() || {
                    let segments = match_segments(&normalized, config.server.allow_semicolons);
                    self.find_route(ctx, &segments, &method).is_some()
                };
                cors::answer_preflight(session, ctx, cors, served).await?;
                return Ok(Admit::Answered);
            }
        }
        if let Some(answer) = local::route(&normalized) {
            local::serve(&self.state, session, ctx, answer, &normalized).await?;
            ctx.decision = Decision::Local;
            return Ok(Admit::Answered);
        }
        let req = session.req_header();
        if req.method.as_str().bytes().any(|b| b.is_ascii_lowercase()) {
            return Err(GatewayError::BadRequest(
                "HTTP methods are case-sensitive; send them upper-case",
            ));
        }
        let segments = match_segments(&normalized, config.server.allow_semicolons);
        let index = self
            .find_route(ctx, &segments, &req.method)
            .ok_or(GatewayError::NoRoute)?;
        let rule = &config.routes.rules()[index];
        ctx.route = Some(index);
        if rule.auth == AuthMode::Deny {
            return Err(GatewayError::RouteDenied);
        }
        let mut uri = rule.upstream_path(&normalized).into_owned();
        if let Some(query) = req.uri.query() {
            uri.push('?');
            uri.push_str(query);
        }
        ctx.upstream_uri = Some(uri);
        if let Some(max) = rule.max_body_bytes {
            let declared = req
                .headers
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|len| len > max) {
                return Err(GatewayError::PayloadTooLarge(max));
            }
        }

        if rule.auth != AuthMode::Public {
            let started = Instant::now();
            let result = self
                .state
                .authenticator
                .authenticate(&req.headers, rule.auth)
                .await;
            let metrics = &self.state.metrics;
            if let Ok(auth) = &result {
                if let Some(outcome) = auth.cache {
                    let label = match outcome {
                        crate::authn::jwt::CacheOutcome::Hit => "hit",
                        crate::authn::jwt::CacheOutcome::Miss => "miss",
                    };
                    metrics
                        .cache_requests
                        .with_label_values(&["jwt", label])
                        .inc();
                }
                if let Some(method) = auth.principal.method() {
                    metrics
                        .auth_duration
                        .with_label_values(&[method.as_str()])
                        .observe(started.elapsed().as_secs_f64());
                }
            }
            ctx.principal = result?.principal;
        }

        if let (Some(limiter), Some(spec)) = (
            self.state.limiters.get(index).and_then(Option::as_ref),
            rule.rate_limit.as_ref(),
        ) {
            let key = RateKey::for_request(spec.key, &ctx.principal, ctx.client_ip);
            match limiter.check(&key) {
                Ok(h) => ctx.rate_headers = Some(h),
                Err(h) => {
                    self.state
                        .metrics
                        .ratelimit_rejections
                        .with_label_values(&[rule.name.as_str()])
                        .inc();
                    return Err(GatewayError::RateLimited(h));
                }
            }
        }

        if let Some(user) = ctx.principal.user() {
            let org_in_path = rule
                .requirements
                .org_param
                .as_deref()
                .and_then(|p| rule.pattern.capture(p, &segments));
            ctx.org = authz::authorize_in(
                &rule.requirements,
                user,
                org_in_path,
                ctx.principal.pinned_org(),
                &config.rbac,
            )
            .map_err(GatewayError::Forbidden)?;
        }
        Ok(Admit::Forward)
    }

    /// The first rule matching the path's segments, the client's host and `method`.
    fn find_route<S: AsRef<str>>(
        &self,
        ctx: &RequestCtx,
        segments: &[S],
        method: &http::Method,
    ) -> Option<usize> {
        let host = host_without_port(ctx.client_host.as_deref().unwrap_or(""));
        self.state.config.routes.find(segments, &host, method)
    }

    fn add_upstream_headers(
        &self,
        req: &mut RequestHeader,
        ctx: &RequestCtx,
    ) -> pingora::Result<()> {
        let config = &self.state.config;
        let uri = ctx
            .upstream_uri
            .as_deref()
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "no normalized upstream uri"))?
            .parse::<http::Uri>()
            .map_err(|e| Error::because(ErrorType::InternalError, "upstream uri", e))?;
        req.set_uri(uri);
        if let Some(authority) = &ctx.absolute_authority {
            req.insert_header(http::header::HOST, authority.as_str())?;
        }
        let xff = match (&ctx.incoming_xff, ctx.peer_trusted) {
            (Some(chain), true) => format!("{chain}, {}", ctx.peer_ip),
            _ => ctx.peer_ip.to_string(),
        };
        req.insert_header("X-Forwarded-For", xff)?;
        req.insert_header(
            "X-Forwarded-Proto",
            ctx.incoming_proto.as_deref().unwrap_or("http"),
        )?;
        if let Some(host) = &ctx.client_host {
            req.insert_header("X-Forwarded-Host", host.as_str())?;
        }
        req.insert_header("X-Real-IP", ctx.client_ip.to_string())?;
        req.insert_header("X-Request-Id", ctx.request_id.as_str())?;
        let forward_credentials = ctx
            .route
            .and_then(|i| config.routes.rules().get(i))
            .is_some_and(|r| r.forward_credentials);
        if !forward_credentials {
            headers::strip_credentials(req, &config.api_keys.headers);
        }
        if let (Some(user), Some(method)) = (ctx.principal.user(), ctx.principal.method()) {
            let key = ctx.principal.api_key();
            for (name, value) in
                headers::identity_headers(user, key, ctx.org.as_ref(), method.as_str())
            {
                // An identity that cannot be forwarded faithfully is refused
                // rather than forwarded partially.
                req.insert_header(name, value).map_err(|e| {
                    Error::because(
                        ErrorType::InternalError,
                        format!("identity header {name} not forwardable"),
                        e,
                    )
                })?;
            }
            if config.headers.identity_token {
                let token = assertion::sign(
                    &self.state.signing_key,
                    &config.tokens.issuer,
                    &config.tokens.upstream_audience,
                    user,
                    ctx.org.as_ref(),
                    method.as_str(),
                )
                .map_err(|e| Error::explain(ErrorType::InternalError, e))?;
                req.insert_header("X-Auth-Token", token)?;
            }
        }
        Ok(())
    }
}

/// Maps a pingora error to the problem the client sees; `None` when the
/// client connection is already gone.
fn classify(e: &Error) -> Option<GatewayError> {
    use ErrorType::*;
    Some(match e.etype() {
        HTTPStatus(413) => GatewayError::PayloadTooLarge(0),
        ConnectTimedout | ConnectRefused | ConnectNoRoute | ConnectError | TLSHandshakeFailure
        | TLSHandshakeTimedout | HandshakeError | InvalidCert | ConnectProxyFailure
        | SocketError | BindError => GatewayError::UpstreamConnect,
        ReadTimedout | WriteTimedout if e.esource() == &ErrorSource::Upstream => {
            GatewayError::UpstreamTimeout
        }
        _ => match e.esource() {
            ErrorSource::Upstream => GatewayError::UpstreamConnect,
            ErrorSource::Downstream => match e.etype() {
                ReadError | WriteError | ConnectionClosed | ReadTimedout | WriteTimedout => {
                    return None
                }
                _ => GatewayError::BadRequest("The request could not be read"),
            },
            _ => GatewayError::Internal(e.to_string()),
        },
    })
}

#[async_trait]
impl ProxyHttp for Proxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new()
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<bool> {
        // Pipelined HTTP/1.1 requests are each answered, in order (pingora
        // otherwise drops them and closes after the first answer).
        session.downstream_session.set_pipelining_enabled(true);
        match self.admit(session, ctx).await {
            Ok(Admit::Forward) => Ok(false),
            Ok(Admit::Answered) => Ok(true),
            Err(err) => {
                respond::problem(session, ctx, err).await?;
                Ok(true)
            }
        }
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<Box<HttpPeer>> {
        let rules = self.state.config.routes.rules();
        let pool = ctx
            .route
            .and_then(|i| rules.get(i))
            .and_then(|r| r.upstream)
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "no upstream for route"))?;
        match self.state.upstreams.select(pool, &ctx.failed_backends) {
            Some(addr) => Ok(self.state.upstreams.peer(pool, addr)),
            None => {
                ctx.error = Some(if ctx.failed_backends.is_empty() {
                    GatewayError::NoHealthyUpstream
                } else {
                    GatewayError::UpstreamConnect
                });
                Error::e_explain(ErrorType::HTTPStatus(503), "no healthy backend")
            }
        }
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        if let Some(addr) = peer.address().as_inet() {
            ctx.failed_backends.push(*addr);
        }
        let backends = ctx
            .route
            .and_then(|i| self.state.config.routes.rules().get(i))
            .and_then(|r| r.upstream)
            .and_then(|p| self.state.upstreams.pool(p))
            .map_or(0, |p| p.config.backends.len());
        // Nothing was sent yet, so trying the next backend is safe for any method.
        if ctx.failed_backends.len() < backends {
            e.set_retry(true);
        }
        e
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        self.add_upstream_headers(upstream_request, ctx)
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        let max = ctx
            .route
            .and_then(|i| self.state.config.routes.rules().get(i))
            .and_then(|r| r.max_body_bytes);
        if let (Some(max), Some(chunk)) = (max, body.as_ref()) {
            ctx.body_bytes += chunk.len() as u64;
            if ctx.body_bytes > max {
                ctx.error = Some(GatewayError::PayloadTooLarge(max));
                return Error::e_explain(ErrorType::HTTPStatus(413), "request body too large");
            }
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        // The gateway speaks its own HTTP version, whatever the backend's
        // (an HTTP/1.0 backend's status line must not reach 1.1 clients).
        if upstream_response.version < http::Version::HTTP_11 {
            upstream_response.set_version(http::Version::HTTP_11);
        }
        upstream_response.insert_header("X-Request-Id", ctx.request_id.as_str())?;
        if self.state.config.cors.is_some() {
            ctx.cors.apply(upstream_response)?;
        }
        if let Some(h) = ctx.rate_headers {
            for (name, value) in h.pairs() {
                upstream_response.insert_header(name, value)?;
            }
        }
        Ok(())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let err = ctx.error.take().or_else(|| classify(e));
        let Some(err) = err else {
            ctx.decision = Decision::UpstreamError;
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        };
        if let Some(cause) = err.log_cause() {
            tracing::error!(request_id = %ctx.request_id, cause, "internal error");
        }
        let status = err.status();
        if session.response_written().is_none() {
            let _ = respond::problem(session, ctx, err).await;
        } else {
            ctx.decision = Decision::for_error(&err);
            ctx.error = Some(err);
        }
        FailToProxy {
            error_code: status,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let route = ctx
            .route
            .and_then(|i| self.state.config.routes.rules().get(i))
            .map_or("", |r| r.name.as_str());
        let elapsed = ctx.started.elapsed();
        let metrics = &self.state.metrics;
        let status_label = status.to_string();
        metrics
            .requests
            .with_label_values(&[route, status_label.as_str(), ctx.decision.as_str()])
            .inc();
        metrics
            .request_duration
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
        let req = session.req_header();
        tracing::info!(
            target: "portcullis::access",
            request_id = %ctx.request_id,
            method = %req.method,
            path = %req.uri.path(),
            route,
            decision = ctx.decision.as_str(),
            code = ctx.error.as_ref().map_or("", |e| e.code()),
            status,
            latency_us = elapsed.as_micros() as u64,
            principal = ctx.principal.id().unwrap_or("-"),
            client_ip = %ctx.client_ip,
        );
    }
}
