//! Swipes and résonances (mutual likes).
//!
//! **Exactly one résonance per pair.** A swipe runs in a transaction that first takes a
//! transaction-scoped advisory lock on the *unordered* pair, so two likes arriving at the same
//! instant (on any API instances) are serialised: the second sees the first's like and creates
//! the résonance; the unique `(user_a, user_b)` key makes a duplicate impossible anyway.
//!
//! **Limits** (Redis): `swipes_per_minute` per person; `likes_per_day` per person, a budget that
//! resets at 00:00 UTC. Repeating the same swipe changes nothing and is not counted again.
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, TransactionTrait};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::{cursor, error::AppError, profiles::types::PublicProfile, state::AppState};

/// `like` or `pass`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Like,
    Pass,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Like => "like",
            Action::Pass => "pass",
        }
    }
}

/// What a swipe did.
pub struct SwipeOutcome {
    /// False when the same swipe already existed (nothing changed).
    pub changed: bool,
    pub swiped_at: DateTime<Utc>,
    /// The résonance with this person, if there is one now.
    pub resonance: Option<(Uuid, DateTime<Utc>)>,
    /// Whether this swipe created it.
    pub resonance_created: bool,
}

fn stmt(sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    Statement::from_sql_and_values(sea_orm::DatabaseBackend::Postgres, sql, values)
}

fn pair(a: Uuid, b: Uuid) -> (Uuid, Uuid) {
    if a < b {
        (a, b)
    } else {
        (b, a)
    }
}

/// Seconds until the next 00:00 UTC, and the day's key.
fn day_window(now: DateTime<Utc>) -> (String, u64) {
    let tomorrow = (now.date_naive() + chrono::Days::new(1))
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc();
    (
        now.format("%Y%m%d").to_string(),
        (tomorrow - now).num_seconds().max(1) as u64,
    )
}

#[derive(FromQueryResult)]
struct Existing {
    action: String,
    created_at: DateTime<Utc>,
}

#[derive(FromQueryResult)]
struct ResonanceRow {
    id: Uuid,
    created_at: DateTime<Utc>,
}

/// `POST /v1/swipes`.
pub async fn swipe(
    state: &AppState,
    me: Uuid,
    target: Uuid,
    action: Action,
) -> Result<SwipeOutcome, AppError> {
    if me == target {
        return Err(AppError::invalid(
            "target_id",
            "self",
            "you cannot swipe yourself",
        ));
    }
    if !crate::profiles::service::is_visible(state, me, target).await? {
        return Err(AppError::NotFound("no visible person has this id"));
    }
    let existing = Existing::find_by_statement(stmt(
        "SELECT action, created_at FROM swipes WHERE swiper_id = $1 AND target_id = $2",
        vec![me.into(), target.into()],
    ))
    .one(&state.db)
    .await?;
    let repeat = existing
        .as_ref()
        .is_some_and(|e| e.action == action.as_str());
    if !repeat {
        state
            .limiter
            .hit("swipes_per_minute", &me.to_string())
            .await?;
        if action == Action::Like {
            let (day, ttl) = day_window(Utc::now());
            state
                .limiter
                .hit_window("likes_per_day", &format!("{me}:{day}"), ttl)
                .await?;
        }
    }

    let (a, b) = pair(me, target);
    let txn = state.db.begin().await?;
    txn.execute(stmt(
        "SELECT pg_advisory_xact_lock(hashtextextended($1::text || $2::text, 0))",
        vec![a.into(), b.into()],
    ))
    .await?;
    let swiped_at = if repeat {
        existing
            .as_ref()
            .map(|e| e.created_at)
            .unwrap_or_else(Utc::now)
    } else {
        let row = txn
            .query_one(stmt(
                "INSERT INTO swipes (swiper_id, target_id, action) VALUES ($1, $2, $3)
                 ON CONFLICT (swiper_id, target_id) DO UPDATE SET action = EXCLUDED.action, created_at = now()
                 RETURNING created_at",
                vec![me.into(), target.into(), action.as_str().into()],
            ))
            .await?
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("swipe upsert returned nothing")))?;
        row.try_get("", "created_at")?
    };
    let mut created = false;
    let mut resonance = ResonanceRow::find_by_statement(stmt(
        "SELECT id, created_at FROM resonances WHERE user_a = $1 AND user_b = $2 AND ended_at IS NULL",
        vec![a.into(), b.into()],
    ))
    .one(&txn)
    .await?;
    if action == Action::Like && resonance.is_none() {
        let liked_back = txn
            .query_one(stmt(
                "SELECT 1 AS one FROM swipes WHERE swiper_id = $1 AND target_id = $2 AND action = 'like'",
                vec![target.into(), me.into()],
            ))
            .await?
            .is_some();
        if liked_back {
            resonance = ResonanceRow::find_by_statement(stmt(
                // An ended résonance (unmatch, block) is never revived by old likes.
                "INSERT INTO resonances (id, user_a, user_b) VALUES ($1, $2, $3)
                 ON CONFLICT (user_a, user_b) DO NOTHING
                 RETURNING id, created_at",
                vec![Uuid::new_v4().into(), a.into(), b.into()],
            ))
            .one(&txn)
            .await?;
            created = resonance.is_some();
        }
    }
    txn.commit().await?;

    if created {
        if let Some(r) = &resonance {
            open_conversation(state, r.id, a, b).await?;
            for (to, other) in [(me, target), (target, me)] {
                state
                    .events
                    .publish(
                        to,
                        "resonance.created",
                        json!({"resonance_id": r.id, "user_id": other}),
                    )
                    .await?;
            }
            tracing::info!(resonance_id = %r.id, "résonance created");
        }
    }
    if !repeat {
        // My answer changes my likes-received list; a like changes theirs.
        notify_likes_changed(state, me).await?;
        if action == Action::Like && !created {
            notify_likes_changed(state, target).await?;
        }
    }
    Ok(SwipeOutcome {
        changed: !repeat,
        swiped_at,
        resonance: resonance.map(|r| (r.id, r.created_at)),
        resonance_created: created,
    })
}

