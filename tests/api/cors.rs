//! CORS through the real server, on SQLite and PostgreSQL: off by default (no CORS header at
//! all), and with `--cors-allowed-origin` preflights answered before the gate and its rate
//! limits, and every answer to an allowed origin (gRPC-Web, Connect, JSON, refusals) carrying the
//! CORS headers; other origins get none.

use std::num::NonZeroU32;

use crate::common;

use common::TestApp;
use common::fixtures::{self, NewUser, user_id};
use prost::Message;
use reqwest::header::HeaderMap;
use userdir::auth::rate_limit::{Rate, RateLimitSettings};
use userdir::config::Settings;
use userdir::proto::user::v1 as pb;

backend_tests!(
    without_the_flag_there_are_no_cors_headers,
    preflights_from_allowed_origins_are_answered_before_the_gate,
    other_origins_get_no_cors_headers,
    answers_to_allowed_origins_carry_cors_headers,
);

const ALLOWED: &str = "https://app.example.com";
const OTHER: &str = "https://evil.example.com";
const GET_USER: &str = "/userdir.user.v1.UserService/GetUser";

/// A server over the same database allowing [`ALLOWED`] (and another origin), with a per-peer
/// budget of 2 requests (then 1 a second).
async fn with_cors(app: &TestApp) -> TestApp {
    with_cors_and(
        app,
        RateLimitSettings {
            per_peer: Some(Rate {
                per_second: NonZeroU32::MIN,
                burst: NonZeroU32::new(2).unwrap(),
            }),
            ..RateLimitSettings::default()
        },
    )
    .await
}

async fn with_cors_and(app: &TestApp, rate_limits: RateLimitSettings) -> TestApp {
    app.with_settings(Settings {
        cors_allowed_origins: vec![
            "http://localhost:3000".parse().unwrap(),
            ALLOWED.parse().unwrap(),
        ],
        rate_limits,
        ..Settings::default()
    })
    .await
}

struct Answer {
    status: u16,
    headers: HeaderMap,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    fn cors_headers(&self) -> Vec<&str> {
        self.headers
            .keys()
            .map(|name| name.as_str())
            .filter(|name| name.starts_with("access-control-"))
            .collect()
    }

    /// A comma-separated header's items, in lower case.
    fn list(&self, name: &str) -> Vec<String> {
        self.header(name)
            .unwrap_or_default()
            .split(',')
            .map(|item| item.trim().to_ascii_lowercase())
            .filter(|item| !item.is_empty())
            .collect()
    }
}

/// A browser's preflight for a gRPC-Web POST to GetUser from `origin`.
async fn preflight(app: &TestApp, origin: &str) -> Answer {
    let response = reqwest::Client::new()
        .request(
            reqwest::Method::OPTIONS,
            format!("http://{}{GET_USER}", app.address),
        )
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,x-grpc-web,x-user-agent,grpc-timeout",
        )
        .send()
        .await
        .unwrap();
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
    }
}

/// A gRPC-Web GetUser from `origin` with `token`.
async fn grpc_web(app: &TestApp, origin: &str, token: Option<&str>) -> Answer {
    let message = pb::GetUserRequest {
        user_id: user_id(1),
    }
    .encode_to_vec();
    let mut body = vec![0];
    body.extend_from_slice(&(message.len() as u32).to_be_bytes());
    body.extend_from_slice(&message);
    let mut request = reqwest::Client::new()
        .post(format!("http://{}{GET_USER}", app.address))
        .header("origin", origin)
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
    }
}

async fn without_the_flag_there_are_no_cors_headers(app: TestApp) {
    let answer = preflight(&app, ALLOWED).await;
    // Just an OPTIONS without a credential, which the gate refuses.
    assert_eq!(answer.status, 401);
    assert!(answer.cors_headers().is_empty(), "{:?}", answer.headers);
    fixtures::base(&app.db).await;
    fixtures::insert(&app.db, vec![NewUser::new(1)]).await;
    let answer = grpc_web(&app, ALLOWED, Some(&app.token)).await;
    assert_eq!(answer.status, 200);
    assert!(answer.cors_headers().is_empty(), "{:?}", answer.headers);
}

