//! Group commit: concurrent units of work share one database transaction, each in a savepoint
//! of its own, and one COMMIT acknowledges them all.
//!
//! Sequences are gapless and follow commit order because writers are serialized on the event
//! log's lock until their transaction ends (`events::lock`). Alone, each write therefore holds
//! the lock through its own COMMIT, and the flush to disk that comes with it, so writers queue
//! behind one fsync each. Grouped, a writer takes its seat in the open transaction (the seat is
//! the serialization: one unit at a time, in arrival order), does its work in a savepoint,
//! releases the savepoint and waits; the last writer of a burst, the one that sees nobody
//! waiting for a seat, commits for everyone. A unit that fails rolls back to its savepoint and
//! fails alone; a COMMIT that fails fails every unit of the group, and none of them was
//! acknowledged. A reader sees a group all at once, so "a reader that saw sequence N has seen
//! every change up to N" holds as before.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sea_orm::{
    ConnAcquireErr, DatabaseConnection, DatabaseTransaction, DbErr, RuntimeErr, TransactionTrait,
};
use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};

use super::events;
use crate::domain::Timestamp;
use crate::error::database_unavailable;
use crate::store::{WriteTransaction, begin_write};

/// Most units one COMMIT acknowledges: past this a writer commits even with others waiting,
/// so that a steady stream of writers still gets acknowledgements.
const MAX_GROUP: usize = 64;

/// After opening a group transaction failed for an unreachable database, writers fail at once
/// for this long (the health probe reports the outage meanwhile).
const FAIL_FAST: Duration = Duration::from_millis(250);

/// How often a member waiting for its group's COMMIT checks that someone will make it.
const ORPHAN_CHECK: Duration = Duration::from_millis(5);

/// The open group transaction of one database, shared by every request of a server (cheap to
/// clone).
#[derive(Clone, Default)]
pub struct GroupCommit {
    open: Arc<Mutex<Open>>,
    /// Writers waiting for a seat: while there are any, the writer in the seat leaves the
    /// COMMIT to them.
    waiting: Arc<AtomicUsize>,
    /// COMMITs made, and the units they acknowledged: how well writes group.
    commits: Arc<AtomicU64>,
    committed_units: Arc<AtomicU64>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("waiting", &self.waiting.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Open {
    /// The group's transaction, holding the event log's lock (and on SQLite the writer's
    /// turn); None between groups.
    txn: Option<GroupTxn>,
    /// The units of the open transaction waiting for its COMMIT.
    members: Vec<oneshot::Sender<Result<(), Failure>>>,
    /// The writes they carry (a batch of CreateUsers is one member).
    units: u64,
    /// When opening a transaction last failed because the database was unreachable.
    unreachable_since: Option<Instant>,
}

struct GroupTxn {
    txn: WriteTransaction,
    end: LogEnd,
}

/// Where the event log ends, as far as the group's transaction has written it. The
/// transaction holds the log's lock, so nobody else moves the end while it is open: each unit
/// takes it from here instead of asking the database, and hands it on when its savepoint is
/// released. A unit that fails hands nothing on, so what it wrote and rolled back never shows.
#[derive(Clone, Debug, Default)]
pub struct LogEnd {
    /// The newest event's sequence and time (None: the log is empty).
    pub newest: Option<(i64, Timestamp)>,
    /// The next position in an organization's stream, for the organizations looked up so far.
    pub next_positions: HashMap<String, i64>,
}

/// Why a group's COMMIT failed, for each member.
#[derive(Clone, Debug)]
pub(super) struct Failure {
    /// The database was unreachable (the members answer Unavailable, see
    /// `error::database_unavailable`).
    unreachable: bool,
    message: String,
}

impl Failure {
    pub(super) fn of(error: &DbErr) -> Self {
        Self {
            unreachable: database_unavailable(error),
            message: error.to_string(),
        }
    }

    pub(super) fn abandoned() -> Self {
        Self {
            unreachable: false,
            message: "the group transaction was abandoned".into(),
        }
    }

    /// What a member of a failed group learns: its write did not happen; Unavailable when
    /// the database could not be reached, as for any other statement.
    pub(super) fn into_error(self) -> DbErr {
        if self.unreachable {
            DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed)
        } else {
            DbErr::Conn(RuntimeErr::Internal(format!(
                "the group commit failed: {}",
                self.message
            )))
        }
    }
}

/// One unit's place in the group transaction: while it is held, no other unit runs.
pub struct Seat {
    open: OwnedMutexGuard<Open>,
    group: GroupCommit,
}

/// Counts a writer as waiting for as long as it waits, even when its request is dropped.
struct Waiting(Arc<AtomicUsize>);

impl Waiting {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count.clone())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl GroupCommit {
    /// (COMMITs that succeeded, units they acknowledged).
    pub fn stats(&self) -> (u64, u64) {
        (
            self.commits.load(Ordering::Relaxed),
            self.committed_units.load(Ordering::Relaxed),
        )
    }

