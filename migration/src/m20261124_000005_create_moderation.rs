//! Reports and the moderation audit trail.
//!
//! - `reports`: a person reports another (optionally about a conversation or a photo); the
//!   reporter link is cut (`SET NULL`) if the reporter erases their account, the report stays.
//! - `moderation_actions`: every moderator decision, append-only. Actor and target are plain ids
//!   without foreign keys so the trail survives account erasure (it then names nobody).
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            r#"
CREATE TABLE reports (
    id               uuid PRIMARY KEY,
    reporter_id      uuid REFERENCES users(id) ON DELETE SET NULL,
    reported_user_id uuid REFERENCES users(id) ON DELETE SET NULL,
    reason           text NOT NULL CHECK (reason IN ('spam', 'fake_profile', 'harassment', 'inappropriate_content', 'underage', 'scam', 'other')),
    details          text,
    resonance_id     uuid,
    photo_id         uuid,
    status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'in_review', 'actioned', 'dismissed')),
    assignee_id      uuid REFERENCES users(id) ON DELETE SET NULL,
    note             text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reports_status_idx ON reports (status, created_at);
CREATE INDEX reports_reported_idx ON reports (reported_user_id);

CREATE TABLE moderation_actions (
    id         uuid PRIMARY KEY,
    actor_id   uuid,
    target_id  uuid,
    action     text NOT NULL,
    reason     text,
    until      timestamptz,
    report_id  uuid,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX moderation_actions_target_idx ON moderation_actions (target_id, created_at DESC);
CREATE INDEX moderation_actions_created_idx ON moderation_actions (created_at DESC);
"#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            "DROP TABLE moderation_actions; DROP TABLE reports;",
        )
        .await
    }
}
