//! Extensions: PostGIS for distances on the globe, `btree_gist` so a GiST index can hold plain
//! columns beside the location (discovery filters on both).
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            "CREATE EXTENSION IF NOT EXISTS postgis;
             CREATE EXTENSION IF NOT EXISTS btree_gist;",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            "DROP EXTENSION IF EXISTS btree_gist; DROP EXTENSION IF EXISTS postgis;",
        )
        .await
    }
}
