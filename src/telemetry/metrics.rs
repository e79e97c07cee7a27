//! Prometheus metrics named in DESIGN.md §10. Gauges that mirror other state
//! (upstream health, revocation counts, database syncs) are filled at scrape
//! time.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub request_duration: HistogramVec,
    pub auth_duration: HistogramVec,
    pub cache_requests: IntCounterVec,
    pub ratelimit_rejections: IntCounterVec,
    pub upstream_healthy: IntGaugeVec,
    pub revocations: IntGaugeVec,
    pub database_syncs: IntCounter,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "portcullis_requests_total",
                "Requests by route, status and decision",
            ),
            &["route", "status", "decision"],
        )?;
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "portcullis_request_duration_seconds",
                "Request duration by route",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
            &["route"],
        )?;
        let auth_duration = HistogramVec::new(
            HistogramOpts::new(
                "portcullis_auth_duration_seconds",
                "Authentication time by method",
            )
            .buckets(vec![
                0.000_005, 0.00001, 0.000_025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.05,
            ]),
            &["method"],
        )?;
        let cache_requests = IntCounterVec::new(
            Opts::new(
                "portcullis_cache_requests_total",
                "Cache lookups by cache and result",
            ),
            &["cache", "result"],
        )?;
        let ratelimit_rejections = IntCounterVec::new(
            Opts::new(
                "portcullis_ratelimit_rejections_total",
                "Requests refused by a rate limit",
            ),
            &["route"],
        )?;
        let upstream_healthy = IntGaugeVec::new(
            Opts::new(
                "portcullis_upstream_healthy",
                "1 when the backend passes its health check",
            ),
            &["upstream", "backend"],
        )?;
        let revocations = IntGaugeVec::new(
            Opts::new(
                "portcullis_revocations",
                "Entries in the in-memory revocation set",
            ),
            &["kind"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(request_duration.clone()))?;
        registry.register(Box::new(auth_duration.clone()))?;
        registry.register(Box::new(cache_requests.clone()))?;
        registry.register(Box::new(ratelimit_rejections.clone()))?;
        registry.register(Box::new(upstream_healthy.clone()))?;
        let database_syncs = IntCounter::new(
            "portcullis_database_syncs_total",
            "Syncs of SQLite's write-ahead log to disk (one per group of writes)",
        )?;
        registry.register(Box::new(revocations.clone()))?;
        registry.register(Box::new(database_syncs.clone()))?;
        Ok(Self {
            registry,
            requests,
            request_duration,
            auth_duration,
            cache_requests,
            ratelimit_rejections,
            upstream_healthy,
            revocations,
            database_syncs,
        })
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}
