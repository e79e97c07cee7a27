//! Config rules that name what a stage will do with a value, kept here so
//! `validate` can apply them without importing the stage: which incoming
//! headers the strip rules remove (`gateway::headers` strips exactly
//! these), and which SMTP URLs `mail` accepts.

use lettre::{AsyncSmtpTransport, Tokio1Executor};

use super::HeaderConfig;

/// Headers no client may set: rewrite/override tricks and forwarding
/// headers the gateway writes itself (compared after `_` → `-` folding).
const ALWAYS_STRIPPED: &[&str] = &[
    "x-original-url",
    "x-rewrite-url",
    "x-original-uri",
    "x-original-method",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "forwarded",
    "x-real-ip",
    "x-client-ip",
    "true-client-ip",
    "x-cluster-client-ip",
    "x-url-scheme",
    "front-end-https",
    "x-host",
    "x-original-host",
    "x-request-id",
    // The identity headers the gateway itself emits (§5) are never taken
    // from a client, whatever the configured strip lists say.
    "x-auth-user-id",
    "x-auth-email",
    "x-auth-roles",
    "x-auth-org-role",
    "x-auth-org-id",
    "x-auth-scopes",
    "x-auth-method",
    "x-auth-key-id",
    "x-auth-client-id",
    "x-auth-session-id",
    "x-auth-token",
    "x-auth-issuer",
];

/// Prefixes no client may set: every `X-Forwarded-*` (`-For`, `-Proto`,
/// `-Host`, `-Ssl`, `-Uri`, …) is written by the gateway or not at all.
const ALWAYS_STRIPPED_PREFIXES: &[&str] = &["x-forwarded-"];

fn folded(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

/// Whether an incoming header must be removed.
pub fn must_strip(name: &str, cfg: &HeaderConfig) -> bool {
    let name = folded(name);
    ALWAYS_STRIPPED.contains(&name.as_str())
        || ALWAYS_STRIPPED_PREFIXES.iter().any(|p| name.starts_with(p))
        || cfg.strip.contains(&name)
        || cfg
            .strip_prefixes
            .iter()
            .any(|p| name.starts_with(p.as_str()))
}

/// Refuses SMTP URLs lettre cannot use, and plain `smtp://` to a remote
/// host: tokens would cross the network in the clear. Messages never
/// repeat the URL's password.
pub fn check_smtp_url(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    let shown = format!(
        "{}://{}",
        parsed.scheme(),
        parsed.host_str().unwrap_or_default()
    );
    AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map_err(|e| format!("{shown}: not an SMTP URL lettre understands: {e}"))?;
    let tls = parsed
        .query_pairs()
        .any(|(k, v)| k == "tls" && (v == "required" || v == "opportunistic"));
    let local = matches!(
        parsed.host_str(),
        Some("localhost" | "127.0.0.1" | "[::1]" | "::1")
    );
    if parsed.scheme() == "smtp" && !tls && !local {
        return Err(format!(
            "{shown} would send mail (and its tokens) unencrypted; use smtps://, or smtp://…?tls=required for STARTTLS"
        ));
    }
    Ok(())
}
