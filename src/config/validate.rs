//! `validate`: file structs in, typed runtime config (or every problem) out.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;

use ipnet::IpNet;

use super::file::*;
use super::problems::Problems;
use super::units::{parse_duration, parse_rate, resolve_path, SecretSource};
use super::*;
use crate::policy::RouteTable;
use crate::schema::roles::RoleTable;

pub(super) fn validate(
    file: FileConfig,
    base_dir: &Path,
    mut problems: Problems,
) -> Result<Config, Problems> {
    let p = &mut problems;
    let server = server(&file.server, p);
    let database = database(&file.database, p);
    if file.redis.is_some() {
        p.add(
            "redis",
            "not supported yet: revocation and rate limits shared across instances are not implemented; remove the section (one instance needs no Redis)",
        );
    }
    let tokens = tokens(&file.tokens, base_dir, p);
    let accounts = accounts(&file.accounts, base_dir, p);
    let api_keys = api_keys(&file.api_keys, p);
    let mail = mail(&file.mail, base_dir, p);
    let cors = file.cors.as_ref().map(|c| super::cors::validate(c, p));
    let headers = headers(&file.headers, p);
    if headers.identity_token && file.tokens.algorithm == "HS256" {
        p.add(
            "headers.identity_token",
            "cannot be used with HS256: verifying X-Auth-Token would hand backends the secret that mints access tokens",
        );
    }
    for (i, name) in api_keys.headers.iter().enumerate() {
        if super::rules::must_strip(name, &headers) {
            p.add(
                format!("api_keys.headers.{i}"),
                format!("{name:?} would be stripped by the [headers] rules before it is read"),
            );
        }
    }
    if let Some(name) = &api_keys.client_id_header {
        if super::rules::must_strip(name, &headers) {
            p.add(
                "api_keys.client_id_header",
                format!("{name:?} would be stripped by the [headers] rules before it is read"),
            );
        }
    }
    let rbac = match RoleTable::new(&file.rbac.roles) {
        Ok(t) => Some(t),
        Err(errors) => {
            for (role, msg) in errors {
                p.add(format!("rbac.roles.{role}"), msg);
            }
            None
        }
    };
    let upstreams = upstreams(&file.upstreams, p);
    if file.policy.default != "deny" {
        p.add(
            "policy.default",
            "only \"deny\" is supported (unmatched requests get 404)",
        );
    }
    let upstream_names: Vec<&str> = file.upstreams.iter().map(|u| u.name.as_str()).collect();
    let routes = RouteTable::compile(&file.routes, &upstream_names, p);

    match (server, tokens, rbac, routes) {
        (Some(server), Some(tokens), Some(rbac), Some(routes)) if problems.is_empty() => {
            let mail = MailConfig {
                link_base: mail.link_base.unwrap_or_else(|| server.public_url.clone()),
                transport: mail.transport,
                from: mail.from,
            };
            Ok(Config {
                base_dir: base_dir.to_path_buf(),
                mail,
                server,
                database,
                tokens,
                accounts,
                cors,
                api_keys,
                headers,
                rbac: Arc::new(rbac),
                upstreams,
                routes: Arc::new(routes),
            })
        }
        _ => Err(problems),
    }
}

fn socket_addr(key: &str, text: &str, p: &mut Problems) -> Option<SocketAddr> {
    p.check(
        key,
        text.parse::<SocketAddr>()
            .map_err(|_| format!("{text:?} is not an address like \"127.0.0.1:8080\"")),
    )
}

