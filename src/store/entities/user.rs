use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub organization_id: String,
    pub schema_id: String,
    pub schema_revision: i32,
    /// Copied from the schema so that sorting and searching by type needs no join; the write
    /// that renames a schema type updates its users in the same transaction.
    pub schema_type: String,
    pub schema_type_lower: String,
    pub data: Json,
    /// `domain::UserState` as its proto number.
    pub state: i16,
    pub email: Option<String>,
    pub email_lower: Option<String>,
    pub email_verified: bool,
    pub phone: Option<String>,
    pub phone_lower: Option<String>,
    pub phone_verified: bool,
    /// `domain::display_name` of `data`, kept in step with it by every write.
    pub name: Option<String>,
    pub name_lower: Option<String>,
    pub last_login: Option<i64>,
    pub created_at: i64,
    pub changed_at: i64,
    /// Sequence of the user's last event.
    pub sequence: i64,
    /// The user's authenticators as one JSON document (`store::authenticators`), kept in step
    /// with the authenticator tables by every write; None without any.
    pub authenticators: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
