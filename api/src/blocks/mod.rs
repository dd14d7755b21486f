//! Blocks: `POST /v1/blocks`, `GET /v1/blocks`, `DELETE /v1/blocks/{user_id}`.
//!
//! A block is one-way in the table and two-way in effect: neither person sees the other in
//! discovery, profiles, likes or résonances again, and any résonance between them ends (its
//! conversation is deleted). Unblocking does not restore the résonance.
use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{
    param::{Path, Query},
    payload::Json,
    types::Example,
    ApiResponse, Object, OpenApi,
};
use sea_orm::{ConnectionTrait, FromQueryResult, Statement};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    auth::extract::BearerAuth,
    cursor,
    error::{ApiError, AppError},
    error_set,
    openapi::ApiTags,
    state::AppState,
};

error_set!(BlockErrors: [400, 401, 403, 404, 413, 422]);
error_set!(ListErrors: [400, 401, 403]);
error_set!(UnblockErrors: [400, 401, 403, 404]);

/// Someone to block.
#[derive(Object)]
#[oai(example, deny_unknown_fields)]
pub struct BlockRequest {
    pub user_id: Uuid,
}

impl Example for BlockRequest {
    fn example() -> Self {
        Self {
            user_id: Uuid::nil(),
        }
    }
}

/// Someone I blocked. No profile is shown: blocking is about never seeing them again.
#[derive(Object)]
#[oai(example)]
pub struct Block {
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
}

impl Example for Block {
    fn example() -> Self {
        Self {
            user_id: Uuid::nil(),
            created_at: DateTime::from_timestamp(1_795_564_412, 0).unwrap_or_default(),
        }
    }
}

/// People I blocked, most recent first.
#[derive(Object)]
#[oai(example)]
pub struct BlockPage {
    pub items: Vec<Block>,
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

impl Example for BlockPage {
    fn example() -> Self {
        Self {
            items: vec![Block::example()],
            next_cursor: None,
        }
    }
}

#[derive(ApiResponse)]
pub enum Blocked {
    /// Blocked now.
    #[oai(status = 201)]
    Created(Json<Block>),
    /// Already blocked; nothing changed.
    #[oai(status = 200)]
    Existing(Json<Block>),
}

#[derive(ApiResponse)]
pub enum Unblocked {
    /// Unblocked.
    #[oai(status = 204)]
    NoContent,
}

#[derive(FromQueryResult)]
struct Row {
    blocked_id: Uuid,
    created_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
struct ListCursor {
    t: DateTime<Utc>,
    u: Uuid,
}

fn stmt(sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    Statement::from_sql_and_values(sea_orm::DatabaseBackend::Postgres, sql, values)
}

/// Blocks `other` for `me`; returns (row, created now).
pub async fn block(state: &AppState, me: Uuid, other: Uuid) -> Result<(Block, bool), AppError> {
    if me == other {
        return Err(AppError::invalid(
            "user_id",
            "self",
            "you cannot block yourself",
        ));
    }
    let exists = state
        .db
        .query_one(stmt(
            "SELECT 1 AS one FROM users WHERE id = $1",
            vec![other.into()],
        ))
        .await?
        .is_some();
    if !exists {
        return Err(AppError::NotFound("no person has this id"));
    }
    let inserted = Row::find_by_statement(stmt(
        "INSERT INTO blocks (blocker_id, blocked_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING blocked_id, created_at",
        vec![me.into(), other.into()],
    ))
    .one(&state.db)
    .await?;
    let created = inserted.is_some();
    let row = match inserted {
        Some(row) => row,
        None => Row::find_by_statement(stmt(
            "SELECT blocked_id, created_at FROM blocks WHERE blocker_id = $1 AND blocked_id = $2",
            vec![me.into(), other.into()],
        ))
        .one(&state.db)
        .await?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("block vanished")))?,
    };
    crate::resonances::service::end_between(state, me, other, "block").await?;
    // Neither queue may hold the other any more (the read-time check would hide them anyway).
    state
        .db
        .execute(stmt(
            "DELETE FROM discovery_queue WHERE (user_id = $1 AND candidate_id = $2) OR (user_id = $2 AND candidate_id = $1)",
            vec![me.into(), other.into()],
        ))
        .await?;
    Ok((
        Block {
            user_id: row.blocked_id,
            created_at: row.created_at,
        },
        created,
    ))
}

pub struct BlocksApi;

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Blocks")]
impl BlocksApi {
    /// Block someone
    ///
    /// From now on neither of us sees the other anywhere: discovery, profiles, likes,
    /// résonances, chat and events. Any résonance between us ends and its conversation is
    /// deleted. Blocking twice is harmless (200).
    #[oai(path = "/blocks", method = "post", operation_id = "block")]
    async fn block(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        body: Json<BlockRequest>,
    ) -> Result<Blocked, ApiError<BlockErrors>> {
        let (block, created) = block(&state, auth.0.user_id, body.0.user_id).await?;
        Ok(if created {
            Blocked::Created(Json(block))
        } else {
            Blocked::Existing(Json(block))
        })
    }

    /// People I blocked
    #[oai(path = "/blocks", method = "get", operation_id = "listBlocks")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// `next_cursor` from the previous page.
        cursor: Query<Option<String>>,
        /// 1 to 100 (default 50).
        limit: Query<Option<u32>>,
    ) -> Result<Json<BlockPage>, ApiError<ListErrors>> {
        let limit = cursor::limit(limit.0, 50, 100)?;
        let after = match cursor.0.as_deref() {
            Some(text) => cursor::decode::<ListCursor>(&state.cipher, "blocks", text)?,
            None => ListCursor {
                t: DateTime::<Utc>::MAX_UTC,
                u: Uuid::max(),
            },
        };
        let mut rows = Row::find_by_statement(stmt(
            "SELECT blocked_id, created_at FROM blocks WHERE blocker_id = $1 AND (created_at, blocked_id) < ($2, $3)
             ORDER BY created_at DESC, blocked_id DESC LIMIT $4",
            vec![auth.0.user_id.into(), after.t.into(), after.u.into(), ((limit + 1) as i64).into()],
        ))
        .all(&state.db)
        .await?;
        let next_cursor = cursor::paginate(&state.cipher, "blocks", &mut rows, limit, |last| {
            ListCursor {
                t: last.created_at,
                u: last.blocked_id,
            }
        });
        Ok(Json(BlockPage {
            items: rows
                .into_iter()
                .map(|r| Block {
                    user_id: r.blocked_id,
                    created_at: r.created_at,
                })
                .collect(),
            next_cursor,
        }))
    }

    /// Unblock someone
    ///
    /// They may appear again in discovery; an ended résonance does not come back. 404 if I had
    /// not blocked them.
    #[oai(path = "/blocks/:user_id", method = "delete", operation_id = "unblock")]
    async fn unblock(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        user_id: Path<Uuid>,
    ) -> Result<Unblocked, ApiError<UnblockErrors>> {
        let done = state
            .db
            .execute(stmt(
                "DELETE FROM blocks WHERE blocker_id = $1 AND blocked_id = $2",
                vec![auth.0.user_id.into(), user_id.0.into()],
            ))
            .await?;
        if done.rows_affected() == 0 {
            return Err(AppError::NotFound("you have not blocked this person").into());
        }
        Ok(Unblocked::NoContent)
    }
}
