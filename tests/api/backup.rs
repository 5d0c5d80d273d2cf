//! `userdir backup PATH`, the real binary, while a server writes: the copy restores every user
//! acknowledged before the backup, is one consistent snapshot (gapless events, counters that
//! `userdir check` confirms), and existing files are never replaced. On PostgreSQL the command
//! refuses and names pg_dump.

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{Backend, TestApp, api};
use sea_orm::{ConnectionTrait, Statement};
use tokio::process::Command;
use userdir::config::Settings;
use userdir::proto::user::v1 as pb;
use userdir::store;

const BINARY: &str = env!("CARGO_BIN_EXE_userdir");

backend_tests!(a_backup_while_serving_restores_every_acknowledged_user);

/// Runs the binary; returns whether it succeeded, its stdout and its stderr.
async fn userdir(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(BINARY)
        .args(args)
        .env("RUST_LOG", "warn")
        .env("RUST_BACKTRACE", "0")
        .output()
        .await
        .unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

async fn backup(path: &Path, database_url: &str) -> (bool, String, String) {
    userdir(&[
        "backup",
        path.to_str().unwrap(),
        "--database-url",
        database_url,
    ])
    .await
}

async fn a_backup_while_serving_restores_every_acknowledged_user(app: TestApp) {
    let scratch = tempfile::tempdir().unwrap();
    let copy = scratch.path().join("copy.db");
    if app.backend == Backend::Postgres {
        let url = std::env::var("USERDIR_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let (ok, _, stderr) = backup(&copy, &url).await;
        assert!(!ok, "a PostgreSQL backup is refused");
        assert!(stderr.contains("pg_dump"), "{stderr}");
        assert!(stderr.contains("pg_restore"), "{stderr}");
        assert!(!copy.exists(), "nothing is written");
        return;
    }
    let source = app
        .db
        .get_sqlite_connection_pool()
        .connect_options()
        .get_filename()
        .to_owned();
    let url = format!("sqlite://{}", source.display());

    let org = api::organization(&app, "Acme").await;
    let schema = api::person_schema(&app, "person").await;
    let role = api::role(&app, "admin").await;
    let mut before = BTreeSet::new();
    let mut holders_before = BTreeSet::new();
    for n in 0..30 {
        let id = api::create_user(&app, api::new_user(&org, &schema, &format!("before-{n}"))).await;
        if n % 3 == 0 {
            app.roles
                .clone()
                .assign_role(pb::AssignRoleRequest {
                    role_id: role.clone(),
                    user_ids: vec![id.clone()],
                })
                .await
                .unwrap();
            holders_before.insert(id.clone());
        }
        if n % 5 == 0 {
            app.users
                .clone()
                .lock_user(pb::LockUserRequest {
                    user_id: id.clone(),
                })
                .await
                .unwrap();
        }
        before.insert(id);
    }

    // Writers keep going while the backup runs.
    let writing = Arc::new(AtomicBool::new(true));
    let written = Arc::new(AtomicUsize::new(0));
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..4 {
        let (mut users, mut roles) = (app.users.clone(), app.roles.clone());
        let (org, schema, role) = (org.clone(), schema.clone(), role.clone());
        let (writing, written) = (writing.clone(), written.clone());
        writers.spawn(async move {
            let mut mine = Vec::new();
            let mut n = 0;
            while writing.load(Ordering::Relaxed) {
                let id = users
                    .create_user(api::new_user(
                        &org,
                        &schema,
                        &format!("during-{writer}-{n}"),
                    ))
                    .await
                    .expect("CreateUser during the backup")
                    .into_inner()
                    .user_id;
                roles
                    .assign_role(pb::AssignRoleRequest {
                        role_id: role.clone(),
                        user_ids: vec![id.clone()],
                    })
                    .await
                    .expect("AssignRole during the backup");
                mine.push(id);
                written.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
            mine
        });
    }
    while written.load(Ordering::Relaxed) < 4 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (ok, stdout, stderr) = backup(&copy, &url).await;
    assert!(ok, "userdir backup failed: {stderr}");
    assert!(stdout.contains("backed up"), "{stdout}");
    // A few more writes after the copy, which it must not have.
    let at_backup = written.load(Ordering::Relaxed);
    while written.load(Ordering::Relaxed) < at_backup + 4 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    writing.store(false, Ordering::Relaxed);
    let mut during = BTreeSet::new();
    while let Some(done) = writers.join_next().await {
        during.extend(done.expect("a writer"));
    }

    // An existing file is never replaced, and a missing database is not created.
    let copied = std::fs::read(&copy).unwrap();
    let (ok, _, stderr) = backup(&copy, &url).await;
    assert!(!ok, "a second backup onto the same file is refused");
    assert!(stderr.contains("exists"), "{stderr}");
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        copied,
        "the copy is untouched"
    );
    let missing = scratch.path().join("missing.db");
    let (ok, _, stderr) = backup(
        &scratch.path().join("other.db"),
        &format!("sqlite://{}?mode=rwc", missing.display()),
    )
    .await;
    assert!(!ok, "a backup of a missing database fails");
    assert!(stderr.contains("no SQLite database"), "{stderr}");
    assert!(!missing.exists(), "the missing database was not created");
    let leftovers: Vec<_> = std::fs::read_dir(scratch.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["copy.db"], "no temporary file is left behind");

    // The counters of the copy agree with its rows.
    let copy_url = format!("sqlite://{}", copy.display());
    let (ok, stdout, stderr) = userdir(&["check", "--database-url", &copy_url]).await;
    assert!(ok, "userdir check on the copy: {stdout} {stderr}");
    assert!(stdout.contains("counters hold"), "{stdout}");

    // A server on the copy has every user acknowledged before the backup, and nothing else.
    let db = store::connect(&copy_url).await.unwrap();
    store::migrate(&db).await.unwrap();
    let restored = common::serve(
        Backend::Sqlite,
        db.clone(),
        &copy_url,
        Settings::default(),
        Some(app.token.clone()),
    )
    .await;
    let listed = restored
        .users
        .clone()
        .list_users(pb::ListUsersRequest {
            query: Some(pb::ListQuery {
                limit: 1000,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("ListUsers on the copy")
        .into_inner();
    let found: BTreeSet<String> = listed.result.iter().map(|u| u.user_id.clone()).collect();
    assert_eq!(listed.details.unwrap().total_result, found.len() as u64);
    assert!(
        before.is_subset(&found),
        "users acknowledged before the backup are missing: {:?}",
        before.difference(&found).collect::<Vec<_>>()
    );
    let known: BTreeSet<String> = before.union(&during).cloned().collect();
    assert!(found.is_subset(&known), "the copy has users nobody wrote");
    assert!(
        found.len() < known.len(),
        "the copy has the writes acknowledged after it was taken"
    );
    for id in &before {
        let user = api::get_user(&restored, id).await;
        let data = api::json_of(user.data.as_ref().unwrap());
        assert!(data["givenName"].as_str().unwrap().starts_with("before-"));
    }
    // One snapshot: the event log is gapless and ends at what the copy reports as processed.
    let logged: Vec<i64> = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT sequence FROM events ORDER BY sequence",
        ))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get::<i64>("", "sequence").unwrap())
        .collect();
    assert_eq!(logged, (1..=logged.len() as i64).collect::<Vec<_>>());
    assert_eq!(
        api::processed_sequence(&restored).await,
        logged.len() as u64
    );
    // The role holders of the copy: exactly those given the role before the backup, plus some
    // of the writers' users (a user created just before the snapshot may miss its role).
    let holders = common::api::role_holders(&restored, &role).await;
    assert!(holders.is_subset(&found));
    let held_before: BTreeSet<String> = holders.intersection(&before).cloned().collect();
    assert_eq!(held_before, holders_before);
    db.close().await.ok();
}
