//! API keys (DESIGN.md §6, §10): their format, and verification on the hot
//! path.
//!
//! A key is `sk_` + base64url(32 random bytes ‖ 6-byte tag), where the tag
//! is an HMAC of the random part under a key derived from the gateway's
//! secret. A key with a wrong tag cannot have been issued here, so it is
//! refused without any lookup: a flood of random keys never reaches the
//! database. Keys are stored and looked up only as SHA-256.
//!
//! Verified keys live in a moka cache keyed by that hash: positive entries
//! for `POSITIVE_TTL` (so an owner's role change made on another instance
//! shows within that time; on this instance changes evict at once), short
//! negative entries for known-bad keys (revoked, expired, owner gone), and
//! a single database lookup per key however many requests race on a miss.
//! Lookups run on the account API's runtime, never on proxy threads. Each
//! hit stamps the entry's last use; `flush_usage` writes them in one batch.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{Hmac, Mac};
use moka::future::Cache;
use prometheus::IntCounter;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::jwt::{now_secs, CacheOutcome};
use crate::authz::RoleTable;
use crate::crypto::secret::ServerSecret;
use crate::crypto::tokens::{hex, sha256_hex};
use crate::error::GatewayError;
use crate::principal::{ApiKeyId, ApiKeyIdentity, OrgId, UserId, UserIdentity};
use crate::runtime::ApiRuntime;
use crate::store::api_keys::{self as store, KeyRecord};
use crate::store::LazyDb;

pub const KEY_PREFIX: &str = "sk_";
const RANDOM_BYTES: usize = 32;
const TAG_BYTES: usize = 6;
/// Characters of the key shown in lists (`sk_` and 8 more).
const SHOWN_CHARS: usize = 11;
const POSITIVE_TTL: Duration = Duration::from_secs(60);
const NEGATIVE_TTL: Duration = Duration::from_secs(10);
const CACHE_CAPACITY: u64 = 200_000;

/// Issues keys and recognises the ones this gateway could have issued.
pub struct KeyCodec {
    tag_key: [u8; 32],
}

/// A freshly issued key: shown once, stored as `hash`.
pub struct NewKey {
    pub key: String,
    pub hash: String,
    pub prefix: String,
}

impl KeyCodec {
    pub fn new(secret: &ServerSecret) -> KeyCodec {
        KeyCodec {
            tag_key: secret.derive("portcullis api-key tag v1"),
        }
    }

