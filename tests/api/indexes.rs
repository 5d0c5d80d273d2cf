//! The indexes the list shapes rely on exist after migrating, come back after rolling their
//! migration back and forth, and are the ones the planner picks for those shapes (on PostgreSQL
//! also the trigram indexes for ignore-case contains and the reversal's for ends-with; on
//! SQLite the order's index for a dense OR). Without them the answers stay the same, only
//! slower, so no other test would notice them missing.

use crate::common;

use common::fixtures::{self, NewUser};
use common::{Backend, FreshDatabase};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, TransactionTrait};
use userdir::domain::UserState;
use userdir::store;

const MIGRATION: &str = "m20261202_000007_list_indexes";

/// (index, what its definition says) on both backends: SQLite's `sql` in `sqlite_master`,
/// PostgreSQL's `pg_get_indexdef`.
const BOTH: [(&str, &str); 4] = [
    (
        "idx_users_organization_created",
        "(organization_id, created_at, id)",
    ),
    ("idx_users_state_created", "(state, created_at, id)"),
    (
        "idx_users_organization_state_created",
        "(organization_id, state, created_at, id)",
    ),
    ("idx_users_schema_created", "(schema_id, created_at, id)"),
];

const POSTGRES_ONLY: [(&str, &str); 10] = [
    (
        "idx_users_email_lower_desc",
        "(email_lower DESC NULLS LAST, id DESC)",
    ),
    ("idx_users_phone_desc", "(phone DESC NULLS LAST, id DESC)"),
    (
        "idx_users_email_lower_trgm",
        "USING gin (email_lower gin_trgm_ops)",
    ),
    (
        "idx_users_phone_lower_trgm",
        "USING gin (phone_lower gin_trgm_ops)",
    ),
    (
        "idx_users_name_lower_trgm",
        "USING gin (name_lower gin_trgm_ops)",
    ),
    (
        "idx_usernames_username_lower_trgm",
        "USING gin (username_lower gin_trgm_ops)",
    ),
    // Migration 12: ends-with as a prefix of the reversal.
    (
        "idx_users_email_lower_reversed",
        "USING btree (reverse(email_lower))",
    ),
    (
        "idx_users_phone_lower_reversed",
        "USING btree (reverse(phone_lower))",
    ),
    (
        "idx_users_name_lower_reversed",
        "USING btree (reverse(name_lower))",
    ),
    (
        "idx_usernames_username_lower_reversed",
        "USING btree (reverse(username_lower))",
    ),
];

fn expected(backend: Backend) -> Vec<(&'static str, &'static str)> {
    match backend {
        Backend::Sqlite => BOTH.to_vec(),
        Backend::Postgres => BOTH.iter().chain(&POSTGRES_ONLY).copied().collect(),
    }
}

/// Every index of the database with its definition, as (name, definition) pairs.
async fn indexes(db: &impl ConnectionTrait) -> Vec<(String, String)> {
    let sql = match db.get_database_backend() {
        sea_orm::DbBackend::Sqlite => {
            "SELECT name, sql AS definition FROM sqlite_master \
             WHERE type = 'index' AND sql IS NOT NULL"
        }
        _ => {
            "SELECT indexname AS name, pg_get_indexdef(format('%I', indexname)::regclass) \
             AS definition FROM pg_indexes WHERE schemaname = current_schema()"
        }
    };
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("list the indexes")
        .into_iter()
        .map(|row| {
            (
                row.try_get::<String>("", "name").unwrap(),
                row.try_get::<String>("", "definition").unwrap(),
            )
        })
        .collect()
}

fn assert_present(backend: Backend, found: &[(String, String)], when: &str) {
    for (name, shape) in expected(backend) {
        let definition = found
            .iter()
            .find(|(found, _)| found == name)
            .map(|(_, definition)| definition.replace('"', ""))
            .unwrap_or_else(|| panic!("{when}: index {name} is missing"));
        assert!(
            definition.contains(shape),
            "{when}: index {name} is `{definition}`, expected it to contain `{shape}`"
        );
    }
}

