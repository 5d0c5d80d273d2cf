//! Persistence: entities, reads (queries) and writes (commands + events), kept apart.

pub mod authenticators;
pub mod entities;
pub mod keys;
pub mod pool;
pub mod probe;
pub mod reads;
pub mod snapshot;
pub mod sqlite;
pub mod writes;

use std::ops::Deref;
use std::time::Duration;

use migration::MigratorTrait;

pub use snapshot::{Plans, Snapshot, begin_snapshot};

use crate::domain::Scope;
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

/// Connections in a PostgreSQL pool (sqlx's default, stated here because the cap on concurrent
/// regex searches, `limits::regex_searches`, must stay below it); SQLite's is
/// [`sqlite::POOL_SIZE`].
pub const POOL_SIZE: u32 = 10;
const _: () = assert!(
    crate::limits::regex_searches::MAX_CONCURRENT_REGEX_SEARCHES_BOUND + 2 <= POOL_SIZE as usize,
    "regex searches must always leave two connections of the pool free"
);
const _: () = assert!(
    crate::limits::regex_searches::DEFAULT_MAX_CONCURRENT_REGEX_SEARCHES + 2
        <= sqlite::POOL_SIZE as usize,
    "the default cap on regex searches must leave two connections of a SQLite pool free"
);

/// The size of the pool for the database of `url`.
pub fn pool_size(url: &str) -> u32 {
    if url.starts_with("sqlite:") {
        sqlite::POOL_SIZE
    } else {
        POOL_SIZE
    }
}

/// How long the pool waits for the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatabaseTimeouts {
    /// Longest a request waits for a connection of the pool, opening a new one included (sqlx
    /// retries a refused connection until then): past it the request is Unavailable, so a
    /// database that is gone fails requests this quickly instead of at their deadline.
    pub acquire: Duration,
    /// Longest [`connect_with`] waits for the database to answer at all (a server started
    /// beside its database, or before it), retrying while it cannot be reached.
    pub connect: Duration,
}

/// Default [`DatabaseTimeouts::acquire`]: short enough that a request fails within a second
/// while the database is gone (the gate's token lookup is one acquire), long enough that a
/// busy pool of [`POOL_SIZE`] connections is waited for, not refused.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_millis(500);
/// Default [`DatabaseTimeouts::connect`]: sqlx's acquire timeout, which was the wait at start
/// before the timeouts could be set.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for DatabaseTimeouts {
    fn default() -> Self {
        Self {
            acquire: DEFAULT_ACQUIRE_TIMEOUT,
            connect: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

/// Pause between two attempts of [`connect_with`] to reach a database that is not there yet.
const CONNECT_RETRY: Duration = Duration::from_millis(250);

/// How long a pooled connection may sit idle before it is tested again before a loan: shorter
/// than any database restart that could have closed it meanwhile (a connection lent during an
/// outage fails and is dropped as it comes back).
const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

/// [`connect_with`] the default timeouts.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    connect_with(url, DatabaseTimeouts::default()).await
}

/// Opens a connection pool of [`pool_size`], then waits until the database answers (at most
/// `timeouts.connect`, retrying while it cannot be reached; any other error, e.g. a refused
/// password or a missing database, at once). SQLite connections get [`sqlite::tuned`].
///
/// Each attempt is the whole of it, the pool and its first answer: on SQLite, sea-orm's
/// `Database::connect` already asks the version over the pool, so a first connection slower
/// than `timeouts.acquire` (a fresh file switched to WAL on a busy disk) fails there, and is
/// retried like a database not up yet instead of ending the start.
///
/// The pool tests a connection before lending it when it sat idle for [`IDLE_BEFORE_PING`],
/// so after the database restarts, the connections it closed are replaced without a restart
/// of the server. A connection in use is not tested again on every loan (sqlx's default, a
/// round trip added to every statement outside a transaction): sqlx already tests each one as
/// it comes back (and drops it when the test fails), so one broken under a request is not lent
/// again.
pub async fn connect_with(
    url: &str,
    timeouts: DatabaseTimeouts,
) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(pool_size(url))
        .acquire_timeout(timeouts.acquire)
        .test_before_acquire_if_idle_for(IDLE_BEFORE_PING)
        // The pool is made at once; the loop below waits for the database.
        .connect_lazy(true)
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(sqlite::tuned);
    let deadline = tokio::time::Instant::now() + timeouts.connect;
    let mut attempts = 0u32;
    loop {
        let error = match answering_pool(&options).await {
            Ok(db) => return Ok(db),
            Err(error) => error,
        };
        attempts += 1;
        let unavailable = crate::error::database_unavailable(&error);
        if unavailable && tokio::time::Instant::now() + CONNECT_RETRY < deadline {
            if attempts == 1 {
                tracing::warn!(%error, timeout = ?timeouts.connect, "waiting for the database");
            }
            tokio::time::sleep(CONNECT_RETRY).await;
            continue;
        }
        return Err(if unavailable {
            DbErr::Conn(sea_orm::RuntimeErr::Internal(format!(
                "the database did not answer within {:?}: {error}",
                timeouts.connect
            )))
        } else {
            error
        });
    }
}

/// One attempt of [`connect_with`]: a pool that has answered a ping, or why not (its pool
/// closed).
async fn answering_pool(options: &ConnectOptions) -> Result<DatabaseConnection, DbErr> {
    let db = Database::connect(options.clone()).await?;
    match db.ping().await {
        Ok(()) => Ok(db),
        Err(error) => {
            db.close().await.ok();
            Err(error)
        }
    }
}

