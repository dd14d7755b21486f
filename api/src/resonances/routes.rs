//! `POST /v1/swipes`, `GET /v1/resonances`, `DELETE /v1/resonances/{id}`,
//! `GET /v1/resonances/{id}/messages`.
use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{
    param::{Path, Query},
    payload::Json,
    types::Example,
    ApiResponse, Enum, Object, OpenApi,
};
use uuid::Uuid;

use super::service::{self, Action};
use crate::{
    auth::extract::BearerAuth, cursor, error::ApiError, error_set, openapi::ApiTags,
    profiles::types::PublicProfile, state::AppState,
};

error_set!(SwipeErrors: [400, 401, 403, 404, 409, 413, 422, 429]);
error_set!(ListErrors: [400, 401, 403]);
error_set!(UnmatchErrors: [400, 401, 403, 404]);
error_set!(HistoryErrors: [400, 401, 403, 404]);

/// `like` or `pass`.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum SwipeAction {
    Like,
    Pass,
}

/// A swipe on someone I discovered.
#[derive(Object)]
#[oai(example, deny_unknown_fields)]
pub struct SwipeRequest {
    /// The person's user id.
    pub target_id: Uuid,
    pub action: SwipeAction,
}

impl Example for SwipeRequest {
    fn example() -> Self {
        Self {
            target_id: Uuid::nil(),
            action: SwipeAction::Like,
        }
    }
}

/// A résonance: two people who liked each other.
#[derive(Object)]
#[oai(example)]
pub struct Resonance {
    /// The résonance id (also the conversation's id in the chat gateway).
    pub id: Uuid,
    /// The other person.
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
    /// Last message or creation time.
    pub last_activity_at: DateTime<Utc>,
    /// The other person's card.
    pub profile: PublicProfile,
}

impl Example for Resonance {
    fn example() -> Self {
        let at = DateTime::from_timestamp(1_795_564_412, 0).unwrap_or_default();
        Self {
            id: Uuid::nil(),
            user_id: Uuid::nil(),
            created_at: at,
            last_activity_at: at,
            profile: PublicProfile::example(),
        }
    }
}

/// A résonance as a swipe reports it.
#[derive(Object)]
pub struct ResonanceRef {
    pub id: Uuid,
    /// The other person.
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
}

/// What a swipe did.
#[derive(Object)]
#[oai(example)]
pub struct SwipeResult {
    pub target_id: Uuid,
    pub action: SwipeAction,
    pub swiped_at: DateTime<Utc>,
    /// True when this swipe created the résonance (a like meeting an earlier like).
    pub resonance_created: bool,
    /// The résonance with this person, when there is one.
    #[oai(nullable)]
    pub resonance: Option<ResonanceRef>,
}

impl Example for SwipeResult {
    fn example() -> Self {
        let at = DateTime::from_timestamp(1_795_564_412, 0).unwrap_or_default();
        Self {
            target_id: Uuid::nil(),
            action: SwipeAction::Like,
            swiped_at: at,
            resonance_created: true,
            resonance: Some(ResonanceRef {
                id: Uuid::nil(),
                user_id: Uuid::nil(),
                created_at: at,
            }),
        }
    }
}

#[derive(ApiResponse)]
pub enum SwipeResponse {
    /// The swipe was recorded (or changed).
    #[oai(status = 201)]
    Created(Json<SwipeResult>),
    /// The same swipe already existed; nothing changed.
    #[oai(status = 200)]
    Unchanged(Json<SwipeResult>),
}

