//! SQLite's write-ahead log stays bounded under sustained writes with concurrent readers, and
//! recovers once a reader that held an old snapshot (which keeps any checkpoint from
//! finishing) lets go. SQLite only: PostgreSQL has no such file to watch.
//!
//! The bound: with no reader holding an old snapshot, the log file never exceeds
//! `JOURNAL_SIZE_LIMIT_BYTES` (16 MiB) while the writes go on, and it is truncated to nothing
//! within a checkpoint interval (5 s) or two once they stop.

use crate::common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Backend, TestApp, api};
use sea_orm::{ConnectionTrait, Statement, TransactionTrait};
use serde_json::json;
use userdir::proto::user::v1 as pb;
use userdir::store::sqlite::{JOURNAL_SIZE_LIMIT_BYTES, checkpoint};

#[tokio::test]
async fn sqlite_wal_stays_bounded_under_sustained_writes() {
    common::run(Backend::Sqlite, wal_stays_bounded).await;
}

const WRITERS: usize = 8;
/// Each write replaces a user's data with this much text: a few dozen pages of log per write.
const BIO_BYTES: usize = 96 * 1024;
/// The log a pinned snapshot lets grow: past the size limit, so that only checkpoints (and no
/// luck) bring it back under.
const PINNED_GROWTH: u64 = JOURNAL_SIZE_LIMIT_BYTES + 4 * 1024 * 1024;

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |file| file.len())
}

async fn wal_stays_bounded(app: TestApp) {
    let options = app.db.get_sqlite_connection_pool().connect_options();
    let wal = checkpoint::wal_file(&options);
    let org = api::organization(&app, "Acme").await;
    let schema = app
        .schemas
        .clone()
        .create_user_schema(pb::CreateUserSchemaRequest {
            r#type: "person".into(),
            schema: Some(api::object(json!({
                "type": "object",
                "properties": {"givenName": {"type": "string"}, "bio": {"type": "string"}}
            }))),
        })
        .await
        .unwrap()
        .into_inner()
        .schema_id;
    let mut ids = Vec::new();
    for n in 0..WRITERS {
        ids.push(api::create_user(&app, api::new_user(&org, &schema, &format!("u{n}"))).await);
    }

    let writing = Arc::new(AtomicBool::new(true));
    let mut load = tokio::task::JoinSet::new();
    for (writer, id) in ids.iter().cloned().enumerate() {
        let (mut users, writing) = (app.users.clone(), writing.clone());
        load.spawn(async move {
            let mut round = 0usize;
            while writing.load(Ordering::Relaxed) {
                let letter = char::from(b'a' + ((writer + round) % 26) as u8);
                users
                    .patch_user(pb::PatchUserRequest {
                        user_id: id.clone(),
                        data: Some(api::object(json!({
                            "givenName": format!("u{writer}"),
                            "bio": letter.to_string().repeat(BIO_BYTES),
                        }))),
                        ..Default::default()
                    })
                    .await
                    .unwrap_or_else(|status| panic!("PatchUser under load: {status:?}"));
                round += 1;
            }
        });
    }
    for _ in 0..2 {
        let (mut users, writing) = (app.users.clone(), writing.clone());
        load.spawn(async move {
            while writing.load(Ordering::Relaxed) {
                users
                    .list_users(pb::ListUsersRequest::default())
                    .await
                    .unwrap_or_else(|status| panic!("ListUsers under load: {status:?}"));
            }
        });
    }

    // A reader holds one snapshot while the writes go on: no checkpoint can finish, and the log
    // grows past the limit.
    let pinned = app.db.begin().await.unwrap();
    pinned
        .query_one_raw(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT count(*) AS n FROM users",
        ))
        .await
        .unwrap();
    let started = Instant::now();
    while size(&wal) < PINNED_GROWTH {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the log did not grow to {PINNED_GROWTH} bytes in 2 minutes of writes (it has {})",
            size(&wal)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let grown = size(&wal);
    pinned.commit().await.unwrap();

    // Once the snapshot is gone, the log comes back under the limit while the writes go on...
    let released = Instant::now();
    while size(&wal) > JOURNAL_SIZE_LIMIT_BYTES {
        assert!(
            released.elapsed() < checkpoint::INTERVAL * 2 + Duration::from_secs(5),
            "the log stayed at {} bytes after the old snapshot was gone (limit {})",
            size(&wal),
            JOURNAL_SIZE_LIMIT_BYTES
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // ... and stays there, for more than a checkpoint interval of sustained writes.
    let mut largest = 0;
    let steady = Instant::now();
    while steady.elapsed() < checkpoint::INTERVAL + Duration::from_secs(2) {
        largest = largest.max(size(&wal));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        largest <= JOURNAL_SIZE_LIMIT_BYTES,
        "the log reached {largest} bytes under sustained writes (limit {JOURNAL_SIZE_LIMIT_BYTES})"
    );

    writing.store(false, Ordering::Relaxed);
    while let Some(done) = load.join_next().await {
        done.expect("a writer or reader");
    }
    // Once the writes stop, the checkpointer truncates the log to nothing.
    let stopped = Instant::now();
    while size(&wal) > 0 {
        assert!(
            stopped.elapsed() < checkpoint::INTERVAL * 2 + Duration::from_secs(5),
            "the log kept {} bytes after the writes stopped",
            size(&wal)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "the log grew to {grown} bytes under the pinned snapshot, then stayed at most \
         {largest} bytes"
    );
}