async fn migrated(backend: Backend) -> Option<(FreshDatabase, DatabaseConnection)> {
    userdir::telemetry::init();
    let database = FreshDatabase::create(backend).await?;
    let db = store::connect(&database.url).await.unwrap();
    store::migrate(&db).await.unwrap();
    Some((database, db))
}

async fn exist_after_migrating_and_after_a_round_trip(backend: Backend) {
    let Some((database, db)) = migrated(backend).await else {
        return;
    };
    assert_present(backend, &indexes(&db).await, "after migrating");

    // Down through this migration and up again on one connection, as `store::migrate` runs
    // them; by name, so that a newer migration does not take its place.
    let all = <migration::Migrator as migration::MigratorTrait>::migrations();
    let position = all.iter().position(|m| m.name() == MIGRATION).unwrap();
    let steps = u32::try_from(all.len() - position).unwrap();
    let txn = db.begin().await.unwrap();
    <migration::Migrator as migration::MigratorTrait>::down(&txn, Some(steps))
        .await
        .expect("roll back");
    let left = indexes(&txn).await;
    for (name, _) in expected(backend) {
        assert!(
            left.iter().all(|(found, _)| found != name),
            "{name} survived rolling back {MIGRATION}"
        );
    }
    <migration::Migrator as migration::MigratorTrait>::up(&txn, None)
        .await
        .expect("migrate up again");
    txn.commit().await.unwrap();
    assert_present(backend, &indexes(&db).await, "after migrating down and up");

    db.close().await.ok();
    database.drop().await;
}

/// The SQL the read compiler writes for these shapes (`select_users` in the store's reads),
/// with literal values: a page in the default order, or in a sort column's.
fn page(filter: &str, order: &str) -> String {
    format!("SELECT * FROM users WHERE {filter} ORDER BY {order} LIMIT 50")
}

const DEFAULT_ORDER: &str = "created_at DESC, id DESC";

