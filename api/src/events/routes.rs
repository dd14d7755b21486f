//! `GET /v1/events`: Server-Sent Events for the signed-in person.
use futures_util::{stream, StreamExt};
use poem::web::{sse::Event, Data};
use poem_openapi::{param::Header, payload::EventStream, ApiResponse, OpenApi};
use tokio_stream::wrappers::BroadcastStream;

use super::bus::{stream_id_key, ServerEvent};
use crate::{
    auth::extract::BearerAuth, error::ApiError, error_set, openapi::ApiTags, state::AppState,
};

error_set!(EventErrors: [400, 401, 403]);

#[derive(ApiResponse)]
pub enum EventsResponse {
    /// An endless `text/event-stream`; each event's `data:` is a `ServerEvent` JSON object,
    /// its `event:` the type and its `id:` the id to resume from.
    #[oai(status = 200)]
    Stream(EventStream<futures_util::stream::BoxStream<'static, ServerEvent>>),
}

/// Whether `event` ends every session of its person: a moderation notice that does, or the
/// account's erasure.
fn ends_sessions(event: &ServerEvent) -> bool {
    event.kind == "account.erased"
        || event.kind == "moderation.notice"
            && matches!(
                event.data.get("action").and_then(|a| a.as_str()),
                Some("suspend" | "ban" | "force_logout")
            )
}

pub struct EventsApi;

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Events")]
impl EventsApi {
    /// My live events (SSE)
    ///
    /// Résonances created and removed, changes to my likes-received list, moderation notices and
    /// new-message notifications. Reconnect with the `Last-Event-ID` header to receive what was
    /// missed (the last 200 events, kept one hour); if that is no longer possible the first event
    /// is `resync`: reload your state. A comment line is sent every 15 s to keep proxies from
    /// closing the stream. Browsers authenticate with their cookies (`EventSource` sends them).
    /// A `moderation.notice` whose `action` is `suspend`, `ban` or `force_logout` is the last
    /// event: the sessions are revoked and the stream ends after it. So is `account.erased`
    /// (the account was just erased, from another device for instance).
    #[oai(path = "/events", method = "get", operation_id = "events")]
    async fn events(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        #[oai(name = "Last-Event-ID")] last_event_id: Header<Option<String>>,
    ) -> Result<EventsResponse, ApiError<EventErrors>> {
        let user = auth.0.user_id;
        let live = state.events.subscribe(user);
        let mut replayed = Vec::new();
        if let Some(last) = last_event_id.0.filter(|v| !v.is_empty()) {
            match state.events.replay(user, &last).await? {
                Some(events) => replayed = events,
                None => replayed.push(ServerEvent {
                    id: last.clone(),
                    kind: "resync".into(),
                    data: serde_json::json!({"reason": "events after this id are no longer available"}),
                    at: chrono::Utc::now(),
                }),
            }
        }
        let floor = replayed.iter().filter_map(|e| stream_id_key(&e.id)).max();
        let live =
            BroadcastStream::new(live)
                // A listener that falls too far behind ends its stream; the client resumes with
                // Last-Event-ID and gets the rest from the replay buffer.
                .take_while(|item| futures_util::future::ready(item.is_ok()))
                .filter_map(move |item| {
                    futures_util::future::ready(item.ok().filter(|e| {
                        floor.is_none_or(|f| stream_id_key(&e.id).is_none_or(|k| k > f))
                    }))
                });
        // A notice that ends the person's sessions (suspension, ban, forced sign-out) is the
        // stream's last event: the stream ends right after delivering it.
        let all = stream::unfold(
            (stream::iter(replayed).chain(live).boxed(), false),
            |(mut events, ended)| async move {
                if ended {
                    return None;
                }
                let event = events.next().await?;
                let ended = ends_sessions(&event);
                Some((event, (events, ended)))
            },
        )
        .boxed();
        Ok(EventsResponse::Stream(
            EventStream::new(all)
                .keep_alive(state.settings.sse_heartbeat)
                .to_event(|e| {
                    let data = serde_json::to_string(&e).unwrap_or_default();
                    Event::message(data)
                        .event_type(e.kind.clone())
                        .id(e.id.clone())
                }),
        ))
    }
}
