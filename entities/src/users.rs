//! Table `users`. See the `migration` crate for constraints and indexes.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// HMAC-SHA256 of the normalised email (blind index): equality lookups without plaintext.
    #[sea_orm(unique)]
    pub email_hash: Vec<u8>,
    /// AES-256-GCM ciphertext of the email, prefixed with its key id.
    pub email_ciphertext: Vec<u8>,
    /// `user`, `moderator` or `admin`.
    pub role: String,
    /// `active`, `suspended` or `banned`.
    pub status: String,
    pub suspended_until: Option<DateTimeUtc>,
    pub email_verified_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub last_active_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
