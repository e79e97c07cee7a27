//! Group commit for SQLite: writes are durable before their response, with
//! at most one sync of the write-ahead log per `database.sync_interval`.
//!
//! SQLite connections commit with `synchronous = NORMAL`: a commit appends
//! to the WAL without syncing it. Each account-API request that may have
//! written then waits for `WalSync::flush`, which syncs the WAL file (all
//! commits before the sync started are on disk afterwards, as with
//! `synchronous = FULL`) and answers every request that was waiting with
//! that one sync. When the log was synced within the last interval and
//! other writing requests are under way, the next sync waits for the
//! interval to end, and the requests that arrive meanwhile share it. A
//! lone writer (a quiet gateway, a script writing one request after the
//! other) is synced at once: like PostgreSQL's `commit_delay`, the wait is
//! only taken when there is someone to share it with.
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

use tokio::sync::Mutex;
use tokio::time::Instant;

use super::StoreError;

#[derive(Debug)]
pub struct WalSync {
    wal: PathBuf,
    interval: Duration,
    /// When the last successful sync started.
    last: Mutex<Option<Instant>>,
    syncs: AtomicU64,
    /// Requests between `writing` and the end of their flush.
    writers: AtomicUsize,
}

/// One writing request, from its start until its writes are synced.
#[derive(Debug)]
pub struct Writing(Arc<WalSync>);

impl Drop for Writing {
    fn drop(&mut self) {
        self.0.writers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl WalSync {
    /// Syncs `<database>-wal` at most once per `interval`.
    pub fn new(database: PathBuf, interval: Duration) -> WalSync {
        let mut wal = database.into_os_string();
        wal.push("-wal");
        WalSync {
            wal: wal.into(),
            interval,
            last: Mutex::new(None),
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
        let mut last = self.last.lock().await;
        if let Some(started) = *last {
            if started > asked {
                return Ok(()); // a sync that started after our commit is done
            }
            if self.writers.load(Ordering::Relaxed) > 1 {
                tokio::time::sleep_until(started + self.interval).await;
            }
        }
        let started = Instant::now();
        let wal = self.wal.clone();
        tokio::task::spawn_blocking(move || sync_file(&wal))
            .await
            .map_err(|e| StoreError::Other(format!("the database sync stopped: {e}")))?
            .map_err(|e| StoreError::Unavailable(format!("cannot sync the database log: {e}")))?;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        *last = Some(started);
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

    /// Many writers waiting at once share syncs: within one interval, one
    /// sync for the first and one for everybody who came while it waited.
    #[tokio::test]
    async fn concurrent_writers_share_one_sync() {
        let (_dir, sync) = wal_sync(Duration::from_millis(300));
        sync.flush().await.unwrap();
        let writers: Vec<Writing> = (0..20).map(|_| sync.writing()).collect();
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
        assert_eq!(sync.syncs(), 2, "20 writers after the first sync");
    }

    /// A write after a finished sync is never answered by that sync, and a
    /// lone writer is never held back: with an interval of a minute, three
    /// writes one after the other take three syncs and no minute.
    #[tokio::test]
    async fn a_lone_writer_gets_its_own_sync_at_once() {
        let (_dir, sync) = wal_sync(Duration::from_secs(60));
        let first = Instant::now();
        for n in 1..=3 {
            let _writing = sync.writing();
            sync.flush().await.unwrap();
            assert_eq!(sync.syncs(), n);
        }
        assert!(first.elapsed() < Duration::from_secs(30), "held back");
    }

    /// While other writers are under way, the next sync comes no sooner
    /// than the interval after the last one.
    #[tokio::test]
    async fn a_shared_sync_waits_for_the_interval() {
        let interval = Duration::from_millis(300);
        let (_dir, sync) = wal_sync(interval);
        let before_first = Instant::now();
        sync.flush().await.unwrap();
        let (_me, _other) = (sync.writing(), sync.writing());
        sync.flush().await.unwrap();
        assert_eq!(sync.syncs(), 2);
        let elapsed = before_first.elapsed();
        assert!(
            elapsed >= interval,
            "the second sync came after {elapsed:?}"
        );
    }

    #[tokio::test]
    async fn a_missing_log_is_nothing_to_sync() {
        let dir = tempfile::tempdir().unwrap();
        let sync = WalSync::new(dir.path().join("none.db"), Duration::ZERO);
        sync.flush().await.unwrap();
        assert_eq!(sync.syncs(), 1);
    }
}
