//! Graceful drain (issue 12, item 4), on SQLite and PostgreSQL: the `userdir serve` binary gets
//! SIGTERM in the middle of a CreateUser load. Health turns NOT_SERVING at once while requests
//! are still served for the grace period; then the process exits 0, and every CreateUser it
//! acknowledged is in the database.

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use userdir::proto::user::v1 as pb;

use crate::common::{Backend, Clients, FreshDatabase, api};

const BINARY: &str = env!("CARGO_BIN_EXE_userdir");
/// The grace period the server is started with.
const GRACE: Duration = Duration::from_secs(2);
/// How soon after the signal health must say NOT_SERVING (it is the drain's first step).
const NOT_SERVING_BOUND: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite() {
    sigterm_under_load(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres() {
    sigterm_under_load(Backend::Postgres).await;
}

/// What the load saw.
#[derive(Default)]
struct Load {
    running: AtomicBool,
    /// When each CreateUser started, and how it ended (its code and message).
    calls: Mutex<Vec<(Instant, Code, String)>>,
    acknowledged: Mutex<Vec<String>>,
}

async fn writer(clients: Clients, load: Arc<Load>, org: String, schema: String, task: usize) {
    let mut users = clients.users;
    let mut n = 0;
    while load.running.load(Ordering::SeqCst) {
        n += 1;
        let name = format!("writer{task}-{n}");
        let mut request = tonic::Request::new(api::new_user(&org, &schema, &name));
        request.set_timeout(Duration::from_secs(10));
        let started = Instant::now();
        let answer = users.create_user(request).await;
        let (code, message) = match &answer {
            Ok(_) => (Code::Ok, String::new()),
            Err(status) => (status.code(), status.message().to_owned()),
        };
        load.calls.lock().unwrap().push((started, code, message));
        match answer {
            Ok(created) => load
                .acknowledged
                .lock()
                .unwrap()
                .push(created.into_inner().user_id),
            // The server is gone: wait a little before knocking again.
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Health of `""` every 50 ms until the load stops: when, and what it said (None when the
/// server did not answer: it is gone).
async fn watch_health(channel: Channel, load: Arc<Load>) -> Vec<(Instant, Option<ServingStatus>)> {
    let mut health = HealthClient::new(channel);
    let mut seen = Vec::new();
    while load.running.load(Ordering::SeqCst) {
        let at = Instant::now();
        let status = health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .ok()
            .map(|answer| answer.into_inner().status());
        seen.push((at, status));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    seen
}

/// What health said when, for a failure message: milliseconds since `since`, then S
/// (SERVING), N (NOT_SERVING) or - (no answer).
fn timeline(seen: &[(Instant, Option<ServingStatus>)], since: Instant) -> String {
    seen.iter()
        .map(|(at, status)| {
            let millis = at.saturating_duration_since(since).as_millis();
            let status = match status {
                Some(ServingStatus::Serving) => "S",
                Some(ServingStatus::NotServing) => "N",
                Some(_) => "?",
                None => "-",
            };
            format!("{millis}:{status}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

async fn sigterm_under_load(backend: Backend) {
    let Some(database) = FreshDatabase::create(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("admin.token");
    let mut child = Command::new(BINARY)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &database.url,
        ])
        .arg("--bootstrap-token-file")
        .arg(&token_file)
        .args(["--shutdown-grace", "2s", "--shutdown-timeout", "10s"])
        .args(["--rate-limit-per-token", "0", "--rate-limit-per-peer", "0"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start userdir serve");
    // The log, read to its end so that the server never blocks on a full pipe.
    let log = Arc::new(Mutex::new(String::new()));
    let (address_found, address) = tokio::sync::oneshot::channel();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let sink = log.clone();
    tokio::spawn(async move {
        let mut address_found = Some(address_found);
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("serving gRPC")
                && let Some(rest) = line.split("address=").nth(1)
                && let Some(found) = address_found.take()
            {
                let _ = found.send(rest.split_whitespace().next().unwrap().to_owned());
            }
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    let address = tokio::time::timeout(Duration::from_secs(60), address)
        .await
        .expect("the server starts")
        .expect("the server logs its address");
    let token = std::fs::read_to_string(&token_file).unwrap();
    let channel = Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let clients = Clients::new(channel.clone(), Some(token.trim()));
    let org = clients
        .organizations
        .clone()
        .create_organization(pb::CreateOrganizationRequest {
            name: "Drain".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .organization_id;
    let schema = clients
        .schemas
        .clone()
        .create_user_schema(pb::CreateUserSchemaRequest {
            r#type: "person".into(),
            schema: Some(api::object(serde_json::json!({"type": "object"}))),
        })
        .await
        .unwrap()
        .into_inner()
        .schema_id;

    let load = Arc::new(Load::default());
    load.running.store(true, Ordering::SeqCst);
    let writers: Vec<_> = (0..4)
        .map(|task| {
            tokio::spawn(writer(
                clients.clone(),
                load.clone(),
                org.clone(),
                schema.clone(),
                task,
            ))
        })
        .collect();
    let health = tokio::spawn(watch_health(channel.clone(), load.clone()));
    tokio::time::sleep(Duration::from_secs(1)).await;

    let signalled = Instant::now();
    let pid = child.id().expect("the server runs");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(GRACE + Duration::from_secs(20), child.wait())
        .await
        .expect("the server exits after the drain")
        .unwrap();
    let exited = Instant::now();
    load.running.store(false, Ordering::SeqCst);
    for writer in writers {
        writer.await.unwrap();
    }
    let seen = health.await.unwrap();
    let log = log.lock().unwrap().clone();
    assert!(status.success(), "exit status {status:?}\n{log}");
    assert!(log.contains("draining"), "{log}");

    // The grace period was served out, and not much more (nothing was left in flight).
    let took = exited - signalled;
    assert!(took >= GRACE, "exited {took:?} after SIGTERM");
    assert!(
        took < GRACE + Duration::from_secs(10),
        "exited {took:?} after SIGTERM"
    );

    // Health said SERVING until the signal and NOT_SERVING soon after, then never again
    // SERVING while it answered.
    let timeline = timeline(&seen, signalled);
    assert!(
        seen.iter()
            .filter(|(at, _)| *at < signalled)
            .all(|(_, status)| *status == Some(ServingStatus::Serving)),
        "{timeline}"
    );
    let not_serving = seen
        .iter()
        .find(|(at, status)| *at >= signalled && *status == Some(ServingStatus::NotServing))
        .map(|(at, _)| *at)
        .unwrap_or_else(|| panic!("health never said NOT_SERVING: {timeline}"));
    assert!(
        not_serving - signalled <= NOT_SERVING_BOUND,
        "NOT_SERVING only {:?} after SIGTERM",
        not_serving - signalled
    );
    assert!(
        seen.iter()
            .filter(|(at, _)| *at >= not_serving)
            .all(|(_, status)| *status != Some(ServingStatus::Serving)),
        "{timeline}"
    );

    // During the grace period, with health NOT_SERVING, writes were still served.
    let calls = std::mem::take(&mut *load.calls.lock().unwrap());
    let in_grace = calls
        .iter()
        .filter(|(started, code, _)| {
            *started > not_serving && *started < signalled + GRACE && *code == Code::Ok
        })
        .count();
    assert!(in_grace >= 5, "writes served during the grace: {in_grace}");
    // Every write that started in the grace period (but for the last moments: a call may meet
    // the closing connection) was served; later ones are refused: the connection closing
    // under a call that was not taken (tonic says Cancelled), the closed port (Unavailable), or
    // a stream opened while the server's GOAWAY (reason NO_ERROR) was on its way: the server
    // never took it, and tonic's client names that Internal ("h2 protocol error: ... not a
    // result of an error", its mapping of NO_ERROR; or hyper's bare "h2 protocol error: http2
    // error" when the connection ends under the new stream) where grpc-go and grpcio say
    // Unavailable, as the gRPC spec does for streams past a GOAWAY.
    let grace_ends = signalled + GRACE;
    let goaway_race = |code: &Code, message: &str| {
        *code == Code::Internal
            && message.contains("h2 protocol error")
            && (message.contains("not a result of an error")
                || message.ends_with("h2 protocol error: http2 error"))
    };
    for (started, code, message) in &calls {
        let after = started.saturating_duration_since(signalled);
        if *started + Duration::from_millis(100) < grace_ends {
            assert_eq!(
                *code,
                Code::Ok,
                "CreateUser {after:?} after SIGTERM: {message}"
            );
        } else {
            assert!(
                matches!(code, Code::Ok | Code::Unavailable | Code::Cancelled)
                    || goaway_race(code, message),
                "CreateUser {after:?} after SIGTERM: {code:?} {message}"
            );
        }
    }

    // Every acknowledged write is in the database.
    let acknowledged = std::mem::take(&mut *load.acknowledged.lock().unwrap());
    assert!(
        acknowledged.len() >= 10,
        "acknowledged: {}",
        acknowledged.len()
    );
    let db = userdir::store::connect(&database.url).await.unwrap();
    crate::common::assert_stored(&db, &acknowledged).await;
    eprintln!(
        "{backend:?}: {} writes acknowledged, {in_grace} during the grace; NOT_SERVING {:?} and exit {took:?} after SIGTERM",
        acknowledged.len(),
        not_serving - signalled
    );
    db.close().await.ok();
    database.drop().await;
}
