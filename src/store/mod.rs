//! Persistence: entities, reads (queries) and writes (commands + events), kept apart.

pub mod entities;
pub mod reads;
pub mod writes;

use std::time::Duration;

use migration::MigratorTrait;

use crate::domain::Scope;
use sea_orm::sqlx::sqlite::SqliteJournalMode;
use sea_orm::{
    AccessMode, ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, IsolationLevel, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

/// Opens a connection pool. SQLite connections make LIKE case-sensitive (as on PostgreSQL;
/// ignore-case search uses the folded `*_lower` columns instead), use WAL so readers never
/// block the writer, and wait for a busy database instead of failing at once.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url);
    options.sqlx_logging(false).map_sqlx_sqlite_opts(|sqlite| {
        sqlite
            .pragma("case_sensitive_like", "ON")
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true)
            // `regexp(pattern, value)` for regex searches (Rust's `regex` crate).
            .with_regexp()
    });
    Database::connect(options).await
}

/// Brings the schema up to date.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    migration::Migrator::up(db, None).await
}

/// A read-only transaction that sees one snapshot: a page, its total and the processed sequence
/// agree with each other. SQLite transactions are snapshots already (WAL); PostgreSQL needs
/// REPEATABLE READ for it.
pub async fn begin_snapshot(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            db.begin_with_config(
                Some(IsolationLevel::RepeatableRead),
                Some(AccessMode::ReadOnly),
            )
            .await
        }
        _ => db.begin().await,
    }
}

/// A write transaction. On SQLite it takes the write lock at BEGIN, so two writers never both
/// read and then fail to upgrade their lock.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    match db.get_database_backend() {
        DbBackend::Sqlite => {
            db.begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await
        }
        _ => db.begin().await,
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
}

/// The actor of the operator's own tools (the CLI with database access).
pub const OPERATOR: &str = "cli";

impl ScopedDb {
    /// For a caller: `actor` is its principal's subject (`token:<id>`, `jwt:<subject>`).
    pub fn new(db: DatabaseConnection, scope: Scope, actor: String) -> Self {
        Self { db, scope, actor }
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

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }
}

impl std::ops::Deref for ScopedDb {
    type Target = DatabaseConnection;

    fn deref(&self) -> &DatabaseConnection {
        &self.db
    }
}
