//! `GET /v1/me/export`, `DELETE /v1/me`.
use chrono::{DateTime, Utc};
use poem::web::{cookie::CookieJar, Data};
use poem_openapi::{payload::Json, types::Example, ApiResponse, Object, OpenApi};
use uuid::Uuid;

use super::service;
use crate::{
    auth::{cookies, extract::BearerAuth},
    error::ApiError,
    error_set,
    openapi::ApiTags,
    photos::routes::Photo,
    profiles::types::Me,
    resonances::routes::ChatMessage,
    state::AppState,
};

error_set!(ExportErrors: [401, 429]);
error_set!(EraseErrors: [401, 403]);

/// A session of mine, as stored (live, or ended less than seven days ago).
#[derive(Object)]
pub struct ExportSession {
    pub id: Uuid,
    #[oai(nullable)]
    pub user_agent: Option<String>,
    #[oai(nullable)]
    pub ip: Option<String>,
    /// `password`, `magic_link` or `registration`.
    pub auth_method: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    #[oai(nullable)]
    pub revoked_at: Option<DateTime<Utc>>,
    /// Why it ended: `logout`, `logout_all`, `revoked_by_user`, `password_changed`,
    /// `refresh_token_reused`, `moderation:<action>`…
    #[oai(nullable)]
    pub revoked_reason: Option<String>,
}

/// A swipe I made.
#[derive(Object)]
pub struct ExportSwipe {
    /// The person swiped.
    pub user_id: Uuid,
    /// `like` or `pass`.
    pub action: String,
    pub created_at: DateTime<Utc>,
}

/// A résonance of mine, active or ended.
#[derive(Object)]
pub struct ExportResonance {
    pub id: Uuid,
    /// The other person.
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
    #[oai(nullable)]
    pub ended_at: Option<DateTime<Utc>>,
    /// `unmatch`, `block` or `moderation` when I ended it; null when the other person did (or
    /// a moderator): why is theirs.
    #[oai(nullable)]
    pub ended_reason: Option<String>,
}

/// Someone I blocked.
#[derive(Object)]
pub struct ExportBlock {
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
}

/// A report I filed.
#[derive(Object)]
pub struct ExportReport {
    pub id: Uuid,
    /// The person reported (null once their account is erased).
    #[oai(nullable)]
    pub user_id: Option<Uuid>,
    pub reason: String,
    #[oai(nullable)]
    pub details: Option<String>,
    #[oai(nullable)]
    pub resonance_id: Option<Uuid>,
    #[oai(nullable)]
    pub photo_id: Option<Uuid>,
    /// `open`, `in_review`, `actioned` or `dismissed`.
    pub status: String,
    pub created_at: DateTime<Utc>,
}

/// A moderation decision about me.
#[derive(Object)]
pub struct ExportDecision {
    /// `warn`, `suspend`, `ban`, `reinstate` or `force_logout`.
    pub action: String,
    #[oai(nullable)]
    pub reason: Option<String>,
    /// End of a suspension.
    #[oai(nullable)]
    pub until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// What DESPACIO stores about me (GDPR portability); discovery's internal queues and read
/// receipts are not included.
#[derive(Object)]
#[oai(example)]
pub struct Export {
    /// The shape's version: `despacio-export/1`.
    pub format: String,
    pub generated_at: DateTime<Utc>,
    /// Account, profile (bio decrypted), preferences and settings, as `GET /v1/me` answers.
    pub account: Me,
    /// My last activity (a sign-in or a token refresh, recorded at most every ten minutes).
    pub last_active_at: DateTime<Utc>,
    /// When my email was verified.
    #[oai(nullable)]
    pub email_verified_at: Option<DateTime<Utc>>,
    /// My photos (their URLs need my credentials).
    pub photos: Vec<Photo>,
    /// Sessions still stored, newest first.
    pub sessions: Vec<ExportSession>,
    /// Swipes I made (not who swiped on me).
    pub swipes: Vec<ExportSwipe>,
    pub resonances: Vec<ExportResonance>,
    /// People I blocked.
    pub blocks: Vec<ExportBlock>,
    /// Reports I filed.
    pub reports: Vec<ExportReport>,
    /// Moderation decisions about me (warnings, suspensions…), without the moderator's name.
    pub moderation: Vec<ExportDecision>,
    /// Messages of my active conversations still stored (sent in the last 24 h), both sides,
    /// oldest first per conversation.
    pub messages: Vec<ChatMessage>,
}

impl Example for Export {
    fn example() -> Self {
        let at = DateTime::from_timestamp(1_795_564_412, 0).unwrap_or_default();
        let other = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0002);
        Self {
            format: service::EXPORT_FORMAT.into(),
            generated_at: at,
            account: Me::example(),
            last_active_at: at,
            email_verified_at: Some(at),
            photos: vec![Photo::example()],
            sessions: vec![ExportSession {
                id: Uuid::nil(),
                user_agent: Some("DespacioApp/1.4 (iPhone; iOS 19.1)".into()),
                ip: Some("203.0.113.7".into()),
                auth_method: "password".into(),
                created_at: at,
                last_used_at: at,
                expires_at: at + chrono::Duration::days(30),
                revoked_at: None,
                revoked_reason: None,
            }],
            swipes: vec![ExportSwipe {
                user_id: other,
                action: "like".into(),
                created_at: at,
            }],
            resonances: vec![ExportResonance {
                id: Uuid::nil(),
                user_id: other,
                created_at: at,
                ended_at: None,
                ended_reason: None,
            }],
            blocks: vec![],
            reports: vec![],
            moderation: vec![],
            messages: vec![ChatMessage::example()],
        }
    }
}

#[derive(ApiResponse)]
pub enum Exported {
    /// The whole export, as a JSON file to save (`Content-Disposition: attachment`).
    #[oai(status = 200)]
    Ok(
        Json<Export>,
        #[oai(header = "Content-Disposition")] String,
        #[oai(header = "Cache-Control")] String,
    ),
}

#[derive(ApiResponse)]
pub enum Erased {
    /// Erased: the account and everything it owned are gone; every token of it is refused.
    #[oai(status = 204)]
    NoContent,
}

/// `DELETE /v1/me`, served by `MeApi` (one path, one API: poem-openapi keeps a single path item
/// per API, so a second API declaring `/me` would hide `GET /v1/me` from the spec).
pub async fn erase(
    state: &AppState,
    auth: &BearerAuth,
    jar: &CookieJar,
) -> Result<Erased, ApiError<EraseErrors>> {
    service::erase(state, &auth.0).await?;
    cookies::clear_session_cookies(jar, &state.settings);
    Ok(Erased::NoContent)
}

pub struct PrivacyApi;

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Me")]
impl PrivacyApi {
    /// Export my data
    ///
    /// Everything stored about me, as one JSON document (GDPR portability): account, profile,
    /// preferences, settings, photos, sessions, the swipes I made, résonances, blocks, reports I
    /// filed, moderation decisions about me and the messages of my active conversations still
    /// stored (24 h). Photos are listed with their URLs; fetch them with my credentials.
    /// Limited to `exports_per_hour` (5 by default): over it, 429 with `Retry-After`.
    #[oai(path = "/me/export", method = "get", operation_id = "exportMyData")]
    async fn export(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> Result<Exported, ApiError<ExportErrors>> {
        let me = auth.0.user_id;
        state
            .limiter
            .hit("exports_per_hour", &me.to_string())
            .await?;
        let export = service::export(&state, me).await?;
        Ok(Exported::Ok(
            Json(export),
            format!("attachment; filename=\"despacio-export-{me}.json\""),
            "no-store".into(),
        ))
    }
}
