//! `portcullis migrate` and `portcullis user create|promote|list` from the outside
//! (DESIGN.md §2, §10 CLI/Accounts): the built binary writes the database,
//! and a gateway on the same database lets the created users in; the
//! superuser reaches the admin endpoints, a normal user does not.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::http::*;
use common::*;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

const ROOT_PASSWORD: &str = "a long enough password";
/// Leading and trailing spaces: only the line ending may be removed.
const PLAIN_PASSWORD: &str = "  plain user password  ";

/// `[accounts]` shared by the CLI and the gateway: closed registration,
/// cheap hashing, a lockout of 3 failures and no throttles.
const ACCOUNTS: &str = r#"
[accounts]
registration = "closed"
argon2 = { memory_kib = 1024, iterations = 1, parallelism = 1 }
cookie_secure = false
lockout = { max_failures = 3, window = "10m", duration = "15m" }
throttle = { login = "1000/m", register = "1000/m", forgot_password = "10/h" }
"#;

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("portcullis.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs the binary with `args --config config`, `stdin` on its stdin.
fn run(args: &[&str], config: &Path, stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("PORTCULLIS_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn out(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `user create`; asserts exit 0 and returns the printed user id.
fn create_user(config: &Path, email: &str, extra: &[&str], password: &str, ctx: &str) -> String {
    let mut args = vec!["user", "create", "--email", email];
    args.extend_from_slice(extra);
    let o = run(&args, config, &format!("{password}\n"));
    assert_eq!(
        o.status.code(),
        Some(0),
        "{ctx}: create {email}: {}",
        out(&o)
    );
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    stdout
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .find(|w| uuid::Uuid::parse_str(w).is_ok())
        .unwrap_or_else(|| panic!("{ctx}: no user id printed: {stdout}"))
        .to_string()
}

/// The `[database] url` for `backend` that a CLI run and a gateway (with
/// another data directory) both reach: an absolute SQLite path in `dir`.
fn shared_url(backend: &Backend, dir: &Path) -> String {
    if backend.name == "sqlite" {
        format!("sqlite://{}", dir.join("p.db").display())
    } else {
        backend.url.clone()
    }
}

fn database(url: &str) -> String {
    format!("\n[database]\nurl = \"{url}\"\nmax_connections = 4\n")
}

/// A fresh directory with a config of `[accounts]` on `backend`'s
/// database: (the directory, kept alive by the caller; the database url;
/// the config file).
fn setup(backend: &Backend) -> (tempfile::TempDir, String, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let url = shared_url(backend, dir.path());
    let cfg = write_config(dir.path(), &format!("{}{ACCOUNTS}", database(&url)));
    (dir, url, cfg)
}

async fn count_users(url: &str) -> i64 {
    const SQL: &str = "SELECT COUNT(*) FROM users";
    if let Some(path) = url.strip_prefix("sqlite://") {
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        let n: i64 = sqlx::query_scalar(SQL).fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        let n: i64 = sqlx::query_scalar(SQL).fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    }
}

async fn login(gw: &TestGateway, email: &str, password: &str) -> Resp {
    login_from(gw, email, password, "127.0.0.1").await
}

/// Logs in as client `ip` (the gateway trusts the local peer's X-Forwarded-For).
async fn login_from(gw: &TestGateway, email: &str, password: &str, ip: &str) -> Resp {
    let body = json!({"email": email, "password": password}).to_string();
    send(
        client()
            .post(gw.url("/auth/login"))
            .header("content-type", "application/json")
            .header("x-forwarded-for", ip)
            .body(body),
    )
    .await
}

async fn get(gw: &TestGateway, path: &str, token: &str) -> Resp {
    send(client().get(gw.url(path)).bearer_auth(token)).await
}

fn claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_creates_the_sqlite_database_next_to_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "[database]\nurl = \"sqlite://data/p.db\"\n");
    let o = run(&["migrate"], &cfg, "");
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let db = dir.path().join("data/p.db");
    assert!(
        db.is_file(),
        "relative to the config's directory: {}",
        out(&o)
    );

    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&db);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    for t in ["users", "sessions", "lockouts"] {
        assert!(tables.iter().any(|n| n == t), "table {t} in {tables:?}");
    }

    let again = run(&["migrate"], &cfg, "");
    assert_eq!(again.status.code(), Some(0), "idempotent: {}", out(&again));
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_reports_an_unreachable_database() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = write_config(
        dir.path(),
        &format!("[database]\nurl = \"postgres://postgres@127.0.0.1:{port}/none\"\n"),
    );
    let o = run(&["migrate"], &cfg, "");
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("database"),
        "{}",
        out(&o)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn created_superuser_administers_and_plain_user_does_not() {
    for backend in backends().await {
        let b = backend.name;
        let (_dir, url, cfg) = setup(&backend);
        let root_id = create_user(&cfg, "root@example.com", &["--superuser"], ROOT_PASSWORD, b);
        let plain_id = create_user(
            &cfg,
            "Plain@Example.com",
            &["--username", "plain_user"],
            PLAIN_PASSWORD,
            b,
        );
        assert_ne!(root_id, plain_id, "{b}");
        assert_eq!(count_users(&url).await, 2, "{b}");

        let gw =
            TestGateway::start_trusting_localhost(&format!("{}{ACCOUNTS}", database(&url))).await;
        let r = login(&gw, "root@example.com", ROOT_PASSWORD).await;
        assert_eq!(r.status, 200, "{b}: superuser login: {}", r.text);
        let root_token = r.json()["access_token"].as_str().unwrap().to_string();
        let c = claims(&root_token);
        assert_eq!(c["sub"], root_id.as_str(), "{b}: {c}");
        assert_eq!(c["su"], true, "{b}: superuser claim: {c}");

        let r = get(&gw, "/auth/admin/users", &root_token).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let list = r.json();
        let items = list["items"].as_array().expect("items");
        assert!(list.get("next_cursor").is_some(), "{b}: {list}");
        let find = |id: &str| {
            items
                .iter()
                .find(|u| u["id"] == id)
                .unwrap_or_else(|| panic!("{b}: {id} not in {list}"))
        };
        let root = find(&root_id);
        assert_eq!(root["email"], "root@example.com", "{b}");
        assert_eq!(root["is_superuser"], true, "{b}");
        assert_eq!(root["is_active"], true, "{b}");
        let plain = find(&plain_id);
        assert_eq!(plain["email"], "Plain@Example.com", "{b}: stored as given");
        assert_eq!(plain["username"], "plain_user", "{b}");
        assert_eq!(plain["is_superuser"], false, "{b}");
        assert_eq!(plain["roles"], json!(["user"]), "{b}");
        assert!(
            !list.to_string().contains("$argon2"),
            "{b}: no hashes listed"
        );

        // The stdin password is used as given (spaces kept), any email case.
        let r = login(&gw, "plain@example.com", PLAIN_PASSWORD.trim()).await;
        assert_eq!(r.status, 401, "{b}: a trimmed password must not match");
        let r = login(&gw, "plain@example.com", PLAIN_PASSWORD).await;
        assert_eq!(r.status, 200, "{b}: plain login: {}", r.text);
        let plain_token = r.json()["access_token"].as_str().unwrap().to_string();
        assert!(
            claims(&plain_token).get("su").is_none_or(|v| v == false),
            "{b}"
        );
        for path in ["/auth/admin/users", "/auth/admin/audit"] {
            let r = get(&gw, path, &plain_token).await;
            assert_eq!(r.status, 403, "{b}: {path}: {}", r.text);
            assert_eq!(r.json()["code"], "admin_required", "{b}: {path}");
        }
        let r = get(&gw, "/auth/me", &plain_token).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);

        // A forged `su` claim does not open the admin API (re-checked in the DB).
        let forged = gw.token(|c| {
            c["sub"] = json!(plain_id);
            c["email"] = json!("Plain@Example.com");
            c["su"] = json!(true);
        });
        let r = get(&gw, "/auth/admin/users", &forged).await;
        assert_eq!(r.status, 403, "{b}: su claim alone: {}", r.text);

        // Registration is closed for everyone else.
        let r = send(
            client()
                .post(gw.url("/auth/register"))
                .header("content-type", "application/json")
                .body(json!({"email": "new@example.com", "password": ROOT_PASSWORD}).to_string()),
        )
        .await;
        assert_eq!(r.status, 403, "{b}: {}", r.text);
        assert_eq!(r.json()["code"], "registration_closed", "{b}");

        // Failed logins and the lockout they cause are in the audit log
        // (from three addresses: the per-account lockout).
        for ip in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
            let r = login_from(&gw, "plain@example.com", "wrong password!", ip).await;
            assert_eq!(r.status, 401, "{b}: {}", r.text);
        }
        let r = get(&gw, "/auth/admin/audit?limit=200", &root_token).await;
        assert_eq!(r.status, 200, "{b}: audit: {}", r.text);
        let audit = r.json();
        let events = audit["items"].as_array().expect("items");
        let has = |kind: &str, user: &str| {
            events
                .iter()
                .any(|e| e["kind"] == kind && e["user_id"] == user)
        };
        assert!(has("user_created", &root_id), "{b}: {audit}");
        assert!(has("login_succeeded", &root_id), "{b}: {audit}");
        assert!(has("login_failed", &plain_id), "{b}: {audit}");
        assert!(has("lockout", &plain_id), "{b}: {audit}");
        assert!(
            !audit.to_string().contains("wrong password"),
            "{b}: no passwords in the audit log"
        );
        let r = login(&gw, "plain@example.com", PLAIN_PASSWORD).await;
        assert_eq!(r.status, 429, "{b}: locked: {}", r.text);
        drop(gw);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn user_create_refuses_bad_input_and_duplicates() {
    for backend in backends().await {
        let b = backend.name;
        let (_dir, url, cfg) = setup(&backend);

        let refused = |args: &[&str], stdin: &str, names: &str| {
            let o = run(args, &cfg, stdin);
            assert_eq!(o.status.code(), Some(1), "{b}: {args:?}: {}", out(&o));
            let err = String::from_utf8_lossy(&o.stderr).to_lowercase();
            assert!(
                err.contains(names),
                "{b}: {args:?} names {names}: {}",
                out(&o)
            );
            assert!(o.stdout.is_empty() || !String::from_utf8_lossy(&o.stdout).contains("created"));
        };
        let create = ["user", "create", "--email", "root@example.com"];
        refused(&create, "short\n", "password");
        refused(&create, "password1234\n", "password");
        refused(&create, "", "password");
        refused(
            &["user", "create", "--email", "not-an-email"],
            "a long enough password\n",
            "email",
        );
        refused(
            &[
                "user",
                "create",
                "--email",
                "u@example.com",
                "--username",
                "a b",
            ],
            "a long enough password\n",
            "username",
        );

        create_user(&cfg, "root@example.com", &["--superuser"], ROOT_PASSWORD, b);
        refused(&create, "another long password\n", "email");
        refused(
            &["user", "create", "--email", "ROOT@EXAMPLE.COM"],
            "another long password\n",
            "email",
        );
        create_user(
            &cfg,
            "x@example.com",
            &["--username", "taken"],
            ROOT_PASSWORD,
            b,
        );
        refused(
            &[
                "user",
                "create",
                "--email",
                "y@example.com",
                "--username",
                "taken",
            ],
            "another long password\n",
            "username",
        );
        assert_eq!(count_users(&url).await, 2, "{b}: only the good ones exist");

        // The first one keeps its password.
        let gw = TestGateway::start(&format!("{}{ACCOUNTS}", database(&url))).await;
        let r = login(&gw, "root@example.com", ROOT_PASSWORD).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        drop(gw);
    }
}

/// Opens the database of the config at `cfg` through the library.
async fn open(cfg: &Path) -> portcullis::store::Db {
    let config = portcullis::config::Config::load(cfg).unwrap();
    portcullis::store::Db::connect(&config.database, &config.base_dir)
        .await
        .unwrap()
}

/// The last superuser is gone (demoted and deactivated): `user promote`
/// restores them (active superuser again, audited with no actor, nothing
/// revoked), says what changed, and refuses an unknown email.
#[tokio::test(flavor = "multi_thread")]
async fn user_promote_restores_a_superuser() {
    use portcullis::store::users;
    for backend in backends().await {
        let b = backend.name;
        let (_dir, url, cfg) = setup(&backend);
        let root_id = create_user(&cfg, "root@example.com", &["--superuser"], ROOT_PASSWORD, b);
        let plain_id = create_user(&cfg, "plain@example.com", &[], PLAIN_PASSWORD, b);

        // The API refuses to demote the last superuser (409), so the lost
        // state is written straight into the database, as a purged or
        // hand-edited account would leave it.
        let db = open(&cfg).await;
        let root = uuid::Uuid::parse_str(&root_id).unwrap();
        let demote = "UPDATE users SET is_active = FALSE, is_superuser = FALSE WHERE id = $1";
        match &db {
            portcullis::store::Db::Sqlite(pool, _) => {
                sqlx::query(demote).bind(root).execute(pool).await.unwrap();
            }
            portcullis::store::Db::Postgres(pool) => {
                sqlx::query(demote).bind(root).execute(pool).await.unwrap();
            }
        }

        let o = run(
            &["user", "promote", "--email", "nobody@example.com"],
            &cfg,
            "",
        );
        assert_eq!(o.status.code(), Some(1), "{b}: {}", out(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("no user with email"),
            "{b}: {}",
            out(&o)
        );

        let o = run(
            &["user", "promote", "--email", "ROOT@example.com"],
            &cfg,
            "",
        );
        assert_eq!(o.status.code(), Some(0), "{b}: {}", out(&o));
        let said = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(
            said.contains(&root_id)
                && said.contains("now a superuser")
                && said.contains("re-activated"),
            "{b}: {said}"
        );
        let after = users::by_id(&db, root).await.unwrap().unwrap();
        assert!(after.is_superuser && after.is_active, "{b}: {after:?}");
        let plain = uuid::Uuid::parse_str(&plain_id).unwrap();
        let untouched = users::by_id(&db, plain).await.unwrap().unwrap();
        assert!(!untouched.is_superuser, "{b}: only the named user");
        db.close().await;

        let o = run(
            &["user", "promote", "--email", "root@example.com"],
            &cfg,
            "",
        );
        assert_eq!(o.status.code(), Some(0), "{b}: {}", out(&o));
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("nothing changed"),
            "{b}: {}",
            out(&o)
        );

        // The restored superuser administers again; the change is audited.
        let gw = TestGateway::start(&format!("{}{ACCOUNTS}", database(&url))).await;
        let r = login(&gw, "root@example.com", ROOT_PASSWORD).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let token = r.json()["access_token"].as_str().unwrap().to_string();
        let r = get(&gw, "/auth/admin/audit?limit=200", &token).await;
        assert_eq!(r.status, 200, "{b}: {}", r.text);
        let audit = r.json();
        let promoted = audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "admin_user_updated" && e["user_id"] == root_id.as_str())
            .collect::<Vec<_>>();
        assert_eq!(promoted.len(), 2, "{b}: one event per promote: {audit}");
        assert!(
            promoted
                .iter()
                .all(|e| e.get("actor_id") == Some(&Value::Null)
                    && e["detail"]["via"] == "cli"
                    && e["detail"]["is_superuser"] == true),
            "{b}: no actor, via the CLI: {audit}"
        );
        drop(gw);
    }
}

