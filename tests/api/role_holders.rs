//! A role's users (ListRoleUsers) are read from the role's assignments in page order (the
//! store's `RoleWalk`, migration 11): every order, filter, offset and token walk gives exactly
//! the users list narrowed to the role's holders, which the store answers by another plan; the
//! plan is an index range without a sort; and the migration's backfill gives every assignment
//! its user's creation date.

use std::collections::BTreeSet;

use crate::common;

use common::fixtures::{self, NewUser, ORG_B};
use common::queries::{self as q, M};
use common::{Backend, TestApp};
use sea_orm::{ConnectionTrait, QuerySelect, QueryTrait, Statement, TransactionTrait};
use userdir::domain::UserState;
use userdir::proto::user::v1::{self as pb, FieldName};
use userdir::query::{Cursor, Filter, Query, SortField, SortValue, TextMatch};
use userdir::store::reads::compile;

backend_tests!(
    role_users_are_the_users_list_narrowed_to_the_holders,
    the_backfill_gives_every_assignment_its_users_creation_date,
);

/// 70 users: creation times with ties (users 10..=19 share one) and against the order of the
/// ids (30..=39), two organizations, some
/// locked, emails on most. Returns their ids and the holders of the role `Support` (every user
/// but each third), which a second role must not leak into.
async fn population(app: &TestApp) -> (String, BTreeSet<String>) {
    fixtures::base(&app.db).await;
    let same_time = NewUser::new(10).build().user.created_at;
    let users: Vec<NewUser> = (0..70u64)
        .map(|n| {
            let mut user = NewUser::new(n);
            if (10..=19).contains(&n) {
                user = user.created(same_time);
            }
            // Creation order against id order: users 30..=39 come out last, in reverse.
            if (30..=39).contains(&n) {
                user = user.created(NewUser::new(200 - n).build().user.created_at);
            }
            if n % 4 != 0 {
                user = user.email(&format!("person{n}@example.com"));
            }
            if n % 5 == 2 {
                user = user.org(ORG_B);
            }
            if n % 6 == 3 {
                user = user.state(UserState::Locked);
            }
            user
        })
        .collect();
    let ids: Vec<String> = users.iter().map(NewUser::id).collect();
    fixtures::insert(&app.db, users).await;
    let support = common::api::role(app, "Support").await;
    let other = common::api::role(app, "Other").await;
    let holders: Vec<String> = ids
        .iter()
        .enumerate()
        .filter(|(n, _)| n % 3 != 1)
        .map(|(_, id)| id.clone())
        .collect();
    let mut roles = app.roles.clone();
    // In two calls, so that assignments differ in their own creation time too.
    for part in holders.chunks(30) {
        roles
            .assign_role(pb::AssignRoleRequest {
                role_id: support.clone(),
                user_ids: part.to_vec(),
            })
            .await
            .expect("AssignRole");
    }
    let others: Vec<String> = ids.iter().skip(1).step_by(3).cloned().collect();
    roles
        .assign_role(pb::AssignRoleRequest {
            role_id: other,
            user_ids: others,
        })
        .await
        .expect("AssignRole");
    (support, holders.into_iter().collect())
}

fn role_request(
    role: &str,
    rest: &[pb::SearchQuery],
    sorting: FieldName,
    asc: bool,
    offset: u64,
    limit: u32,
    token: &str,
) -> pb::ListRoleUsersRequest {
    pb::ListRoleUsersRequest {
        role_id: role.to_owned(),
        query: Some(pb::ListQuery {
            offset,
            limit,
            asc,
            page_token: token.to_owned(),
        }),
        sorting_column: sorting.into(),
        queries: rest.to_vec(),
    }
}

fn ids(response: &pb::ListUsersResponse) -> Vec<String> {
    response.result.iter().map(|u| u.user_id.clone()).collect()
}

fn total(response: &pb::ListUsersResponse) -> u64 {
    response.details.as_ref().expect("details").total_result
}

async fn role_users_are_the_users_list_narrowed_to_the_holders(app: TestApp) {
    let (role, holders) = population(&app).await;
    let rests: Vec<(&str, Vec<pb::SearchQuery>)> = vec![
        ("no other filter", vec![]),
        ("locked", vec![q::state(pb::State::UserStateLocked)]),
        ("one organization", vec![q::org(ORG_B, M::Equals)]),
        (
            "organization and state",
            vec![q::and(vec![
                q::org(ORG_B, M::Equals),
                q::state(pb::State::UserStateActive),
            ])],
        ),
        // Selective: read by the other plan, which must agree as well.
        (
            "an email search",
            vec![q::email("SON1", M::ContainsIgnoreCase)],
        ),
    ];
    let sorts = [
        FieldName::Unspecified,
        FieldName::CreationDate,
        FieldName::Id,
        FieldName::Email,
    ];
    let mut roles = app.roles.clone();
    let mut users = app.users.clone();
    for (what, rest) in &rests {
        for sorting in sorts {
            for asc in [false, true] {
                let context = format!("{what}, {sorting:?}, asc {asc}");
                let all = users
                    .list_users(q::request(rest.clone(), 0, 1000, asc, sorting))
                    .await
                    .expect("ListUsers")
                    .into_inner();
                let expected: Vec<String> = ids(&all)
                    .into_iter()
                    .filter(|id| holders.contains(id))
                    .collect();
                assert!(!expected.is_empty(), "{context}: no holder matches");

                let mut by_offset = Vec::new();
                for offset in (0..).step_by(7) {
                    let page = roles
                        .list_role_users(role_request(&role, rest, sorting, asc, offset, 7, ""))
                        .await
                        .expect("ListRoleUsers")
                        .into_inner();
                    assert_eq!(total(&page), expected.len() as u64, "{context}");
                    if page.result.is_empty() {
                        break;
                    }
                    by_offset.extend(ids(&page));
                }
                assert_eq!(by_offset, expected, "{context}: pages by offset");

                let mut by_token = Vec::new();
                let mut token = String::new();
                loop {
                    let page = roles
                        .list_role_users(role_request(&role, rest, sorting, asc, 0, 5, &token))
                        .await
                        .expect("ListRoleUsers by token")
                        .into_inner();
                    by_token.extend(ids(&page));
                    token = page.details.expect("details").next_page_token;
                    if token.is_empty() {
                        break;
                    }
                    assert!(
                        by_token.len() <= expected.len(),
                        "{context}: the walk runs on"
                    );
                }
                assert_eq!(by_token, expected, "{context}: pages by token");
            }
        }
    }
    role_pages_are_index_ranges(&app, &role).await;
}

