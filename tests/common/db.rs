//! Database backends for the account suites: SQLite always, PostgreSQL
//! when `PORTCULLIS_TEST_DATABASE_URL` names a server (scripts/test.sh sets
//! it, starting a throwaway server when none is running). Every PostgreSQL
//! backend is a fresh database, dropped when the backend is dropped.

use std::sync::atomic::{AtomicBool, Ordering};

pub const DATABASE_ENV: &str = "PORTCULLIS_TEST_DATABASE_URL";

pub struct Backend {
    pub name: &'static str,
    /// `[database] url` for the gateway's config.
    pub url: String,
    admin_url: Option<String>,
    database: Option<String>,
}

impl Backend {
    /// The `[database]` section selecting this backend.
    pub fn config(&self) -> String {
        format!(
            "\n[database]\nurl = \"{}\"\nmax_connections = 4\n",
            self.url
        )
    }
}

static WARNED: AtomicBool = AtomicBool::new(false);

/// The backends to run a test on.
pub async fn backends() -> Vec<Backend> {
    let mut out = vec![Backend {
        name: "sqlite",
        url: "sqlite://data/portcullis.db".into(),
        admin_url: None,
        database: None,
    }];
    match std::env::var(DATABASE_ENV) {
        Ok(admin_url) if !admin_url.is_empty() => out.push(postgres(&admin_url).await),
        _ => {
            if !WARNED.swap(true, Ordering::Relaxed) {
                eprintln!(
                    "\n!!! {DATABASE_ENV} is not set: PostgreSQL variants of the account tests are SKIPPED \
                     (run scripts/test.sh, which finds or starts a PostgreSQL server)\n"
                );
            }
        }
    }
    out
}

/// A fresh database on the server `admin_url` points at.
async fn postgres(admin_url: &str) -> Backend {
    use sqlx::Executor;
    let name = format!("portcullis_test_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::PgPool::connect(admin_url)
        .await
        .unwrap_or_else(|e| panic!("{DATABASE_ENV}={admin_url}: {e}"));
    pool.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .expect("CREATE DATABASE");
    pool.close().await;
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("a database URL ends in /dbname");
    Backend {
        name: "postgres",
        url: format!("{base}/{name}"),
        admin_url: Some(admin_url.to_string()),
        database: Some(name),
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        let (Some(admin_url), Some(name)) = (self.admin_url.clone(), self.database.clone()) else {
            return;
        };
        // Drop may run inside a runtime: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                use sqlx::Executor;
                if let Ok(pool) = sqlx::PgPool::connect(&admin_url).await {
                    let _ = pool
                        .execute(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .await;
                    pool.close().await;
                }
            })
        })
        .join();
    }
}
