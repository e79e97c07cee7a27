//! Throttles for the account endpoints (`[accounts.throttle]`), on top of
//! per-account lockout: keyed by client IP, or by the email address a mail
//! would go to (so nobody can flood one inbox).
//!
//! A throttle of `"N/period"` allows exactly N attempts in any span of one
//! period (a sliding window of the attempts' times, on the accounts'
//! clock): the N+1st is refused with a `Retry-After` rounded up to the
//! moment the oldest attempt leaves the window, so waiting that long is
//! always enough. (The route limiters' GCRA would let a burst of N through
//! and then one more every period/N, more than N per period.)

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::clock::Clock;
use crate::config::Rate;
use crate::error::{ceil_secs, GatewayError};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Ip(IpAddr),
    Recipient(String),
}

pub struct Throttle {
    count: usize,
    window: chrono::Duration,
    clock: Clock,
    /// Per key, the times of the attempts still in the window (oldest
    /// first, at most `count`).
    attempts: Mutex<HashMap<Key, VecDeque<DateTime<Utc>>>>,
}

impl Throttle {
    pub fn new(rate: Rate, clock: Clock) -> Self {
        Throttle {
            count: rate.count as usize,
            window: chrono::Duration::from_std(rate.per).unwrap_or(chrono::Duration::MAX),
            clock,
            attempts: Mutex::default(),
        }
    }

    /// One attempt from `ip`; 429 with `Retry-After` past the rate.
    pub fn check(&self, ip: IpAddr) -> Result<(), GatewayError> {
        self.check_key(Key::Ip(ip))
    }

    /// One mail to `email_key` (a lower-cased address); 429 past the rate,
    /// whether or not an account has that address.
    pub fn check_recipient(&self, email_key: &str) -> Result<(), GatewayError> {
        self.check_key(Key::Recipient(email_key.into()))
    }

    fn check_key(&self, key: Key) -> Result<(), GatewayError> {
        let now = self.clock.now();
        let mut attempts = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        let seen = attempts.entry(key).or_default();
        self.forget_old(seen, now);
        match seen.front() {
            Some(oldest) if seen.len() >= self.count => {
                let wait = (*oldest + self.window - now).to_std().unwrap_or_default();
                Err(GatewayError::TooManyAttempts(ceil_secs(wait)))
            }
            _ => {
                seen.push_back(now);
                Ok(())
            }
        }
    }

    /// Drops attempts that have left the window: one made at `t` counts
    /// until `t + window`, exclusive.
    fn forget_old(&self, seen: &mut VecDeque<DateTime<Utc>>, now: DateTime<Utc>) {
        while seen.front().is_some_and(|t| *t + self.window <= now) {
            seen.pop_front();
        }
    }

    /// Forgets keys with no attempt left in the window (bounded memory).
    pub fn retain_recent(&self) {
        let now = self.clock.now();
        let mut attempts = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        attempts.retain(|_, seen| {
            self.forget_old(seen, now);
            !seen.is_empty()
        });
        attempts.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::units::parse_rate;

    #[test]
    fn exactly_the_count_per_window_and_an_honest_retry_after() {
        let clock = Clock::default();
        let t = Throttle::new(parse_rate("4/m").unwrap(), clock.clone());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for n in 1..=4 {
            assert!(t.check(ip).is_ok(), "attempt {n}");
        }
        let Err(GatewayError::TooManyAttempts(secs)) = t.check(ip) else {
            panic!("the fifth attempt is refused");
        };
        assert!((59..=60).contains(&secs), "Retry-After {secs}");
        // Not even one slot comes back before the window has passed.
        clock.advance(chrono::Duration::seconds(30));
        assert!(t.check(ip).is_err(), "still four in the last minute");
        assert!(t.check("192.0.2.2".parse().unwrap()).is_ok(), "per IP");
        let Err(GatewayError::TooManyAttempts(secs)) = t.check(ip) else {
            panic!("refused");
        };
        clock.advance(chrono::Duration::seconds(secs as i64));
        for n in 1..=4 {
            assert!(t.check(ip).is_ok(), "after Retry-After, attempt {n}");
        }
        assert!(t.check(ip).is_err());
        t.retain_recent();
        clock.advance(chrono::Duration::seconds(61));
        t.retain_recent();
        assert!(t.attempts.lock().unwrap().is_empty(), "forgotten");
    }
}
