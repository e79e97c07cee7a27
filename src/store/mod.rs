//! Durable state (DESIGN.md §2): users, sessions, refresh tokens, lockouts,
//! orgs and API keys, TOTP and recovery codes, mailed single-use tokens,
//! account deletion and the audit log, on SQLite (embedded default) or PostgreSQL, chosen by
//! `database.url`. Each query is written once with `$N` placeholders, which
//! both drivers accept, and run on whichever typed pool is configured
//! (`on_db!`). Every call is bounded by a timeout; an unreachable database
//! is `Unavailable` (503), never a hang.

pub mod account_tokens;
pub mod api_keys;
pub mod audit;
pub mod deletion;
pub mod durability;
pub mod lockouts;
pub mod mfa;
pub mod orgs;
pub mod sessions;
pub mod users;

use std::future::Future;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{PgPool, SqlitePool};

use crate::config::DatabaseConfig;

/// How long one store operation may take before the caller gets a 503.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

#[derive(Clone, Debug)]
pub enum Db {
    /// With the group commit of its log when the database is a file.
    Sqlite(SqlitePool, Option<std::sync::Arc<durability::WalSync>>),
    Postgres(PgPool),
}

/// Runs the same expression on whichever pool `db` holds.
macro_rules! on_db {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite($pool, _) => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_db;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A unique constraint; the string names the column (`email`, `username`).
    #[error("duplicate {0}")]
    Duplicate(&'static str),
    /// A row referred to something deleted meanwhile (a foreign key).
    #[error("the referenced row is gone")]
    Vanished,
    /// An admin change refused because no active superuser would remain.
    #[error("no active superuser would remain")]
    LastSuperuser,
    #[error("database error: {0}")]
    Other(String),
}

/// Where the store meets the pipeline: each store failure becomes the
/// problem the client sees (5xx for the database, never 400).
impl From<StoreError> for crate::error::GatewayError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(cause) => Self::StoreUnavailable(cause),
            StoreError::Duplicate(field) => Self::Duplicate(field),
            StoreError::Vanished => Self::NotFound("account"),
            StoreError::LastSuperuser => Self::LastSuperuser,
            StoreError::Other(cause) => Self::Internal(cause),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                let msg = format!("{} {}", db.message(), db.constraint().unwrap_or(""));
                if msg.contains("org_members") {
                    StoreError::Duplicate("member")
                } else if msg.contains("username") {
                    StoreError::Duplicate("username")
                } else if msg.contains("email") {
                    StoreError::Duplicate("email")
                } else {
                    StoreError::Other(e.to_string())
                }
            }
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::Vanished,
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
            sqlx::Error::Database(db) if is_busy_or_down(db.code().as_deref()) => {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Other(e.to_string()),
        }
    }
}

/// Errors that mean "the database cannot serve us right now" rather than a
/// bad query: SQLite busy/locked, and PostgreSQL connection exceptions (08),
/// insufficient resources (53), operator intervention / shutdown (57),
/// a database not accepting connections (55000), a missing database
/// (3D000) and refused authentication (28).
fn is_busy_or_down(code: Option<&str>) -> bool {
    let Some(code) = code else { return false };
    matches!(code, "5" | "6" | "517" | "261" | "262" | "55000" | "3D000")
        || ["08", "53", "57", "28"]
            .iter()
            .any(|class| code.starts_with(class))
}

/// Bounds a store future by `OPERATION_TIMEOUT`.
pub async fn bounded<T>(fut: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    tokio::time::timeout(OPERATION_TIMEOUT, fut)
        .await
        .unwrap_or_else(|_| Err(StoreError::Unavailable("timed out".into())))
}

/// The ids `sql` selects for the one time parameter `$1` (sessions revoked,
/// accounts purged, … since then).
pub(crate) async fn ids_since(
    db: &Db,
    sql: &'static str,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<uuid::Uuid>, StoreError> {
    bounded(async {
        Ok(on_db!(db, |pool| sqlx::query_scalar(sql)
            .bind(since)
            .fetch_all(pool)
            .await)?)
    })
    .await
}

