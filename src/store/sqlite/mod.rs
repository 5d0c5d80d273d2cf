//! What only SQLite needs: its connection settings, the queue its writers take turns in, the
//! checkpoints that keep its write-ahead log small, and online backups.

pub mod backup;
pub mod checkpoint;
pub mod queue;

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};

/// How long a statement waits for a lock another process holds (`busy_timeout`), and a writer
/// for its turn in this process's queue: a bound, never a hang. Within one server writers never
/// meet SQLite's lock (see [`queue`]); other processes on the same file (`userdir check
/// --repair`, `token create`, a second server) do, and wait up to this long.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Pages (4 KiB each) the write-ahead log may reach before a commit copies it back into the
/// database (SQLite's default, stated because the WAL bound depends on it: about 4 MiB).
pub const WAL_AUTOCHECKPOINT_PAGES: u32 = 1000;

/// The size a write-ahead log is cut back to whenever it starts over from its beginning: the
/// largest WAL file that outlives a burst (without it, the file keeps its high-water mark).
pub const JOURNAL_SIZE_LIMIT_BYTES: u64 = 16 * 1024 * 1024;

/// Connections of a SQLite pool, fewer than PostgreSQL's `store::POOL_SIZE`: SQLite reads run
/// on this server's own cores, so more connections add no throughput, while each one holds,
/// beside its page cache, about 3 MiB of its own (its statement cache, SQLite's lookaside and
/// sorter memory, its worker thread). And sqlx lends idle connections in turn, so the more
/// there are, the colder the cache a call meets. Measured at a million users after a concurrent
/// burst over every shape (docs/benchmarks.md, "... SQLite's pool of five"): ten connections of
/// 1 MiB peaked at 104-109 MiB, five of 2 MiB at 85-89 MiB, and answered no slower.
pub const POOL_SIZE: u32 = 5;

/// SQLite's page cache per connection, in KiB (`cache_size` takes a negative number as KiB):
/// SQLite's default. The same 10 MiB in all as ten connections of 1 MiB, held by fewer
/// connections (see [`POOL_SIZE`]): a page walking past a million users' newest rows needs
/// about 3 MiB (3.3 ms with 1 MiB, 1.4-1.9 ms with 3 MiB or more, in SQLite alone). The
/// operating system's page cache still holds the file, so a miss costs a read, not I/O.
pub const PAGE_CACHE_KIB: u32 = 2000;

/// The settings of every SQLite connection. LIKE is case-sensitive (as on PostgreSQL;
/// ignore-case search uses the folded `*_lower` columns instead); WAL, so readers never block
/// the writer; a bounded wait for a busy database instead of failing at once; a bounded WAL;
/// a page cache of [`PAGE_CACHE_KIB`].
pub fn tuned(options: SqliteConnectOptions) -> SqliteConnectOptions {
    options
        .pragma("case_sensitive_like", "ON")
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(BUSY_TIMEOUT)
        .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES.to_string())
        .pragma("journal_size_limit", JOURNAL_SIZE_LIMIT_BYTES.to_string())
        .pragma("cache_size", format!("-{PAGE_CACHE_KIB}"))
        .foreign_keys(true)
        // `regexp(pattern, value)` for regex searches (Rust's `regex` crate).
        .with_regexp()
}

#[cfg(test)]
mod tests {
    use sea_orm::sqlx::{self, Connection, SqliteConnection};

    /// The bundled SQLite is built without STAT4 (`.cargo/config.toml`): with it, every
    /// statement whose plan read ANALYZE's value samples for a bound value is parsed and planned
    /// again whenever the value changes, that is on nearly every request (see the README).
    #[tokio::test]
    async fn the_bundled_sqlite_has_no_stat4_samples_to_replan_by() {
        let mut connection = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        let (stat4,): (i64,) = sqlx::query_as("SELECT sqlite_compileoption_used('ENABLE_STAT4')")
            .fetch_one(&mut connection)
            .await
            .unwrap();
        assert_eq!(
            stat4, 0,
            "SQLite was built with STAT4: build through the repository's .cargo/config.toml \
             (LIBSQLITE3_FLAGS), or set LIBSQLITE3_FLAGS=-USQLITE_ENABLE_STAT4 yourself"
        );
        connection.close().await.unwrap();
    }

    /// The bundled SQLite keeps no memory statistics (`.cargo/config.toml`): with them every
    /// allocation takes a process-wide mutex, and the driver allocates for every value it reads.
    #[tokio::test]
    async fn the_bundled_sqlite_keeps_no_memory_statistics() {
        let mut connection = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        let (off,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pragma_compile_options \
             WHERE compile_options = 'DEFAULT_MEMSTATUS=0'",
        )
        .fetch_one(&mut connection)
        .await
        .unwrap();
        assert_eq!(
            off, 1,
            "SQLite keeps memory statistics: build through the repository's .cargo/config.toml \
             (LIBSQLITE3_FLAGS), or add -DSQLITE_DEFAULT_MEMSTATUS=0 to LIBSQLITE3_FLAGS yourself"
        );
        connection.close().await.unwrap();
    }
}
