//! Many concurrent writers and readers through the real gRPC interface, on SQLite and
//! PostgreSQL: no write fails (on SQLite never "database is locked"), every acknowledged write
//! is there afterwards, and the event log is gapless with one distinct sequence per write.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{Backend, TestApp, api};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;
use userdir::proto::user::v1 as pb;

backend_tests!(concurrent_writers_all_succeed_and_nothing_is_lost);

/// Writer tasks, each running [`ROUNDS`] of CreateUser, PatchUser and AssignRole.
const WRITERS: usize = 32;
const ROUNDS: usize = 6;
const READERS: usize = 4;
const ROLES: usize = 4;

/// What one writer had acknowledged: user id -> (the patched given name, the role given).
type Acknowledged = BTreeMap<String, (String, String)>;

async fn concurrent_writers_all_succeed_and_nothing_is_lost(app: TestApp) {
    let org = api::organization(&app, "Acme").await;
    let schema = api::person_schema(&app, "person").await;
    let mut roles = Vec::new();
    for n in 0..ROLES {
        roles.push(api::role(&app, &format!("role-{n}")).await);
    }

    let writing = Arc::new(AtomicBool::new(true));
    let mut readers = tokio::task::JoinSet::new();
    for reader in 0..READERS {
        let (mut users, writing) = (app.users.clone(), writing.clone());
        readers.spawn(async move {
            let mut reads = 0u64;
            while writing.load(Ordering::Relaxed) {
                let page = users
                    .list_users(pb::ListUsersRequest {
                        query: Some(pb::ListQuery {
                            limit: 20,
                            asc: reader % 2 == 0,
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                    .await
                    .unwrap_or_else(|status| panic!("ListUsers under write load: {status:?}"))
                    .into_inner();
                if let Some(user) = page.result.first() {
                    users
                        .get_user(pb::GetUserRequest {
                            user_id: user.user_id.clone(),
                        })
                        .await
                        .unwrap_or_else(|status| panic!("GetUser under write load: {status:?}"));
                }
                reads += 1;
            }
            reads
        });
    }

    let started = std::time::Instant::now();
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..WRITERS {
        let (mut users, mut role_service) = (app.users.clone(), app.roles.clone());
        let (org, schema, roles) = (org.clone(), schema.clone(), roles.clone());
        writers.spawn(async move {
            let mut acknowledged = Acknowledged::new();
            let mut sequences = Vec::new();
            let mut latencies = Vec::new();
            for round in 0..ROUNDS {
                let round_started = std::time::Instant::now();
                let name = format!("w{writer}-{round}");
                let created = users
                    .create_user(api::new_user(&org, &schema, &name))
                    .await
                    .unwrap_or_else(|status| panic!("CreateUser {name}: {status:?}"))
                    .into_inner();
                sequences.push(created.details.unwrap().sequence);
                let patched = format!("patched {name}");
                let patch = users
                    .patch_user(pb::PatchUserRequest {
                        user_id: created.user_id.clone(),
                        data: Some(api::object(json!({"givenName": patched}))),
                        ..Default::default()
                    })
                    .await
                    .unwrap_or_else(|status| panic!("PatchUser {name}: {status:?}"))
                    .into_inner();
                sequences.push(patch.details.unwrap().sequence);
                let role = roles[(writer + round) % roles.len()].clone();
                let assigned = role_service
                    .assign_role(pb::AssignRoleRequest {
                        role_id: role.clone(),
                        user_ids: vec![created.user_id.clone()],
                    })
                    .await
                    .unwrap_or_else(|status| panic!("AssignRole {name}: {status:?}"))
                    .into_inner();
                sequences.push(assigned.details.unwrap().sequence);
                acknowledged.insert(created.user_id, (patched, role));
                latencies.push(round_started.elapsed());
            }
            (acknowledged, sequences, latencies)
        });
    }
    // On SQLite, writers in another process too: they meet SQLite's lock, not this server's
    // queue, and must wait for it rather than fail.
    let operator = (app.backend == Backend::Sqlite).then(|| {
        let file = app
            .db
            .get_sqlite_connection_pool()
            .connect_options()
            .get_filename()
            .to_owned();
        tokio::spawn(async move {
            for _ in 0..3 {
                let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_userdir"))
                    .args([
                        "token",
                        "create",
                        "--permissions",
                        "user.read",
                        "--database-url",
                    ])
                    .arg(format!("sqlite://{}", file.display()))
                    .env("RUST_LOG", "warn")
                    .output()
                    .await
                    .unwrap();
                assert!(
                    output.status.success(),
                    "userdir token create beside the server's writers: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        })
    });
    let mut acknowledged = Acknowledged::new();
    let mut sequences = Vec::new();
    let mut latencies = Vec::new();
    while let Some(done) = writers.join_next().await {
        let (mine, theirs, rounds) = done.expect("a writer");
        acknowledged.extend(mine);
        sequences.extend(theirs);
        latencies.extend(rounds);
    }
    latencies.sort();
    let elapsed = started.elapsed();
    if let Some(operator) = operator {
        operator.await.expect("the operator's writes");
    }
    writing.store(false, Ordering::Relaxed);
    let mut reads = 0;
    while let Some(done) = readers.join_next().await {
        reads += done.expect("a reader");
    }
    assert!(reads > 0, "the readers ran beside the writers");
    // Informational only, never asserted: what `store::sqlite::queue` was measured with.
    eprintln!(
        "{:?}: {} writes and {reads} reads in {elapsed:?}; a round of three writes: \
         median {:?}, slowest {:?}",
        app.backend,
        sequences.len(),
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
    );
    assert_eq!(acknowledged.len(), WRITERS * ROUNDS);

    // Every write got a sequence of its own.
    let distinct: BTreeSet<u64> = sequences.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        sequences.len(),
        "two writes share a sequence"
    );

    // Every acknowledged write is there.
    for (id, (given_name, _)) in &acknowledged {
        let user = api::get_user(&app, id).await;
        let data = api::json_of(user.data.as_ref().expect("data"));
        assert_eq!(data["givenName"], json!(given_name), "user {id}");
    }
    for role in &roles {
        let holders = app
            .roles
            .clone()
            .list_role_users(pb::ListRoleUsersRequest {
                role_id: role.clone(),
                query: Some(pb::ListQuery {
                    limit: 1000,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let found: BTreeSet<String> = holders.result.into_iter().map(|u| u.user_id).collect();
        let given: BTreeSet<String> = acknowledged
            .iter()
            .filter(|(_, (_, r))| r == role)
            .map(|(id, _)| id.clone())
            .collect();
        assert_eq!(found, given, "holders of role {role}");
        assert_eq!(
            holders.details.unwrap().total_result,
            given.len() as u64,
            "total of role {role}"
        );
    }

    // The event log is gapless, 1..=N, and holds every acknowledged write's sequence.
    let logged: Vec<i64> = app
        .db
        .query_all_raw(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT sequence FROM events ORDER BY sequence",
        ))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get::<i64>("", "sequence").unwrap())
        .collect();
    let expected: Vec<i64> = (1..=logged.len() as i64).collect();
    assert_eq!(logged, expected, "the event log has gaps");
    let logged: BTreeSet<u64> = logged.into_iter().map(|n| n as u64).collect();
    assert!(
        distinct.is_subset(&logged),
        "an acknowledged write has no event"
    );
    assert_eq!(
        api::processed_sequence(&app).await,
        *logged.last().unwrap(),
        "the processed sequence is the newest event"
    );
    let recount = userdir::store::reads::recount::recount(&app.db)
        .await
        .unwrap();
    assert_eq!(recount.drift, [], "the counters drifted");
}
