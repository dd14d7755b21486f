//! Table `discovery_state`: one row per person with a queue. See the migration.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "discovery_state")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    /// Bumped when the queue is rebuilt; cursors carry it.
    pub generation: i32,
    pub prepared_at: DateTimeUtc,
    /// The highest rank appended so far.
    pub last_rank: f64,
    /// No candidate is left beyond `last_rank`.
    pub exhausted: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
