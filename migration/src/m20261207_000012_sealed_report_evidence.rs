//! Reports keep what moderators need after the chat forgets it (messages live 24 hours): the
//! conversation's last messages when the report names a résonance, sealed like every free text
//! people write (AES-256-GCM, `reports.evidence:<id>`). Indexes: the reports a person filed
//! (export, erasure), and the moderators' queue (open and in review, oldest first).
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            "ALTER TABLE reports ADD COLUMN evidence_ciphertext bytea;
             CREATE INDEX reports_reporter_idx ON reports (reporter_id);
             CREATE INDEX reports_queue_idx ON reports (created_at, id)
               WHERE status IN ('open', 'in_review')",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            "DROP INDEX reports_queue_idx; DROP INDEX reports_reporter_idx;
             ALTER TABLE reports DROP COLUMN evidence_ciphertext",
        )
        .await
    }
}
