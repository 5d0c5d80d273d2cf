//! Hostile regular expressions (issue 9, finding 2) through the real server: patterns that
//! PostgreSQL takes seconds to compile are refused before any database sees them, a regex
//! search past its deadline is stopped in the database too, and regex searches can never take
//! every pooled connection. Regexes are reachable through Logto's `posix` and `similar_to`
//! modes only (the ZITADEL and OData dialects have none).

use crate::common;

use std::time::Duration;

use common::fixtures::{self, NewUser, user_id};
use common::{Backend, TestApp};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, DatabaseTransaction, TransactionTrait};
use serde_json::Value;
use userdir::config::Settings;
use userdir::limits::RequestLimits;
use userdir::proto::user::v1 as pb;

backend_tests!(
    hostile_patterns_are_refused_at_once_and_benign_ones_still_match,
    a_regex_cap_must_leave_two_connections_of_the_pool_free,
);

#[tokio::test]
async fn a_regex_search_past_its_deadline_is_stopped_in_the_database() {
    common::run(Backend::Postgres, deadline_stops_the_statement).await;
}

#[tokio::test]
async fn regex_searches_beyond_the_cap_are_refused_while_other_reads_go_on() {
    common::run(Backend::Postgres, the_cap_refuses_the_second_search).await;
}

/// Generous bound for "answered at once, not after seconds of compiling".
const PROMPTLY: Duration = Duration::from_secs(5);

/// Users 0 to 5 (usernames `user0` ... `user5`).
async fn population(app: &TestApp) {
    fixtures::base(&app.db).await;
    fixtures::insert(&app.db, (0..6).map(NewUser::new).collect()).await;
}

/// `GET /api/users?search.username=<pattern>&mode=<mode>`, with an optional `grpc-timeout`,
/// answered within `within`: status and JSON body.
async fn search(
    app: &TestApp,
    pattern: &str,
    mode: &str,
    grpc_timeout: Option<&str>,
    within: Duration,
) -> (StatusCode, Value) {
    let path = format!(
        "/api/users?page_size=100&search.username={}&mode={mode}&isCaseSensitive=true",
        utf8_percent_encode(pattern, NON_ALPHANUMERIC)
    );
    let mut request = reqwest::Client::new()
        .get(format!("http://{}{path}", app.address))
        .bearer_auth(&app.token);
    if let Some(timeout) = grpc_timeout {
        request = request.header("grpc-timeout", timeout);
    }
    let response = tokio::time::timeout(within, async {
        let response = request.send().await.expect("HTTP request");
        let status = response.status();
        (status, response.json().await.expect("a JSON body"))
    })
    .await;
    response.unwrap_or_else(|_| panic!("{pattern} ({mode}) was not answered within {within:?}"))
}

