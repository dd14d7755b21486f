//! Table `reports`. See the `migration` crate for constraints and indexes.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "reports")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub reporter_id: Option<Uuid>,
    pub reported_user_id: Option<Uuid>,
    pub reason: String,
    pub details: Option<String>,
    pub resonance_id: Option<Uuid>,
    pub photo_id: Option<Uuid>,
    /// `open`, `in_review`, `actioned` or `dismissed`.
    pub status: String,
    pub assignee_id: Option<Uuid>,
    pub note: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
