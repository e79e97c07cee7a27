//! Passwords: argon2id PHC strings with the configured cost, computed on a
//! dedicated pool of lowest-priority threads (one fewer than cores, never
//! on proxy threads: a login storm leaves a core and priority to proxied
//! traffic), verification
//! that costs the same for unknown users (a dummy hash), rehash detection,
//! and the password policy.
//!
//! Each hashing thread keeps its argon2 memory (19 MiB at the default cost)
//! from one hash to the next. Allocated per hash, whether the allocator
//! reuses it depends on the heap's history; when it does not, that is ~4 900
//! page faults a hash, pages zeroed and freed again (up to 9 ms of kernel
//! time a login, measured), work that the idle scheduling class does not
//! make preemptible on a kernel built without preemption.
//!
//! A hashing thread pauses briefly between consecutive hashes
//! (`PAUSE_BETWEEN_HASHES`), so that during a login storm it is never
//! runnable without a break. Scheduler traces on Linux 6.18 (EEVDF) showed
//! that while it was, the login's nice-19 handler and SQLite threads kept a
//! woken proxy thread off its core for 0.1-2 ms several times a second; with
//! the pause such waits fell about sixfold (benches/README.md, login storm).

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::password_hash::{CustomizedPasswordHasher, PasswordHasher};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, PasswordVerifier as _, Version};
use tokio::sync::{mpsc, oneshot};

/// Longest accepted password in bytes; longer is refused before hashing.
pub const MAX_PASSWORD_BYTES: usize = 1024;

static COMMON: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| include_str!("common-passwords.txt").lines().collect());

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

/// What the password must look like (`[accounts]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub min_length: usize,
    pub require_uppercase: bool,
    pub require_lowercase: bool,
    pub require_digit: bool,
    pub require_symbol: bool,
}

impl Policy {
    /// Why `password` is not acceptable, if it is not. Never trimmed.
    pub fn check(&self, password: &str) -> Result<(), String> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(format!("must be at most {MAX_PASSWORD_BYTES} bytes"));
        }
        if password.chars().count() < self.min_length {
            return Err(format!("must be at least {} characters", self.min_length));
        }
        if COMMON.contains(password.to_lowercase().as_str()) {
            return Err("is one of the most common passwords; choose another".into());
        }
        let rules = [
            (
                self.require_uppercase,
                password.chars().any(char::is_uppercase),
                "an upper-case letter",
            ),
            (
                self.require_lowercase,
                password.chars().any(char::is_lowercase),
                "a lower-case letter",
            ),
            (
                self.require_digit,
                password.chars().any(|c| c.is_ascii_digit()),
                "a digit",
            ),
            (
                self.require_symbol,
                password.chars().any(|c| !c.is_alphanumeric()),
                "a symbol",
            ),
        ];
        for (required, present, what) in rules {
            if required && !present {
                return Err(format!("must contain {what}"));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub ok: bool,
    /// The stored hash used other parameters than configured now.
    pub needs_rehash: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed: {0}")]
    Failed(String),
}

impl From<HashError> for crate::error::GatewayError {
    fn from(e: HashError) -> Self {
        Self::Internal(e.to_string())
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// Waiting hash jobs beyond this make callers wait to enqueue (backpressure).
const QUEUE: usize = 256;

/// How long a hashing thread sleeps after each job: about 3 % of a hash at
/// the default cost, the price of never being runnable without a break (see
/// the module comment). Measured, not guessed: 0.3 ms cut proxied p99 during
/// a storm; 3 ms made it much worse on the same VM (an idle core there is
/// slow to wake).
const PAUSE_BETWEEN_HASHES: Duration = Duration::from_micros(300);

pub struct Hasher {
    params: Params,
    jobs: mpsc::Sender<Job>,
    dummy: String,
}

/// Hashing threads: cores − 1, at least one. One core is always left to
/// proxied traffic (one worker on one core).
fn worker_count() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    cores.saturating_sub(1).max(1)
}

/// Starts the workers (`worker_count`) at the lowest priority.
fn start_workers() -> Result<mpsc::Sender<Job>, String> {
    let (tx, rx) = mpsc::channel::<Job>(QUEUE);
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..worker_count() {
        let rx = rx.clone();
        std::thread::Builder::new()
            .name(format!("portcullis-hash-{i}"))
            .spawn(move || {
                crate::priority::idle();
                loop {
                    let job = rx.lock().unwrap_or_else(|e| e.into_inner()).blocking_recv();
                    match job {
                        Some(job) => {
                            job();
                            std::thread::sleep(PAUSE_BETWEEN_HASHES);
                        }
                        None => return, // the hasher was dropped
                    }
                }
            })
            .map_err(|e| format!("cannot start hashing threads: {e}"))?;
    }
    Ok(tx)
}

impl Hasher {
    pub fn new(cost: Cost) -> Result<Hasher, String> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
            .map_err(|e| format!("argon2 parameters: {e}"))?;
        // The stock hasher: this thread is no hashing thread, keep no memory here.
        let dummy = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
            .hash_password(b"portcullis dummy password for unknown users")
            .map_err(|e| e.to_string())?
            .to_string();
        Ok(Hasher {
            params,
            jobs: start_workers()?,
            dummy,
        })
    }

    /// Runs `work` on the hashing pool and waits for its result.
    async fn limited<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(work());
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| HashError::Failed("the hashing pool stopped".into()))?;
        rx.await
            .map_err(|_| HashError::Failed("a hashing job was lost".into()))
    }

    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let (params, password) = (self.params.clone(), password.to_owned());
        self.limited(move || {
            argon2(&params)
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
        })
        .await?
        .map_err(|e| HashError::Failed(e.to_string()))
    }

    /// Verifies against `stored`, or against a dummy hash when there is no
    /// user (same cost, always false).
    pub async fn verify(
        &self,
        password: &str,
        stored: Option<&str>,
    ) -> Result<Verified, HashError> {
        let known = stored.is_some();
        let phc = stored.unwrap_or(&self.dummy).to_owned();
        let (params, password) = (self.params.clone(), password.to_owned());
        self.limited(move || {
            let Ok(parsed) = PasswordHash::new(&phc) else {
                return Verified {
                    ok: false,
                    needs_rehash: false,
                };
            };
            let ok = argon2(&params)
                .verify_password(password.as_bytes(), &parsed)
                .is_ok();
            let same_cost = Params::try_from(&parsed).is_ok_and(|p| {
                p.m_cost() == params.m_cost()
                    && p.t_cost() == params.t_cost()
                    && p.p_cost() == params.p_cost()
            });
            let needs_rehash = ok && (!same_cost || parsed.algorithm.as_str() != "argon2id");
            Verified {
                ok: ok && known,
                needs_rehash,
            }
        })
        .await
    }
}

