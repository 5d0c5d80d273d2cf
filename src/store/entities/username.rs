use sea_orm::entity::prelude::*;

/// Scope of instance-wide usernames in `uniqueness_scope`; organization-specific ones use
/// their organization id. The unique index is on (uniqueness_scope, username_lower).
pub const INSTANCE_SCOPE: &str = "*";

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usernames")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: String,
    pub organization_id: String,
    pub username: String,
    pub username_lower: String,
    pub is_organization_specific: bool,
    pub uniqueness_scope: String,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
