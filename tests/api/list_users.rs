//! ListUsers through the real gRPC interface, on SQLite and PostgreSQL.

use crate::common;

use common::TestApp;
use common::fixtures::{self, CUSTOMER, EMPLOYEE, NewUser, ORG_A, ORG_B, user_id};
use common::queries::{self as q, M};
use tonic::Code;
use userdir::domain::UserState;
use userdir::proto::user::v1::{self as pb, FieldName};
use userdir::query::PageLimits;

backend_tests!(
    pages_are_disjoint_and_ordered_by_creation_date_descending,
    ascending_order_and_each_sorting_column_break_ties_by_id,
    limits_are_enforced_not_cut_and_configurable,
    offset_past_the_end_keeps_the_total,
    text_methods_match_exactly_as_named,
    search_values_match_literally,
    not_is_the_complement_including_users_without_the_field,
    or_and_not_nest,
    username_query_matches_any_username_of_the_requested_kind,
    organization_query_and_resource_owner,
    state_schema_id_and_schema_type_queries,
    email_and_phone_sort_by_folded_code_points_missing_last,
    invalid_requests_name_the_field,
    details_report_sequences_and_the_latest_event,
);

/// Numbers of the fixture users a response holds, in order.
fn numbers(response: &pb::ListUsersResponse) -> Vec<u64> {
    response
        .result
        .iter()
        .map(|user| {
            (0..1000)
                .find(|n| user_id(*n) == user.user_id)
                .unwrap_or_else(|| panic!("unknown user {}", user.user_id))
        })
        .collect()
}

async fn list(app: &TestApp, request: pb::ListUsersRequest) -> pb::ListUsersResponse {
    app.users
        .clone()
        .list_users(request)
        .await
        .expect("ListUsers")
        .into_inner()
}

/// Numbers matching the queries, ascending by number (creation order).
async fn matching(app: &TestApp, queries: Vec<pb::SearchQuery>) -> Vec<u64> {
    let response = list(
        app,
        q::request(queries, 0, 1000, true, FieldName::CreationDate),
    )
    .await;
    let found = numbers(&response);
    assert_eq!(
        response.details.unwrap().total_result,
        found.len() as u64,
        "the total counts each matching user once"
    );
    found
}

async fn status(app: &TestApp, request: pb::ListUsersRequest) -> tonic::Status {
    app.users
        .clone()
        .list_users(request)
        .await
        .expect_err("must be refused")
}

async fn pages_are_disjoint_and_ordered_by_creation_date_descending(app: TestApp) {
    fixtures::base(&app.db).await;
    // Users 2, 3 and 4 were created in the same microsecond: the id decides.
    let same_time = NewUser::new(2).build().user.created_at;
    fixtures::insert(
        &app.db,
        (0..7)
            .map(|n| {
                let user = NewUser::new(n);
                if (2..=4).contains(&n) {
                    user.created(same_time)
                } else {
                    user
                }
            })
            .collect(),
    )
    .await;
    let mut seen = Vec::new();
    for offset in [0, 3, 6] {
        let page = list(
            &app,
            q::request(vec![], offset, 3, false, FieldName::Unspecified),
        )
        .await;
        assert_eq!(page.details.as_ref().unwrap().total_result, 7);
        assert_eq!(page.sorting_column, FieldName::CreationDate as i32);
        seen.extend(numbers(&page));
    }
    assert_eq!(seen, vec![6, 5, 4, 3, 2, 1, 0]);

    // No query, no paging: the default order is descending creation date.
    let all = list(&app, pb::ListUsersRequest::default()).await;
    assert_eq!(numbers(&all), vec![6, 5, 4, 3, 2, 1, 0]);
}

