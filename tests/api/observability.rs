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
