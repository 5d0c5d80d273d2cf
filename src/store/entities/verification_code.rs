use sea_orm::entity::prelude::*;

/// A pending verification code, stored only as a hash. `owner_id` is the user (contact email
/// and phone) or the OTP authenticator it verifies; `purpose` says which.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "verification_codes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub owner_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub purpose: String,
    pub user_id: String,
    pub code_hash: String,
    pub expires_at: i64,
    pub failed_attempts: i32,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
