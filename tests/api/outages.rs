//! Database outages (issue 12, item 3): a PostgreSQL server of the test's own is crashed under a
//! steady read and write load and started again. While it is down every call fails quickly
//! with Unavailable (HTTP 503 in every dialect), never Internal and never at its deadline;
//! health turns NOT_SERVING and back to SERVING by itself; the server needs no restart, and
//! every write it acknowledged is there afterwards.
//!
//! PostgreSQL only: SQLite is a file the server opens itself, which cannot go away like a
//! database server. The mapping of driver errors to Unavailable has unit tests for both
//! (`src/error.rs`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use userdir::config::Settings;
use userdir::proto::user::v1 as pb;
use userdir::store;

use crate::common::own_postgres::OwnPostgres;
use crate::common::{self, Backend, TestApp, api, http};

/// A call fails within 1 s while the database is gone (the bound; asserted with room
/// for a busy machine), and no call ever waits for its 10 s deadline.
const CALL_BOUND: Duration = Duration::from_secs(3);
/// Health follows the database within 2 s (the bound), observed every 100 ms.
const HEALTH_BOUND: Duration = Duration::from_millis(2500);
const HEALTH_POLL: Duration = Duration::from_millis(100);
/// How long the database stays down.
const OUTAGE: Duration = Duration::from_secs(4);
/// The deadline every call of the load sends.
const CALL_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    CreateUser,
    GetUser,
    ListUsers,
}

#[derive(Debug)]
struct Call {
    kind: Kind,
    started: Instant,
    took: Duration,
    code: Code,
    message: String,
}

/// What the load did, and whether it goes on.
struct Load {
    running: AtomicBool,
    calls: Mutex<Vec<Call>>,
    /// Users whose CreateUser answered OK.
    acknowledged: Mutex<Vec<String>>,
}

impl Load {
    fn record<T>(&self, kind: Kind, started: Instant, answer: &Result<T, tonic::Status>) {
        let (code, message) = match answer {
            Ok(_) => (Code::Ok, String::new()),
            Err(status) => (status.code(), status.message().to_owned()),
        };
        self.calls.lock().unwrap().push(Call {
            kind,
            started,
            took: started.elapsed(),
            code,
            message,
        });
    }

    fn running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }
}

fn with_deadline<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(CALL_DEADLINE);
    request
}