async fn are_what_the_planner_picks(backend: Backend) {
    let Some((database, db)) = migrated(backend).await else {
        return;
    };
    fixtures::base(&db).await;
    let users = (0..40)
        .map(|n| {
            let user = NewUser::new(n).email(&format!("person{n}@example.com"));
            match n % 4 {
                0 => user.org(fixtures::ORG_B).state(UserState::Locked),
                1 => user.customer(),
                _ => user,
            }
        })
        .collect();
    fixtures::insert(&db, users).await;

    let org = fixtures::ORG_B;
    let state = UserState::Locked.number();
    let mut shapes = vec![
        (
            page(&format!("organization_id = '{org}'"), DEFAULT_ORDER),
            "idx_users_organization_created",
        ),
        (
            page(&format!("state = {state}"), DEFAULT_ORDER),
            "idx_users_state_created",
        ),
        (
            page(
                &format!("organization_id = '{org}' AND state = {state}"),
                DEFAULT_ORDER,
            ),
            "idx_users_organization_state_created",
        ),
        (
            page(
                &format!("schema_id = '{}'", fixtures::CUSTOMER),
                DEFAULT_ORDER,
            ),
            "idx_users_schema_created",
        ),
    ];
    let txn = db.begin().await.unwrap();
    if backend == Backend::Postgres {
        // A table this small is read whole whatever the indexes; take that way out so the
        // plan shows which index answers the shape at scale.
        for setting in [
            "ANALYZE",
            "SET LOCAL enable_seqscan = off",
            "SET LOCAL enable_sort = off",
        ] {
            txn.execute_unprepared(setting).await.unwrap();
        }
        shapes.extend([
            (
                page("TRUE", "email_lower DESC NULLS LAST, id DESC"),
                "idx_users_email_lower_desc",
            ),
            (
                page("TRUE", "phone DESC NULLS LAST, id DESC"),
                "idx_users_phone_desc",
            ),
        ]);
    } else {
        txn.execute_unprepared("ANALYZE").await.unwrap();
    }
    for (sql, index) in shapes {
        let plan = common::plan(&txn, &sql).await;
        assert!(
            plan.contains(index),
            "`{sql}` should use {index}, the plan is:\n{plan}"
        );
    }

    if backend == Backend::Postgres {
        // Substring matches: no B-tree can take `LIKE '%…%'` as an index condition, so with
        // only bitmap scans left the one way not to read the table whole is the trigram index.
        // The compiler's `column IS NOT NULL` guard is left out: on a table this small a bitmap
        // of every non-NULL row looks as cheap, which says nothing about a million users.
        for setting in [
            "SET LOCAL enable_sort = on",
            "SET LOCAL enable_indexscan = off",
            "SET LOCAL enable_indexonlyscan = off",
        ] {
            txn.execute_unprepared(setting).await.unwrap();
        }
        let contains = |column: &str| format!("{column}_lower LIKE '%son1%' ESCAPE '\\'");
        let substring_shapes = [
            (contains("email"), "idx_users_email_lower_trgm"),
            (contains("phone"), "idx_users_phone_lower_trgm"),
            (contains("name"), "idx_users_name_lower_trgm"),
            (
                "id IN (SELECT user_id FROM usernames \
                 WHERE username_lower LIKE '%ser1' ESCAPE '\\')"
                    .to_owned(),
                "idx_usernames_username_lower_trgm",
            ),
        ];
        for (filter, index) in substring_shapes {
            let sql = page(&filter, DEFAULT_ORDER);
            let plan = common::plan(&txn, &sql).await;
            assert!(
                plan.contains(index) && !plan.contains("Seq Scan"),
                "`{sql}` should use {index}, the plan is:\n{plan}"
            );
        }
        // Ends-with, as the compiler narrows it: the reversal's prefix is one B-tree range,
        // where the trigram index would match every user of the common domain's trigrams.
        let ends = "email_lower IS NOT NULL AND reverse(email_lower) LIKE 'moc.elpmaxe@1%' \
                    ESCAPE '\\' AND email_lower LIKE '%1@example.com' ESCAPE '\\'";
        let sql = page(ends, DEFAULT_ORDER);
        let plan = common::plan(&txn, &sql).await;
        assert!(
            plan.contains("idx_users_email_lower_reversed") && !plan.contains("Seq Scan"),
            "`{sql}` should use idx_users_email_lower_reversed, the plan is:\n{plan}"
        );
    }
    if backend == Backend::Sqlite {
        // Substring matches: the read compiler narrows the LIKE by the FTS5 trigram tables of
        // migration 10, through their key tables, so SQLite finds the matching ids there and
        // seeks each user by its key instead of testing the LIKE on every user. Forty users are
        // read whole in page order whatever the indexes; a few thousand show the plan of scale.
        txn.commit().await.unwrap();
        let more = (1_000..4_000)
            .map(|n| {
                NewUser::new(n)
                    .email(&format!("bulk{n}@example.com"))
                    .phone(&format!("+4179{n}"))
                    .data(serde_json::json!({ "name": format!("Bulk Person {n}") }))
            })
            .collect();
        fixtures::insert(&db, more).await;
        let txn = db.begin().await.unwrap();
        txn.execute_unprepared("ANALYZE").await.unwrap();
        let narrowed = |fts: &str, column: &str, value: &str| {
            format!(
                "id IN (SELECT source_id FROM {fts}_keys WHERE key IN \
                 (SELECT rowid FROM {fts} WHERE {fts}.{column} MATCH '\"{value}\"'))"
            )
        };
        let contains = |column: &str| {
            format!(
                "{column} IS NOT NULL AND ({} AND {column}_lower LIKE '%son1%' ESCAPE '\\')",
                narrowed("users_trigram", column, "son1")
            )
        };
        let substring_shapes = [
            contains("email"),
            contains("phone"),
            contains("name"),
            format!(
                "id IN (SELECT user_id FROM usernames WHERE {} \
                 AND username_lower LIKE '%ser1' ESCAPE '\\')",
                narrowed("usernames_trigram", "username", "ser1").replacen(
                    "id IN",
                    "usernames.id IN",
                    1
                )
            ),
        ];
        // An OR matching many users, its indexed branches behind SQLite's unary `+` as the
        // compiler writes it for a dense match (`compile::Matches`): the page walks the index
        // of its order instead of reading every match through the branches' indexes and
        // sorting them.
        let dense_or = page(
            &format!("+(state = {state} OR email_lower LIKE 'bulk11%' ESCAPE '\\')"),
            DEFAULT_ORDER,
        );
        let plan = common::plan(&txn, &dense_or).await;
        assert!(
            plan.contains("SCAN users USING INDEX idx_users_created")
                && !plan.contains("MULTI-INDEX OR")
                && !plan.contains("TEMP B-TREE"),
            "`{dense_or}` should walk idx_users_created, the plan is:\n{plan}"
        );
        for filter in substring_shapes {
            let sql = page(&filter, DEFAULT_ORDER);
            let plan = common::plan(&txn, &sql).await;
            let fts = if filter.contains("usernames_trigram") {
                "SCAN usernames_trigram VIRTUAL TABLE INDEX"
            } else {
                "SCAN users_trigram VIRTUAL TABLE INDEX"
            };
            assert!(
                plan.contains(fts)
                    && plan.contains("SEARCH users USING INDEX sqlite_autoindex_users_1 (id=?)")
                    && !plan.lines().any(|line| line.trim() == "SCAN users"
                        || line.contains("SCAN users USING")
                        || line.trim() == "SCAN usernames"),
                "`{sql}` should use the trigram index, the plan is:\n{plan}"
            );
        }
        txn.rollback().await.unwrap();
    } else {
        txn.rollback().await.unwrap();
    }

    db.close().await.ok();
    database.drop().await;
}

