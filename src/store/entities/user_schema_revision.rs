use sea_orm::entity::prelude::*;

/// Every revision a schema ever had; users keep the revision their data was validated against.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_schema_revisions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub schema_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub revision: i32,
    pub r#type: String,
    pub json_schema: Json,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
