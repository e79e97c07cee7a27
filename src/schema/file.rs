//! The config file as written: serde structs mirroring DESIGN.md §3 key for
//! key. Every default lives here, once, in a `Default` impl. Values stay as
//! the user wrote them (strings for durations, rates, secrets); `validate`
//! turns them into typed runtime values. Unknown keys are collected by
//! `serde_ignored` in `load` so that all of them are reported at once.

use serde::Deserialize;

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct FileConfig {
    pub server: ServerFile,
    pub database: DatabaseFile,
    pub redis: Option<RedisFile>,
    pub tokens: TokensFile,
    pub accounts: AccountsFile,
    pub api_keys: ApiKeysFile,
    pub mail: MailFile,
    pub cors: Option<CorsFile>,
    pub headers: HeadersFile,
    pub rbac: RbacFile,
    pub upstreams: Vec<UpstreamFile>,
    pub routes: Vec<RouteFile>,
    pub policy: PolicyFile,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct ServerFile {
    pub listen: String,
    pub public_url: Option<String>,
    pub admin_listen: String,
    pub threads: usize,
    pub max_body_bytes: u64,
    pub trusted_proxies: Vec<String>,
    pub allow_semicolons: bool,
    /// How long in-flight requests may run after SIGTERM before the process
    /// exits (extension of §3; pingora's own default is 300 s).
    pub shutdown_grace: String,
    pub tls: Option<TlsFile>,
}

impl Default for ServerFile {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            admin_listen: "127.0.0.1:9090".into(),
            threads: 2,
            max_body_bytes: 65_536,
            trusted_proxies: Vec::new(),
            allow_semicolons: false,
            shutdown_grace: "5s".into(),
            tls: None,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct TlsFile {
    pub cert: String,
    pub key: String,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct DatabaseFile {
    pub url: String,
    pub max_connections: u32,
    pub auto_migrate: bool,
    pub sync_interval: String,
}

impl Default for DatabaseFile {
    fn default() -> Self {
        Self {
            url: "sqlite://data/portcullis.db".into(),
            max_connections: 8,
            auto_migrate: true,
            sync_interval: "500ms".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RedisFile {
    pub url: String,
    pub prefix: String,
}

impl Default for RedisFile {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".into(),
            prefix: "portcullis:".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct TokensFile {
    pub issuer: String,
    pub audience: Vec<String>,
    pub algorithm: String,
    pub signing_key: String,
    pub access_ttl: String,
    pub refresh_ttl: String,
    pub leeway: String,
    /// `aud` of the `X-Auth-Token` identity assertion (§10).
    pub upstream_audience: String,
    pub trusted_issuers: Vec<TrustedIssuerFile>,
}

impl Default for TokensFile {
    fn default() -> Self {
        Self {
            issuer: "portcullis".into(),
            audience: vec!["portcullis".into()],
            algorithm: "EdDSA".into(),
            signing_key: "file:data/signing-key.pem".into(),
            access_ttl: "15m".into(),
            refresh_ttl: "30d".into(),
            leeway: "30s".into(),
            upstream_audience: "portcullis-upstream".into(),
            trusted_issuers: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct TrustedIssuerFile {
    pub issuer: String,
    pub jwks_url: Option<String>,
    pub jwks_file: Option<String>,
    #[serde(default)]
    pub audience: Vec<String>,
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// How often the JWKS is re-fetched (URL) or re-read (file).
    #[serde(default = "default_jwks_refresh")]
    pub refresh: String,
}

fn default_roles_claim() -> String {
    "roles".into()
}

fn default_jwks_refresh() -> String {
    "10m".into()
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct AccountsFile {
    pub registration: String,
    pub require_email_verification: bool,
    pub password_min_length: usize,
    pub require_uppercase: bool,
    pub require_lowercase: bool,
    pub require_digit: bool,
    pub require_symbol: bool,
    pub argon2: Argon2File,
    pub max_sessions_per_user: u32,
    pub lockout: LockoutFile,
    pub deletion_grace: String,
    pub purge_interval: String,
    pub totp_issuer: Option<String>,
    pub refresh_reuse_grace: String,
    pub cookie_secure: bool,
    pub secret_encryption_key: String,
    pub throttle: ThrottleFile,
}

impl Default for AccountsFile {
    fn default() -> Self {
        Self {
            registration: "open".into(),
            require_email_verification: false,
            password_min_length: 12,
            require_uppercase: false,
            require_lowercase: false,
            require_digit: false,
            require_symbol: false,
            argon2: Argon2File::default(),
            max_sessions_per_user: 10,
            lockout: LockoutFile::default(),
            deletion_grace: "7d".into(),
            purge_interval: "1m".into(),
            totp_issuer: None,
            refresh_reuse_grace: "10s".into(),
            cookie_secure: true,
            secret_encryption_key: "file:data/secret.key".into(),
            throttle: ThrottleFile::default(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct Argon2File {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2File {
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct LockoutFile {
    pub max_failures: u32,
    pub window: String,
    pub duration: String,
}

impl Default for LockoutFile {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window: "10m".into(),
            duration: "15m".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct ThrottleFile {
    pub login: String,
    pub register: String,
    pub forgot_password: String,
}

impl Default for ThrottleFile {
    fn default() -> Self {
        Self {
            login: "30/m".into(),
            register: "10/h".into(),
            forgot_password: "10/h".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct ApiKeysFile {
    pub headers: Vec<String>,
    pub client_id_header: Option<String>,
}

impl Default for ApiKeysFile {
    fn default() -> Self {
        Self {
            headers: vec!["X-API-Key".into()],
            client_id_header: None,
        }
    }
}

pub const DEFAULT_OUTBOX_DIR: &str = "data/outbox";

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct MailFile {
    pub mode: String,
    pub link_base: Option<String>,
    /// `mode = "file"` only; unset means [`DEFAULT_OUTBOX_DIR`].
    pub outbox_dir: Option<String>,
    /// `mode = "smtp"` only.
    pub smtp_url: Option<String>,
    pub from: Option<String>,
}

impl MailFile {
    pub fn outbox_dir(&self) -> &str {
        self.outbox_dir.as_deref().unwrap_or(DEFAULT_OUTBOX_DIR)
    }
}

impl Default for MailFile {
    fn default() -> Self {
        Self {
            mode: "log".into(),
            link_base: None,
            outbox_dir: None,
            smtp_url: None,
            from: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct CorsFile {
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Vec<String>,
    pub allowed_headers: Vec<String>,
    pub allow_credentials: bool,
    pub max_age: String,
}

impl Default for CorsFile {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            allowed_methods: ["GET", "POST", "PUT", "PATCH", "DELETE"]
                .map(String::from)
                .to_vec(),
            allowed_headers: [
                "Authorization",
                "Content-Type",
                "X-API-Key",
                "X-Requested-With",
            ]
            .map(String::from)
            .to_vec(),
            allow_credentials: true,
            max_age: "10m".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct HeadersFile {
    pub strip_prefixes: Vec<String>,
    pub strip: Vec<String>,
    pub identity_token: bool,
}

impl Default for HeadersFile {
    fn default() -> Self {
        Self {
            strip_prefixes: vec!["X-Auth-".into()],
            strip: [
                "X-Forwarded-User",
                "X-Forwarded-Email",
                "Remote-User",
                "Remote-Groups",
            ]
            .map(String::from)
            .to_vec(),
            identity_token: false,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RbacFile {
    pub roles: std::collections::BTreeMap<String, Vec<String>>,
}

impl Default for RbacFile {
    fn default() -> Self {
        let role = |perms: &[&str]| perms.iter().map(|p| p.to_string()).collect();
        Self {
            roles: [
                ("viewer".to_string(), role(&["*:read"])),
                ("member".to_string(), role(&["*:read", "*:write"])),
                (
                    "admin".to_string(),
                    role(&["*:read", "*:write", "members:manage", "keys:manage"]),
                ),
                ("owner".to_string(), role(&["*"])),
            ]
            .into_iter()
            .collect(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct UpstreamFile {
    pub name: String,
    pub backends: Vec<String>,
    pub health_check: Option<HealthCheckFile>,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: String,
    #[serde(default = "default_read_timeout")]
    pub read_timeout: String,
}

fn default_connect_timeout() -> String {
    "2s".into()
}

fn default_read_timeout() -> String {
    "30s".into()
}

#[derive(Debug, Deserialize)]
pub struct HealthCheckFile {
    /// HTTP path to GET; without it the check is a TCP connect.
    pub path: Option<String>,
    #[serde(default = "default_health_interval")]
    pub interval: String,
}

pub fn default_health_interval() -> String {
    "5s".into()
}

#[derive(Debug, Deserialize)]
pub struct RouteFile {
    pub name: String,
    pub hosts: Option<Vec<String>>,
    pub path: String,
    pub methods: Option<Vec<String>>,
    pub upstream: Option<String>,
    pub auth: String,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub permissions: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub org_param: Option<String>,
    #[serde(default)]
    pub mfa: bool,
    pub rate_limit: Option<RateLimitFile>,
    pub strip_path_prefix: Option<String>,
    pub max_body_bytes: Option<u64>,
    /// The caller's `Authorization` / API-key header reaches the backend.
    #[serde(default)]
    pub forward_credentials: bool,
}

#[derive(Debug, Deserialize)]
pub struct RateLimitFile {
    #[serde(default = "default_rate_key")]
    pub key: String,
    pub rate: String,
    pub burst: Option<u32>,
}

fn default_rate_key() -> String {
    "ip".into()
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct PolicyFile {
    pub default: String,
}

impl Default for PolicyFile {
    fn default() -> Self {
        Self {
            default: "deny".into(),
        }
    }
}
