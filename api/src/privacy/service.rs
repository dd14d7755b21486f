//! Export and erasure (see the module's documentation for what each covers, and in which order
//! erasure works).
use chrono::{DateTime, Utc};
use entities::{sessions, users};
use fred::{prelude::KeysInterface, types::scan::ScanType};
use futures_util::TryStreamExt;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, Statement,
    TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use super::routes::{
    Export, ExportBlock, ExportDecision, ExportReport, ExportResonance, ExportSession, ExportSwipe,
};
use crate::{
    auth::extract::Caller, error::AppError, resonances::routes::ChatMessage, state::AppState,
};

/// The version of the export's shape (`format`).
pub const EXPORT_FORMAT: &str = "despacio-export/1";

/// How long the erasure mark outlives the erasure: longer than any access token (15 min at
/// most) or presence entry lives.
const ERASURE_MARK_S: i64 = 3600;

/// The reason recorded on the sessions an erasure revokes (gateways close them with 4003).
pub const ERASED: &str = "account_erased";

fn stmt(sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    Statement::from_sql_and_values(sea_orm::DatabaseBackend::Postgres, sql, values)
}

fn gone() -> AppError {
    AppError::Unauthorized {
        kind: "unauthorized",
        detail: "this account no longer exists",
    }
}

#[derive(FromQueryResult)]
struct Pair {
    id: Uuid,
    user_a: Uuid,
    user_b: Uuid,
}

impl Pair {
    fn other(&self, me: Uuid) -> Uuid {
        if self.user_a == me {
            self.user_b
        } else {
            self.user_a
        }
    }
}

async fn active_resonances(state: &AppState, me: Uuid) -> Result<Vec<Pair>, AppError> {
    Ok(Pair::find_by_statement(stmt(
        "SELECT id, user_a, user_b FROM resonances
         WHERE (user_a = $1 OR user_b = $1) AND ended_at IS NULL ORDER BY created_at",
        vec![me.into()],
    ))
    .all(&state.db)
    .await?)
}

/// `DELETE /v1/me`: removes the person everywhere.
pub async fn erase(state: &AppState, caller: &Caller) -> Result<(), AppError> {
    caller.require_recent_auth(state)?;
    let me = caller.user_id;
    let account = users::Entity::find_by_id(me)
        .one(&state.db)
        .await?
        .ok_or_else(gone)?;
    let mark = state.keys.erased_user(&me);
    let _: () = state
        .redis
        .set(
            &mark,
            "1",
            Some(fred::types::Expiration::EX(ERASURE_MARK_S)),
            None,
            false,
        )
        .await?;
    crate::auth::service::revoke_sessions(state, sessions::Column::UserId.eq(me), ERASED).await?;
    for photo in crate::photos::service::list(state, me).await? {
        crate::photos::service::delete_objects(state, &photo.storage_key)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "erasure: photo objects not deleted");
                AppError::Unavailable(
                    "the photo store is unavailable: nothing was erased yet; sign in and retry",
                )
            })?;
    }
    for pair in active_resonances(state, me).await? {
        crate::resonances::service::close_conversation(state, pair.id, [pair.user_a, pair.user_b])
            .await?;
        state
            .events
            .publish(
                pair.other(me),
                "resonance.removed",
                json!({"resonance_id": pair.id}),
            )
            .await?;
    }
    // People whose likes-received list loses this person's like.
    let liked: Vec<Uuid> = state
        .db
        .query_all(stmt(
            "SELECT target_id FROM swipes WHERE swiper_id = $1 AND action = 'like'",
            vec![me.into()],
        ))
        .await?
        .iter()
        .filter_map(|row| row.try_get::<Uuid>("", "target_id").ok())
        .collect();
    let txn = state.db.begin().await?;
    for (sql, value) in [
        (
            "DELETE FROM magic_links WHERE email_hash = $1",
            sea_orm::Value::from(account.email_hash.clone()),
        ),
        (
            "DELETE FROM reports WHERE reporter_id = $1 OR reported_user_id = $1",
            me.into(),
        ),
        (
            "UPDATE moderation_actions SET target_id = NULL, reason = NULL WHERE target_id = $1",
            me.into(),
        ),
        (
            "UPDATE moderation_actions SET actor_id = NULL WHERE actor_id = $1",
            me.into(),
        ),
        (
            "UPDATE resonances SET ended_by = NULL WHERE ended_by = $1",
            me.into(),
        ),
        ("DELETE FROM users WHERE id = $1", me.into()),
    ] {
        txn.execute(stmt(sql, vec![value])).await?;
    }
    txn.commit().await?;
    tracing::info!(user_id = %me, "account erased");
    for person in liked {
        crate::resonances::service::notify_likes_changed(state, person).await?;
    }
    // The last event of the person's open streams (they end after it), then their buffer.
    state
        .events
        .publish(me, "account.erased", json!({}))
        .await?;
    state.events.forget(me).await?;
    sweep_keys(state, me, &account.email_hash, &mark).await
}

/// Deletes every key of the deployment that names the person (one `SCAN`; erasure is rare),
/// and the rate-limit counters named by their email's blind index. Keeps the erasure mark.
async fn sweep_keys(
    state: &AppState,
    me: Uuid,
    email_hash: &[u8],
    mark: &str,
) -> Result<(), AppError> {
    let pattern = format!("{}*{me}*", glob_escape(state.keys.prefix()));
    let mut keys: Vec<String> = state
        .redis
        .next()
        .scan_buffered(pattern, Some(1000), None::<ScanType>)
        .map_ok(|key| key.into_string().unwrap_or_default())
        .try_collect()
        .await?;
    keys.retain(|k| !k.is_empty() && k != mark);
    let subject = crate::auth::service::account_subject(email_hash);
    for limit in ["login_per_account", "magic_link_per_email"] {
        keys.push(state.keys.rate_limit(limit, &subject));
    }
    for chunk in keys.chunks(500) {
        let _: i64 = state.redis.del(chunk.to_vec()).await?;
    }
    Ok(())
}