pub(crate) async fn notify_likes_changed(state: &AppState, user: Uuid) -> Result<(), AppError> {
    let count = crate::discovery::likes::count(state, user).await?;
    state
        .events
        .publish(user, "likes.changed", json!({"count": count}))
        .await?;
    Ok(())
}

/// One of my résonances.
pub struct ResonanceItem {
    pub id: Uuid,
    pub other: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_activity_at: DateTime<Utc>,
    pub profile: PublicProfile,
}

#[derive(FromQueryResult)]
struct ListRow {
    id: Uuid,
    other: Uuid,
    created_at: DateTime<Utc>,
    last_activity_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
struct ListCursor {
    t: DateTime<Utc>,
    i: Uuid,
}

/// Active résonances of `me` with people still visible, newest first.
const LIST_SQL: &str = r#"
SELECT r.id, CASE WHEN r.user_a = $1 THEN r.user_b ELSE r.user_a END AS other, r.created_at, r.last_activity_at
FROM resonances r
JOIN users u ON u.id = CASE WHEN r.user_a = $1 THEN r.user_b ELSE r.user_a END
WHERE (r.user_a = $1 OR r.user_b = $1) AND r.ended_at IS NULL
  AND u.status <> 'banned'
  AND (r.created_at, r.id) < ($2, $3)
ORDER BY r.created_at DESC, r.id DESC
LIMIT $4
"#;

/// `GET /v1/resonances`.
pub async fn list(
    state: &AppState,
    me: Uuid,
    cursor_text: Option<&str>,
    limit: u64,
) -> Result<(Vec<ResonanceItem>, Option<String>), AppError> {
    let after = match cursor_text {
        Some(text) => cursor::decode::<ListCursor>(&state.cipher, "resonances", text)?,
        None => ListCursor {
            t: DateTime::<Utc>::MAX_UTC,
            i: Uuid::max(),
        },
    };
    let mut rows = ListRow::find_by_statement(stmt(
        LIST_SQL,
        vec![
            me.into(),
            after.t.into(),
            after.i.into(),
            ((limit + 1) as i64).into(),
        ],
    ))
    .all(&state.db)
    .await?;
    let next = cursor::paginate(&state.cipher, "resonances", &mut rows, limit, |last| {
        ListCursor {
            t: last.created_at,
            i: last.id,
        }
    });
    let ids: Vec<Uuid> = rows.iter().map(|r| r.other).collect();
    let mut cards = crate::profiles::cards::load(state, me, &ids).await?;
    let items = rows
        .into_iter()
        .filter_map(|r| {
            cards.remove(&r.other).map(|profile| ResonanceItem {
                id: r.id,
                other: r.other,
                created_at: r.created_at,
                last_activity_at: r.last_activity_at,
                profile,
            })
        })
        .collect();
    Ok((items, next))
}

/// Ends the active résonance between two people (unmatch or block): the row is marked ended, the
/// conversation's Redis keys are deleted, gateways are told to close it, and both people's
/// event streams get `resonance.removed` (no reason: silent for the other side). Returns the
/// ended résonance's id.
pub async fn end_between(
    state: &AppState,
    me: Uuid,
    other: Uuid,
    reason: &str,
) -> Result<Option<Uuid>, AppError> {
    let (a, b) = pair(me, other);
    let ended = ResonanceRow::find_by_statement(stmt(
        "UPDATE resonances SET ended_at = now(), ended_by = $3, ended_reason = $4
         WHERE user_a = $1 AND user_b = $2 AND ended_at IS NULL RETURNING id, created_at",
        vec![a.into(), b.into(), me.into(), reason.into()],
    ))
    .one(&state.db)
    .await?;
    let Some(ended) = ended else { return Ok(None) };
    close_conversation(state, ended.id, [a, b]).await?;
    for user in [me, other] {
        state
            .events
            .publish(user, "resonance.removed", json!({"resonance_id": ended.id}))
            .await?;
    }
    Ok(Some(ended.id))
}

/// Ends every active résonance of `user` for a moderation reason (a ban): each match gets
/// `resonance.removed` (no reason, as for an unmatch), and each conversation is deleted and
/// closed on the gateways. `by` is the moderator. Returns how many ended. A later reinstatement
/// does not bring them back.
pub async fn end_all_for(state: &AppState, user: Uuid, by: Uuid) -> Result<u64, AppError> {
    #[derive(FromQueryResult)]
    struct Ended {
        id: Uuid,
        user_a: Uuid,
        user_b: Uuid,
    }
    let ended = Ended::find_by_statement(stmt(
        "UPDATE resonances SET ended_at = now(), ended_by = $2, ended_reason = 'moderation'
         WHERE (user_a = $1 OR user_b = $1) AND ended_at IS NULL RETURNING id, user_a, user_b",
        vec![user.into(), by.into()],
    ))
    .all(&state.db)
    .await?;
    for row in &ended {
        close_conversation(state, row.id, [row.user_a, row.user_b]).await?;
        let other = if row.user_a == user {
            row.user_b
        } else {
            row.user_a
        };
        state
            .events
            .publish(other, "resonance.removed", json!({"resonance_id": row.id}))
            .await?;
    }
    Ok(ended.len() as u64)
}

/// Records a new conversation's members for the chat gateways (complete history from `0-0`).
async fn open_conversation(
    state: &AppState,
    resonance_id: Uuid,
    a: Uuid,
    b: Uuid,
) -> Result<(), AppError> {
    use fred::prelude::LuaInterface;
    let _: String = state
        .redis
        .eval(
            entities::chat::META_RESTORE,
            vec![
                state.keys.chat_meta(&resonance_id),
                state.keys.chat_closed(&resonance_id),
            ],
            vec![a.to_string(), b.to_string(), "0-0".to_owned()],
        )
        .await?;
    Ok(())
}

/// Deletes a conversation's messages and metadata, leaves a tombstone so no gateway restores
/// it, and tells every gateway to close it.
pub(crate) async fn close_conversation(
    state: &AppState,
    resonance_id: Uuid,
    members: [Uuid; 2],
) -> Result<(), AppError> {
    use fred::prelude::{KeysInterface, PubsubInterface};
    // Every key of a conversation has a known name (no SCAN of the keyspace).
    let mut keys: Vec<String> = vec![
        state.keys.chat_stream(&resonance_id),
        state.keys.chat_meta(&resonance_id),
        state.keys.chat_clients(&resonance_id),
        state.keys.chat_reads(&resonance_id),
    ];
    // The tombstone first: a gateway restoring the members (it read PostgreSQL just before the
    // change) is refused from this instant on; then everything else goes.
    let tombstone = state.keys.chat_closed(&resonance_id);
    let _: () = state
        .redis
        .set(
            &tombstone,
            "1",
            Some(fred::types::Expiration::EX(86_400)),
            None,
            false,
        )
        .await?;
    keys.retain(|k| *k != tombstone);
    keys.sort();
    keys.dedup();
    let _: i64 = state.redis.del(keys).await?;
    let _: i64 = state
        .redis
        .next()
        .publish(
            state.keys.conversations_channel(),
            json!({"resonance_id": resonance_id, "state": "closed", "members": members})
                .to_string(),
        )
        .await?;
    Ok(())
}

/// `DELETE /v1/resonances/{id}`: unmatch.
pub async fn unmatch(state: &AppState, me: Uuid, resonance_id: Uuid) -> Result<(), AppError> {
    #[derive(FromQueryResult)]
    struct Pair {
        user_a: Uuid,
        user_b: Uuid,
    }
    let found = Pair::find_by_statement(stmt(
        "SELECT user_a, user_b FROM resonances WHERE id = $1 AND ended_at IS NULL AND (user_a = $2 OR user_b = $2)",
        vec![resonance_id.into(), me.into()],
    ))
    .one(&state.db)
    .await?
    .ok_or(AppError::NotFound("no active résonance of yours has this id"))?;
    let other = if found.user_a == me {
        found.user_b
    } else {
        found.user_a
    };
    end_between(state, me, other, "unmatch").await?;
    Ok(())
}

/// One chat message as the history returns it (the gateway's `message` frame, without `type`).
pub struct StoredMessage {
    pub message_id: String,
    pub sender_id: Uuid,
    pub client_id: String,
    pub body: String,
    pub sent_at: DateTime<Utc>,
}

/// A chat stream entry (fields `s`, `c`, `b`, `t`: see `entities::chat`) as a message; `None`
/// for an entry that is not one.
pub(crate) fn stored_message(
    id: String,
    mut fields: std::collections::HashMap<String, String>,
) -> Option<StoredMessage> {
    Some(StoredMessage {
        message_id: id,
        sender_id: fields.get("s")?.parse().ok()?,
        client_id: fields.remove("c").unwrap_or_default(),
        body: fields.remove("b").unwrap_or_default(),
        sent_at: DateTime::parse_from_rfc3339(fields.get("t")?)
            .ok()?
            .with_timezone(&Utc),
    })
}

/// `GET /v1/resonances/{id}/messages`: what the chat store holds after `after`, oldest first.
pub async fn history(
    state: &AppState,
    me: Uuid,
    resonance_id: Uuid,
    after: Option<&str>,
    limit: u64,
) -> Result<(Vec<StoredMessage>, Option<String>), AppError> {
    use entities::chat::{StreamId, MESSAGE_TTL_MS};
    use fred::prelude::StreamsInterface;
    let after = match after {
        None => StreamId::ZERO,
        Some(text) => text
            .parse::<StreamId>()
            .map_err(|()| AppError::BadRequest {
                detail: "`after` is a message id (`<ms>-<seq>`)".into(),
                field: Some("after".into()),
            })?,
    };
    let member = state
        .db
        .query_one(stmt(
            "SELECT 1 AS one FROM resonances WHERE id = $1 AND ended_at IS NULL AND (user_a = $2 OR user_b = $2)",
            vec![resonance_id.into(), me.into()],
        ))
        .await?
        .is_some();
    if !member {
        return Err(AppError::NotFound(
            "no active résonance of yours has this id",
        ));
    }
    // Nothing older than 24 h is ever returned, even before the next write trims it.
    let horizon = StreamId {
        ms: (Utc::now().timestamp_millis().max(0) as u64).saturating_sub(MESSAGE_TTL_MS),
        seq: 0,
    };
    let start = if horizon > after {
        horizon.to_string()
    } else {
        format!("({after}")
    };
    let entries: Vec<(String, std::collections::HashMap<String, String>)> = state
        .redis
        .xrange(
            state.keys.chat_stream(&resonance_id),
            start,
            "+",
            Some(limit + 1),
        )
        .await?;
    let more = entries.len() as u64 > limit;
    let items: Vec<StoredMessage> = entries
        .into_iter()
        .take(limit as usize)
        .filter_map(|(id, fields)| stored_message(id, fields))
        .collect();
    let next = if more {
        items.last().map(|m| m.message_id.clone())
    } else {
        None
    };
    Ok((items, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_like_budget_resets_at_midnight_utc() {
        let at = DateTime::parse_from_rfc3339("2026-11-24T23:59:30Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(day_window(at), ("20261124".to_owned(), 30));
    }
}
