//! Throttles for the account endpoints (`[accounts.throttle]`), on top of
//! per-account lockout: a route limiter keyed by client IP, or by the email
//! address a mail would go to (so nobody can flood one inbox).

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
        self.check_key(&RateKey::Ip(ip))
    }

    /// One mail to `email_key` (a lower-cased address); 429 past the rate,
    /// whether or not an account has that address.
    pub fn check_recipient(&self, email_key: &str) -> Result<(), GatewayError> {
        self.check_key(&RateKey::User("mail-to".into(), email_key.into()))
    }

    fn check_key(&self, key: &RateKey) -> Result<(), GatewayError> {
        self.0
            .check(key)
            .map(|_| ())
            .map_err(|h| GatewayError::TooManyAttempts(h.reset_secs))
    }

    pub fn retain_recent(&self) {
        self.0.retain_recent();
    }
}
