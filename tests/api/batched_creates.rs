//! CreateUsers written in one batch (`store::writes::creates`) are decided as lone creates are:
//! a username taken in the directory, by an earlier user of the batch or by the user's own
//! earlier name fails its user alone, naming the field; organization-specific names clash only
//! in their organization; a schema revised while the batch waited sends its user back to be
//! checked again; codes and passwords work; sequences are gapless and each caller's own. A
//! batch that fails in the database is written one user at a time instead.
//!
//! The tests hold the group's seat while the creates queue, so that they meet in one batch.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::common;

use common::TestApp;
use common::fixtures::{self, CUSTOMER, EMPLOYEE, ORG_A, ORG_B};
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, Statement};
use serde_json::json;
use tokio::task::JoinHandle;
use userdir::command;
use userdir::command::authenticators::{NewPassword, NewUsername, PasswordSecret};
use userdir::command::contact::{ContactKind, ContactValue, Verification};
use userdir::command::users::{Created, NewUser};
use userdir::domain::Scope;
use userdir::error::Error;
use userdir::limits::hashing::Hashing;
use userdir::store::ScopedDb;
use userdir::store::entities::{event, user};
use userdir::store::writes::Writes;
use userdir::store::writes::creates::{BatchedCreate, NewUserRows};

backend_tests!(
    creates_in_one_batch_are_decided_like_lone_creates,
    a_batch_that_fails_in_the_database_writes_nothing,
    a_full_batch_of_users_with_every_username_is_written_together,
);

/// A user of `organization` with the schema Employee and these usernames.
fn new_user(organization: &str, usernames: &[(&str, bool)]) -> NewUser {
    NewUser {
        organization_id: organization.into(),
        schema_id: EMPLOYEE.into(),
        data: json!({"givenName": "Batched"}),
        email: None,
        phone: None,
        usernames: usernames
            .iter()
            .map(|&(username, organization_specific)| NewUsername {
                username: username.into(),
                organization_specific,
            })
            .collect(),
        password: None,
    }
}

/// Starts a create and returns once it waits in the lane, so creates queue in the order they
/// are started.
async fn queue(writes: &Writes, db: ScopedDb, new: NewUser) -> JoinHandle<Result<Created, Error>> {
    let queued = writes.creates.queued();
    let create = tokio::spawn(async move {
        let hashing = Hashing::new(Default::default()).unwrap();
        command::users::create(&db, &hashing, new).await
    });
    one_more_queued(writes, queued).await;
    create
}

/// Waits until more than `queued` creates wait in the lane.
async fn one_more_queued(writes: &Writes, queued: usize) {
    let mut waited = Duration::ZERO;
    while writes.creates.queued() == queued {
        assert!(waited < Duration::from_secs(10), "the create never queued");
        tokio::time::sleep(Duration::from_millis(1)).await;
        waited += Duration::from_millis(1);
    }
}

/// The message of an AlreadyExists, the field of an InvalidArgument.
fn refused(outcome: Result<Created, Error>) -> String {
    match outcome {
        Err(Error::AlreadyExists(message)) => message,
        Err(Error::InvalidArgument { field, .. }) => field,
        Err(other) => panic!("an unexpected error: {other:?}"),
        Ok(created) => panic!("written as {}", created.user_id),
    }
}