async fn preflights_from_allowed_origins_are_answered_before_the_gate(app: TestApp) {
    let app = with_cors(&app).await;
    // More preflights than the peer's budget of 2: none is counted, none is refused.
    for _ in 0..5 {
        let answer = preflight(&app, ALLOWED).await;
        assert_eq!(answer.status, 200, "{:?}", answer.headers);
        assert_eq!(answer.header("access-control-allow-origin"), Some(ALLOWED));
        assert!(
            answer
                .list("access-control-allow-methods")
                .contains(&"post".to_owned())
        );
        let allowed = answer.list("access-control-allow-headers");
        for header in [
            "authorization",
            "content-type",
            "x-grpc-web",
            "x-user-agent",
            "grpc-timeout",
            "connect-protocol-version",
            "connect-timeout-ms",
            "x-request-id",
            "traceparent",
        ] {
            assert!(
                allowed.contains(&header.to_owned()),
                "{header}: {allowed:?}"
            );
        }
        assert!(answer.header("access-control-max-age").is_some());
        assert_eq!(answer.header("access-control-allow-credentials"), None);
    }
    // The budget is untouched: a real call is served.
    fixtures::base(&app.db).await;
    fixtures::insert(&app.db, vec![NewUser::new(1)]).await;
    let answer = grpc_web(&app, ALLOWED, Some(&app.token)).await;
    assert_eq!(answer.header("grpc-status"), None, "{:?}", answer.headers);
    assert_eq!(answer.status, 200);
    // The other allowed origin is answered with its own name.
    let answer = preflight(&app, "http://localhost:3000").await;
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some("http://localhost:3000")
    );
}

async fn other_origins_get_no_cors_headers(app: TestApp) {
    // No rate limits: their preflights reach the gate and count, as without CORS.
    let app = with_cors_and(&app, RateLimitSettings::default()).await;
    for origin in [OTHER, "https://app.example.com.evil.example", "null"] {
        let answer = preflight(&app, origin).await;
        // Judged by the gate as any OPTIONS: no credential.
        assert_eq!(answer.status, 401, "{origin}");
        assert!(
            answer.cors_headers().is_empty(),
            "{origin}: {:?}",
            answer.headers
        );
    }
    fixtures::base(&app.db).await;
    fixtures::insert(&app.db, vec![NewUser::new(1)]).await;
    let answer = grpc_web(&app, OTHER, Some(&app.token)).await;
    assert_eq!(answer.status, 200);
    assert!(answer.cors_headers().is_empty(), "{:?}", answer.headers);
}

async fn answers_to_allowed_origins_carry_cors_headers(app: TestApp) {
    let app = with_cors(&app).await;
    fixtures::base(&app.db).await;
    fixtures::insert(&app.db, vec![NewUser::new(1)]).await;
    let exposed_all = |answer: &Answer| {
        assert_eq!(answer.header("access-control-allow-origin"), Some(ALLOWED));
        let exposed = answer.list("access-control-expose-headers");
        for header in [
            "grpc-status",
            "grpc-message",
            "grpc-status-details-bin",
            "x-request-id",
            "retry-after",
        ] {
            assert!(
                exposed.contains(&header.to_owned()),
                "{header}: {exposed:?}"
            );
        }
    };
    let answer = grpc_web(&app, ALLOWED, Some(&app.token)).await;
    assert_eq!(answer.status, 200);
    exposed_all(&answer);

    // A refusal too, so that the page's script can read it: no credential, then the peer's
    // budget spent (Retry-After readable).
    let answer = grpc_web(&app, ALLOWED, None).await;
    assert_eq!(answer.header("grpc-status"), Some("16"));
    exposed_all(&answer);
    let mut limited = None;
    for _ in 0..5 {
        let answer = grpc_web(&app, ALLOWED, Some(&app.token)).await;
        if answer.header("grpc-status") == Some("8") {
            limited = Some(answer);
            break;
        }
    }
    let limited = limited.expect("the peer's budget runs out");
    exposed_all(&limited);
    assert!(limited.header("retry-after").is_some());
}
