//! `despacio-gateway`: see the crate docs.
use std::process::ExitCode;

use ws_gateway::{config::Settings, server::Gateway};

/// mimalloc instead of glibc's malloc: about a tenth less CPU per message, and (with transparent
/// huge pages off, feature `no_thp`) a smaller idle footprint: 3.8 KiB per connection instead of
/// 4.0 (bench/RESULTS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Resolves on SIGTERM or Ctrl-C. The handlers are installed at the call, before the gateway
/// logs that it listens: a SIGTERM right after that line drains instead of killing.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
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
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("despacio-gateway: {e}");
            return ExitCode::from(2);
        }
    };
    {
        use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt};
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| "info,fred=warn".into());
        let registry = tracing_subscriber::registry()
            .with(filter)
            .with(entities::logs::TapLayer);
        if settings.json_logs {
            registry
                .with(tracing_subscriber::fmt::layer().json())
                .init();
        } else {
            registry
                .with(tracing_subscriber::fmt::layer().compact())
                .init();
        }
    }
    let result = async {
        let gateway = Gateway::build(&settings).await?;
        gateway.run_until_stopped(shutdown_signal()).await?;
        anyhow::Ok(())
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("despacio-gateway: {e:#}");
            ExitCode::FAILURE
        }
    }
}