fn ids(body: &Value) -> Vec<String> {
    let mut ids: Vec<String> = body
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {body}"))
        .iter()
        .map(|user| user["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

async fn hostile_patterns_are_refused_at_once_and_benign_ones_still_match(app: TestApp) {
    population(&app).await;
    // PostgreSQL 15 takes ~17 s and ~3.3 s to compile the first two; the count varies so
    // that its per-backend regex cache does not help.
    for (pattern, mode, reason) in [
        (
            "(.*.*.*.*.*.*.*.*.*.*){100}",
            "posix",
            "unbounded quantifier",
        ),
        (
            "(.*.*.*.*.*.*.*.*.*.*){50}",
            "posix",
            "unbounded quantifier",
        ),
        ("(%%%%%%%%%%){77}", "similar_to", "unbounded quantifier"),
        ("(a{0,99}){1,101}", "posix", "can match the empty string"),
        (
            "(a?a?a?a?a?a?a?a?a?a?Q){99}",
            "posix",
            "can match the empty string",
        ),
    ] {
        let (status, body) = search(&app, pattern, mode, None, PROMPTLY).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{pattern}: {body}");
        assert_eq!(body["code"], "request.invalid_input", "{pattern}: {body}");
        let details = body["details"].as_str().unwrap();
        assert!(
            details
                .starts_with("Search value is invalid: search.username: the counted repetition at",)
                && details.contains(reason),
            "{pattern}: {details}"
        );
    }

    // Benign patterns, counted repetitions and unbounded quantifiers included, still find
    // the right users on both backends.
    for (pattern, mode, expected) in [
        ("^user[13]$", "posix", vec![1, 3]),
        ("^u.*(2|4)$", "posix", vec![2, 4]),
        (
            "^(us|xx)e{1}r{1,3}[0-9]{1,2}$",
            "posix",
            vec![0, 1, 2, 3, 4, 5],
        ),
        ("(user){1,2}5+", "posix", vec![5]),
        ("user(0|5)%", "similar_to", vec![0, 5]),
    ] {
        let (status, body) = search(&app, pattern, mode, None, PROMPTLY).await;
        assert_eq!(status, StatusCode::OK, "{pattern}: {body}");
        let mut expected: Vec<String> = expected.into_iter().map(user_id).collect();
        expected.sort();
        assert_eq!(ids(&body), expected, "{pattern}");
    }
}

/// Holds `LOCK TABLE events` until rolled back: every user search reads the newest event for
/// its processed sequence, so a search waits for the lock for as long as the test likes,
/// whatever the machine's speed. Reading one user never touches the events.
async fn lock_events(app: &TestApp) -> DatabaseTransaction {
    let lock = app.db.begin().await.unwrap();
    lock.execute_unprepared("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock the events");
    lock
}

/// Statements of other connections that wait for a lock.
async fn lock_waiters(app: &TestApp) -> i64 {
    let row = app
        .db
        .query_one_raw(sea_orm::Statement::from_string(
            app.db.get_database_backend(),
            "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// Polls until `want` statements wait for a lock, for at most `PROMPTLY`.
async fn await_lock_waiters(app: &TestApp, want: i64) {
    let deadline = tokio::time::Instant::now() + PROMPTLY;
    loop {
        let waiting = lock_waiters(app).await;
        if waiting == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{waiting} statements wait for a lock after {PROMPTLY:?}, expected {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn deadline_stops_the_statement(app: TestApp) {
    population(&app).await;
    let lock = lock_events(&app).await;
    let (status, body) = search(&app, "^user[0-9]$", "posix", Some("2S"), PROMPTLY).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    // PostgreSQL stopped the statement itself (statement_timeout, SQLSTATE 57014, mapped to
    // DeadlineExceeded rather than Internal) ...
    assert_eq!(
        body["details"], "the database statement did not finish within the request deadline",
        "{body}"
    );
    // ... so nothing waits for the lock any more, although it is still held.
    await_lock_waiters(&app, 0).await;
    lock.rollback().await.unwrap();
    let (status, body) = search(&app, "^user[0-9]$", "posix", Some("2S"), PROMPTLY).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ids(&body).len(), 6);
}

async fn the_cap_refuses_the_second_search(app: TestApp) {
    population(&app).await;
    let capped = app
        .with_settings(Settings {
            limits: RequestLimits {
                max_concurrent_regex_searches: 1,
                ..RequestLimits::default()
            },
            ..Settings::default()
        })
        .await;
    let lock = lock_events(&capped).await;
    // The first regex search takes the one place and waits for the lock.
    let first = {
        let address = capped.address;
        let token = capped.token.clone();
        tokio::spawn(async move {
            reqwest::Client::new()
                .get(format!(
                    "http://{address}/api/users?search.username=%5Euser&mode=posix"
                ))
                .bearer_auth(token)
                .send()
                .await
                .expect("HTTP request")
                .status()
        })
    };
    await_lock_waiters(&capped, 1).await;

    // A second one is refused after a short wait, naming the limit.
    let (status, body) = search(&capped, "^user[12]$", "posix", None, PROMPTLY).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let details = body["details"].as_str().unwrap();
    assert!(
        details.contains("at most 1, --max-concurrent-regex-searches"),
        "{details}"
    );
    // Reads without a regex go on (over gRPC here).
    let user = tokio::time::timeout(
        PROMPTLY,
        capped.users.clone().get_user(pb::GetUserRequest {
            user_id: user_id(3),
        }),
    )
    .await
    .expect("GetUser answered while a regex search waits")
    .expect("GetUser works");
    assert_eq!(user.into_inner().user.unwrap().user_id, user_id(3));

    lock.rollback().await.unwrap();
    assert_eq!(first.await.unwrap(), StatusCode::OK);
    // The place is free again.
    let (status, body) = search(&capped, "^user[12]$", "posix", None, PROMPTLY).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ids(&body).len(), 2);
}

/// A cap of 4 leaves six of PostgreSQL's ten connections free, but one of SQLite's five: a
/// SQLite server refuses to start with it, naming the flag and its limit there.
async fn a_regex_cap_must_leave_two_connections_of_the_pool_free(app: TestApp) {
    let settings = |cap| Settings {
        limits: RequestLimits {
            max_concurrent_regex_searches: cap,
            ..RequestLimits::default()
        },
        ..Settings::default()
    };
    let start = |cap| {
        userdir::startup::Application::with_database(
            app.db.clone(),
            "127.0.0.1:0".parse().unwrap(),
            settings(cap),
        )
    };
    let refused = start(4).await.err().map(|error| format!("{error:#}"));
    match app.backend {
        Backend::Sqlite => {
            let refused = refused.expect("a SQLite server with a regex cap of 4");
            assert!(
                refused.contains("--max-concurrent-regex-searches must be at most 3 on SQLite"),
                "{refused}"
            );
            assert!(start(3).await.is_ok());
        }
        Backend::Postgres => assert_eq!(refused, None),
    }
}