/// `user list` prints every user, one line each, across several pages
/// (the command reads 500 at a time), without any hash.
#[tokio::test(flavor = "multi_thread")]
async fn user_list_prints_every_user_one_line_each() {
    use portcullis::store::users;
    for backend in backends().await {
        let b = backend.name;
        let (_dir, _url, cfg) = setup(&backend);
        let root_id = create_user(&cfg, "root@example.com", &["--superuser"], ROOT_PASSWORD, b);
        let named_id = create_user(
            &cfg,
            "named@example.com",
            &["--username", "named_user"],
            PLAIN_PASSWORD,
            b,
        );
        let db = open(&cfg).await;
        const MORE: usize = 1001;
        for i in 0..MORE {
            let email = format!("bulk{i}@example.com");
            let new = users::NewUser {
                email: &email,
                username: None,
                password_hash: "$argon2id$not-a-real-hash",
                superuser: false,
                email_verified: true,
            };
            users::create(&db, new, chrono::Utc::now()).await.unwrap();
        }
        db.close().await;

        let o = run(&["user", "list"], &cfg, "");
        assert_eq!(o.status.code(), Some(0), "{b}: {}", out(&o));
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "id\temail\tusername\tactive\tsuperuser", "{b}");
        assert_eq!(lines.len(), 1 + 2 + MORE, "{b}: one line per user");
        assert_eq!(
            lines[1],
            format!("{root_id}\troot@example.com\t-\ttrue\ttrue"),
            "{b}: creation order"
        );
        assert_eq!(
            lines[2],
            format!("{named_id}\tnamed@example.com\tnamed_user\ttrue\tfalse"),
            "{b}"
        );
        let mut ids: Vec<&str> = lines[1..]
            .iter()
            .map(|l| l.split('\t').next().unwrap())
            .collect();
        ids.dedup();
        assert_eq!(ids.len(), 2 + MORE, "{b}: no user twice across pages");
        assert!(
            text.contains(&format!("bulk{}@example.com", MORE - 1)),
            "{b}"
        );
        assert!(!text.contains("argon2"), "{b}: no hashes");
    }
}
