//! API key management behind `/auth/api-keys`: creation with its checks
//! (scope syntax, expiry in the future, org membership, org-bound scopes
//! within the owner's permissions there), listing without secrets,
//! revocation and rotation. Every revocation evicts the key from the hot
//! path's cache, so it fails from the very next request.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Accounts, Client};
use crate::authn::api_keys::NewKey;
use crate::error::GatewayError;
use crate::store::api_keys::{self as store, ApiKey, NewApiKey};
use crate::store::audit;

const MAX_SCOPES: usize = 64;
const MAX_SCOPE_CHARS: usize = 128;
const MAX_NAME_CHARS: usize = 100;

/// What the caller asked for.
pub struct KeyRequest {
    pub name: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub org_id: Option<Uuid>,
    pub client_id: Option<Uuid>,
}

fn valid_scope(scope: &str) -> bool {
    !scope.is_empty()
        && scope.len() <= MAX_SCOPE_CHARS
        && scope
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":*._-/".contains(&b))
}

fn check_request(req: &KeyRequest, now: DateTime<Utc>) -> Result<(), GatewayError> {
    let name = req.name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(GatewayError::validation(
            "name",
            format!("must be 1 to {MAX_NAME_CHARS} printable characters"),
        ));
    }
    if req.scopes.len() > MAX_SCOPES {
        return Err(GatewayError::validation(
            "scopes",
            format!("at most {MAX_SCOPES} scopes"),
        ));
    }
    if let Some(bad) = req.scopes.iter().find(|s| !valid_scope(s)) {
        return Err(GatewayError::validation(
            "scopes",
            format!("{bad:?} must be 1 to {MAX_SCOPE_CHARS} of letters, digits and :*._-/"),
        ));
    }
    if req.expires_at.is_some_and(|t| t <= now) {
        return Err(GatewayError::validation(
            "expires_at",
            "must be in the future",
        ));
    }
    Ok(())
}

impl Accounts {
    /// Creates a key for `owner`; returns it with the secret (shown once).
    pub async fn create_api_key(
        &self,
        owner: Uuid,
        mut req: KeyRequest,
        client: &Client,
    ) -> Result<(ApiKey, String), GatewayError> {
        let now = Utc::now();
        check_request(&req, now)?;
        req.scopes.sort();
        req.scopes.dedup();
        if let Some(org) = req.org_id {
            let membership = self.membership(org, owner).await?;
            let rbac = &self.config.rbac;
            if let Some(scope) = req
                .scopes
                .iter()
                .find(|s| !rbac.org_role_grants(membership.role, s))
            {
                return Err(GatewayError::ScopeNotPermitted(scope.clone()));
            }
        }
        let db = self.db().await?;
        let NewKey { key, hash, prefix } = self.keys.codec().generate();
        let created = store::create(
            db,
            NewApiKey {
                user_id: owner,
                hash: &hash,
                prefix: &prefix,
                name: req.name.trim(),
                scopes: &req.scopes,
                org_id: req.org_id,
                client_id: req.client_id,
                expires_at: req.expires_at,
            },
            now,
        )
        .await?;
        self.audit_key(owner, "api_key_created", created.id, client)
            .await;
        Ok((created, key))
    }

    pub async fn api_keys(
        &self,
        owner: Uuid,
        limit: u32,
        cursor: Option<Uuid>,
    ) -> Result<Vec<ApiKey>, GatewayError> {
        Ok(store::list(self.db().await?, owner, limit, cursor).await?)
    }

    /// Revokes one of `owner`'s keys; 404 when they have no such key.
    pub async fn revoke_api_key(
        &self,
        owner: Uuid,
        id: Uuid,
        client: &Client,
    ) -> Result<(), GatewayError> {
        let db = self.db().await?;
        let hash = store::revoke(db, owner, id, Utc::now())
            .await?
            .ok_or(GatewayError::NotFound("API key"))?;
        self.keys.evict(&hash).await;
        self.audit_key(owner, "api_key_revoked", id, client).await;
        Ok(())
    }

    /// Replaces one of `owner`'s keys: the old one fails at once.
    pub async fn rotate_api_key(
        &self,
        owner: Uuid,
        id: Uuid,
        client: &Client,
    ) -> Result<(ApiKey, String), GatewayError> {
        let db = self.db().await?;
        let NewKey { key, hash, prefix } = self.keys.codec().generate();
        let (old_hash, created) = store::rotate(db, owner, id, &hash, &prefix, Utc::now())
            .await?
            .ok_or(GatewayError::NotFound("API key"))?;
        self.keys.evict(&old_hash).await;
        self.audit_key(owner, "api_key_rotated", created.id, client)
            .await;
        Ok((created, key))
    }

    async fn audit_key(&self, owner: Uuid, kind: &str, key: Uuid, client: &Client) {
        if let Ok(db) = self.db().await {
            audit::record(
                db,
                kind,
                Some(owner),
                Some(owner),
                &client.origin(),
                serde_json::json!({"key": key}),
            )
            .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(name: &str, scopes: &[&str]) -> KeyRequest {
        KeyRequest {
            name: name.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            expires_at: None,
            org_id: None,
            client_id: None,
        }
    }

    #[test]
    fn requests_are_checked_field_by_field() {
        let now = Utc::now();
        assert!(check_request(&req("ci", &["orders:read", "deploy"]), now).is_ok());
        let field = |r: KeyRequest| match check_request(&r, now) {
            Err(GatewayError::Validation { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(req(" ", &[])), "name");
        assert_eq!(field(req(&"x".repeat(101), &[])), "name");
        assert_eq!(field(req("ci", &["has space"])), "scopes");
        assert_eq!(field(req("ci", &[""])), "scopes");
        let mut past = req("ci", &[]);
        past.expires_at = Some(now - chrono::Duration::seconds(1));
        assert_eq!(field(past), "expires_at");
    }
}
