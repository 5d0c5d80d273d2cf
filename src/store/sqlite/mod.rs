//! What only SQLite needs: its connection settings and the queue its writers take turns in.

pub mod queue;

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};

/// How long a statement waits for a lock another process holds (`busy_timeout`), and a writer
/// for its turn in this process's queue: a bound, never a hang. Within one server writers never
/// meet SQLite's lock (see [`queue`]); other processes on the same file (`userdir check
/// --repair`, `token create`, a second server) do, and wait up to this long.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The settings of every SQLite connection. LIKE is case-sensitive (as on PostgreSQL;
/// ignore-case search uses the folded `*_lower` columns instead); WAL, so readers never block
/// the writer; a bounded wait for a busy database instead of failing at once.
pub fn tuned(options: SqliteConnectOptions) -> SqliteConnectOptions {
    options
        .pragma("case_sensitive_like", "ON")
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true)
        // `regexp(pattern, value)` for regex searches (Rust's `regex` crate).
        .with_regexp()
}
