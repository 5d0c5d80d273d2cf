//! Paging ListUsers and ListRoleUsers by `query.pageToken`, through gRPC and HTTP/JSON, on
//! SQLite and PostgreSQL: walks by token give exactly the full list, in every order, also while
//! users come and go; tokens are bound to their search and tamper-checked.

use std::collections::{BTreeSet, HashMap};

use crate::common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::fixtures::NewUser as Fixture;
use common::fixtures::{self, NewUser, ORG_A, ORG_B};
use common::http as h;
use common::queries::{self as q, M};
use common::{Backend, FreshDatabase, TestApp};
use sea_orm::{ConnectionTrait, QuerySelect, QueryTrait, TransactionTrait};
use serde_json::{Value, json};
use tonic::Code;
use userdir::proto::user::v1::{self as pb, FieldName};
use userdir::query::{Cursor, SortField, SortValue};
use userdir::store;
use userdir::store::reads::compile;

backend_tests!(
    walks_by_token_are_the_full_list_in_every_order,
    http_json_walks_give_the_same_pages_and_tokens_work_across_servers,
    walks_never_repeat_or_skip_users_that_exist_throughout,
    tokens_only_resume_their_own_search,
    role_users_walk_by_token,
);

/// 23 users: creation times with ties, emails in mixed case with gaps (users without one),
/// phones on some, two organizations.
async fn population(app: &TestApp) -> Vec<String> {
    fixtures::base(&app.db).await;
    let same_time = NewUser::new(5).build().user.created_at;
    let users: Vec<NewUser> = (0..23u64)
        .map(|n| {
            let mut user = NewUser::new(n);
            // Users 5..=9 share one creation time: the id decides among them.
            if (5..=9).contains(&n) {
                user = user.created(same_time);
            }
            // Every third user has no email; the others repeat some addresses in other case.
            if n % 3 != 0 {
                let letter = (b'a' + (n % 7) as u8) as char;
                let address = if n % 2 == 0 {
                    format!("{letter}@Example.org")
                } else {
                    format!("{}@example.org", letter.to_ascii_uppercase())
                };
                user = user.email(&address);
            }
            if n % 4 == 1 {
                user = user.phone(&format!("+4120000{:04}", 23 - n));
            }
            if n % 5 == 2 {
                user = user.org(ORG_B);
            }
            user
        })
        .collect();
    let ids = users.iter().map(NewUser::id).collect();
    fixtures::insert(&app.db, users).await;
    ids
}

fn request(
    queries: Vec<pb::SearchQuery>,
    limit: u32,
    asc: bool,
    sorting: FieldName,
    token: &str,
) -> pb::ListUsersRequest {
    let mut request = q::request(queries, 0, limit, asc, sorting);
    request.query.as_mut().unwrap().page_token = token.to_owned();
    request
}

async fn list(app: &TestApp, request: pb::ListUsersRequest) -> pb::ListUsersResponse {
    app.users
        .clone()
        .list_users(request)
        .await
        .expect("ListUsers")
        .into_inner()
}

fn ids(response: &pb::ListUsersResponse) -> Vec<String> {
    response.result.iter().map(|u| u.user_id.clone()).collect()
}

fn details(response: &pb::ListUsersResponse) -> &pb::ListDetails {
    response.details.as_ref().expect("details")
}

/// Walks `template` by token with pages of `limit`, calling `between` after every page, and
/// returns the pages. Every page but the last is full and has a token; the last has none.
async fn walk<F, Fut>(
    app: &TestApp,
    template: &pb::ListUsersRequest,
    limit: u32,
    mut between: F,
) -> Vec<Vec<String>>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let mut request = template.clone();
        let query = request.query.get_or_insert_with(Default::default);
        query.limit = limit;
        query.page_token = token;
        let response = list(app, request).await;
        let page = ids(&response);
        token = details(&response).next_page_token.clone();
        pages.push(page.clone());
        assert!(pages.len() < 100, "the walk does not end");
        if token.is_empty() {
            break;
        }
        assert_eq!(page.len(), limit as usize, "a page with a token is full");
        between(pages.len()).await;
    }
    pages
}

async fn nothing(_: usize) {}

