//! Per-route rate limits (governor, GCRA): keyed by user, API key or client
//! IP. A request without the configured key (an anonymous caller on a
//! `key = "user"` route) is limited by its client IP, never unlimited.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::error::ceil_secs;
use crate::principal::Principal;
use crate::schema::file::RateLimitFile;
use crate::schema::units::{parse_rate, Rate};

pub use crate::error::refusals::RateLimitHeaders;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateKeyKind {
    User,
    Ip,
    ApiKey,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitSpec {
    pub key: RateKeyKind,
    pub rate: Rate,
    pub burst: u32,
}

impl RateLimitSpec {
    pub fn from_file(f: &RateLimitFile) -> Result<Self, String> {
        let key = match f.key.as_str() {
            "user" => RateKeyKind::User,
            "ip" => RateKeyKind::Ip,
            "key" => RateKeyKind::ApiKey,
            other => return Err(format!("key {other:?} is not one of user, ip, key")),
        };
        let rate = parse_rate(&f.rate)?;
        let burst = f.burst.unwrap_or(rate.count);
        if burst == 0 {
            return Err("burst must be at least 1".into());
        }
        Ok(Self { key, rate, burst })
    }
}

/// What a limiter is keyed by for one request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RateKey {
    /// (issuer, user id): users of different issuers never share a budget.
    User(String, String),
    ApiKey(uuid::Uuid),
    Ip(IpAddr),
}

impl RateKey {
    pub fn for_request(kind: RateKeyKind, principal: &Principal, client_ip: IpAddr) -> RateKey {
        match kind {
            // An API key's requests count against its owner.
            RateKeyKind::User => match principal.user() {
                Some(user) => RateKey::User(user.issuer.clone(), user.user_id.0.clone()),
                None => RateKey::Ip(client_ip),
            },
            // Requests without a key (a JWT, or none) fall back to the IP.
            RateKeyKind::ApiKey => match principal.api_key() {
                Some(key) => RateKey::ApiKey(key.key_id.0),
                None => RateKey::Ip(client_ip),
            },
            RateKeyKind::Ip => RateKey::Ip(client_ip),
        }
    }
}

type Keyed =
    RateLimiter<RateKey, DefaultKeyedStateStore<RateKey>, DefaultClock, StateInformationMiddleware>;

pub struct RouteLimiter {
    spec: RateLimitSpec,
    period: Duration,
    limiter: Keyed,
    clock: DefaultClock,
}

impl RouteLimiter {
    pub fn new(spec: &RateLimitSpec) -> Self {
        let period = spec.rate.per / spec.rate.count;
        let burst = NonZeroU32::new(spec.burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        Self {
            spec: spec.clone(),
            period,
            limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            clock: DefaultClock::default(),
        }
    }

    pub fn spec(&self) -> &RateLimitSpec {
        &self.spec
    }

    /// Takes one cell for `key`: `Ok` with the headers to send, or `Err`
    /// with the 429 headers.
    pub fn check(&self, key: &RateKey) -> Result<RateLimitHeaders, RateLimitHeaders> {
        let limit = self.spec.burst;
        match self.limiter.check_key(key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let used = limit.saturating_sub(remaining);
                Ok(RateLimitHeaders {
                    limit,
                    remaining,
                    reset_secs: if used == 0 {
                        0
                    } else {
                        ceil_secs(self.period * used)
                    },
                })
            }
            Err(not_until) => Err(RateLimitHeaders {
                limit,
                remaining: 0,
                reset_secs: ceil_secs(not_until.wait_time_from(self.clock.now())),
            }),
        }
    }

    /// Forgets keys whose state is back to full (bounded memory).
    pub fn retain_recent(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    pub fn tracked_keys(&self) -> usize {
        self.limiter.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(rate: &str, burst: Option<u32>) -> RateLimitSpec {
        RateLimitSpec::from_file(&RateLimitFile {
            key: "ip".into(),
            rate: rate.into(),
            burst,
        })
        .unwrap()
    }

    #[test]
    fn burst_then_limited_with_retry_after() {
        let l = RouteLimiter::new(&spec("2/m", None));
        let key = RateKey::Ip("127.0.0.1".parse().unwrap());
        let first = l.check(&key).unwrap();
        assert_eq!((first.limit, first.remaining), (2, 1));
        assert_eq!(l.check(&key).unwrap().remaining, 0);
        let denied = l.check(&key).unwrap_err();
        assert_eq!(denied.remaining, 0);
        assert!((1..=30).contains(&denied.reset_secs), "{denied:?}");
        // Another key is independent.
        assert!(l.check(&RateKey::Ip("10.0.0.1".parse().unwrap())).is_ok());
    }

    #[test]
    fn anonymous_callers_fall_back_to_ip() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            RateKey::for_request(RateKeyKind::User, &Principal::Anonymous, ip),
            RateKey::Ip(ip)
        );
        assert_eq!(
            RateKey::for_request(RateKeyKind::ApiKey, &Principal::Anonymous, ip),
            RateKey::Ip(ip)
        );
    }

    #[test]
    fn bad_specs() {
        let f = |key: &str, rate: &str, burst| {
            RateLimitSpec::from_file(&RateLimitFile {
                key: key.into(),
                rate: rate.into(),
                burst,
            })
        };
        assert!(f("nope", "1/s", None).is_err());
        assert!(f("ip", "0/s", None).is_err());
        assert!(f("ip", "1/s", Some(0)).is_err());
    }
}
