//! `despacio-worker`: background upkeep, plus `/healthz`, `/readyz` and `/metrics` on
//! `WORKER_ADDR`.
//!
//! It sweeps what has expired (used or expired magic links, sessions that ended more than 7 days
//! ago, chat messages past their 24 hours in conversations nobody writes to any more, photo
//! objects whose deletion failed when their rows went) every minute, and prepares discovery
//! queues in the background: every few seconds it takes the most recently active people whose
//! queue is missing or about to expire and rebuilds them, [`QUEUE_WORKERS`] at a time,
//! refreshing the queue table's planner statistics first when they are far behind
//! ([`analyze_queue_if_stale`]). Every minute it also rolls the activity up into anonymous
//! analytics ([`crate::analytics::roll_up`]). Everything is idempotent, so any number of workers
//! can run side by side (two workers may occasionally rebuild the same queue twice).
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

/// Conversations taken per script call by [`trim_expired_messages`].
pub const TRIM_BATCH: u64 = 100;
/// Messages trimmed per script call at most (then the call stops taking conversations): Redis is
/// never held long.
pub const TRIM_BUDGET: u64 = 1_000;
/// Script calls per pass at most.
const TRIM_CALLS: usize = 10_000;

/// Trims the conversations whose oldest stored message is past its 24 hours, written to or not
/// (see [`entities::chat::trim_due_script`]); returns how many conversation passes it made.
/// Sends trim as they write; this covers the conversations that went quiet, so nothing about a
/// message outlives it by more than the minute between two passes.
pub async fn trim_expired_messages(state: &AppState) -> Result<u64, fred::error::Error> {
    use fred::interfaces::LuaInterface;
    let script = entities::chat::trim_due_script();
    let mut total = 0;
    for _ in 0..TRIM_CALLS {
        let (handled, still_due, failed): (u64, u64, u64) = state
            .redis
            .eval(
                script.as_str(),
                vec![state.keys.chat_trim_due()],
                vec![
                    entities::chat::MESSAGE_TTL_MS.to_string(),
                    state.keys.prefix().to_owned(),
                    TRIM_BATCH.to_string(),
                    TRIM_BUDGET.to_string(),
                ],
            )
            .await?;
        total += handled;
        if failed > 0 {
            tracing::error!(
                conversations = failed,
                "could not trim some conversations (retried in 10 minutes)"
            );
        }
        if still_due == 0 {
            return Ok(total);
        }
    }
    tracing::warn!(
        calls = TRIM_CALLS,
        "message trim did not catch up in one pass: conversations are still due"
    );
    Ok(total)
}

/// Queues rebuilt concurrently.
pub const QUEUE_WORKERS: usize = 2;
/// People taken per preparation round.
pub const QUEUE_ROUND: u64 = 200;

/// One preparation round: rebuilds up to [`QUEUE_ROUND`] stale queues; returns how many.
pub async fn prepare_round(state: &AppState) -> Result<usize, crate::error::AppError> {
    use futures_util::{stream, TryStreamExt};
    let people = crate::discovery::service::stale_queues(state, QUEUE_ROUND).await?;
    let count = people.len();
    stream::iter(people.into_iter().map(Ok::<_, crate::error::AppError>))
        .try_for_each_concurrent(QUEUE_WORKERS, |user| async move {
            // Best effort: without fresh statistics preparations are slower, not wrong.
            if let Err(error) = analyze_queue_if_stale(&state.db).await {
                tracing::warn!(%error, "could not refresh discovery_queue's statistics");
            }
            crate::discovery::service::refresh_queue(state, user)
                .await
                .map(|_| ())
        })
        .await?;
    Ok(count)
}

/// Whether the planner's idea of `discovery_queue`'s size (`planned` rows, negative = never
/// analysed) is far behind the table (`live` rows).
pub fn queue_statistics_stale(planned: f64, live: f64) -> bool {
    live >= 1_000.0 && live > 2.0 * planned.max(0.0)
}