    fn tag(&self, random: &[u8]) -> [u8; TAG_BYTES] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.tag_key)
            .expect("HMAC takes keys of any length");
        mac.update(random);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; TAG_BYTES];
        tag.copy_from_slice(&full[..TAG_BYTES]);
        tag
    }

    pub fn generate(&self) -> NewKey {
        let mut raw = [0u8; RANDOM_BYTES + TAG_BYTES];
        rand::rng().fill_bytes(&mut raw[..RANDOM_BYTES]);
        let tag = self.tag(&raw[..RANDOM_BYTES]);
        raw[RANDOM_BYTES..].copy_from_slice(&tag);
        let key = format!(
            "{KEY_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        );
        NewKey {
            hash: sha256_hex(&key),
            prefix: key[..SHOWN_CHARS].to_string(),
            key,
        }
    }

    /// Whether `key` has this gateway's format and a valid tag.
    pub fn well_formed(&self, key: &str) -> bool {
        let Some(body) = key.strip_prefix(KEY_PREFIX) else {
            return false;
        };
        let mut raw = [0u8; RANDOM_BYTES + TAG_BYTES];
        match base64::engine::general_purpose::URL_SAFE_NO_PAD.decode_slice(body, &mut raw) {
            Ok(n) if n == raw.len() => {}
            _ => return false,
        }
        let expected = self.tag(&raw[..RANDOM_BYTES]);
        expected.ct_eq(&raw[RANDOM_BYTES..]).into()
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if text.len() != 64 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

struct CachedKey {
    identity: Arc<ApiKeyIdentity>,
    /// Last use in seconds, and the last value written to the database.
    used_at: AtomicI64,
    flushed_at: AtomicI64,
}

impl CachedKey {
    /// The last use not yet written, marking it written.
    fn take_usage(&self) -> Option<(Uuid, i64)> {
        let used = self.used_at.load(Ordering::Relaxed);
        let flushed = self.flushed_at.swap(used, Ordering::Relaxed);
        (used > flushed).then_some((self.identity.key_id.0, used))
    }
}

#[derive(Clone)]
enum Entry {
    Valid(Arc<CachedKey>),
    /// Unknown, revoked, expired, or its owner (when known) can no longer
    /// use it.
    Refused(Option<Uuid>),
}

impl Entry {
    fn owner_is(&self, owner: &str) -> bool {
        match self {
            Entry::Valid(k) => k.identity.owner.user_id.0 == owner,
            Entry::Refused(Some(id)) => id.to_string() == owner,
            Entry::Refused(None) => false,
        }
    }

    fn ttl(&self) -> Duration {
        match self {
            Entry::Valid(_) => POSITIVE_TTL,
            Entry::Refused(_) => NEGATIVE_TTL,
        }
    }
}

/// Each entry lives as long as its kind allows, also when it replaces an
/// entry of the other kind.
struct EntryExpiry;

impl moka::Expiry<[u8; 32], Entry> for EntryExpiry {
    fn expire_after_create(&self, _: &[u8; 32], value: &Entry, _: Instant) -> Option<Duration> {
        Some(value.ttl())
    }

    fn expire_after_update(
        &self,
        _: &[u8; 32],
        value: &Entry,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl())
    }
}

/// Counters for `portcullis_cache_requests_total{cache="api_key"}`.
pub struct KeyCounters {
    pub hit: IntCounter,
    /// A database lookup.
    pub miss: IntCounter,
    /// Refused by format or tag, before any lookup.
    pub rejected: IntCounter,
}

/// What a lookup needs to turn a row into an identity.
#[derive(Clone)]
pub struct KeyContext {
    pub issuer: String,
    pub rbac: Arc<RoleTable>,
    pub client_id_header: Option<String>,
}

pub struct ApiKeyVerifier {
    codec: Arc<KeyCodec>,
    cache: Cache<[u8; 32], Entry>,
    db: Arc<LazyDb>,
    runtime: ApiRuntime,
    context: Arc<KeyContext>,
    counters: KeyCounters,
    /// Uses of entries evicted before their use was written.
    evicted_usage: Arc<Mutex<Vec<(Uuid, i64)>>>,
}

impl ApiKeyVerifier {
    pub fn new(
        codec: Arc<KeyCodec>,
        db: Arc<LazyDb>,
        runtime: ApiRuntime,
        context: KeyContext,
        counters: KeyCounters,
    ) -> ApiKeyVerifier {
        let evicted_usage = Arc::new(Mutex::new(Vec::new()));
        let pending = evicted_usage.clone();
        let cache = Cache::builder()
            .max_capacity(CACHE_CAPACITY)
            .expire_after(EntryExpiry)
            .support_invalidation_closures()
            .eviction_listener(move |_key, value: Entry, _cause| {
                if let Entry::Valid(k) = value {
                    if let (Some(usage), Ok(mut pending)) = (k.take_usage(), pending.lock()) {
                        pending.push(usage);
                    }
                }
            })
            .build();
        ApiKeyVerifier {
            codec,
            cache,
            db,
            runtime,
            context: Arc::new(context),
            counters,
            evicted_usage,
        }
    }

    pub fn codec(&self) -> &KeyCodec {
        &self.codec
    }

    /// Verifies a presented key; `headers` are the request's (for the
    /// configured client-id header).
    pub async fn verify(
        &self,
        key: &str,
        headers: &http::HeaderMap,
    ) -> Result<(Arc<ApiKeyIdentity>, CacheOutcome), GatewayError> {
        let hash = digest(key);
        let now = now_secs();
        let (entry, outcome) = match self.cache.get(&hash).await {
            Some(entry) => {
                self.counters.hit.inc();
                (entry, CacheOutcome::Hit)
            }
            None => {
                if !self.codec.well_formed(key) {
                    self.counters.rejected.inc();
                    return Err(GatewayError::InvalidApiKey);
                }
                let entry = self
                    .cache
                    .try_get_with(hash, self.lookup(hash))
                    .await
                    .map_err(|e| (*e).clone())?;
                (entry, CacheOutcome::Miss)
            }
        };
        let Entry::Valid(cached) = entry else {
            return Err(GatewayError::InvalidApiKey);
        };
        let identity = &cached.identity;
        if identity.expires_at.is_some_and(|exp| exp <= now) {
            return Err(GatewayError::InvalidApiKey);
        }
        if let (Some(header), Some(bound)) = (&self.context.client_id_header, identity.client_id) {
            let presented = headers
                .get(header.as_str())
                .and_then(|v| v.to_str().ok())
                .and_then(|c| Uuid::parse_str(c.trim()).ok());
            if presented != Some(bound) {
                return Err(GatewayError::ClientIdMismatch);
            }
        }
        cached.used_at.fetch_max(now, Ordering::Relaxed);
        Ok((identity.clone(), outcome))
    }

    /// One database lookup, on the API runtime.
    fn lookup(
        &self,
        hash: [u8; 32],
    ) -> impl std::future::Future<Output = Result<Entry, GatewayError>> + Send + 'static {
        let db = self.db.clone();
        let context = self.context.clone();
        let runtime = self.runtime.clone();
        let miss = self.counters.miss.clone();
        async move {
            miss.inc();
            let record = runtime
                .run(async move {
                    let db = db.get().await?;
                    store::lookup(db, &hex(&hash)).await
                })
                .await?
                .map_err(GatewayError::from)?;
            let Some(record) = record else {
                return Ok(Entry::Refused(None));
            };
            let owner = record.user_id;
            Ok(match identity(record, &context, now_secs()) {
                Some(identity) => Entry::Valid(Arc::new(CachedKey {
                    identity: Arc::new(identity),
                    used_at: AtomicI64::new(0),
                    flushed_at: AtomicI64::new(0),
                })),
                None => Entry::Refused(Some(owner)),
            })
        }
    }

    /// Forgets a key (revoked or rotated): refused from the next request.
    pub async fn evict(&self, hash_hex: &str) {
        if let Some(hash) = unhex(hash_hex) {
            self.cache.invalidate(&hash).await;
        }
    }

    /// Forgets every key of `owner`, whose roles, memberships or status
    /// changed, refused ones included (a reactivated owner's keys work
    /// again): the next request looks them up again.
    pub fn evict_owner(&self, owner: Uuid) {
        let owner = owner.to_string();
        let result = self
            .cache
            .invalidate_entries_if(move |_, entry| entry.owner_is(&owner));
        if let Err(e) = result {
            tracing::error!(error = %e, "cannot evict cached API keys");
        }
    }

    /// Writes every key's last use since the previous flush, in one batch.
    pub async fn flush_usage(&self) {
        self.cache.run_pending_tasks().await;
        let mut batch: Vec<(Uuid, i64)> = self
            .evicted_usage
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        for (_, entry) in self.cache.iter() {
            if let Entry::Valid(k) = entry {
                batch.extend(k.take_usage());
            }
        }
        if batch.is_empty() {
            return;
        }
        let db = self.db.clone();
        let result = self
            .runtime
            .run(async move {
                let db = db.get().await?;
                store::record_usage(db, &batch).await
            })
            .await;
        // These uses are marked written either way: a failed batch is
        // logged, and each key's next use is written again.
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot record API key usage"),
            Err(e) => tracing::warn!(code = e.code(), "cannot record API key usage"),
        }
    }
}