/// `pattern` matching itself literally in a `SCAN MATCH` glob.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[derive(FromQueryResult)]
struct SwipeRow {
    target_id: Uuid,
    action: String,
    created_at: DateTime<Utc>,
}

#[derive(FromQueryResult)]
struct ResonanceRow {
    id: Uuid,
    user_a: Uuid,
    user_b: Uuid,
    created_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    ended_reason: Option<String>,
}

#[derive(FromQueryResult)]
struct BlockRow {
    blocked_id: Uuid,
    created_at: DateTime<Utc>,
}

#[derive(FromQueryResult)]
struct ReportRow {
    id: Uuid,
    reported_user_id: Option<Uuid>,
    reason: String,
    details: Option<String>,
    resonance_id: Option<Uuid>,
    photo_id: Option<Uuid>,
    status: String,
    created_at: DateTime<Utc>,
}

#[derive(FromQueryResult)]
struct DecisionRow {
    action: String,
    reason: Option<String>,
    until: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

/// `GET /v1/me/export`: everything stored about the person.
pub async fn export(state: &AppState, me: Uuid) -> Result<Export, AppError> {
    let account = crate::profiles::service::me(state, me).await?;
    let photos = crate::photos::service::list(state, me).await?;
    let sessions = sessions::Entity::find()
        .filter(sessions::Column::UserId.eq(me))
        .order_by_desc(sessions::Column::CreatedAt)
        .all(&state.db)
        .await?
        .into_iter()
        .map(|s| ExportSession {
            id: s.id,
            user_agent: s.user_agent,
            ip: s.ip,
            auth_method: s.auth_method,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            expires_at: s.expires_at,
            revoked_at: s.revoked_at,
            revoked_reason: s.revoked_reason,
        })
        .collect();
    let swipes = SwipeRow::find_by_statement(stmt(
        "SELECT target_id, action, created_at FROM swipes WHERE swiper_id = $1
         ORDER BY created_at",
        vec![me.into()],
    ))
    .all(&state.db)
    .await?
    .into_iter()
    .map(|s| ExportSwipe {
        user_id: s.target_id,
        action: s.action,
        created_at: s.created_at,
    })
    .collect();
    let resonances: Vec<ExportResonance> = ResonanceRow::find_by_statement(stmt(
        "SELECT id, user_a, user_b, created_at, ended_at, ended_reason FROM resonances
         WHERE user_a = $1 OR user_b = $1 ORDER BY created_at",
        vec![me.into()],
    ))
    .all(&state.db)
    .await?
    .into_iter()
    .map(|r| ExportResonance {
        id: r.id,
        user_id: if r.user_a == me { r.user_b } else { r.user_a },
        created_at: r.created_at,
        ended_at: r.ended_at,
        ended_reason: r.ended_reason,
    })
    .collect();
    let blocks = BlockRow::find_by_statement(stmt(
        "SELECT blocked_id, created_at FROM blocks WHERE blocker_id = $1 ORDER BY created_at",
        vec![me.into()],
    ))
    .all(&state.db)
    .await?
    .into_iter()
    .map(|b| ExportBlock {
        user_id: b.blocked_id,
        created_at: b.created_at,
    })
    .collect();
    let reports = ReportRow::find_by_statement(stmt(
        "SELECT id, reported_user_id, reason, details, resonance_id, photo_id, status, created_at
         FROM reports WHERE reporter_id = $1 ORDER BY created_at",
        vec![me.into()],
    ))
    .all(&state.db)
    .await?
    .into_iter()
    .map(|r| ExportReport {
        id: r.id,
        user_id: r.reported_user_id,
        reason: r.reason,
        details: r.details,
        resonance_id: r.resonance_id,
        photo_id: r.photo_id,
        status: r.status,
        created_at: r.created_at,
    })
    .collect();
    let moderation = DecisionRow::find_by_statement(stmt(
        "SELECT action, reason, until, created_at FROM moderation_actions
         WHERE target_id = $1 ORDER BY created_at",
        vec![me.into()],
    ))
    .all(&state.db)
    .await?
    .into_iter()
    .map(|d| ExportDecision {
        action: d.action,
        reason: d.reason,
        until: d.until,
        created_at: d.created_at,
    })
    .collect();
    let mut messages = Vec::new();
    for pair in active_resonances(state, me).await? {
        let mut after: Option<String> = None;
        loop {
            let found =
                crate::resonances::service::history(state, me, pair.id, after.as_deref(), 200)
                    .await;
            let (page, next) = match found {
                // Ended meanwhile: its messages are gone.
                Err(AppError::NotFound(_)) => break,
                other => other?,
            };
            messages.extend(page.into_iter().map(|m| ChatMessage {
                resonance_id: pair.id,
                message_id: m.message_id,
                sender_id: m.sender_id,
                client_id: m.client_id,
                body: m.body,
                sent_at: m.sent_at,
            }));
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
    }
    Ok(Export {
        format: EXPORT_FORMAT.into(),
        generated_at: Utc::now(),
        account,
        photos: photos
            .into_iter()
            .map(|p| crate::photos::routes::to_api(state, p))
            .collect(),
        sessions,
        swipes,
        resonances,
        blocks,
        reports,
        moderation,
        messages,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn glob_characters_of_the_prefix_match_themselves() {
        assert_eq!(super::glob_escape("t_1:"), "t_1:");
        assert_eq!(super::glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
