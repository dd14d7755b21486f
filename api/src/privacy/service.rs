//! Export and erasure (see the module's documentation for what each covers, and in which order
//! erasure works).
use chrono::{DateTime, Utc};
use entities::sessions;
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

/// What the erasure's transaction found and removed, for the clean-up after it.
struct Removed {
    email_hash: Vec<u8>,
    /// Sessions still live (their tokens get revocation marks; the rows are gone).
    sessions: Vec<(Uuid, Uuid)>,
    /// Photos whose objects must go (scheduled in `object_deletions`).
    photos: Vec<String>,
    /// Active résonances (their conversations are closed, the partners told).
    resonances: Vec<Pair>,
    /// People this person liked (their likes-received lists change).
    liked: Vec<Uuid>,
}

/// `DELETE /v1/me`: removes the person everywhere.
pub async fn erase(state: &AppState, caller: &Caller) -> Result<(), AppError> {
    caller.require_recent_auth(state)?;
    let me = caller.user_id;
    // From here on no token of theirs is accepted (API and gateways), even one from a session
    // opened on another device while this runs.
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
    let removed = match remove_rows(state, me).await {
        Ok(removed) => removed,
        // Already erased (a second request, from another device, waited for the first's
        // transaction): the mark stays.
        Err(e @ AppError::Unauthorized { .. }) => return Err(e),
        Err(e) => {
            // Nothing was deleted: the account works again.
            let undone: Result<i64, _> = state.redis.del(&mark).await;
            if let Err(e) = undone {
                tracing::error!(error = %e, "erasure failed and its mark stays (an hour)");
            }
            return Err(e);
        }
    };
    tracing::info!(user_id = %me, "account erased");
    // The account is gone. The clean-up runs on a task of its own, so that it finishes even if
    // the client goes away; its failures are logged (what it leaves expires, and photo objects
    // are retried by the worker), never answered: the erasure happened.
    let state = state.clone();
    let cleanup = tokio::spawn(async move { clean_up(&state, me, removed).await });
    if let Err(e) = cleanup.await {
        tracing::error!(error = %e, "erasure clean-up task failed");
    }
    Ok(())
}

