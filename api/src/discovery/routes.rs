//! `GET /v1/discovery` and `GET /v1/likes/received`.
use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{param::Query, payload::Json, types::Example, Object, OpenApi};

use crate::{
    auth::extract::BearerAuth, cursor, error::ApiError, error_set, openapi::ApiTags,
    profiles::types::PublicProfile, state::AppState,
};

error_set!(DiscoveryErrors: [400, 401, 403, 409, 410]);
error_set!(ListErrors: [400, 401, 403]);

/// A page of people to discover, best first.
#[derive(Object)]
#[oai(example)]
pub struct DiscoveryPage {
    /// Cards: public profile, distance rounded to the km, shared intentions, photo URLs.
    pub items: Vec<PublicProfile>,
    /// Pass it as `cursor` for the next page; null when `exhausted`.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
    /// True when nobody else inside my radius and filters is left to show right now (try again
    /// later, or widen the preferences).
    pub exhausted: bool,
}

impl Example for DiscoveryPage {
    fn example() -> Self {
        Self {
            items: vec![PublicProfile::example()],
            next_cursor: Some("eyJnIjoxLCJyIjoyMC4wfQ.5bSx0b2tlbg".into()),
            exhausted: false,
        }
    }
}

/// Someone who liked me.
#[derive(Object)]
pub struct ReceivedLike {
    pub profile: PublicProfile,
    pub liked_at: DateTime<Utc>,
}

/// People who liked me and whom I have not answered, newest first.
#[derive(Object)]
#[oai(example)]
pub struct ReceivedLikesPage {
    pub items: Vec<ReceivedLike>,
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

impl Example for ReceivedLikesPage {
    fn example() -> Self {
        Self {
            items: vec![ReceivedLike {
                profile: PublicProfile::example(),
                liked_at: DateTime::from_timestamp(1_795_564_412, 0).unwrap_or_default(),
            }],
            next_cursor: None,
        }
    }
}

pub struct DiscoveryApi;

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Discovery")]
impl DiscoveryApi {
    /// Who to see next
    ///
    /// People who fit my preferences **and** whose preferences I fit (age, genders, distance both
    /// ways), never someone I liked, passed in the last 30 days, blocked or was blocked by,
    /// suspended or banned accounts, snoozed people, incomplete profiles, or incognito people who
    /// have not liked me. My own profile must be complete (409 `profile-incomplete`).
    ///
    /// Ranking (higher first): `40 × (1 − distance / my max distance)` + `15 × shared
    /// intentions (max 2)` + `25 if they liked me` + `15 × (1 − days since active / 14)⁺` +
    /// `10 for profiles younger than 72 h`. Pages come from my prepared queue (rebuilt at most
    /// hourly); everything above is re-checked at read time. Cursors are signed; pages never
    /// repeat or skip anyone; a cursor from before a rebuild answers 410 `cursor-expired`.
    /// `exhausted: true` says the pool is dry.
    #[oai(path = "/discovery", method = "get", operation_id = "discover")]
    async fn discovery(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// `next_cursor` from the previous page.
        cursor: Query<Option<String>>,
        /// 1 to 50 (default 20).
        limit: Query<Option<u32>>,
    ) -> Result<Json<DiscoveryPage>, ApiError<DiscoveryErrors>> {
        let limit = cursor::limit(limit.0, 20, 50)?;
        let page = super::service::page(&state, auth.0.user_id, cursor.0.as_deref(), limit).await?;
        Ok(Json(DiscoveryPage {
            items: page.items,
            next_cursor: page.next_cursor,
            exhausted: page.exhausted,
        }))
    }

    /// Who liked me
    ///
    /// People who liked me and whom I have not answered yet, newest first — including people in
    /// incognito. Liking one back creates a résonance; a pass removes them from this list.
    #[oai(
        path = "/likes/received",
        method = "get",
        operation_id = "likesReceived"
    )]
    async fn likes_received(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// `next_cursor` from the previous page.
        cursor: Query<Option<String>>,
        /// 1 to 50 (default 20).
        limit: Query<Option<u32>>,
    ) -> Result<Json<ReceivedLikesPage>, ApiError<ListErrors>> {
        let limit = cursor::limit(limit.0, 20, 50)?;
        let (items, next_cursor) =
            super::likes::page(&state, auth.0.user_id, cursor.0.as_deref(), limit).await?;
        Ok(Json(ReceivedLikesPage {
            items: items
                .into_iter()
                .map(|(profile, liked_at)| ReceivedLike { profile, liked_at })
                .collect(),
            next_cursor,
        }))
    }
}
