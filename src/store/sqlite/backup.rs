//! `userdir backup PATH`: a consistent copy of a SQLite database, taken while servers write to
//! it.
//!
//! `VACUUM INTO` reads the database in one read transaction, so the copy is one snapshot (every
//! write committed before it began, none after), and in WAL mode it blocks no writer. The copy
//! is written beside the destination under a temporary name, synced, and only then linked to
//! the destination, so an interrupted backup never leaves a half-written file under the name
//! the operator asked for, and an existing file is never replaced.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

/// Why there is no backup.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "userdir backup copies SQLite databases; back up PostgreSQL with pg_dump \
         (e.g. `pg_dump --format=custom --file=userdir.dump DATABASE_URL`) and restore it with \
         pg_restore"
    )]
    Postgres,
    #[error("--database-url {0}: not a SQLite URL (sqlite://PATH)")]
    NotSqlite(String),
    #[error("{}: the file exists; a backup never replaces a file, name a new one", .0.display())]
    Exists(PathBuf),
    #[error("{}: the backup path must be valid UTF-8", .0.display())]
    NotUtf8(PathBuf),
    // The cause is part of the one-line message (not a `source`, which would print it twice).
    #[error("no SQLite database at {}: {error}", .path.display())]
    NoSource { path: PathBuf, error: sqlx::Error },
    #[error("copying the database into {}: {error}", .path.display())]
    Copy { path: PathBuf, error: sqlx::Error },
    #[error("writing the backup {}: {error}", .path.display())]
    File {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// What a backup wrote.
#[derive(Debug)]
pub struct Copied {
    pub source: PathBuf,
    pub bytes: u64,
}

/// Copies the SQLite database of `database_url` to `destination`, which must not exist.
pub async fn copy(database_url: &str, destination: &Path) -> Result<Copied, BackupError> {
    if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        return Err(BackupError::Postgres);
    }
    if !database_url.starts_with("sqlite:") {
        return Err(BackupError::NotSqlite(database_url.to_owned()));
    }
    if destination.symlink_metadata().is_ok() {
        return Err(BackupError::Exists(destination.to_owned()));
    }
    let options = SqliteConnectOptions::from_str(database_url)
        .map_err(|_| BackupError::NotSqlite(database_url.to_owned()))?;
    // A backup reads: a missing database is an error, not a new empty one (`mode=rwc`).
    let options = super::tuned(options).create_if_missing(false);
    let source = options.get_filename().to_owned();
    let mut connection = SqliteConnection::connect_with(&options)
        .await
        .map_err(|error| BackupError::NoSource {
            path: source.clone(),
            error,
        })?;

    let partial = partial_name(destination);
    let outcome = async {
        let target = partial
            .to_str()
            .ok_or_else(|| BackupError::NotUtf8(destination.to_owned()))?;
        // The path is bound as a parameter, never spliced into the statement.
        sqlx::query("VACUUM INTO ?")
            .bind(target)
            .execute(&mut connection)
            .await
            .map_err(|error| BackupError::Copy {
                path: destination.to_owned(),
                error,
            })?;
        publish(&partial, destination)
    }
    .await;
    connection.close().await.ok();
    if outcome.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    let bytes = outcome?;
    Ok(Copied { source, bytes })
}

/// The temporary name of the copy: beside the destination (so that linking it there is one
/// step on one file system), hidden, and this process's own.
fn partial_name(destination: &Path) -> PathBuf {
    let name = destination
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    destination.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

/// Syncs the finished copy and gives it the destination's name, unless that name was taken
/// meanwhile. Returns its size.
fn publish(partial: &Path, destination: &Path) -> Result<u64, BackupError> {
    let failed = |path: &Path| {
        let path = path.to_owned();
        move |error| BackupError::File { path, error }
    };
    let file = std::fs::File::open(partial).map_err(failed(destination))?;
    file.sync_all().map_err(failed(destination))?;
    let bytes = file.metadata().map_err(failed(destination))?.len();
    drop(file);
    // A hard link never replaces an existing file, as a rename would.
    match std::fs::hard_link(partial, destination) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(BackupError::Exists(destination.to_owned()));
        }
        Err(error) => return Err(failed(destination)(error)),
    }
    std::fs::remove_file(partial).map_err(failed(partial))?;
    // The new name is durable once its directory is synced.
    #[cfg(unix)]
    if let Some(directory) = destination.parent() {
        let directory = if directory.as_os_str().is_empty() {
            Path::new(".")
        } else {
            directory
        };
        std::fs::File::open(directory)
            .and_then(|directory| directory.sync_all())
            .map_err(failed(directory))?;
    }
    Ok(bytes)
}
