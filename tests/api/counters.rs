//! The counters behind list totals stay exact under concurrent writes of every kind, and the
//! totals read from them equal a plain count of the same users, on SQLite and PostgreSQL.

use crate::common;

use common::TestApp;
use common::api;
use common::queries::{self as q, M};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tonic::Code;
use userdir::proto::user::v1::{self as pb};
use userdir::seed::{self, SeedOptions};
use userdir::store;
use userdir::store::reads::recount::Counter;

backend_tests!(
    counters_stay_exact_under_concurrent_writes,
    counters_are_backfilled_by_the_migration
);

const WRITERS: u64 = 4;
const STEPS: usize = 30;

async fn counters_stay_exact_under_concurrent_writes(app: TestApp) {
    let orgs = [
        api::organization(&app, "Acme").await,
        api::organization(&app, "Globex").await,
    ];
    let schema = api::person_schema(&app, "person").await;
    let mut roles = Vec::new();
    for name in ["admin", "support"] {
        roles.push(api::role(&app, name).await);
    }

    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..WRITERS {
        let (users, role_service) = (app.users.clone(), app.roles.clone());
        let (orgs, schema, roles) = (orgs.clone(), schema.clone(), roles.clone());
        writers.spawn(async move {
            write_at_random(writer, users, role_service, &orgs, &schema, &roles).await
        });
    }
    // A bulk import (seeding) alongside, through the same tables and triggers.
    let db = app.db.clone();
    writers.spawn(async move {
        seed::run(
            &db,
            SeedOptions {
                users: 250,
                seed: 3,
                batch_size: 40,
                progress: false,
            },
        )
        .await
        .expect("seeding");
    });
    while let Some(done) = writers.join_next().await {
        done.expect("a writer");
    }

    let recount = store::reads::recount::recount(&app.db).await.unwrap();
    assert_eq!(recount.drift, [], "the counters drifted from the rows");
    assert!(
        recount.counted.len() > 8,
        "the writes reached several counters: {:?}",
        recount.counted
    );

    // Totals the counters answer (in whole or in part) equal the same users counted by the
    // database: the same conditions AND-ed with one the counters cannot answer (no user has
    // the id "none").
    let counting = || q::not(q::user_id("none", M::Equals));
    let total = |request: pb::ListUsersRequest| {
        let mut users = app.users.clone();
        async move {
            users
                .list_users(request)
                .await
                .unwrap()
                .into_inner()
                .details
                .unwrap()
                .total_result
        }
    };
    let mut shapes = vec![vec![]];
    for org in &orgs {
        shapes.push(vec![q::org(org, M::Equals)]);
        for state in [
            pb::State::UserStateActive,
            pb::State::UserStateInactive,
            pb::State::UserStateLocked,
        ] {
            shapes.push(vec![q::org(org, M::Equals), q::state(state)]);
            shapes.push(vec![q::state(state)]);
            // ORs with a counted branch: that branch from the counters, the users of the other
            // branches outside it counted (the branches overlap).
            shapes.push(vec![q::or(vec![q::state(state), q::org(org, M::Equals)])]);
            shapes.push(vec![
                q::org(org, M::Equals),
                q::or(vec![
                    q::not(q::state(pb::State::UserStateActive)),
                    q::state(state),
                ]),
            ]);
        }
    }
    for shape in shapes {
        let counted = total(q::matching(shape.clone())).await;
        let mut plain = shape.clone();
        plain.push(counting());
        assert_eq!(counted, total(q::matching(plain)).await, "{shape:?}");
    }
    for role in &roles {
        let role_total = |queries: Vec<pb::SearchQuery>| {
            let mut service = app.roles.clone();
            let role_id = role.clone();
            async move {
                service
                    .list_role_users(pb::ListRoleUsersRequest {
                        role_id,
                        queries,
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .into_inner()
                    .details
                    .unwrap()
                    .total_result
            }
        };
        for shape in [vec![], vec![q::org(&orgs[0], M::Equals)]] {
            let counted = role_total(shape.clone()).await;
            let mut plain = shape.clone();
            plain.push(counting());
            assert_eq!(counted, role_total(plain).await, "role {role} {shape:?}");
        }
    }
}

/// One writer: creates users and then, at random, changes states, deletes users and
/// (un)assigns roles, among its own users and the other writers' (which may be gone).
async fn write_at_random(
    writer: u64,
    mut users: userdir::proto::user::v1::user_service_client::UserServiceClient<common::Authed>,
    mut role_service: userdir::proto::user::v1::role_service_client::RoleServiceClient<
        common::Authed,
    >,
    orgs: &[String],
    schema: &str,
    roles: &[String],
) {
    let mut rng = ChaCha8Rng::seed_from_u64(writer);
    let mut mine: Vec<String> = Vec::new();
    for step in 0..STEPS {
        let org = &orgs[rng.random_range(0..orgs.len())];
        let name = format!("w{writer}-{step}");
        let created = users
            .create_user(api::new_user(org, schema, &name))
            .await
            .expect("CreateUser")
            .into_inner()
            .user_id;
        mine.push(created);
        let target = mine[rng.random_range(0..mine.len())].clone();
        let role = roles[rng.random_range(0..roles.len())].clone();
        let outcome = match rng.random_range(0..7) {
            0 => users
                .lock_user(pb::LockUserRequest { user_id: target })
                .await
                .map(drop),
            1 => users
                .unlock_user(pb::UnlockUserRequest { user_id: target })
                .await
                .map(drop),
            2 => users
                .deactivate_user(pb::DeactivateUserRequest { user_id: target })
                .await
                .map(drop),
            3 => users
                .reactivate_user(pb::ReactivateUserRequest { user_id: target })
                .await
                .map(drop),
            4 => {
                mine.retain(|id| *id != target);
                users
                    .delete_user(pb::DeleteUserRequest { user_id: target })
                    .await
                    .map(drop)
            }
            5 => role_service
                .unassign_role(pb::UnassignRoleRequest {
                    role_id: role,
                    user_id: target,
                })
                .await
                .map(drop),
            _ => role_service
                .assign_role(pb::AssignRoleRequest {
                    role_id: role,
                    user_ids: vec![target],
                })
                .await
                .map(drop),
        };
        if let Err(status) = outcome {
            // A transition the state does not allow, or a role the user does not hold.
            assert!(
                matches!(status.code(), Code::FailedPrecondition | Code::NotFound),
                "{status:?}"
            );
        }
    }
}

/// A directory written before the counters existed gets them filled by the migration.
async fn counters_are_backfilled_by_the_migration(app: TestApp) {
    seed::run(
        &app.db,
        SeedOptions {
            users: 120,
            seed: 5,
            batch_size: 50,
            progress: false,
        },
    )
    .await
    .unwrap();
    let some: Vec<String> = app
        .users
        .clone()
        .list_users(q::matching(vec![]))
        .await
        .unwrap()
        .into_inner()
        .result
        .into_iter()
        .step_by(3)
        .map(|user| user.user_id)
        .collect();
    let role_id = api::role(&app, "auditor").await;
    app.roles
        .clone()
        .assign_role(pb::AssignRoleRequest {
            role_id,
            user_ids: some.clone(),
        })
        .await
        .unwrap();
    let before = store::reads::recount::recount(&app.db).await.unwrap();
    assert_eq!(before.drift, []);
    common::migrate_down_through_and_up(&app.db, "m20261202_000008_user_counts").await;
    let after = store::reads::recount::recount(&app.db).await.unwrap();
    assert_eq!(after.drift, []);
    assert_eq!(after.counted, before.counted);
    let (users, holders): (Vec<_>, Vec<_>) = after
        .counted
        .iter()
        .partition(|(counter, _)| matches!(counter, Counter::Users { .. }));
    assert_eq!(users.iter().map(|(_, n)| **n).sum::<i64>(), 120);
    assert_eq!(
        holders.iter().map(|(_, n)| **n).sum::<i64>(),
        some.len() as i64
    );
}

#[tokio::test]
async fn check_reports_and_repairs_drift_sqlite() {
    check_reports_and_repairs_drift(common::Backend::Sqlite).await;
}

#[tokio::test]
async fn check_reports_and_repairs_drift_postgres() {
    check_reports_and_repairs_drift(common::Backend::Postgres).await;
}

/// `userdir check` as an operator runs it: silent agreement, drift reported with exit status
/// 1, `--repair` rewriting the counters, then the same for an authenticator document.
async fn check_reports_and_repairs_drift(backend: common::Backend) {
    use sea_orm::ConnectionTrait;
    let Some(database) = common::FreshDatabase::create(backend).await else {
        return;
    };
    let userdir = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_userdir"))
            .args(args)
            .args(["--database-url", &database.url])
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8(output.stdout).unwrap(),
        )
    };
    assert_eq!(userdir(&["seed", "--users", "60"]).0, Some(0));
    let (status, out) = userdir(&["check"]);
    assert_eq!(status, Some(0), "{out}");
    assert!(out.starts_with("counters hold: "), "{out}");

    let db = store::connect(&database.url).await.unwrap();
    db.execute_unprepared("UPDATE user_counts SET total = total + 2")
        .await
        .unwrap();
    let (status, out) = userdir(&["check"]);
    assert_eq!(status, Some(1), "{out}");
    assert!(out.contains("drift: users of organization "), "{out}");
    assert!(out.contains("`userdir check --repair`"), "{out}");

    let (status, out) = userdir(&["check", "--repair"]);
    assert_eq!(status, Some(0), "{out}");
    assert!(out.contains("repaired: rewrote "), "{out}");
    assert!(
        out.contains("counters from the rows; 0 drifted after"),
        "{out}"
    );
    let (status, out) = userdir(&["check"]);
    assert_eq!(status, Some(0), "{out}");
    assert!(
        out.contains("authenticator documents hold: 60 users' documents agree"),
        "{out}"
    );

    // An authenticator row changed by SQL of an operator's own leaves the user's document
    // behind it: reported, and rewritten by --repair.
    db.execute_unprepared(
        "UPDATE passwords SET changed_at = changed_at + 1 \
         WHERE user_id = (SELECT min(user_id) FROM passwords)",
    )
    .await
    .unwrap();
    let (status, out) = userdir(&["check"]);
    assert_eq!(status, Some(1), "{out}");
    assert!(out.starts_with("counters hold: "), "{out}");
    assert!(
        out.contains("drift: the authenticator document of user "),
        "{out}"
    );
    assert!(out.contains("1 authenticator documents drifted"), "{out}");
    let (status, out) = userdir(&["check", "--repair"]);
    assert_eq!(status, Some(0), "{out}");
    assert!(
        out.contains("rewrote 1 authenticator documents from the rows; 0 drifted after"),
        "{out}"
    );
    let (status, out) = userdir(&["check"]);
    assert_eq!(status, Some(0), "{out}");
    db.close().await.unwrap();
    database.drop().await;
}