/// Creates users one after another, each with its own username.
async fn writer(app: Arc<TestApp>, load: Arc<Load>, org: String, schema: String, task: usize) {
    let mut users = app.users.clone();
    let mut n = 0;
    while load.running() {
        n += 1;
        let name = format!("writer{task}-{n}");
        let started = Instant::now();
        let answer = users
            .create_user(with_deadline(api::new_user(&org, &schema, &name)))
            .await;
        load.record(Kind::CreateUser, started, &answer);
        if let Ok(created) = answer {
            load.acknowledged
                .lock()
                .unwrap()
                .push(created.into_inner().user_id);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads one user and the first page, one after another.
async fn reader(app: Arc<TestApp>, load: Arc<Load>, known: String) {
    let mut users = app.users.clone();
    while load.running() {
        let started = Instant::now();
        let answer = users
            .get_user(with_deadline(pb::GetUserRequest {
                user_id: known.clone(),
            }))
            .await;
        load.record(Kind::GetUser, started, &answer);
        let started = Instant::now();
        let answer = users
            .list_users(with_deadline(pb::ListUsersRequest {
                query: Some(pb::ListQuery {
                    limit: 5,
                    ..Default::default()
                }),
                ..Default::default()
            }))
            .await;
        load.record(Kind::ListUsers, started, &answer);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One look at health: when, and whether `""` and the user service were SERVING.
#[derive(Debug)]
struct Seen {
    at: Instant,
    overall: ServingStatus,
    users: ServingStatus,
}

/// Asks health every [`HEALTH_POLL`] until the load stops.
async fn watch_health(channel: Channel, load: Arc<Load>) -> Vec<Seen> {
    let mut health = HealthClient::new(channel);
    let mut seen = Vec::new();
    while load.running() {
        let at = Instant::now();
        let overall = status(&mut health, "").await;
        let users = status(&mut health, "userdir.user.v1.UserService").await;
        seen.push(Seen { at, overall, users });
        tokio::time::sleep(HEALTH_POLL).await;
    }
    seen
}

async fn status(health: &mut HealthClient<Channel>, service: &str) -> ServingStatus {
    health
        .check(with_deadline(HealthCheckRequest {
            service: service.into(),
        }))
        .await
        .expect("health answers whatever the database does")
        .into_inner()
        .status()
}

/// While the database is down, every REST surface answers 503 in its own shape, quickly.
async fn http_answers_503(app: &TestApp, known: &str) {
    let paths = [
        format!("/v1/users/{known}"),
        "/api/users".to_owned(),
        "/identity/v1/users".to_owned(),
    ];
    for path in &paths {
        let started = Instant::now();
        let reply = http::get(app, path).await;
        let took = started.elapsed();
        assert_eq!(reply.status, 503, "{path}: {}", reply.text);
        assert!(took < CALL_BOUND, "{path} took {took:?}");
        let body = &reply.json;
        match path.as_str() {
            "/api/users" => {
                assert_eq!(body["code"], "request.general", "{path}: {body}");
                assert_eq!(
                    body["details"],
                    userdir::error::UNAVAILABLE,
                    "{path}: {body}"
                );
            }
            "/identity/v1/users" => {
                assert_eq!(body["httpStatusCode"], 503, "{path}: {body}");
                assert_eq!(
                    body["errorCode"], "HPE_GL_ERROR_SERVICE_UNAVAILABLE",
                    "{path}: {body}"
                );
            }
            _ => {
                assert_eq!(body["code"], Code::Unavailable as i32, "{path}: {body}");
                assert_eq!(
                    body["message"],
                    userdir::error::UNAVAILABLE,
                    "{path}: {body}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_crashed_and_restarted_under_load() {
    userdir::telemetry::init();
    let Some(mut postgres) = OwnPostgres::start().await else {
        return;
    };
    let db = store::connect(&postgres.url())
        .await
        .expect("connect to the test's own PostgreSQL");
    store::migrate(&db).await.expect("migrate");
    let app = Arc::new(
        common::serve(
            Backend::Postgres,
            db.clone(),
            &postgres.url(),
            Settings::default(),
            None,
        )
        .await,
    );
    let org = api::organization(&app, "Outage").await;
    let schema = api::person_schema(&app, "person").await;
    let known = api::create_user(&app, api::new_user(&org, &schema, "known")).await;

    let load = Arc::new(Load {
        running: AtomicBool::new(true),
        calls: Mutex::new(Vec::new()),
        acknowledged: Mutex::new(Vec::new()),
    });
    let mut tasks = Vec::new();
    for task in 0..4 {
        tasks.push(tokio::spawn(writer(
            app.clone(),
            load.clone(),
            org.clone(),
            schema.clone(),
            task,
        )));
    }
    for _ in 0..2 {
        tasks.push(tokio::spawn(reader(
            app.clone(),
            load.clone(),
            known.clone(),
        )));
    }
    let health = tokio::spawn(watch_health(app.channel.clone(), load.clone()));

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stopping = Instant::now();
    postgres.crash().await;
    let down = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    http_answers_503(&app, &known).await;
    tokio::time::sleep_until((stopping + OUTAGE).into()).await;
    let starting = Instant::now();
    postgres.resume().await;
    let up = Instant::now();
    tokio::time::sleep(HEALTH_BOUND + Duration::from_secs(2)).await;
    load.running.store(false, Ordering::SeqCst);
    for task in tasks {
        task.await.unwrap();
    }
    let seen = health.await.unwrap();
    let calls = std::mem::take(&mut *load.calls.lock().unwrap());
    let since = |at: Instant| at.saturating_duration_since(stopping);

    let slowest_failure = calls
        .iter()
        .filter(|call| call.code != Code::Ok)
        .map(|call| call.took)
        .max();
    eprintln!(
        "{} calls, {} failed (slowest {slowest_failure:?}); the crash took {:?}, the restart {:?}",
        calls.len(),
        calls.iter().filter(|call| call.code != Code::Ok).count(),
        down - stopping,
        up - starting,
    );

    // Every call answered quickly; every failure is Unavailable.
    for call in &calls {
        assert!(
            call.took < CALL_BOUND,
            "{:?} started {:?} after the crash took {:?} ({:?}: {})",
            call.kind,
            since(call.started),
            call.took,
            call.code,
            call.message
        );
        assert!(
            call.code == Code::Ok || call.code == Code::Unavailable,
            "{:?} started {:?} after the crash: {:?}: {}",
            call.kind,
            since(call.started),
            call.code,
            call.message
        );
    }
    // Nothing succeeds while the database is down; everything does once health says so.
    let during: Vec<&Call> = calls
        .iter()
        .filter(|call| call.started >= down && call.started + call.took < starting)
        .collect();
    assert!(
        during.len() >= 10,
        "calls during the outage: {}",
        during.len()
    );
    assert!(during.iter().all(|call| call.code == Code::Unavailable));
    for kind in [Kind::CreateUser, Kind::GetUser, Kind::ListUsers] {
        assert!(during.iter().any(|call| call.kind == kind), "{kind:?}");
    }
    let after: Vec<&Call> = calls
        .iter()
        .filter(|call| call.started >= up + HEALTH_BOUND)
        .collect();
    assert!(
        after.len() >= 10,
        "calls after the restart: {}",
        after.len()
    );
    for call in &after {
        assert_eq!(call.code, Code::Ok, "after the restart: {call:?}");
    }

    // Health: SERVING, NOT_SERVING within the bound of the crash and until the restart,
    // SERVING again within the bound of it; `""` and the service always agree.
    let timeline = seen
        .iter()
        .map(|look| format!("{}:{:?}", since(look.at).as_millis(), look.overall))
        .collect::<Vec<_>>()
        .join(" ");
    // The two are asked one after the other, so a look that straddles a change may see one
    // side of it for each; any other look sees them agree.
    for (n, look) in seen.iter().enumerate() {
        let changing = |other: Option<&Seen>| other.is_some_and(|o| o.overall != look.overall);
        if look.overall != look.users {
            assert!(
                changing(seen.get(n + 1)) || changing(n.checked_sub(1).and_then(|p| seen.get(p))),
                "{look:?}"
            );
        }
    }
    assert!(
        seen.iter()
            .filter(|look| look.at < stopping)
            .all(|look| look.overall == ServingStatus::Serving),
        "{timeline}"
    );
    let lost = seen
        .iter()
        .find(|look| look.at >= stopping && look.overall == ServingStatus::NotServing)
        .expect("health turned NOT_SERVING");
    assert!(
        since(lost.at) <= HEALTH_BOUND,
        "NOT_SERVING only {:?} after the crash",
        since(lost.at)
    );
    assert!(
        seen.iter()
            .filter(|look| look.at >= lost.at && look.at < starting)
            .all(|look| look.overall == ServingStatus::NotServing),
        "health stays NOT_SERVING while the database is down: {timeline}"
    );
    let back = seen
        .iter()
        .find(|look| look.at >= starting && look.overall == ServingStatus::Serving)
        .expect("health turned SERVING again");
    eprintln!(
        "health: NOT_SERVING {:?} after the crash began, SERVING {:?} after the database was up",
        since(lost.at),
        back.at.saturating_duration_since(up)
    );
    assert!(
        back.at.saturating_duration_since(up) <= HEALTH_BOUND,
        "SERVING only {:?} after the restart",
        back.at.saturating_duration_since(up)
    );
    assert!(
        seen.iter()
            .filter(|look| look.at >= back.at)
            .all(|look| look.overall == ServingStatus::Serving),
        "{timeline}"
    );

    // Every acknowledged write is there.
    let acknowledged = std::mem::take(&mut *load.acknowledged.lock().unwrap());
    assert!(
        acknowledged.len() >= 20,
        "writes acknowledged: {}",
        acknowledged.len()
    );
    common::assert_stored(&db, &acknowledged).await;
    db.close().await.ok();
}
