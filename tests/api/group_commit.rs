//! Group commit (`store::writes::group`): concurrent writes share COMMITs, and every guarantee
//! of a write alone holds. Through the API: overlapping creates, a contested username and
//! state changes; every acknowledged change is there, the event log is gapless, the counters
//! are exact. In the store: units that fail or are dropped mid-way leave nothing and fail
//! alone, while the others of their group commit.

use std::collections::BTreeSet;
use std::future::Future;

use crate::common;

use common::{Backend, FreshDatabase, TestApp};
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, Set, Statement};
use serde_json::json;
use tokio::task::JoinSet;
use tonic::Code;
use userdir::proto::user::v1 as pb;
use userdir::store::entities::{event, organization};
use userdir::store::writes::Writes;
use userdir::store::writes::group::GroupCommit;
use userdir::store::writes::unit::UnitOfWork;
use userdir::store::{self, ScopedDb};

backend_tests!(overlapping_writes_keep_every_guarantee);
backend_fn_tests!(
    units_dropped_while_committing_keep_every_guarantee,
    units_fail_alone_and_share_commits,
);

/// The ids of every organization row: what the units of these tests insert.
async fn stored_organizations(db: &DatabaseConnection) -> BTreeSet<String> {
    organization::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|org| org.id)
        .collect()
}

/// (events, lowest sequence, highest sequence).
async fn event_log(db: &DatabaseConnection) -> (i64, i64, i64) {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT count(*) AS n, min(sequence) AS low, max(sequence) AS high FROM events",
        ))
        .await
        .unwrap()
        .unwrap();
    (
        row.try_get("", "n").unwrap(),
        row.try_get("", "low").unwrap(),
        row.try_get("", "high").unwrap(),
    )
}

async fn overlapping_writes_keep_every_guarantee(app: TestApp) {
    let org = common::api::organization(&app, "Acme").await;
    let schema = common::api::person_schema(&app, "person").await;
    let mut writers = JoinSet::new();
    for writer in 0..16 {
        let mut users = app.users.clone();
        let (org, schema) = (org.clone(), schema.clone());
        writers.spawn(async move {
            let mut created = Vec::new();
            for n in 0..10 {
                let request = common::api::new_user(&org, &schema, &format!("w{writer}-{n}"));
                let id = users.create_user(request).await.expect("CreateUser");
                let id = id.into_inner().user_id;
                if n % 3 == 0 {
                    users
                        .lock_user(pb::LockUserRequest {
                            user_id: id.clone(),
                        })
                        .await
                        .expect("LockUser");
                }
                created.push((id, n % 3 == 0));
            }
            Ok::<_, Code>(created)
        });
    }
    // Eight writers race for one username: one wins, the others fail alone.
    for _ in 0..8 {
        let mut users = app.users.clone();
        let (org, schema) = (org.clone(), schema.clone());
        writers.spawn(async move {
            match users
                .create_user(common::api::new_user(&org, &schema, "contested"))
                .await
            {
                Ok(created) => Ok(vec![(created.into_inner().user_id, false)]),
                Err(status) => Err(status.code()),
            }
        });
    }
    let mut acknowledged = Vec::new();
    let mut refused = Vec::new();
    while let Some(done) = writers.join_next().await {
        match done.unwrap() {
            Ok(created) => acknowledged.extend(created),
            Err(code) => refused.push(code),
        }
    }
    assert_eq!(refused, vec![Code::AlreadyExists; 7]);
    assert_eq!(acknowledged.len(), 16 * 10 + 1);

    for (id, locked) in &acknowledged {
        let user = common::api::get_user(&app, id).await;
        let state = if *locked {
            pb::State::UserStateLocked
        } else {
            pb::State::UserStateActive
        };
        assert_eq!(user.state, state as i32, "{id}");
    }
    let (events, low, high) = event_log(&app.db).await;
    assert_eq!((low, high), (1, events), "the event log has gaps");
    // The organization's own stream is gapless too: each unit of a group continued it where
    // the last unit that committed left it, the failed ones included nothing.
    let positions: Vec<i64> = app
        .db
        .query_all_raw(Statement::from_string(
            app.db.get_database_backend(),
            format!(
                "SELECT organization_sequence AS n FROM events WHERE organization_id = '{org}' \
                 ORDER BY sequence"
            ),
        ))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get("", "n").unwrap())
        .collect();
    assert!(positions.len() > 16 * 10, "the organization's events");
    assert_eq!(
        positions,
        (1..=positions.len() as i64).collect::<Vec<_>>(),
        "the organization's stream has gaps or repeats"
    );
    let recount = store::reads::recount::recount(&app.db).await.unwrap();
    assert!(recount.drift.is_empty(), "{:?}", recount.drift);
}