async fn walks_by_token_are_the_full_list_in_every_order(app: TestApp) {
    population(&app).await;
    let shapes = [
        (FieldName::Unspecified, false, vec![]),
        (FieldName::CreationDate, true, vec![]),
        (FieldName::Email, true, vec![]),
        (FieldName::Email, false, vec![]),
        (FieldName::Phone, true, vec![]),
        (FieldName::Phone, false, vec![]),
        (FieldName::Id, false, vec![]),
        (FieldName::State, true, vec![]),
        (FieldName::ChangeDate, false, vec![q::org(ORG_A, M::Equals)]),
        (
            FieldName::Email,
            false,
            vec![q::or(vec![
                q::org(ORG_B, M::Equals),
                q::email("@example.org", M::EndsWithIgnoreCase),
            ])],
        ),
    ];
    for (sorting, asc, queries) in shapes {
        let shape = format!("{sorting:?} asc={asc} queries={}", queries.len());
        let full = list(&app, request(queries.clone(), 1000, asc, sorting, "")).await;
        assert!(
            details(&full).next_page_token.is_empty(),
            "{shape}: one page holds everything, so there is no next one"
        );
        let total = details(&full).total_result;
        for limit in [1, 4, 7] {
            let template = request(queries.clone(), limit, asc, sorting, "");
            let pages = walk(&app, &template, limit, nothing).await;
            assert_eq!(
                pages.concat(),
                ids(&full),
                "{shape} limit {limit}: the pages are the full list"
            );
            assert_eq!(
                pages.len() as u64,
                total.div_ceil(limit.into()).max(1),
                "{shape} limit {limit}: exactly as many pages as needed (no empty last page)"
            );
        }
        // Every page by token reports the total of the whole query.
        let first = list(&app, request(queries.clone(), 4, asc, sorting, "")).await;
        let second = list(
            &app,
            request(queries, 4, asc, sorting, &details(&first).next_page_token),
        )
        .await;
        assert_eq!(details(&second).total_result, total, "{shape}");
    }
    // A token may continue with another page size.
    let first = list(&app, request(vec![], 3, false, FieldName::Email, "")).await;
    let rest = list(
        &app,
        request(
            vec![],
            100,
            false,
            FieldName::Email,
            &details(&first).next_page_token,
        ),
    )
    .await;
    let full = list(&app, request(vec![], 100, false, FieldName::Email, "")).await;
    assert_eq!([ids(&first), ids(&rest)].concat(), ids(&full));
    // An offset page answers a token too, which continues after it.
    let mut at_offset = request(vec![], 5, true, FieldName::Id, "");
    at_offset.query.as_mut().unwrap().offset = 10;
    let at_offset = list(&app, at_offset).await;
    let after = list(
        &app,
        request(
            vec![],
            5,
            true,
            FieldName::Id,
            &details(&at_offset).next_page_token,
        ),
    )
    .await;
    let full = ids(&list(&app, request(vec![], 100, true, FieldName::Id, "")).await);
    assert_eq!(ids(&at_offset), full[10..15]);
    assert_eq!(ids(&after), full[15..20]);
}

/// The JSON body of a ListUsers search.
fn json_search(sorting: &str, asc: bool, limit: u32, token: &str, queries: Value) -> String {
    json!({
        "query": {"limit": limit, "asc": asc, "pageToken": token},
        "sortingColumn": sorting,
        "queries": queries,
    })
    .to_string()
}

fn json_ids(reply: &h::Reply) -> Vec<String> {
    reply.json["result"]
        .as_array()
        .unwrap_or_else(|| panic!("no result in {}", reply.text))
        .iter()
        .map(|user| user["userId"].as_str().unwrap().to_owned())
        .collect()
}

