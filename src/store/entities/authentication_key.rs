use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "authentication_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: String,
    /// `AuthNKeyType` as its proto number.
    pub key_type: i16,
    /// PEM-encoded public key; the private key is handed out once and never stored.
    pub public_key: String,
    pub expiration_date: Option<i64>,
    pub created_at: i64,
    pub changed_at: i64,
    pub sequence: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