async fn creates_in_one_batch_are_decided_like_lone_creates(app: TestApp) {
    fixtures::base(&app.db).await;
    let hashing = Hashing::new(Default::default()).unwrap();
    // Taken before the batch, by a lone create.
    let alone = ScopedDb::instance(app.db.clone());
    command::users::create(&alone, &hashing, new_user(ORG_A, &[("taken", false)]))
        .await
        .unwrap();

    // Every statement of the batch is counted on a connection of its own.
    let statements = Arc::new(AtomicUsize::new(0));
    let mut db = app.db.clone();
    let counter = statements.clone();
    db.set_metric_callback(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let writes = Writes::default();
    let instance = ScopedDb::instance(db.clone()).grouped(&writes);
    let org_b = ScopedDb::new(
        db.clone(),
        Scope::Organization(ORG_B.into()),
        "b-admin".into(),
    )
    .grouped(&writes);

    let seat = writes.group.seat(&db).await.unwrap();
    let mut with_code = new_user(ORG_A, &[("coded", false)]);
    with_code.email = Some(ContactValue {
        value: "coded@example.com".into(),
        verification: Verification::ReturnCode,
    });
    with_code.password = Some(NewPassword {
        secret: PasswordSecret::Plain("a long enough password".into()),
        change_required: false,
    });
    let mut revised = new_user(ORG_A, &[("revised", false)]);
    revised.schema_id = CUSTOMER.into();
    let creates = [
        (instance.clone(), new_user(ORG_A, &[("dup", false)])),
        (instance.clone(), new_user(ORG_A, &[("DUP", false)])),
        (
            instance.clone(),
            new_user(ORG_A, &[("fresh", false), ("taken", true)]),
        ),
        (org_b.clone(), new_user(ORG_B, &[("same", true)])),
        (instance.clone(), new_user(ORG_A, &[("same", true)])),
        (instance.clone(), new_user(ORG_B, &[("same", true)])),
        (
            instance.clone(),
            new_user(ORG_A, &[("twice", true), ("Twice", true)]),
        ),
        (instance.clone(), with_code),
        (instance.clone(), revised),
        (org_b.clone(), new_user(ORG_B, &[("last", true)])),
    ];
    let mut handles = Vec::new();
    for (db, new) in creates {
        handles.push(queue(&writes, db, new).await);
    }
    // While the creates wait: a new revision of the customer schema, which the data of the
    // ninth no longer fits.
    seat.txn()
        .execute_raw(Statement::from_sql_and_values(
            seat.txn().get_database_backend(),
            match seat.txn().get_database_backend() {
                sea_orm::DbBackend::Postgres => {
                    "UPDATE user_schemas SET revision = 2, json_schema = $1 WHERE id = $2"
                }
                _ => "UPDATE user_schemas SET revision = 2, json_schema = ? WHERE id = ?",
            },
            [
                json!({"type": "object", "required": ["customerNumber"]}).into(),
                CUSTOMER.into(),
            ],
        ))
        .await
        .unwrap();
    statements.store(0, Ordering::SeqCst);
    seat.commit().await.unwrap();

    let mut outcomes = Vec::new();
    for handle in handles {
        outcomes.push(handle.await.unwrap());
    }
    let counted = statements.load(Ordering::SeqCst);
    let mut outcomes = outcomes.into_iter();
    let mut next = || outcomes.next().unwrap();
    let first = next().expect("the first of two equal names is written");
    assert!(refused(next()).starts_with("usernames[0].username"));
    assert!(refused(next()).starts_with("usernames[1].username"));
    let in_b = next().expect("an organization's name in B");
    next().expect("the same name in organization A");
    assert!(
        refused(next()).starts_with("usernames[0].username"),
        "the same name in B again"
    );
    assert!(
        refused(next()).starts_with("usernames[1].username"),
        "a user's two equal names"
    );
    let coded = next().expect("a user with a code and a password");
    let refused = refused(next());
    assert!(
        refused.starts_with("data"),
        "checked again against the revised schema: {refused}"
    );
    let last = next().expect("the last one");
    // Ten creates: the batch's own few statements, and one create checked and written alone
    // again. Written alone, each takes `round_trips::CREATE_STATEMENTS` (8).
    assert!(
        counted <= 24,
        "ten creates in a batch ran {counted} statements"
    );

    // The code and the password are there.
    let code = coded
        .email_code
        .clone()
        .expect("the email code is returned");
    command::contact::verify(&instance, &coded.user_id, ContactKind::Email, &code)
        .await
        .expect("the code verifies the email");
    command::authenticators::verify_password(
        &instance,
        &hashing,
        &coded.user_id,
        "a long enough password",
    )
    .await
    .expect("the password is stored");

    // Gapless, in arrival order, each sequence as its caller counts it.
    let events = event::Entity::find().all(&app.db).await.unwrap();
    let sequences: Vec<i64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=events.len() as i64).collect::<Vec<_>>());
    let created = |id: &str| {
        events
            .iter()
            .find(|e| e.aggregate_id == id && e.event_type == "user.created")
            .unwrap_or_else(|| panic!("no event for {id}"))
    };
    let ordered: Vec<i64> = [&first, &in_b, &coded, &last]
        .iter()
        .map(|c| created(&c.user_id).sequence)
        .collect();
    assert!(ordered.is_sorted(), "arrival order: {ordered:?}");
    for written in [&first, &coded] {
        assert_eq!(written.written.seen_sequence, written.written.sequence);
    }
    for written in [&in_b, &last] {
        let event = created(&written.user_id);
        assert_eq!(written.written.sequence, event.sequence);
        assert_eq!(
            Some(written.written.seen_sequence),
            event.organization_sequence
        );
        assert_eq!(event.actor, "b-admin");
        let stored = user::Entity::find_by_id(written.user_id.as_str())
            .one(&app.db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.sequence, event.sequence);
        assert_eq!(stored.created_at, event.created_at);
    }
    assert_organization_streams_gapless(&app.db).await;
    let recount = userdir::store::reads::recount::recount(&app.db)
        .await
        .unwrap();
    assert!(recount.drift.is_empty(), "{:?}", recount.drift);
}

