use sea_orm::entity::prelude::*;

/// The append-only event log. Every write appends here in its own transaction.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub sequence: i64,
    pub created_at: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub resource_owner: String,
    pub event_type: String,
    pub payload: Json,
    /// The organization whose stream the event belongs to; None for instance-level events.
    pub organization_id: Option<String>,
    /// The event's gapless position in its organization's stream.
    pub organization_sequence: Option<i64>,
    /// Who acted: `token:<id>`, `jwt:<subject>`, `cli`, `bootstrap` or `seed`.
    pub actor: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
