//! Request ids, trace ids and the Prometheus metrics, through the real interfaces. The scrape
//! is parsed here and, when `USERDIR_PROMETHEUS_PARSER` names a Python with
//! `prometheus_client` (see .ci/run), by the Prometheus client's own parser too.

use std::collections::BTreeMap;

use tonic::Code;
use userdir::config::Settings;
use userdir::proto::user::v1 as pb;

use crate::common::http::post;
use crate::common::{TestApp, fixtures};

backend_tests!(
    metrics_count_calls_by_method_and_code,
    request_ids_are_kept_or_made_and_answered
);

/// A sample's labels, sorted, as `name{a="1",b="2"}`.
type Samples = BTreeMap<String, f64>;

/// The text exposition format's samples (comments skipped), labels sorted by name.
fn parse(text: &str) -> Samples {
    let mut samples = Samples::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line.rsplit_once(' ').expect("a sample line");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("a value: {line}"));
        let series = match series.split_once('{') {
            Some((name, labels)) => {
                let mut labels: Vec<&str> = labels
                    .trim_end_matches('}')
                    .split(',')
                    .filter(|l| !l.is_empty())
                    .collect();
                labels.sort();
                format!("{name}{{{}}}", labels.join(","))
            }
            None => series.to_owned(),
        };
        samples.insert(series, value);
    }
    samples
}

async fn scrape(app: &TestApp) -> String {
    let address = app.metrics.expect("a metrics listener");
    let response = reqwest::get(format!("http://{address}/metrics"))
        .await
        .expect("scrape");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    response.text().await.unwrap()
}

const GET_USER: &str =
    r#"grpc_method="GetUser",grpc_service="userdir.user.v1.UserService",grpc_type="unary""#;

