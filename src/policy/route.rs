//! One compiled route rule and how it is built from its file form.

use http::Method;

use super::pattern::Pattern;
use crate::authz::Requirements;
use crate::ratelimit::RateLimitSpec;
use crate::schema::file::RouteFile;
use crate::schema::problems::Problems;

/// Which credentials a route takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// No authentication; identity headers are never added.
    Public,
    /// A JWT or an API key.
    Authenticated,
    Jwt,
    ApiKey,
    /// Always 403, never forwarded.
    Deny,
}

impl AuthMode {
    fn parse(s: &str) -> Result<Self, String> {
        Ok(match s {
            "public" => Self::Public,
            "authenticated" => Self::Authenticated,
            "jwt" => Self::Jwt,
            "api_key" => Self::ApiKey,
            "deny" => Self::Deny,
            _ => {
                return Err(format!(
                    "{s:?} is not one of public, authenticated, jwt, api_key, deny"
                ))
            }
        })
    }

    pub fn accepts_jwt(self) -> bool {
        matches!(self, Self::Authenticated | Self::Jwt)
    }

    pub fn accepts_api_key(self) -> bool {
        matches!(self, Self::Authenticated | Self::ApiKey)
    }
}

#[derive(Debug, Clone)]
pub struct RouteRule {
    pub name: String,
    /// Lower-cased; `*.example.com` matches any subdomain.
    pub hosts: Option<Vec<String>>,
    pub pattern: Pattern,
    pub methods: Option<Vec<Method>>,
    /// Index into the config's upstream list; `None` only for `deny` routes.
    pub upstream: Option<usize>,
    pub auth: AuthMode,
    pub requirements: Requirements,
    pub rate_limit: Option<RateLimitSpec>,
    pub strip_path_prefix: Option<String>,
    pub max_body_bytes: Option<u64>,
    /// Keep the caller's credential headers on the forwarded request
    /// (removed by default: backends get identity headers, not secrets).
    pub forward_credentials: bool,
}

impl RouteRule {
    pub fn host_matches(&self, host: &str) -> bool {
        match &self.hosts {
            None => true,
            Some(hosts) => hosts.iter().any(|h| host_pattern_matches(h, host)),
        }
    }

    pub fn method_matches(&self, method: &Method) -> bool {
        self.methods.as_ref().is_none_or(|m| m.contains(method))
    }

    /// The path sent upstream: the normalized path minus `strip_path_prefix`.
    pub fn upstream_path<'p>(&self, path: &'p str) -> std::borrow::Cow<'p, str> {
        match &self.strip_path_prefix {
            Some(prefix) => match path.strip_prefix(prefix.as_str()) {
                Some("") => "/".into(),
                Some(rest) if rest.starts_with('/') => rest.into(),
                _ => path.into(),
            },
            None => path.into(),
        }
    }

    /// True when every request this rule could match is matched by `self`.
    pub fn covers(&self, other: &RouteRule) -> bool {
        let hosts = match (&self.hosts, &other.hosts) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(mine), Some(theirs)) => theirs
                .iter()
                .all(|t| mine.iter().any(|m| host_pattern_matches(m, t))),
        };
        let methods = match (&self.methods, &other.methods) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(mine), Some(theirs)) => theirs.iter().all(|t| mine.contains(t)),
        };
        hosts && methods && self.pattern.covers(&other.pattern)
    }
}

/// `pattern` is a host or `*.domain`; `host` is a lower-cased host (or
/// another pattern, for coverage checks).
fn host_pattern_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(domain) => host
            .strip_suffix(domain)
            .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
        None => pattern == host,
    }
}