/// Two listeners collide when they share a port and either binds every
/// address or both bind the same one. The proxy and admin listeners must not:
/// admin endpoints would answer on the public port.
fn listeners_overlap(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

pub(super) fn duration(key: &str, text: &str, p: &mut Problems) -> std::time::Duration {
    p.check(key, parse_duration(text)).unwrap_or_default()
}

fn server(s: &ServerFile, p: &mut Problems) -> Option<ServerConfig> {
    let listen = socket_addr("server.listen", &s.listen, p);
    let admin_listen = socket_addr("server.admin_listen", &s.admin_listen, p);
    if let (Some(proxy), Some(admin)) = (listen, admin_listen) {
        if listeners_overlap(proxy, admin) {
            p.add(
                "server.admin_listen",
                format!("{admin} overlaps server.listen ({proxy}); the admin endpoints need their own port"),
            );
        }
    }
    if s.threads == 0 {
        p.add("server.threads", "must be at least 1");
    }
    if s.max_body_bytes == 0 {
        p.add("server.max_body_bytes", "must be at least 1");
    }
    let mut trusted_proxies = Vec::new();
    for (i, cidr) in s.trusted_proxies.iter().enumerate() {
        let parsed = cidr
            .parse::<IpNet>()
            .or_else(|_| cidr.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| format!("{cidr:?} is not an IP address or CIDR"));
        if let Some(net) = p.check(&format!("server.trusted_proxies.{i}"), parsed) {
            trusted_proxies.push(net);
        }
    }
    if s.tls.is_some() {
        p.add(
            "server.tls",
            "TLS termination is not supported yet; terminate TLS in front of the gateway",
        );
    }
    let shutdown_grace = duration("server.shutdown_grace", &s.shutdown_grace, p);
    let listen = listen?;
    let public_url = match &s.public_url {
        Some(url) => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                p.add("server.public_url", "must start with http:// or https://");
            }
            url.trim_end_matches('/').to_string()
        }
        None => format!("http://{listen}"),
    };
    Some(ServerConfig {
        listen,
        public_url,
        admin_listen: admin_listen?,
        threads: s.threads.max(1),
        max_body_bytes: s.max_body_bytes,
        trusted_proxies,
        allow_semicolons: s.allow_semicolons,
        shutdown_grace,
    })
}

/// Longest `database.sync_interval`: a write's response may wait this long.
const MAX_SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

fn database(d: &DatabaseFile, p: &mut Problems) -> DatabaseConfig {
    let known = ["sqlite:", "postgres://", "postgresql://"];
    if !known.iter().any(|k| d.url.starts_with(k)) {
        p.add(
            "database.url",
            "must start with sqlite:, postgres:// or postgresql://",
        );
    }
    if d.max_connections == 0 {
        p.add("database.max_connections", "must be at least 1");
    }
    let sync_interval = duration("database.sync_interval", &d.sync_interval, p);
    if sync_interval > MAX_SYNC_INTERVAL {
        p.add(
            "database.sync_interval",
            "must be at most 1s: every write waits for the sync before its response",
        );
    }
    DatabaseConfig {
        url: d.url.clone(),
        max_connections: d.max_connections,
        auto_migrate: d.auto_migrate,
        sync_interval,
    }
}

