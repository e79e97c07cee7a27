//! Configuration: `validate` consumes the file structs of the leaf module
//! [`schema`](crate::schema) (re-exported here as `file`, `units` and
//! `problems`), compiles the routes and roles through the pure stages, and
//! returns a typed runtime [`Config`] or every problem found at once. The
//! header-strip and SMTP-URL rules it shares with the stages are `rules`.

mod cors;
pub use crate::schema::{file, problems, units};
pub mod rules;
mod validate;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;

pub use cors::CorsConfig;
pub use problems::Problem;
pub use units::{KeyAlgorithm, Rate, SecretSource};

use crate::policy::RouteTable;
use crate::schema::roles::RoleTable;

/// The validated runtime configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Directory of the config file; relative paths were resolved against it.
    pub base_dir: PathBuf,
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub tokens: TokenConfig,
    pub accounts: AccountsConfig,
    pub mail: MailConfig,
    /// `[cors]`: preflights answered by the gateway; `None` without it.
    pub cors: Option<CorsConfig>,
    pub api_keys: ApiKeyConfig,
    pub headers: HeaderConfig,
    pub rbac: Arc<RoleTable>,
    pub upstreams: Vec<UpstreamConfig>,
    pub routes: Arc<RouteTable>,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub public_url: String,
    pub admin_listen: SocketAddr,
    pub threads: usize,
    pub max_body_bytes: u64,
    pub trusted_proxies: Vec<IpNet>,
    pub allow_semicolons: bool,
    pub shutdown_grace: Duration,
}

/// `Debug` hides the URL's password.
#[derive(Clone)]
pub struct DatabaseConfig {
    pub url: String,
    pub max_connections: u32,
    pub auto_migrate: bool,
    /// SQLite: once a burst of syncs of the write-ahead log is spent, the
    /// time one more is earned (group commit, `store::durability`);
    /// PostgreSQL ignores it.
    pub sync_interval: Duration,
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &units::redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("auto_migrate", &self.auto_migrate)
            .field("sync_interval", &self.sync_interval)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct TokenConfig {
    pub issuer: String,
    pub audience: Vec<String>,
    pub algorithm: KeyAlgorithm,
    pub signing_key: SecretSource,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub leeway: Duration,
    pub upstream_audience: String,
    pub trusted_issuers: Vec<TrustedIssuerConfig>,
}

#[derive(Debug, Clone)]
pub struct TrustedIssuerConfig {
    pub issuer: String,
    pub jwks: JwksSource,
    pub audience: Vec<String>,
    pub roles_claim: String,
    pub refresh: Duration,
}

#[derive(Debug, Clone)]
pub enum JwksSource {
    Url(String),
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct AccountsConfig {
    pub registration_open: bool,
    pub require_email_verification: bool,
    pub password: crate::crypto::password::Policy,
    pub argon2: crate::crypto::password::Cost,
    pub max_sessions_per_user: u32,
    pub lockout: LockoutPolicy,
    pub refresh_reuse_grace: Duration,
    /// From `POST /auth/account/delete` to the purge.
    pub deletion_grace: Duration,
    /// How often due deletions are purged.
    pub purge_interval: Duration,
    /// Shown by authenticator apps; `tokens.issuer` when unset.
    pub totp_issuer: Option<String>,
    pub cookie_secure: bool,
    /// The gateway's own secret (API-key tags; TOTP encryption).
    pub secret_encryption_key: SecretSource,
    pub throttle_login: Rate,
    pub throttle_register: Rate,
    pub throttle_forgot_password: Rate,
}

/// `[accounts.lockout]`: failures per key within `window` lock it for
/// `duration` (`store::lockouts` enforces it).
#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    pub max_failures: u32,
    pub window: chrono::Duration,
    pub duration: chrono::Duration,
}

#[derive(Debug, Clone)]
pub struct MailConfig {
    pub transport: MailTransport,
    /// Links in mails start here (no trailing `/`); never the request's Host.
    pub link_base: String,
    /// The `From:` mailbox, validated.
    pub from: String,
}

#[derive(Clone, PartialEq)]
pub enum MailTransport {
    /// Each message goes to the log, links included (trying it out).
    Log,
    /// One `.eml` file per message in this directory.
    File(PathBuf),
    /// An `smtp://` or `smtps://` URL (lettre's syntax), which may hold a
    /// password: never printed.
    Smtp(String),
}

impl std::fmt::Debug for MailTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Log => f.write_str("Log"),
            Self::File(dir) => f.debug_tuple("File").field(dir).finish(),
            Self::Smtp(_) => f.write_str("Smtp(***)"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ApiKeyConfig {
    /// Lower-cased header names that carry an API key.
    pub headers: Vec<String>,
    pub client_id_header: Option<String>,
}

#[derive(Debug, Clone)]
pub struct HeaderConfig {
    /// Lower-cased, `_` folded to `-`.
    pub strip_prefixes: Vec<String>,
    /// Lower-cased, `_` folded to `-`.
    pub strip: Vec<String>,
    pub identity_token: bool,
}

#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub name: String,
    pub backends: Vec<SocketAddr>,
    pub health_check: HealthCheck,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct HealthCheck {
    /// `Some(path)`: HTTP GET expecting 2xx; `None`: TCP connect.
    pub http_path: Option<String>,
    pub interval: Duration,
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Syntax(String),
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
}

impl ConfigError {
    /// One line per problem, for `check` and start-up errors.
    pub fn lines(&self) -> Vec<String> {
        match self {
            ConfigError::Invalid(problems) => problems.iter().map(ToString::to_string).collect(),
            other => other.to_string().lines().map(String::from).collect(),
        }
    }
}

impl Config {
    /// Reads and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base_dir = path
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(Path::new("."))
            .to_path_buf();
        Self::from_toml(&text, &base_dir)
    }

    /// Parses and validates TOML text; relative paths resolve against `base_dir`.
    pub fn from_toml(text: &str, base_dir: &Path) -> Result<Config, ConfigError> {
        let de = toml::Deserializer::parse(text).map_err(|e| syntax(e, text))?;
        let mut unknown = Vec::new();
        let file: file::FileConfig = serde_ignored::deserialize(de, |path| {
            unknown.push(path.to_string());
        })
        .map_err(|e| syntax(e, text))?;
        let mut problems = problems::Problems::default();
        for key in unknown {
            problems.add(key, "unknown key");
        }
        validate::validate(file, base_dir, problems)
            .map_err(|p| ConfigError::Invalid(p.into_vec(Some(text))))
    }
}

/// A TOML error as `line N: key: message`, without the excerpt of the
/// source line toml would print: that line may hold a secret.
fn syntax(mut e: toml::de::Error, text: &str) -> ConfigError {
    let line = e.span().map(|span| {
        let end = span.start.min(text.len());
        text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    });
    let message = e.message().replace('\n', "; ");
    // Without its input, toml prints the message and then `in `key``.
    e.set_input(None);
    let shown = e.to_string();
    let key = shown
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("in `")?.strip_suffix('`'));
    let mut out = String::new();
    if let Some(line) = line {
        out.push_str(&format!("line {line}: "));
    }
    if let Some(key) = key {
        out.push_str(&format!("{key}: "));
    }
    out.push_str(&message);
    ConfigError::Syntax(out)
}
