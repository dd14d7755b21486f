//! Likes received: people who liked me and whom I have not answered (a pass or a like answers;
//! a like makes a résonance). People in incognito who liked me appear here: liking someone is
//! consenting to be seen by them.
use chrono::{DateTime, Utc};
use sea_orm::{FromQueryResult, Statement};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{cursor, error::AppError, profiles::types::PublicProfile, state::AppState};

/// Likes to `$1` still waiting for an answer, from people who may still be seen.
const WAITING: &str = "FROM swipes l
JOIN users u ON u.id = l.swiper_id
WHERE l.target_id = $1 AND l.action = 'like'
  AND (u.status = 'active' OR (u.status = 'suspended' AND u.suspended_until <= now()))
  AND NOT EXISTS (SELECT 1 FROM swipes m WHERE m.swiper_id = $1 AND m.target_id = l.swiper_id)
  AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = $1 AND b.blocked_id = l.swiper_id)
  AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = l.swiper_id AND b.blocked_id = $1)";

fn page_sql() -> String {
    format!(
        "SELECT l.swiper_id, l.created_at {WAITING}
           AND (l.created_at, l.swiper_id) < ($2, $3)
         ORDER BY l.created_at DESC, l.swiper_id DESC
         LIMIT $4"
    )
}

#[derive(FromQueryResult)]
struct Row {
    swiper_id: Uuid,
    created_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
struct Cursor {
    t: DateTime<Utc>,
    u: Uuid,
}

/// A page of likes, newest first: (card, liked at), and the next cursor.
pub async fn page(
    state: &AppState,
    me: Uuid,
    cursor_text: Option<&str>,
    limit: u64,
) -> Result<(Vec<(PublicProfile, DateTime<Utc>)>, Option<String>), AppError> {
    let after = match cursor_text {
        Some(text) => cursor::decode::<Cursor>(&state.cipher, "likes", text)?,
        None => Cursor {
            t: DateTime::<Utc>::MAX_UTC,
            u: Uuid::max(),
        },
    };
    let stmt = Statement::from_sql_and_values(
        sea_orm::DatabaseBackend::Postgres,
        page_sql(),
        [
            me.into(),
            after.t.into(),
            after.u.into(),
            ((limit + 1) as i64).into(),
        ],
    );
    let mut rows = Row::find_by_statement(stmt).all(&state.db).await?;
    let next = cursor::paginate(&state.cipher, "likes", &mut rows, limit, |last| Cursor {
        t: last.created_at,
        u: last.swiper_id,
    });
    let ids: Vec<Uuid> = rows.iter().map(|r| r.swiper_id).collect();
    let mut cards = crate::profiles::cards::load(state, me, &ids).await?;
    let items = rows
        .into_iter()
        .filter_map(|r| cards.remove(&r.swiper_id).map(|c| (c, r.created_at)))
        .collect();
    Ok((items, next))
}

/// How many people currently wait for my answer (for `likes.changed` events).
pub async fn count(state: &AppState, me: Uuid) -> Result<i64, AppError> {
    use sea_orm::ConnectionTrait;
    let stmt = Statement::from_sql_and_values(
        sea_orm::DatabaseBackend::Postgres,
        format!("SELECT count(*) AS n {WAITING}"),
        [me.into()],
    );
    let row = state.db.query_one(stmt).await?;
    Ok(row
        .and_then(|r| r.try_get::<i64>("", "n").ok())
        .unwrap_or(0))
}