async fn metrics_count_calls_by_method_and_code(app: TestApp) {
    fixtures::base(&app.db).await;
    fixtures::insert(&app.db, vec![fixtures::NewUser::new(1)]).await;
    let app = app
        .with_settings(Settings {
            metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
            ..Settings::default()
        })
        .await;
    let mut users = app.users.clone();
    // One success (its code comes in the trailers) and one NotFound (trailers-only).
    users
        .get_user(pb::GetUserRequest {
            user_id: fixtures::user_id(1),
        })
        .await
        .expect("GetUser of a user that exists");
    let missing = users
        .get_user(pb::GetUserRequest {
            user_id: fixtures::user_id(2),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    // A write, acknowledged by a group COMMIT.
    users
        .lock_user(pb::LockUserRequest {
            user_id: fixtures::user_id(1),
        })
        .await
        .expect("LockUser of a user that exists");
    // A JSON call, counted by its route template.
    let reply = post(&app, "/v1/users/_search", "{}").await;
    assert_eq!(reply.status, 200, "{}", reply.text);

    let text = scrape(&app).await;
    let samples = parse(&text);
    let value = |series: &str| {
        *samples
            .get(series)
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    assert_eq!(
        value(&format!("grpc_server_started_total{{{GET_USER}}}")),
        2.0
    );
    assert_eq!(
        value(&format!(
            "grpc_server_handled_total{{grpc_code=\"NotFound\",{GET_USER}}}"
        )),
        1.0
    );
    assert_eq!(
        value(&format!(
            "grpc_server_handled_total{{grpc_code=\"OK\",{GET_USER}}}"
        )),
        1.0
    );
    assert_eq!(
        value(&format!("grpc_server_handling_seconds_count{{{GET_USER}}}")),
        2.0
    );
    assert_eq!(
        value(
            r#"http_server_requests_total{method="POST",route="/v1/users/_search",status="200"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            r#"http_server_request_duration_seconds_count{method="POST",route="/v1/users/_search"}"#
        ),
        1.0
    );
    // The pool serves this very scrape; the event log has the fixtures' events or none.
    let pool = value(r#"userdir_db_pool_connections{state="in_use"}"#)
        + value(r#"userdir_db_pool_connections{state="idle"}"#);
    assert!(pool >= 1.0, "{text}");
    assert!(value("userdir_event_log_newest_sequence") >= 0.0);
    assert_eq!(
        value(r#"userdir_rate_limit_refusals_total{limit="peer"}"#),
        0.0
    );
    assert_eq!(value("userdir_load_shed_refusals_total"), 0.0);
    assert_eq!(value("userdir_write_group_commits_total"), 1.0);
    assert_eq!(value("userdir_write_group_units_total"), 1.0);
    // No raw path ever becomes a label.
    assert!(!text.contains(&fixtures::user_id(1)), "{text}");

    check_with_prometheus_client(
        &text,
        &format!("grpc_server_handled_total{{grpc_code=\"NotFound\",{GET_USER}}}"),
    );
}

/// The scrape through the Prometheus Python client's parser, which must accept it and find the
/// same NotFound count.
fn check_with_prometheus_client(text: &str, series: &str) {
    let Ok(python) = std::env::var("USERDIR_PROMETHEUS_PARSER") else {
        eprintln!(
            "skipping the prometheus_client parser: USERDIR_PROMETHEUS_PARSER is not set \
             (see .ci/run for its venv)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("metrics.txt");
    std::fs::write(&file, text).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/parse_metrics.py");
    let output = std::process::Command::new(&python)
        .arg(script)
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("running {python}: {e}"));
    assert!(
        output.status.success(),
        "prometheus_client refused the scrape:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let parsed = parse(&String::from_utf8(output.stdout).unwrap());
    assert_eq!(parsed.get(series), Some(&1.0), "{parsed:?}");
}

async fn request_ids_are_kept_or_made_and_answered(app: TestApp) {
    let mut users = app.users.clone();
    let mut request = tonic::Request::new(pb::GetUserRequest {
        user_id: fixtures::user_id(9),
    });
    request
        .metadata_mut()
        .insert("x-request-id", "test-request-7".parse().unwrap());
    let status = users.get_user(request).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(
        status.metadata().get("x-request-id").unwrap(),
        "test-request-7"
    );

    // None sent: a uuid v4 is made and answered, over HTTP/JSON as over gRPC.
    let response = reqwest::Client::new()
        .get(format!("http://{}/openapi.json", app.address))
        .send()
        .await
        .unwrap();
    let made = response.headers()["x-request-id"].to_str().unwrap();
    let made = uuid::Uuid::parse_str(made).expect("a uuid");
    assert_eq!(made.get_version_num(), 4);

    // One that is not printable is replaced.
    let response = reqwest::Client::new()
        .get(format!("http://{}/openapi.json", app.address))
        .header("x-request-id", "has spaces in it")
        .send()
        .await
        .unwrap();
    let answered = response.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(answered).is_ok(), "{answered}");
}

const BINARY: &str = env!("CARGO_BIN_EXE_userdir");

/// `--log-format json`: one JSON object a line, and every line of a request (the gate's debug
/// line too) carries its request id and the trace id of the caller's `traceparent`.
#[tokio::test]
async fn json_log_lines_carry_the_trace_of_the_request() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("u.db").display());
    let mut child = tokio::process::Command::new(BINARY)
        .args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"])
        .args(["--database-url", &url])
        .env("RUST_LOG", "debug,sqlx=warn")
        .env("USERDIR_SHUTDOWN_GRACE", "0s")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start userdir serve");
    let token = {
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        stdout
            .next_line()
            .await
            .unwrap()
            .expect("the bootstrap token")
    };
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let address = loop {
        let line = lines.next_line().await.unwrap().expect("the server exited");
        let event: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        if event["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("serving gRPC"))
        {
            break event["address"].as_str().unwrap().to_owned();
        }
    };
    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    let channel = tonic::transport::Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut users = crate::common::Clients::new(channel, Some(&token)).users;
    let mut request = tonic::Request::new(pb::GetUserRequest {
        user_id: fixtures::user_id(1),
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE}-00f067aa0ba902b7-01").parse().unwrap(),
    );
    request
        .metadata_mut()
        .insert("x-request-id", "json-log-test".parse().unwrap());
    let status = users.get_user(request).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    // The request's lines: at least the gate's and the finishing one, all with its ids.
    let mut of_the_request = Vec::new();
    while !of_the_request
        .iter()
        .any(|e: &serde_json::Value| e["message"] == "finished")
    {
        let line = lines.next_line().await.unwrap().expect("the server exited");
        let event: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        if event["spans"]
            .as_array()
            .is_some_and(|spans| spans.iter().any(|s| s["name"] == "request"))
        {
            of_the_request.push(event);
        }
    }
    assert!(of_the_request.len() >= 2, "{of_the_request:?}");
    for event in &of_the_request {
        let span = &event["spans"][0];
        assert_eq!(span["trace_id"], TRACE, "{event}");
        assert_eq!(span["request_id"], "json-log-test", "{event}");
        assert_eq!(span["grpc_method"], "GetUser", "{event}");
    }
    let finished = of_the_request.last().unwrap();
    assert_eq!(finished["grpc_code"], "5", "{finished}");
}

/// `token` commands print their answer, not the migrations they ran on the way.
#[tokio::test]
async fn token_commands_log_no_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("u.db").display());
    let output = tokio::process::Command::new(BINARY)
        .args(["token", "list", "--database-url", &url])
        .env_remove("RUST_LOG")
        .output()
        .await
        .unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!stderr.contains("migration"), "{stderr}");
    assert!(String::from_utf8(output.stdout).unwrap().starts_with("ID"));
}
