//! Read snapshots: a page, its total and the processed sequence read in one transaction, so that
//! they agree with each other.
//!
//! On PostgreSQL the snapshot is a sqlx transaction of sea-orm's pool, begun by one message
//! that carries its settings (`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL
//! statement_timeout = ...`): sea-orm's own transactions always send a bare BEGIN and wait for
//! it, so the settings took a round trip of their own. The snapshot implements sea-orm's
//! `ConnectionTrait`, so reads run their statements on it as on any sea-orm connection.

use std::time::Duration;

use sea_orm::sea_query::Values;
use sea_orm::sqlx::{self, Postgres};
use sea_orm::{
    ConnAcquireErr, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    ExecResult, QueryResult, RuntimeErr, Statement, TransactionTrait,
};
use sea_query_sqlx::SqlxValues;
use tokio::sync::Mutex;

tokio::task_local! {
    static COUNTED: std::cell::Cell<usize>;
}

/// Runs `read`, and says how many statements PostgreSQL snapshots sent within it. They go to
/// the database past sea-orm, so a connection's metric callback does not see them; whoever
/// counts a read's round trips adds these.
pub async fn counting_statements<F: std::future::Future>(read: F) -> (usize, F::Output) {
    COUNTED
        .scope(std::cell::Cell::new(0), async {
            let output = read.await;
            (COUNTED.with(std::cell::Cell::get), output)
        })
        .await
}

/// Counts a statement a snapshot sends itself (see [`counting_statements`]).
fn count_statement() {
    let _ = COUNTED.try_with(|counted| counted.set(counted.get() + 1));
}

/// A read-only transaction that sees one snapshot. SQLite transactions are snapshots already
/// (WAL); PostgreSQL needs REPEATABLE READ for it.
#[derive(Debug)]
pub enum Snapshot {
    /// SQLite: sea-orm's transaction.
    Transaction(DatabaseTransaction),
    /// PostgreSQL: a sqlx transaction begun with its settings (see the module's comment).
    Postgres(Mutex<sqlx::Transaction<'static, Postgres>>),
}

/// Begins a [`Snapshot`].
///
/// Within a request, a PostgreSQL snapshot runs under `statement_timeout` = what is left of the
/// request's deadline (which the server's `--request-timeout` caps): a slow statement (a
/// costly regex, a lock wait) fails with SQLSTATE 57014, which is DeadlineExceeded (see
/// `error::statement_timed_out`). This is also how the statement is cancelled when the deadline
/// layer gives up on the request: dropping the request future does not cancel a statement
/// sqlx has sent, but PostgreSQL stops it by itself at the same moment, so the connection is
/// back in the pool at the deadline instead of whenever the statement would have finished.
///
/// `plans` says how PostgreSQL plans the snapshot's statements (see [`Plans`]).
pub async fn begin_snapshot(db: &DatabaseConnection, plans: Plans) -> Result<Snapshot, DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let mut begin = String::from("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
            if plans == Plans::Generic {
                begin.push_str("; SET LOCAL plan_cache_mode = force_generic_plan");
            }
            if let Some(remaining) = crate::limits::time_left::remaining() {
                // A little before the deadline (a tenth, at most a second), so that the
                // database's answer arrives before the deadline layer gives up: the client
                // learns that the database was stopped, and the transaction ends normally.
                let timeout = remaining - (remaining / 10).min(STATEMENT_TIMEOUT_MARGIN);
                // 0 would mean "no timeout": a deadline already past gets the shortest one.
                let millis = timeout.as_millis().clamp(1, i32::MAX as u128);
                begin.push_str(&format!("; SET LOCAL statement_timeout = {millis}"));
            }
            // The statement is ours alone: two constants and a number.
            let txn = db
                .get_postgres_connection_pool()
                .begin_with(sqlx::AssertSqlSafe(begin))
                .await
                .map_err(begin_error)?;
            Ok(Snapshot::Postgres(Mutex::new(txn)))
        }
        _ => Ok(Snapshot::Transaction(db.begin().await?)),
    }
}

/// Longest head start of a snapshot's `statement_timeout` on the request's deadline.
const STATEMENT_TIMEOUT_MARGIN: Duration = Duration::from_secs(1);

