//! `POST /v1/reports`: anyone reports a person (optionally naming a conversation or a photo of
//! theirs); moderators work the queue under `/v1/admin/reports` (`admin::reports`).
//!
//! Choices:
//! - A report naming a résonance keeps the conversation's last [`EVIDENCE_MESSAGES`] messages
//!   still inside their 24 hours (`evidence`), because the chat forgets everything after that:
//!   report before blocking (a block ends the résonance and deletes its conversation at once).
//!   The evidence is sealed (AES-256-GCM, bound to the report) like every free text people
//!   write, and kept until the report's people erase their accounts. If Redis cannot be read,
//!   the report is filed without evidence (logged): a report is never lost for it.
//! - The résonance must be one between the reporter and the person (active or ended); the photo
//!   must be one of the person's approved photos (the only ones others see). Reporting oneself
//!   is refused; reporting someone who blocked you works (harassers block too). The daily limit
//!   counts refused reports too (no probing).
//! - `reports_per_day` (10 by default) limits each reporter; reports are never merged: each is
//!   one person's account of what happened, and the queue shows how many are open about the
//!   same person.
use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{payload::Json, types::Example, ApiResponse, Enum, Object, OpenApi};
use sea_orm::{ConnectionTrait, FromQueryResult, Statement};
use uuid::Uuid;

use crate::{
    auth::extract::BearerAuth,
    error::{ApiError, AppError},
    error_set,
    openapi::ApiTags,
    resonances::routes::ChatMessage,
    state::AppState,
};

error_set!(ReportErrors: [400, 401, 403, 404, 413, 422, 429]);

/// Messages kept with a report that names a conversation (the most recent ones).
pub const EVIDENCE_MESSAGES: usize = 50;

/// Why someone is reported.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum ReportReason {
    Spam,
    FakeProfile,
    Harassment,
    InappropriateContent,
    Underage,
    Scam,
    Other,
}

impl ReportReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportReason::Spam => "spam",
            ReportReason::FakeProfile => "fake_profile",
            ReportReason::Harassment => "harassment",
            ReportReason::InappropriateContent => "inappropriate_content",
            ReportReason::Underage => "underage",
            ReportReason::Scam => "scam",
            ReportReason::Other => "other",
        }
    }
}

/// A report about someone.
#[derive(Object)]
#[oai(example, deny_unknown_fields)]
pub struct ReportRequest {
    /// The person reported.
    pub user_id: Uuid,
    pub reason: ReportReason,
    /// What happened, in the reporter's words (at most 2,000 characters).
    #[oai(nullable, validator(max_length = 2000))]
    pub details: Option<String>,
    /// The conversation concerned (a résonance between us, active or ended): its last messages
    /// are kept for the moderators.
    #[oai(nullable)]
    pub resonance_id: Option<Uuid>,
    /// The photo concerned (one of theirs).
    #[oai(nullable)]
    pub photo_id: Option<Uuid>,
}

impl Example for ReportRequest {
    fn example() -> Self {
        Self {
            user_id: Uuid::nil(),
            reason: ReportReason::Harassment,
            details: Some("Insults after I said I wanted to take it slow.".into()),
            resonance_id: Some(Uuid::nil()),
            photo_id: None,
        }
    }
}

/// A report as its reporter sees it.
#[derive(Object)]
#[oai(example)]
pub struct Report {
    pub id: Uuid,
    /// The person reported.
    pub user_id: Uuid,
    pub reason: String,
    /// `open` until a moderator takes it.
    pub status: String,
    /// How many messages of the conversation were kept for the moderators.
    pub evidence_messages: u32,
    pub created_at: DateTime<Utc>,
}

impl Example for Report {
    fn example() -> Self {
        Self {
            id: Uuid::nil(),
            user_id: Uuid::nil(),
            reason: "harassment".into(),
            status: "open".into(),
            evidence_messages: 12,
            created_at: DateTime::from_timestamp(1_795_564_412, 0).unwrap_or_default(),
        }
    }
}

#[derive(ApiResponse)]
pub enum Reported {
    /// Filed; moderators will review it.
    #[oai(status = 201)]
    Created(Json<Report>),
}

fn stmt(sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    Statement::from_sql_and_values(sea_orm::DatabaseBackend::Postgres, sql, values)
}

/// The last [`EVIDENCE_MESSAGES`] messages still stored in a conversation, oldest first.
async fn evidence(state: &AppState, resonance: Uuid) -> Result<Vec<ChatMessage>, AppError> {
    use fred::prelude::StreamsInterface;
    // Nothing past its 24 hours, even before the next trim.
    let horizon = (Utc::now().timestamp_millis().max(0) as u64)
        .saturating_sub(entities::chat::MESSAGE_TTL_MS);
    let entries: Vec<(String, std::collections::HashMap<String, String>)> = state
        .redis
        .xrevrange(
            state.keys.chat_stream(&resonance),
            "+",
            format!("{horizon}-0"),
            Some(EVIDENCE_MESSAGES as u64),
        )
        .await?;
    Ok(entries
        .into_iter()
        .rev()
        .filter_map(|(id, fields)| crate::resonances::service::stored_message(id, fields))
        .map(|m| ChatMessage::of(resonance, m))
        .collect())
}

#[derive(FromQueryResult)]
struct Created {
    id: Uuid,
    status: String,
    created_at: DateTime<Utc>,
}

