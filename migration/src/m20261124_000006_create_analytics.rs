//! Anonymous analytics aggregates: counts per metric and time bucket, never a user id. The worker
//! rolls raw events up into these rows; erasing an account leaves them untouched by design.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            r#"
CREATE TABLE analytics_aggregates (
    metric       text NOT NULL,
    bucket       text NOT NULL CHECK (bucket IN ('hour', 'day')),
    bucket_start timestamptz NOT NULL,
    dimension    text NOT NULL DEFAULT '',
    value        bigint NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (metric, bucket, bucket_start, dimension)
);
"#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(manager, "DROP TABLE analytics_aggregates;").await
    }
}
