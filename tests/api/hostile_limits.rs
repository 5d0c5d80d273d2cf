//! Request limits through the real interfaces, on SQLite and PostgreSQL: message and body size,
//! protobuf nesting, request heads, deadlines, and the largest configurable queries and texts.
//! Every limit is a clear status (never Internal or 500), and the server answers afterwards.

use crate::common;

use common::TestApp;
use common::api::{self, object};
use common::http::{self as h, assert_error, read_answer};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tonic::Code;
use userdir::proto::user::v1 as pb;

backend_tests!(
    oversized_grpc_messages_are_resource_exhausted,
    oversized_json_bodies_are_413,
    nesting_beyond_the_protobuf_limit_is_invalid_argument,
    oversized_request_heads_are_refused_cleanly,
    a_shorter_client_deadline_is_honoured_over_grpc,
    a_shorter_client_deadline_is_honoured_over_json,
    the_largest_configurable_queries_run,
    the_longest_configurable_texts_fit_every_index,
);

const MIB: usize = 1024 * 1024;

/// The server still answers both gRPC and HTTP/JSON.
async fn still_answers(app: &TestApp) {
    app.users
        .clone()
        .list_users(pb::ListUsersRequest::default())
        .await
        .expect("ListUsers after the hostile request");
    let reply = h::get(app, "/v1/users?query.limit=1").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

/// Sends `head` (without the blank line) and `body` over one HTTP/1.1 connection and reads
/// the answer: status and body.
async fn raw_http(app: &TestApp, head: &str, body: &[u8]) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
    stream
        .write_all(
            format!(
                "{head}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
                app.token
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    // The server may answer (and close) before it has read everything.
    let _ = stream.write_all(body).await;
    read_answer(&mut stream).await
}

async fn oversized_grpc_messages_are_resource_exhausted(app: TestApp) {
    let huge = "x".repeat(5 * MIB);
    let status = app
        .organizations
        .clone()
        .create_organization(pb::CreateOrganizationRequest { name: huge.clone() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("4194304"), "{status:?}");

    let mut request = api::new_user("org", "schema", "gigi");
    request.data = Some(object(json!({"givenName": "Gigi", "cv": huge})));
    let status = app.users.clone().create_user(request).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    let queries = (0..300_000)
        .map(|_| common::queries::email("x@example.com", common::queries::M::Contains))
        .collect();
    let status = app
        .users
        .clone()
        .list_users(common::queries::matching(queries))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    // Just under the limit is fine (and then refused by the field's own limit).
    let status = app
        .organizations
        .clone()
        .create_organization(pb::CreateOrganizationRequest {
            name: "x".repeat(4 * MIB - 16),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status
            .message()
            .starts_with("name: must be at most 200 characters")
    );
    still_answers(&app).await;
}

async fn oversized_json_bodies_are_413(app: TestApp) {
    let body = format!(r#"{{"name": "{}"}}"#, "x".repeat(5 * MIB));
    let reply = h::post(&app, "/v1/organizations", &body).await;
    assert_error(&reply, 413, 8, "larger than the limit of 4194304 bytes");

    // Without a Content-Length: chunked, counted while reading.
    let chunk = "x".repeat(MIB);
    let mut chunked = Vec::new();
    chunked.extend_from_slice(b"b\r\n{\"name\": \"x\r\n");
    for _ in 0..5 {
        chunked.extend_from_slice(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes());
    }
    chunked.extend_from_slice(b"2\r\n\"}\r\n0\r\n\r\n");
    let (status, text) = raw_http(
        &app,
        "POST /v1/organizations HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked",
        &chunked,
    )
    .await;
    assert_eq!(status, 413, "{text}");
    assert!(text.contains(r#""code":8"#), "{text}");

    // Under the limit as JSON, over it as protobuf: every `1` of a Struct list costs 11 bytes.
    // (60,000 of them, beside a long string, also stay under the limit on JSON values.)
    let ones = vec!["1"; 60_000].join(",");
    let pad = "x".repeat(3_700_000);
    let body = format!(
        r#"{{"organizationId": "o", "schemaId": "s", "data": {{"pad": "{pad}", "list": [{ones}]}}}}"#
    );
    assert!(body.len() < 4 * MIB);
    let reply = h::post(&app, "/v1/users", &body).await;
    assert_error(
        &reply,
        413,
        8,
        "as protobuf, more than the limit of 4194304 bytes",
    );
    still_answers(&app).await;
}

/// `depth` notQuery levels around an email query.
fn nested_query(depth: usize) -> pb::SearchQuery {
    let mut query = common::queries::email("x", common::queries::M::Equals);
    for _ in 0..depth {
        query = common::queries::not(query);
    }
    query
}

fn nested_struct(depth: usize) -> prost_types::Struct {
    let mut inner = prost_types::Struct::default();
    for _ in 0..depth {
        let mut outer = prost_types::Struct::default();
        outer.fields.insert(
            "a".into(),
            prost_types::Value {
                kind: Some(prost_types::value::Kind::StructValue(inner)),
            },
        );
        inner = outer;
    }
    inner
}

async fn nesting_beyond_the_protobuf_limit_is_invalid_argument(app: TestApp) {
    // Deeper than prost's recursion limit (100 messages): the message cannot be decoded.
    let status = app
        .users
        .clone()
        .list_users(common::queries::matching(vec![nested_query(80)]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("recursion limit"), "{status:?}");
    // Decodable, but deeper than the query limit: named by its path.
    let status = app
        .users
        .clone()
        .list_users(common::queries::matching(vec![nested_query(30)]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("nested at most 10 levels deep"),
        "{status:?}"
    );

    let mut request = api::new_user("org", "schema", "gigi");
    request.data = Some(nested_struct(60));
    let status = app.users.clone().create_user(request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    // Over JSON: within serde_json's nesting limit, beyond prost's; the binder refuses it by
    // path before any protobuf is encoded.
    let mut query = json!({"emailQuery": {"address": "x"}});
    for _ in 0..60 {
        query = json!({"notQuery": {"query": query}});
    }
    let body = json!({"queries": [query]}).to_string();
    let reply = h::post(&app, "/v1/users/_search", &body).await;
    assert_error(&reply, 400, 3, "messages may nest at most 100 levels deep");
    still_answers(&app).await;
}

async fn oversized_request_heads_are_refused_cleanly(app: TestApp) {
    // HTTP/1.1: a request line over the 64 KiB head limit, and too many headers.
    let long_path = format!("/v1/users?query.limit=1&x={}", "a".repeat(70 * 1024));
    let (status, _) = h::raw_get(&app, &long_path).await;
    assert_eq!(status, 431);
    let many: String = (0..200).map(|i| format!("\r\nx-h{i}: v")).collect();
    let (status, _) = raw_http(
        &app,
        &format!("GET /v1/users HTTP/1.1\r\nHost: t{many}"),
        b"",
    )
    .await;
    assert_eq!(status, 431);
    // Under the limit is fine.
    let path = format!("/v1/users?query.limit=1&x={}", "a".repeat(30 * 1024));
    let (status, body) = h::raw_get(&app, &path).await;
    assert_eq!(status, 400, "an unknown parameter, not the head: {body}");

    // HTTP/2 (gRPC): metadata over the header list limit is ResourceExhausted, naming the
    // limit; the connection and server stay usable.
    let padded = |bytes: usize| {
        let mut request = tonic::Request::new(pb::ListUsersRequest::default());
        request
            .metadata_mut()
            .insert("x-padding", "a".repeat(bytes).parse().unwrap());
        request
    };
    let status = app
        .users
        .clone()
        .list_users(padded(70 * 1024))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status
            .message()
            .contains("the server's limit is 65536 (--max-header-bytes)"),
        "{status:?}"
    );
    app.users
        .clone()
        .list_users(padded(30 * 1024))
        .await
        .unwrap();
    // Past twice the limit h2 cuts the stream off itself, before any service: a bare 431,
    // which clients can only report as Unknown naming the HTTP status.
    let status = app
        .users
        .clone()
        .list_users(padded(140 * 1024))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unknown, "{status:?}");
    assert!(status.message().contains("431"), "{status:?}");
    // HTTP/2 JSON: 431 with the error body.
    let reply = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap()
        .get(format!("http://{}/v1/users", app.address))
        .bearer_auth(&app.token)
        .header("x-padding", "a".repeat(70 * 1024))
        .send()
        .await
        .expect("an HTTP/2 answer");
    assert_eq!(reply.status(), 431);
    let json: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(json["code"], 8, "{json}");
    still_answers(&app).await;
}

/// Holds the write lock of the event log (as every write does) until dropped.
async fn lock_writes(app: &TestApp) -> userdir::store::writes::unit::UnitOfWork {
    userdir::store::writes::unit::UnitOfWork::begin(&instance(app))
        .await
        .expect("take the write lock")
}

/// A unary gRPC call sent over plain HTTP/2, so that only the server enforces `grpc-timeout`
/// (tonic's client would cancel on its own at the same moment): the trailers-only answer's
/// status code and message.
async fn raw_grpc_call(
    app: &TestApp,
    path: &str,
    message: &impl prost::Message,
    grpc_timeout: &str,
) -> (String, String) {
    let payload = message.encode_to_vec();
    let mut body = vec![0];
    body.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    body.extend_from_slice(&payload);
    let response = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap()
        .post(format!("http://{}{path}", app.address))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-timeout", grpc_timeout)
        .bearer_auth(&app.token)
        .body(body)
        .send()
        .await
        .expect("an HTTP/2 answer");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| {
                percent_encoding::percent_decode(v.as_bytes())
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .unwrap_or_default()
    };
    (header("grpc-status"), header("grpc-message"))
}

async fn a_shorter_client_deadline_is_honoured_over_grpc(app: TestApp) {
    let lock = lock_writes(&app).await;
    // The write waits for the lock, which is held until the answer arrives: it cannot finish
    // before its deadline, whatever the machine's speed.
    let (code, message) = raw_grpc_call(
        &app,
        "/userdir.user.v1.OrganizationService/CreateOrganization",
        &pb::CreateOrganizationRequest {
            name: "Late".into(),
        },
        "300m",
    )
    .await;
    assert_eq!(code, "4", "{message}");
    assert_eq!(
        message,
        "the request did not finish within 300ms (the client's grpc-timeout)"
    );
    lock.rollback().await.unwrap();

    // Nothing was written, and writes work again.
    let organizations = app
        .organizations
        .clone()
        .list_organizations(pb::ListOrganizationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(organizations.result.is_empty(), "{organizations:?}");
    api::organization(&app, "On time").await;
    still_answers(&app).await;
}

async fn a_shorter_client_deadline_is_honoured_over_json(app: TestApp) {
    // A body that never arrives: the request cannot finish before its deadline.
    let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
    stream
        .write_all(
            format!(
                "POST /v1/organizations HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
                 Authorization: Bearer {}\r\nContent-Length: 100\r\nGrpc-Timeout: 200m\r\n\r\n\
                 {{\"name\": ",
                app.token
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let (status, body) = read_answer(&mut stream).await;
    assert_eq!(status, 504, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("a JSON error body");
    assert_eq!(json["code"], 4, "{body}");
    assert_eq!(
        json["message"],
        "the request did not finish within 200ms (the client's grpc-timeout)"
    );
    still_answers(&app).await;
}

/// Searches at the largest configurable depth (32) and leaf count (500), parsed by the
/// ZITADEL dialect and run on the database: neither SQLite's expression depth limit nor
/// PostgreSQL's stack gets in the way.
async fn the_largest_configurable_queries_run(app: TestApp) {
    use userdir::api::grpc::search as zitadel;
    use userdir::query::{PageLimits, QueryLimits};
    let limits = QueryLimits {
        max_depth: userdir::limits::MAX_QUERY_DEPTH_BOUND,
        max_leaves: userdir::limits::MAX_QUERY_LEAVES_BOUND,
        max_text_chars: userdir::limits::MAX_TEXT_CHARS_BOUND,
    };
    let leaf = |i: usize| {
        let text = format!("%_\\'{i}");
        match i % 4 {
            0 => common::queries::username(&text, common::queries::M::ContainsIgnoreCase, None),
            1 => common::queries::email(&text, common::queries::M::EndsWith),
            2 => common::queries::phone("+41%", common::queries::M::StartsWith),
            _ => common::queries::schema_type(&text, common::queries::M::EqualsIgnoreCase),
        }
    };
    // 30 levels of and/not (15 of them with a leaf) around an or of the other 485 leaves:
    // the or is at depth 31, its leaves at depth 32.
    let mut query = common::queries::or((15..500).map(leaf).collect());
    for i in 0..30 {
        query = if i % 2 == 0 {
            common::queries::not(query)
        } else {
            common::queries::and(vec![leaf(i / 2), query])
        };
    }
    let request = common::queries::matching(vec![query.clone()]);
    let search = zitadel::parse_list_users(&request, PageLimits::default(), limits)
        .expect("within the largest limits");
    let searches = userdir::limits::regex_searches::RegexSearches::new(1);
    let page = userdir::store::reads::users::list_users(&instance(&app), &searches, &search)
        .await
        .expect("the database runs the largest search");
    assert_eq!(page.total, 0);

    // One more leaf or level is refused by the parser.
    let too_many = common::queries::matching(vec![query.clone(), leaf(0)]);
    let error = zitadel::parse_list_users(&too_many, PageLimits::default(), limits).unwrap_err();
    assert!(
        error.to_string().contains("at most 500 leaf queries"),
        "{error}"
    );
    let too_deep = common::queries::matching(vec![common::queries::not(query)]);
    let error = zitadel::parse_list_users(&too_deep, PageLimits::default(), limits).unwrap_err();
    assert!(error.to_string().contains("at most 32 levels"), "{error}");
}

/// `n` characters of four UTF-8 bytes each that do not compress (PostgreSQL compresses index
/// entries, which would hide an oversized one).
fn incompressible(n: usize, seed: u32) -> String {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            char::from_u32(0x20000 + (state >> 8) % 0xA000).unwrap()
        })
        .collect()
}

/// Values at the largest configurable text length (255 characters), and ids at theirs (200),
/// all of four bytes per character: every index (usernames, IdP links, names) takes them on
/// PostgreSQL, whose B-tree entries may not exceed 2704 bytes.
async fn the_longest_configurable_texts_fit_every_index(app: TestApp) {
    use userdir::command::authenticators::{self, NewIdpLink, NewUsername};
    use userdir::command::{directory, users};
    let max = userdir::limits::MAX_TEXT_CHARS_BOUND;
    let (org, _) = directory::create_organization(&instance(&app), incompressible(max, 1))
        .await
        .unwrap();
    let (schema, _) = directory::create_schema(
        &instance(&app),
        incompressible(max, 2),
        json!({"type": "object"}),
    )
    .await
    .unwrap();
    directory::create_role(
        &instance(&app),
        incompressible(max, 3),
        incompressible(1000, 4),
    )
    .await
    .unwrap();
    let created = users::create(
        &instance(&app),
        &userdir::limits::hashing::Hashing::new(Default::default()).unwrap(),
        users::NewUser {
            organization_id: org.clone(),
            schema_id: schema,
            data: json!({"givenName": incompressible(max, 5), "familyName": incompressible(max, 6)}),
            email: None,
            phone: None,
            usernames: vec![NewUsername {
                username: incompressible(max, 7),
                organization_specific: true,
            }],
            password: None,
        },
    )
    .await
    .expect("the longest texts are stored");
    authenticators::add_idp_link(
        &instance(&app),
        &created.user_id,
        NewIdpLink {
            idp_id: incompressible(200, 8),
            idp_name: incompressible(max, 9),
            linked_user_id: incompressible(200, 10),
            linked_username: incompressible(max, 11),
        },
    )
    .await
    .expect("the longest IdP link is stored");
    let user = api::get_user(&app, &created.user_id).await;
    assert_eq!(
        api::json_of(user.data.as_ref().unwrap())["givenName"],
        incompressible(max, 5)
    );
}

/// The directory as the operator sees it (instance-wide), for writes behind the API's back.
fn instance(app: &TestApp) -> userdir::store::ScopedDb {
    userdir::store::ScopedDb::instance(app.db.clone())
}

/// Past `max_concurrent_requests` in progress, one more request is Unavailable at once (HTTP
/// 503 with `Retry-After` over JSON) instead of queueing; when the requests in progress end, the
/// server serves again. Two imports whose client streams stay open hold the two places. The
/// shedding layer touches no storage: SQLite only.
#[tokio::test]
async fn requests_past_the_concurrency_limit_are_shed() {
    use userdir::config::Settings;
    common::run(common::Backend::Sqlite, |app| async move {
        let server = app
            .with_settings(Settings {
                limits: userdir::limits::RequestLimits {
                    max_concurrent_requests: 2,
                    ..Default::default()
                },
                ..Settings::default()
            })
            .await;
        let hold = || {
            let (records, stream) = tokio::sync::mpsc::channel::<pb::ImportUserRecord>(1);
            let mut users = server.users.clone();
            let call = tokio::spawn(async move {
                users
                    .import_users(tokio_stream::wrappers::ReceiverStream::new(stream))
                    .await
            });
            (records, call)
        };
        let mut held = vec![hold(), hold()];
        let missing = || pb::GetUserRequest {
            user_id: "nobody".into(),
        };
        // Once both imports are in progress a third request is shed. Until then a probe may
        // take a place while an import starts, which is shed in turn: it is sent again.
        let mut shed = None;
        for _ in 0..250 {
            for slot in held.iter_mut() {
                if slot.1.is_finished() {
                    let ended = std::mem::replace(slot, hold());
                    let status = ended.1.await.unwrap().unwrap_err();
                    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                }
            }
            match server.users.clone().get_user(missing()).await {
                Err(status) if status.code() == Code::Unavailable => {
                    shed = Some(status);
                    break;
                }
                Err(status) => assert_eq!(status.code(), Code::NotFound, "{status:?}"),
                Ok(reply) => panic!("nobody found: {reply:?}"),
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let shed = shed.expect("a request past the limit is shed");
        assert!(
            shed.message().contains("--max-concurrent-requests"),
            "{shed:?}"
        );
        let reply = reqwest::Client::new()
            .get(format!("http://{}/v1/users/nobody", server.address))
            .bearer_auth(&server.token)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 503);
        assert_eq!(reply.headers()["retry-after"], "1");
        let body: serde_json::Value = reply.json().await.unwrap();
        assert_eq!(body["code"], 14, "{body}");

        // The held requests end (empty imports), and the server serves again.
        for (records, call) in held {
            drop(records);
            call.await.unwrap().expect("an empty import succeeds");
        }
        let status = server.users.clone().get_user(missing()).await.unwrap_err();
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
    })
    .await;
}
