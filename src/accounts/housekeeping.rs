//! Forgetting rows nothing can use any more, so the database does not grow
//! with every login: mailed single-use tokens a day after they expired, and
//! sessions (with their refresh tokens) once they ended, by revocation or
//! expiry, longer ago than any of their access tokens could still verify.
//! Run by the maintenance job every `accounts.purge_interval`.

use chrono::Utc;

use super::tokens::revocation_memory;
use super::Accounts;
use crate::error::GatewayError;
use crate::store::{account_tokens, sessions};

impl Accounts {
    /// One pass; returns how many sessions went.
    pub async fn prune_ended(&self) -> Result<u64, GatewayError> {
        let db = self.db().await?;
        account_tokens::prune(db, self.clock.now()).await?;
        // Sessions keep wall time (as tokens do), never the tests' clock.
        let ended_before = Utc::now() - revocation_memory(&self.config);
        Ok(sessions::prune(db, ended_before).await?)
    }
}