fn argon2(params: &Params) -> KeptMemory {
    KeptMemory(params.clone())
}

thread_local! {
    /// This thread's argon2 memory, kept between hashes (see the module doc).
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// argon2id v0x13 with `Params` (PHC strings as the `argon2` crate writes
/// them), computed in the calling thread's kept memory; verification comes
/// from `password_hash`'s blanket impl, which compares in constant time.
struct KeptMemory(Params);

impl CustomizedPasswordHasher<PasswordHash> for KeptMemory {
    type Params = Params;

    fn hash_password_customized(
        &self,
        password: &[u8],
        salt: &[u8],
        algorithm: Option<&str>,
        version: Option<u32>,
        params: Params,
    ) -> argon2::password_hash::Result<PasswordHash> {
        let algorithm = algorithm.map(Algorithm::try_from).transpose()?;
        let algorithm = algorithm.unwrap_or(Algorithm::Argon2id);
        let version = version.map(Version::try_from).transpose()?;
        let version = version.unwrap_or(Version::V0x13);
        let salt = Salt::new(salt)?;
        let mut buffer = [0u8; Output::MAX_LENGTH];
        let out = buffer
            .get_mut(..params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN))
            .ok_or(argon2::password_hash::Error::OutputSize)?;
        let blocks = params.block_count();
        let argon = Argon2::new(algorithm, version, params.clone());
        MEMORY.with_borrow_mut(|memory| {
            if memory.len() < blocks {
                // A stored hash names its own cost: refuse, never abort, on one too big.
                memory
                    .try_reserve_exact(blocks - memory.len())
                    .map_err(|_| argon2::Error::OutOfMemory)?;
                memory.resize(blocks, Block::default());
            }
            argon.hash_password_into_with_memory(password, &salt, out, &mut memory[..blocks])
        })?;
        Ok(PasswordHash {
            algorithm: algorithm.ident(),
            version: Some(version.into()),
            params: ParamsString::try_from(&params)?,
            salt: Some(salt),
            hash: Some(Output::new(out)?),
        })
    }
}

