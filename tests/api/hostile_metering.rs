//! What an unauthenticated or hostile caller can take, through the real interfaces: public
//! services (health, reflection, /openapi.json) are metered per peer like every other call, one
//! reflection stream carries a bounded number of requests, each charged to its peer; a flood of
//! bad credentials over the peer's rate is refused before any token lookup; and control
//! characters can reach no operator's terminal through token descriptions.

use crate::common;

use std::num::NonZeroU32;

use common::{Backend, FreshDatabase, TestApp};
use reqwest::Method;
use sea_orm::ConnectionTrait;
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest,
};
use userdir::auth::rate_limit::{Rate, RateLimitSettings};
use userdir::auth::stream_meter::MAX_REFLECTION_REQUESTS_PER_STREAM;
use userdir::config::Settings;
use userdir::proto::user::v1 as pb;

backend_tests!(
    bad_credentials_over_the_peer_rate_cost_no_token_lookup,
    control_characters_in_token_descriptions_are_invalid_argument,
);

const BINARY: &str = env!("CARGO_BIN_EXE_userdir");

/// A server over `app`'s database whose peers may make `burst` calls, then 1 per second.
async fn peer_limited(app: &TestApp, burst: u32) -> TestApp {
    app.with_settings(Settings {
        rate_limits: RateLimitSettings {
            per_token: None,
            per_peer: Some(Rate {
                per_second: NonZeroU32::new(1).unwrap(),
                burst: NonZeroU32::new(burst).unwrap(),
            }),
            exempt_bootstrap: false,
        },
        ..Settings::default()
    })
    .await
}

/// Calls `call` until it fails; returns how many passed and the failure. At 1 call per second,
/// a burst of 5 runs out within a few more calls however slow the machine (twenty calls take
/// far less than the twenty seconds they would need).
async fn until_refused<F, Fut>(mut call: F) -> (usize, Status)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), Status>>,
{
    let mut passed = 0;
    loop {
        match call().await {
            Ok(()) => passed += 1,
            Err(status) => return (passed, status),
        }
        assert!(passed < 20, "never limited");
    }
}

fn list_services() -> ServerReflectionRequest {
    ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    }
}

/// Sends `requests` on one reflection stream; returns how many answers came, and the status the
/// stream ended with (None: it ended OK).
async fn reflection_stream(
    channel: &Channel,
    requests: Vec<ServerReflectionRequest>,
) -> (usize, Option<Status>) {
    let mut client = ServerReflectionClient::new(channel.clone());
    let mut answers = match client
        .server_reflection_info(tokio_stream::iter(requests))
        .await
    {
        Ok(response) => response.into_inner(),
        Err(status) => return (0, Some(status)),
    };
    let mut answered = 0;
    while let Some(answer) = answers.next().await {
        match answer {
            Ok(_) => answered += 1,
            Err(status) => return (answered, Some(status)),
        }
    }
    (answered, None)
}

fn assert_rate_limited(passed: usize, status: &Status, what: &str) {
    assert_eq!(status.code(), Code::ResourceExhausted, "{what}: {status:?}");
    assert!(passed >= 5, "{what}: the burst passes: {passed}");
}

