//! Indexes for the analytics roll-up (which reads only the rows since its last bucket) and for
//! "recently active" queries: BRIN on creation times (rows arrive in time order, so a BRIN index
//! is a few pages and costs almost nothing to keep up), a partial btree on when résonances
//! ended, and a btree on `users.last_active_at` (written at most every ten minutes a person).
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            "CREATE INDEX swipes_created_brin ON swipes USING brin (created_at);
             CREATE INDEX resonances_created_brin ON resonances USING brin (created_at);
             CREATE INDEX resonances_ended_idx ON resonances (ended_at) WHERE ended_at IS NOT NULL;
             CREATE INDEX users_created_brin ON users USING brin (created_at);
             CREATE INDEX users_last_active_idx ON users (last_active_at);
             CREATE INDEX reports_created_brin ON reports USING brin (created_at)",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            "DROP INDEX swipes_created_brin; DROP INDEX resonances_created_brin;
             DROP INDEX resonances_ended_idx; DROP INDEX users_created_brin;
             DROP INDEX users_last_active_idx; DROP INDEX reports_created_brin",
        )
        .await
    }
}