async fn assert_organization_streams_gapless(db: &DatabaseConnection) {
    for organization in [ORG_A, ORG_B] {
        let mut positions: Vec<i64> = event::Entity::find()
            .all(db)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.organization_id.as_deref() == Some(organization))
            .filter_map(|e| e.organization_sequence)
            .collect();
        positions.sort_unstable();
        assert_eq!(
            positions,
            (1..=positions.len() as i64).collect::<Vec<_>>(),
            "the stream of {organization}"
        );
    }
}

/// Rows of new user `n` of `organization` (which may not exist) with the usernames `u<n>-0`
/// and on, as the command would decide them.
fn rows(n: u64, organization: &str, usernames: usize) -> NewUserRows {
    let user = (0..usernames)
        .fold(fixtures::NewUser::new(n).without_usernames(), |user, k| {
            user.username(&format!("u{n}-{k}"), false)
        })
        .org(organization)
        .build();
    NewUserRows {
        user: user.user,
        usernames: user.usernames,
        password: None,
        codes: vec![],
        payload: json!({}),
        actor: "test".into(),
        caller_organization: None,
    }
}

/// Queues `batch` while the test holds the group's seat, then gives the seat up: the batch is
/// written together. Returns each user's outcome.
async fn in_one_batch(
    writes: &Writes,
    db: &DatabaseConnection,
    batch: Vec<NewUserRows>,
) -> Vec<BatchedCreate> {
    let seat = writes.group.seat(db).await.unwrap();
    let mut handles = Vec::new();
    for rows in batch {
        let queued = writes.creates.queued();
        let (shared, db) = (writes.clone(), db.clone());
        handles.push(tokio::spawn(async move {
            shared.creates.create_user(&shared.group, &db, rows).await
        }));
        one_more_queued(writes, queued).await;
    }
    seat.leave();
    let mut outcomes = Vec::new();
    for handle in handles {
        outcomes.push(handle.await.unwrap().unwrap());
    }
    outcomes
}

/// A batch one of whose rows the database refuses (its organization does not exist): every
/// user of the batch is sent back to be written alone, nothing of the batch is left, and the
/// next batch writes as usual.
async fn a_batch_that_fails_in_the_database_writes_nothing(app: TestApp) {
    fixtures::base(&app.db).await;
    let writes = Writes::default();
    let db = app.db.clone();
    let before = event::Entity::find().all(&db).await.unwrap().len();
    let batch = vec![
        rows(1, ORG_A, 1),
        rows(2, "018c0000-0000-7000-8000-00000000dead", 1),
        rows(3, ORG_B, 1),
    ];
    let outcomes = in_one_batch(&writes, &db, batch).await;
    assert_eq!(outcomes, vec![BatchedCreate::Alone; 3]);
    for n in 1..=3 {
        let stored = user::Entity::find_by_id(fixtures::user_id(n))
            .one(&db)
            .await
            .unwrap();
        assert!(stored.is_none(), "user {n} was written");
    }
    assert_eq!(event::Entity::find().all(&db).await.unwrap().len(), before);

    // The next batch is written, its events right after the earlier ones.
    let written = writes
        .creates
        .create_user(&writes.group, &db, rows(1, ORG_A, 1))
        .await
        .unwrap();
    let BatchedCreate::Written(written) = written else {
        panic!("not written: {written:?}");
    };
    assert_eq!(written.sequence, before as i64 + 1);
    assert!(
        user::Entity::find_by_id(fixtures::user_id(1))
            .one(&db)
            .await
            .unwrap()
            .is_some()
    );
}

/// The largest batch of the largest users (256 users of 20 usernames each: 5,120 username
/// rows, more values than one SQLite statement binds) is written as one batch, not sent back to
/// be written alone.
async fn a_full_batch_of_users_with_every_username_is_written_together(app: TestApp) {
    fixtures::base(&app.db).await;
    let writes = Writes::default();
    let batch = (1..=256).map(|n| rows(n, ORG_A, 20)).collect();
    let outcomes = in_one_batch(&writes, &app.db, batch).await;
    for outcome in outcomes {
        assert!(
            matches!(outcome, BatchedCreate::Written(_)),
            "not written in the batch: {outcome:?}"
        );
    }
    assert_eq!(writes.creates.stats(), (1, 256));
    let names = userdir::store::entities::username::Entity::find()
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(names.len(), 256 * 20);
}