fn json_token(reply: &h::Reply) -> String {
    reply.json["details"]["nextPageToken"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn http_json_walks_give_the_same_pages_and_tokens_work_across_servers(app: TestApp) {
    population(&app).await;
    let queries = json!([{"emailQuery": {"address": "EXAMPLE", "method": "TEXT_QUERY_METHOD_CONTAINS_IGNORE_CASE"}}]);
    let grpc_queries = vec![q::email("EXAMPLE", M::ContainsIgnoreCase)];
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let body = json_search("FIELD_NAME_EMAIL", true, 4, &token, queries.clone());
        let reply = h::post(&app, "/v1/users/_search", &body).await;
        assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
        // The same page through gRPC gives the same users and the same token: the token
        // binds the typed search, not the bytes it came in.
        let grpc = list(
            &app,
            request(grpc_queries.clone(), 4, true, FieldName::Email, &token),
        )
        .await;
        assert_eq!(json_ids(&reply), ids(&grpc));
        assert_eq!(json_token(&reply), details(&grpc).next_page_token);
        pages.push(json_ids(&reply));
        token = json_token(&reply);
        if token.is_empty() {
            break;
        }
    }
    let full = list(
        &app,
        request(grpc_queries, 1000, true, FieldName::Email, ""),
    )
    .await;
    assert_eq!(pages.concat(), ids(&full));
    assert!(pages.len() > 2, "the walk took several pages");

    // Every server on the database shares the key: another server takes this one's token.
    let first = list(&app, request(vec![], 5, false, FieldName::Unspecified, "")).await;
    let other = app.with_settings(Default::default()).await;
    let second = list(
        &other,
        request(
            vec![],
            5,
            false,
            FieldName::Unspecified,
            &details(&first).next_page_token,
        ),
    )
    .await;
    let full = ids(&list(&app, request(vec![], 10, false, FieldName::Unspecified, "")).await);
    assert_eq!([ids(&first), ids(&second)].concat(), full);

    // A bad token over HTTP is 400 naming the field.
    let body = json_search("FIELD_NAME_EMAIL", true, 4, "garbage", json!([]));
    let reply = h::post(&app, "/v1/users/_search", &body).await;
    h::assert_error(&reply, 400, 3, "query.pageToken");
}

async fn walks_never_repeat_or_skip_users_that_exist_throughout(app: TestApp) {
    fixtures::base(&app.db).await;
    // 30 users at even numbers; new ones get odd numbers, so they land between the old ones in
    // every order, before and behind the walk's position.
    let email = |n: u64| {
        if n.is_multiple_of(3) {
            None
        } else {
            Some(format!("u{:02}@example.org", (n * 7) % 60))
        }
    };
    let build = |n: u64| {
        let user = NewUser::new(n);
        match email(n) {
            Some(address) => user.email(&address),
            None => user,
        }
    };
    let initial: Vec<u64> = (0..30).map(|i| i * 2).collect();
    fixtures::insert(&app.db, initial.iter().map(|n| build(*n)).collect()).await;
    let id_of = |n: u64| NewUser::new(n).id();

    for (sorting, asc) in [
        (FieldName::Unspecified, false),
        (FieldName::CreationDate, true),
        (FieldName::Email, true),
        (FieldName::Email, false),
    ] {
        let before: BTreeSet<String> =
            ids(&list(&app, request(vec![], 1000, asc, sorting, "")).await)
                .into_iter()
                .collect();
        let deleted = std::sync::Mutex::new(BTreeSet::new());
        let created = std::sync::Mutex::new(Vec::new());
        let template = request(vec![], 4, asc, sorting, "");
        let pages = walk(&app, &template, 4, |page| {
            let app = &app;
            let deleted = &deleted;
            let created = &created;
            let before = &before;
            async move {
                // Delete two users still there (one early, one late in the creation order),
                // and create two: odd numbers, one low and one high.
                let (doomed, fresh) = {
                    let mut deleted = deleted.lock().unwrap();
                    let alive: Vec<&String> =
                        before.iter().filter(|id| !deleted.contains(*id)).collect();
                    let doomed: Vec<String> =
                        [alive[page % alive.len()], alive[alive.len() - 1 - page % 3]]
                            .into_iter()
                            .cloned()
                            .collect();
                    deleted.extend(doomed.iter().cloned());
                    let mut created = created.lock().unwrap();
                    let fresh: Vec<u64> = [2 * page as u64 + 1, 59 - 2 * page as u64]
                        .into_iter()
                        .filter(|n| !created.contains(n))
                        .collect();
                    created.extend(fresh.iter().copied());
                    (doomed.into_iter().collect::<BTreeSet<_>>(), fresh)
                };
                for id in doomed {
                    app.users
                        .clone()
                        .delete_user(pb::DeleteUserRequest { user_id: id })
                        .await
                        .expect("DeleteUser");
                }
                fixtures::insert(&app.db, fresh.into_iter().map(build).collect()).await;
            }
        })
        .await;
        let seen = pages.concat();
        let mut counts: HashMap<&String, usize> = HashMap::new();
        for id in &seen {
            *counts.entry(id).or_default() += 1;
        }
        for (id, count) in &counts {
            assert_eq!(
                *count, 1,
                "{sorting:?} asc={asc}: {id} was listed {count} times"
            );
        }
        let deleted = deleted.into_inner().unwrap();
        let created = created.into_inner().unwrap();
        for id in before.difference(&deleted) {
            assert!(
                counts.contains_key(id),
                "{sorting:?} asc={asc}: {id} existed throughout but was skipped"
            );
        }
        assert!(!deleted.is_empty() && !created.is_empty());
        // Restore the population for the next order.
        for n in created {
            app.users
                .clone()
                .delete_user(pb::DeleteUserRequest { user_id: id_of(n) })
                .await
                .expect("DeleteUser");
        }
        let gone: Vec<u64> = initial
            .iter()
            .copied()
            .filter(|n| deleted.contains(&id_of(*n)))
            .collect();
        fixtures::insert(&app.db, gone.into_iter().map(build).collect()).await;
    }
}

/// A token that sees one organization only.
async fn organization_token(app: &TestApp, organization: &str) -> String {
    app.tokens
        .clone()
        .create_access_token(pb::CreateAccessTokenRequest {
            description: "tenant".into(),
            admin: false,
            permissions: vec!["user.read".into()],
            organization_id: Some(organization.to_owned()),
            expiration_date: None,
        })
        .await
        .expect("CreateAccessToken")
        .into_inner()
        .token
}

fn invalid(status: &tonic::Status, field: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().starts_with(&format!("{field}:")),
        "{:?} should name {field}",
        status.message()
    );
}

