//! Whether the database answers, asked over a pool of its own: one connection beside the
//! server's pool, so that a pool busy with requests never looks like a database that is gone,
//! and a database that is gone is noticed without waiting for a request to fail.

use std::time::Duration;

use sea_orm::sqlx::pool::PoolOptions;
use sea_orm::{DatabaseConnection, DbBackend, DbErr, SqlxPostgresConnector, SqlxSqliteConnector};

/// A pool of at most one connection that gives up on a connection after `timeout`.
fn one_connection<DB: sea_orm::sqlx::Database>(timeout: Duration) -> PoolOptions<DB> {
    PoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .acquire_timeout(timeout)
}

/// The database as the health probe reaches it.
#[derive(Clone, Debug)]
pub struct Probe {
    db: DatabaseConnection,
    timeout: Duration,
}

impl Probe {
    /// A probe of the database behind `db`, with the same connect options (URL, credentials,
    /// SQLite pragmas), whose every answer takes at most `timeout`. It connects on its first
    /// question, not here.
    pub fn beside(db: &DatabaseConnection, timeout: Duration) -> Self {
        let probe = match db.get_database_backend() {
            DbBackend::Postgres => SqlxPostgresConnector::from_sqlx_postgres_pool(
                one_connection(timeout).connect_lazy_with(
                    (*db.get_postgres_connection_pool().connect_options()).clone(),
                ),
            ),
            DbBackend::Sqlite => SqlxSqliteConnector::from_sqlx_sqlite_pool(
                one_connection(timeout).connect_lazy_with(
                    (*db.get_sqlite_connection_pool().connect_options()).clone(),
                ),
            ),
            // No other backend is built in; asking the server's own pool is still an answer.
            _ => db.clone(),
        };
        Self { db: probe, timeout }
    }

    /// Ok when the database answered a ping within the timeout; the reason otherwise.
    pub async fn ask(&self) -> Result<(), DbErr> {
        match tokio::time::timeout(self.timeout, self.db.ping()).await {
            Ok(answer) => answer,
            Err(_) => Err(DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout)),
        }
    }

    /// Closes the probe's connection.
    pub async fn close(self) {
        self.db.close().await.ok();
    }
}
