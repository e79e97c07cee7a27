//! Cryptographic helpers: password hashing and policy (`password`) and
//! opaque random tokens stored only as hashes (`tokens`), and the gateway's
//! own secret with per-purpose derived keys (`secret`).

pub mod password;
pub mod secret;
pub mod tokens;
