//! How many statements a ListUsers page, a GetUser and a CreateUser cost. Every statement is a
//! round trip the caller waits for, so the store answers from a fixed few whatever the page
//! holds; a change that adds one (say, a query per authenticator kind again) fails here, on both
//! backends, for an instance-wide and an organization's caller. A write's statements run while
//! it holds the event log's lock, one writer after the other: each one costs throughput.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common;

use common::TestApp;
use common::fixtures::{self, NewUser, ORG_A, ORG_B};
use sea_orm::DbBackend;
use serde_json::json;
use userdir::command;
use userdir::command::authenticators::NewUsername;
use userdir::command::contact::{ContactValue, Verification};
use userdir::domain::Scope;
use userdir::limits::hashing::Hashing;
use userdir::limits::regex_searches::RegexSearches;
use userdir::query::{Filter, Query, SortField, TextMatch, TextOp, UserSearch};
use userdir::store::ScopedDb;
use userdir::store::reads::users;
use userdir::store::snapshot::counting_statements;

backend_tests!(a_page_and_a_user_take_a_fixed_few_statements);
backend_tests!(a_create_takes_a_fixed_few_statements);
backend_tests!(a_sqlite_page_planned_without_its_total_is_one_statement);

/// The total (with the newest event), and the page with its users' authenticators (each user's
/// document, see `store::authenticators`); one to spare.
const PAGE_STATEMENTS: usize = 3;
/// The user (with its sequence as the caller counts it, its authenticators, and for an
/// organization's caller its keys' sequences as it counts them): one statement, which needs no
/// transaction around it.
const USER_STATEMENTS: usize = 1;
/// A CreateUser with a username and a verified email, alone: the organization and the schema
/// (read before the unit), the event log's lock (PostgreSQL) and its newest event, the user row
/// (its email with it, guarded by the schema's revision), the username (checked for a clash and
/// inserted in one statement), the organization stream's position, and the event.
const CREATE_STATEMENTS: usize = 8;