async fn ascending_order_and_each_sorting_column_break_ties_by_id(app: TestApp) {
    fixtures::base(&app.db).await;
    let t = |n: i64| 1_800_000_000_000_000 + n;
    fixtures::insert(
        &app.db,
        vec![
            NewUser::new(0)
                .state(UserState::Locked)
                .changed(t(5))
                .customer(),
            NewUser::new(1).state(UserState::Active).changed(t(9)),
            NewUser::new(2).state(UserState::Locked).changed(t(5)),
            NewUser::new(3)
                .state(UserState::Inactive)
                .changed(t(1))
                .customer(),
            NewUser::new(4).state(UserState::Active).changed(t(9)),
        ],
    )
    .await;
    let cases = [
        (FieldName::Id, true, vec![0, 1, 2, 3, 4]),
        (FieldName::Id, false, vec![4, 3, 2, 1, 0]),
        (FieldName::CreationDate, true, vec![0, 1, 2, 3, 4]),
        (FieldName::State, true, vec![1, 4, 3, 0, 2]),
        (FieldName::State, false, vec![2, 0, 3, 4, 1]),
        (FieldName::ChangeDate, true, vec![3, 0, 2, 1, 4]),
        (FieldName::ChangeDate, false, vec![4, 1, 2, 0, 3]),
        // "customer" < "employee" (the stored type is "Employee": sorted ignoring case).
        (FieldName::SchemaType, true, vec![0, 3, 1, 2, 4]),
        (FieldName::SchemaId, true, vec![0, 3, 1, 2, 4]),
    ];
    assert!(CUSTOMER < EMPLOYEE);
    for (column, asc, expected) in cases {
        let page = list(&app, q::request(vec![], 0, 10, asc, column)).await;
        assert_eq!(numbers(&page), expected, "{column:?} asc={asc}");
        assert_eq!(page.sorting_column, column as i32);
        // Every window of the same order is a slice of it.
        for offset in 0..5u64 {
            let window = list(&app, q::request(vec![], offset, 2, asc, column)).await;
            let end = (offset as usize + 2).min(5);
            assert_eq!(
                numbers(&window),
                expected[offset as usize..end],
                "{column:?} offset {offset}"
            );
        }
    }
}

async fn limits_are_enforced_not_cut_and_configurable(app: TestApp) {
    fixtures::base(&app.db).await;
    fixtures::insert(&app.db, (0..5).map(NewUser::new).collect()).await;

    let refused = status(&app, q::request(vec![], 0, 1001, false, FieldName::Id)).await;
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(
        refused.message(),
        "query.limit: must be at most 1000, got 1001"
    );
    assert_eq!(
        list(&app, q::request(vec![], 0, 1000, false, FieldName::Id))
            .await
            .result
            .len(),
        5
    );

    let small = app.with_limits(PageLimits { default: 2, max: 3 }).await;
    let page = list(&small, pb::ListUsersRequest::default()).await;
    assert_eq!(page.result.len(), 2, "the configured default applies");
    assert_eq!(page.details.unwrap().total_result, 5);
    assert_eq!(
        list(&small, q::request(vec![], 0, 3, false, FieldName::Id))
            .await
            .result
            .len(),
        3
    );
    let refused = status(&small, q::request(vec![], 0, 4, false, FieldName::Id)).await;
    assert_eq!(refused.message(), "query.limit: must be at most 3, got 4");
}

async fn offset_past_the_end_keeps_the_total(app: TestApp) {
    fixtures::base(&app.db).await;
    fixtures::insert(&app.db, (0..3).map(NewUser::new).collect()).await;
    let page = list(&app, q::request(vec![], 10, 5, false, FieldName::Id)).await;
    assert!(page.result.is_empty());
    assert_eq!(page.details.unwrap().total_result, 3);
}

