//! `[cors]`: the allowed origins, methods and headers, validated (origins
//! are `scheme://host[:port]`; `"*"` never with credentials).

use std::time::Duration;

use super::file::CorsFile;
use super::problems::Problems;
use super::validate::{duration, header_name};

#[derive(Debug, Clone)]
pub struct CorsConfig {
    /// Lower-cased origins (`scheme://host[:port]`), or `"*"` for any
    /// (never together with credentials).
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Vec<http::Method>,
    pub allowed_headers: Vec<String>,
    pub allow_credentials: bool,
    pub max_age: Duration,
}

impl CorsConfig {
    /// Whether `origin` (as a browser sends it) may read our answers.
    pub fn allows(&self, origin: &str) -> bool {
        self.allowed_origins
            .iter()
            .any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
    }
}

pub(super) fn validate(c: &CorsFile, p: &mut Problems) -> CorsConfig {
    let max_age = duration("cors.max_age", &c.max_age, p);
    let allowed_methods = c
        .allowed_methods
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let parsed = http::Method::from_bytes(m.as_bytes())
                .map_err(|_| format!("{m:?} is not a method"));
            p.check(&format!("cors.allowed_methods.{i}"), parsed)
        })
        .collect();
    let allowed_headers = c
        .allowed_headers
        .iter()
        .enumerate()
        .filter_map(|(i, h)| header_name(&format!("cors.allowed_headers.{i}"), h, p))
        .collect();
    let mut allowed_origins = Vec::new();
    for (i, origin) in c.allowed_origins.iter().enumerate() {
        let origin = origin.trim_end_matches('/');
        if origin != "*" && !is_origin(origin) {
            p.add(
                format!("cors.allowed_origins.{i}"),
                format!("{origin:?} is not an origin like \"https://app.example.com\" (scheme, host, optional port; no path)"),
            );
        }
        allowed_origins.push(origin.to_ascii_lowercase());
    }
    if c.allow_credentials && allowed_origins.iter().any(|o| o == "*") {
        p.add(
            "cors.allowed_origins",
            "\"*\" cannot be combined with allow_credentials",
        );
    }
    CorsConfig {
        allowed_origins,
        allowed_methods,
        allowed_headers,
        allow_credentials: c.allow_credentials,
        max_age,
    }
}

/// `http(s)://host[:port]`, nothing after the authority.
fn is_origin(text: &str) -> bool {
    let Some(rest) = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
    else {
        return false;
    };
    !rest.is_empty()
        && rest.parse::<http::uri::Authority>().is_ok()
        && !rest.contains(['/', '?', '#', '@'])
}
