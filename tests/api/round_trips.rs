//! How many statements a ListUsers page and a GetUser cost. Every statement is a round trip
//! the caller waits for, so the store answers from a fixed few whatever the page holds; a change
//! that adds one (say, a query per authenticator kind again) fails here, on both backends, for
//! an instance-wide and an organization's caller.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common;

use common::TestApp;
use common::fixtures::{self, NewUser, ORG_A, ORG_B};
use userdir::domain::Scope;
use userdir::limits::regex_searches::RegexSearches;
use userdir::query::{SortField, UserSearch};
use userdir::store::ScopedDb;
use userdir::store::reads::users;

backend_tests!(a_page_and_a_user_take_a_fixed_few_statements);

/// The total (with the newest event), the page, and all of its authenticators; one to spare.
const PAGE_STATEMENTS: usize = 4;
/// The user (with its sequence as the caller counts it) and its authenticators.
const USER_STATEMENTS: usize = 2;

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
        let page = users::list_users(&scoped, &regex_searches, &search)
            .await
            .unwrap();
        let counted = statements.load(Ordering::SeqCst);
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
