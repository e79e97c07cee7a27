//! Account deletion: scheduling after `accounts.deletion_grace` (all
//! sessions end at once, API keys stop working), cancelling by logging in
//! again during the grace period, and the purge the maintenance job runs.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::tokens::{latest_exp, revocation_memory};
use super::{Accounts, Client};
use crate::error::GatewayError;
use crate::mail::templates;
use crate::store::audit;
use crate::store::deletion::{self, Purge, Scheduled};

/// Accounts purged per pass; the rest wait for the next pass.
const PURGE_BATCH: u32 = 100;

impl Accounts {
    /// `POST /auth/account/delete`: needs the password. An earlier schedule
    /// stands. Returns when the account will be deleted.
    pub async fn schedule_deletion(
        &self,
        user_id: Uuid,
        password: &str,
        client: &Client,
    ) -> Result<DateTime<Utc>, GatewayError> {
        let db = self.db().await?;
        let user = self.signed_in_user(db, user_id).await?;
        self.confirm_password(&user, password, "password").await?;
        let now = self.clock.now();
        let grace = chrono::Duration::from_std(self.config.accounts.deletion_grace)
            .unwrap_or(chrono::Duration::MAX);
        let at = now
            .checked_add_signed(grace)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let (when, sessions) = match deletion::schedule(db, user.id, at, now).await? {
            Scheduled::At(when, sessions) => (when, sessions),
            Scheduled::LastOwner(orgs) => return Err(GatewayError::OrgsNeedOwner(orgs)),
        };
        self.revoke_in_memory(sessions.iter().copied());
        self.keys.evict_owner(user.id);
        let when_text = super::clock::rfc3339(when);
        self.mailer
            .send(&user.email, templates::deletion_scheduled(&when_text));
        audit::record(
            db,
            "account_deletion_scheduled",
            Some(user.id),
            Some(user.id),
            &client.origin(),
            serde_json::json!({"scheduled_for": when_text, "sessions_revoked": sessions}),
        )
        .await;
        Ok(when)
    }

    /// `POST /auth/account/delete/cancel`. Idempotent.
    pub async fn cancel_deletion(
        &self,
        user_id: Uuid,
        client: &Client,
    ) -> Result<(), GatewayError> {
        let db = self.db().await?;
        if deletion::cancel(db, user_id, self.clock.now()).await? {
            // Cached refusals of the owner's keys must go.
            self.keys.evict_owner(user_id);
            audit::record(
                db,
                "account_deletion_cancelled",
                Some(user_id),
                Some(user_id),
                &client.origin(),
                serde_json::json!({}),
            )
            .await;
        }
        Ok(())
    }

    /// `GET /auth/account/delete`.
    pub async fn deletion_status(
        &self,
        user_id: Uuid,
    ) -> Result<Option<DateTime<Utc>>, GatewayError> {
        let db = self.db().await?;
        let user = self.signed_in_user(db, user_id).await?;
        Ok(user.deletion_scheduled_for)
    }

    /// Deletes every account whose grace period is over (one batch);
    /// returns how many went. Run by the maintenance job.
    pub async fn purge_due_deletions(&self) -> Result<usize, GatewayError> {
        let db = self.db().await?;
        let now = self.clock.now();
        let mut purged = 0;
        for user in deletion::due(db, now, PURGE_BATCH).await? {
            match deletion::purge(db, user, now).await? {
                Purge::Done {
                    sessions,
                    key_hashes,
                } => {
                    self.revoke_in_memory(sessions.iter().copied());
                    // Also tokens of sessions a racing login opened.
                    self.revocations.revoke_user_before(
                        &user.to_string(),
                        i64::MAX,
                        latest_exp(&self.config, now.timestamp()),
                    );
                    for hash in &key_hashes {
                        self.keys.evict(hash).await;
                    }
                    audit::record(
                        db,
                        "account_deleted",
                        Some(user),
                        None,
                        &audit::Origin::default(),
                        serde_json::json!({"api_keys": key_hashes.len()}),
                    )
                    .await;
                    purged += 1;
                }
                Purge::Blocked(orgs) => {
                    tracing::warn!(%user, ?orgs, "account deletion waits: last owner of orgs with other members");
                }
                Purge::NotDue => {}
            }
        }
        deletion::forget_purged(db, now - revocation_memory(&self.config)).await?;
        Ok(purged)
    }
}
