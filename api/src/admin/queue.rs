//! The moderators' side: the report queue (`GET /v1/admin/reports`, `GET`/`PATCH
//! /v1/admin/reports/{id}`), a person's file (`GET /v1/admin/users/{id}`) and the audit trail
//! (`GET /v1/admin/audit`, admins only).
//!
//! Choices:
//! - The queue lists the oldest first (first come, first served), `open` and `in_review` by
//!   default; each item says how many people have an open report about the same person, for
//!   triage (one reporter filing ten reports counts once).
//! - Reports about staff are for admins: a moderator neither sees nor handles a report about a
//!   moderator or an admin, and nobody handles a report about themselves (403).
//! - A moderation action that names a report (`report_id`) marks it `actioned` (see `act`);
//!   `PATCH` sets `in_review`, `dismissed` or `open`, a note and an assignee (a moderator or an
//!   admin). Every `PATCH` is written to the audit trail (`report_update`, with the report and
//!   the person concerned; the note itself stays on the report).
//! - A person's file shows their email to admins only (moderators judge behaviour, not
//!   identity), never their location.
use chrono::{DateTime, NaiveDate, Utc};
use entities::auth::Role;
use poem::web::Data;
use poem_openapi::{
    param::{Path, Query},
    payload::Json,
    types::{Example, MaybeUndefined},
    Enum, Object, OpenApi,
};
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, TransactionTrait};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{require_role, AuditEntry};
use crate::{
    auth::extract::BearerAuth,
    cursor,
    error::{ApiError, AppError},
    error_set,
    openapi::ApiTags,
    resonances::routes::ChatMessage,
    state::AppState,
};

error_set!(QueueErrors: [400, 401, 403]);
error_set!(ReportViewErrors: [400, 401, 403, 404]);
error_set!(ReportPatchErrors: [400, 401, 403, 404, 413, 422]);

/// Where a report stands.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum ReportStatus {
    /// Waiting for a moderator.
    Open,
    /// A moderator is on it.
    InReview,
    /// An action was taken.
    Actioned,
    /// Nothing to do.
    Dismissed,
}

impl ReportStatus {
    fn as_str(self) -> &'static str {
        match self {
            ReportStatus::Open => "open",
            ReportStatus::InReview => "in_review",
            ReportStatus::Actioned => "actioned",
            ReportStatus::Dismissed => "dismissed",
        }
    }
}

