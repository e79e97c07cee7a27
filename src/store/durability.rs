//! Group commit for SQLite: writes are durable before their response, with
//! a budget of syncs of the write-ahead log: a burst of `BURST` at once,
//! then one per `database.sync_interval` while writes keep coming.
//!
//! SQLite connections commit with `synchronous = NORMAL`: a commit appends
//! to the WAL without syncing it. Each account-API request that may have
//! written then waits for `WalSync::flush`, which syncs the WAL file (all
//! commits before the sync started are on disk afterwards, as with
//! `synchronous = FULL`) and answers every request that was waiting with
//! that one sync. Every sync spends one token of the budget, which refills
//! at one token per interval up to `BURST`. When the budget is spent and
//! other writing requests are under way, the next sync waits for the next
//! token, and the requests that arrive meanwhile share it. A lone writer (a
//! quiet gateway, a script writing one request after the other) is synced
//! at once: like PostgreSQL's `commit_delay`, the wait is only taken when
//! there is someone to share it with. Occasional concurrent writers fit in
//! the burst and wait for nothing; a login storm gets one sync per interval.
//!
//! Why: every sync is a flush of the disk's cache, and on the virtual disks
//! measured (benches/README.md, login storm) each one delayed proxied
//! requests on the same machine, in proportion to how many there were per
//! second, not how many bytes: 40 a second (one per login in a storm)
//! doubled the proxied p99, 5 a second barely moved it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteSynchronous};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::StoreError;

/// Log pages between SQLite's checkpoints (its default is 1 000). Each
/// checkpoint syncs the log and the database, two more flushes; in a login
/// storm (about 26 pages a login) the default made two of every seven.
const CHECKPOINT_PAGES: &str = "10000";
/// The log file is cut back to this after a checkpoint (about 1.6 times the
/// pages above), so one large transaction does not leave it large for ever.
const LOG_SIZE_LIMIT: &str = "67108864";

/// Connection options for group commit: commits leave the log unsynced
/// (requests wait for `WalSync::flush` instead), and checkpoints are rare.
pub fn group_commit(options: SqliteConnectOptions) -> SqliteConnectOptions {
    options
        .synchronous(SqliteSynchronous::Normal)
        .pragma("wal_autocheckpoint", CHECKPOINT_PAGES)
        .pragma("journal_size_limit", LOG_SIZE_LIMIT)
}

/// Syncs that may follow one another at once, before the interval paces them.
const BURST: f64 = 5.0;

#[derive(Debug)]
pub struct WalSync {
    wal: PathBuf,
    interval: Duration,
    /// Held through each sync, so callers queue in order.
    budget: Mutex<Budget>,
    syncs: AtomicU64,
    /// Requests between `writing` and the end of their flush.
    writers: AtomicUsize,
}

#[derive(Debug)]
struct Budget {
    /// When the last successful sync started.
    last: Option<Instant>,
    /// Syncs that may start now without waiting (at most `BURST`).
    tokens: f64,
    refilled: Instant,
}

impl Budget {
    /// Adds the tokens earned since the last refill: one per `interval`.
    fn refill(&mut self, interval: Duration) {
        let now = Instant::now();
        let earned = if interval.is_zero() {
            BURST
        } else {
            (now - self.refilled).as_secs_f64() / interval.as_secs_f64()
        };
        self.tokens = (self.tokens + earned).min(BURST);
        self.refilled = now;
    }

    /// How long until a whole token is there.
    fn wait(&self, interval: Duration) -> Duration {
        interval.mul_f64((1.0 - self.tokens).max(0.0))
    }
}

/// One writing request, from its first write until its writes are synced.
#[derive(Debug)]
pub struct Writing(Arc<WalSync>);

tokio::task_local! {
    /// What the request being answered has written (`tracking`).
    static WRITES: std::cell::RefCell<Writes>;
}

/// What one request wrote. Only a request that wrote waits for a sync, and
/// only from its first write on does it count among the writers that
/// share one: a request that writes nothing (a 401, a 405, a malformed
/// body) costs no sync and holds no one else's back.
#[derive(Debug, Default)]
pub struct Writes {
    wrote: bool,
    /// SQLite's group commit: this request's place among the writers.
    writing: Option<Writing>,
}

