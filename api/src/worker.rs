//! `despacio-worker`: background upkeep, plus `/healthz`, `/readyz` and `/metrics` on
//! `WORKER_ADDR`.
//!
//! Today it sweeps what has expired: used or expired magic links, and sessions that ended more
//! than 7 days ago (their refresh tokens go with them). Analytics roll-ups join it with their
//! issue. Every sweep is idempotent, so any number of workers can run side by side.
use std::{future::Future, sync::Arc, time::Duration};

use poem::{listener::TcpListener, EndpointExt, Route, Server};
use poem_openapi::OpenApiService;
use sea_orm::{ConnectionTrait, DatabaseConnection};

use crate::{middleware::Observe, ops::OpsApi, spec_index::SpecIndex, state::AppState};

/// One pass of every sweep; returns how many rows went.
pub async fn sweep(db: &DatabaseConnection) -> Result<u64, sea_orm::DbErr> {
    let links = db
        .execute_unprepared("DELETE FROM magic_links WHERE expires_at < now() - interval '1 day' OR used_at < now() - interval '1 day'")
        .await?
        .rows_affected();
    let sessions = db
        .execute_unprepared(
            "DELETE FROM sessions WHERE (revoked_at IS NOT NULL AND revoked_at < now() - interval '7 days')
                                     OR expires_at < now() - interval '7 days'",
        )
        .await?
        .rows_affected();
    Ok(links + sessions)
}

/// Runs the worker until `shutdown` resolves.
pub async fn run(
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let db = state.db.clone();
    let sweeper = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = tick.tick() => match sweep(&db).await {
                    Ok(n) => tracing::info!(rows = n, "sweep done"),
                    Err(e) => tracing::error!(error = %e, "sweep failed"),
                },
                _ = stop_rx.changed() => break,
            }
        }
    });
    let metrics = state.metrics.clone();
    let addr = state.settings.worker_addr;
    let ops = OpenApiService::new(
        OpsApi {
            metrics: metrics.clone(),
        },
        "despacio-worker",
        env!("CARGO_PKG_VERSION"),
    );
    let spec = Arc::new(SpecIndex::new(&ops.spec()));
    let app = Route::new().nest("/", ops).data(state).with(Observe {
        metrics: Arc::clone(&metrics),
        max_body_bytes: 1024,
        spec,
    });
    tracing::info!(%addr, "despacio-worker running");
    Server::new(TcpListener::bind(addr))
        .run_with_graceful_shutdown(app, shutdown, Some(Duration::from_secs(10)))
        .await?;
    let _ = stop_tx.send(true);
    sweeper.await?;
    Ok(())
}