/// Where pg_trgm cannot be created (here: a role that may create tables but not extensions),
/// migrating fails and says what is missing and how to get it.
#[tokio::test]
async fn postgres_without_pg_trgm_fails_with_a_clear_message() {
    userdir::telemetry::init();
    let Some(database) = FreshDatabase::create(Backend::Postgres).await else {
        return;
    };
    let owner = store::connect(&database.url).await.unwrap();
    let role = format!("userdir_no_ext_{}", uuid::Uuid::new_v4().simple());
    for statement in [
        format!("CREATE ROLE {role} LOGIN"),
        format!("GRANT CREATE, USAGE ON SCHEMA public TO {role}"),
    ] {
        owner.execute_unprepared(&statement).await.unwrap();
    }
    // The same server and database, as the new role.
    let (scheme, rest) = database.url.split_once("://").expect("a URL");
    let (_, server) = rest.split_once('@').expect("a URL with a user");
    let db = store::connect(&format!("{scheme}://{role}@{server}"))
        .await
        .unwrap();

    let error = store::migrate(&db)
        .await
        .expect_err("migrating without pg_trgm")
        .to_string();
    db.close().await.ok();
    owner.close().await.ok();
    database.drop().await;
    let admin_url = std::env::var("USERDIR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let admin = store::connect(&admin_url).await.unwrap();
    admin
        .execute_unprepared(&format!("DROP ROLE IF EXISTS {role}"))
        .await
        .unwrap();
    admin.close().await.ok();

    assert!(
        error.contains("pg_trgm") && error.contains("postgresql-contrib"),
        "the error should name pg_trgm and how to install it: {error}"
    );
}

#[tokio::test]
async fn exist_after_migrating_and_after_a_round_trip_sqlite() {
    exist_after_migrating_and_after_a_round_trip(Backend::Sqlite).await;
}

#[tokio::test]
async fn exist_after_migrating_and_after_a_round_trip_postgres() {
    exist_after_migrating_and_after_a_round_trip(Backend::Postgres).await;
}

#[tokio::test]
async fn are_what_the_planner_picks_sqlite() {
    are_what_the_planner_picks(Backend::Sqlite).await;
}

#[tokio::test]
async fn are_what_the_planner_picks_postgres() {
    are_what_the_planner_picks(Backend::Postgres).await;
}
