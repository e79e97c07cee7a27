//! Per-client-IP throttles for the account endpoints (`[accounts.throttle]`),
//! on top of per-account lockout: a route limiter keyed by IP.

use std::net::IpAddr;

use crate::config::Rate;
use crate::error::GatewayError;
use crate::ratelimit::{RateKey, RateKeyKind, RateLimitSpec, RouteLimiter};

pub struct Throttle(RouteLimiter);

impl Throttle {
    pub fn new(rate: Rate) -> Self {
        Throttle(RouteLimiter::new(&RateLimitSpec {
            key: RateKeyKind::Ip,
            rate,
            burst: rate.count,
        }))
    }

    /// One attempt from `ip`; 429 with `Retry-After` past the rate.
    pub fn check(&self, ip: IpAddr) -> Result<(), GatewayError> {
        self.0
            .check(&RateKey::Ip(ip))
            .map(|_| ())
            .map_err(|h| GatewayError::TooManyAttempts(h.reset_secs))
    }

    pub fn retain_recent(&self) {
        self.0.retain_recent();
    }
}