fn tokens(t: &TokensFile, base_dir: &Path, p: &mut Problems) -> Option<TokenConfig> {
    let algorithm = p.check("tokens.algorithm", t.algorithm.parse::<KeyAlgorithm>());
    let signing_key = p.check(
        "tokens.signing_key",
        SecretSource::parse(&t.signing_key, base_dir),
    );
    if t.issuer.is_empty() {
        p.add("tokens.issuer", "must not be empty");
    }
    if t.audience.is_empty() || t.audience.iter().any(String::is_empty) {
        p.add("tokens.audience", "needs at least one non-empty audience");
    }
    let access_ttl = duration("tokens.access_ttl", &t.access_ttl, p);
    let refresh_ttl = duration("tokens.refresh_ttl", &t.refresh_ttl, p);
    let leeway = duration("tokens.leeway", &t.leeway, p);
    if access_ttl.is_zero() {
        p.add("tokens.access_ttl", "must be greater than zero");
    }
    let mut trusted_issuers = Vec::new();
    let mut seen = HashSet::new();
    for (i, ti) in t.trusted_issuers.iter().enumerate() {
        let key = format!("tokens.trusted_issuers.{i}");
        if ti.issuer.is_empty() || ti.issuer == t.issuer {
            p.add(
                format!("{key}.issuer"),
                "must be non-empty and differ from tokens.issuer",
            );
        }
        if !seen.insert(ti.issuer.clone()) {
            p.add(
                format!("{key}.issuer"),
                format!("issuer {:?} is listed twice", ti.issuer),
            );
        }
        if ti.audience.is_empty() {
            p.add(
                format!("{key}.audience"),
                "needs at least one audience the tokens must carry",
            );
        }
        let jwks = match (&ti.jwks_url, &ti.jwks_file) {
            (Some(url), None) => {
                if !(url.starts_with("https://") || is_loopback_http(url)) {
                    p.add(
                        format!("{key}.jwks_url"),
                        "must be an https:// URL (http:// only for 127.0.0.1, [::1] or localhost)",
                    );
                }
                Some(JwksSource::Url(url.clone()))
            }
            (None, Some(path)) => Some(JwksSource::File(resolve_path(base_dir, path))),
            _ => {
                p.add(key.clone(), "needs exactly one of jwks_url or jwks_file");
                None
            }
        };
        let refresh = duration(&format!("{key}.refresh"), &ti.refresh, p);
        if let Some(jwks) = jwks {
            trusted_issuers.push(TrustedIssuerConfig {
                issuer: ti.issuer.clone(),
                jwks,
                audience: ti.audience.clone(),
                roles_claim: ti.roles_claim.clone(),
                refresh,
            });
        }
    }
    let (algorithm, signing_key) = (algorithm?, signing_key?);
    Some(TokenConfig {
        issuer: t.issuer.clone(),
        audience: t.audience.clone(),
        algorithm,
        signing_key,
        access_ttl,
        refresh_ttl,
        leeway,
        upstream_audience: t.upstream_audience.clone(),
        trusted_issuers,
    })
}

fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    matches!(host, "127.0.0.1" | "[::1]" | "localhost")
}

/// Account settings for the account endpoints.
fn accounts(a: &AccountsFile, base_dir: &Path, p: &mut Problems) -> AccountsConfig {
    use crate::crypto::password::{Cost, Policy};
    if !matches!(a.registration.as_str(), "open" | "closed") {
        p.add("accounts.registration", "must be \"open\" or \"closed\"");
    }
    if !(8..=1024).contains(&a.password_min_length) {
        p.add("accounts.password_min_length", "must be between 8 and 1024");
    }
    if a.argon2.memory_kib < 8 * a.argon2.parallelism.max(1)
        || a.argon2.iterations == 0
        || a.argon2.parallelism == 0
    {
        p.add("accounts.argon2", "memory_kib, iterations and parallelism must be sane (memory ≥ 8 × parallelism, ≥ 1 each)");
    }
    if a.max_sessions_per_user == 0 {
        p.add("accounts.max_sessions_per_user", "must be at least 1");
    }
    if a.lockout.max_failures == 0 {
        p.add("accounts.lockout.max_failures", "must be at least 1");
    }
    let chrono =
        |d: std::time::Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
    let window = duration("accounts.lockout.window", &a.lockout.window, p);
    let lock_for = duration("accounts.lockout.duration", &a.lockout.duration, p);
    let deletion_grace = duration("accounts.deletion_grace", &a.deletion_grace, p);
    let purge_interval = duration("accounts.purge_interval", &a.purge_interval, p);
    if purge_interval.is_zero() {
        p.add("accounts.purge_interval", "must be longer than 0s");
    }
    if a.totp_issuer.as_deref().is_some_and(str::is_empty) {
        p.add("accounts.totp_issuer", "must not be empty");
    }
    let refresh_reuse_grace = duration("accounts.refresh_reuse_grace", &a.refresh_reuse_grace, p);
    let secret_encryption_key = p
        .check(
            "accounts.secret_encryption_key",
            SecretSource::parse(&a.secret_encryption_key, base_dir),
        )
        .unwrap_or_else(|| SecretSource::File(base_dir.join("data/secret.key")));
    let mut rate = |key: &str, text: &str| {
        p.check(&format!("accounts.throttle.{key}"), parse_rate(text))
            .unwrap_or(crate::config::Rate {
                count: 1,
                per: std::time::Duration::from_secs(1),
            })
    };
    let throttle_login = rate("login", &a.throttle.login);
    let throttle_register = rate("register", &a.throttle.register);
    let throttle_forgot_password = rate("forgot_password", &a.throttle.forgot_password);
    AccountsConfig {
        registration_open: a.registration == "open",
        require_email_verification: a.require_email_verification,
        password: Policy {
            min_length: a.password_min_length,
            require_uppercase: a.require_uppercase,
            require_lowercase: a.require_lowercase,
            require_digit: a.require_digit,
            require_symbol: a.require_symbol,
        },
        argon2: Cost {
            memory_kib: a.argon2.memory_kib,
            iterations: a.argon2.iterations,
            parallelism: a.argon2.parallelism,
        },
        max_sessions_per_user: a.max_sessions_per_user,
        lockout: LockoutPolicy {
            max_failures: a.lockout.max_failures,
            window: chrono(window),
            duration: chrono(lock_for),
        },
        refresh_reuse_grace,
        deletion_grace,
        purge_interval,
        totp_issuer: a.totp_issuer.clone(),
        cookie_secure: a.cookie_secure,
        secret_encryption_key,
        throttle_login,
        throttle_register,
        throttle_forgot_password,
    }
}

