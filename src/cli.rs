//! The command-line subcommands (`serve`, `check`, `migrate`, `user …`,
//! `keygen`); `main` only parses arguments and calls these.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::authn::jwks;
use crate::authn::keys::{self, KeyAlgorithm, SigningKey};
use crate::config::{Config, JwksSource, SecretSource};

fn load(path: &Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|e| {
        for line in e.lines() {
            eprintln!("{}: {line}", path.display());
        }
        ExitCode::FAILURE
    })
}

/// `portcullis serve`: runs until SIGTERM (graceful) or SIGINT (fast).
pub fn serve(path: &Path) -> ExitCode {
    crate::telemetry::init_logging();
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Some(warning) = crate::mail::unserved_links_warning(&config) {
        tracing::warn!("{warning}");
    }
    match crate::Gateway::build(config) {
        Ok(gateway) => {
            gateway.run(Box::new(pingora::server::UnixShutdownSignalWatch));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}

/// What `check` finds beyond the file itself: problems with secrets and
/// key files (each prefixed with its key, never repeating a secret), and
/// notes that do not fail the check.
#[derive(Default)]
struct Findings {
    problems: Vec<String>,
    notes: Vec<String>,
}

impl Findings {
    /// A missing `file:` secret is a note (`serve` creates it at first
    /// start); a present but bad one, or a bad `env:`, is a problem.
    fn secret<T>(
        &mut self,
        key: &str,
        source: &SecretSource,
        load: impl FnOnce() -> Result<T, String>,
    ) {
        if let SecretSource::File(path) = source {
            if !path.exists() {
                self.notes.push(format!(
                    "{key}: {} does not exist yet; serve creates it at first start",
                    path.display()
                ));
                return;
            }
        }
        if let Err(e) = load() {
            self.problems.push(format!("{key}: {e}"));
        }
    }
}

fn external_findings(config: &Config) -> Findings {
    let mut out = Findings::default();
    let tokens = &config.tokens;
    out.secret("tokens.signing_key", &tokens.signing_key, || {
        SigningKey::load(tokens.algorithm, &tokens.signing_key)
    });
    let secret = &config.accounts.secret_encryption_key;
    out.secret("accounts.secret_encryption_key", secret, || {
        crate::crypto::secret::ServerSecret::load(secret)
    });
    for (i, issuer) in tokens.trusted_issuers.iter().enumerate() {
        if let JwksSource::File(path) = &issuer.jwks {
            let result = std::fs::read(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
                .and_then(|body| jwks::parse_jwks(&body));
            let key = format!("tokens.trusted_issuers.{i}.jwks_file");
            match result {
                Ok(keys) if keys.is_empty() => {
                    out.problems.push(format!("{key}: no usable signing keys"))
                }
                Ok(_) => {}
                Err(e) => out.problems.push(format!("{key}: {e}")),
            }
        }
    }
    out.notes
        .extend(crate::mail::unserved_links_warning(config));
    out
}

/// `portcullis check`: validates everything, one line per problem (stderr,
/// exit 1) and per note (stdout).
pub fn check(path: &Path) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let findings = external_findings(&config);
    for note in &findings.notes {
        println!("{}: note: {note}", path.display());
    }
    if findings.problems.is_empty() {
        println!(
            "{}: OK ({} routes, {} upstreams)",
            path.display(),
            config.routes.len(),
            config.upstreams.len()
        );
        ExitCode::SUCCESS
    } else {
        for p in findings.problems {
            eprintln!("{}: {p}", path.display());
        }
        ExitCode::FAILURE
    }
}

/// `portcullis migrate`: applies the embedded migrations.
pub fn migrate(path: &Path) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match crate::store::with_temporary(&config, async |db| {
        db.migrate().await.map_err(|e| e.to_string())
    }) {
        Ok(()) => {
            println!(
                "migrations applied ({})",
                crate::store::redact(&config.database.url)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// `portcullis user create`: the password is the first line of stdin
/// (only the line ending is removed; the password is never trimmed).
pub fn create_user(path: &Path, email: &str, username: Option<&str>, superuser: bool) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
        eprintln!("could not read the password from stdin");
        return ExitCode::FAILURE;
    }
    let password = line
        .strip_suffix('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .unwrap_or(&line);
    let problem = crate::api::validate_new_user(&config, email, username, password).err();
    if let Some(e) = problem {
        eprintln!("{}", e.detail());
        return ExitCode::FAILURE;
    }
    let result = crate::store::with_temporary(&config, async |db| {
        db.migrate().await.map_err(|e| e.to_string())?;
        let hasher = crate::crypto::password::Hasher::new(config.accounts.argon2)?;
        let hash = hasher.hash(password).await.map_err(|e| e.to_string())?;
        let new = crate::store::users::NewUser {
            email,
            username,
            password_hash: &hash,
            superuser,
            email_verified: true,
        };
        let user = crate::store::users::create(db, new, chrono::Utc::now())
            .await
            .map_err(|e| crate::error::GatewayError::from(e).detail())?;
        crate::store::audit::record(
            db,
            "user_created",
            Some(user.id),
            None,
            &Default::default(),
            serde_json::json!({"superuser": superuser, "via": "cli"}),
        )
        .await;
        Ok(user)
    });
    match result {
        Ok(user) => {
            println!(
                "created user {} ({}){}",
                user.id,
                user.email,
                if superuser { " as superuser" } else { "" }
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Users `user list` reads per query, so a large table never loads at once.
const LIST_PAGE: u32 = 500;

/// `portcullis user list`: one tab-separated line per user (id, email,
/// username or `-`, active, superuser) in creation order; no secrets.
pub fn list_users(path: &Path) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let result = crate::store::with_temporary(&config, async |db| {
        db.migrate().await.map_err(|e| e.to_string())?;
        println!("id\temail\tusername\tactive\tsuperuser");
        let mut cursor = None;
        loop {
            let page = crate::store::users::list(db, LIST_PAGE, cursor)
                .await
                .map_err(|e| e.to_string())?;
            for u in &page {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    u.id,
                    u.email,
                    u.username.as_deref().unwrap_or("-"),
                    u.is_active,
                    u.is_superuser
                );
            }
            match page.last() {
                Some(last) if page.len() == LIST_PAGE as usize => cursor = Some(last.id),
                _ => return Ok(()),
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// `portcullis user promote`: makes an existing user an active superuser
/// (recovery when no superuser is left). Revokes nothing; audited as an
/// admin change with no actor.
pub fn promote_user(path: &Path, email: &str) -> ExitCode {
    use crate::store::users;
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let result = crate::store::with_temporary(&config, async |db| {
        db.migrate().await.map_err(|e| e.to_string())?;
        let Some(before) = users::by_email(db, email)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Err(format!("no user with email {email:?}"));
        };
        let change = users::AdminChange {
            is_active: Some(true),
            is_superuser: Some(true),
            roles: None,
        };
        let after = users::admin_update(db, before.id, &change, chrono::Utc::now())
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no user with email {email:?}"))?;
        crate::store::audit::record(
            db,
            "admin_user_updated",
            Some(after.id),
            None,
            &Default::default(),
            serde_json::json!({"is_active": after.is_active, "is_superuser": after.is_superuser, "roles": after.roles, "via": "cli"}),
        )
        .await;
        Ok((before, after))
    });
    let (before, after) = match result {
        Ok(pair) => pair,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let mut changed = Vec::new();
    if !before.is_superuser {
        changed.push("now a superuser");
    }
    if !before.is_active {
        changed.push("re-activated");
    }
    if changed.is_empty() {
        println!(
            "user {} ({}) was already an active superuser; nothing changed",
            after.id, after.email
        );
    } else {
        println!(
            "user {} ({}): {}",
            after.id,
            after.email,
            changed.join(", ")
        );
    }
    if let Some(at) = after.deletion_scheduled_for {
        println!("note: the account is still scheduled for deletion at {at}");
    }
    ExitCode::SUCCESS
}

/// `portcullis keygen`: writes a new signing key (never overwrites unless
/// `force`), by default where the config's `tokens.signing_key` points.
pub fn keygen(path: &Path, algorithm: Option<&str>, out: Option<PathBuf>, force: bool) -> ExitCode {
    let config = if out.is_some() && algorithm.is_some() {
        None
    } else {
        Some(load(path))
    };
    let config = match config {
        Some(Err(code)) => return code,
        Some(Ok(c)) => Some(c),
        None => None,
    };
    let algorithm = match algorithm.map(str::parse::<KeyAlgorithm>) {
        Some(Ok(a)) => a,
        Some(Err(e)) => {
            eprintln!("--algorithm: {e}");
            return ExitCode::FAILURE;
        }
        None => config
            .as_ref()
            .map_or(KeyAlgorithm::EdDSA, |c| c.tokens.algorithm),
    };
    let target = match (out, config.as_ref().map(|c| &c.tokens.signing_key)) {
        (Some(p), _) => p,
        (None, Some(SecretSource::File(p))) => p.clone(),
        (None, _) => {
            eprintln!("tokens.signing_key is not a file: pass --out PATH");
            return ExitCode::FAILURE;
        }
    };
    if target.exists() {
        if !force {
            eprintln!("{} exists; pass --force to replace it", target.display());
            return ExitCode::FAILURE;
        }
        if let Err(e) = std::fs::remove_file(&target) {
            eprintln!("cannot replace {}: {e}", target.display());
            return ExitCode::FAILURE;
        }
    }
    match keys::write_new_key(algorithm, &target)
        .and_then(|_| SigningKey::load(algorithm, &SecretSource::File(target.clone())))
    {
        Ok(key) => {
            println!(
                "wrote {algorithm:?} key to {} (kid {})",
                target.display(),
                key.kid
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
