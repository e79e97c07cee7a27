//! The gateway's own secret (`accounts.secret_encryption_key`): 32 random
//! bytes, created on first start when it is a missing file. Purposes never
//! share a key: each derives its own with HMAC-SHA256 over a label, so one
//! secret can key API-key checksums today and TOTP encryption later.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Where a secret comes from (`"env:VAR"` or `"file:PATH"` in the config
/// file; `config::units` parses it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
}

/// Bytes written to a new secret file.
const NEW_SECRET_BYTES: usize = 32;
/// Shorter secrets are refused: they would make every derived key guessable.
const MIN_SECRET_BYTES: usize = 32;

pub struct ServerSecret(Vec<u8>);

impl std::fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerSecret(***)")
    }
}

impl ServerSecret {
    /// Reads the secret; a `file:` that does not exist yet is created
    /// (mode 0600) with fresh random bytes.
    pub fn load_or_create(source: &SecretSource) -> Result<ServerSecret, String> {
        if let SecretSource::File(path) = source {
            if !path.exists() {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                }
                let mut bytes = [0u8; NEW_SECRET_BYTES];
                rand::rng().fill_bytes(&mut bytes);
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                file.write_all(&bytes)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                tracing::info!(path = %path.display(), "created a new secret key");
            }
        }
        Self::load(source)
    }

    /// Reads the secret (never creates it); `check` uses this.
    pub fn load(source: &SecretSource) -> Result<ServerSecret, String> {
        let bytes = source.read()?;
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "{} holds {} bytes; it needs at least {MIN_SECRET_BYTES}",
                source.describe(),
                bytes.len()
            ));
        }
        Ok(ServerSecret(bytes))
    }

    pub fn from_bytes(bytes: Vec<u8>) -> ServerSecret {
        ServerSecret(bytes)
    }

    /// A 32-byte key for one purpose, named by `label`.
    pub fn derive(&self, label: &str) -> [u8; 32] {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(label.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_and_derives_distinct_keys() {
        let dir = tempfile::tempdir().unwrap();
        let source = SecretSource::File(dir.path().join("data/secret.key"));
        let a = ServerSecret::load_or_create(&source).unwrap();
        let b = ServerSecret::load_or_create(&source).unwrap();
        assert_eq!(a.derive("x"), b.derive("x"), "the file is reused");
        assert_ne!(a.derive("x"), a.derive("y"));
        let short = dir.path().join("short.key");
        std::fs::write(&short, b"too short").unwrap();
        let err = ServerSecret::load_or_create(&SecretSource::File(short)).unwrap_err();
        assert!(err.contains("at least 32"), "{err}");
    }
}