pub(super) fn header_name(key: &str, name: &str, p: &mut Problems) -> Option<String> {
    p.check(
        key,
        http::HeaderName::from_bytes(name.as_bytes())
            .map(|h| h.as_str().to_string())
            .map_err(|_| format!("{name:?} is not a valid header name")),
    )
}

fn api_keys(a: &ApiKeysFile, p: &mut Problems) -> ApiKeyConfig {
    if a.headers.is_empty() {
        p.add("api_keys.headers", "needs at least one header name");
    }
    let headers = a
        .headers
        .iter()
        .enumerate()
        .filter_map(|(i, h)| header_name(&format!("api_keys.headers.{i}"), h, p))
        .collect();
    let client_id_header = a
        .client_id_header
        .as_ref()
        .and_then(|h| header_name("api_keys.client_id_header", h, p));
    ApiKeyConfig {
        headers,
        client_id_header,
    }
}

/// `[mail]` before `link_base` falls back to `server.public_url`.
struct MailParts {
    transport: MailTransport,
    link_base: Option<String>,
    from: String,
}

fn mail(m: &MailFile, base_dir: &Path, p: &mut Problems) -> MailParts {
    // A key the chosen mode does not read would be silently ignored.
    let by_mode = [
        ("outbox_dir", m.outbox_dir.is_some(), "file"),
        ("smtp_url", m.smtp_url.is_some(), "smtp"),
    ];
    for (key, set, mode) in by_mode {
        if set && m.mode != mode {
            let message = format!("only used with mode = {mode:?}; remove it");
            p.add(format!("mail.{key}"), message);
        }
    }
    let transport = match m.mode.as_str() {
        "log" => MailTransport::Log,
        "file" => MailTransport::File(base_dir.join(m.outbox_dir())),
        "smtp" => match &m.smtp_url {
            None => {
                p.add("mail.smtp_url", "required when mode = \"smtp\"");
                MailTransport::Log
            }
            Some(text) => {
                // The URL holds the SMTP password: it may come from env:/file:.
                let url = if text.starts_with("env:") || text.starts_with("file:") {
                    SecretSource::parse(text, base_dir)
                        .and_then(|s| s.read())
                        .and_then(|b| String::from_utf8(b).map_err(|_| "not UTF-8".into()))
                        .map(|u| u.trim().to_string())
                } else {
                    Ok(text.clone())
                };
                let url = p.check("mail.smtp_url", url).unwrap_or_default();
                if !url.is_empty() {
                    if let Err(e) = super::rules::check_smtp_url(&url) {
                        p.add("mail.smtp_url", e);
                    }
                }
                if m.from.is_none() {
                    p.add("mail.from", "required when mode = \"smtp\"");
                }
                MailTransport::Smtp(url)
            }
        },
        _ => {
            p.add("mail.mode", "must be \"log\", \"file\" or \"smtp\"");
            MailTransport::Log
        }
    };
    let from = m
        .from
        .clone()
        .unwrap_or_else(|| "Portcullis <portcullis@localhost>".into());
    if from.parse::<lettre::message::Mailbox>().is_err() {
        p.add(
            "mail.from",
            format!("{from:?} is not an address like \"Auth <no-reply@example.com>\""),
        );
    }
    let link_base = m.link_base.as_ref().map(|url| {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            p.add("mail.link_base", "must start with http:// or https://");
        }
        url.trim_end_matches('/').to_string()
    });
    MailParts {
        transport,
        link_base,
        from,
    }
}

