//! The gateway's signing key: loading (PKCS#8 PEM; SEC1 for ES256, PKCS#1
//! for RS256; a ≥ 32-byte secret for HS256), generation (`keygen` and the
//! first `serve`), the RFC 7638 thumbprint used as `kid`, signing, and the
//! public JWKS.

use std::path::Path;

use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{DecodingKey, EncodingKey, Header};
use serde::Serialize;

pub use crate::config::KeyAlgorithm;
use crate::config::SecretSource;

/// Minimum HS256 secret length in bytes (DESIGN.md §10).
pub const MIN_HMAC_SECRET: usize = 32;

/// A loaded signing key with its verification half.
pub struct SigningKey {
    pub algorithm: KeyAlgorithm,
    pub kid: String,
    encoding: EncodingKey,
    pub decoding: DecodingKey,
    /// The public JWK (with `kid`); `None` for HS256, which is never published.
    public_jwk: Option<Jwk>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Parses key material as read from the configured source.
    pub fn from_material(algorithm: KeyAlgorithm, material: &[u8]) -> Result<SigningKey, String> {
        let bad =
            |e: jsonwebtoken::errors::Error| format!("not a valid {algorithm:?} private key: {e}");
        let encoding = match algorithm {
            KeyAlgorithm::EdDSA => EncodingKey::from_ed_der(&ed25519_v1_der(material)?),
            KeyAlgorithm::ES256 => {
                EncodingKey::from_ec_pem(&es256_to_pkcs8(material)?).map_err(bad)?
            }
            KeyAlgorithm::RS256 => EncodingKey::from_rsa_pem(material).map_err(bad)?,
            KeyAlgorithm::HS256 => {
                let secret = material.trim_ascii();
                if secret.len() < MIN_HMAC_SECRET {
                    return Err(format!(
                        "HS256 secret is {} bytes; at least {MIN_HMAC_SECRET} are required",
                        secret.len()
                    ));
                }
                EncodingKey::from_secret(secret)
            }
        };
        let mut jwk = Jwk::from_encoding_key(&encoding, algorithm.jwt()).map_err(bad)?;
        let kid = jwk.thumbprint(ThumbprintHash::SHA256).map_err(bad)?;
        let decoding = match algorithm {
            KeyAlgorithm::HS256 => DecodingKey::from_secret(material.trim_ascii()),
            _ => DecodingKey::from_jwk(&jwk).map_err(bad)?,
        };
        let public_jwk = (algorithm != KeyAlgorithm::HS256).then(|| {
            jwk.common.key_id = Some(kid.clone());
            jwk.common.public_key_use = Some(PublicKeyUse::Signature);
            jwk
        });
        Ok(SigningKey {
            algorithm,
            kid,
            encoding,
            decoding,
            public_jwk,
        })
    }

    /// Reads the key from its source (never creates it).
    pub fn load(algorithm: KeyAlgorithm, source: &SecretSource) -> Result<SigningKey, String> {
        let material = source.read()?;
        Self::from_material(algorithm, &material).map_err(|e| format!("{}: {e}", source.describe()))
    }

    /// Reads the key, first creating it when the source is a file that does
    /// not exist yet (first start).
    pub fn load_or_create(
        algorithm: KeyAlgorithm,
        source: &SecretSource,
    ) -> Result<SigningKey, String> {
        if let SecretSource::File(path) = source {
            if !path.exists() {
                write_new_key(algorithm, path)?;
                tracing::info!(path = %path.display(), ?algorithm, "created a new signing key");
            }
        }
        Self::load(algorithm, source)
    }

    /// Signs `claims` with header `typ` and this key's `kid`.
    pub fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, String> {
        let mut header = Header::new(self.algorithm.jwt());
        header.typ = Some(typ.to_string());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|e| e.to_string())
    }

    /// The public keys as a JWK set (empty for HS256).
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self.public_jwk.iter().cloned().collect(),
        }
    }
}

/// DER prefix of a PKCS#8 v1 Ed25519 private key (RFC 8410), followed by
/// the 32-byte seed: what `openssl genpkey -algorithm ed25519` writes.
const ED25519_PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

fn ed25519_v1_from_seed(seed: &[u8; 32]) -> Vec<u8> {
    let mut der = ED25519_PKCS8_V1_PREFIX.to_vec();
    der.extend_from_slice(seed);
    der
}

