//! The queue SQLite writers of this process wait in for their turn, one database file at a time.
//!
//! SQLite has one write lock per database. Writers already take it at BEGIN (IMMEDIATE, see
//! `store::begin_write`), so none fails to upgrade a read lock; left to themselves they would
//! then wait for it in SQLite's busy handler, which sleeps and polls (up to 100 ms a nap), is
//! not first come first served (a writer can lose every race until its `busy_timeout` runs out
//! and it fails with "database is locked"), and holds a pooled connection while it sleeps, so a
//! burst of writers starves the readers of connections. In this queue a writer waits before it
//! takes a connection, in arrival order, and is woken the moment the previous writer is done.
//!
//! Measured (`tests/api/write_contention.rs`: 32 writers x 6 rounds of CreateUser, PatchUser
//! and AssignRole, 4 readers; debug build, 2 busy shared cores, 3 runs each): writers alone
//! are as fast either way (about 7.5-8.5 s for the 576 writes). With the readers, busy waits let
//! the writers through faster (about 6.5 s) only because they starve the readers of
//! connections: 103-146 reads got through, against 828-1318 in the queue (where the writers
//! take 13-17 s on the CPU the readers now get). Busy waits are also unfair: the slowest round
//! took 4-5 times the median, in the queue 1.2-1.5 times. A burst of writers must not stop the
//! reads, hence the queue. Writers in other processes still meet SQLite's lock and
//! wait for it in the busy handler (`sqlite::BUSY_TIMEOUT`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, PoisonError, Weak};

use sea_orm::{ConnAcquireErr, DatabaseConnection, DbErr};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::BUSY_TIMEOUT;

/// A writer's turn: the database is its to write until this is dropped.
#[derive(Debug)]
pub struct Turn {
    _guard: OwnedMutexGuard<()>,
}

/// The queue of each database file with a writer in it or waiting. An entry lives only as long
/// as someone holds or awaits its turn, so the map holds no more queues than there are
/// databases being written at this moment (a test binary opens hundreds one after another).
static QUEUES: LazyLock<std::sync::Mutex<HashMap<PathBuf, Weak<Mutex<()>>>>> =
    LazyLock::new(Default::default);

/// Waits for this process's turn to write the SQLite database of `db` (at most
/// [`BUSY_TIMEOUT`], like a busy database; then a pool timeout, as if no connection had come).
pub async fn turn(db: &DatabaseConnection) -> Result<Turn, DbErr> {
    let options = db.get_sqlite_connection_pool().connect_options();
    let queue = queue_of(options.get_filename());
    match tokio::time::timeout(BUSY_TIMEOUT, queue.lock_owned()).await {
        Ok(guard) => Ok(Turn { _guard: guard }),
        Err(_) => Err(DbErr::ConnectionAcquire(ConnAcquireErr::Timeout)),
    }
}

/// The queue of one database file. Two pools on one file share it; two spellings of one path
/// get two queues, which is still correct (their writers meet on SQLite's lock, as another
/// process's do), only less smooth.
fn queue_of(file: &Path) -> Arc<Mutex<()>> {
    let mut queues = QUEUES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(queue) = queues.get(file).and_then(Weak::upgrade) {
        return queue;
    }
    queues.retain(|_, queue| queue.strong_count() > 0);
    let queue = Arc::new(Mutex::new(()));
    queues.insert(file.to_owned(), Arc::downgrade(&queue));
    queue
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_writer_at_a_time_in_arrival_order() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("q.db").display());
        let db = crate::store::connect(&url).await.unwrap();
        let first = turn(&db).await.unwrap();
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut waiting = Vec::new();
        for n in 0..3 {
            let (db, order) = (db.clone(), order.clone());
            waiting.push(tokio::spawn(async move {
                let _turn = turn(&db).await.unwrap();
                order.lock().unwrap().push(n);
            }));
            // Let it join the queue before the next one arrives.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(
            order.lock().unwrap().is_empty(),
            "nobody writes beside a turn"
        );
        drop(first);
        for writer in waiting {
            writer.await.unwrap();
        }
        assert_eq!(
            *order.lock().unwrap(),
            [0, 1, 2],
            "first come, first served"
        );
    }

    #[test]
    fn one_queue_per_file_while_in_use_and_none_after() {
        let a = queue_of(Path::new("/tmp/queue-test-a.db"));
        let again = queue_of(Path::new("/tmp/queue-test-a.db"));
        let b = queue_of(Path::new("/tmp/queue-test-b.db"));
        assert!(Arc::ptr_eq(&a, &again), "one file, one queue");
        assert!(!Arc::ptr_eq(&a, &b), "two files, two queues");
        drop((a, again, b));
        // The next lookup of a new file prunes the queues nobody holds.
        let _c = queue_of(Path::new("/tmp/queue-test-c.db"));
        let queues = QUEUES.lock().unwrap();
        assert!(!queues.contains_key(Path::new("/tmp/queue-test-a.db")));
        assert!(!queues.contains_key(Path::new("/tmp/queue-test-b.db")));
    }
}
