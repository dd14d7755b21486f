//! Discovery queues: each generation's ranks now start at `generation × 10,000,000` (see
//! `api::discovery::service::generation_base`), so a page never walks the dead entries of an
//! older generation. Queues are a cache the worker and the first page rebuild: existing ones
//! (ranks from 1) are dropped rather than renumbered.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(manager, "TRUNCATE discovery_queue, discovery_state").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(manager, "TRUNCATE discovery_queue, discovery_state").await
    }
}
