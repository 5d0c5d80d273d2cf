use sea_orm::entity::prelude::*;

/// A user's password as a PHC-format hash. The hash never leaves the server.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "passwords")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    pub hash: String,
    pub changed_at: i64,
    /// The user must choose a new password at the next sign-in.
    pub change_required: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
