//! Moderation actions on accounts: `POST /v1/admin/users/{id}/actions`.
//!
//! A moderator (or an admin) warns, suspends (until a date), bans, reinstates or signs out a
//! person. Every action:
//! - is written to the append-only audit trail (`moderation_actions`) with its actor and reason;
//! - is announced to the person as a `moderation.notice` event on `GET /v1/events` (`action`,
//!   `reason`, `until`): the reason is shown to them, so write it for them;
//! - for `suspend`, `ban` and `force_logout`, revokes every session of the person: their access
//!   tokens stop working at once, the chat gateways close their connections (4003) and their
//!   event streams end right after the notice. A suspended person cannot sign in before `until`
//!   (403 `account-suspended` with `until`), a banned one never (403 `account-banned`); neither
//!   appears in discovery, likes or profiles meanwhile.
//!
//! Rules: the caller's role is read from the database (a demoted moderator's token is not
//! enough); nobody acts on themselves; only an admin acts on a moderator or an admin. An action
//! that names a report (`report_id`) must concern the person reported, and marks the report
//! `actioned`. The report queue, a person's file and the audit listing are in [`queue`].
pub mod logs;
pub mod queue;

use chrono::{DateTime, Utc};
use entities::auth::Role;
use poem::web::Data;
use poem_openapi::{
    param::Path, payload::Json, types::Example, ApiResponse, Enum, Object, OpenApi,
};
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, TransactionTrait};
use uuid::Uuid;

use crate::{
    auth::extract::{BearerAuth, Caller},
    error::{ApiError, AppError},
    error_set,
    openapi::ApiTags,
    state::AppState,
};

error_set!(ActionErrors: [400, 401, 403, 404, 413, 422]);

/// What a moderator does to an account.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum ModerationAction {
    /// A notice only; nothing else changes.
    Warn,
    /// No sign-in and invisible to others until `until`; every session ends.
    Suspend,
    /// No sign-in ever again, invisible to others; every session ends, every résonance ends
    /// (their matches see it removed, the conversations close).
    Ban,
    /// Lifts a suspension or a ban.
    Reinstate,
    /// Ends every session (the person signs in again).
    ForceLogout,
}

impl ModerationAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ModerationAction::Warn => "warn",
            ModerationAction::Suspend => "suspend",
            ModerationAction::Ban => "ban",
            ModerationAction::Reinstate => "reinstate",
            ModerationAction::ForceLogout => "force_logout",
        }
    }

    /// Whether the action ends the person's sessions (and their event streams).
    pub fn ends_sessions(self) -> bool {
        matches!(
            self,
            ModerationAction::Suspend | ModerationAction::Ban | ModerationAction::ForceLogout
        )
    }
}

/// A moderation action.
#[derive(Object)]
#[oai(example, deny_unknown_fields)]
pub struct ActionRequest {
    pub action: ModerationAction,
    /// Why, in words for the person concerned (they receive it in their notice). 1–500
    /// characters.
    #[oai(validator(min_length = 1, max_length = 500))]
    pub reason: String,
    /// End of a suspension (required for `suspend`, in the future; refused otherwise).
    #[oai(nullable)]
    pub until: Option<DateTime<Utc>>,
    /// The report this action answers, if any: it must be about this person, and becomes
    /// `actioned` (recorded in the audit trail).
    #[oai(nullable)]
    pub report_id: Option<Uuid>,
}

impl Example for ActionRequest {
    fn example() -> Self {
        Self {
            action: ModerationAction::Suspend,
            reason: "Insulting messages reported by several people.".into(),
            until: DateTime::from_timestamp(1_796_169_212, 0),
            report_id: None,
        }
    }
}

