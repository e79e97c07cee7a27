//! Trusted external issuers (`[[tokens.trusted_issuers]]`): their JWKS,
//! read from a file or fetched from a URL with timeouts, refreshed on an
//! interval and single-flight, the stale copy kept when a fetch fails. A
//! token with an unknown `kid` triggers at most one refetch per cooldown;
//! keys are never fetched from token headers (`jku`, `x5u`, `jwk`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};

use crate::config::{JwksSource, TrustedIssuerConfig};

/// Minimum time between two fetches triggered by unknown `kid`s.
pub const UNKNOWN_KID_COOLDOWN: Duration = Duration::from_secs(30);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// JWKS documents larger than this are refused.
const MAX_JWKS_BYTES: usize = 256 * 1024;

#[derive(Clone)]
pub struct VerifyKey {
    pub key: Arc<DecodingKey>,
    pub algorithm: Algorithm,
}

pub struct ExternalIssuer {
    pub config: TrustedIssuerConfig,
    keys: ArcSwap<HashMap<String, VerifyKey>>,
    refresh_lock: tokio::sync::Mutex<()>,
    /// Milliseconds since `epoch` of the last fetch attempt (any cause).
    last_fetch_ms: AtomicU64,
    /// Milliseconds since `epoch` of the last fetch an unknown `kid` caused;
    /// scheduled refreshes do not count against this cooldown.
    last_kid_fetch_ms: AtomicU64,
    epoch: Instant,
    client: reqwest::Client,
}

impl ExternalIssuer {
    pub fn new(config: TrustedIssuerConfig, client: reqwest::Client) -> Self {
        Self {
            config,
            keys: ArcSwap::from_pointee(HashMap::new()),
            refresh_lock: tokio::sync::Mutex::new(()),
            last_fetch_ms: AtomicU64::new(0),
            last_kid_fetch_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            client,
        }
    }

    /// The verification key for `kid`, refetching once per cooldown when it
    /// is unknown (the issuer may have rotated).
    pub async fn key(&self, kid: &str) -> Option<VerifyKey> {
        if let Some(k) = self.keys.load().get(kid) {
            return Some(k.clone());
        }
        let now = self.elapsed_ms();
        let last = self.last_kid_fetch_ms.load(Ordering::Acquire);
        let cooled = now.saturating_sub(last) >= UNKNOWN_KID_COOLDOWN.as_millis() as u64;
        // Only one of the racing requests wins the right to refetch; the
        // others wait for that fetch to finish.
        if cooled
            && self
                .last_kid_fetch_ms
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.refresh().await;
        } else if cooled {
            drop(self.refresh_lock.lock().await);
        }
        self.keys.load().get(kid).cloned()
    }

    fn elapsed_ms(&self) -> u64 {
        // +1 so that "never fetched" (0) is always past the cooldown.
        self.epoch.elapsed().as_millis() as u64 + UNKNOWN_KID_COOLDOWN.as_millis() as u64 + 1
    }

    /// Re-reads the key set. Concurrent callers wait for the one fetch in
    /// flight instead of starting their own. On failure the old keys stay.
    pub async fn refresh(&self) {
        let started = self.last_fetch_ms.load(Ordering::Acquire);
        let _guard = self.refresh_lock.lock().await;
        if self.last_fetch_ms.load(Ordering::Acquire) != started {
            return; // someone else refreshed while we waited
        }
        self.last_fetch_ms
            .store(self.elapsed_ms(), Ordering::Release);
        match self.fetch().await {
            Ok(keys) => {
                tracing::debug!(issuer = %self.config.issuer, keys = keys.len(), "JWKS refreshed");
                self.keys.store(Arc::new(keys));
            }
            Err(e) => {
                tracing::warn!(issuer = %self.config.issuer, error = %e, "JWKS refresh failed; keeping the previous keys")
            }
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, VerifyKey>, String> {
        let body = match &self.config.jwks {
            JwksSource::File(path) => tokio::fs::read(path)
                .await
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            JwksSource::Url(url) => {
                let resp = self
                    .client
                    .get(url)
                    .timeout(FETCH_TIMEOUT)
                    .send()
                    .await
                    .map_err(|e| format!("GET {url}: {e}"))?;
                if !resp.status().is_success() {
                    return Err(format!("GET {url}: status {}", resp.status()));
                }
                let bytes = resp.bytes().await.map_err(|e| format!("GET {url}: {e}"))?;
                bytes.to_vec()
            }
        };
        if body.len() > MAX_JWKS_BYTES {
            return Err(format!("JWKS is larger than {MAX_JWKS_BYTES} bytes"));
        }
        parse_jwks(&body)
    }
}

/// Usable signature keys of a JWKS, by `kid`. Keys without `kid`, symmetric
/// keys and keys of unsupported types are skipped.
pub fn parse_jwks(body: &[u8]) -> Result<HashMap<String, VerifyKey>, String> {
    let set: JwkSet = serde_json::from_slice(body).map_err(|e| format!("not a JWK set: {e}"))?;
    let mut out = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        let default_alg = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
                Algorithm::ES256
            }
            AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P384 => {
                Algorithm::ES384
            }
            AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
            _ => continue,
        };
        let algorithm = match jwk.common.key_algorithm {
            Some(ka) => match ka.to_string().parse::<Algorithm>() {
                Ok(a) if !matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) => a,
                _ => continue,
            },
            None => default_alg,
        };
        if let Ok(key) = DecodingKey::from_jwk(jwk) {
            out.insert(
                kid,
                VerifyKey {
                    key: Arc::new(key),
                    algorithm,
                },
            );
        }
    }
    Ok(out)
}
