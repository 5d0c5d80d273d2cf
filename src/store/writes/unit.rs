//! The unit of work behind every API write: one transaction that holds the event-log lock,
//! records the write's events, and commits them together with the rows they describe. A
//! server's writes share transactions through group commit (`group`): there the unit is a
//! savepoint of the group's transaction, and its COMMIT is the group's.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use sea_orm::{DatabaseTransaction, DbErr};

use super::events::{self, NewEvent};
use super::group::{LogEnd, Seat};
use crate::domain::{Scope, Timestamp};
use crate::store::{ScopedDb, WriteTransaction, authenticators, begin_write};

/// The sequence, time and owner of a recorded event: what `details` reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// The instance-wide sequence: what rows store as their own sequence.
    pub sequence: i64,
    /// The sequence as the caller counts it (see `events::as_seen`): the instance sequence for
    /// an instance-wide caller, the position in its organization's stream for an
    /// organization's caller.
    pub seen_sequence: i64,
    pub at: Timestamp,
    pub resource_owner: String,
}

pub struct UnitOfWork {
    /// The unit's transaction; None once it ended.
    txn: Option<UnitTxn>,
    /// Its seat in the group transaction, when the writes are grouped.
    seat: Option<Seat>,
    first_sequence: i64,
    now: Timestamp,
    events: Vec<NewEvent>,
    /// What the caller may change; `command::user_for_write` and friends check it.
    scope: Scope,
    /// Who acts; every event records it.
    actor: String,
    /// For an organization's caller: the next position in its organization's stream.
    next_seen: i64,
    /// The next position of each organization's stream known before this unit's events.
    next_positions: HashMap<String, i64>,
    /// The users whose authenticators this unit changed: their documents are rewritten before
    /// it commits (see [`Self::authenticators_changed`]).
    changed_authenticators: Mutex<BTreeSet<String>>,
}