async fn text_methods_match_exactly_as_named(app: TestApp) {
    fixtures::base(&app.db).await;
    fixtures::insert(
        &app.db,
        vec![
            NewUser::new(1).email("Alice@Example.com"),
            NewUser::new(2).email("alice@example.org"),
            NewUser::new(3).email("ÉMILE@Example.com"),
            NewUser::new(4).email("émile@zoë.example"),
            NewUser::new(5),
        ],
    )
    .await;
    let cases: &[(&str, M, &[u64])] = &[
        ("alice@example.org", M::Equals, &[2]),
        ("ALICE@example.org", M::Equals, &[]),
        ("ALICE@EXAMPLE.ORG", M::EqualsIgnoreCase, &[2]),
        ("émile@example.com", M::EqualsIgnoreCase, &[3]),
        ("Alice", M::StartsWith, &[1]),
        ("alice", M::StartsWith, &[2]),
        ("ALICE", M::StartsWithIgnoreCase, &[1, 2]),
        ("Émile", M::StartsWithIgnoreCase, &[3, 4]),
        ("ÉMILE", M::StartsWith, &[3]),
        ("Example", M::Contains, &[1, 3]),
        ("EXAMPLE", M::ContainsIgnoreCase, &[1, 2, 3, 4]),
        ("ZOË", M::ContainsIgnoreCase, &[4]),
        (".COM", M::EndsWith, &[]),
        (".com", M::EndsWith, &[1, 3]),
        ("E.COM", M::EndsWithIgnoreCase, &[1, 3]),
        ("", M::Contains, &[1, 2, 3, 4]),
    ];
    for (value, method, expected) in cases {
        assert_eq!(
            matching(&app, vec![q::email(value, *method)]).await,
            *expected,
            "{method:?} {value:?} on {:?}",
            app.backend
        );
    }
}

