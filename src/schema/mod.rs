//! The config file's own layer, below every stage: the serde file structs
//! (`file`), the small value languages and leaf types they use — durations,
//! rates, secret sources, the signing algorithm (`units`) —, the compiled
//! `[rbac.roles]` table (`roles`, which `authz` decides with) and problem
//! reporting (`problems`). The pure stages compile their rules from these;
//! `config` validates the whole file into the runtime `Config` and
//! re-exports this module's parts as `config::{file, units, problems}`.

pub mod file;
pub mod problems;
pub mod roles;
pub mod units;