async fn tokens_only_resume_their_own_search(app: TestApp) {
    population(&app).await;
    let queries = vec![q::email("example", M::ContainsIgnoreCase)];
    let first = list(
        &app,
        request(queries.clone(), 3, true, FieldName::Email, ""),
    )
    .await;
    let token = details(&first).next_page_token.clone();
    assert!(!token.is_empty());
    let refused = |request: pb::ListUsersRequest| {
        let mut users = app.users.clone();
        async move {
            users
                .list_users(request)
                .await
                .expect_err("must be refused")
        }
    };
    // The same search resumes.
    list(
        &app,
        request(queries.clone(), 3, true, FieldName::Email, &token),
    )
    .await;
    // Another query, sorting, direction.
    let other_query = vec![q::email("example", M::Contains)];
    for request in [
        request(other_query, 3, true, FieldName::Email, &token),
        request(vec![], 3, true, FieldName::Email, &token),
        request(queries.clone(), 3, true, FieldName::Phone, &token),
        request(queries.clone(), 3, false, FieldName::Email, &token),
    ] {
        invalid(&refused(request).await, "query.pageToken");
    }
    // A token with an offset.
    let mut with_offset = request(queries.clone(), 3, true, FieldName::Email, &token);
    with_offset.query.as_mut().unwrap().offset = 3;
    let status = refused(with_offset).await;
    invalid(&status, "query.offset");
    assert!(status.message().contains("query.pageToken"), "{status:?}");
    // Tampered: every byte flipped in turn, cut short, garbage.
    let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
    for i in 0..bytes.len() {
        let mut flipped = bytes.clone();
        flipped[i] ^= 0x20;
        let flipped = URL_SAFE_NO_PAD.encode(flipped);
        let status = refused(request(
            queries.clone(),
            3,
            true,
            FieldName::Email,
            &flipped,
        ))
        .await;
        invalid(&status, "query.pageToken");
    }
    for garbage in [&token[..token.len() - 2], "garbage", "!!", "a=b", "€"] {
        let status = refused(request(queries.clone(), 3, true, FieldName::Email, garbage)).await;
        invalid(&status, "query.pageToken");
    }
    // Lists that page by offset only refuse a token instead of answering the first page again.
    let status = app
        .organizations
        .clone()
        .list_organizations(pb::ListOrganizationsRequest {
            query: Some(pb::ListQuery {
                page_token: token.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect_err("organizations page by offset");
    invalid(&status, "query.pageToken");
    // An organization-scoped caller cannot resume the instance admin's walk.
    let org_token = organization_token(&app, ORG_A).await;
    let mut scoped = app.clients(Some(&org_token)).users;
    let status = scoped
        .list_users(request(queries.clone(), 3, true, FieldName::Email, &token))
        .await
        .expect_err("another scope");
    invalid(&status, "query.pageToken");
}

async fn role_users_walk_by_token(app: TestApp) {
    let ids = population(&app).await;
    let mut roles = app.roles.clone();
    let admin = common::api::role(&app, "Admin").await;
    let other = common::api::role(&app, "Other").await;
    let members: Vec<String> = ids.iter().step_by(2).cloned().collect();
    roles
        .assign_role(pb::AssignRoleRequest {
            role_id: admin.clone(),
            user_ids: members.clone(),
        })
        .await
        .unwrap();
    roles
        .assign_role(pb::AssignRoleRequest {
            role_id: other.clone(),
            user_ids: ids.clone(),
        })
        .await
        .unwrap();
    let list = |role_id: &str, token: &str, limit: u32| pb::ListRoleUsersRequest {
        role_id: role_id.to_owned(),
        query: Some(pb::ListQuery {
            limit,
            asc: true,
            page_token: token.to_owned(),
            ..Default::default()
        }),
        sorting_column: FieldName::Email.into(),
        queries: vec![],
    };
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let response = roles
            .list_role_users(list(&admin, &token, 3))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(details(&response).total_result, members.len() as u64);
        pages.push(ids_of(&response));
        token = details(&response).next_page_token.clone();
        if token.is_empty() {
            break;
        }
        // The token of one role's users does not resume another role's.
        let status = roles
            .list_role_users(list(&other, &token, 3))
            .await
            .expect_err("another role");
        invalid(&status, "query.pageToken");
        // Nor a ListUsers walk without the role.
        let status = app
            .users
            .clone()
            .list_users(request(vec![], 3, true, FieldName::Email, &token))
            .await
            .expect_err("without the role");
        invalid(&status, "query.pageToken");
    }
    let full = roles
        .list_role_users(list(&admin, "", 100))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pages.concat(), ids_of(&full));
    assert_eq!(
        pages.concat().into_iter().collect::<BTreeSet<_>>(),
        members.into_iter().collect::<BTreeSet<_>>()
    );
    // Over HTTP/JSON, the same route rule.
    let body = json!({"query": {"limit": 3, "asc": true}, "sortingColumn": "FIELD_NAME_EMAIL"});
    let reply = h::post(
        &app,
        &format!("/v1/roles/{admin}/users/_search"),
        &body.to_string(),
    )
    .await;
    assert_eq!(json_ids(&reply), pages[0]);
    assert_eq!(json_token(&reply), {
        let grpc = roles
            .list_role_users(list(&admin, "", 3))
            .await
            .unwrap()
            .into_inner();
        details(&grpc).next_page_token.clone()
    });
}

fn ids_of(response: &pb::ListUsersResponse) -> Vec<String> {
    ids(response)
}

/// The seeks the store compiles for a page after a token are index ranges in the page's order
/// on the index the first page reads: no sort, no scan from the start of the order (which
/// would make page N cost N pages).
async fn seeks_are_index_ranges_in_page_order(backend: Backend) {
    userdir::telemetry::init();
    let Some(database) = FreshDatabase::create(backend).await else {
        return;
    };
    let db = store::connect(&database.url).await.unwrap();
    store::migrate(&db).await.unwrap();
    fixtures::base(&db).await;
    let users = (0..60)
        .map(|n| {
            let user = Fixture::new(n);
            let user = if n % 5 == 0 {
                user
            } else {
                user.email(&format!("person{n}@example.com"))
            };
            if n % 3 == 0 { user.org(ORG_B) } else { user }
        })
        .collect();
    fixtures::insert(&db, users).await;
    let txn = db.begin().await.unwrap();
    txn.execute_unprepared("ANALYZE").await.unwrap();
    if backend == Backend::Postgres {
        // A table this small is read whole whatever the indexes; take that way out so the plan
        // shows which index answers the shape at scale.
        for setting in [
            "SET LOCAL enable_seqscan = off",
            "SET LOCAL enable_sort = off",
            "SET LOCAL enable_bitmapscan = off",
        ] {
            txn.execute_unprepared(setting).await.unwrap();
        }
    }
    let thirty = Fixture::new(30).build().user;
    let at = |value| Cursor {
        value,
        id: thirty.id.clone(),
    };
    let created = || SortValue::Int(thirty.created_at);
    let email = || SortValue::Text(thirty.email_lower.clone().unwrap_or_default());
    let org = userdir::query::Query::Filter(userdir::query::Filter::OrganizationId(
        userdir::query::TextMatch::equals(ORG_B),
    ));
    // (query, sort, ascending, cursor, index of each select; None: one of those in the
    // order of the page, `(…, created_at, id)`, which the planner picks by cost both for the
    // first page and for the seek)
    let shapes = [
        (
            None,
            SortField::CreationDate,
            false,
            created(),
            vec![Some("idx_users_created")],
        ),
        (
            None,
            SortField::CreationDate,
            true,
            created(),
            vec![Some("idx_users_created")],
        ),
        (
            Some(org),
            SortField::CreationDate,
            false,
            created(),
            vec![None],
        ),
        (
            None,
            SortField::Email,
            true,
            email(),
            vec![Some("idx_users_email_lower"); 2],
        ),
        (
            None,
            SortField::Email,
            false,
            email(),
            vec![Some("idx_users_email_lower"); 2],
        ),
        (
            None,
            SortField::Email,
            false,
            SortValue::Null,
            vec![Some("idx_users_email_lower")],
        ),
    ];
    for (query, sort, ascending, value, indexes) in shapes {
        // Many matches: the plan a broad list takes (few are all read and sorted instead).
        let selects = compile::select_users_after(
            query.as_ref(),
            backend_of(backend),
            compile::Matches::total(u64::MAX),
            sort,
            ascending,
            &at(value),
        );
        assert_eq!(selects.len(), indexes.len());
        for (select, index) in selects.into_iter().zip(indexes) {
            let allowed = match index {
                Some(index) => vec![index],
                None => vec!["idx_users_created", "idx_users_organization_created"],
            };
            let sql = select.limit(10).build(backend_of(backend)).to_string();
            let plan = common::plan(&txn, &sql).await;
            let sorts = ["Sort", "TEMP B-TREE", "Seq Scan", "SCAN users"];
            // The seek bounds the index scan; as a filter it would read from the start.
            let bounded = match backend {
                Backend::Sqlite => plan.contains("SEARCH users USING INDEX"),
                Backend::Postgres => {
                    plan.contains("Index Cond")
                        && !plan
                            .lines()
                            .any(|line| line.contains("Filter") && line.contains("ROW("))
                }
            };
            assert!(
                allowed.iter().any(|index| plan.contains(index))
                    && !sorts.iter().any(|s| plan.contains(s))
                    && bounded,
                "`{sql}` should be a range of {allowed:?}, the plan is:\n{plan}"
            );
        }
    }
    txn.rollback().await.unwrap();
    db.close().await.ok();
    database.drop().await;
}

fn backend_of(backend: Backend) -> sea_orm::DbBackend {
    match backend {
        Backend::Sqlite => sea_orm::DbBackend::Sqlite,
        Backend::Postgres => sea_orm::DbBackend::Postgres,
    }
}

#[tokio::test]
async fn seeks_are_index_ranges_in_page_order_sqlite() {
    seeks_are_index_ranges_in_page_order(Backend::Sqlite).await;
}

#[tokio::test]
async fn seeks_are_index_ranges_in_page_order_postgres() {
    seeks_are_index_ranges_in_page_order(Backend::Postgres).await;
}