async fn search_values_match_literally(app: TestApp) {
    fixtures::base(&app.db).await;
    fixtures::insert(
        &app.db,
        vec![
            NewUser::new(1).email("bob_1@x.io"),
            NewUser::new(2).email("bob%1@x.io"),
            NewUser::new(3).email(r"b\ob@x.io"),
            NewUser::new(4).email("bobx1@x.io"),
            NewUser::new(5).email("it's'; DROP TABLE users;--@x.io"),
        ],
    )
    .await;
    let cases: &[(&str, M, &[u64])] = &[
        ("_", M::Contains, &[1]),
        ("%", M::Contains, &[2]),
        ("bob_", M::StartsWith, &[1]),
        ("BOB_1@X.IO", M::EqualsIgnoreCase, &[1]),
        ("BOB%", M::StartsWithIgnoreCase, &[2]),
        (r"\", M::Contains, &[3]),
        (r"B\O", M::StartsWithIgnoreCase, &[3]),
        (r"\ob@x.io", M::EndsWith, &[3]),
        ("'; DROP TABLE users;--", M::Contains, &[5]),
        ("%", M::EndsWith, &[]),
    ];
    for (value, method, expected) in cases {
        assert_eq!(
            matching(&app, vec![q::email(value, *method)]).await,
            *expected,
            "{method:?} {value:?}"
        );
    }
    assert_eq!(
        matching(&app, vec![]).await.len(),
        5,
        "the users table is intact"
    );
}

async fn not_is_the_complement_including_users_without_the_field(app: TestApp) {
    fixtures::base(&app.db).await;
    fixtures::insert(
        &app.db,
        vec![
            NewUser::new(1).email("a@x.io").phone("+41790000001"),
            NewUser::new(2).email("b@x.io"),
            NewUser::new(3).phone("+41790000003"),
            NewUser::new(4),
        ],
    )
    .await;
    assert_eq!(
        matching(&app, vec![q::not(q::email("a@x.io", M::Equals))]).await,
        vec![2, 3, 4]
    );
    assert_eq!(
        matching(&app, vec![q::not(q::email("", M::Contains))]).await,
        vec![3, 4]
    );
    assert_eq!(
        matching(&app, vec![q::not(q::phone("+4179", M::StartsWith))]).await,
        vec![2, 4]
    );
    assert_eq!(
        matching(&app, vec![q::not(q::not(q::phone("+4179", M::StartsWith)))]).await,
        vec![1, 3]
    );
    // A query and its complement partition the directory.
    for query in [
        q::email("b", M::StartsWith),
        q::phone("3", M::EndsWith),
        q::username("user1", M::Equals, None),
    ] {
        let mut both = matching(&app, vec![query.clone()]).await;
        both.extend(matching(&app, vec![q::not(query)]).await);
        both.sort();
        assert_eq!(both, vec![1, 2, 3, 4]);
    }
}

async fn or_and_not_nest(app: TestApp) {
    fixtures::base(&app.db).await;
    fixtures::insert(
        &app.db,
        vec![
            NewUser::new(1).state(UserState::Locked),
            NewUser::new(2).org(ORG_B),
            NewUser::new(3).org(ORG_B).state(UserState::Locked),
            NewUser::new(4),
            NewUser::new(5).org(ORG_B).username("xavier", false),
        ],
    )
    .await;
    // (locked OR org B) AND NOT (a username starting with "x")
    let query = q::and(vec![
        q::or(vec![
            q::state(pb::State::UserStateLocked),
            q::org(ORG_B, M::Equals),
        ]),
        q::not(q::username("x", M::StartsWith, None)),
    ]);
    assert_eq!(matching(&app, vec![query.clone()]).await, vec![1, 2, 3]);
    // Top-level queries are AND-ed.
    assert_eq!(
        matching(
            &app,
            vec![
                q::org(ORG_B, M::Equals),
                q::state(pb::State::UserStateLocked)
            ]
        )
        .await,
        vec![3]
    );
    assert_eq!(matching(&app, vec![q::not(query)]).await, vec![4, 5]);
    assert_eq!(
        matching(
            &app,
            vec![q::or(vec![
                q::and(vec![q::org(ORG_A, M::Equals)]),
                q::user_id(&user_id(5), M::Equals)
            ])]
        )
        .await,
        vec![1, 4, 5]
    );
}

async fn username_query_matches_any_username_of_the_requested_kind(app: TestApp) {
    fixtures::base(&app.db).await;
    fixtures::insert(
        &app.db,
        vec![
            NewUser::new(1)
                .without_usernames()
                .username("gigi@zitadel.com", false)
                .username("gigi", true),
            NewUser::new(2)
                .without_usernames()
                .username("Gigi.Giraffe", true),
            NewUser::new(3)
                .org(ORG_B)
                .without_usernames()
                .username("gigi", true),
            NewUser::new(4).without_usernames(),
        ],
    )
    .await;
    let cases: &[(&str, M, Option<bool>, &[u64])] = &[
        ("gigi", M::Equals, None, &[1, 3]),
        ("gigi", M::Equals, Some(true), &[1, 3]),
        ("gigi", M::Equals, Some(false), &[]),
        ("gigi@zitadel.com", M::Equals, Some(false), &[1]),
        ("GIGI", M::StartsWithIgnoreCase, None, &[1, 2, 3]),
        ("GIGI", M::StartsWith, None, &[]),
        ("Gigi", M::StartsWith, None, &[2]),
        ("giraffe", M::EndsWithIgnoreCase, Some(true), &[2]),
        ("i", M::Contains, None, &[1, 2, 3]),
    ];
    for (name, method, kind, expected) in cases {
        assert_eq!(
            matching(&app, vec![q::username(name, *method, *kind)]).await,
            *expected,
            "{method:?} {name:?} {kind:?}"
        );
    }
    assert_eq!(
        matching(
            &app,
            vec![q::not(q::username("g", M::StartsWithIgnoreCase, None))]
        )
        .await,
        vec![4]
    );
}

async fn organization_query_and_resource_owner(app: TestApp) {
    fixtures::base(&app.db).await;
    fixtures::insert(
        &app.db,
        vec![
            NewUser::new(1),
            NewUser::new(2).org(ORG_B),
            NewUser::new(3).org(ORG_B),
        ],
    )
    .await;
    let response = list(
        &app,
        q::request(vec![q::org(ORG_B, M::Equals)], 0, 10, true, FieldName::Id),
    )
    .await;
    assert_eq!(numbers(&response), vec![2, 3]);
    for user in &response.result {
        assert_eq!(user.details.as_ref().unwrap().resource_owner, ORG_B);
    }
    assert_eq!(
        matching(
            &app,
            vec![q::org(&ORG_B.to_uppercase(), M::EqualsIgnoreCase)]
        )
        .await,
        vec![2, 3]
    );
    assert_eq!(
        matching(&app, vec![q::org(&ORG_B.to_uppercase(), M::Equals)]).await,
        Vec::<u64>::new()
    );
    assert_eq!(
        matching(&app, vec![q::org("00000000000b", M::EndsWith)]).await,
        vec![2, 3]
    );
}

async fn state_schema_id_and_schema_type_queries(app: TestApp) {
    fixtures::base(&app.db).await;
    fixtures::insert(
        &app.db,
        vec![
            NewUser::new(1),
            NewUser::new(2).state(UserState::Inactive).customer(),
            NewUser::new(3).state(UserState::Deleted),
            NewUser::new(4).state(UserState::Locked).customer(),
        ],
    )
    .await;
    assert_eq!(
        matching(&app, vec![q::state(pb::State::UserStateActive)]).await,
        vec![1]
    );
    assert_eq!(
        matching(&app, vec![q::state(pb::State::UserStateInactive)]).await,
        vec![2]
    );
    assert_eq!(
        matching(&app, vec![q::state(pb::State::UserStateDeleted)]).await,
        vec![3]
    );
    assert_eq!(
        matching(&app, vec![q::state(pb::State::UserStateLocked)]).await,
        vec![4]
    );
    assert_eq!(
        matching(&app, vec![q::schema_id(CUSTOMER)]).await,
        vec![2, 4]
    );
    assert_eq!(
        matching(&app, vec![q::schema_type("employee", M::Equals)]).await,
        Vec::<u64>::new()
    );
    assert_eq!(
        matching(&app, vec![q::schema_type("employee", M::EqualsIgnoreCase)]).await,
        vec![1, 3]
    );
    assert_eq!(
        matching(&app, vec![q::schema_type("Emp", M::StartsWith)]).await,
        vec![1, 3]
    );
    assert_eq!(
        matching(&app, vec![q::schema_type("OMER", M::EndsWithIgnoreCase)]).await,
        vec![2, 4]
    );
}

async fn email_and_phone_sort_by_folded_code_points_missing_last(app: TestApp) {
    fixtures::base(&app.db).await;
    fixtures::insert(
        &app.db,
        vec![
            NewUser::new(1).email("zed@x.io").phone("+2"),
            NewUser::new(2).phone("+1"),
            NewUser::new(3).email("Bob@x.io"),
            NewUser::new(4).email("Ésa@x.io").phone("+3"),
            NewUser::new(5).email("alice@x.io"),
            NewUser::new(6).email("bob@x.io").phone("+1"),
            NewUser::new(7),
        ],
    )
    .await;
    // Folded: alice, bob (3), bob (6), zed, ésa (U+00E9 sorts after z); then no email, by id.
    let email_asc = list(&app, q::request(vec![], 0, 10, true, FieldName::Email)).await;
    assert_eq!(numbers(&email_asc), vec![5, 3, 6, 1, 4, 2, 7]);
    let email_desc = list(&app, q::request(vec![], 0, 10, false, FieldName::Email)).await;
    assert_eq!(numbers(&email_desc), vec![4, 1, 6, 3, 5, 7, 2]);
    let phone_asc = list(&app, q::request(vec![], 0, 10, true, FieldName::Phone)).await;
    assert_eq!(numbers(&phone_asc), vec![2, 6, 1, 4, 3, 5, 7]);
    let phone_desc = list(&app, q::request(vec![], 0, 10, false, FieldName::Phone)).await;
    assert_eq!(numbers(&phone_desc), vec![4, 1, 6, 2, 7, 5, 3]);
    // Paging through the nulls is stable too.
    let tail = list(&app, q::request(vec![], 5, 10, false, FieldName::Email)).await;
    assert_eq!(numbers(&tail), vec![7, 2]);
}

async fn invalid_requests_name_the_field(app: TestApp) {
    let deep = (0..10).fold(q::email("x", M::Equals), |inner, _| q::not(inner));
    let many = q::or((0..101).map(|_| q::email("x", M::Equals)).collect());
    let cases: Vec<(Vec<pb::SearchQuery>, &str)> = vec![
        (
            vec![pb::SearchQuery { query: None }],
            "queries[0]: must set one query",
        ),
        (
            vec![q::email("x", M::Equals), q::and(vec![])],
            "queries[1].andQuery.queries: must hold at least one query",
        ),
        (
            vec![q::or(vec![q::not(pb::SearchQuery { query: None })])],
            "queries[0].orQuery.queries[0].notQuery.query: must set one query",
        ),
        (
            vec![deep],
            "queries[0].notQuery.query.notQuery.query.notQuery.query.notQuery.query.notQuery.query.notQuery.query.notQuery.query.notQuery.query.notQuery.query.notQuery.query: queries may be nested at most 10 levels deep",
        ),
        (
            vec![many],
            "queries[0].orQuery.queries[100]: a search may hold at most 100 leaf queries",
        ),
        (
            vec![q::state(pb::State::UserStateUnspecified)],
            "queries[0].stateQuery.state: must be one of",
        ),
        (
            vec![q::user_id("", M::Equals)],
            "queries[0].userIdQuery.id: must not be empty",
        ),
        (
            vec![q::username(&"u".repeat(201), M::Equals, None)],
            "queries[0].usernameQuery.username: must be at most 200 characters, got 201",
        ),
        (
            vec![q::phone("+41 79 000 00 00 0000", M::Equals)],
            "queries[0].phoneQuery.number: must be at most 20 characters, got 21",
        ),
        (
            vec![q::schema_id("")],
            "queries[0].schemaIDQuery.id: must not be empty",
        ),
        (
            vec![q::schema_type("a\0b", M::Equals)],
            "queries[0].schemaTypeQuery.type: must not contain NUL characters",
        ),
    ];
    for (queries, expected) in cases {
        let refused = status(&app, q::matching(queries)).await;
        assert_eq!(refused.code(), Code::InvalidArgument, "{expected}");
        assert!(
            refused.message().starts_with(expected),
            "{:?} does not start with {expected:?}",
            refused.message()
        );
    }
    let mut unknown_method = q::email("x", M::Equals);
    if let Some(pb::search_query::Query::EmailQuery(email)) = &mut unknown_method.query {
        email.method = 42;
    }
    let refused = status(&app, q::matching(vec![unknown_method])).await;
    assert_eq!(
        refused.message(),
        "queries[0].emailQuery.method: unknown text query method 42"
    );
    let refused = status(
        &app,
        pb::ListUsersRequest {
            sorting_column: 99,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(refused.message(), "sortingColumn: unknown field name 99");
}

async fn details_report_sequences_and_the_latest_event(app: TestApp) {
    let empty = list(&app, pb::ListUsersRequest::default()).await;
    let details = empty.details.unwrap();
    // A fresh directory's only event: minting the bootstrap token.
    assert_eq!((details.total_result, details.processed_sequence), (0, 1));
    assert!(details.timestamp.is_some());

    fixtures::base(&app.db).await; // events 2-5
    fixtures::insert(&app.db, vec![NewUser::new(1), NewUser::new(2)]).await; // events 6, 7
    let response = list(&app, q::request(vec![], 0, 10, true, FieldName::Id)).await;
    let details = response.details.unwrap();
    assert_eq!(details.processed_sequence, 7);
    let last_created = NewUser::new(2).build().user.created_at;
    let timestamp = details.timestamp.unwrap();
    assert_eq!(
        timestamp.seconds * 1_000_000 + i64::from(timestamp.nanos) / 1000,
        last_created
    );
    let sequences: Vec<u64> = response
        .result
        .iter()
        .map(|u| u.details.as_ref().unwrap().sequence)
        .collect();
    assert_eq!(sequences, vec![6, 7]);

    // A page that matches nothing still reports how far the directory is.
    let none = list(&app, q::matching(vec![q::email("nobody", M::Equals)])).await;
    assert_eq!(none.details.unwrap().processed_sequence, 7);
}