    /// Waits for the seat, and opens the group's transaction (taking the event log's lock)
    /// when none is open.
    pub async fn seat(&self, db: &DatabaseConnection) -> Result<Seat, DbErr> {
        let mut open = {
            let _waiting = Waiting::new(&self.waiting);
            self.open.clone().lock_owned().await
        };
        if open.txn.is_none() {
            // While the database is gone, the writers queued for the seat fail at once instead
            // of each waiting out the pool's acquire timeout in turn.
            if open
                .unreachable_since
                .is_some_and(|since| since.elapsed() < FAIL_FAST)
            {
                return Err(DbErr::ConnectionAcquire(ConnAcquireErr::Timeout));
            }
            let opened = async {
                let txn = begin_write(db).await?;
                let newest = events::lock(&txn).await?;
                let end = LogEnd {
                    newest,
                    next_positions: HashMap::new(),
                };
                Ok::<_, DbErr>(GroupTxn { txn, end })
            };
            match opened.await {
                Ok(txn) => {
                    open.txn = Some(txn);
                    open.unreachable_since = None;
                }
                Err(error) => {
                    if database_unavailable(&error) {
                        open.unreachable_since = Some(Instant::now());
                    }
                    return Err(error);
                }
            }
        }
        Ok(Seat {
            open,
            group: self.clone(),
        })
    }
}

impl Seat {
    /// The group's transaction, in which the unit opens its savepoint.
    pub fn txn(&self) -> &DatabaseTransaction {
        &self.group_txn().txn
    }

    /// Where the event log ends before this unit's events.
    pub fn log_end(&self) -> &LogEnd {
        &self.group_txn().end
    }

    /// After the unit's savepoint was released: where the log ends after its events.
    pub fn advance(&mut self, end: LogEnd) {
        if let Some(group) = self.open.txn.as_mut() {
            group.end = end;
        }
    }

    fn group_txn(&self) -> &GroupTxn {
        self.open
            .txn
            .as_ref()
            .expect("a seat has an open transaction")
    }

    /// After the unit released its savepoint: joins the group's COMMIT, committing now if no
    /// writer waits for the seat (or the group is full), and returns once it is durable.
    pub async fn commit(self) -> Result<(), DbErr> {
        self.commit_units(1).await.map_err(Failure::into_error)
    }

    /// [`commit`](Self::commit) for a member carrying `units` writes.
    pub(super) async fn commit_units(mut self, units: usize) -> Result<(), Failure> {
        let (done, mut committed) = oneshot::channel();
        self.open.members.push(done);
        self.open.units += units as u64;
        if self.nobody_waits() || self.open.members.len() >= MAX_GROUP {
            commit_group(&self.group, &mut self.open).await;
        }
        let group = self.group.clone();
        drop(self);
        loop {
            tokio::select! {
                result = &mut committed => return match result {
                    Ok(result) => result,
                    Err(_) => Err(Failure::abandoned()),
                },
                // The writer this one left the COMMIT to may have given up waiting for the
                // seat (its request was dropped): whoever finds the seat free commits.
                () = tokio::time::sleep(ORPHAN_CHECK) => {
                    if let Ok(mut open) = group.open.clone().try_lock_owned() {
                        commit_group(&group, &mut open).await;
                    }
                }
            }
        }
    }

    /// A savepoint of the group's transaction: the unit's own transaction within it. A group
    /// transaction that cannot open one is broken (its connection is gone): it is given up, its
    /// members fail, and the next writer opens a new one.
    pub async fn savepoint(&mut self) -> Result<DatabaseTransaction, DbErr> {
        match self.txn().begin().await {
            Ok(savepoint) => Ok(savepoint),
            Err(error) => {
                let failure = Failure::of(&error);
                self.open.txn = None;
                self.open.units = 0;
                for member in self.open.members.drain(..) {
                    let _ = member.send(Err(failure.clone()));
                }
                Err(error)
            }
        }
    }

    fn nobody_waits(&self) -> bool {
        self.group.waiting.load(Ordering::SeqCst) == 0
    }

    /// Leaves without joining (the unit failed or was dropped, its savepoint rolled back).
    /// When nobody waits for the seat, the group is committed (or, without members, closed)
    /// now, on a task of its own, since leaving may happen in a `Drop`.
    pub fn leave(mut self) {
        if !self.nobody_waits() {
            return;
        }
        if self.open.members.is_empty() {
            // Dropping the transaction rolls it back and frees the event log's lock.
            self.open.txn = None;
            return;
        }
        tokio::spawn(async move { commit_group(&self.group, &mut self.open).await });
    }
}

/// Commits the group's transaction and tells every member how it went.
async fn commit_group(group: &GroupCommit, open: &mut Open) {
    let Some(GroupTxn { txn, .. }) = open.txn.take() else {
        return;
    };
    let result = txn.commit().await.map_err(|error| Failure::of(&error));
    let units = std::mem::take(&mut open.units);
    match &result {
        Ok(()) => {
            group.commits.fetch_add(1, Ordering::Relaxed);
            group.committed_units.fetch_add(units, Ordering::Relaxed);
        }
        Err(failure) => {
            tracing::warn!(error = %failure.message, members = open.members.len(), "a group commit failed");
        }
    }
    for member in open.members.drain(..) {
        let _ = member.send(result.clone());
    }
}