/// A report, as moderators see it.
#[derive(Object, FromQueryResult)]
#[oai(example)]
pub struct AdminReport {
    pub id: Uuid,
    /// Who reported (null once their account is erased).
    #[oai(nullable)]
    pub reporter_id: Option<Uuid>,
    /// Who is reported (null once their account is erased).
    #[oai(nullable)]
    pub user_id: Option<Uuid>,
    /// `spam`, `fake_profile`, `harassment`, `inappropriate_content`, `underage`, `scam` or
    /// `other`.
    pub reason: String,
    #[oai(nullable)]
    pub details: Option<String>,
    #[oai(nullable)]
    pub resonance_id: Option<Uuid>,
    #[oai(nullable)]
    pub photo_id: Option<Uuid>,
    /// `open`, `in_review`, `actioned` or `dismissed`.
    pub status: String,
    #[oai(nullable)]
    pub assignee_id: Option<Uuid>,
    /// The moderators' note.
    #[oai(nullable)]
    pub note: Option<String>,
    /// How many people have an open report about the same person (each reporter once).
    pub open_reports_about_user: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Example for AdminReport {
    fn example() -> Self {
        let at = DateTime::from_timestamp(1_795_564_412, 0).unwrap_or_default();
        Self {
            id: Uuid::nil(),
            reporter_id: Some(Uuid::nil()),
            user_id: Some(Uuid::nil()),
            reason: "harassment".into(),
            details: Some("Insults after I said I wanted to take it slow.".into()),
            resonance_id: Some(Uuid::nil()),
            photo_id: None,
            status: "open".into(),
            assignee_id: None,
            note: None,
            open_reports_about_user: 2,
            created_at: at,
            updated_at: at,
        }
    }
}

/// One page of the queue.
#[derive(Object)]
#[oai(example)]
pub struct AdminReportPage {
    pub items: Vec<AdminReport>,
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

impl Example for AdminReportPage {
    fn example() -> Self {
        Self {
            items: vec![AdminReport::example()],
            next_cursor: None,
        }
    }
}

/// A report with what was kept of its conversation.
#[derive(Object)]
#[oai(example)]
pub struct AdminReportDetail {
    #[oai(flatten)]
    pub report: AdminReport,
    /// The conversation's last messages when the report was filed (oldest first; empty when
    /// no conversation was named or it had ended).
    pub evidence: Vec<ChatMessage>,
}

impl Example for AdminReportDetail {
    fn example() -> Self {
        Self {
            report: AdminReport::example(),
            evidence: vec![ChatMessage::example()],
        }
    }
}

/// Changes to a report (only the fields present change; `null` clears a note or an assignee).
#[derive(Object)]
#[oai(example, deny_unknown_fields)]
pub struct ReportPatch {
    #[oai(nullable)]
    pub status: Option<ReportStatus>,
    /// At most 2,000 characters.
    #[oai(nullable, validator(max_length = 2000))]
    pub note: MaybeUndefined<String>,
    /// A moderator or an admin.
    #[oai(nullable)]
    pub assignee_id: MaybeUndefined<Uuid>,
}

impl Example for ReportPatch {
    fn example() -> Self {
        Self {
            status: Some(ReportStatus::InReview),
            note: MaybeUndefined::Value("Asked the reporter for screenshots.".into()),
            assignee_id: MaybeUndefined::Value(Uuid::nil()),
        }
    }
}

/// One of the person's photos, as moderators see it.
#[derive(Object, FromQueryResult)]
pub struct AdminPhoto {
    pub id: Uuid,
    pub position: i16,
    /// `pending`, `approved` or `rejected`.
    pub status: String,
    pub created_at: DateTime<Utc>,
}

/// A person's file.
#[derive(Object)]
#[oai(example)]
pub struct AdminUser {
    pub id: Uuid,
    /// Shown to admins only.
    #[oai(nullable)]
    pub email: Option<String>,
    /// `user`, `moderator` or `admin`.
    pub role: String,
    /// `active`, `suspended` or `banned`.
    pub status: String,
    #[oai(nullable)]
    pub suspended_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub last_active_at: DateTime<Utc>,
    #[oai(nullable)]
    pub display_name: Option<String>,
    #[oai(nullable)]
    pub birthdate: Option<NaiveDate>,
    #[oai(nullable)]
    pub gender: Option<String>,
    #[oai(nullable)]
    pub bio: Option<String>,
    pub photos: Vec<AdminPhoto>,
    /// Reports about them: open ones, and all.
    pub open_reports_about: i64,
    pub reports_about: i64,
    /// Reports they filed.
    pub reports_filed: i64,
    pub active_resonances: i64,
    /// The last 20 moderation actions about them, newest first.
    pub recent_actions: Vec<AuditEntry>,
}

impl Example for AdminUser {
    fn example() -> Self {
        let at = DateTime::from_timestamp(1_795_564_412, 0).unwrap_or_default();
        Self {
            id: Uuid::nil(),
            email: None,
            role: "user".into(),
            status: "active".into(),
            suspended_until: None,
            created_at: at,
            last_active_at: at,
            display_name: Some("Ana".into()),
            birthdate: NaiveDate::from_ymd_opt(1994, 5, 17),
            gender: Some("woman".into()),
            bio: Some("Slow mornings, long letters.".into()),
            photos: vec![AdminPhoto {
                id: Uuid::nil(),
                position: 0,
                status: "approved".into(),
                created_at: at,
            }],
            open_reports_about: 2,
            reports_about: 3,
            reports_filed: 0,
            active_resonances: 4,
            recent_actions: vec![AuditEntry::example()],
        }
    }
}

/// One page of the audit trail, newest first.
#[derive(Object)]
#[oai(example)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

impl Example for AuditPage {
    fn example() -> Self {
        Self {
            items: vec![AuditEntry::example()],
            next_cursor: None,
        }
    }
}

fn stmt(sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    Statement::from_sql_and_values(sea_orm::DatabaseBackend::Postgres, sql, values)
}

const REPORT_COLUMNS: &str = "r.id, r.reporter_id, r.reported_user_id AS user_id, r.reason,
    r.details, r.resonance_id, r.photo_id, r.status, r.assignee_id, r.note, r.created_at,
    r.updated_at,
    (SELECT count(DISTINCT o.reporter_id) FROM reports o
       WHERE o.reported_user_id = r.reported_user_id AND o.status = 'open')
      AS open_reports_about_user";

#[derive(Serialize, Deserialize)]
struct QueueCursor {
    t: DateTime<Utc>,
    i: Uuid,
}

#[derive(Serialize, Deserialize)]
struct AuditCursor {
    t: DateTime<Utc>,
    i: Uuid,
}

async fn report_by_id(state: &AppState, id: Uuid) -> Result<AdminReport, AppError> {
    AdminReport::find_by_statement(stmt(
        &format!("SELECT {REPORT_COLUMNS} FROM reports r WHERE r.id = $1"),
        vec![id.into()],
    ))
    .one(&state.db)
    .await?
    .ok_or(AppError::NotFound("no report has this id"))
}

/// The report, if `caller` (of role `role`) may handle it: not about themselves, and about
/// staff only for admins.
async fn handled_report(
    state: &AppState,
    caller: Uuid,
    role: Role,
    id: Uuid,
) -> Result<AdminReport, AppError> {
    let report = report_by_id(state, id).await?;
    let refuse = |detail: &str| AppError::Forbidden {
        kind: "insufficient-role",
        detail: detail.into(),
        until: None,
    };
    let Some(reported) = report.user_id else {
        return Ok(report);
    };
    if reported == caller {
        return Err(refuse("another moderator handles reports about you"));
    }
    let their_role: Option<String> = state
        .db
        .query_one(stmt(
            "SELECT role FROM users WHERE id = $1",
            vec![reported.into()],
        ))
        .await?
        .map(|row| row.try_get("", "role"))
        .transpose()?;
    let staff = their_role
        .as_deref()
        .and_then(Role::parse)
        .unwrap_or(Role::User)
        > Role::User;
    if staff && role < Role::Admin {
        return Err(refuse("reports about moderators and admins are for admins"));
    }
    Ok(report)
}

#[derive(FromQueryResult)]
struct AccountRow {
    id: Uuid,
    email_ciphertext: Vec<u8>,
    role: String,
    status: String,
    suspended_until: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    last_active_at: DateTime<Utc>,
    display_name: Option<String>,
    birthdate: Option<NaiveDate>,
    gender: Option<String>,
    bio_ciphertext: Option<Vec<u8>>,
    open_reports_about: i64,
    reports_about: i64,
    reports_filed: i64,
    active_resonances: i64,
}

pub struct AdminQueueApi;

#[OpenApi(prefix_path = "/v1/admin", tag = "ApiTags::Admin")]
impl AdminQueueApi {
    /// The report queue
    ///
    /// Role: moderator. Oldest first; `status` filters (default: `open` and `in_review`).
    /// Each item counts the people with an open report about the same person. Reports about
    /// moderators and admins are listed to admins only; nobody sees reports about themselves.
    #[oai(path = "/reports", method = "get", operation_id = "adminListReports")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// Only reports in this state.
        status: Query<Option<ReportStatus>>,
        /// `next_cursor` from the previous page.
        cursor: Query<Option<String>>,
        /// 1 to 100 (default 50).
        limit: Query<Option<u32>>,
    ) -> Result<Json<AdminReportPage>, ApiError<QueueErrors>> {
        let role = require_role(&state, &auth.0, Role::Moderator).await?;
        let limit = cursor::limit(limit.0, 50, 100)?;
        let after = match cursor.0.as_deref() {
            Some(text) => cursor::decode::<QueueCursor>(&state.cipher, "reports", text)?,
            None => QueueCursor {
                t: DateTime::<Utc>::UNIX_EPOCH,
                i: Uuid::nil(),
            },
        };
        let statuses: Vec<String> = match status.0 {
            Some(s) => vec![s.as_str().to_owned()],
            None => vec!["open".into(), "in_review".into()],
        };
        let mut rows = AdminReport::find_by_statement(stmt(
            &format!(
                "SELECT {REPORT_COLUMNS} FROM reports r
                 LEFT JOIN users u ON u.id = r.reported_user_id
                 WHERE r.status = ANY($1) AND (r.created_at, r.id) > ($2, $3)
                   AND r.reported_user_id IS DISTINCT FROM $5
                   AND ($6 OR coalesce(u.role, 'user') = 'user')
                 ORDER BY r.created_at, r.id LIMIT $4"
            ),
            vec![
                statuses.into(),
                after.t.into(),
                after.i.into(),
                ((limit + 1) as i64).into(),
                auth.0.user_id.into(),
                (role >= Role::Admin).into(),
            ],
        ))
        .all(&state.db)
        .await?;
        let next_cursor = cursor::paginate(&state.cipher, "reports", &mut rows, limit, |r| {
            QueueCursor {
                t: r.created_at,
                i: r.id,
            }
        });
        Ok(Json(AdminReportPage {
            items: rows,
            next_cursor,
        }))
    }

