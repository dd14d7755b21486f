//! Table `profiles`. See the `migration` crate for constraints and indexes.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "profiles")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    pub display_name: Option<String>,
    pub birthdate: Option<Date>,
    /// `woman`, `man` or `non_binary`.
    pub gender: Option<String>,
    /// AES-256-GCM ciphertext of the free-text bio.
    pub bio_ciphertext: Option<Vec<u8>>,
    pub intentions: Vec<String>,
    /// The PostGIS `location` column is generated from these two; it is not mapped here.
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
