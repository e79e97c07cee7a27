//! Authentication: credential extraction (`credential`), the gateway's
//! signing key (`keys`), access-token verification with its cache (`jwt`),
//! trusted external issuers (`jwks`), API keys with their cache
//! (`api_keys`), producing a [`Principal`](crate::principal::Principal)
//! (the leaf module `principal`, re-exported here as `authn::principal`).
//! `Authenticator::authenticate` runs the credential chain of DESIGN.md §4
//! and the revocation check for one request.

pub mod api_keys;
pub mod credential;
pub mod jwks;
pub mod jwt;
pub mod keys;
pub use crate::principal;

use std::sync::Arc;

use http::HeaderMap;

use crate::error::GatewayError;
use crate::policy::AuthMode;
use crate::principal::Principal;
use crate::revocation::RevocationSet;
use api_keys::ApiKeyVerifier;
use credential::Credential;
use jwt::{CacheOutcome, TokenError, TokenVerifier};

pub struct Authenticator {
    pub verifier: TokenVerifier,
    pub revocations: Arc<RevocationSet>,
    pub api_keys: Arc<ApiKeyVerifier>,
    api_key_headers: Vec<String>,
}

/// The outcome of authenticating one request.
pub struct Authenticated {
    pub principal: Principal,
    /// The verified-token cache's answer (JWTs; API keys count their own).
    pub cache: Option<CacheOutcome>,
}

impl Authenticator {
    pub fn new(
        verifier: TokenVerifier,
        revocations: Arc<RevocationSet>,
        api_keys: Arc<ApiKeyVerifier>,
        api_key_headers: Vec<String>,
    ) -> Self {
        Self {
            verifier,
            revocations,
            api_keys,
            api_key_headers,
        }
    }

    /// Runs the credential chain for a route that requires authentication.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        mode: AuthMode,
    ) -> Result<Authenticated, GatewayError> {
        let credential = credential::extract(headers, &self.api_key_headers)
            .map_err(|_| GatewayError::ConflictingCredentials)?;
        match credential {
            None => Err(GatewayError::MissingCredentials),
            Some(Credential::Unusable) => Err(GatewayError::CredentialNotAccepted),
            Some(Credential::Jwt(_)) if !mode.accepts_jwt() => {
                Err(GatewayError::CredentialNotAccepted)
            }
            Some(Credential::ApiKey(_)) if !mode.accepts_api_key() => {
                Err(GatewayError::CredentialNotAccepted)
            }
            Some(Credential::Jwt(token)) => {
                let (identity, cache) = self
                    .verifier
                    .verify(&token)
                    .await
                    .map_err(GatewayError::InvalidToken)?;
                if self.revocations.check(&identity).is_err() {
                    return Err(GatewayError::InvalidToken(TokenError::Revoked));
                }
                Ok(Authenticated {
                    principal: Principal::User(identity),
                    cache: Some(cache),
                })
            }
            Some(Credential::ApiKey(key)) => {
                let (identity, _) = self.api_keys.verify(&key, headers).await?;
                Ok(Authenticated {
                    principal: Principal::ApiKey(identity),
                    cache: None,
                })
            }
        }
    }
}
