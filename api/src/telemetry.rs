//! Logs and process signals.
//!
//! Logs are JSON lines on stdout (`LOG_FORMAT=pretty` for humans), filtered by `RUST_LOG`
//! (default `info`). Handlers never log personal data: no emails, tokens or message bodies; users
//! appear by id only.
use tracing_subscriber::{fmt, layer::SubscriberExt, util::SubscriberInitExt, EnvFilter};

use crate::config::LogFormat;

/// What is logged when `RUST_LOG` says nothing.
const DEFAULT_FILTER: &str = "info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn,fred=warn";

/// Installs the global subscriber (once per process; later calls do nothing).
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(entities::logs::TapLayer);
    let _ = match format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init(),
        LogFormat::Pretty => registry.with(fmt::layer().compact()).try_init(),
    };
}

/// Installs a subscriber that only feeds the live log tap (no output), unless one is installed
/// already: what the tests use, so that the log stream has events to stream.
pub fn init_tap_only() {
    let _ = tracing_subscriber::registry()
        .with(EnvFilter::new(DEFAULT_FILTER))
        .with(entities::logs::TapLayer)
        .try_init();
}

/// Resolves on SIGTERM or Ctrl-C.
///
/// The handlers are installed when this is called, not when the future is first polled: a
/// SIGTERM that arrives between "listening" and the server's first poll of the future would
/// otherwise kill the process with the default action instead of draining it.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let interrupt = signal(SignalKind::interrupt());
    async move {
        let wait = |s: std::io::Result<tokio::signal::unix::Signal>| async move {
            match s {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = wait(term) => {},
            _ = wait(interrupt) => {},
        }
        tracing::info!("shutdown signal received; finishing in-flight requests");
    }
}
