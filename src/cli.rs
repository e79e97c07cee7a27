//! The command-line subcommands (`serve`, `check`, `keygen`); `main` only
//! parses arguments and calls these.

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

/// Problems `check` finds beyond the file itself: secrets and key files.
fn external_problems(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let tokens = &config.tokens;
    if let Err(e) = SigningKey::load(tokens.algorithm, &tokens.signing_key) {
        let hint = match &tokens.signing_key {
            SecretSource::File(_) => " (run `portcullis keygen`, or `serve` once, to create it)",
            SecretSource::Env(_) => "",
        };
        out.push(format!("tokens.signing_key: {e}{hint}"));
    }
    for (i, issuer) in tokens.trusted_issuers.iter().enumerate() {
        if let JwksSource::File(path) = &issuer.jwks {
            let result = std::fs::read(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
                .and_then(|body| jwks::parse_jwks(&body));
            match result {
                Ok(keys) if keys.is_empty() => out.push(format!(
                    "tokens.trusted_issuers.{i}.jwks_file: no usable signing keys"
                )),
                Ok(_) => {}
                Err(e) => out.push(format!("tokens.trusted_issuers.{i}.jwks_file: {e}")),
            }
        }
    }
    out
}

/// `portcullis check`: validates everything, one line per problem.
pub fn check(path: &Path) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let problems = external_problems(&config);
    if problems.is_empty() {
        println!(
            "{}: OK ({} routes, {} upstreams)",
            path.display(),
            config.routes.len(),
            config.upstreams.len()
        );
        ExitCode::SUCCESS
    } else {
        for p in problems {
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