/// An entry of the audit trail.
#[derive(Object, FromQueryResult)]
#[oai(example)]
pub struct AuditEntry {
    pub id: Uuid,
    /// Who acted.
    #[oai(nullable)]
    pub actor_id: Option<Uuid>,
    pub action: String,
    /// Whom the action concerns.
    #[oai(nullable)]
    pub target_id: Option<Uuid>,
    #[oai(nullable)]
    pub reason: Option<String>,
    #[oai(nullable)]
    pub until: Option<DateTime<Utc>>,
    #[oai(nullable)]
    pub report_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

impl Example for AuditEntry {
    fn example() -> Self {
        Self {
            id: Uuid::nil(),
            actor_id: Some(Uuid::nil()),
            action: "suspend".into(),
            target_id: Some(Uuid::nil()),
            reason: Some("Insulting messages reported by several people.".into()),
            until: DateTime::from_timestamp(1_796_169_212, 0),
            report_id: None,
            created_at: DateTime::from_timestamp(1_795_564_412, 0).unwrap_or_default(),
        }
    }
}

#[derive(ApiResponse)]
pub enum ActionTaken {
    /// Done; the audit entry.
    #[oai(status = 201)]
    Created(Json<AuditEntry>),
}

fn stmt(sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    Statement::from_sql_and_values(sea_orm::DatabaseBackend::Postgres, sql, values)
}

#[derive(FromQueryResult)]
struct RoleRow {
    role: String,
}

async fn role_of<C: ConnectionTrait>(conn: &C, user: Uuid) -> Result<Option<Role>, AppError> {
    Ok(RoleRow::find_by_statement(stmt(
        "SELECT role FROM users WHERE id = $1",
        vec![user.into()],
    ))
    .one(conn)
    .await?
    .map(|r| Role::parse(&r.role).unwrap_or(Role::User)))
}

/// Refuses callers below `least` (checked against the stored role, not the token's).
pub async fn require_role(
    state: &AppState,
    caller: &Caller,
    least: Role,
) -> Result<Role, AppError> {
    let role = role_of(&state.db, caller.user_id)
        .await?
        .unwrap_or(Role::User);
    if role < least {
        return Err(AppError::Forbidden {
            kind: "insufficient-role",
            detail: format!("this operation needs the {} role", least.as_str()),
            until: None,
        });
    }
    Ok(role)
}

/// Applies `request` to `target` on behalf of `caller`; returns the audit entry.
pub async fn act(
    state: &AppState,
    caller: &Caller,
    target: Uuid,
    request: ActionRequest,
) -> Result<AuditEntry, AppError> {
    let actor_role = require_role(state, caller, Role::Moderator).await?;
    let action = request.action;
    let reason = request.reason.trim().to_owned();
    if reason.is_empty() {
        return Err(AppError::invalid(
            "reason",
            "blank",
            "say why, for the person concerned",
        ));
    }
    let until = match (action, request.until) {
        (ModerationAction::Suspend, Some(until)) if until > Utc::now() => Some(until),
        (ModerationAction::Suspend, Some(_)) => {
            return Err(AppError::invalid(
                "until",
                "past",
                "a suspension must end in the future",
            ))
        }
        (ModerationAction::Suspend, None) => {
            return Err(AppError::invalid(
                "until",
                "required",
                "a suspension needs `until`",
            ))
        }
        (_, Some(_)) => {
            return Err(AppError::invalid(
                "until",
                "unexpected",
                "`until` applies to `suspend` only",
            ))
        }
        (_, None) => None,
    };
    if target == caller.user_id {
        return Err(AppError::invalid(
            "id",
            "self",
            "moderators do not act on their own account",
        ));
    }
    let txn = state.db.begin().await?;
    // Lock the person's row: two moderators acting at once apply one after the other.
    let target_role = RoleRow::find_by_statement(stmt(
        "SELECT role FROM users WHERE id = $1 FOR UPDATE",
        vec![target.into()],
    ))
    .one(&txn)
    .await?
    .ok_or(AppError::NotFound("no person has this id"))?;
    if Role::parse(&target_role.role).unwrap_or(Role::User) > Role::User && actor_role < Role::Admin
    {
        return Err(AppError::Forbidden {
            kind: "insufficient-role",
            detail: "only an admin acts on a moderator's or an admin's account".into(),
            until: None,
        });
    }
    let status_change = match action {
        ModerationAction::Suspend => {
            Some("UPDATE users SET status = 'suspended', suspended_until = $2 WHERE id = $1")
        }
        ModerationAction::Ban => {
            Some("UPDATE users SET status = 'banned', suspended_until = NULL WHERE id = $1")
        }
        ModerationAction::Reinstate => {
            Some("UPDATE users SET status = 'active', suspended_until = NULL WHERE id = $1")
        }
        ModerationAction::Warn | ModerationAction::ForceLogout => None,
    };
    if let Some(report) = request.report_id {
        let answered = txn
            .execute(stmt(
                "UPDATE reports SET status = 'actioned', updated_at = now()
                 WHERE id = $1 AND reported_user_id = $2",
                vec![report.into(), target.into()],
            ))
            .await?;
        if answered.rows_affected() == 0 {
            return Err(AppError::invalid(
                "report_id",
                "not_about_them",
                "no report about this person has this id",
            ));
        }
    }
    if let Some(sql) = status_change {
        let mut values = vec![target.into()];
        if action == ModerationAction::Suspend {
            values.push(until.into());
        }
        txn.execute(stmt(sql, values)).await?;
    }
    let entry = AuditEntry::find_by_statement(stmt(
        "INSERT INTO moderation_actions (id, actor_id, target_id, action, reason, until, report_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         RETURNING id, actor_id, target_id, action, reason, until, report_id, created_at",
        vec![
            Uuid::now_v7().into(),
            caller.user_id.into(),
            target.into(),
            action.as_str().into(),
            reason.clone().into(),
            until.into(),
            request.report_id.into(),
        ],
    ))
    .one(&txn)
    .await?
    .ok_or_else(|| AppError::Internal(anyhow::anyhow!("audit insert returned nothing")))?;
    txn.commit().await?;

    // The notice first, so that it is the last thing the person's open streams deliver.
    state
        .events
        .publish(
            target,
            "moderation.notice",
            serde_json::json!({"action": action.as_str(), "reason": reason, "until": until}),
        )
        .await?;
    if action.ends_sessions() {
        use sea_orm::ColumnTrait;
        crate::auth::service::revoke_sessions(
            state,
            entities::sessions::Column::UserId.eq(target),
            &format!("moderation:{}", action.as_str()),
        )
        .await?;
    }
    if action == ModerationAction::Ban {
        crate::resonances::service::end_all_for(state, target, caller.user_id).await?;
    }
    Ok(entry)
}

pub struct AdminApi;

#[OpenApi(prefix_path = "/v1/admin", tag = "ApiTags::Admin")]
impl AdminApi {
    /// Act on an account (warn, suspend, ban, reinstate, sign out)
    ///
    /// Role: moderator. Acting on a moderator's or an admin's account needs the admin role.
    ///
    /// `warn` sends a notice; `suspend` (with `until`) and `ban` hide the person everywhere and
    /// refuse their sign-in (403 `account-suspended` with `until` / `account-banned`);
    /// `reinstate` lifts either; `force_logout` ends every session. `suspend`, `ban` and
    /// `force_logout` revoke the person's sessions at once (API, chat gateway, event streams);
    /// `ban` also ends the person's résonances (each match gets `resonance.removed`, the chat
    /// conversations are deleted and closed; a reinstatement does not restore them).
    /// The person receives a `moderation.notice` event with `action`, `reason` and `until`.
    /// Every action is recorded in the audit trail, which this answers with.
    #[oai(
        path = "/users/:id/actions",
        method = "post",
        operation_id = "adminActOnUser"
    )]
    async fn act(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The person concerned.
        id: Path<Uuid>,
        body: Json<ActionRequest>,
    ) -> Result<ActionTaken, ApiError<ActionErrors>> {
        Ok(ActionTaken::Created(Json(
            act(&state, &auth.0, id.0, body.0).await?,
        )))
    }
}
