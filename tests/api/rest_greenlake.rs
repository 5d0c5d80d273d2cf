//! GreenLake's OData-filtered user list (`/identity/v1/users`) through the real server, on
//! SQLite and PostgreSQL: every answer is compared with the equivalent gRPC ListUsers query,
//! or, for timestamps (which ListUsers cannot filter), with all ListUsers users filtered by
//! the known fixture times.

use crate::common;

use common::TestApp;
use common::fixtures::{self, BASE_MILLIS, NewUser, user_id};
use common::queries::{self as q, M};
use reqwest::StatusCode;
use serde_json::Value;
use userdir::domain::UserState;
use userdir::proto::user::v1::{self as pb, FieldName};

backend_tests!(
    every_field_and_operator_matches_grpc,
    and_or_not_and_parentheses_match_grpc,
    malformed_filters_are_400_with_position_and_token,
    limit_and_offset_page_by_items,
);

const STATES: [UserState; 4] = [
    UserState::Active,
    UserState::Inactive,
    UserState::Locked,
    UserState::Deleted,
];

/// Microseconds of fixture time `seconds` after the base.
fn at(seconds: u64) -> i64 {
    ((BASE_MILLIS + seconds * 1000) * 1000) as i64
}

/// `at(seconds)` as GreenLake writes it: no zone, UTC.
fn literal(seconds: u64) -> String {
    let micros = at(seconds);
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap()
        .naive_utc()
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string()
}

/// Ten users: user n created at n s, changed at 100 + n s, states cycling, even users last
/// logged in at 200 + n s.
struct Spec {
    n: u64,
    created: i64,
    changed: i64,
    last_login: Option<i64>,
}

fn specs() -> Vec<Spec> {
    (0..10)
        .map(|n| Spec {
            n,
            created: at(n),
            changed: at(100 + n),
            last_login: (n % 2 == 0).then(|| at(200 + n)),
        })
        .collect()
}

async fn population(app: &TestApp) {
    fixtures::base(&app.db).await;
    let users = specs()
        .into_iter()
        .map(|s| {
            let mut user = NewUser::new(s.n)
                .created(s.created)
                .changed(s.changed)
                .state(STATES[s.n as usize % 4]);
            if let Some(login) = s.last_login {
                user = user.last_login(login);
            }
            if s.n == 3 {
                user = user.username("o'brien@example.com", false);
            }
            user
        })
        .collect();
    fixtures::insert(&app.db, users).await;
}

async fn get(app: &TestApp, query: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .get(format!("http://{}/identity/v1/users", app.address))
        .query(query)
        .bearer_auth(&app.token)
        .send()
        .await
        .expect("HTTP request");
    let status = response.status();
    (status, response.json().await.expect("a JSON body"))
}

