//! `AppState`: the gateway's shared handles, built once from the validated
//! config and cloned cheaply into every service (no globals).

use std::sync::Arc;

use crate::accounts::Accounts;
use crate::api::ApiState;
use crate::authn::api_keys::{ApiKeyVerifier, KeyCodec, KeyContext, KeyCounters};
use crate::authn::jwks::ExternalIssuer;
use crate::authn::jwt::TokenVerifier;
use crate::authn::keys::SigningKey;
use crate::authn::Authenticator;
use crate::config::Config;
use crate::crypto::seal::Sealer;
use crate::crypto::secret::ServerSecret;
use crate::mail::Mailer;
use crate::ratelimit::RouteLimiter;
use crate::revocation::RevocationSet;
use crate::runtime::ApiRuntime;
use crate::store::LazyDb;
use crate::telemetry::Metrics;
use crate::upstreams::{HealthService, Upstreams};

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub signing_key: Arc<SigningKey>,
    pub authenticator: Arc<Authenticator>,
    pub revocations: Arc<RevocationSet>,
    /// One slot per route (same index as the route table).
    pub limiters: Arc<Vec<Option<RouteLimiter>>>,
    pub upstreams: Arc<Upstreams>,
    pub external_issuers: Arc<Vec<Arc<ExternalIssuer>>>,
    pub metrics: Arc<Metrics>,
    pub accounts: Arc<Accounts>,
    /// The `/auth` router (axum), called in-process on `api_runtime`.
    pub api: axum::Router,
    pub api_runtime: ApiRuntime,
}

impl AppState {
    /// Builds the state: loads (or on first start creates) the signing key,
    /// prepares verifiers, limiters and upstream pools. Returns the health
    /// services the server must run.
    pub fn build(config: Config) -> Result<(AppState, Vec<HealthService>), String> {
        let config = Arc::new(config);
        let signing_key = Arc::new(
            SigningKey::load_or_create(config.tokens.algorithm, &config.tokens.signing_key)
                .map_err(|e| format!("tokens.signing_key: {e}"))?,
        );
        let client = reqwest::Client::builder()
            .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let external_issuers: Vec<Arc<ExternalIssuer>> = config
            .tokens
            .trusted_issuers
            .iter()
            .map(|ti| Arc::new(ExternalIssuer::new(ti.clone(), client.clone())))
            .collect();
        let revocations = Arc::new(RevocationSet::new());
        let verifier = TokenVerifier::new(
            &config.tokens,
            signing_key.clone(),
            external_issuers.clone(),
        );
        let metrics = Metrics::new().map_err(|e| format!("metrics: {e}"))?;
        let db = Arc::new(LazyDb::new(
            config.database.clone(),
            config.base_dir.clone(),
        ));
        let api_runtime = ApiRuntime::start(1)?;
        let secret = ServerSecret::load_or_create(&config.accounts.secret_encryption_key)
            .map_err(|e| format!("accounts.secret_encryption_key: {e}"))?;
        let counter = |result: &str| {
            metrics
                .cache_requests
                .with_label_values(&["api_key", result])
        };
        let api_keys = Arc::new(ApiKeyVerifier::new(
            Arc::new(KeyCodec::new(&secret)),
            db.clone(),
            api_runtime.clone(),
            KeyContext {
                issuer: config.tokens.issuer.clone(),
                rbac: config.rbac.clone(),
                client_id_header: config.api_keys.client_id_header.clone(),
            },
            KeyCounters {
                hit: counter("hit"),
                miss: counter("miss"),
                rejected: counter("rejected"),
            },
        ));
        let authenticator = Arc::new(Authenticator::new(
            verifier,
            revocations.clone(),
            api_keys.clone(),
            config.api_keys.headers.clone(),
        ));
        let limiters = config
            .routes
            .rules()
            .iter()
            .map(|r| r.rate_limit.as_ref().map(RouteLimiter::new))
            .collect();
        let (upstreams, health_services) = Upstreams::build(&config.upstreams)?;
        let accounts = Arc::new(Accounts::new(
            config.clone(),
            signing_key.clone(),
            revocations.clone(),
            db,
            api_keys,
            Mailer::start(&config.mail, &api_runtime)?,
            Sealer::new(&secret, crate::accounts::TOTP_SEAL_LABEL),
        )?);
        let api = crate::api::router(Arc::new(ApiState {
            accounts: accounts.clone(),
            authenticator: authenticator.clone(),
        }));
        Ok((
            AppState {
                config,
                signing_key,
                authenticator,
                revocations,
                limiters: Arc::new(limiters),
                upstreams: Arc::new(upstreams),
                external_issuers: Arc::new(external_issuers),
                metrics: Arc::new(metrics),
                accounts,
                api,
                api_runtime,
            },
            health_services,
        ))
    }
}
