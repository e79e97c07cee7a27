//! The in-memory revocation set (DESIGN.md §1 `[revoke]`): token ids
//! (`jti`), sessions, and per-user "not before" times. Checked on every
//! authenticated request, cache hit or not, with no network I/O. Later
//! stages fill it from the database at start and from Redis pub/sub; here it
//! is the single place the decision is made.

use std::collections::HashMap;
use std::sync::RwLock;

use crate::principal::{SessionId, UserIdentity};

/// Why a token is no longer accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    Token,
    Session,
    User,
}

/// Every entry carries the latest `exp` (seconds) a token it refuses can
/// have, so it can be dropped once no such token would verify anyway: the
/// set stays as small as the revocations of the last access-token lifetime,
/// however long the process runs.
#[derive(Debug, Default)]
pub struct RevocationSet {
    /// jti → the token's expiry.
    tokens: RwLock<HashMap<String, i64>>,
    /// session → latest expiry of a token of that session.
    sessions: RwLock<HashMap<SessionId, i64>>,
    /// user id → (tokens issued before this time are revoked, the latest
    /// expiry of such a token).
    users_not_before: RwLock<HashMap<String, (i64, i64)>>,
}

/// Poisoning only follows a panic elsewhere; the data is still consistent
/// (single inserts/removes), so keep serving.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

impl RevocationSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn revoke_token(&self, jti: &str, expires_at: i64) {
        write(&self.tokens).insert(jti.to_string(), expires_at);
    }

    /// Revokes every token of `session`; `until` is the latest expiry such
    /// a token can have.
    pub fn revoke_session(&self, session: SessionId, until: i64) {
        let mut sessions = write(&self.sessions);
        let entry = sessions.entry(session).or_insert(until);
        *entry = (*entry).max(until);
    }

    /// Revokes every token of `user_id` issued before `not_before`
    /// (seconds); `until` is the latest expiry such a token can have.
    pub fn revoke_user_before(&self, user_id: &str, not_before: i64, until: i64) {
        let mut users = write(&self.users_not_before);
        let entry = users
            .entry(user_id.to_string())
            .or_insert((not_before, until));
        *entry = (entry.0.max(not_before), entry.1.max(until));
    }

    /// The revocation decision for a verified token.
    pub fn check(&self, user: &UserIdentity) -> Result<(), Revoked> {
        if read(&self.tokens).contains_key(&user.jti) {
            return Err(Revoked::Token);
        }
        if let Some(session) = user.session {
            if read(&self.sessions).contains_key(&session) {
                return Err(Revoked::Session);
            }
        }
        if let Some(&(not_before, _)) = read(&self.users_not_before).get(&user.user_id.0) {
            if user.issued_at < not_before {
                return Err(Revoked::User);
            }
        }
        Ok(())
    }

    /// Drops entries whose tokens are all refused anyway: expired by more
    /// than the verification `leeway` (seconds).
    pub fn prune_expired(&self, now: i64, leeway: i64) {
        let live = |exp: i64| exp.saturating_add(leeway) >= now;
        write(&self.tokens).retain(|_, exp| live(*exp));
        write(&self.sessions).retain(|_, until| live(*until));
        write(&self.users_not_before).retain(|_, (_, until)| live(*until));
    }

    /// Entry counts by kind, for the `portcullis_revocations` gauge.
    pub fn counts(&self) -> [(&'static str, usize); 3] {
        [
            ("token", read(&self.tokens).len()),
            ("session", read(&self.sessions).len()),
            ("user", read(&self.users_not_before).len()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::UserId;

    fn token(jti: &str, session: Option<SessionId>, iat: i64) -> UserIdentity {
        UserIdentity {
            user_id: UserId("u1".into()),
            issuer: "portcullis".into(),
            email: None,
            roles: vec![],
            superuser: false,
            orgs: Default::default(),
            scopes: vec![],
            session,
            jti: jti.into(),
            issued_at: iat,
            expires_at: iat + 900,
            amr: vec![],
        }
    }

    #[test]
    fn each_kind_revokes() {
        let set = RevocationSet::new();
        let sid = SessionId(uuid::Uuid::new_v4());
        let t = token("a", Some(sid), 1000);
        assert_eq!(set.check(&t), Ok(()));
        set.revoke_token("a", 2000);
        assert_eq!(set.check(&t), Err(Revoked::Token));
        assert_eq!(set.check(&token("b", Some(sid), 1000)), Ok(()));
        set.revoke_session(sid, 1900);
        assert_eq!(
            set.check(&token("b", Some(sid), 1000)),
            Err(Revoked::Session)
        );
        assert_eq!(set.check(&token("c", None, 1000)), Ok(()));
        set.revoke_user_before("u1", 1500, 2400);
        assert_eq!(set.check(&token("c", None, 1000)), Err(Revoked::User));
        assert_eq!(
            set.check(&token("d", None, 1500)),
            Ok(()),
            "issued at the cut-off is fine"
        );
        // An older cut-off never loosens a newer one.
        set.revoke_user_before("u1", 100, 1000);
        assert_eq!(set.check(&token("c", None, 1000)), Err(Revoked::User));
    }

    #[test]
    fn pruning_keeps_live_tokens() {
        let set = RevocationSet::new();
        set.revoke_token("old", 10);
        set.revoke_token("live", 100);
        // exp 10 + leeway 45 ≥ now 50: the token would still verify, keep it.
        set.prune_expired(50, 45);
        assert_eq!(set.counts()[0], ("token", 2), "kept within the leeway");
        set.prune_expired(50, 30);
        assert_eq!(set.counts()[0], ("token", 1));
        assert_eq!(set.check(&token("live", None, 0)), Err(Revoked::Token));
    }

    /// Session and user entries go once their tokens have all expired, so
    /// logins that evict sessions, and logouts, do not grow the set for
    /// the life of the process.
    #[test]
    fn pruning_drops_dead_sessions_and_users() {
        let set = RevocationSet::new();
        let (old, live) = (
            SessionId(uuid::Uuid::new_v4()),
            SessionId(uuid::Uuid::new_v4()),
        );
        set.revoke_session(old, 10);
        set.revoke_session(live, 100);
        set.revoke_user_before("u1", 5, 10);
        set.revoke_user_before("u2", 90, 100);
        set.prune_expired(50, 40);
        assert_eq!(
            set.counts()[1..],
            [("session", 2), ("user", 2)],
            "within the leeway"
        );
        set.prune_expired(51, 40);
        assert_eq!(set.counts()[1..], [("session", 1), ("user", 1)]);
        assert_eq!(set.check(&token("x", Some(old), 0)), Ok(()));
        assert_eq!(set.check(&token("y", Some(live), 0)), Err(Revoked::Session));
        let mut by_u2 = token("z", None, 80);
        by_u2.user_id = UserId("u2".into());
        assert_eq!(set.check(&by_u2), Err(Revoked::User));
        // A later revocation of the same session extends its entry, never
        // shortens it.
        set.revoke_session(live, 20);
        set.prune_expired(100, 0);
        assert_eq!(set.check(&token("y", Some(live), 0)), Err(Revoked::Session));
    }
}