/// Brings the schema up to date. sea-orm-migration wraps each PostgreSQL migration in a
/// transaction of its own, but runs SQLite's statements straight on the pool, each on whichever
/// connection is free: a connection that loaded the schema before another one dropped an index
/// still believes in it, and refuses to create an index of that name ("already exists"). On
/// SQLite every pending migration therefore runs in one transaction, on one connection, which
/// also makes the upgrade all or nothing.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    match db.get_database_backend() {
        DbBackend::Sqlite => {
            let txn = db.begin().await?;
            migration::Migrator::up(&txn, None).await?;
            txn.commit().await
        }
        _ => migration::Migrator::up(db, None).await,
    }
}

/// A write transaction. On SQLite it first waits for this process's turn to write
/// ([`sqlite::queue`]), then takes the write lock at BEGIN (IMMEDIATE), so two writers never
/// both read and then fail to upgrade their lock.
pub async fn begin_write(db: &DatabaseConnection) -> Result<WriteTransaction, DbErr> {
    match db.get_database_backend() {
        DbBackend::Sqlite => {
            let turn = sqlite::queue::turn(db).await?;
            let txn = db
                .begin_with_options(TransactionOptions {
                    sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                    ..Default::default()
                })
                .await?;
            Ok(WriteTransaction {
                txn,
                _turn: Some(turn),
            })
        }
        _ => Ok(WriteTransaction {
            txn: db.begin().await?,
            _turn: None,
        }),
    }
}

/// A write transaction and, on SQLite, the writer's turn, which ends with it: committed,
/// rolled back or dropped (rolled back). Reads and writes go through `Deref`.
#[derive(Debug)]
pub struct WriteTransaction {
    // Declared first, so that a dropped transaction has queued its rollback before the next
    // writer's turn begins.
    txn: DatabaseTransaction,
    _turn: Option<sqlite::queue::Turn>,
}

impl WriteTransaction {
    pub async fn commit(self) -> Result<(), DbErr> {
        self.txn.commit().await
    }

    pub async fn rollback(self) -> Result<(), DbErr> {
        self.txn.rollback().await
    }
}

impl Deref for WriteTransaction {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

/// The database as one caller may use it: every read narrows to `scope` and every write checks
/// it (see `reads::users` and `command::user_for_write`). Services get one per request from the
/// caller's principal, so a handler cannot reach the directory without a scope. The actor
/// travels with the scope, so every event records who acted without any command passing it.
#[derive(Clone, Debug)]
pub struct ScopedDb {
    db: DatabaseConnection,
    scope: Scope,
    actor: String,
    /// The server's group commit, which its writes join; None: each write commits alone.
    writes: Option<writes::Writes>,
}

/// The actor of the operator's own tools (the CLI with database access).
pub const OPERATOR: &str = "cli";

impl ScopedDb {
    /// For a caller: `actor` is its principal's subject (`token:<id>`, `jwt:<subject>`).
    pub fn new(db: DatabaseConnection, scope: Scope, actor: String) -> Self {
        Self {
            db,
            scope,
            actor,
            writes: None,
        }
    }

    /// Writes through this handle join the server's group transactions, and its CreateUsers
    /// its batches (see `writes::group` and `writes::creates`).
    pub fn grouped(mut self, writes: &writes::Writes) -> Self {
        self.writes = Some(writes.clone());
        self
    }

    pub fn group(&self) -> Option<&writes::group::GroupCommit> {
        self.writes.as_ref().map(|writes| &writes.group)
    }

    pub fn writes(&self) -> Option<&writes::Writes> {
        self.writes.as_ref()
    }

    /// Instance-wide: for the operator's own tools (CLI, seeding, benchmarks).
    pub fn instance(db: DatabaseConnection) -> Self {
        Self::new(db, Scope::Instance, OPERATOR.to_owned())
    }

    /// The same database and scope, recording another actor (e.g. `bootstrap` on first start).
    pub fn acting_as(mut self, actor: &str) -> Self {
        self.actor = actor.to_owned();
        self
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// Who acts through this handle; every event it writes records it.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// The database without the scope, for reads that are not about one organization's users
    /// (e.g. whether a role exists). Deliberately no `Deref`: an unscoped read says so.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::sqlx::{self, Connection, SqliteConnection};

    /// Another process holds the SQLite file exclusively (a backup, a second instance
    /// migrating) when the server starts: switching the file to WAL waits for the lock longer
    /// than the acquire timeout. The start waits for the database instead of failing at once.
    #[tokio::test]
    async fn a_first_connection_slower_than_the_acquire_timeout_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("userdir.db").display()
        );
        let mut holder = SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("CREATE TABLE held (x)")
            .execute(&mut holder)
            .await
            .unwrap();
        sqlx::query("BEGIN EXCLUSIVE")
            .execute(&mut holder)
            .await
            .unwrap();
        let held_for = Duration::from_millis(1500);
        let release = tokio::spawn(async move {
            tokio::time::sleep(held_for).await;
            sqlx::query("COMMIT").execute(&mut holder).await.unwrap();
            holder.close().await.unwrap();
        });
        let timeouts = DatabaseTimeouts {
            acquire: Duration::from_millis(200),
            connect: Duration::from_secs(30),
        };
        let started = tokio::time::Instant::now();
        let db = connect_with(&url, timeouts)
            .await
            .expect("the start waits for the lock instead of failing");
        assert!(
            started.elapsed() >= held_for,
            "connected while the lock was held"
        );
        db.ping().await.unwrap();
        release.await.unwrap();
        db.close().await.unwrap();
    }
}
