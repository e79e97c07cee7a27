//! Cryptographic helpers: password hashing and policy (`password`), opaque
//! random tokens stored only as hashes (`tokens`), the gateway's own secret
//! with per-purpose derived keys (`secret`), sealing small secrets at rest
//! (`seal`) and TOTP codes (`totp`).

pub mod password;
pub mod seal;
pub mod secret;
pub mod tokens;
pub mod totp;