/// How PostgreSQL plans a snapshot's statements. sqlx prepares each statement once per
/// connection, but PostgreSQL plans a prepared statement again for every execution by default
/// (a custom plan, made for the values bound): at a million users with the users table's many
/// indexes, that planning took 0.5-0.6 ms of a statement that then ran in 0.05 ms. A generic
/// plan is made once per connection for any value, which is only right where the best plan
/// does not depend on the values (see `reads::compile::planning`). SQLite plans a prepared
/// statement once anyway (the bundled SQLite is built without STAT4, see `store::sqlite`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plans {
    /// Planned for the values of each execution: PostgreSQL's default.
    PerValue,
    /// Planned once for all values (`plan_cache_mode = force_generic_plan`).
    Generic,
}

impl Snapshot {
    /// From here on, plans for each execution's values again (see [`Plans`]): for what
    /// follows a statement whose answer showed that the values matter.
    pub async fn plan_per_value(&self) -> Result<(), DbErr> {
        match self {
            Snapshot::Transaction(_) => Ok(()),
            Snapshot::Postgres(_) => self
                .execute_unprepared("SET LOCAL plan_cache_mode = force_custom_plan")
                .await
                .map(drop),
        }
    }

    /// Ends the snapshot (it wrote nothing; COMMIT releases it like ROLLBACK would).
    pub async fn commit(self) -> Result<(), DbErr> {
        match self {
            Snapshot::Transaction(txn) => txn.commit().await,
            Snapshot::Postgres(txn) => txn.into_inner().commit().await.map_err(query_error),
        }
    }
}

/// sea-orm's errors for sqlx's, as sea-orm's own transactions report them: a pool that gives no
/// connection is `ConnectionAcquire`, so `error::unavailable` reads both the same way.
fn begin_error(error: sqlx::Error) -> DbErr {
    match error {
        sqlx::Error::PoolTimedOut => DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
        sqlx::Error::PoolClosed => DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
        error => query_error(error),
    }
}

fn query_error(error: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(error.into()))
}

/// A sea-query statement bound for sqlx: its text, built by sea-query, and its values, moved
/// (each method owns its statement; a page's hundred ids need no copy).
fn bound(statement: Statement) -> sqlx::query::Query<'static, Postgres, SqlxValues> {
    let values = statement.values.unwrap_or(Values(Vec::new()));
    sqlx::query_with(sqlx::AssertSqlSafe(statement.sql), SqlxValues(values))
}

#[async_trait::async_trait]
impl ConnectionTrait for Snapshot {
    fn get_database_backend(&self) -> DbBackend {
        match self {
            Snapshot::Transaction(txn) => txn.get_database_backend(),
            Snapshot::Postgres(_) => DbBackend::Postgres,
        }
    }

    async fn execute_raw(&self, statement: Statement) -> Result<ExecResult, DbErr> {
        match self {
            Snapshot::Transaction(txn) => txn.execute_raw(statement).await,
            Snapshot::Postgres(txn) => {
                count_statement();
                let mut txn = txn.lock().await;
                let done = bound(statement)
                    .execute(&mut **txn)
                    .await
                    .map_err(query_error)?;
                Ok(done.into())
            }
        }
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        match self {
            Snapshot::Transaction(txn) => txn.execute_unprepared(sql).await,
            Snapshot::Postgres(txn) => {
                count_statement();
                let mut txn = txn.lock().await;
                let done = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                    .execute(&mut **txn)
                    .await
                    .map_err(query_error)?;
                Ok(done.into())
            }
        }
    }

    async fn query_one_raw(&self, statement: Statement) -> Result<Option<QueryResult>, DbErr> {
        match self {
            Snapshot::Transaction(txn) => txn.query_one_raw(statement).await,
            Snapshot::Postgres(txn) => {
                count_statement();
                let mut txn = txn.lock().await;
                let row = bound(statement)
                    .fetch_optional(&mut **txn)
                    .await
                    .map_err(query_error)?;
                Ok(row.map(QueryResult::from))
            }
        }
    }

    async fn query_all_raw(&self, statement: Statement) -> Result<Vec<QueryResult>, DbErr> {
        match self {
            Snapshot::Transaction(txn) => txn.query_all_raw(statement).await,
            Snapshot::Postgres(txn) => {
                count_statement();
                let mut txn = txn.lock().await;
                let rows = bound(statement)
                    .fetch_all(&mut **txn)
                    .await
                    .map_err(query_error)?;
                Ok(rows.into_iter().map(QueryResult::from).collect())
            }
        }
    }
}