/// My résonances, newest first.
#[derive(Object)]
#[oai(example)]
pub struct ResonancePage {
    pub items: Vec<Resonance>,
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

impl Example for ResonancePage {
    fn example() -> Self {
        Self {
            items: vec![Resonance::example()],
            next_cursor: None,
        }
    }
}

#[derive(ApiResponse)]
pub enum Unmatched {
    /// Ended; the conversation is deleted.
    #[oai(status = 204)]
    NoContent,
}

/// One chat message: the same fields as the gateway's `message` frame.
#[derive(Object)]
#[oai(example)]
pub struct ChatMessage {
    pub resonance_id: Uuid,
    /// Ordered within the conversation; `after=` takes it.
    pub message_id: String,
    pub sender_id: Uuid,
    /// The sender's own id for the message (de-duplicates retries).
    pub client_id: String,
    pub body: String,
    pub sent_at: DateTime<Utc>,
}

impl ChatMessage {
    /// A stored message of the conversation `resonance`.
    pub fn of(resonance: Uuid, m: service::StoredMessage) -> Self {
        Self {
            resonance_id: resonance,
            message_id: m.message_id,
            sender_id: m.sender_id,
            client_id: m.client_id,
            body: m.body,
            sent_at: m.sent_at,
        }
    }
}

impl Example for ChatMessage {
    fn example() -> Self {
        Self {
            resonance_id: Uuid::nil(),
            message_id: "1795564412000-0".into(),
            sender_id: Uuid::nil(),
            client_id: "c-7f3a".into(),
            body: "On se voit jeudi ?".into(),
            sent_at: DateTime::from_timestamp(1_795_564_412, 0).unwrap_or_default(),
        }
    }
}

/// A conversation's stored messages, oldest first.
#[derive(Object)]
#[oai(example)]
pub struct MessagePage {
    pub items: Vec<ChatMessage>,
    /// The last message id of this page when more follow (pass it as `after`), else null.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

impl Example for MessagePage {
    fn example() -> Self {
        Self {
            items: vec![ChatMessage::example()],
            next_cursor: None,
        }
    }
}

pub struct ResonancesApi;

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Resonances")]
impl ResonancesApi {
    /// Like or pass
    ///
    /// Records my answer to someone. A like meeting their earlier like creates the résonance
    /// exactly once (also when both like at the same instant) and says so
    /// (`resonance_created`); both get a `resonance.created` event. Repeating a swipe changes
    /// nothing (200). Limits: `swipes_per_minute` (60/min) and `likes_per_day` (100 likes,
    /// resetting at 00:00 UTC) → 429 with `Retry-After`. Send an `Idempotency-Key` header to make
    /// retries safe. A pass hides the person from discovery for 30 days; a like, for good.
    #[oai(path = "/swipes", method = "post", operation_id = "swipe")]
    async fn swipe(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        body: Json<SwipeRequest>,
    ) -> Result<SwipeResponse, ApiError<SwipeErrors>> {
        let action = match body.0.action {
            SwipeAction::Like => Action::Like,
            SwipeAction::Pass => Action::Pass,
        };
        let outcome = service::swipe(&state, auth.0.user_id, body.0.target_id, action).await?;
        let result = SwipeResult {
            target_id: body.0.target_id,
            action: body.0.action,
            swiped_at: outcome.swiped_at,
            resonance_created: outcome.resonance_created,
            resonance: outcome.resonance.map(|(id, created_at)| ResonanceRef {
                id,
                user_id: body.0.target_id,
                created_at,
            }),
        };
        Ok(if outcome.changed {
            SwipeResponse::Created(Json(result))
        } else {
            SwipeResponse::Unchanged(Json(result))
        })
    }

    /// My résonances
    ///
    /// People I share a résonance with, newest first, with their card and the conversation's
    /// last activity.
    #[oai(path = "/resonances", method = "get", operation_id = "listResonances")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// `next_cursor` from the previous page.
        cursor: Query<Option<String>>,
        /// 1 to 50 (default 20).
        limit: Query<Option<u32>>,
    ) -> Result<Json<ResonancePage>, ApiError<ListErrors>> {
        let limit = cursor::limit(limit.0, 20, 50)?;
        let (items, next_cursor) =
            service::list(&state, auth.0.user_id, cursor.0.as_deref(), limit).await?;
        Ok(Json(ResonancePage {
            items: items
                .into_iter()
                .map(|i| Resonance {
                    id: i.id,
                    user_id: i.other,
                    created_at: i.created_at,
                    last_activity_at: i.last_activity_at,
                    profile: i.profile,
                })
                .collect(),
            next_cursor,
        }))
    }

    /// A conversation's messages
    ///
    /// What the chat store holds for this résonance, oldest first: the same messages, with the
    /// same fields, that the gateway sends as `message` frames. Messages live 24 hours. Page with
    /// `after=<message_id>` (exclusive) or the page's `next_cursor`; `limit` 1 to 200 (default
    /// 50). Only the two members of an active résonance may read it (404 otherwise, also after an
    /// unmatch or a block).
    #[oai(
        path = "/resonances/:id/messages",
        method = "get",
        operation_id = "listMessages"
    )]
    async fn messages(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<Uuid>,
        /// Return messages after this message id (exclusive).
        after: Query<Option<String>>,
        /// 1 to 200 (default 50).
        limit: Query<Option<u32>>,
    ) -> Result<Json<MessagePage>, ApiError<HistoryErrors>> {
        let limit = cursor::limit(limit.0, 50, 200)?;
        let (items, next_cursor) =
            service::history(&state, auth.0.user_id, id.0, after.0.as_deref(), limit).await?;
        Ok(Json(MessagePage {
            items: items
                .into_iter()
                .map(|m| ChatMessage::of(id.0, m))
                .collect(),
            next_cursor,
        }))
    }

    /// Unmatch
    ///
    /// Ends a résonance for both people. The other side is not told why: the conversation simply
    /// disappears (a `resonance.removed` event), its messages are deleted and the chat gateways
    /// close it. Old likes never revive it.
    #[oai(path = "/resonances/:id", method = "delete", operation_id = "unmatch")]
    async fn unmatch(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<Unmatched, ApiError<UnmatchErrors>> {
        service::unmatch(&state, auth.0.user_id, id.0).await?;
        Ok(Unmatched::NoContent)
    }
}
