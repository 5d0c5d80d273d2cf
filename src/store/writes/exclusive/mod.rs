//! An exclusive import (`userdir import --exclusive`): the whole file in one transaction that
//! has the directory's writes to itself, so that it can do what `pg_restore` does with a large
//! load: drop the indexes (and on PostgreSQL the foreign keys) that every row would otherwise
//! update or check one at a time, load, then build each index in one sorted pass.
//!
//! Why: a batched import spends most of its database time keeping up the users' many
//! non-unique indexes row by row, at random places (and on PostgreSQL checking foreign keys);
//! a sorted build of the same index costs a fraction of it (docs/benchmarks.md).
//!
//! What it keeps: every unique index and primary key (they decide what is taken, and the
//! import's reads use them), the counters' triggers, and the indexes the import's own reads
//! need ([`KEPT`]). What it drops it reads from the database's catalog with the definitions it
//! puts back, so nothing is written twice and the schema after an exclusive import is the
//! schema before it. Each backend's module says what it drops and who waits meanwhile.
//!
//! Safety: both backends' schema changes are transactional. An error or an interruption rolls
//! everything back: the directory is as it was.

mod postgres;
mod sqlite;

use std::time::Instant;

use sea_orm::{DatabaseConnection, DbBackend, DbErr};

use super::import::{ImportBatch, Txn};

/// The tables an import writes, users first and the event log last (the order a reader reads
/// them): the drops and rebuilds are limited to them.
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

/// Users written before the tables' statistics are first read again (see
/// [`ExclusiveImport::written`]); then each time the users have doubled.
const FIRST_ANALYZE: usize = 10_000;

/// The transaction of an exclusive import, holding the event log's lock, with the statements
/// that put back what it dropped.
pub struct ExclusiveImport {
    txn: Txn<'static>,
    /// Run in order by [`ExclusiveImport::finish`].
    restore: Vec<String>,
    /// Users written so far, and how many more make the next ANALYZE.
    written: usize,
    next_analyze: usize,
}

impl ExclusiveImport {
    /// Begins the import's transaction, takes the event log's lock, and drops what the load
    /// would otherwise keep up row by row.
    pub async fn begin(db: &DatabaseConnection) -> Result<Self, DbErr> {
        let (txn, restore) = match db.get_database_backend() {
            DbBackend::Postgres => {
                let (txn, restore) = postgres::begin(db).await?;
                (Txn::Postgres(txn), restore)
            }
            DbBackend::Sqlite => {
                let (txn, restore) = sqlite::begin(db).await?;
                (Txn::Sqlite(txn), restore)
            }
            other => {
                return Err(DbErr::Custom(format!("no exclusive import on {other:?}")));
            }
        };
        Ok(Self {
            txn,
            restore,
            written: 0,
            next_analyze: FIRST_ANALYZE,
        })
    }

    /// Counts a batch's users, and on PostgreSQL reads the tables' statistics again when the
    /// users have doubled since the last time. Why: nobody else sees the import's rows until it
    /// commits, autovacuum included, so the planner would keep the statistics of the tables
    /// before the import. With those, the batches' reads (`username_lower IN (...)` of a
    /// thousand names) look like they match every row, and each became a sequential scan of a
    /// table growing to a million rows (72 % of a 1M import's time in samples of
    /// `pg_stat_activity`). ANALYZE within the transaction samples the transaction's own rows.
    /// SQLite plans those reads on their unique and kept indexes whatever its statistics say.
    pub async fn written(&mut self, users: usize) -> Result<(), DbErr> {
        self.written += users;
        if matches!(self.txn, Txn::Postgres(_)) && self.written >= self.next_analyze {
            self.next_analyze = self.written * 2;
            self.txn
                .execute_trusted(format!("ANALYZE {}", TABLES.join(", ")))
                .await?;
        }
        Ok(())
    }

    /// The next batch, on a savepoint of the import's transaction.
    pub async fn batch(&mut self) -> Result<ImportBatch<'_>, DbErr> {
        ImportBatch::within(self.txn.savepoint().await?).await
    }

    /// Puts back what the import dropped (a row that breaks a foreign key fails the whole
    /// import), and commits.
    pub async fn finish(mut self) -> Result<(), DbErr> {
        for statement in std::mem::take(&mut self.restore) {
            let started = Instant::now();
            self.txn.execute_trusted(statement.clone()).await?;
            tracing::debug!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                statement,
                "exclusive import: put back"
            );
        }
        let started = Instant::now();
        self.txn.commit().await?;
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "exclusive import: committed"
        );
        Ok(())
    }
}
