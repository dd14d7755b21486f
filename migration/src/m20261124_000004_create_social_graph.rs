//! Swipes, résonances and blocks.
//!
//! - `swipes`: one row per (swiper, target); a later swipe replaces the earlier one.
//! - `resonances`: one row per *unordered* pair, stored with `user_a < user_b` so the unique key
//!   makes "created exactly once" a database guarantee even when both people like each other at
//!   the same instant on different API instances. An unmatch sets `ended_at` (the row stays so the
//!   pair is not matched again by the old likes).
//! - `blocks`: directed; a block in either direction hides the two people from each other.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            r#"
CREATE TABLE swipes (
    swiper_id  uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    target_id  uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    action     text NOT NULL CHECK (action IN ('like', 'pass')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (swiper_id, target_id),
    CHECK (swiper_id <> target_id)
);
CREATE INDEX swipes_target_like_idx ON swipes (target_id, created_at DESC) WHERE action = 'like';

CREATE TABLE resonances (
    id           uuid PRIMARY KEY,
    user_a       uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    user_b       uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_activity_at timestamptz NOT NULL DEFAULT now(),
    ended_at     timestamptz,
    ended_by     uuid,
    ended_reason text CHECK (ended_reason IN ('unmatch', 'block', 'moderation')),
    CHECK (user_a < user_b),
    UNIQUE (user_a, user_b)
);
CREATE INDEX resonances_user_b_idx ON resonances (user_b) WHERE ended_at IS NULL;

CREATE TABLE blocks (
    blocker_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    blocked_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (blocker_id, blocked_id),
    CHECK (blocker_id <> blocked_id)
);
CREATE INDEX blocks_blocked_idx ON blocks (blocked_id);
"#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            "DROP TABLE blocks; DROP TABLE resonances; DROP TABLE swipes;",
        )
        .await
    }
}
