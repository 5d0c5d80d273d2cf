//! The append-only event log and its sequence.

use sea_orm::sea_query::Query;
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait, QueryOrder, QuerySelect,
    Statement,
};

use crate::domain::Timestamp;
use crate::store::entities::event;

/// An event about to be appended.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub created_at: Timestamp,
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    pub resource_owner: String,
    pub event_type: &'static str,
    pub payload: serde_json::Value,
}

/// Key of the PostgreSQL advisory lock that serializes event appends.
const EVENT_LOG_LOCK: i64 = 0x0075_7365_7264_6972; // "userdir" in ASCII

/// Serializes writers on the event log until the transaction ends, then returns the newest
/// event (the next sequence is one past it). Sequences are therefore gapless and follow commit
/// order, so a reader that saw sequence N has seen every change up to N. (SQLite writers are
/// serialized by `begin_write`.)
pub async fn lock(txn: &DatabaseTransaction) -> Result<Option<(i64, Timestamp)>, DbErr> {
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [EVENT_LOG_LOCK.into()],
        ))
        .await?;
    }
    latest(txn).await
}

/// Appends events with consecutive sequences starting at `first`.
pub async fn append(
    txn: &DatabaseTransaction,
    first: i64,
    events: Vec<NewEvent>,
) -> Result<(), DbErr> {
    if events.is_empty() {
        return Ok(());
    }
    let mut insert = Query::insert();
    insert.into_table(event::Entity).columns([
        event::Column::Sequence,
        event::Column::CreatedAt,
        event::Column::AggregateType,
        event::Column::AggregateId,
        event::Column::ResourceOwner,
        event::Column::EventType,
        event::Column::Payload,
    ]);
    for (sequence, event) in (first..).zip(events) {
        insert
            .values([
                sequence.into(),
                event.created_at.micros().into(),
                event.aggregate_type.into(),
                event.aggregate_id.into(),
                event.resource_owner.into(),
                event.event_type.into(),
                event.payload.into(),
            ])
            .map_err(|error| DbErr::Custom(format!("building the event insert: {error}")))?;
    }
    txn.execute(&insert).await?;
    Ok(())
}

/// The newest event: what a reader in this transaction has processed.
pub async fn latest(txn: &impl ConnectionTrait) -> Result<Option<(i64, Timestamp)>, DbErr> {
    let row: Option<(i64, i64)> = event::Entity::find()
        .select_only()
        .column(event::Column::Sequence)
        .column(event::Column::CreatedAt)
        .order_by_desc(event::Column::Sequence)
        .limit(1)
        .into_tuple()
        .one(txn)
        .await?;
    Ok(row.map(|(sequence, at)| (sequence, Timestamp::from_micros(at))))
}