/// The identity a stored key gives now, or `None` when it must be refused.
fn identity(r: KeyRecord, context: &KeyContext, now: i64) -> Option<ApiKeyIdentity> {
    let expires_at = r.expires_at.map(|t| t.timestamp());
    if r.revoked || !r.owner_active || expires_at.is_some_and(|exp| exp <= now) {
        return None;
    }
    let mut orgs = std::collections::HashMap::new();
    let mut scopes = r.scopes;
    if let Some(org) = r.org_id {
        // An org-bound key needs its owner still in the org, and never
        // carries a scope the owner's current role there does not grant.
        let role = r.org_role?;
        scopes.retain(|s| context.rbac.org_role_grants(role, s));
        orgs.insert(OrgId(org), role);
    }
    Some(ApiKeyIdentity {
        key_id: ApiKeyId(r.id),
        owner: UserIdentity {
            user_id: UserId(r.user_id.to_string()),
            issuer: context.issuer.clone(),
            email: Some(r.email),
            roles: r.roles,
            superuser: r.superuser,
            orgs,
            scopes,
            session: None,
            jti: r.id.to_string(),
            issued_at: r.created_at.timestamp(),
            expires_at: expires_at.unwrap_or(i64::MAX),
            amr: Vec::new(),
        },
        org: r.org_id.map(OrgId),
        client_id: r.client_id,
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> KeyCodec {
        KeyCodec::new(&ServerSecret::from_bytes(vec![7; 32]))
    }

    #[test]
    fn issued_keys_are_long_and_recognised() {
        let c = codec();
        let k = c.generate();
        assert!(k.key.starts_with("sk_"));
        assert!(k.key.len() >= 3 + 43, "{}", k.key);
        assert_eq!(k.prefix, &k.key[..11]);
        assert_eq!(k.hash, sha256_hex(&k.key));
        assert_ne!(k.key, c.generate().key);
        assert!(c.well_formed(&k.key));
    }

    #[test]
    fn forged_truncated_or_foreign_keys_are_refused_without_lookup() {
        let c = codec();
        let k = c.generate().key;
        let other = KeyCodec::new(&ServerSecret::from_bytes(vec![8; 32])).generate();
        assert!(!c.well_formed(&other.key), "another gateway's key");
        assert!(!c.well_formed(&k[..k.len() - 1]));
        assert!(!c.well_formed(&format!("{k}A")));
        assert!(!c.well_formed(&k.replacen("sk_", "pk_", 1)));
        let mut flipped = k.clone().into_bytes();
        let last = flipped.len() - 2;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        assert!(!c.well_formed(&String::from_utf8(flipped).unwrap()));
        assert!(!c.well_formed("sk_"));
        assert!(!c.well_formed("sk_!!!!"));
    }

    #[test]
    fn hex_round_trips() {
        let d = digest("x");
        assert_eq!(unhex(&hex(&d)), Some(d));
        assert_eq!(unhex("zz"), None);
    }
}
