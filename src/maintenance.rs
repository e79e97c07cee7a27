//! Background upkeep on the server's own runtime: JWKS refresh for trusted
//! issuers, pruning expired revocations, forgetting idle rate-limit keys,
//! and writing API keys' last use in one batch per tick.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::authn::jwt::now_secs;
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
        loop {
            tokio::select! {
                _ = shutdown.changed() => {
                    // Nothing lost at a clean stop.
                    self.state.authenticator.api_keys.flush_usage().await;
                    break;
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
                self.state.accounts.login_throttle.retain_recent();
                self.state.accounts.register_throttle.retain_recent();
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