/// Refreshes `discovery_queue`'s planner statistics when they are far behind the table, and
/// says whether it did. Why: statements are prepared with generic plans cached per connection;
/// one made while the table looked empty (a new database, or right after the queues were
/// truncated) probes the queue by scanning all of it, once per scored candidate — measured at
/// 100k profiles: 100 to 524 ms per preparation instead of 11. `ANALYZE` invalidates those
/// plans. Autovacuum would get there too, but only at its next pass over this table; until then
/// the worker falls behind. One catalogue read per preparation when nothing needs doing.
pub async fn analyze_queue_if_stale(db: &DatabaseConnection) -> Result<bool, sea_orm::DbErr> {
    let row = db
        .query_one(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT c.reltuples::float8 AS planned, COALESCE(s.n_live_tup, 0)::float8 AS live
             FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
             WHERE c.oid = 'discovery_queue'::regclass",
        ))
        .await?;
    let Some(row) = row else { return Ok(false) };
    let planned: f64 = row.try_get("", "planned")?;
    let live: f64 = row.try_get("", "live")?;
    if !queue_statistics_stale(planned, live) {
        return Ok(false);
    }
    tracing::info!(
        planned,
        live,
        "discovery_queue statistics are stale: ANALYZE"
    );
    db.execute_unprepared("ANALYZE discovery_queue").await?;
    Ok(true)
}

/// Runs the worker until `shutdown` resolves.
pub async fn run(
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let sweep_state = state.clone();
    let sweeper = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    match sweep(&sweep_state.db).await {
                        Ok(n) => tracing::info!(rows = n, "sweep done"),
                        Err(e) => tracing::error!(error = %e, "sweep failed"),
                    }
                    if let Err(e) = crate::analytics::roll_up(&sweep_state.db).await {
                        tracing::error!(error = %e, "analytics roll-up failed");
                    }
                    match crate::photos::service::purge_scheduled_objects(&sweep_state).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(photos = n, "scheduled photo objects deleted"),
                        Err(e) => tracing::error!(error = %e, "photo object purge failed"),
                    }
                    match trim_expired_messages(&sweep_state).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(passes = n, "expired messages trimmed"),
                        Err(e) => tracing::error!(error = %e, "message trim failed"),
                    }
                }
                _ = stop_rx.changed() => break,
            }
        }
    });
    let (prep_stop_tx, mut prep_stop_rx) = tokio::sync::watch::channel(false);
    let prep_state = state.clone();
    let preparer = tokio::spawn(async move {
        loop {
            let started = std::time::Instant::now();
            let idle = match prepare_round(&prep_state).await {
                Ok(0) => true,
                Ok(n) => {
                    tracing::info!(
                        queues = n,
                        ms_per_queue = started.elapsed().as_millis() as f64 / n as f64,
                        "discovery queues prepared"
                    );
                    false
                }
                Err(e) => {
                    tracing::error!(error = %e, "discovery preparation failed");
                    true
                }
            };
            let pause = if idle {
                Duration::from_secs(5)
            } else {
                Duration::from_millis(10)
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {},
                _ = prep_stop_rx.changed() => break,
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
    let _ = prep_stop_tx.send(true);
    sweeper.await?;
    preparer.await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::queue_statistics_stale;

    #[test]
    fn queue_statistics_are_stale_only_when_far_behind_a_sizeable_table() {
        assert!(
            queue_statistics_stale(0.0, 40_000.0),
            "analysed empty, now full"
        );
        assert!(queue_statistics_stale(-1.0, 5_000.0), "never analysed");
        assert!(
            !queue_statistics_stale(0.0, 500.0),
            "small tables are cheap to scan"
        );
        assert!(!queue_statistics_stale(30_000.0, 40_000.0), "close enough");
        assert!(queue_statistics_stale(10_000.0, 40_000.0));
    }
}