#[tokio::test]
async fn public_services_are_metered_per_peer() {
    common::run(Backend::Sqlite, |app| async move {
        // Health checks.
        let limited = peer_limited(&app, 5).await;
        let health = HealthClient::new(limited.channel.clone());
        let (passed, status) = until_refused(|| {
            let mut health = health.clone();
            async move { health.check(HealthCheckRequest::default()).await.map(drop) }
        })
        .await;
        assert_rate_limited(passed, &status, "health");
        assert!(status.metadata().contains_key("retry-after"), "{status:?}");

        // Reflection, one stream per listing (as grpcurl list does).
        let limited = peer_limited(&app, 5).await;
        let (passed, status) = until_refused(|| async {
            match reflection_stream(&limited.channel, vec![list_services()]).await {
                (1, None) => Ok(()),
                (_, Some(status)) => Err(status),
                other => panic!("{other:?}"),
            }
        })
        .await;
        assert_rate_limited(passed, &status, "reflection");

        // The OpenAPI document.
        let limited = peer_limited(&app, 5).await;
        let client = reqwest::Client::new();
        let (passed, status) = until_refused(|| async {
            let reply =
                common::http::send_as(&client, &limited, None, Method::GET, "/openapi.json", None)
                    .await;
            match reply.status.as_u16() {
                200 => Ok(()),
                429 => Err(Status::resource_exhausted(reply.text)),
                other => panic!("{other}: {}", reply.text),
            }
        })
        .await;
        assert_rate_limited(passed, &status, "/openapi.json");

        // The budget is the peer's: once it is spent, the public calls count against the rest.
        let (_, status) = reflection_stream(&limited.channel, vec![list_services()]).await;
        assert_eq!(status.map(|s| s.code()), Some(Code::ResourceExhausted));
        // Without a per-peer limit nothing is refused.
        for _ in 0..30 {
            HealthClient::new(app.channel.clone())
                .check(HealthCheckRequest::default())
                .await
                .unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn one_reflection_stream_carries_a_bounded_number_of_requests() {
    common::run(Backend::Sqlite, |app| async move {
        // No rate limit at all: the cap alone ends the stream.
        let requests = vec![list_services(); MAX_REFLECTION_REQUESTS_PER_STREAM + 50];
        let (answered, status) = reflection_stream(&app.channel, requests).await;
        assert_eq!(answered, MAX_REFLECTION_REQUESTS_PER_STREAM);
        let status = status.expect("the stream is cut");
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(
            status
                .message()
                .contains(&format!("at most {MAX_REFLECTION_REQUESTS_PER_STREAM}")),
            "{status:?}"
        );
        // Up to the cap is fine, and the server answers new streams afterwards.
        let requests = vec![list_services(); MAX_REFLECTION_REQUESTS_PER_STREAM];
        let (answered, status) = reflection_stream(&app.channel, requests).await;
        assert_eq!((answered, status.map(|s| s.code())), (100, None));
    })
    .await;
}

#[tokio::test]
async fn each_request_of_a_reflection_stream_is_charged_to_its_peer() {
    common::run(Backend::Sqlite, |app| async move {
        let limited = peer_limited(&app, 5).await;
        let (answered, status) =
            reflection_stream(&limited.channel, vec![list_services(); 30]).await;
        let status = status.expect("the stream is cut");
        assert_rate_limited(answered, &status, "one stream");
        assert!(answered < 20, "{answered}");
        assert!(status.metadata().contains_key("retry-after"), "{status:?}");
        // The stream spent the peer's budget.
        let mut health = HealthClient::new(limited.channel.clone());
        let refused = health
            .check(HealthCheckRequest::default())
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::ResourceExhausted);
    })
    .await;
}

/// With the database gone, every token lookup fails (Unavailable): a ResourceExhausted shows
/// the request was refused before any lookup.
async fn bad_credentials_over_the_peer_rate_cost_no_token_lookup(app: TestApp) {
    let limited = peer_limited(&app, 5).await;
    app.db.clone().close().await.unwrap();
    let mut codes = Vec::new();
    for i in 0..20 {
        let bad = format!("{}{i:043}", userdir::auth::secret::PREFIX);
        let status = limited
            .clients(Some(&bad))
            .users
            .list_users(pb::ListUsersRequest::default())
            .await
            .unwrap_err();
        codes.push(status.code());
        if status.code() == Code::ResourceExhausted {
            break;
        }
    }
    let (refused, looked_up) = codes.split_last().unwrap();
    assert_eq!(*refused, Code::ResourceExhausted, "{codes:?}");
    assert!(looked_up.len() >= 5, "the burst is looked up: {codes:?}");
    assert!(
        looked_up.iter().all(|code| *code == Code::Unavailable),
        "{codes:?}"
    );
}

async fn control_characters_in_token_descriptions_are_invalid_argument(app: TestApp) {
    for description in ["\u{1b}[2J", "first\nsecond", "tab\there", "\u{9b}31m"] {
        let status = app
            .tokens
            .clone()
            .create_access_token(pb::CreateAccessTokenRequest {
                description: description.into(),
                admin: true,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{description:?}");
        assert_eq!(
            status.message(),
            "description: must not contain control characters (newlines, tabs, escapes)",
            "{description:?}"
        );
    }
    // Over HTTP/JSON, the same rule.
    let reply = common::http::post(
        &app,
        "/v1/access_tokens",
        r#"{"description": "x\u001b]0;owned\u0007", "admin": true}"#,
    )
    .await;
    common::http::assert_error(&reply, 400, 3, "description: must not contain control");
    // Text that is merely unusual is fine.
    app.tokens
        .clone()
        .create_access_token(pb::CreateAccessTokenRequest {
            description: "Zoë's \u{202e}deploy 👩‍💻".into(),
            admin: true,
            ..Default::default()
        })
        .await
        .unwrap();
}

async fn cli(args: &[&str], database_url: &str) -> (bool, String, String) {
    let output = tokio::process::Command::new(BINARY)
        .args(args)
        .args(["--database-url", database_url])
        .output()
        .await
        .unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[tokio::test]
async fn token_list_never_prints_control_characters_sqlite() {
    token_list_never_prints_control_characters(Backend::Sqlite).await;
}

#[tokio::test]
async fn token_list_never_prints_control_characters_postgres() {
    token_list_never_prints_control_characters(Backend::Postgres).await;
}

async fn token_list_never_prints_control_characters(backend: Backend) {
    let Some(database) = FreshDatabase::create(backend).await else {
        return;
    };
    // The CLI refuses them, naming the flag.
    let (ok, stdout, stderr) = cli(
        &[
            "token",
            "create",
            "--admin",
            "--description",
            "\u{1b}[2Jgone",
        ],
        &database.url,
    )
    .await;
    assert!(!ok && stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("--description: must not contain control characters"),
        "{stderr}"
    );
    let (ok, _, stderr) = cli(
        &[
            "token",
            "create",
            "--admin",
            "--description",
            "to be edited",
        ],
        &database.url,
    )
    .await;
    assert!(ok, "{stderr}");
    // A row written by SQL (or by an older version) still cannot reach the terminal raw.
    let db = userdir::store::connect(&database.url).await.unwrap();
    db.execute_unprepared(
        "UPDATE access_tokens SET description = \
         'evil\u{1b}[2J\u{1b}]0;owned\u{7}\nforged line\u{9b}31m' \
         WHERE description = 'to be edited'",
    )
    .await
    .unwrap();
    db.close().await.unwrap();
    let (ok, list, stderr) = cli(&["token", "list"], &database.url).await;
    assert!(ok, "{stderr}");
    assert!(
        !list.chars().any(|c| c.is_control() && c != '\n'),
        "{list:?}"
    );
    assert_eq!(list.lines().count(), 2, "a header and one token: {list:?}");
    assert!(
        list.contains(r"evil\u{1b}[2J\u{1b}]0;owned\u{7}\nforged line\u{9b}31m"),
        "{list:?}"
    );
    database.drop().await;
}
