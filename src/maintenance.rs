//! Background upkeep on the server's own runtime: JWKS refresh for trusted
//! issuers, pruning expired revocations, forgetting idle rate-limit keys,
//! writing API keys' last use in one batch per tick, and, every
//! `accounts.purge_interval`, purging accounts whose deletion is due (the
//! schedule is in the database, so it survives restarts) and forgetting
//! sessions that ended longer ago than their tokens live.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::authn::jwt::now_secs;
use crate::error::GatewayError;
use crate::state::AppState;

const TICK: Duration = Duration::from_secs(10);
const LIMITER_SWEEP: Duration = Duration::from_secs(60);

pub struct Maintenance {
    state: AppState,
}

impl Maintenance {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }

    /// Purges due account deletions, and forgets ended sessions and
    /// expired mailed tokens, on the API runtime (where the pool lives).
    /// Each runs whether or not the other failed; failures are logged and
    /// retried next interval.
    async fn purge(&self) {
        let accounts = self.state.accounts.clone();
        let ran = self
            .state
            .api_runtime
            .run(async move {
                let purged = accounts.purge_due_deletions().await;
                (purged, accounts.prune_ended().await)
            })
            .await;
        let warn = |what: &str, e: GatewayError| {
            tracing::warn!(
                error = e.detail(),
                cause = e.log_cause(),
                "{what} failed; retrying later"
            )
        };
        let (purged, pruned) = match ran {
            Ok(results) => results,
            Err(e) => return warn("account purge", e),
        };
        match purged {
            Ok(0) => {}
            Ok(n) => tracing::info!(accounts = n, "purged accounts whose deletion was due"),
            Err(e) => warn("account purge", e),
        }
        match pruned {
            Ok(0) => {}
            Ok(n) => tracing::debug!(sessions = n, "forgot sessions that ended"),
            Err(e) => warn("pruning ended sessions", e),
        }
    }
}

#[async_trait]
impl BackgroundService for Maintenance {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let issuers = self.state.external_issuers.clone();
        for issuer in issuers.iter() {
            issuer.refresh().await;
        }
        let mut refreshed: Vec<Instant> = issuers.iter().map(|_| Instant::now()).collect();
        let mut swept = Instant::now();
        let mut tick = tokio::time::interval(TICK);
        let mut purge = tokio::time::interval(self.state.config.accounts.purge_interval);
        purge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => {
                    // Nothing lost at a clean stop.
                    self.state.authenticator.api_keys.flush_usage().await;
                    break;
                }
                _ = purge.tick() => {
                    self.purge().await;
                    continue;
                }
                _ = tick.tick() => {}
            }
            self.state.authenticator.api_keys.flush_usage().await;
            let leeway = self.state.config.tokens.leeway.as_secs() as i64;
            self.state.revocations.prune_expired(now_secs(), leeway);
            if swept.elapsed() >= LIMITER_SWEEP {
                for limiter in self.state.limiters.iter().flatten() {
                    limiter.retain_recent();
                }
                let accounts = &self.state.accounts;
                for throttle in [
                    &accounts.login_throttle,
                    &accounts.register_throttle,
                    &accounts.mail_ip_throttle,
                    &accounts.mail_recipient_throttle,
                ] {
                    throttle.retain_recent();
                }
                swept = Instant::now();
            }
            for (issuer, last) in issuers.iter().zip(refreshed.iter_mut()) {
                if last.elapsed() >= issuer.config.refresh {
                    issuer.refresh().await;
                    *last = Instant::now();
                }
            }
        }
    }
}
