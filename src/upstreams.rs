//! Upstream pools: one round-robin `LoadBalancer` per `[[upstreams]]`, with
//! an active health check (HTTP GET of a path, or a TCP connect) running as
//! a background service. Selection skips unhealthy backends and backends
//! that already failed to connect for this request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pingora::http::{RequestHeader, ResponseHeader};
use pingora::lb::health_check::{HttpHealthCheck, TcpHealthCheck};
use pingora::lb::selection::RoundRobin;
use pingora::lb::LoadBalancer;
use pingora::services::background::{background_service, GenBackgroundService};
use pingora::upstreams::peer::HttpPeer;

use crate::config::UpstreamConfig;

/// Idle upstream connections are kept this long for reuse.
const UPSTREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(1);

pub struct Pool {
    pub config: UpstreamConfig,
    pub lb: Arc<LoadBalancer<RoundRobin>>,
}

pub struct Upstreams {
    pools: Vec<Pool>,
}

pub type HealthService = GenBackgroundService<LoadBalancer<RoundRobin>>;

impl Upstreams {
    /// Builds the pools and the health-check services that keep them current.
    pub fn build(configs: &[UpstreamConfig]) -> Result<(Upstreams, Vec<HealthService>), String> {
        let mut pools = Vec::with_capacity(configs.len());
        let mut services = Vec::with_capacity(configs.len());
        for cfg in configs {
            let mut lb = LoadBalancer::<RoundRobin>::try_from_iter(cfg.backends.iter().copied())
                .map_err(|e| format!("upstream {:?}: {e}", cfg.name))?;
            lb.set_health_check(health_check(cfg));
            lb.health_check_frequency = Some(cfg.health_check.interval);
            lb.parallel_health_check = true;
            let service = background_service(&format!("health check {}", cfg.name), lb);
            pools.push(Pool {
                config: cfg.clone(),
                lb: service.task(),
            });
            services.push(service);
        }
        Ok((Upstreams { pools }, services))
    }

    pub fn pool(&self, index: usize) -> Option<&Pool> {
        self.pools.get(index)
    }

    /// A healthy backend of pool `index` not in `exclude`.
    pub fn select(&self, index: usize, exclude: &[SocketAddr]) -> Option<SocketAddr> {
        let pool = self.pools.get(index)?;
        let tries = pool.config.backends.len().max(1) * 2;
        pool.lb
            .select_with(b"", tries, |backend, healthy| {
                healthy && backend.addr.as_inet().is_some_and(|a| !exclude.contains(a))
            })
            .and_then(|b| b.addr.as_inet().copied())
    }

    /// The peer for `addr` with the pool's timeouts.
    pub fn peer(&self, index: usize, addr: SocketAddr) -> Box<HttpPeer> {
        let mut peer = HttpPeer::new(addr, false, String::new());
        if let Some(pool) = self.pools.get(index) {
            peer.options.connection_timeout = Some(pool.config.connect_timeout);
            peer.options.read_timeout = Some(pool.config.read_timeout);
            peer.options.write_timeout = Some(pool.config.read_timeout);
        }
        peer.options.idle_timeout = Some(UPSTREAM_IDLE_TIMEOUT);
        Box::new(peer)
    }

    /// (upstream, backend, healthy) for every backend, for metrics.
    pub fn health(&self) -> Vec<(String, String, bool)> {
        let mut out = Vec::new();
        for pool in &self.pools {
            let backends = pool.lb.backends();
            for backend in backends.get_backend().iter() {
                out.push((
                    pool.config.name.clone(),
                    backend.addr.to_string(),
                    backends.ready(backend),
                ));
            }
        }
        out
    }
}

fn health_check(
    cfg: &UpstreamConfig,
) -> Box<dyn pingora::lb::health_check::HealthCheck + Send + Sync> {
    match &cfg.health_check.http_path {
        Some(path) => {
            let mut hc = HttpHealthCheck::new("localhost", false);
            if let Ok(mut req) = RequestHeader::build("GET", path.as_bytes(), None) {
                let _ = req.insert_header("Host", "localhost");
                let _ = req.insert_header("User-Agent", "portcullis-health-check");
                hc.req = req;
            }
            hc.peer_template.options.connection_timeout = Some(HEALTH_CHECK_TIMEOUT);
            hc.peer_template.options.read_timeout = Some(HEALTH_CHECK_TIMEOUT);
            hc.validator = Some(Box::new(|resp: &ResponseHeader| {
                if resp.status.is_success() {
                    Ok(())
                } else {
                    pingora::Error::e_explain(
                        pingora::ErrorType::Custom("unhealthy"),
                        format!("health check answered {}", resp.status),
                    )
                }
            }));
            Box::new(hc)
        }
        None => {
            let mut hc = TcpHealthCheck::new();
            hc.peer_template.options.connection_timeout = Some(HEALTH_CHECK_TIMEOUT);
            hc
        }
    }
}