    /// One report, with its evidence
    ///
    /// Role: moderator. The conversation's last messages kept when it was filed, if it named
    /// one. A report about a moderator or an admin needs the admin role; nobody reads a report
    /// about themselves (403).
    #[oai(path = "/reports/:id", method = "get", operation_id = "adminGetReport")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<Json<AdminReportDetail>, ApiError<ReportViewErrors>> {
        let role = require_role(&state, &auth.0, Role::Moderator).await?;
        let report = handled_report(&state, auth.0.user_id, role, id.0).await?;
        let sealed: Option<Vec<u8>> = state
            .db
            .query_one(stmt(
                "SELECT evidence_ciphertext FROM reports WHERE id = $1",
                vec![id.0.into()],
            ))
            .await?
            .and_then(|row| row.try_get("", "evidence_ciphertext").ok())
            .flatten();
        let evidence = match sealed {
            Some(sealed) => {
                let json = state
                    .cipher
                    .decrypt(&sealed, &crate::reports::evidence_context(report.id))?;
                let value: serde_json::Value =
                    serde_json::from_slice(&json).map_err(|e| AppError::Internal(e.into()))?;
                crate::reports::from_json(report.resonance_id, &value)
            }
            None => Vec::new(),
        };
        Ok(Json(AdminReportDetail { report, evidence }))
    }

