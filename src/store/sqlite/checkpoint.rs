//! Keeps SQLite's write-ahead log small while the server runs.
//!
//! A commit copies the log back into the database once it holds [`WAL_AUTOCHECKPOINT_PAGES`]
//! (a passive checkpoint, which never waits), and the log starts over from its beginning when
//! every reader has moved past it. A reader that holds an old snapshot stops both: under
//! sustained writes the log then grows, and its file keeps the size it reached. So the log is
//! also cut back to [`JOURNAL_SIZE_LIMIT_BYTES`] whenever it starts over, and every
//! [`INTERVAL`] this task truncates it to nothing (`wal_checkpoint(TRUNCATE)`). That checkpoint
//! must have no writer beside it and waits for the readers still in the log; so it takes this
//! process's writer turn (writers queue behind it, never on SQLite's lock), and its own
//! connection waits for readers at most [`READER_WAIT`]: if they are not done by then, it
//! copies back what it can, and the next round tries again. Writers thus pause for at most
//! about that long plus the copy, once per interval.
//!
//! [`WAL_AUTOCHECKPOINT_PAGES`]: super::WAL_AUTOCHECKPOINT_PAGES
//! [`JOURNAL_SIZE_LIMIT_BYTES`]: super::JOURNAL_SIZE_LIMIT_BYTES

use std::path::PathBuf;
use std::time::Duration;

use sea_orm::{DatabaseConnection, DbBackend};
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use tokio::task::JoinHandle;

use super::queue;

/// How often the log is truncated.
pub const INTERVAL: Duration = Duration::from_secs(5);

/// How long the truncating checkpoint waits for readers still in the log (its connection's
/// `busy_timeout`), while writers wait for it.
pub const READER_WAIT: Duration = Duration::from_millis(100);

/// A checkpoint that takes longer than this is abandoned, so the writer turn it holds is
/// always given back.
const CHECKPOINT_TIMEOUT: Duration = Duration::from_secs(10);

/// The running checkpointer; it stops when this is dropped.
#[derive(Debug)]
pub struct Checkpoints {
    task: JoinHandle<()>,
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts truncating the log of `db` every [`INTERVAL`]; None for a database that is not
/// SQLite (PostgreSQL manages its own log).
pub fn start(db: &DatabaseConnection) -> Option<Checkpoints> {
    if db.get_database_backend() != DbBackend::Sqlite {
        return None;
    }
    let options = db.get_sqlite_connection_pool().connect_options();
    let options = (*options).clone().busy_timeout(READER_WAIT);
    let task = tokio::spawn(run(db.clone(), options));
    Some(Checkpoints { task })
}

async fn run(db: DatabaseConnection, options: SqliteConnectOptions) {
    let wal = wal_file(&options);
    let mut connection = None;
    let mut ticks = tokio::time::interval(INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await; // The first tick is immediate.
    loop {
        ticks.tick().await;
        // An empty (or absent) log has nothing to truncate: an idle server does no work.
        if std::fs::metadata(&wal).map_or(true, |file| file.len() == 0) {
            continue;
        }
        let outcome =
            tokio::time::timeout(CHECKPOINT_TIMEOUT, truncate(&db, &options, &mut connection))
                .await;
        match outcome {
            Ok(Ok(Truncated {
                busy: false,
                frames,
            })) => {
                tracing::debug!(frames, "truncated the SQLite write-ahead log");
            }
            Ok(Ok(Truncated { busy: true, frames })) => tracing::debug!(
                frames,
                "SQLite readers held the write-ahead log; copied back what they allowed"
            ),
            Ok(Err(error)) => {
                tracing::warn!(%error, "SQLite checkpoint failed; trying again later");
                connection = None;
            }
            Err(_) => {
                tracing::warn!(
                    timeout = ?CHECKPOINT_TIMEOUT,
                    "SQLite checkpoint timed out; trying again later"
                );
                connection = None;
            }
        }
    }
}

/// What one truncating checkpoint did: whether readers kept it from truncating, and how many
/// frames the log held.
struct Truncated {
    busy: bool,
    frames: i64,
}

async fn truncate(
    db: &DatabaseConnection,
    options: &SqliteConnectOptions,
    connection: &mut Option<SqliteConnection>,
) -> Result<Truncated, Box<dyn std::error::Error + Send + Sync>> {
    let connection = match connection {
        Some(connection) => connection,
        None => connection.insert(SqliteConnection::connect_with(options).await?),
    };
    let _turn = queue::turn(db).await?;
    let (busy, frames, _copied): (i64, i64, i64) =
        sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&mut *connection)
            .await?;
    Ok(Truncated {
        busy: busy != 0,
        frames,
    })
}

/// The write-ahead log of the database file: its name with `-wal` appended.
pub fn wal_file(options: &SqliteConnectOptions) -> PathBuf {
    let mut name = options.get_filename().as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}
