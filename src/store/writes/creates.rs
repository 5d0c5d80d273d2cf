//! CreateUser in batches: the users that concurrent CreateUser requests decided are written
//! together, one statement per table for all of them, in one savepoint of the group
//! transaction (`group`).
//!
//! A grouped write holds the seat for its statements' round trips, one after the other; a
//! burst of CreateUsers (an HR sync, a SCIM push) is the common case where many writes of the
//! same shape queue for the seat. Each waiting CreateUser puts its rows in the lane; the first
//! one to find the lane empty starts a driver, which waits for the seat once for all of them,
//! takes everything that piled up meanwhile, and writes it as one unit:
//!
//! 1. It reads the current revision of the users' schemas and the directory's rows of their
//!    usernames. The seat holds the event log's lock, which every write of these tables takes,
//!    so what it reads stays true until the batch is written.
//! 2. It decides each user in arrival order, as a lone CreateUser would be decided in its
//!    unit: a schema revised since the request checked its data sends the request back to be
//!    checked again; a username taken in the directory, or by an earlier user of the batch,
//!    fails its user alone with AlreadyExists.
//! 3. It inserts the rest: their users, usernames, passwords and codes, and one `user.created`
//!    event each with consecutive sequences, in one statement per table.
//!
//! A statement that fails (a constraint the decisions could not see, such as an organization
//! deleted meanwhile) rolls the savepoint back and sends every request of the batch back to be
//! written alone, so each gets the error its own write meets. The driver runs on a task of its
//! own, so a request that goes away does not cut a batch short; a request that went before the
//! batch was taken is left out of it.

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sea_orm::sea_query::{Alias, Condition, Expr, Query, SelectStatement};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    IntoActiveModel, QueryFilter, QuerySelect,
};
use tokio::sync::oneshot;

use super::bulk;
use super::events::{self, NewEvent};
use super::group::{Failure, GroupCommit, LogEnd};
use super::unit::Written;
use crate::domain::Timestamp;
use crate::store::authenticators::{self, Parts};
use crate::store::entities::{password, user, user_schema, username, verification_code};

/// Most users one batch writes; a larger pile is written by the next driver, in the same
/// group if it comes in time.
const MAX_BATCH: usize = 256;

/// Most values one `IN (...)` list of the batch's reads binds.
const IN_LIST: usize = 1000;

/// Most usernames one statement asks about (an `EXISTS` each).
const EXISTS_PER_STATEMENT: usize = 64;

/// One new user, as the command decided it. The batch sets the times (the batch's own, never
/// before the newest event) and the sequence; a code keeps its lifetime from the time it was
/// issued with.
#[derive(Clone, Debug)]
pub struct NewUserRows {
    pub user: user::Model,
    /// In request order: a taken name is reported by its index.
    pub usernames: Vec<username::Model>,
    pub password: Option<password::Model>,
    pub codes: Vec<verification_code::Model>,
    /// The `user.created` event's payload.
    pub payload: serde_json::Value,
    /// Who creates the user; the event records it.
    pub actor: String,
    /// The organization the caller is limited to, whose stream its sequence is counted in.
    pub caller_organization: Option<String>,
}

/// What became of one user of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchedCreate {
    /// Written, and committed with its group.
    Written(Written),
    /// Its schema has a newer revision than the one its data was checked against: nothing
    /// written; check again.
    SchemaRevised,
    /// `usernames[index]` is taken: nothing written.
    UsernameTaken(usize),
    /// The batch could not be written together: nothing written; write it alone.
    Alone,
}

/// The CreateUsers waiting for a batch (cheap to clone; one beside each group commit, see
/// `writes::Writes`).
#[derive(Clone, Default)]
pub struct CreateLane {
    waiting: Arc<Mutex<Vec<Waiting>>>,
    /// Batches committed, and the users they wrote.
    batches: Arc<AtomicU64>,
    batched_users: Arc<AtomicU64>,
}

impl std::fmt::Debug for CreateLane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateLane")
            .field("queued", &self.queued())
            .finish_non_exhaustive()
    }
}

struct Waiting {
    rows: NewUserRows,
    done: oneshot::Sender<Result<BatchedCreate, Failure>>,
}

