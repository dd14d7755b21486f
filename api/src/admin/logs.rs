//! `GET /v1/admin/logs/stream`: this API instance's log events, live (SSE), for admins.
//!
//! Each process streams its own events (the log tap, `entities::logs`): behind a load balancer
//! an admin sees the instance that serves the stream; the gateways offer theirs on the chat
//! WebSocket (`subscribe_logs`). Logs never carry personal data (users appear by id). Best
//! effort: a listener that falls behind skips events and the next one says how many
//! (`skipped`). Every 15 s an open stream checks that its admin still is one and is still
//! signed in, and ends otherwise.
use entities::auth::Role;
use futures_util::StreamExt;
use poem::web::{sse::Event, Data};
use poem_openapi::{param::Query, payload::EventStream, ApiResponse, Enum, OpenApi};
use tokio::sync::broadcast::error::RecvError;

use super::require_role;
use crate::{
    auth::extract::{BearerAuth, Caller},
    error::ApiError,
    error_set,
    openapi::ApiTags,
    state::AppState,
};

error_set!(LogErrors: [400, 401, 403]);

/// The least severe level streamed.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

impl LogLevel {
    fn level(self) -> tracing::Level {
        match self {
            LogLevel::Error => tracing::Level::ERROR,
            LogLevel::Warn => tracing::Level::WARN,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Debug => tracing::Level::DEBUG,
        }
    }
}

#[derive(ApiResponse)]
pub enum LogStream {
    /// An endless `text/event-stream` of `log` events; each `data:` is one JSON object: `at`,
    /// `level`, `target`, `message`, `fields` (the event's), `spans` (the fields of the spans
    /// around it, e.g. `request_id`), and `skipped` when events were skipped before it.
    #[oai(status = 200)]
    Stream(EventStream<futures_util::stream::BoxStream<'static, serde_json::Value>>),
}

/// How often an open stream checks that its admin is still one, still signed in.
const RECHECK: std::time::Duration = std::time::Duration::from_secs(15);

/// The caller is still an admin, and their session is neither revoked nor their account
/// being erased.
async fn still_allowed(state: &AppState, caller: &Caller) -> bool {
    use fred::prelude::KeysInterface;
    if require_role(state, caller, Role::Admin).await.is_err() {
        return false;
    }
    let marks: Result<i64, _> = state
        .redis
        .exists(vec![
            state.keys.revoked_session(&caller.session_id),
            state.keys.erased_user(&caller.user_id),
        ])
        .await;
    matches!(marks, Ok(0))
}

pub struct AdminLogsApi;

#[OpenApi(prefix_path = "/v1/admin", tag = "ApiTags::Admin")]
impl AdminLogsApi {
    /// Live logs of this API instance (SSE)
    ///
    /// Role: admin. This instance's log events from now on, at `level` or more severe (default
    /// `info`), as the process's filter (`RUST_LOG`) lets them through. Each instance streams
    /// its own; the chat gateways stream theirs on the WebSocket (`subscribe_logs`). Logs never
    /// carry personal data. A comment line every 15 s keeps proxies from closing the stream.
    /// The stream ends within 15 s once the caller is no longer an admin, is signed out or their
    /// account is erased.
    #[oai(path = "/logs/stream", method = "get", operation_id = "adminLogStream")]
    async fn stream(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The least severe level sent (default `info`).
        level: Query<Option<LogLevel>>,
    ) -> Result<LogStream, ApiError<LogErrors>> {
        require_role(&state, &auth.0, Role::Admin).await?;
        let min = level.0.unwrap_or(LogLevel::Info).level();
        let listener = entities::logs::subscribe();
        let recheck = tokio::time::interval(RECHECK);
        let context = (state.clone(), auth.0.clone());
        let stream = futures_util::stream::unfold(
            (listener, recheck, 0u64, context),
            move |(mut listener, mut recheck, mut skipped, context)| async move {
                loop {
                    tokio::select! {
                        received = listener.recv() => match received {
                            Ok(event) if entities::logs::at_least(&event, min) => {
                                let mut json = event.json.clone();
                                if skipped > 0 {
                                    json["skipped"] = skipped.into();
                                }
                                return Some((json, (listener, recheck, 0, context)));
                            }
                            Ok(_) => {}
                            Err(RecvError::Lagged(n)) => skipped += n,
                            Err(RecvError::Closed) => return None,
                        },
                        _ = recheck.tick() => {
                            if !still_allowed(&context.0, &context.1).await {
                                return None;
                            }
                        }
                    }
                }
            },
        )
        .boxed();
        Ok(LogStream::Stream(
            EventStream::new(stream)
                .keep_alive(state.settings.sse_heartbeat)
                .to_event(|json| Event::message(json.to_string()).event_type("log")),
        ))
    }
}