/// A unit that records an organization and then ends as `end` says.
async fn unit(db: ScopedDb, name: String, end: End) -> Result<String, String> {
    let mut uow = UnitOfWork::begin(&db).await.map_err(|e| e.to_string())?;
    let id = uuid::Uuid::now_v7().to_string();
    let written = uow.record(
        "organization",
        &id,
        &id,
        "organization.added",
        json!({ "name": name }),
    );
    organization::Entity::insert(organization::ActiveModel {
        id: Set(id.clone()),
        name_lower: Set(name.to_lowercase()),
        name: Set(name),
        created_at: Set(written.at.micros()),
        changed_at: Set(written.at.micros()),
        sequence: Set(written.sequence),
    })
    .exec_without_returning(uow.txn())
    .await
    .map_err(|e| e.to_string())?;
    if end == End::AppendFails {
        // An event already at the unit's sequence: appending its own fails in the database.
        event::Entity::insert(event::ActiveModel {
            sequence: Set(written.sequence),
            created_at: Set(written.at.micros()),
            aggregate_type: Set("test".into()),
            aggregate_id: Set(id.clone()),
            resource_owner: Set(String::new()),
            event_type: Set("test.collided".into()),
            payload: Set(json!({})),
            organization_id: Set(None),
            organization_sequence: Set(None),
            actor: Set("test".into()),
        })
        .exec_without_returning(uow.txn())
        .await
        .map_err(|e| e.to_string())?;
    }
    // Let the others queue for the seat behind this unit.
    tokio::task::yield_now().await;
    match end {
        End::Commit => uow.commit().await.map_err(|e| e.to_string())?,
        End::AppendFails => {
            assert!(uow.commit().await.is_err());
            return Err("failed on purpose".into());
        }
        End::Fail => return Err("failed on purpose".into()),
        End::DatabaseError => {
            // The same primary key again: the database refuses the statement, and on
            // PostgreSQL the transaction is aborted until its savepoint is rolled back.
            let again = organization::Entity::find_by_id(id.clone())
                .one(uow.txn())
                .await
                .map_err(|e| e.to_string())?
                .expect("its own row");
            let refused = organization::Entity::insert(organization::ActiveModel {
                id: Set(again.id),
                name: Set(again.name),
                name_lower: Set(again.name_lower),
                created_at: Set(again.created_at),
                changed_at: Set(again.changed_at),
                sequence: Set(again.sequence),
            })
            .exec_without_returning(uow.txn())
            .await;
            assert!(refused.is_err());
            return Err("failed on purpose".into());
        }
        End::Hang => std::future::pending::<()>().await,
        End::DroppedInCommit => {
            let mut commit = std::pin::pin!(uow.commit());
            let mut context = std::task::Context::from_waker(std::task::Waker::noop());
            return match commit.as_mut().poll(&mut context) {
                std::task::Poll::Ready(Ok(())) => Ok(id),
                std::task::Poll::Ready(Err(error)) => Err(error.to_string()),
                std::task::Poll::Pending => Err(format!("{DROPPED} {id}")),
            };
        }
    }
    Ok(id)
}

/// A migrated fresh database of `backend`, its pool, a group commit, and a scope whose writes
/// it groups; None where the backend is not available.
async fn grouped_database(
    backend: Backend,
) -> Option<(FreshDatabase, DatabaseConnection, GroupCommit, ScopedDb)> {
    let database = FreshDatabase::create(backend).await?;
    let db = store::connect(&database.url).await.unwrap();
    store::migrate(&db).await.unwrap();
    let writes = Writes::default();
    let scoped = ScopedDb::instance(db.clone()).grouped(&writes);
    let group = writes.group;
    Some((database, db, group, scoped))
}

async fn close(database: FreshDatabase, db: DatabaseConnection) {
    db.close().await.ok();
    database.drop().await;
}

const DROPPED: &str = "dropped while committing";
const ROUNDS: usize = 8;

