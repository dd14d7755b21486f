//! `object_deletions`: photo objects whose rows are gone and that the object store still holds
//! (an account erasure, or a store that failed when a photo was deleted). Written in the same
//! transaction that deletes the rows, removed once the objects are gone; the worker retries what
//! is left every minute, so no object outlives its row for long, whatever failed.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            "CREATE TABLE object_deletions (
                 storage_key text PRIMARY KEY,
                 attempts    integer NOT NULL DEFAULT 0,
                 created_at  timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(manager, "DROP TABLE object_deletions").await
    }
}
