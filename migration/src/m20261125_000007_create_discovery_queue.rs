//! Discovery: per-person candidate queues and the index the preparation query walks.
//!
//! - `discovery_queue`: for each person, candidates in rank order (`rank` ascending = best first).
//!   Pages walk the primary key in rank order and re-check every candidate at read time. Ranks
//!   are `double precision` so fresh likers can be slotted between two ranks without moving
//!   anyone (a cursor is "the last rank I saw").
//! - `discovery_state`: the queue's generation (a cursor from an older generation is refused),
//!   when it was prepared, the last rank appended, and whether the pool is exhausted.
//! - `profiles_discovery_gist`: a composite GiST index (`btree_gist`) on location, gender and
//!   birthdate, partial on complete profiles, so the radius search rejects rows on the index leaf.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            r#"
CREATE TABLE discovery_state (
    user_id     uuid PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    generation  integer NOT NULL DEFAULT 1,
    prepared_at timestamptz NOT NULL DEFAULT now(),
    last_rank   double precision NOT NULL DEFAULT 0,
    exhausted   boolean NOT NULL DEFAULT false
);

CREATE TABLE discovery_queue (
    user_id      uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    rank         double precision NOT NULL,
    candidate_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    score        real NOT NULL,
    PRIMARY KEY (user_id, rank),
    UNIQUE (user_id, candidate_id)
);
CREATE INDEX discovery_queue_candidate_idx ON discovery_queue (candidate_id);

CREATE INDEX profiles_discovery_gist ON profiles USING gist (location, gender, birthdate)
    WHERE location IS NOT NULL AND display_name IS NOT NULL AND birthdate IS NOT NULL
      AND gender IS NOT NULL AND cardinality(intentions) > 0;
CREATE INDEX swipes_swiper_created_idx ON swipes (swiper_id, created_at DESC);
CREATE INDEX blocks_created_idx ON blocks (blocker_id, created_at DESC);
CREATE INDEX resonances_user_a_created_idx ON resonances (user_a, created_at DESC) WHERE ended_at IS NULL;
CREATE INDEX resonances_user_b_created_idx ON resonances (user_b, created_at DESC) WHERE ended_at IS NULL;
"#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            "DROP INDEX resonances_user_b_created_idx; DROP INDEX resonances_user_a_created_idx;
             DROP INDEX blocks_created_idx; DROP INDEX swipes_swiper_created_idx;
             DROP INDEX profiles_discovery_gist; DROP TABLE discovery_queue; DROP TABLE discovery_state;",
        )
        .await
    }
}