fn fold_header(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

fn headers(h: &HeadersFile, p: &mut Problems) -> HeaderConfig {
    for (i, prefix) in h.strip_prefixes.iter().enumerate() {
        if prefix.len() < 2 {
            p.add(
                format!("headers.strip_prefixes.{i}"),
                "a prefix this short would strip nearly every header",
            );
        }
    }
    HeaderConfig {
        strip_prefixes: h.strip_prefixes.iter().map(|s| fold_header(s)).collect(),
        strip: h.strip.iter().map(|s| fold_header(s)).collect(),
        identity_token: h.identity_token,
    }
}

fn upstreams(list: &[UpstreamFile], p: &mut Problems) -> Vec<UpstreamConfig> {
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for (i, u) in list.iter().enumerate() {
        let key = format!("upstreams.{i}");
        if u.name.is_empty() {
            p.add(format!("{key}.name"), "must not be empty");
        } else if !names.insert(u.name.as_str()) {
            p.add(
                format!("{key}.name"),
                format!("upstream {:?} is defined twice", u.name),
            );
        }
        if u.backends.is_empty() {
            p.add(
                format!("{key}.backends"),
                "needs at least one \"host:port\"",
            );
        }
        let mut backends = Vec::new();
        for (j, b) in u.backends.iter().enumerate() {
            match b.to_socket_addrs().map(|mut a| a.next()) {
                Ok(Some(addr)) => backends.push(addr),
                _ => p.add(
                    format!("{key}.backends.{j}"),
                    format!("{b:?} is not a resolvable \"host:port\""),
                ),
            }
        }
        let (http_path, interval) = match &u.health_check {
            Some(hc) => (hc.path.clone(), hc.interval.clone()),
            None => (None, default_health_interval()),
        };
        if let Some(path) = &http_path {
            if !path.starts_with('/') {
                p.add(format!("{key}.health_check.path"), "must start with \"/\"");
            }
        }
        let interval = duration(&format!("{key}.health_check.interval"), &interval, p);
        let connect_timeout = duration(&format!("{key}.connect_timeout"), &u.connect_timeout, p);
        let read_timeout = duration(&format!("{key}.read_timeout"), &u.read_timeout, p);
        for (name, d) in [
            ("interval", interval),
            ("connect_timeout", connect_timeout),
            ("read_timeout", read_timeout),
        ] {
            if d.is_zero() {
                p.add(format!("{key}.{name}"), "must be greater than zero");
            }
        }
        out.push(UpstreamConfig {
            name: u.name.clone(),
            backends,
            health_check: HealthCheck {
                http_path,
                interval,
            },
            connect_timeout,
            read_timeout,
        });
    }
    out
}