/// Builds one rule, recording problems under `routes.{index}`.
pub(super) fn compile_route(
    index: usize,
    file: &RouteFile,
    upstreams: &[&str],
    p: &mut Problems,
) -> Option<RouteRule> {
    let key = |field: &str| format!("routes.{index}.{field}");
    if file.name.is_empty() {
        p.add(key("name"), "must not be empty");
    }
    let pattern = p.check(&key("path"), Pattern::parse(&file.path));
    let auth = p.check(&key("auth"), AuthMode::parse(&file.auth));
    let hosts = file.hosts.as_ref().map(|hosts| {
        if hosts.is_empty() {
            p.add(
                key("hosts"),
                "an empty list matches nothing; leave the key out to match any host",
            );
        }
        hosts
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect::<Vec<_>>()
    });
    let methods = file.methods.as_ref().map(|methods| {
        if methods.is_empty() {
            p.add(
                key("methods"),
                "an empty list matches nothing; leave the key out to match any method",
            );
        }
        methods
            .iter()
            .filter_map(|m| {
                let parsed = Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                    .map_err(|_| format!("{m:?} is not an HTTP method"));
                p.check(&key("methods"), parsed)
            })
            .collect::<Vec<_>>()
    });
    let upstream = match (&file.upstream, auth) {
        (_, Some(AuthMode::Deny)) => file
            .upstream
            .as_ref()
            .and_then(|u| upstreams.iter().position(|n| n == u)),
        (Some(name), _) => {
            let found = upstreams.iter().position(|n| n == name);
            if found.is_none() {
                p.add(key("upstream"), format!("no upstream named {name:?}"));
            }
            found
        }
        (None, _) => {
            p.add(key("upstream"), "required (except for auth = \"deny\")");
            None
        }
    };
    let requirements = Requirements {
        roles: file.roles.clone(),
        permissions: file.permissions.clone(),
        scopes: file.scopes.clone(),
        org_param: file.org_param.clone(),
        mfa: file.mfa,
    };
    if matches!(auth, Some(AuthMode::Public | AuthMode::Deny)) && !requirements.is_empty() {
        p.add(
            key("auth"),
            "roles, permissions, scopes, org_param and mfa need an authenticated route",
        );
    }
    for msg in requirements.problems() {
        p.add(key("roles"), msg);
    }
    if let (Some(param), Some(pattern)) = (&file.org_param, &pattern) {
        if !pattern.capture_names().any(|n| n == param) {
            p.add(
                key("org_param"),
                format!("the path has no {{{param}}} capture"),
            );
        }
    }
    let rate_limit = file
        .rate_limit
        .as_ref()
        .and_then(|rl| p.check(&key("rate_limit"), RateLimitSpec::from_file(rl)));
    let strip_path_prefix = file.strip_path_prefix.as_ref().and_then(|prefix| {
        let prefix = prefix.trim_end_matches('/').to_string();
        let ok = pattern.as_ref().is_some_and(|pat| {
            let literal = pat.literal_prefix();
            literal == prefix || literal.starts_with(&format!("{prefix}/"))
        });
        if !ok || prefix.is_empty() {
            p.add(
                key("strip_path_prefix"),
                "must be a leading part of the route's literal path (whole segments)",
            );
            return None;
        }
        Some(prefix)
    });
    if file.max_body_bytes == Some(0) {
        p.add(key("max_body_bytes"), "must be at least 1");
    }
    Some(RouteRule {
        name: file.name.clone(),
        hosts,
        pattern: pattern?,
        methods,
        upstream,
        auth: auth?,
        requirements,
        rate_limit,
        strip_path_prefix,
        max_body_bytes: file.max_body_bytes,
        forward_credentials: file.forward_credentials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns() {
        assert!(host_pattern_matches("api.example.com", "api.example.com"));
        assert!(!host_pattern_matches("api.example.com", "xapi.example.com"));
        assert!(host_pattern_matches("*.example.com", "a.example.com"));
        assert!(host_pattern_matches("*.example.com", "a.b.example.com"));
        assert!(!host_pattern_matches("*.example.com", "example.com"));
        assert!(!host_pattern_matches("*.example.com", "evilexample.com"));
    }
}
