//! `despacio-worker`: see `api::worker`.
use api::{config::Settings, state::AppState, telemetry};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("despacio-worker: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    telemetry::init(settings.log_format);
    let result = async {
        let state = AppState::build(settings).await?;
        api::worker::run(state, telemetry::shutdown_signal()).await
    }
    .await;
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "despacio-worker stopped");
            std::process::ExitCode::FAILURE
        }
    }
}
