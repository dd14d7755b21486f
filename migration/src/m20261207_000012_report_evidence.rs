//! Reports keep what moderators need after the chat forgets it (messages live 24 hours): the
//! conversation's last messages when the report names a résonance (`evidence`). An index finds
//! the reports a person filed (export, erasure).
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            "ALTER TABLE reports ADD COLUMN evidence jsonb;
             CREATE INDEX reports_reporter_idx ON reports (reporter_id)",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            "DROP INDEX reports_reporter_idx; ALTER TABLE reports DROP COLUMN evidence",
        )
        .await
    }
}