/// The first page and a page after a token, as the store compiles them for a role's users in
/// creation and in id order: a range of the role's assignments in that order (the index of
/// migration 11; the primary key by id), never a sort of every holder.
async fn role_pages_are_index_ranges(app: &TestApp, role: &str) {
    let backend = match app.backend {
        Backend::Sqlite => sea_orm::DbBackend::Sqlite,
        Backend::Postgres => sea_orm::DbBackend::Postgres,
    };
    // Many users without the role, most of them in the organization the plans filter by: a
    // role held by a few of many, as at scale, where walking `users` would be the wrong plan.
    let others = (1_000..4_000).map(|n| NewUser::new(n).org(ORG_B)).collect();
    fixtures::insert(&app.db, others).await;
    let txn = app.db.begin().await.unwrap();
    txn.execute_unprepared("ANALYZE").await.unwrap();
    if app.backend == Backend::Postgres {
        // A table this small is read whole whatever the indexes; take that way out so the plan
        // shows which index answers the shape at scale.
        for setting in [
            "SET LOCAL enable_seqscan = off",
            "SET LOCAL enable_sort = off",
            "SET LOCAL enable_bitmapscan = off",
            "SET LOCAL enable_hashjoin = off",
            "SET LOCAL enable_mergejoin = off",
        ] {
            txn.execute_unprepared(setting).await.unwrap();
        }
    }
    let only_role = Query::Filter(Filter::Role(role.to_owned()));
    let role_in_org = Query::And(vec![
        Query::Filter(Filter::OrganizationId(TextMatch::equals(ORG_B))),
        only_role.clone(),
    ]);
    let twenty = NewUser::new(20).build().user;
    for query in [only_role, role_in_org] {
        for (sort, index) in [
            (
                SortField::CreationDate,
                "idx_role_assignments_role_user_created",
            ),
            (
                SortField::Id,
                match app.backend {
                    Backend::Sqlite => "sqlite_autoindex_role_assignments_1",
                    Backend::Postgres => "role_assignments_pkey",
                },
            ),
        ] {
            for ascending in [false, true] {
                let cursor = Cursor {
                    value: match sort {
                        SortField::Id => SortValue::None,
                        _ => SortValue::Int(twenty.created_at),
                    },
                    id: twenty.id.clone(),
                };
                let first = compile::select_users(
                    Some(&query),
                    backend,
                    sort,
                    ascending,
                    compile::Matches::total(1_000),
                );
                let after = compile::select_users_after(
                    Some(&query),
                    backend,
                    compile::Matches::total(1_000),
                    sort,
                    ascending,
                    &cursor,
                );
                assert_eq!(after.len(), 1);
                for (which, select) in [("first page", first), ("after a token", after[0].clone())]
                {
                    let sql = select.limit(10).build(backend).to_string();
                    let plan = common::plan(&txn, &sql).await;
                    let sorted = ["Sort", "TEMP B-TREE", "Seq Scan", "SCAN role_assignments"];
                    let ranged = match app.backend {
                        Backend::Sqlite => {
                            plan.contains(&format!("SEARCH role_assignments USING INDEX {index}"))
                                || plan.contains(&format!(
                                    "SEARCH role_assignments USING COVERING INDEX {index}"
                                ))
                        }
                        Backend::Postgres => plan.contains(index) && plan.contains("Index Cond"),
                    };
                    assert!(
                        ranged && !sorted.iter().any(|s| plan.contains(s)),
                        "{which} of {query:?} by {sort:?} (asc {ascending}) should be a range of \
                         {index}: `{sql}`, the plan is:\n{plan}"
                    );
                }
            }
        }
    }
    txn.rollback().await.unwrap();
}

async fn the_backfill_gives_every_assignment_its_users_creation_date(app: TestApp) {
    let (role, holders) = population(&app).await;
    let first_page = |app: &TestApp| {
        let mut roles = app.roles.clone();
        let role = role.clone();
        async move {
            roles
                .list_role_users(role_request(
                    &role,
                    &[],
                    FieldName::Unspecified,
                    false,
                    0,
                    100,
                    "",
                ))
                .await
                .expect("ListRoleUsers")
                .into_inner()
        }
    };
    let before = first_page(&app).await;
    assert_eq!(total(&before), holders.len() as u64);
    common::migrate_down_through_and_up(&app.db, "m20261202_000011_role_holder_order").await;
    let mismatched = app
        .db
        .query_one_raw(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT count(*) AS n, (SELECT count(*) FROM role_assignments) AS assignments \
             FROM role_assignments a JOIN users u ON u.id = a.user_id \
             WHERE a.user_created_at <> u.created_at",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(mismatched.try_get::<i64>("", "n").unwrap(), 0);
    assert!(mismatched.try_get::<i64>("", "assignments").unwrap() > holders.len() as i64);
    assert_eq!(ids(&first_page(&app).await), ids(&before));
}