/// Units whose requests go away while they commit: each either committed whole (a write whose
/// caller left may have happened, as after a lost reply) or left nothing; the units after them
/// in the group commit, with the next sequences, and the event log stays gapless.
async fn units_dropped_while_committing_keep_every_guarantee(backend: Backend) {
    let Some((database, db, _group, scoped)) = grouped_database(backend).await else {
        return;
    };
    let (mut committed, mut dropped) = (BTreeSet::new(), BTreeSet::new());
    // Where a commit is dropped depends on timing: several rounds make the risky places likely.
    for round in 0..ROUNDS {
        let mut units = JoinSet::new();
        for n in 0..32 {
            let end = if n % 2 == 1 {
                End::DroppedInCommit
            } else {
                End::Commit
            };
            units.spawn(unit(scoped.clone(), format!("org {round}.{n}"), end));
        }
        while let Some(done) = units.join_next().await {
            match done.unwrap() {
                Ok(id) => {
                    committed.insert(id);
                }
                Err(error) => match error.strip_prefix(DROPPED) {
                    Some(id) => {
                        dropped.insert(id.trim().to_owned());
                    }
                    None => panic!("a unit that was not dropped failed: {error}"),
                },
            }
        }
    }
    assert!(!dropped.is_empty(), "no commit was dropped mid-way");
    assert_eq!(committed.len() + dropped.len(), 32 * ROUNDS);
    // After the dropped units' commits: a write of its own gets the event log's lock.
    let alone = ScopedDb::instance(db.clone());
    let after = unit(alone, "afterwards".into(), End::Commit).await.unwrap();
    committed.insert(after);
    let stored = stored_organizations(&db).await;
    assert!(
        stored.is_superset(&committed),
        "an acknowledged unit is missing"
    );
    let unknown: Vec<_> = stored
        .difference(&committed)
        .filter(|id| !dropped.contains(*id))
        .collect();
    assert!(unknown.is_empty(), "rows of no unit: {unknown:?}");
    let (events, low, high) = event_log(&db).await;
    let expected = stored.len() as i64;
    assert_eq!(
        (events, low, high),
        (expected, 1, expected),
        "one event a row, gapless"
    );
    close(database, db).await;
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum End {
    Commit,
    /// Returns an error: the unit is dropped without committing.
    Fail,
    /// A statement fails in the database, then the unit returns its error.
    DatabaseError,
    /// Its COMMIT fails: appending its event collides in the database.
    AppendFails,
    /// Never ends by itself; its task is aborted (a request dropped mid-write).
    Hang,
    /// Its commit is polled once, then dropped (a request gone while its unit appends its
    /// events).
    DroppedInCommit,
}

async fn units_fail_alone_and_share_commits(backend: Backend) {
    userdir::telemetry::init();
    let Some((database, db, group, scoped)) = grouped_database(backend).await else {
        return;
    };
    let mut units = JoinSet::new();
    let mut hanging = Vec::new();
    for n in 0..48 {
        let end = match n % 8 {
            3 => End::Fail,
            5 => End::DatabaseError,
            7 => End::AppendFails,
            6 => End::Hang,
            _ => End::Commit,
        };
        let handle = units.spawn(unit(scoped.clone(), format!("org {n}"), end));
        if end == End::Hang {
            hanging.push(handle);
        }
    }
    // Dropped mid-write, holding or waiting for the seat.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    for handle in hanging {
        handle.abort();
    }
    let (mut committed, mut failed) = (BTreeSet::new(), 0);
    while let Some(done) = units.join_next().await {
        match done {
            Ok(Ok(id)) => {
                committed.insert(id);
            }
            Ok(Err(error)) => {
                assert_eq!(error, "failed on purpose");
                failed += 1;
            }
            Err(aborted) => assert!(aborted.is_cancelled()),
        }
    }
    assert_eq!((committed.len(), failed), (24, 18));
    let stored = stored_organizations(&db).await;
    assert_eq!(stored, committed, "only the committed units' rows");
    let (events, low, high) = event_log(&db).await;
    assert_eq!(
        (events, low, high),
        (24, 1, 24),
        "gapless, one event a unit"
    );
    let (commits, acknowledged) = group.stats();
    assert_eq!(acknowledged, 24);
    assert!(
        commits < acknowledged,
        "48 overlapping units should share COMMITs: {commits} for {acknowledged}"
    );
    // The group is not left open: a write of its own gets the event log's lock.
    let alone = ScopedDb::instance(db.clone());
    let id = unit(alone, "afterwards".into(), End::Commit).await.unwrap();
    assert!(
        organization::Entity::find_by_id(id)
            .one(&db)
            .await
            .unwrap()
            .is_some()
    );
    close(database, db).await;
}