impl Db {
    /// Opens a pool for `config.url`; relative SQLite paths resolve against
    /// `base_dir`, and the file and its directory are created.
    pub async fn connect(config: &DatabaseConfig, base_dir: &Path) -> Result<Db, StoreError> {
        let url = config.url.as_str();
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.trim_start_matches("//");
            let (options, wal_sync) = if path == ":memory:" {
                let memory = SqliteConnectOptions::from_str("sqlite::memory:");
                (memory.map_err(StoreError::from)?, None)
            } else {
                let (file, query) = path.split_once('?').unwrap_or((path, ""));
                let full = crate::config::units::resolve_path(base_dir, file);
                if let Some(dir) = full.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
                let file_options = SqliteConnectOptions::new()
                    .filename(&full)
                    .create_if_missing(true);
                if query.contains("mode=memory") {
                    (file_options.in_memory(true), None)
                } else {
                    let sync = durability::WalSync::new(full, config.sync_interval);
                    (
                        durability::group_commit(file_options),
                        Some(std::sync::Arc::new(sync)),
                    )
                }
            };
            let options = options
                .journal_mode(SqliteJournalMode::Wal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5));
            let pool = SqlitePoolOptions::new()
                .max_connections(config.max_connections)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await?;
            Ok(Db::Sqlite(pool, wal_sync))
        } else {
            let options = PgConnectOptions::from_str(url).map_err(StoreError::from)?;
            let pool = PgPoolOptions::new()
                .max_connections(config.max_connections)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await?;
            Ok(Db::Postgres(pool))
        }
    }

    /// Applies the embedded migrations for this backend.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let result = match self {
            Db::Sqlite(pool, _) => SQLITE_MIGRATIONS.run(pool).await,
            Db::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await,
        };
        result.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(inner) => StoreError::from(inner),
            other => StoreError::Other(other.to_string()),
        })
    }

    /// A cheap round trip, for readiness.
    pub async fn ping(&self) -> Result<(), StoreError> {
        bounded(async {
            on_db!(self, |pool| sqlx::query("SELECT 1")
                .execute(pool)
                .await
                .map(|_| ()))
            .map_err(StoreError::from)
        })
        .await
    }

    /// Returns once every write committed before the call is durable: a
    /// group sync of SQLite's log (`durability`); PostgreSQL commits are.
    pub async fn sync(&self) -> Result<(), StoreError> {
        match self {
            Db::Sqlite(_, Some(wal)) => bounded(wal.flush()).await,
            _ => Ok(()),
        }
    }

    /// Records that the request being answered writes through this store
    /// (`durability::tracking`); every write function calls it first.
    pub(crate) fn note_write(&self) {
        match self {
            Db::Sqlite(_, wal) => durability::note_write(wal.as_ref()),
            Db::Postgres(_) => durability::note_write(None),
        }
    }

    /// Syncs of SQLite's log so far (none for other backends).
    pub fn syncs(&self) -> u64 {
        match self {
            Db::Sqlite(_, Some(wal)) => wal.syncs(),
            _ => 0,
        }
    }

    pub async fn close(&self) {
        if let Err(e) = self.sync().await {
            tracing::warn!(error = %e, "database sync before closing");
        }
        on_db!(self, |pool| pool.close().await)
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite(..) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }
}

/// The serving pool, opened on first use (so it belongs to the runtime that
/// serves the account API) and shared by everything that needs it.
pub struct LazyDb {
    config: DatabaseConfig,
    base_dir: std::path::PathBuf,
    pool: tokio::sync::OnceCell<Db>,
}

impl LazyDb {
    pub fn new(config: DatabaseConfig, base_dir: std::path::PathBuf) -> LazyDb {
        LazyDb {
            config,
            base_dir,
            pool: tokio::sync::OnceCell::new(),
        }
    }

    /// The pool, connecting on first use.
    pub async fn get(&self) -> Result<&Db, StoreError> {
        self.pool
            .get_or_try_init(|| Db::connect(&self.config, &self.base_dir))
            .await
    }

    /// The pool if it is open already.
    pub fn opened(&self) -> Option<&Db> {
        self.pool.get()
    }

    /// Whether the database answers. Before the serving pool exists, probes
    /// with a throwaway connection rather than opening the pool from a
    /// runtime that does not own it.
    pub async fn ready(&self) -> bool {
        match self.opened() {
            Some(db) => db.ping().await.is_ok(),
            None => match Db::connect(&self.config, &self.base_dir).await {
                Ok(db) => {
                    let ok = db.ping().await.is_ok();
                    db.close().await;
                    ok
                }
                Err(_) => false,
            },
        }
    }
}

/// Runs `work` against a short-lived pool for `config.database` on a thread
/// and runtime of its own (callable from inside or outside a runtime; the
/// pool is closed before returning, so no connection outlives its runtime).
pub fn with_temporary<T: Send>(
    config: &crate::config::Config,
    work: impl AsyncFnOnce(&Db) -> Result<T, String> + Send,
) -> Result<T, String> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                rt.block_on(async {
                    let db = Db::connect(&config.database, &config.base_dir)
                        .await
                        .map_err(|e| format!("database {}: {e}", redact(&config.database.url)))?;
                    let result = work(&db).await;
                    db.close().await;
                    result
                })
            })
            .join()
            .map_err(|_| "database work panicked".to_string())?
    })
}

pub use crate::config::units::redact_url as redact;

/// Stores a list of strings as a JSON array (roles, amr).
pub fn to_json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

pub fn from_json_list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}
