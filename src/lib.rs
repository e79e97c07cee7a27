//! Portcullis: a reverse-proxy authentication gateway on pingora.
//!
//! A request flows through one pass of stages (DESIGN.md §1), each in its
//! own module; `gateway` wires them into pingora's hooks:
//!
//! - [`policy`]: normalize the path, match a route rule (pure);
//! - [`authn`]: find the credential, verify the JWT (cached) → `Principal`;
//! - [`revocation`]: in-memory deny-list of tokens, sessions, users;
//! - [`ratelimit`]: per-route governor limits keyed by user or client IP;
//! - [`authz`]: roles, permissions, scopes, tenancy (pure);
//! - [`gateway`]: header hygiene, identity headers; [`upstreams`]: pools;
//! - [`telemetry`]: metrics, logging; [`admin`]: the admin endpoints;
//! - [`api`] and [`accounts`]: the `/auth` endpoints and their logic;
//! - [`store`]: durable state on SQLite or PostgreSQL;
//! - [`crypto`]: passwords, opaque tokens, sealed secrets, TOTP;
//! - [`mail`]: queued outgoing mail (log, `.eml` files or SMTP);
//! - [`config`]: validation of the TOML file (its structs are in [`schema`]);
//! - [`error`]: the one error type and its problem+json form.
//!
//! Imports point down these floors (a module imports only its own floor or
//! lower, and never in a circle):
//!
//! 1. leaves: [`schema`] (config file structs, units, problems, the role
//!    table), [`crypto`], [`error`] (with the stages' refusal kinds),
//!    [`principal`], [`priority`];
//! 2. pure stages and their runtime: [`policy`], [`authz`], [`ratelimit`],
//!    [`revocation`], [`runtime`];
//! 3. [`config`]: the validated runtime config, holding compiled routes and roles;
//! 4. [`store`];
//! 5. [`authn`] and [`mail`];
//! 6. [`accounts`];
//! 7. [`api`], [`telemetry`] (metrics, logging) and [`upstreams`];
//! 8. [`state`]: the `AppState` of handles built from the floors below;
//! 9. the services that run on it: [`gateway`], [`admin`], maintenance;
//! 10. this crate root, [`cli`] and `main`.
//!
//! [`Gateway::build`] turns a validated [`config::Config`] into a runnable
//! server; [`Gateway::run`] serves until the shutdown signal fires.

pub mod accounts;
pub mod admin;
pub mod api;
pub mod authn;
pub mod authz;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod error;
pub mod gateway;
pub mod mail;
pub mod policy;
pub mod principal;
pub mod priority;
pub mod ratelimit;
pub mod revocation;
pub mod runtime;
pub mod schema;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod upstreams;

mod maintenance;

use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownSignalWatch};
use pingora::services::background::background_service;
use pingora::services::listening::Service;

pub use config::Config;
pub use state::AppState;

use upstreams::HealthService;

/// A gateway ready to run.
pub struct Gateway {
    state: AppState,
    health_services: Vec<HealthService>,
}

/// At start the database must be reachable: migrations run (unless
/// `auto_migrate = false`) and revoked sessions are loaded into the
/// in-memory set, so a restart forgets no revocation. This runs on its own
/// thread and runtime, whose pool is closed before serving starts (pools
/// are tied to the runtime that opened their connections).
fn prepare_database(state: &AppState) -> Result<(), String> {
    store::with_temporary(&state.config, async |db| {
        if state.config.database.auto_migrate {
            db.migrate().await.map_err(|e| format!("migrations: {e}"))?;
        }
        let loaded = accounts::load_revocations(db, &state.revocations, &state.config)
            .await
            .map_err(|e| format!("loading revocations: {}", e.detail()))?;
        tracing::info!(
            backend = db.backend(),
            revocations = loaded,
            "database ready"
        );
        Ok(())
    })
}

/// Fails at once, naming the key, when a listen address cannot be bound
/// (in use, or not an address of this machine). Left to pingora, the bind
/// is retried for 30 s and then only its listener thread dies: the process
/// lives on, serving nothing, and looks healthy to whoever supervises it.
fn ensure_bindable(server: &config::ServerConfig) -> Result<(), String> {
    let listeners = [
        ("server.listen", server.listen),
        ("server.admin_listen", server.admin_listen),
    ];
    for (key, addr) in listeners {
        // Closed again at once: a listener that never accepted leaves no
        // TIME_WAIT behind, so pingora's own bind right after succeeds.
        std::net::TcpListener::bind(addr)
            .map_err(|e| format!("{key}: cannot listen on {addr}: {e}"))?;
    }
    Ok(())
}

impl Gateway {
    /// Prepares everything that can fail before listening: the listen
    /// addresses, the signing key (created on first start), verifiers,
    /// limiters, upstream pools, the database.
    pub fn build(config: Config) -> Result<Gateway, String> {
        ensure_bindable(&config.server)?;
        // One TLS provider for the whole process (reqwest, pingora).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (state, health_services) = AppState::build(config)?;
        prepare_database(&state)?;
        Ok(Gateway {
            state,
            health_services,
        })
    }

    /// Shared handles, e.g. to revoke a session from a test or a later API.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves the proxy and admin listeners until `shutdown` fires. Blocks.
    pub fn run(self, shutdown: Box<dyn ShutdownSignalWatch>) {
        let server_cfg = &self.state.config.server;
        let grace = server_cfg.shutdown_grace.as_secs();
        let conf = ServerConf {
            threads: server_cfg.threads,
            grace_period_seconds: Some(grace),
            graceful_shutdown_timeout_seconds: Some(1),
            ..ServerConf::default()
        };
        let mut server = Server::new_with_opt_and_conf(None, conf);
        server.bootstrap();

        let mut proxy = pingora::proxy::http_proxy_service_with_name(
            &server.configuration,
            gateway::Proxy::new(self.state.clone()),
            "portcullis proxy",
        );
        proxy.add_tcp(&server_cfg.listen.to_string());

        let mut admin = Service::new(
            "portcullis admin".to_string(),
            admin::AdminApp::new(self.state.clone()),
        );
        admin.add_tcp(&server_cfg.admin_listen.to_string());
        admin.threads = Some(1);

        server.add_service(proxy);
        server.add_service(admin);
        for hc in self.health_services {
            server.add_service(hc);
        }
        server.add_service(background_service(
            "portcullis maintenance",
            maintenance::Maintenance::new(self.state.clone()),
        ));
        tracing::info!(
            listen = %server_cfg.listen,
            admin = %server_cfg.admin_listen,
            routes = self.state.config.routes.len(),
            "portcullis started"
        );
        server.run(RunArgs {
            shutdown_signal: shutdown,
        });
    }
}