async fn a_page_and_a_user_take_a_fixed_few_statements(app: TestApp) {
    fixtures::base(&app.db).await;
    let users: Vec<NewUser> = (1..=12)
        .map(|n| {
            let user = NewUser::new(n).org(if n % 3 == 0 { ORG_A } else { ORG_B });
            if n % 2 == 0 {
                user.every_authenticator()
            } else {
                user
            }
        })
        .collect();
    let one = users[1].id();
    fixtures::insert(&app.db, users).await;

    // A connection of its own, so that only this test's statements are counted (a statement
    // counts however it is sent; BEGIN and COMMIT are not statements of the read).
    let statements = Arc::new(AtomicUsize::new(0));
    let mut db = app.db.clone();
    let counter = statements.clone();
    db.set_metric_callback(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let regex_searches = RegexSearches::new(1);
    let search = UserSearch {
        query: None,
        sort: SortField::CreationDate,
        ascending: false,
        offset: 0,
        limit: 10,
        after: None,
    };
    for scope in [Scope::Instance, Scope::Organization(ORG_B.into())] {
        let scoped = ScopedDb::new(db.clone(), scope.clone(), "test".into());

        statements.store(0, Ordering::SeqCst);
        // PostgreSQL's read snapshot sends its statements past sea-orm (see `store::snapshot`).
        let (sent_past_sea_orm, page) =
            counting_statements(users::list_users(&scoped, &regex_searches, &search)).await;
        let page = page.unwrap();
        let counted = statements.load(Ordering::SeqCst) + sent_past_sea_orm;
        assert!(page.users.len() > 1, "{scope:?}: a page of several users");
        assert!(
            page.users
                .iter()
                .any(|user| !user.authenticators.usernames.is_empty()),
            "{scope:?}: the page has authenticators to load"
        );
        assert!(
            (1..=PAGE_STATEMENTS).contains(&counted),
            "{scope:?}: a ListUsers page ran {counted} statements, at most {PAGE_STATEMENTS} \
             allowed"
        );

        statements.store(0, Ordering::SeqCst);
        let user = users::get_user(&scoped, &one).await.unwrap();
        let counted = statements.load(Ordering::SeqCst);
        assert!(user.is_some(), "{scope:?}: the user is found");
        assert!(
            (1..=USER_STATEMENTS).contains(&counted),
            "{scope:?}: a GetUser ran {counted} statements, at most {USER_STATEMENTS} allowed"
        );
    }
}

/// A page of an email equality is one statement on SQLite, without a snapshot
/// (`reads::users::page_in_one_statement`): its total and newest event are columns of it, and
/// they agree with the snapshot's (PostgreSQL's, and SQLite's for an empty page).
async fn a_sqlite_page_planned_without_its_total_is_one_statement(app: TestApp) {
    fixtures::base(&app.db).await;
    fixtures::insert(
        &app.db,
        vec![
            NewUser::new(1).email("ada@example.com"),
            NewUser::new(2)
                .email("ADA@example.com")
                .every_authenticator(),
            NewUser::new(3).email("bob@example.com"),
        ],
    )
    .await;
    let sqlite = app.db.get_database_backend() == DbBackend::Sqlite;
    let statements = Arc::new(AtomicUsize::new(0));
    let mut db = app.db.clone();
    let counter = statements.clone();
    db.set_metric_callback(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let scoped = ScopedDb::new(db, Scope::Instance, "test".into());
    let regex_searches = RegexSearches::new(1);
    let email = |value: &str| {
        Some(Query::Filter(Filter::Email(TextMatch::new(
            TextOp::Equals,
            true,
            value,
        ))))
    };
    let search = |query: Option<Query>, limit: u64| UserSearch {
        query,
        sort: SortField::CreationDate,
        ascending: false,
        offset: 0,
        limit,
        after: None,
    };
    let run = |search: UserSearch| {
        let (scoped, regex_searches, statements) = (&scoped, &regex_searches, &statements);
        async move {
            statements.store(0, Ordering::SeqCst);
            let (past_sea_orm, page) =
                counting_statements(users::list_users(scoped, regex_searches, &search)).await;
            (
                statements.load(Ordering::SeqCst) + past_sea_orm,
                page.unwrap(),
            )
        }
    };
    let (_, everyone) = run(search(None, 10)).await;
    assert!(everyone.processed.is_some(), "the directory has events");

    // Two matches, a page of ten.
    let (counted, page) = run(search(email("Ada@Example.com"), 10)).await;
    assert_eq!(
        counted,
        if sqlite { 1 } else { 2 },
        "the page with its total"
    );
    assert_eq!(page.total, 2);
    assert_eq!(page.users.len(), 2);
    assert!(page.next.is_none());
    assert_eq!(
        page.processed, everyone.processed,
        "the newest event of the same state"
    );
    assert!(
        page.users
            .iter()
            .any(|user| !user.authenticators.usernames.is_empty())
    );

    // Pages of one: the total counts every match, the first page has a next one.
    let (counted, full) = run(search(email("ada@example.com"), 1)).await;
    assert_eq!(full.total, 2, "counted, not the page's one user");
    assert_eq!(full.users.len(), 1);
    assert!(full.next.is_some(), "a next page");
    assert_eq!(full.processed, everyone.processed);
    assert_eq!(counted, if sqlite { 1 } else { 2 });
    let (_, second) = run(UserSearch {
        offset: 1,
        ..search(email("ada@example.com"), 1)
    })
    .await;
    assert_eq!(second.total, 2);
    assert_eq!(second.users.len(), 1);
    assert_ne!(second.users[0].id, full.users[0].id);
    assert!(second.next.is_none(), "the last page");

    // No match: the snapshot gives the total 0 with the newest event of its state.
    let (counted, none) = run(search(email("nobody@example.com"), 10)).await;
    assert_eq!(
        counted,
        if sqlite { 3 } else { 2 },
        "tried, then the snapshot"
    );
    assert_eq!(none.total, 0);
    assert!(none.users.is_empty());
    assert_eq!(none.processed, everyone.processed);
}

async fn a_create_takes_a_fixed_few_statements(app: TestApp) {
    fixtures::base(&app.db).await;
    let statements = Arc::new(AtomicUsize::new(0));
    let mut db = app.db.clone();
    let counter = statements.clone();
    db.set_metric_callback(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let hashing = Hashing::new(Default::default()).unwrap();
    for (n, scope) in [Scope::Instance, Scope::Organization(ORG_B.into())]
        .into_iter()
        .enumerate()
    {
        let scoped = ScopedDb::new(db.clone(), scope.clone(), "test".into());
        let name = format!("counted{n}");
        let new = command::users::NewUser {
            organization_id: ORG_B.into(),
            schema_id: fixtures::EMPLOYEE.into(),
            data: json!({"givenName": name}),
            email: Some(ContactValue {
                value: format!("{name}@example.com"),
                verification: Verification::Verified,
            }),
            phone: None,
            usernames: vec![NewUsername {
                username: name.clone(),
                organization_specific: true,
            }],
            password: None,
        };
        statements.store(0, Ordering::SeqCst);
        let created = command::users::create(&scoped, &hashing, new)
            .await
            .unwrap();
        let counted = statements.load(Ordering::SeqCst);
        assert!(
            (1..=CREATE_STATEMENTS).contains(&counted),
            "{scope:?}: a CreateUser ran {counted} statements, at most {CREATE_STATEMENTS} \
             allowed"
        );
        let user = users::get_user(&scoped, &created.user_id)
            .await
            .unwrap()
            .expect("the created user");
        let email = user.contact.email.expect("the email is set");
        assert_eq!(email.value, format!("{name}@example.com"));
        assert!(email.is_verified, "{scope:?}: the email is verified");
        assert_eq!(user.authenticators.usernames.len(), 1);
    }
}