    /// Update a report (status, note, assignee)
    ///
    /// Role: moderator. Only the fields present change; `null` clears the note or the
    /// assignee, who must be a moderator or an admin (422 otherwise). `status` may be `open`,
    /// `in_review` or `dismissed`: a report becomes `actioned` through an action on the account
    /// that names it (`report_id`). Recorded in the audit trail (`report_update`). The same
    /// access rules as reading it apply.
    #[oai(
        path = "/reports/:id",
        method = "patch",
        operation_id = "adminUpdateReport"
    )]
    async fn update(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<Uuid>,
        body: Json<ReportPatch>,
    ) -> Result<Json<AdminReport>, ApiError<ReportPatchErrors>> {
        let role = require_role(&state, &auth.0, Role::Moderator).await?;
        let report = handled_report(&state, auth.0.user_id, role, id.0).await?;
        let patch = body.0;
        if patch.status == Some(ReportStatus::Actioned) {
            return Err(AppError::invalid(
                "status",
                "actioned_by_action",
                "a report becomes actioned through an action that names it \
                 (POST /v1/admin/users/{id}/actions with report_id)",
            )
            .into());
        }
        if let MaybeUndefined::Value(assignee) = patch.assignee_id {
            let role: Option<String> = state
                .db
                .query_one(stmt(
                    "SELECT role FROM users WHERE id = $1",
                    vec![assignee.into()],
                ))
                .await?
                .map(|row| row.try_get("", "role"))
                .transpose()?;
            if role.as_deref().and_then(Role::parse).unwrap_or(Role::User) < Role::Moderator {
                return Err(AppError::invalid(
                    "assignee_id",
                    "not_a_moderator",
                    "reports are assigned to moderators or admins",
                )
                .into());
            }
        }
        let (set_note, note) = match patch.note {
            MaybeUndefined::Undefined => (false, None),
            MaybeUndefined::Null => (true, None),
            MaybeUndefined::Value(n) => (true, Some(n.trim().to_owned())),
        };
        let (set_assignee, assignee) = match patch.assignee_id {
            MaybeUndefined::Undefined => (false, None),
            MaybeUndefined::Null => (true, None),
            MaybeUndefined::Value(a) => (true, Some(a)),
        };
        let mut changes = Vec::new();
        if let Some(status) = patch.status {
            changes.push(format!("status: {}", status.as_str()));
        }
        if set_note {
            changes.push("note changed".to_owned());
        }
        if set_assignee {
            changes.push(
                if assignee.is_some() {
                    "assigned"
                } else {
                    "unassigned"
                }
                .to_owned(),
            );
        }
        let txn = state.db.begin().await?;
        let done = txn
            .execute(stmt(
                "UPDATE reports SET
                   status = coalesce($2, status),
                   note = CASE WHEN $3 THEN $4 ELSE note END,
                   assignee_id = CASE WHEN $5 THEN $6 ELSE assignee_id END,
                   updated_at = now()
                 WHERE id = $1",
                vec![
                    id.0.into(),
                    patch.status.map(|s| s.as_str().to_owned()).into(),
                    set_note.into(),
                    note.into(),
                    set_assignee.into(),
                    assignee.into(),
                ],
            ))
            .await?;
        if done.rows_affected() == 0 {
            return Err(AppError::NotFound("no report has this id").into());
        }
        txn.execute(stmt(
            "INSERT INTO moderation_actions (id, actor_id, target_id, action, reason, report_id)
             VALUES ($1, $2, $3, 'report_update', $4, $5)",
            vec![
                Uuid::now_v7().into(),
                auth.0.user_id.into(),
                report.user_id.into(),
                changes.join("; ").into(),
                report.id.into(),
            ],
        ))
        .await?;
        txn.commit().await?;
        Ok(Json(report_by_id(&state, id.0).await?))
    }

    /// A person's file
    ///
    /// Role: moderator. Account state, profile (no location), photos of every status, report
    /// counts, active résonances and the last 20 moderation actions about them. The email is
    /// shown to admins only.
    #[oai(path = "/users/:id", method = "get", operation_id = "adminGetUser")]
    async fn user(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        id: Path<Uuid>,
    ) -> Result<Json<AdminUser>, ApiError<ReportViewErrors>> {
        let role = require_role(&state, &auth.0, Role::Moderator).await?;
        let id = id.0;
        let row = AccountRow::find_by_statement(stmt(
            "SELECT u.id, u.email_ciphertext, u.role, u.status, u.suspended_until, u.created_at,
                    u.last_active_at, p.display_name, p.birthdate, p.gender, p.bio_ciphertext,
                    (SELECT count(*) FROM reports WHERE reported_user_id = u.id
                       AND status = 'open') AS open_reports_about,
                    (SELECT count(*) FROM reports WHERE reported_user_id = u.id) AS reports_about,
                    (SELECT count(*) FROM reports WHERE reporter_id = u.id) AS reports_filed,
                    (SELECT count(*) FROM resonances WHERE (user_a = u.id OR user_b = u.id)
                       AND ended_at IS NULL) AS active_resonances
             FROM users u LEFT JOIN profiles p ON p.user_id = u.id WHERE u.id = $1",
            vec![id.into()],
        ))
        .one(&state.db)
        .await?
        .ok_or(AppError::NotFound("no person has this id"))?;
        let photos = AdminPhoto::find_by_statement(stmt(
            "SELECT id, position, status, created_at FROM photos WHERE user_id = $1
             ORDER BY position, created_at",
            vec![id.into()],
        ))
        .all(&state.db)
        .await?;
        let recent_actions = AuditEntry::find_by_statement(stmt(
            "SELECT id, actor_id, action, target_id, reason, until, report_id, created_at
             FROM moderation_actions WHERE target_id = $1 ORDER BY created_at DESC, id DESC
             LIMIT 20",
            vec![id.into()],
        ))
        .all(&state.db)
        .await?;
        let email = if role >= Role::Admin {
            Some(
                state
                    .cipher
                    .decrypt_string(&row.email_ciphertext, &format!("users.email:{}", row.id))?,
            )
        } else {
            None
        };
        let bio = row
            .bio_ciphertext
            .as_deref()
            .map(|c| {
                state
                    .cipher
                    .decrypt_string(c, &format!("profiles.bio:{}", row.id))
            })
            .transpose()?;
        Ok(Json(AdminUser {
            id: row.id,
            email,
            role: row.role,
            status: row.status,
            suspended_until: row.suspended_until,
            created_at: row.created_at,
            last_active_at: row.last_active_at,
            display_name: row.display_name,
            birthdate: row.birthdate,
            gender: row.gender,
            bio,
            photos,
            open_reports_about: row.open_reports_about,
            reports_about: row.reports_about,
            reports_filed: row.reports_filed,
            active_resonances: row.active_resonances,
            recent_actions,
        }))
    }

    /// The audit trail
    ///
    /// Role: admin. Every moderation action, newest first; filter by the person concerned
    /// (`target_id`) or by who acted (`actor_id`).
    #[oai(path = "/audit", method = "get", operation_id = "adminListAudit")]
    async fn audit(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// Only actions about this person.
        target_id: Query<Option<Uuid>>,
        /// Only actions by this moderator.
        actor_id: Query<Option<Uuid>>,
        /// `next_cursor` from the previous page.
        cursor: Query<Option<String>>,
        /// 1 to 100 (default 50).
        limit: Query<Option<u32>>,
    ) -> Result<Json<AuditPage>, ApiError<QueueErrors>> {
        require_role(&state, &auth.0, Role::Admin).await?;
        let limit = cursor::limit(limit.0, 50, 100)?;
        let before = match cursor.0.as_deref() {
            Some(text) => cursor::decode::<AuditCursor>(&state.cipher, "audit", text)?,
            None => AuditCursor {
                t: DateTime::<Utc>::MAX_UTC,
                i: Uuid::max(),
            },
        };
        let mut rows = AuditEntry::find_by_statement(stmt(
            "SELECT id, actor_id, action, target_id, reason, until, report_id, created_at
             FROM moderation_actions
             WHERE ($1::uuid IS NULL OR target_id = $1) AND ($2::uuid IS NULL OR actor_id = $2)
               AND (created_at, id) < ($3, $4)
             ORDER BY created_at DESC, id DESC LIMIT $5",
            vec![
                target_id.0.into(),
                actor_id.0.into(),
                before.t.into(),
                before.i.into(),
                ((limit + 1) as i64).into(),
            ],
        ))
        .all(&state.db)
        .await?;
        let next_cursor =
            cursor::paginate(&state.cipher, "audit", &mut rows, limit, |e| AuditCursor {
                t: e.created_at,
                i: e.id,
            });
        Ok(Json(AuditPage {
            items: rows,
            next_cursor,
        }))
    }
}
