//! An exclusive import (`userdir import --exclusive`, PostgreSQL): the whole file in one
//! transaction that has the directory to itself, so that it can do what `pg_restore` does with a
//! large load: drop the indexes and foreign keys that every row would otherwise update or check
//! one at a time, load, then build each index in one sorted pass and check each foreign key in
//! one join.
//!
//! Why: in an import of 200,000 users the database spent about a third of its time checking
//! foreign keys (each check locks the parent row, a WAL record per child row) and about a third
//! maintaining the 37 non-unique indexes of the users' tables (docs/benchmarks.md).
//!
//! What it keeps: every unique index and primary key (they decide what is taken, and the
//! import's reads use them), the counters' triggers, and the indexes the import's own reads
//! need ([`KEPT`]). What it drops it reads from the catalog, with the definitions it puts back
//! (`pg_get_indexdef`, `pg_get_constraintdef`), so nothing is written twice and the schema
//! after an exclusive import is the schema before it.
//!
//! Safety: PostgreSQL's DDL is transactional. The drops take an ACCESS EXCLUSIVE lock on the
//! tables, so nobody reads or writes them until the import commits (readers wait, and fail by
//! their deadline when it comes first), and nobody sees them without their indexes or foreign
//! keys. An error or an interruption rolls everything back: the directory is as it was.

use sea_orm::{DatabaseConnection, DbBackend, DbErr};
use sqlx::{AssertSqlSafe, Postgres};

use super::import::{self, ImportBatch, exec_error};

/// The tables an import writes, users first and the event log last (see `begin`): the drops
/// and rebuilds are limited to them.
const TABLES: [&str; 10] = [
    "users",
    "usernames",
    "passwords",
    "webauthn_credentials",
    "totps",
    "otp_sms",
    "otp_emails",
    "authentication_keys",
    "idp_links",
    "events",
];

/// Non-unique indexes the import's own reads use (which usernames are taken, by folded name).
const KEPT: [&str; 1] = ["idx_usernames_username_lower"];

/// Memory for each index build: a sort of a million keys fits, instead of spilling to disk.
const BUILD_MEMORY: &str = "256MB";

/// Users written before the tables' statistics are first read again (see
/// [`ExclusiveImport::written`]); then each time the users have doubled.
const FIRST_ANALYZE: usize = 10_000;

/// The transaction of an exclusive import, holding the event log's lock, with the statements
/// that put back what it dropped.
pub struct ExclusiveImport {
    txn: sqlx::Transaction<'static, Postgres>,
    /// Run in order by [`ExclusiveImport::finish`]: the indexes first, then the foreign keys.
    restore: Vec<String>,
    /// Users written so far, and how many more make the next ANALYZE.
    written: usize,
    next_analyze: usize,
}

impl ExclusiveImport {
    /// Begins the import's transaction, takes the event log's lock, and drops the non-unique
    /// indexes and the foreign keys of the import's tables (not [`KEPT`]).
    pub async fn begin(db: &DatabaseConnection) -> Result<Self, DbErr> {
        if db.get_database_backend() != DbBackend::Postgres {
            return Err(DbErr::Custom(
                "an exclusive import needs PostgreSQL: on SQLite an import is bound by the \
                 importer's own work, not by index or foreign-key upkeep"
                    .into(),
            ));
        }
        let mut txn = import::begin_postgres(db).await?;
        // Every table at once, in the order a reader reads them (users, their authenticators,
        // the event log), so that a reader that holds one and waits for the next cannot close a
        // circle with the drops below.
        execute(
            &mut txn,
            format!("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", TABLES.join(", ")),
        )
        .await?;
        // Memory for the index builds of `finish`.
        execute(
            &mut txn,
            format!("SET LOCAL maintenance_work_mem = '{BUILD_MEMORY}'"),
        )
        .await?;
        let tables: Vec<String> = TABLES.iter().map(|t| (*t).to_owned()).collect();
        let kept: Vec<String> = KEPT.iter().map(|t| (*t).to_owned()).collect();
        // Names come quoted from the catalog (regclass, quote_ident): no text from the input.
        let indexes: Vec<(String, String)> = sqlx::query_as(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) \
             FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE i.indrelid = ANY($1::text[]::regclass[]) AND NOT i.indisunique \
             AND NOT i.indisprimary AND c.relname <> ALL($2) ORDER BY 1",
        )
        .bind(&tables)
        .bind(&kept)
        .fetch_all(&mut *txn)
        .await
        .map_err(exec_error)?;
        let foreign_keys: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT conrelid::regclass::text, quote_ident(conname), pg_get_constraintdef(oid) \
             FROM pg_constraint WHERE contype = 'f' AND conrelid = ANY($1::text[]::regclass[]) \
             ORDER BY 1, 2",
        )
        .bind(&tables)
        .fetch_all(&mut *txn)
        .await
        .map_err(exec_error)?;
        let mut restore = Vec::with_capacity(indexes.len() + foreign_keys.len());
        for (index, definition) in indexes {
            execute(&mut txn, format!("DROP INDEX {index}")).await?;
            restore.push(definition);
        }
        for (table, name, definition) in foreign_keys {
            execute(
                &mut txn,
                format!("ALTER TABLE {table} DROP CONSTRAINT {name}"),
            )
            .await?;
            restore.push(format!(
                "ALTER TABLE {table} ADD CONSTRAINT {name} {definition}"
            ));
        }
        Ok(Self {
            txn,
            restore,
            written: 0,
            next_analyze: FIRST_ANALYZE,
        })
    }

    /// Counts a batch's users, and reads the tables' statistics again when the users have
    /// doubled since the last time. Why: nobody else sees the import's rows until it commits,
    /// autovacuum included, so the planner would keep the statistics of the tables before the
    /// import. With those, the batches' reads (`username_lower IN (...)` of a thousand names)
    /// look like they match every row, and each became a sequential scan of a table growing to
    /// a million rows (72 % of a 1M import's time in samples of `pg_stat_activity`). ANALYZE
    /// within the transaction samples the transaction's own rows.
    pub async fn written(&mut self, users: usize) -> Result<(), DbErr> {
        self.written += users;
        if self.written >= self.next_analyze {
            self.next_analyze = self.written * 2;
            execute(&mut self.txn, format!("ANALYZE {}", TABLES.join(", "))).await?;
        }
        Ok(())
    }

    /// The next batch, on a savepoint of the import's transaction.
    pub async fn batch(&mut self) -> Result<ImportBatch<'_>, DbErr> {
        let savepoint = sqlx::Acquire::begin(&mut self.txn)
            .await
            .map_err(exec_error)?;
        ImportBatch::within(savepoint).await
    }

    /// Builds the dropped indexes, checks and adds the dropped foreign keys (a row that breaks
    /// one fails the whole import), and commits.
    pub async fn finish(mut self) -> Result<(), DbErr> {
        for statement in std::mem::take(&mut self.restore) {
            execute(&mut self.txn, statement).await?;
        }
        self.txn.commit().await.map_err(exec_error)
    }

    /// How many indexes and foreign keys the import dropped, to put back at its end.
    pub fn deferred(&self) -> usize {
        self.restore.len()
    }
}

/// Runs a statement built from the catalog's own names and definitions.
async fn execute(
    txn: &mut sqlx::Transaction<'static, Postgres>,
    statement: String,
) -> Result<(), DbErr> {
    sqlx::query(AssertSqlSafe(statement))
        .execute(&mut **txn)
        .await
        .map(drop)
        .map_err(exec_error)
}
