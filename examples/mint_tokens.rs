//! Prints N distinct access tokens signed with a config's signing key, one
//! per line, for load tests that must defeat the verified-token cache
//! (`benches/load.sh`, row portcullis-jwt-cold). A development aid: whoever
//! can read the signing key can mint tokens anyway.
//! Usage: cargo run --release --example mint_tokens -- CONFIG COUNT [SUB]

use std::io::Write;

use portcullis::authn::keys::SigningKey;
use portcullis::Config;
use serde_json::json;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(config), Some(count)) = (args.get(1), args.get(2)) else {
        return Err("usage: mint_tokens CONFIG COUNT [SUB]".into());
    };
    let count: usize = count.parse().map_err(|e| format!("COUNT: {e}"))?;
    let sub = args
        .get(3)
        .cloned()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let config = Config::load(std::path::Path::new(config)).map_err(|e| e.lines().join("\n"))?;
    let key = SigningKey::load_or_create(config.tokens.algorithm, &config.tokens.signing_key)?;
    let now = chrono::Utc::now().timestamp();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for _ in 0..count {
        let claims = json!({
            "iss": config.tokens.issuer,
            "aud": config.tokens.audience,
            "sub": sub,
            "iat": now,
            "nbf": now,
            "exp": now + config.tokens.access_ttl.as_secs() as i64,
            "jti": uuid::Uuid::new_v4().to_string(),
            "roles": ["user"],
            "scope": "",
        });
        let token = key.sign("at+jwt", &claims)?;
        writeln!(out, "{token}").map_err(|e| e.to_string())?;
    }
    Ok(())
}
