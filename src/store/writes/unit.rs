//! The unit of work behind every API write: one transaction that holds the event-log lock,
//! records the write's events, and commits them together with the rows they describe.

use sea_orm::{DatabaseTransaction, DbErr};

use super::events::{self, NewEvent};
use crate::domain::{Scope, Timestamp};
use crate::store::{ScopedDb, begin_write};

/// The sequence, time and owner of a recorded event: what `details` reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    pub sequence: i64,
    pub at: Timestamp,
    pub resource_owner: String,
}

pub struct UnitOfWork {
    txn: DatabaseTransaction,
    first_sequence: i64,
    now: Timestamp,
    events: Vec<NewEvent>,
    /// What the caller may change; `command::user_for_write` and friends check it.
    scope: Scope,
}

impl UnitOfWork {
    pub async fn begin(db: &ScopedDb) -> Result<Self, DbErr> {
        let txn = begin_write(db.connection()).await?;
        let latest = events::lock(&txn).await?;
        let first_sequence = latest.map_or(1, |(sequence, _)| sequence + 1);
        // Event times never go backwards along the sequence, even if the clock does.
        let earliest = latest.map_or(0, |(_, at)| at.micros() + 1);
        let now = Timestamp::from_micros(Timestamp::now().micros().max(earliest));
        Ok(Self {
            txn,
            first_sequence,
            now,
            events: Vec::new(),
            scope: db.scope().clone(),
        })
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    pub fn txn(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// The time of every event of this unit.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Records an event and returns where it stands in the log.
    pub fn record(
        &mut self,
        aggregate_type: &'static str,
        aggregate_id: &str,
        resource_owner: &str,
        event_type: &'static str,
        payload: serde_json::Value,
    ) -> Written {
        let sequence = self.first_sequence + self.events.len() as i64;
        self.events.push(NewEvent {
            created_at: self.now,
            aggregate_type,
            aggregate_id: aggregate_id.to_owned(),
            resource_owner: resource_owner.to_owned(),
            event_type,
            payload,
        });
        Written {
            sequence,
            at: self.now,
            resource_owner: resource_owner.to_owned(),
        }
    }

    /// Appends the recorded events and commits. Dropping the unit instead rolls everything
    /// back, so an error anywhere leaves nothing half-written.
    pub async fn commit(self) -> Result<(), DbErr> {
        events::append(&self.txn, self.first_sequence, self.events).await?;
        self.txn.commit().await
    }

    pub async fn rollback(self) -> Result<(), DbErr> {
        self.txn.rollback().await
    }
}