/// The transaction: the account row is locked first, so anything a concurrent request would
/// add for the person (a session, a photo, a swipe, a résonance: all reference the row) waits
/// and then fails; everything is read inside it.
async fn remove_rows(state: &AppState, me: Uuid) -> Result<Removed, AppError> {
    let txn = state.db.begin().await?;
    let email_hash: Vec<u8> = txn
        .query_one(stmt(
            "SELECT email_hash FROM users WHERE id = $1 FOR UPDATE",
            vec![me.into()],
        ))
        .await?
        .ok_or_else(gone)?
        .try_get("", "email_hash")?;
    let column = |rows: Vec<sea_orm::QueryResult>, name: &str| -> Vec<Uuid> {
        rows.iter()
            .filter_map(|row| row.try_get::<Uuid>("", name).ok())
            .collect()
    };
    let sessions = column(
        txn.query_all(stmt(
            "SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL",
            vec![me.into()],
        ))
        .await?,
        "id",
    )
    .into_iter()
    .map(|id| (id, me))
    .collect();
    let photos: Vec<String> = txn
        .query_all(stmt(
            "DELETE FROM photos WHERE user_id = $1 RETURNING storage_key",
            vec![me.into()],
        ))
        .await?
        .iter()
        .filter_map(|row| row.try_get::<String>("", "storage_key").ok())
        .collect();
    crate::photos::service::schedule_object_deletions(&txn, &photos).await?;
    let resonances = Pair::find_by_statement(stmt(
        "SELECT id, user_a, user_b FROM resonances
         WHERE (user_a = $1 OR user_b = $1) AND ended_at IS NULL ORDER BY created_at",
        vec![me.into()],
    ))
    .all(&txn)
    .await?;
    let liked = column(
        txn.query_all(stmt(
            "SELECT target_id FROM swipes WHERE swiper_id = $1 AND action = 'like'",
            vec![me.into()],
        ))
        .await?,
        "target_id",
    );
    for (sql, value) in [
        (
            "DELETE FROM magic_links WHERE email_hash = $1",
            sea_orm::Value::from(email_hash.clone()),
        ),
        // Reports stay for the moderators (others' safety); what this person wrote goes, and
        // the cascade cuts their id from them.
        (
            "UPDATE reports SET details = NULL, evidence_ciphertext = NULL WHERE reporter_id = $1",
            me.into(),
        ),
        // The kept messages name both people; nobody can act on an erased account any more.
        (
            "UPDATE reports SET evidence_ciphertext = NULL,
               status = CASE WHEN status IN ('open', 'in_review') THEN 'dismissed' ELSE status END,
               note = CASE WHEN status IN ('open', 'in_review')
                        THEN concat_ws(' ', note, '[account erased]') ELSE note END,
               updated_at = now()
             WHERE reported_user_id = $1",
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
    Ok(Removed {
        email_hash,
        sessions,
        photos,
        resonances,
        liked,
    })
}

/// Logs a clean-up step's failure and goes on.
fn logged<T>(step: &str, result: Result<T, AppError>) {
    if let Err(e) = result {
        tracing::error!(error = %e, step, "erasure clean-up step failed");
    }
}

async fn clean_up(state: &AppState, me: Uuid, removed: Removed) {
    logged(
        "revocations",
        crate::auth::service::announce_revoked(state, &removed.sessions, ERASED).await,
    );
    logged(
        "photo objects",
        crate::photos::service::purge_objects(state, &removed.photos).await,
    );
    for pair in &removed.resonances {
        logged(
            "conversation",
            crate::resonances::service::close_conversation(
                state,
                pair.id,
                [pair.user_a, pair.user_b],
            )
            .await,
        );
        logged(
            "partner event",
            state
                .events
                .publish(
                    pair.other(me),
                    "resonance.removed",
                    json!({"resonance_id": pair.id}),
                )
                .await,
        );
    }
    for person in &removed.liked {
        logged(
            "likes event",
            crate::resonances::service::notify_likes_changed(state, *person).await,
        );
    }
    // The last event of the person's open streams (they end after it), then their buffer.
    logged(
        "own event",
        state.events.publish(me, "account.erased", json!({})).await,
    );
    logged("event buffer", state.events.forget(me).await);
    logged("keys", sweep_keys(state, me, &removed.email_hash).await);
}

/// Deletes the person's own keys: presence, last seen, rate-limit counters (named by their id,
/// or by their email's blind index) and stored idempotent answers. One `SCAN` finds the keys
/// whose name holds the id; only those of these shapes go (another person's key may hold the
/// id too, in an idempotency key they chose). The erasure mark stays.
async fn sweep_keys(state: &AppState, me: Uuid, email_hash: &[u8]) -> Result<(), AppError> {
    let prefix = state.keys.prefix();
    let id = me.to_string();
    let own_answers = state.keys.idempotency(&format!("user:{me}"), "");
    let rate_limits = format!("{prefix}rl:");
    let pattern = format!("{}*{id}*", glob_escape(prefix));
    let found: Vec<String> = state
        .redis
        .next()
        .scan_buffered(pattern, Some(1000), None::<ScanType>)
        .map_ok(|key| key.into_string().unwrap_or_default())
        .try_collect()
        .await?;
    let mut keys: Vec<String> = found
        .into_iter()
        .filter(|k| {
            k.starts_with(&own_answers)
                || k.strip_prefix(&rate_limits)
                    .is_some_and(|rest| rest.split(':').skip(1).any(|part| part == id))
        })
        .collect();
    keys.push(state.keys.chat_presence(&me));
    keys.push(state.keys.chat_last_seen(&me));
    let subject = crate::auth::service::account_subject(email_hash);
    for limit in ["login_per_account", "magic_link_per_email"] {
        keys.push(state.keys.rate_limit(limit, &subject));
    }
    for chunk in keys.chunks(500) {
        let _: i64 = state.redis.del(chunk.to_vec()).await?;
    }
    Ok(())
}

/// `text` matching itself literally in a `SCAN MATCH` glob.
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
    ended_by: Option<Uuid>,
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
    let times = state
        .db
        .query_one(stmt(
            "SELECT last_active_at, email_verified_at FROM users WHERE id = $1",
            vec![me.into()],
        ))
        .await?
        .ok_or_else(gone)?;
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
        "SELECT id, user_a, user_b, created_at, ended_at, ended_by, ended_reason FROM resonances
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
        // Why someone else ended it (a block, their ban) is theirs: the app never says.
        ended_reason: r.ended_reason.filter(|_| r.ended_by == Some(me)),
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
         WHERE target_id = $1
           AND action IN ('warn', 'suspend', 'ban', 'reinstate', 'force_logout')
         ORDER BY created_at",
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
            messages.extend(page.into_iter().map(|m| ChatMessage::of(pair.id, m)));
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
        last_active_at: times.try_get("", "last_active_at")?,
        email_verified_at: times.try_get("", "email_verified_at")?,
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
