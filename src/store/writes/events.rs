//! The append-only event log and its sequences: one instance-wide, and one per organization.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement,
};

use crate::domain::{Scope, Timestamp};
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
    /// The organization whose stream the event joins; None for instance-level events.
    pub organization: Option<String>,
    /// The acting principal (see `ScopedDb::actor`).
    pub actor: String,
}

/// Key of the PostgreSQL advisory lock that serializes event appends.
pub(crate) const EVENT_LOG_LOCK: i64 = 0x0075_7365_7264_6972; // "userdir" in ASCII

/// Serializes writers on the event log until the transaction ends, then returns the newest
/// event (the next sequence is one past it). Sequences are therefore gapless and follow commit
/// order, so a reader that saw sequence N has seen every change up to N. (SQLite writers are
/// serialized by `begin_write`.) The lock covers the organization streams too.
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

/// Appends events with consecutive sequences starting at `first`; each organization's events
/// continue that organization's stream. `next_in` holds the next position of the streams
/// already known (the others are looked up) and is advanced past the appended events.
/// Returns each event's position in its organization's stream.
pub async fn append(
    txn: &DatabaseTransaction,
    first: i64,
    events: Vec<NewEvent>,
    next_in: &mut HashMap<String, i64>,
) -> Result<Vec<Option<i64>>, DbErr> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    for organization in events.iter().filter_map(|e| e.organization.as_deref()) {
        if let Entry::Vacant(slot) = next_in.entry(organization.to_owned()) {
            let newest = latest_in(txn, organization).await?;
            slot.insert(newest.map_or(1, |(n, _)| n + 1));
        }
    }
    let rows = numbered(first, events, next_in);
    let positions = rows.iter().map(|row| row.organization_sequence).collect();
    let rows = rows.into_iter().map(event::ActiveModel::from).collect();
    super::bulk::insert_all::<event::Entity>(txn, rows).await?;
    Ok(positions)
}

/// The rows of `events`: consecutive sequences from `first`, and each organization's events at
/// the next positions of its stream (`next_in` holds the next position of every organization
/// the events name, and is moved past them).
pub(crate) fn numbered(
    first: i64,
    events: Vec<NewEvent>,
    next_in: &mut HashMap<String, i64>,
) -> Vec<event::Model> {
    (first..)
        .zip(events)
        .map(|(sequence, event)| {
            let position = event.organization.as_deref().map(|organization| {
                let next = next_in
                    .get_mut(organization)
                    .expect("every organization's next position is given");
                *next += 1;
                *next - 1
            });
            event::Model {
                sequence,
                created_at: event.created_at.micros(),
                aggregate_type: event.aggregate_type.to_owned(),
                aggregate_id: event.aggregate_id,
                resource_owner: event.resource_owner,
                event_type: event.event_type.to_owned(),
                payload: event.payload,
                organization_id: event.organization,
                organization_sequence: position,
                actor: event.actor,
            }
        })
        .collect()
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

/// The newest event of one organization's stream: its position there and its time.
pub async fn latest_in(
    txn: &impl ConnectionTrait,
    organization: &str,
) -> Result<Option<(i64, Timestamp)>, DbErr> {
    let row: Option<(Option<i64>, i64)> = event::Entity::find()
        .select_only()
        .column(event::Column::OrganizationSequence)
        .column(event::Column::CreatedAt)
        .filter(event::Column::OrganizationId.eq(organization))
        .order_by_desc(event::Column::OrganizationSequence)
        .limit(1)
        .into_tuple()
        .one(txn)
        .await?;
    Ok(row.map(|(position, at)| (position.unwrap_or_default(), Timestamp::from_micros(at))))
}

/// What a caller in `scope` has processed: the newest event it may count. An organization's
/// caller counts only its organization's stream, so other tenants' writes never move it.
pub async fn processed(
    txn: &impl ConnectionTrait,
    scope: &Scope,
) -> Result<Option<(i64, Timestamp)>, DbErr> {
    match scope.organization() {
        None => latest(txn).await,
        Some(organization) => latest_in(txn, organization).await,
    }
}

/// Instance sequences as a caller in `scope` counts them. Instance-wide, a sequence is itself;
/// for an organization it is the position of that organization's stream at that point (the
/// event's own position for the organization's events; for an instance-level event such as a
/// shared role's creation, how far the organization's stream had come), so no number an
/// organization sees ever tells it how many events other organizations wrote.
pub async fn as_seen(
    txn: &impl ConnectionTrait,
    scope: &Scope,
    sequences: impl IntoIterator<Item = i64>,
) -> Result<HashMap<i64, i64>, DbErr> {
    let mut wanted: Vec<i64> = sequences.into_iter().collect();
    wanted.sort_unstable();
    wanted.dedup();
    let Some(organization) = scope.organization() else {
        return Ok(wanted.into_iter().map(|n| (n, n)).collect());
    };
    let mut seen = HashMap::with_capacity(wanted.len());
    // Most sequences are the organization's own events: one lookup for all of them.
    for chunk in wanted.chunks(500) {
        let own: Vec<(i64, Option<i64>)> = event::Entity::find()
            .select_only()
            .column(event::Column::Sequence)
            .column(event::Column::OrganizationSequence)
            .filter(event::Column::OrganizationId.eq(organization))
            .filter(event::Column::Sequence.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(txn)
            .await?;
        seen.extend(own.into_iter().map(|(n, p)| (n, p.unwrap_or_default())));
    }
    for sequence in wanted {
        if let Entry::Vacant(slot) = seen.entry(sequence) {
            slot.insert(position_at(txn, organization, sequence).await?);
        }
    }
    Ok(seen)
}

/// How far `organization`'s stream had come at instance sequence `sequence` (0 before its
/// first event).
async fn position_at(
    txn: &impl ConnectionTrait,
    organization: &str,
    sequence: i64,
) -> Result<i64, DbErr> {
    let position: Option<Option<i64>> = event::Entity::find()
        .select_only()
        .column(event::Column::OrganizationSequence)
        .filter(event::Column::OrganizationId.eq(organization))
        .filter(event::Column::Sequence.lte(sequence))
        .order_by_desc(event::Column::Sequence)
        .limit(1)
        .into_tuple()
        .one(txn)
        .await?;
    Ok(position.flatten().unwrap_or_default())
}