impl CreateLane {
    /// Writes one new user in the next batch, a unit of `group`, and returns once the batch's
    /// group is committed (or what else became of it).
    pub async fn create_user(
        &self,
        group: &GroupCommit,
        db: &DatabaseConnection,
        rows: NewUserRows,
    ) -> Result<BatchedCreate, DbErr> {
        let (done, outcome) = oneshot::channel();
        let first = {
            let mut waiting = self.lock();
            waiting.push(Waiting { rows, done });
            waiting.len() == 1
        };
        if first {
            start_driver(self.clone(), group.clone(), db.clone());
        }
        match outcome.await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(failure)) => Err(failure.into_error()),
            Err(_) => Err(Failure::abandoned().into_error()),
        }
    }
}

impl CreateLane {
    /// How many CreateUsers wait for their batch to be taken.
    pub fn queued(&self) -> usize {
        self.lock().len()
    }

    /// (batches committed, users they wrote).
    pub fn stats(&self) -> (u64, u64) {
        (
            self.batches.load(Ordering::Relaxed),
            self.batched_users.load(Ordering::Relaxed),
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        // A panic while the lock was held leaves a plain Vec, still whole.
        self.waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn start_driver(lane: CreateLane, group: GroupCommit, db: DatabaseConnection) {
    // Boxed: a driver may start the next one.
    let driver: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(drive(lane, group, db));
    tokio::spawn(driver);
}

/// Takes the seat, then the lane's waiting users, and writes them as one unit of the group.
async fn drive(lane: CreateLane, group: GroupCommit, db: DatabaseConnection) {
    let seat = group.seat(&db).await;
    let batch: Vec<Waiting> = {
        let mut waiting = lane.lock();
        let taken = waiting.len().min(MAX_BATCH);
        let batch = waiting.drain(..taken).collect();
        if !waiting.is_empty() {
            // More than a batch piled up: the next driver queues for the seat behind this one.
            start_driver(lane.clone(), group.clone(), db.clone());
        }
        batch
    };
    // Requests that went away before their batch was taken are not written.
    let (rows, done): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .filter(|waiting| !waiting.done.is_closed())
        .map(|waiting| (waiting.rows, waiting.done))
        .unzip();
    let mut seat = match seat {
        Ok(seat) => seat,
        Err(error) => return tell(done, Failure::of(&error)),
    };
    if rows.is_empty() {
        return seat.leave();
    }
    let savepoint = match seat.savepoint().await {
        Ok(savepoint) => savepoint,
        Err(error) => return tell(done, Failure::of(&error)),
    };
    let written = write(&savepoint, seat.log_end().clone(), rows).await;
    let (outcomes, end) = match written {
        Ok(written) => written,
        Err(error) => {
            tracing::debug!(%error, users = done.len(), "a batch of new users is written one by one");
            // Rolled back to the savepoint before the group goes on.
            drop(savepoint);
            seat.leave();
            return tell_each(done, || Ok(BatchedCreate::Alone));
        }
    };
    if let Err(error) = savepoint.commit().await {
        seat.leave();
        return tell(done, Failure::of(&error));
    }
    seat.advance(end);
    let units = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, BatchedCreate::Written(_)))
        .count();
    match seat.commit_units(units).await {
        Ok(()) => {
            lane.batches.fetch_add(1, Ordering::Relaxed);
            lane.batched_users
                .fetch_add(units as u64, Ordering::Relaxed);
            let mut outcomes = outcomes.into_iter();
            tell_each(done, || Ok(outcomes.next().expect("one outcome per user")));
        }
        Err(failure) => tell(done, failure),
    }
}

/// Tells every request of the batch that its write failed with the group.
fn tell(done: Vec<oneshot::Sender<Result<BatchedCreate, Failure>>>, failure: Failure) {
    tell_each(done, || Err(failure.clone()));
}

fn tell_each(
    done: Vec<oneshot::Sender<Result<BatchedCreate, Failure>>>,
    mut outcome: impl FnMut() -> Result<BatchedCreate, Failure>,
) {
    for done in done {
        // A request that went away meanwhile has nobody to tell.
        let _ = done.send(outcome());
    }
}

/// Decides and writes a batch in `txn` (see the module's steps); returns each user's outcome,
/// in order, and where the log ends after the batch.
async fn write(
    txn: &DatabaseTransaction,
    end: LogEnd,
    batch: Vec<NewUserRows>,
) -> Result<(Vec<BatchedCreate>, LogEnd), DbErr> {
    let revisions = current_revisions(txn, &batch).await?;
    let mut names = Names::read(txn, &batch).await?;
    let LogEnd {
        newest,
        mut next_positions,
    } = end;
    let first = newest.map_or(1, |(sequence, _)| sequence + 1);
    // Event times never go backwards along the sequence, even if the clock does.
    let earliest = newest.map_or(0, |(_, at)| at.micros() + 1);
    let now = Timestamp::from_micros(Timestamp::now().micros().max(earliest));

    let mut outcomes = Vec::with_capacity(batch.len());
    let mut accepted = Vec::with_capacity(batch.len());
    for rows in batch {
        let schema = (&rows.user.schema_id, rows.user.schema_revision);
        if revisions.get(schema.0) != Some(&schema.1) {
            outcomes.push(BatchedCreate::SchemaRevised);
        } else if let Some(taken) = names.first_taken(&rows.usernames) {
            outcomes.push(BatchedCreate::UsernameTaken(taken));
        } else {
            names.take(&rows.usernames);
            // Filled in once the accepted users are numbered.
            outcomes.push(BatchedCreate::Alone);
            accepted.push((outcomes.len() - 1, stamped(rows, now)));
        }
    }
    if accepted.is_empty() {
        let end = LogEnd {
            newest,
            next_positions,
        };
        return Ok((outcomes, end));
    }

    let mut users = Vec::with_capacity(accepted.len());
    let mut usernames = Vec::new();
    let mut passwords = Vec::new();
    let mut codes = Vec::new();
    let mut log = Vec::with_capacity(accepted.len());
    for (sequence, (_, rows)) in (first..).zip(&accepted) {
        let mut user = rows.user.clone();
        user.sequence = sequence;
        user.authenticators = authenticators::document(Parts {
            usernames: &rows.usernames,
            password: rows.password.as_ref(),
            ..Parts::default()
        });
        log.push(NewEvent {
            created_at: now,
            aggregate_type: "user",
            aggregate_id: user.id.clone(),
            resource_owner: user.organization_id.clone(),
            event_type: "user.created",
            payload: rows.payload.clone(),
            organization: Some(user.organization_id.clone()),
            actor: rows.actor.clone(),
        });
        users.push(user.into_active_model());
        usernames.extend(
            rows.usernames
                .iter()
                .cloned()
                .map(IntoActiveModel::into_active_model),
        );
        passwords.extend(
            rows.password
                .clone()
                .map(IntoActiveModel::into_active_model),
        );
        codes.extend(
            rows.codes
                .iter()
                .cloned()
                .map(IntoActiveModel::into_active_model),
        );
    }
    // In statements of a few sizes (`bulk`), within the values one statement binds: a batch's
    // users bind about 5,000, their usernames (up to 20 a user) up to 41,000.
    bulk::insert_all::<user::Entity>(txn, users).await?;
    bulk::insert_all::<username::Entity>(txn, usernames).await?;
    bulk::insert_all::<password::Entity>(txn, passwords).await?;
    bulk::insert_all::<verification_code::Entity>(txn, codes).await?;
    let count = log.len() as i64;
    let positions = events::append(txn, first, log, &mut next_positions).await?;
    for ((sequence, (index, rows)), position) in (first..).zip(accepted).zip(positions) {
        let seen_sequence = match (&rows.caller_organization, position) {
            (Some(_), Some(position)) => position,
            _ => sequence,
        };
        outcomes[index] = BatchedCreate::Written(Written {
            sequence,
            seen_sequence,
            at: now,
            resource_owner: rows.user.organization_id,
        });
    }
    let end = LogEnd {
        newest: Some((first + count - 1, now)),
        next_positions,
    };
    Ok((outcomes, end))
}

/// The rows with the batch's time.
fn stamped(mut rows: NewUserRows, now: Timestamp) -> NewUserRows {
    let now = now.micros();
    rows.user.created_at = now;
    rows.user.changed_at = now;
    for name in &mut rows.usernames {
        name.created_at = now;
    }
    if let Some(password) = &mut rows.password {
        password.changed_at = now;
    }
    for code in &mut rows.codes {
        issued_at(code, now);
    }
    rows
}

/// Moves a code to be issued at `now`, its lifetime kept.
fn issued_at(code: &mut verification_code::Model, now: i64) {
    code.expires_at = now + (code.expires_at - code.created_at);
    code.created_at = now;
}

/// The current revision of every schema the batch's users were checked against.
async fn current_revisions(
    txn: &DatabaseTransaction,
    batch: &[NewUserRows],
) -> Result<HashMap<String, i32>, DbErr> {
    let ids: HashSet<&str> = batch
        .iter()
        .map(|rows| rows.user.schema_id.as_str())
        .collect();
    let mut revisions = HashMap::with_capacity(ids.len());
    let ids: Vec<&str> = ids.into_iter().collect();
    for chunk in ids.chunks(IN_LIST) {
        let current: Vec<(String, i32)> = user_schema::Entity::find()
            .select_only()
            .column(user_schema::Column::Id)
            .column(user_schema::Column::Revision)
            .filter(user_schema::Column::Id.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(txn)
            .await?;
        revisions.extend(current);
    }
    Ok(revisions)
}

/// The rows a new username clashes with, as one name's check and a batch's ask it: an
/// instance-wide name (`organization` None) clashes with the same name anywhere, an
/// organization-specific one with the same name instance-wide or in its organization. (The
/// unique index covers one scope only.)
pub(crate) fn username_clash(lower: &str, organization: Option<&str>) -> SelectStatement {
    let mut clash = Query::select();
    clash
        .expr(Expr::val(1))
        .from(username::Entity)
        .and_where(username::Column::UsernameLower.eq(lower));
    if let Some(organization) = organization {
        clash.cond_where(
            Condition::any()
                .add(username::Column::UniquenessScope.eq(username::INSTANCE_SCOPE))
                .add(username::Column::UniquenessScope.eq(organization)),
        );
    }
    clash
}

/// A name as its clash is asked: lower-case, and the organization of an organization-specific
/// name.
type Asked = (String, Option<String>);

fn asked(name: &username::Model) -> Asked {
    let organization = name
        .is_organization_specific
        .then(|| name.uniqueness_scope.clone());
    (name.username_lower.clone(), organization)
}

/// The batch's names that clash: in the directory, and with the batch's accepted users.
struct Names {
    /// The names the directory has a clash for.
    in_directory: HashSet<Asked>,
    /// The uniqueness scopes the batch's accepted users took each lower-case name in.
    taken: HashMap<String, HashSet<String>>,
}

impl Names {
    /// Asks the directory about every name of the batch, one `EXISTS` each as a lone username
    /// is checked, in a few statements. An `EXISTS` is served from a btree index even where
    /// PostgreSQL's statistics are stale: a plain `username_lower IN (...)` read was planned
    /// onto the trigram index on a fresh database, 4.5 ms a batch instead of 0.1.
    async fn read(txn: &DatabaseTransaction, batch: &[NewUserRows]) -> Result<Self, DbErr> {
        let names: HashSet<Asked> = batch
            .iter()
            .flat_map(|rows| &rows.usernames)
            .map(asked)
            .collect();
        let names: Vec<Asked> = names.into_iter().collect();
        let mut in_directory = HashSet::new();
        let mut names = names.as_slice();
        // A few sizes of statement, as `bulk` inserts.
        for size in bulk::sizes(names.len(), EXISTS_PER_STATEMENT) {
            let (chunk, rest) = names.split_at(size);
            names = rest;
            let mut ask = Query::select();
            for (i, (lower, organization)) in chunk.iter().enumerate() {
                let clash = username_clash(lower, organization.as_deref());
                ask.expr_as(Expr::exists(clash), Alias::new(format!("c{i}")));
            }
            let Some(row) = txn.query_one(&ask).await? else {
                return Err(DbErr::RecordNotFound("the usernames' clashes".into()));
            };
            for (i, name) in chunk.iter().enumerate() {
                if row.try_get::<bool>("", &format!("c{i}"))? {
                    in_directory.insert(name.clone());
                }
            }
        }
        Ok(Self {
            in_directory,
            taken: HashMap::new(),
        })
    }

    /// The index of the first name that clashes, with the directory, the batch's earlier users
    /// or the user's own earlier names (see [`username_clash`]).
    fn first_taken(&self, names: &[username::Model]) -> Option<usize> {
        let mut own: HashMap<&str, HashSet<&str>> = HashMap::new();
        names.iter().position(|name| {
            let lower = name.username_lower.as_str();
            let clashes_with = |scope: &str| {
                !name.is_organization_specific
                    || scope == username::INSTANCE_SCOPE
                    || scope == name.uniqueness_scope
            };
            let clash = self.in_directory.contains(&asked(name))
                || self
                    .taken
                    .get(lower)
                    .is_some_and(|scopes| scopes.iter().any(|scope| clashes_with(scope)))
                || own
                    .get(lower)
                    .is_some_and(|scopes| scopes.iter().any(|scope| clashes_with(scope)));
            own.entry(lower)
                .or_default()
                .insert(name.uniqueness_scope.as_str());
            clash
        })
    }

    fn take(&mut self, names: &[username::Model]) {
        for name in names {
            self.taken
                .entry(name.username_lower.clone())
                .or_default()
                .insert(name.uniqueness_scope.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(lower: &str, organization: Option<&str>) -> username::Model {
        username::Model {
            id: lower.to_owned(),
            user_id: "u".into(),
            organization_id: organization.unwrap_or("o1").to_owned(),
            username: lower.to_owned(),
            username_lower: lower.to_owned(),
            is_organization_specific: organization.is_some(),
            uniqueness_scope: organization.unwrap_or(username::INSTANCE_SCOPE).to_owned(),
            created_at: 0,
        }
    }

    #[test]
    fn names_clash_as_the_unique_index_and_the_lone_check_decide() {
        let mut names = Names {
            in_directory: [asked(&name("dan", Some("o1"))), asked(&name("eve", None))].into(),
            taken: HashMap::new(),
        };
        names.take(&[name("ann", Some("o1")), name("bob", None)]);
        // The directory's answers are per name as asked.
        assert_eq!(names.first_taken(&[name("dan", Some("o1"))]), Some(0));
        assert_eq!(names.first_taken(&[name("dan", Some("o2"))]), None);
        assert_eq!(
            names.first_taken(&[name("x", None), name("eve", None)]),
            Some(1)
        );
        // An instance-wide name clashes with the same name in any organization.
        assert_eq!(
            names.first_taken(&[name("zed", None), name("ann", None)]),
            Some(1)
        );
        // An organization-specific name clashes in its organization and with instance-wide
        // names, never with another organization's.
        assert_eq!(names.first_taken(&[name("ann", Some("o1"))]), Some(0));
        assert_eq!(names.first_taken(&[name("ann", Some("o2"))]), None);
        assert_eq!(names.first_taken(&[name("bob", Some("o2"))]), Some(0));
        // A user's own names clash with each other.
        assert_eq!(
            names.first_taken(&[name("cat", Some("o2")), name("cat", None)]),
            Some(1)
        );
        assert_eq!(
            names.first_taken(&[name("cat", None), name("cat", Some("o2"))]),
            Some(1)
        );
        assert_eq!(
            names.first_taken(&[name("cat", Some("o1")), name("cat", Some("o2"))]),
            None
        );
    }

    #[test]
    fn a_code_keeps_its_lifetime_at_the_batch_time() {
        let mut code = verification_code::Model {
            owner_id: "u".into(),
            purpose: "p".into(),
            user_id: "u".into(),
            code_hash: "h".into(),
            expires_at: 1_005,
            failed_attempts: 0,
            created_at: 5,
        };
        issued_at(&mut code, 100);
        assert_eq!((code.created_at, code.expires_at), (100, 1_100));
    }
}
