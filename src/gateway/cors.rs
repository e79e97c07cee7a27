//! CORS (`[cors]`, DESIGN.md §10): the gateway answers preflights itself —
//! on proxied routes and on its own endpoints, with no credential and no
//! upstream call — and adds the `Access-Control-Allow-*` headers to every
//! answer, proxied or local, for an allowed origin. Without `[cors]` none of
//! this runs and an `OPTIONS` request is an ordinary request.

use http::HeaderMap;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

use super::ctx::{Decision, RequestCtx};
use super::respond;
use crate::config::CorsConfig;
use crate::error::GatewayError;

/// The answer headers for a request's `Origin`, decided once per request.
#[derive(Debug, Clone, Default)]
pub struct CorsAnswer {
    /// The allowed origin echoed back (`"*"` when any origin is allowed
    /// without credentials); `None` for a foreign or missing origin.
    allow_origin: Option<String>,
    credentials: bool,
    /// `Vary: Origin`: the answer depends on the origin whenever CORS is on
    /// and the request named one.
    vary: bool,
}

impl CorsAnswer {
    /// What to answer a request with these headers under `cfg`.
    pub fn for_request(cfg: &CorsConfig, headers: &HeaderMap) -> CorsAnswer {
        let Some(origin) = headers.get(http::header::ORIGIN) else {
            return CorsAnswer::default();
        };
        let origin = origin.to_str().unwrap_or("");
        let allow_origin = cfg.allows(origin).then(|| {
            if cfg.allow_credentials || !cfg.allowed_origins.iter().any(|o| o == "*") {
                origin.to_string()
            } else {
                "*".to_string()
            }
        });
        CorsAnswer {
            allow_origin,
            credentials: cfg.allow_credentials,
            vary: true,
        }
    }

    pub fn origin_allowed(&self) -> bool {
        self.allow_origin.is_some()
    }

    /// The headers every answer to this request carries.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.vary {
            out.push(("Vary", "Origin".to_string()));
        }
        if let Some(origin) = &self.allow_origin {
            out.push(("Access-Control-Allow-Origin", origin.clone()));
            if self.credentials {
                out.push(("Access-Control-Allow-Credentials", "true".to_string()));
            }
        }
        out
    }

    /// Puts this request's CORS headers on a proxied answer, replacing any
    /// the backend set: with `[cors]` the gateway alone decides.
    pub fn apply(&self, resp: &mut ResponseHeader) -> pingora::Result<()> {
        let theirs: Vec<http::HeaderName> = resp
            .headers
            .keys()
            .filter(|n| n.as_str().starts_with("access-control-"))
            .cloned()
            .collect();
        for name in theirs {
            resp.remove_header(&name);
        }
        for (name, value) in self.headers() {
            if name == "Vary" {
                resp.append_header(name, value)?;
            } else {
                resp.insert_header(name, value)?;
            }
        }
        Ok(())
    }
}

/// The method a preflight asks about: `OPTIONS` with an `Origin` and an
/// `Access-Control-Request-Method` (any other `OPTIONS` is ordinary).
pub fn preflight_method(method: &http::Method, headers: &HeaderMap) -> Option<http::Method> {
    if method != http::Method::OPTIONS || !headers.contains_key(http::header::ORIGIN) {
        return None;
    }
    let requested = headers.get(http::header::ACCESS_CONTROL_REQUEST_METHOD)?;
    http::Method::from_bytes(requested.as_bytes()).ok()
}

/// Answers a preflight: 204 with the allow headers when the gateway serves
/// the path for the method asked about (`served`) and the origin is
/// allowed; 404 when nothing serves it, 403 for a foreign origin.
pub async fn answer_preflight(
    session: &mut Session,
    ctx: &mut RequestCtx,
    cfg: &CorsConfig,
    served: bool,
) -> Result<(), GatewayError> {
    if !served {
        return Err(GatewayError::NoRoute);
    }
    if !ctx.cors.origin_allowed() {
        return Err(GatewayError::CorsOriginRefused);
    }
    ctx.decision = Decision::Local;
    let extra = preflight_headers(cfg);
    if let Err(e) = respond::write(session, ctx, 204, "", &extra, Vec::new()).await {
        tracing::debug!(error = %e, "client went away during a preflight answer");
    }
    Ok(())
}

/// The extra headers of a 204 preflight answer for an allowed origin.
fn preflight_headers(cfg: &CorsConfig) -> Vec<(&'static str, String)> {
    let methods: Vec<&str> = cfg.allowed_methods.iter().map(|m| m.as_str()).collect();
    vec![
        ("Access-Control-Allow-Methods", methods.join(", ")),
        (
            "Access-Control-Allow-Headers",
            cfg.allowed_headers.join(", "),
        ),
        ("Access-Control-Max-Age", cfg.max_age.as_secs().to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(origins: &[&str], credentials: bool) -> CorsConfig {
        CorsConfig {
            allowed_origins: origins.iter().map(|o| o.to_string()).collect(),
            allowed_methods: vec![http::Method::GET, http::Method::POST],
            allowed_headers: vec!["authorization".into(), "content-type".into()],
            allow_credentials: credentials,
            max_age: std::time::Duration::from_secs(600),
        }
    }

    fn with_origin(origin: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::ORIGIN, origin.parse().unwrap());
        h
    }

    #[test]
    fn allowed_origins_are_echoed_foreign_ones_get_only_vary() {
        let c = cfg(&["https://app.example.com"], true);
        let ok = CorsAnswer::for_request(&c, &with_origin("https://APP.example.com"));
        assert_eq!(
            ok.headers(),
            vec![
                ("Vary", "Origin".to_string()),
                (
                    "Access-Control-Allow-Origin",
                    "https://APP.example.com".to_string()
                ),
                ("Access-Control-Allow-Credentials", "true".to_string()),
            ]
        );
        let foreign = CorsAnswer::for_request(&c, &with_origin("https://app.example.com.evil"));
        assert!(!foreign.origin_allowed());
        assert_eq!(foreign.headers(), vec![("Vary", "Origin".to_string())]);
        assert!(CorsAnswer::for_request(&c, &HeaderMap::new())
            .headers()
            .is_empty());
    }

    #[test]
    fn any_origin_without_credentials_is_a_star() {
        let c = cfg(&["*"], false);
        let a = CorsAnswer::for_request(&c, &with_origin("https://x.example"));
        assert_eq!(
            a.headers()[1],
            ("Access-Control-Allow-Origin", "*".to_string())
        );
        assert_eq!(a.headers().len(), 2, "no credentials header");
    }

    #[test]
    fn preflights_need_origin_and_requested_method() {
        let mut h = with_origin("https://app.example.com");
        assert_eq!(preflight_method(&http::Method::OPTIONS, &h), None);
        h.insert(
            http::header::ACCESS_CONTROL_REQUEST_METHOD,
            "DELETE".parse().unwrap(),
        );
        assert_eq!(
            preflight_method(&http::Method::OPTIONS, &h),
            Some(http::Method::DELETE)
        );
        assert_eq!(preflight_method(&http::Method::GET, &h), None);
        h.remove(http::header::ORIGIN);
        assert_eq!(preflight_method(&http::Method::OPTIONS, &h), None);
    }
}