impl Writes {
    pub fn any(&self) -> bool {
        self.wrote
    }
}

/// Runs `work` (one request), collecting what it writes through the store.
pub async fn tracking<T>(work: impl std::future::Future<Output = T>) -> (T, Writes) {
    WRITES
        .scope(std::cell::RefCell::new(Writes::default()), async {
            let out = work.await;
            let writes = WRITES.with(|w| std::mem::take(&mut *w.borrow_mut()));
            (out, writes)
        })
        .await
}

/// Records that the current request is about to write (outside `tracking`,
/// e.g. background jobs, nothing is recorded).
pub(super) fn note_write(wal: Option<&Arc<WalSync>>) {
    let _ = WRITES.try_with(|w| {
        let mut w = w.borrow_mut();
        w.wrote = true;
        if w.writing.is_none() {
            w.writing = wal.map(|wal| wal.writing());
        }
    });
}

impl Drop for Writing {
    fn drop(&mut self) {
        self.0.writers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl WalSync {
    /// Syncs `<database>-wal`: `BURST` syncs at once, then one per
    /// `interval` while several writers are under way.
    pub fn new(database: PathBuf, interval: Duration) -> WalSync {
        let mut wal = database.into_os_string();
        wal.push("-wal");
        WalSync {
            wal: wal.into(),
            interval,
            budget: Mutex::new(Budget {
                last: None,
                tokens: BURST,
                refilled: Instant::now(),
            }),
            syncs: AtomicU64::new(0),
            writers: AtomicUsize::new(0),
        }
    }

    /// Marks a request that may write as under way until the guard drops
    /// (after its `flush`).
    pub fn writing(self: &Arc<Self>) -> Writing {
        self.writers.fetch_add(1, Ordering::Relaxed);
        Writing(self.clone())
    }

    /// Returns once every commit made before this call is on disk.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let asked = Instant::now();
        // Callers queue here in order; the first runs the sync for all.
        let mut budget = self.budget.lock().await;
        if budget.last.is_some_and(|started| started > asked) {
            return Ok(()); // a sync that started after our commit is done
        }
        budget.refill(self.interval);
        if budget.tokens < 1.0 && self.writers.load(Ordering::Relaxed) > 1 {
            tokio::time::sleep(budget.wait(self.interval)).await;
            budget.refill(self.interval);
        }
        // A lone writer may sync without a whole token; it leaves none.
        budget.tokens = (budget.tokens - 1.0).max(0.0);
        let started = Instant::now();
        let wal = self.wal.clone();
        tokio::task::spawn_blocking(move || sync_file(&wal))
            .await
            .map_err(|e| StoreError::Other(format!("the database sync stopped: {e}")))?
            .map_err(|e| StoreError::Unavailable(format!("cannot sync the database log: {e}")))?;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        budget.last = Some(started);
        Ok(())
    }

    /// Syncs of the log so far.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }
}

/// Syncs one file's data; a log that does not exist holds nothing to sync
/// (SQLite removes it only after copying it into the synced database).
fn sync_file(path: &std::path::Path) -> std::io::Result<()> {
    match std::fs::File::open(path) {
        Ok(file) => file.sync_data(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wal_sync(interval: Duration) -> (tempfile::TempDir, Arc<WalSync>) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("p.db");
        std::fs::write(dir.path().join("p.db-wal"), b"frames").unwrap();
        (dir, Arc::new(WalSync::new(db, interval)))
    }

    /// Spends the burst: `BURST` syncs one after the other, none held back
    /// although another writer is under way.
    async fn spend_the_burst(sync: &WalSync) {
        let before = sync.syncs();
        for _ in 0..BURST as u64 {
            sync.flush().await.unwrap();
        }
        assert_eq!(sync.syncs(), before + BURST as u64, "the burst");
    }

    /// Occasional concurrent writers fit in the burst: with an interval of
    /// a minute and another writer under way, `BURST` syncs take no minute.
    #[tokio::test]
    async fn a_burst_of_syncs_is_not_held_back() {
        let (_dir, sync) = wal_sync(Duration::from_secs(60));
        let (_me, _other) = (sync.writing(), sync.writing());
        let first = Instant::now();
        spend_the_burst(&sync).await;
        assert!(first.elapsed() < Duration::from_secs(30), "held back");
    }

    /// Once the burst is spent, many writers waiting at once share one
    /// sync, which comes no sooner than a token has been earned.
    #[tokio::test]
    async fn beyond_the_burst_concurrent_writers_share_one_sync_per_interval() {
        let interval = Duration::from_secs(1);
        let (_dir, sync) = wal_sync(interval);
        let start = Instant::now();
        let writers: Vec<Writing> = (0..20).map(|_| sync.writing()).collect();
        spend_the_burst(&sync).await;
        let waiting: Vec<_> = writers
            .into_iter()
            .map(|writing| {
                let sync = sync.clone();
                tokio::spawn(async move {
                    let synced = sync.flush().await;
                    drop(writing);
                    synced
                })
            })
            .collect();
        for w in waiting {
            w.await.unwrap().unwrap();
        }
        assert_eq!(sync.syncs(), BURST as u64 + 1, "20 writers after the burst");
        let elapsed = start.elapsed();
        assert!(
            elapsed >= interval,
            "the shared sync came after {elapsed:?}"
        );
    }

    /// A write after a finished sync is never answered by that sync, and a
    /// lone writer is never held back, budget or not: with an interval of a
    /// minute, twice the burst one after the other takes no minute.
    #[tokio::test]
    async fn a_lone_writer_gets_its_own_sync_at_once() {
        let (_dir, sync) = wal_sync(Duration::from_secs(60));
        let first = Instant::now();
        for n in 1..=2 * BURST as u64 {
            let _writing = sync.writing();
            sync.flush().await.unwrap();
            assert_eq!(sync.syncs(), n);
        }
        assert!(first.elapsed() < Duration::from_secs(30), "held back");
    }

    /// Tokens come back at one per interval: after the burst, a writer
    /// among others waits about an interval, not the burst's worth.
    #[test]
    fn the_budget_refills_one_token_per_interval() {
        let interval = Duration::from_secs(4);
        let mut budget = Budget {
            last: None,
            tokens: 0.0,
            refilled: Instant::now() - interval / 2,
        };
        budget.refill(interval);
        assert!((0.5..0.75).contains(&budget.tokens), "{}", budget.tokens);
        let wait = budget.wait(interval);
        assert!(wait <= interval / 2 && wait > interval / 4, "{wait:?}");
        budget.refilled = Instant::now() - interval * 100;
        budget.refill(interval);
        assert_eq!(budget.tokens, BURST, "never more than the burst");
        assert_eq!(budget.wait(interval), Duration::ZERO);
        budget.refill(Duration::ZERO);
        assert_eq!(budget.tokens, BURST, "a zero interval never waits");
    }

    /// A file database's connections leave commits unsynced and checkpoint
    /// every `CHECKPOINT_PAGES`, not SQLite's 1 000.
    #[tokio::test]
    async fn file_connections_commit_unsynced_and_checkpoint_rarely() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::DatabaseConfig {
            url: "sqlite://p.db".into(),
            max_connections: 1,
            auto_migrate: false,
            sync_interval: Duration::ZERO,
        };
        let db = crate::store::Db::connect(&config, dir.path())
            .await
            .unwrap();
        let crate::store::Db::Sqlite(pool, Some(_)) = &db else {
            panic!("a SQLite file without group commit")
        };
        let pragma = |name: &'static str| async move {
            let sql = sqlx::AssertSqlSafe(format!("PRAGMA {name}"));
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(pool)
                .await
                .unwrap()
        };
        assert_eq!(pragma("synchronous").await, 1, "NORMAL");
        assert_eq!(
            pragma("wal_autocheckpoint").await.to_string(),
            CHECKPOINT_PAGES
        );
        assert_eq!(
            pragma("journal_size_limit").await.to_string(),
            LOG_SIZE_LIMIT
        );
        db.close().await;
    }

    #[tokio::test]
    async fn a_missing_log_is_nothing_to_sync() {
        let dir = tempfile::tempdir().unwrap();
        let sync = WalSync::new(dir.path().join("none.db"), Duration::ZERO);
        sync.flush().await.unwrap();
        assert_eq!(sync.syncs(), 1);
    }
}