impl PasswordHasher<PasswordHash> for KeptMemory {
    fn hash_password_with_salt(
        &self,
        password: &[u8],
        salt: &[u8],
    ) -> argon2::password_hash::Result<PasswordHash> {
        self.hash_password_customized(password, salt, None, None, self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: Cost = Cost {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    fn policy() -> Policy {
        Policy {
            min_length: 12,
            require_uppercase: false,
            require_lowercase: false,
            require_digit: false,
            require_symbol: false,
        }
    }

    #[test]
    fn policy_rules() {
        let p = policy();
        assert!(p.check("correct horse battery").is_ok());
        assert!(p.check("short").is_err());
        assert!(
            p.check("  spaces count  ").is_ok(),
            "never trimmed: 16 characters"
        );
        assert!(p.check(&"x".repeat(1025)).is_err());
        assert!(p.check("password1234").is_err());
        assert!(
            p.check("Qwertyuiop123").is_err(),
            "common passwords, any case"
        );
        let strict = Policy {
            require_digit: true,
            require_symbol: true,
            ..p
        };
        assert!(strict.check("no digits here!").is_err());
        assert!(strict.check("digits 123 here!").is_ok());
        assert!(COMMON.len() >= 10_000);
    }

    #[tokio::test]
    async fn hash_verify_and_rehash() {
        let h = Hasher::new(CHEAP).unwrap();
        let phc = h.hash("correct horse battery").await.unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert_eq!(
            h.verify("correct horse battery", Some(&phc)).await.unwrap(),
            Verified {
                ok: true,
                needs_rehash: false
            }
        );
        assert!(!h.verify("wrong", Some(&phc)).await.unwrap().ok);
        assert!(
            !h.verify("anything", None).await.unwrap().ok,
            "unknown users never verify"
        );
        let stronger = Hasher::new(Cost {
            memory_kib: 128,
            ..CHEAP
        })
        .unwrap();
        assert_eq!(
            stronger
                .verify("correct horse battery", Some(&phc))
                .await
                .unwrap(),
            Verified {
                ok: true,
                needs_rehash: true
            }
        );
        assert!(!h.verify("x", Some("not a phc string")).await.unwrap().ok);
    }

    /// PHC strings interoperate with the stock `argon2` hasher both ways, so
    /// hashes written before the kept memory (and by other tools) verify.
    #[tokio::test]
    async fn kept_memory_matches_the_stock_hasher() {
        let params = Params::new(CHEAP.memory_kib, 2, 1, None).unwrap();
        let stock = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let ours = argon2(&params)
            .hash_password_with_salt(b"correct horse battery", b"fixed salt 16 bytes")
            .unwrap();
        let theirs = stock
            .hash_password_with_salt(b"correct horse battery", b"fixed salt 16 bytes")
            .unwrap();
        assert_eq!(ours.to_string(), theirs.to_string());
        assert!(stock
            .verify_password(b"correct horse battery", &ours)
            .is_ok());
        let h = Hasher::new(CHEAP).unwrap();
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x10, params)
            .hash_password(b"correct horse battery")
            .unwrap()
            .to_string();
        let verified = h.verify("correct horse battery", Some(&argon2i)).await;
        assert_eq!(
            verified.unwrap(),
            Verified {
                ok: true,
                needs_rehash: true
            },
            "an older algorithm verifies and asks for a rehash"
        );
        assert!(!h.verify("wrong", Some(&argon2i)).await.unwrap().ok);
    }

    /// Consecutive jobs on one hashing thread are at least the pause apart.
    /// More jobs than threads, each long enough to queue the next, so some
    /// thread runs two in a row.
    #[tokio::test]
    async fn hashing_threads_pause_between_jobs() {
        let h = Arc::new(Hasher::new(CHEAP).unwrap());
        let jobs = (0..2 * worker_count() + 1).map(|_| {
            let h = h.clone();
            tokio::spawn(async move {
                h.limited(|| {
                    let start = std::time::Instant::now();
                    std::thread::sleep(Duration::from_millis(5));
                    (
                        std::thread::current().id(),
                        start,
                        std::time::Instant::now(),
                    )
                })
                .await
                .unwrap()
            })
        });
        let mut runs = Vec::new();
        for job in jobs.collect::<Vec<_>>() {
            runs.push(job.await.unwrap());
        }
        runs.sort_by_key(|&(thread, start, _)| (format!("{thread:?}"), start));
        let gaps: Vec<Duration> = runs
            .windows(2)
            .filter(|w| w[0].0 == w[1].0)
            .map(|w| w[1].1 - w[0].2)
            .collect();
        assert!(!gaps.is_empty(), "no thread ran two jobs: {runs:?}");
        for gap in gaps {
            assert!(gap >= PAUSE_BETWEEN_HASHES, "{gap:?} between two hashes");
        }
    }

    /// Minor page faults of the calling thread so far.
    #[cfg(target_os = "linux")]
    fn thread_faults() -> u64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // Fields after the parenthesised name: state is the 3rd, minflt the 10th.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        rest.split(' ').nth(7).unwrap().parse().unwrap()
    }

    /// The second hash on a thread reuses the first one's memory: at 8 MiB a
    /// fresh buffer costs 2 048 page faults, the kept one next to none.
    #[cfg(target_os = "linux")]
    #[test]
    fn hashing_memory_is_kept_between_hashes() {
        let params = Params::new(8192, 1, 1, None).unwrap();
        let hasher = argon2(&params);
        hasher.hash_password(b"first password").unwrap();
        let before = thread_faults();
        hasher.hash_password(b"second password").unwrap();
        let faults = thread_faults() - before;
        assert!(faults < 200, "{faults} page faults for a kept 8 MiB");
    }
}