fn ids(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {body}"))
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Ids of a filter (all of them in one page).
async fn odata(app: &TestApp, filter: &str) -> Vec<String> {
    let (status, body) = get(app, &[("filter", filter), ("limit", "600")]).await;
    assert_eq!(status, StatusCode::OK, "{filter}: {body}");
    let found = ids(&body);
    assert_eq!(body["total"], found.len(), "{filter}");
    assert_eq!(body["count"], found.len(), "{filter}");
    found
}

/// ListUsers in GreenLake's order: creation date ascending.
async fn grpc(app: &TestApp, queries: Vec<pb::SearchQuery>) -> Vec<String> {
    app.users
        .clone()
        .list_users(q::request(queries, 0, 1000, true, FieldName::CreationDate))
        .await
        .expect("ListUsers")
        .into_inner()
        .result
        .into_iter()
        .map(|u| u.user_id)
        .collect()
}

/// ListUsers users whose fixture spec satisfies `keep`.
async fn grpc_where(app: &TestApp, keep: impl Fn(&Spec) -> bool) -> Vec<String> {
    let specs = specs();
    grpc(app, vec![])
        .await
        .into_iter()
        .filter(|id| {
            let spec = specs.iter().find(|s| user_id(s.n) == *id).unwrap();
            keep(spec)
        })
        .collect()
}

fn state(state: UserState) -> pb::SearchQuery {
    q::state(match state {
        UserState::Active => pb::State::UserStateActive,
        UserState::Inactive => pb::State::UserStateInactive,
        UserState::Deleted => pb::State::UserStateDeleted,
        UserState::Locked => pb::State::UserStateLocked,
    })
}

async fn every_field_and_operator_matches_grpc(app: TestApp) {
    population(&app).await;
    let three = user_id(3);
    assert_eq!(
        odata(&app, &format!("id eq '{three}'")).await,
        grpc(&app, vec![q::user_id(&three, M::Equals)]).await
    );
    assert_eq!(
        odata(&app, &format!("id ne '{three}'")).await,
        grpc(&app, vec![q::not(q::user_id(&three, M::Equals))]).await
    );
    assert_eq!(
        odata(&app, "username eq 'o''brien@example.com'").await,
        grpc(
            &app,
            vec![q::username("o'brien@example.com", M::Equals, None)]
        )
        .await
    );
    assert_eq!(
        odata(&app, "username ne 'user4'").await,
        grpc(&app, vec![q::not(q::username("user4", M::Equals, None))]).await
    );
    for (status, userdir_state) in [
        ("VERIFIED", UserState::Active),
        ("SUSPENDED", UserState::Inactive),
        ("BLOCKED", UserState::Locked),
        ("DELETED", UserState::Deleted),
    ] {
        assert_eq!(
            odata(&app, &format!("userStatus eq '{status}'")).await,
            grpc(&app, vec![state(userdir_state)]).await,
            "{status}"
        );
        assert_eq!(
            odata(&app, &format!("userStatus ne '{status}'")).await,
            grpc(&app, vec![q::not(state(userdir_state))]).await,
            "{status}"
        );
    }
    assert_eq!(
        odata(&app, "userStatus eq 'UNVERIFIED'").await,
        Vec::<String>::new()
    );
    assert_eq!(
        odata(&app, "userStatus ne 'DELETE_IN_PROGRESS'").await,
        grpc(&app, vec![]).await
    );
    // The item shows the mapped status.
    let (_, body) = get(&app, &[("filter", &format!("id eq '{three}'"))]).await;
    assert_eq!(body["items"][0]["userStatus"], "DELETED");
    assert_eq!(body["items"][0]["username"], "user3");
    assert_eq!(body["items"][0]["lastLogin"], Value::Null);

    type Pick = fn(&Spec) -> Option<i64>;
    type Holds = fn(i64, i64) -> bool;
    let fields: [(&str, Pick, u64); 3] = [
        ("createdAt", |s| Some(s.created), 4),
        ("updatedAt", |s| Some(s.changed), 104),
        ("lastLogin", |s| s.last_login, 204),
    ];
    for (field, pick, seconds) in fields {
        let t = at(seconds);
        let ops: [(&str, Holds); 5] = [
            ("eq", |a, b| a == b),
            ("ne", |a, b| a != b),
            ("gt", |a, b| a > b),
            ("ge", |a, b| a >= b),
            ("lt", |a, b| a < b),
        ];
        for (op, holds) in ops {
            let filter = format!("{field} {op} '{}'", literal(seconds));
            let expected = grpc_where(&app, |s| pick(s).is_some_and(|v| holds(v, t))).await;
            assert_eq!(odata(&app, &filter).await, expected, "{filter}");
            assert!(!expected.is_empty(), "{filter} tests something");
        }
        // NOT is the complement, users without a last login included.
        let filter = format!("not {field} gt '{}'", literal(seconds));
        let expected = grpc_where(&app, |s| pick(s).is_none_or(|v| v <= t)).await;
        assert_eq!(odata(&app, &filter).await, expected, "{filter}");
    }
    // A zone and fractional seconds are understood.
    assert_eq!(
        odata(&app, &format!("createdAt ge '{}Z'", literal(8))).await,
        grpc_where(&app, |s| s.created >= at(8)).await
    );
    let just_after = chrono::DateTime::from_timestamp_micros(at(8) + 1)
        .unwrap()
        .to_rfc3339();
    assert_eq!(
        odata(&app, &format!("createdAt gt '{just_after}'")).await,
        grpc_where(&app, |s| s.created > at(8)).await
    );
}

async fn and_or_not_and_parentheses_match_grpc(app: TestApp) {
    population(&app).await;
    let (one, two) = (user_id(1), user_id(2));
    assert_eq!(
        odata(
            &app,
            &format!("id eq '{one}' or id eq '{two}' and userStatus eq 'VERIFIED'")
        )
        .await,
        grpc(
            &app,
            vec![q::or(vec![
                q::user_id(&one, M::Equals),
                q::and(vec![q::user_id(&two, M::Equals), state(UserState::Active)]),
            ])]
        )
        .await
    );
    assert_eq!(
        odata(
            &app,
            &format!("(id eq '{one}' or id eq '{two}') and userStatus eq 'SUSPENDED'")
        )
        .await,
        grpc(
            &app,
            vec![
                q::or(vec![
                    q::user_id(&one, M::Equals),
                    q::user_id(&two, M::Equals)
                ]),
                state(UserState::Inactive),
            ]
        )
        .await
    );
    assert_eq!(
        odata(
            &app,
            "not (userStatus eq 'VERIFIED' or userStatus eq 'BLOCKED') and not username eq 'user9'"
        )
        .await,
        grpc(
            &app,
            vec![
                q::not(q::or(vec![
                    state(UserState::Active),
                    state(UserState::Locked)
                ])),
                q::not(q::username("user9", M::Equals, None)),
            ]
        )
        .await
    );
    let filter = format!(
        "createdAt ge '{}' and (lastLogin lt '{}' or userStatus eq 'DELETED')",
        literal(2),
        literal(206)
    );
    assert_eq!(
        odata(&app, &filter).await,
        grpc_where(&app, |s| s.created >= at(2)
            && (s.last_login.is_some_and(|l| l < at(206)) || s.n % 4 == 3))
        .await
    );
}

async fn malformed_filters_are_400_with_position_and_token(app: TestApp) {
    population(&app).await;
    let cases: &[(&str, u64, &str)] = &[
        ("id eqq 'a'", 4, "eqq"),
        ("nickname eq 'a'", 1, "nickname"),
        ("userStatus eq 'verified'", 15, "'verified'"),
        ("createdAt gt 'last week'", 14, "'last week'"),
        ("id eq 'a' and", 14, ""),
        ("(id eq 'a'", 11, ""),
        ("id eq 'a", 7, "'a"),
        ("username gt 'a'", 10, "gt"),
    ];
    for (filter, position, token) in cases {
        let (status, body) = get(&app, &[("filter", filter)]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{filter}: {body}");
        assert_eq!(body["httpStatusCode"], 400);
        assert_eq!(body["errorCode"], "HPE_GL_ERROR_BAD_REQUEST");
        let issue = &body["errorDetails"][0]["issues"][0];
        assert_eq!(issue["source"], "filter", "{body}");
        assert_eq!(issue["position"], *position, "{filter}: {body}");
        assert_eq!(issue["token"], *token, "{filter}: {body}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("invalid filter at position {position}")),
            "{message}"
        );
    }
    // Hostile input: deep nesting, huge filters, NUL.
    let deep = format!("{}id eq 'a'{}", "(".repeat(5000), ")".repeat(5000));
    let (status, body) = get(&app, &[("filter", &deep)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let deep = format!("{}id eq 'a'{}", "(".repeat(11), ")".repeat(11));
    let (status, body) = get(&app, &[("filter", &deep)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("at most 10 levels"),
        "{body}"
    );
    let (status, body) = get(&app, &[("filter", "id eq 'a\0b'")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Not UTF-8.
    let response = reqwest::Client::new()
        .get(format!(
            "http://{}/identity/v1/users?filter=id%20eq%20%27%FF%27",
            app.address
        ))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

async fn limit_and_offset_page_by_items(app: TestApp) {
    population(&app).await;
    let all = grpc(&app, vec![]).await;
    let (status, body) = get(&app, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&body), all, "default limit 300 holds everybody");
    assert_eq!(body["offset"], 0);
    let (_, body) = get(&app, &[("limit", "3"), ("offset", "4")]).await;
    assert_eq!(ids(&body), all[4..7].to_vec());
    assert_eq!(
        (&body["offset"], &body["count"], &body["total"]),
        (&Value::from(4), &Value::from(3), &Value::from(10))
    );
    let (_, body) = get(
        &app,
        &[
            ("limit", "600"),
            ("offset", "8"),
            ("filter", "userStatus ne 'DELETED'"),
        ],
    )
    .await;
    let live = grpc(&app, vec![q::not(state(UserState::Deleted))]).await;
    assert_eq!(ids(&body), live[8.min(live.len())..].to_vec());
    assert_eq!(body["total"], live.len());
    let (_, body) = get(&app, &[("offset", "50")]).await;
    assert_eq!(
        (body["count"].clone(), body["total"].clone()),
        (Value::from(0), Value::from(10))
    );
    for (key, value) in [
        ("limit", "0"),
        ("limit", "601"),
        ("limit", "-1"),
        ("limit", "ten"),
        ("offset", "-1"),
        ("offset", "99999999999999999999"),
        ("offset", "9223372036854775808"),
    ] {
        let (status, body) = get(&app, &[(key, value)]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{key}={value}: {body}");
        assert_eq!(body["errorDetails"][0]["issues"][0]["source"], key);
    }
}