/// Accepts PKCS#8 v1 or v2 (with public key) Ed25519 PEM; jsonwebtoken
/// wants the v1 DER.
fn ed25519_v1_der(material: &[u8]) -> Result<Vec<u8>, String> {
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    let text =
        std::str::from_utf8(material).map_err(|_| "EdDSA key is not PEM text".to_string())?;
    let key = ed25519_dalek::SigningKey::from_pkcs8_pem(text)
        .map_err(|e| format!("not a valid PKCS#8 Ed25519 private key: {e}"))?;
    Ok(ed25519_v1_from_seed(&key.to_bytes()))
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// ES256 keys may be SEC1 (`EC PRIVATE KEY`); jsonwebtoken wants PKCS#8.
fn es256_to_pkcs8(material: &[u8]) -> Result<Vec<u8>, String> {
    use p256::pkcs8::{EncodePrivateKey, LineEnding};
    let text =
        std::str::from_utf8(material).map_err(|_| "ES256 key is not PEM text".to_string())?;
    if text.contains("BEGIN EC PRIVATE KEY") {
        let key = p256::SecretKey::from_sec1_pem(text)
            .map_err(|e| format!("not a valid SEC1 P-256 key: {e}"))?;
        let pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| e.to_string())?;
        Ok(pem.as_bytes().to_vec())
    } else {
        Ok(material.to_vec())
    }
}

/// New key material: PKCS#8 PEM, or a base64url secret for HS256.
pub fn generate(algorithm: KeyAlgorithm) -> Result<Vec<u8>, String> {
    use rand::RngCore;
    let pem = match algorithm {
        KeyAlgorithm::EdDSA => {
            let mut seed = [0u8; 32];
            rand::rng().fill_bytes(&mut seed);
            pem("PRIVATE KEY", &ed25519_v1_from_seed(&seed))
        }
        KeyAlgorithm::ES256 => {
            use p256::pkcs8::EncodePrivateKey;
            p256::SecretKey::random(&mut rand_core_06::OsRng)
                .to_pkcs8_pem(p256::pkcs8::LineEnding::LF)
                .map_err(|e| e.to_string())?
                .to_string()
        }
        KeyAlgorithm::RS256 => {
            use rsa::pkcs8::EncodePrivateKey;
            rsa::RsaPrivateKey::new(&mut rand_core_06::OsRng, 2048)
                .map_err(|e| e.to_string())?
                .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
                .map_err(|e| e.to_string())?
                .to_string()
        }
        KeyAlgorithm::HS256 => {
            let mut secret = [0u8; 48];
            rand::rng().fill_bytes(&mut secret);
            format!(
                "{}\n",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
            )
        }
    };
    Ok(pem.into_bytes())
}

/// Writes a new key file (mode 0600), creating parent directories. Refuses
/// to overwrite an existing file.
pub fn write_new_key(algorithm: KeyAlgorithm, path: &Path) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let material = generate(algorithm)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(&material)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_round_trips_and_has_a_stable_kid() {
        for alg in [
            KeyAlgorithm::EdDSA,
            KeyAlgorithm::ES256,
            KeyAlgorithm::RS256,
            KeyAlgorithm::HS256,
        ] {
            let material = generate(alg).unwrap();
            let a = SigningKey::from_material(alg, &material).unwrap();
            let b = SigningKey::from_material(alg, &material).unwrap();
            assert_eq!(a.kid, b.kid, "{alg:?}");
            assert_eq!(a.kid.len(), 43, "{alg:?}: base64url SHA-256");
            let token = a.sign("at+jwt", &serde_json::json!({"sub": "x"})).unwrap();
            let mut v = jsonwebtoken::Validation::new(alg.jwt());
            v.required_spec_claims.clear();
            v.validate_exp = false;
            v.validate_aud = false;
            jsonwebtoken::decode::<serde_json::Value>(&token, &a.decoding, &v).unwrap();
            assert_eq!(a.jwks().keys.len(), usize::from(alg != KeyAlgorithm::HS256));
        }
    }

    #[test]
    fn ed25519_kid_matches_rfc8037_example() {
        // RFC 8037 appendix A.3: thumbprint of the example Ed25519 key.
        let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n-----END PRIVATE KEY-----\n";
        let key = SigningKey::from_material(KeyAlgorithm::EdDSA, pem.as_bytes()).unwrap();
        assert_eq!(key.kid, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }

    #[test]
    fn ed25519_pkcs8_v2_with_public_key_is_accepted() {
        use ed25519_dalek::pkcs8::{spki::der::pem::LineEnding, EncodePrivateKey};
        let v2 = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32])
            .to_pkcs8_pem(LineEnding::LF)
            .unwrap();
        let v1 = pem("PRIVATE KEY", &ed25519_v1_from_seed(&[7u8; 32]));
        let a = SigningKey::from_material(KeyAlgorithm::EdDSA, v2.as_bytes()).unwrap();
        let b = SigningKey::from_material(KeyAlgorithm::EdDSA, v1.as_bytes()).unwrap();
        assert_eq!(a.kid, b.kid);
    }

    #[test]
    fn short_hmac_secrets_and_garbage_are_refused() {
        assert!(SigningKey::from_material(KeyAlgorithm::HS256, b"too short").is_err());
        assert!(SigningKey::from_material(KeyAlgorithm::EdDSA, b"garbage").is_err());
        let ed = generate(KeyAlgorithm::EdDSA).unwrap();
        assert!(SigningKey::from_material(KeyAlgorithm::RS256, &ed).is_err());
    }
}
