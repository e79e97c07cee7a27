//! Metrics (Prometheus text, served by [`admin`](crate::admin)) and the
//! logging set-up. Secrets, tokens and passwords are never logged.

pub mod metrics;

pub use metrics::Metrics;

/// Installs the global tracing subscriber: one JSON object per line, level
/// from `RUST_LOG` (default `info`). Safe to call more than once.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_env_filter(filter)
        .try_init();
}
