//! Table `discovery_queue`: a person's ranked candidates. See the migration.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "discovery_queue")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    /// Ascending: best first. Fractional ranks slot fresh likers between existing ones.
    #[sea_orm(primary_key, auto_increment = false)]
    pub rank: f64,
    pub candidate_id: Uuid,
    pub score: f32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