impl UnitOfWork {
    pub async fn begin(db: &ScopedDb) -> Result<Self, DbErr> {
        let (txn, seat, end) = match db.group() {
            Some(group) => {
                let mut seat = group.seat(db.connection()).await?;
                let savepoint = UnitTxn::Grouped(seat.savepoint().await?);
                // The group's earlier units are in this transaction: the end counts their
                // events.
                let end = seat.log_end().clone();
                (savepoint, Some(seat), end)
            }
            None => {
                let txn = begin_write(db.connection()).await?;
                let newest = events::lock(&txn).await?;
                let end = LogEnd {
                    newest,
                    ..LogEnd::default()
                };
                (UnitTxn::Alone(txn), None, end)
            }
        };
        let LogEnd {
            newest: latest,
            mut next_positions,
        } = end;
        let first_sequence = latest.map_or(1, |(sequence, _)| sequence + 1);
        let next_seen = match db.scope().organization() {
            None => first_sequence,
            Some(own) => match next_positions.get(own) {
                Some(&next) => next,
                None => {
                    let next = events::latest_in(txn.get(), own)
                        .await?
                        .map_or(1, |(position, _)| position + 1);
                    next_positions.insert(own.to_owned(), next);
                    next
                }
            },
        };
        // Event times never go backwards along the sequence, even if the clock does.
        let earliest = latest.map_or(0, |(_, at)| at.micros() + 1);
        let now = Timestamp::from_micros(Timestamp::now().micros().max(earliest));
        Ok(Self {
            txn: Some(txn),
            seat,
            first_sequence,
            now,
            events: Vec::new(),
            scope: db.scope().clone(),
            actor: db.actor().to_owned(),
            next_seen,
            next_positions,
            changed_authenticators: Mutex::default(),
        })
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    pub fn txn(&self) -> &DatabaseTransaction {
        self.txn
            .as_ref()
            .expect("a unit of work in progress has its transaction")
            .get()
    }

    /// The time of every event of this unit.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Records an event and returns where it stands in the log. The event joins the stream of
    /// the organization that owns the resource; an event without an owning organization (a
    /// shared role or schema) joins the caller's organization's stream when the caller is
    /// limited to one, and is instance-level otherwise.
    pub fn record(
        &mut self,
        aggregate_type: &'static str,
        aggregate_id: &str,
        resource_owner: &str,
        event_type: &'static str,
        payload: serde_json::Value,
    ) -> Written {
        let organization = match resource_owner {
            "" => self.scope.organization().map(str::to_owned),
            owner => Some(owner.to_owned()),
        };
        self.record_in(
            organization,
            aggregate_type,
            aggregate_id,
            resource_owner,
            event_type,
            payload,
        )
    }

    /// Records an event in the stream of `organization` (None: instance-level).
    pub fn record_in(
        &mut self,
        organization: Option<String>,
        aggregate_type: &'static str,
        aggregate_id: &str,
        resource_owner: &str,
        event_type: &'static str,
        payload: serde_json::Value,
    ) -> Written {
        let sequence = self.first_sequence + self.events.len() as i64;
        let seen_sequence = match self.scope.organization() {
            None => sequence,
            Some(own) if organization.as_deref() == Some(own) => {
                self.next_seen += 1;
                self.next_seen - 1
            }
            // Not in the caller's stream (scope checks keep commands from getting here): its
            // position as far as the caller's stream has come.
            Some(_) => self.next_seen - 1,
        };
        self.events.push(NewEvent {
            created_at: self.now,
            aggregate_type,
            aggregate_id: aggregate_id.to_owned(),
            resource_owner: resource_owner.to_owned(),
            event_type,
            payload,
            organization,
            actor: self.actor.clone(),
        });
        Written {
            sequence,
            seen_sequence,
            at: self.now,
            resource_owner: resource_owner.to_owned(),
        }
    }

    /// Notes that this unit changed (or is about to change) the authenticators of `user_id`:
    /// the user's document (`store::authenticators`) is rewritten from the tables as the unit
    /// commits, after every change the unit made, whatever their order.
    pub fn authenticators_changed(&self, user_id: &str) {
        self.changed_authenticators
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(user_id.to_owned());
    }

    /// Appends the recorded events and commits; grouped, returns once the group's COMMIT is
    /// done. Dropping the unit instead rolls everything back, so an error anywhere leaves
    /// nothing half-written.
    ///
    /// The commit runs to its end on a task of its own, even when the caller's future is
    /// dropped meanwhile (a client's deadline): a statement abandoned mid-flight is not
    /// reliably rolled back behind it, so a unit dropped while it appended could leave its
    /// rows in the group's transaction and its sequences taken for the next unit
    /// (`group_commit::units_dropped_while_committing_keep_every_guarantee`). A write whose
    /// caller left while it committed may therefore have happened, as after a lost reply.
    pub async fn commit(self) -> Result<(), DbErr> {
        match tokio::spawn(self.finish()).await {
            Ok(result) => result,
            Err(failed) => Err(DbErr::Custom(format!(
                "committing a unit of work: {failed}"
            ))),
        }
    }

    async fn finish(mut self) -> Result<(), DbErr> {
        let txn = self.txn.take().expect("a unit of work commits once");
        let events = std::mem::take(&mut self.events);
        let newest = events.last().map(|last| {
            (
                self.first_sequence + events.len() as i64 - 1,
                last.created_at,
            )
        });
        let mut next_positions = std::mem::take(&mut self.next_positions);
        let changed: Vec<String> = std::mem::take(
            self.changed_authenticators
                .get_mut()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
        .into_iter()
        .collect();
        let refreshed = authenticators::refresh(txn.get(), &changed).await;
        if let Err(error) = refreshed {
            drop(txn);
            return Err(error);
        }
        let appended =
            events::append(txn.get(), self.first_sequence, events, &mut next_positions).await;
        if let Err(error) = appended {
            drop(txn);
            return Err(error);
        }
        txn.commit().await?;
        match self.seat.take() {
            Some(mut seat) => {
                let newest = newest.or(seat.log_end().newest);
                seat.advance(LogEnd {
                    newest,
                    next_positions,
                });
                seat.commit().await
            }
            None => Ok(()),
        }
    }

    pub async fn rollback(mut self) -> Result<(), DbErr> {
        match self.txn.take() {
            Some(txn) => txn.rollback().await,
            None => Ok(()),
        }
    }
}

/// A unit that ends without committing (an error, a dropped request) rolls back its
/// transaction or savepoint, and gives its seat up.
impl Drop for UnitOfWork {
    fn drop(&mut self) {
        // The savepoint first: its rollback is queued on the connection before anything the
        // group does next.
        drop(self.txn.take());
        if let Some(seat) = self.seat.take() {
            seat.leave();
        }
    }
}

/// A unit's own transaction: its savepoint in the group's, or a write transaction of its own.
enum UnitTxn {
    Grouped(DatabaseTransaction),
    Alone(WriteTransaction),
}

impl UnitTxn {
    fn get(&self) -> &DatabaseTransaction {
        match self {
            Self::Grouped(savepoint) => savepoint,
            Self::Alone(txn) => txn,
        }
    }

    /// Releases the savepoint, or commits the transaction.
    async fn commit(self) -> Result<(), DbErr> {
        match self {
            Self::Grouped(savepoint) => savepoint.commit().await,
            Self::Alone(txn) => txn.commit().await,
        }
    }

    async fn rollback(self) -> Result<(), DbErr> {
        match self {
            Self::Grouped(savepoint) => savepoint.rollback().await,
            Self::Alone(txn) => txn.rollback().await,
        }
    }
}