/// Files `request` for `me`.
pub async fn file(state: &AppState, me: Uuid, request: ReportRequest) -> Result<Report, AppError> {
    let them = request.user_id;
    if them == me {
        return Err(AppError::invalid(
            "user_id",
            "self",
            "you cannot report yourself",
        ));
    }
    let details = request
        .details
        .map(|d| d.trim().to_owned())
        .filter(|d| !d.is_empty());
    state
        .limiter
        .hit("reports_per_day", &me.to_string())
        .await?;
    let exists = state
        .db
        .query_one(stmt(
            "SELECT 1 AS one FROM users WHERE id = $1",
            vec![them.into()],
        ))
        .await?
        .is_some();
    if !exists {
        return Err(AppError::NotFound("no person has this id"));
    }
    let mut kept = Vec::new();
    if let Some(resonance) = request.resonance_id {
        let (a, b) = if me < them { (me, them) } else { (them, me) };
        let active: Option<bool> = state
            .db
            .query_one(stmt(
                "SELECT ended_at IS NULL AS active FROM resonances
                 WHERE id = $1 AND user_a = $2 AND user_b = $3",
                vec![resonance.into(), a.into(), b.into()],
            ))
            .await?
            .map(|row| row.try_get("", "active"))
            .transpose()?;
        match active {
            None => {
                return Err(AppError::invalid(
                    "resonance_id",
                    "not_shared",
                    "this is not a résonance between you and this person",
                ))
            }
            Some(true) => {
                kept = evidence(state, resonance).await.unwrap_or_else(|e| {
                    tracing::error!(error = %e, "report filed without its evidence");
                    Vec::new()
                })
            }
            // Ended: its conversation is gone.
            Some(false) => {}
        }
    }
    if let Some(photo) = request.photo_id {
        let theirs = state
            .db
            .query_one(stmt(
                "SELECT 1 AS one FROM photos WHERE id = $1 AND user_id = $2 AND status = 'approved'",
                vec![photo.into(), them.into()],
            ))
            .await?
            .is_some();
        if !theirs {
            return Err(AppError::invalid(
                "photo_id",
                "not_theirs",
                "this person has no photo with this id that others can see",
            ));
        }
    }
    let id = Uuid::now_v7();
    let sealed = (!kept.is_empty())
        .then(|| serde_json::to_vec(&kept.iter().map(to_json).collect::<Vec<_>>()))
        .transpose()
        .map_err(|e| AppError::Internal(e.into()))?
        .map(|json| state.cipher.encrypt(&json, &evidence_context(id)));
    let created = Created::find_by_statement(stmt(
        "INSERT INTO reports (id, reporter_id, reported_user_id, reason, details, resonance_id,
                              photo_id, evidence_ciphertext)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id, status, created_at",
        vec![
            id.into(),
            me.into(),
            them.into(),
            request.reason.as_str().into(),
            details.into(),
            request.resonance_id.into(),
            request.photo_id.into(),
            sealed.into(),
        ],
    ))
    .one(&state.db)
    .await?
    .ok_or_else(|| AppError::Internal(anyhow::anyhow!("report insert returned nothing")))?;
    tracing::info!(report_id = %created.id, "report filed");
    Ok(Report {
        id: created.id,
        user_id: them,
        reason: request.reason.as_str().into(),
        status: created.status,
        evidence_messages: kept.len() as u32,
        created_at: created.created_at,
    })
}

/// What binds a report's sealed evidence to it.
pub fn evidence_context(report: Uuid) -> String {
    format!("reports.evidence:{report}")
}

/// A kept message as stored in `reports.evidence_ciphertext` (sealed JSON).
fn to_json(m: &ChatMessage) -> serde_json::Value {
    serde_json::json!({
        "message_id": m.message_id,
        "sender_id": m.sender_id,
        "client_id": m.client_id,
        "body": m.body,
        "sent_at": m.sent_at,
    })
}

/// The messages kept with a report (what [`to_json`] wrote, unsealed).
pub fn from_json(resonance: Option<Uuid>, value: &serde_json::Value) -> Vec<ChatMessage> {
    let Some(resonance) = resonance else {
        return Vec::new();
    };
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|m| {
                    Some(ChatMessage {
                        resonance_id: resonance,
                        message_id: m["message_id"].as_str()?.to_owned(),
                        sender_id: m["sender_id"].as_str()?.parse().ok()?,
                        client_id: m["client_id"].as_str().unwrap_or_default().to_owned(),
                        body: m["body"].as_str().unwrap_or_default().to_owned(),
                        sent_at: m["sent_at"]
                            .as_str()
                            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())?
                            .with_timezone(&Utc),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

pub struct ReportsApi;

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Reports")]
impl ReportsApi {
    /// Report someone
    ///
    /// Tells the moderators who (`user_id`), why (`reason`) and what happened (`details`),
    /// optionally naming the conversation (`resonance_id`, a résonance between us: its last 50
    /// messages are kept, since the chat forgets after 24 h — report before blocking, which
    /// deletes the conversation) or the photo (`photo_id`, one of their approved photos). The
    /// person is not told. Limited to `reports_per_day` (10 by default; 429 over it).
    #[oai(path = "/reports", method = "post", operation_id = "report")]
    async fn report(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        body: Json<ReportRequest>,
    ) -> Result<Reported, ApiError<ReportErrors>> {
        Ok(Reported::Created(Json(
            file(&state, auth.0.user_id, body.0).await?,
        )))
    }
}
