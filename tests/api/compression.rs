//! Compression on every protocol of the port, on SQLite and PostgreSQL: gRPC messages in gzip
//! and zstd both ways (and their limit after decompression), gRPC-Web's compressed frames, and
//! HTTP content coding of JSON, REST and Connect bodies and answers (their body limit after
//! decompression too). The clients send and read what grpcio, grpc-js, grpc-java, browsers and
//! Connect clients send; reqwest is built without decompression, so the tests see the bytes.

use std::io::{Read, Write};

use crate::common;

use common::api;
use common::fixtures::{self, NewUser, user_id};
use common::http::{Reply, assert_error};
use common::{Bearer, TestApp};
use prost::Message;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tonic::Code;
use tonic::codec::CompressionEncoding;
use userdir::proto::user::v1 as pb;
use userdir::proto::user::v1::user_service_client::UserServiceClient;

backend_tests!(
    grpc_round_trips_in_gzip_and_zstd,
    grpc_answers_compressed_only_when_asked,
    grpc_bombs_are_resource_exhausted,
    grpc_web_frames_may_be_compressed,
    json_bodies_may_be_compressed,
    json_bombs_are_413,
    json_codings_not_served_are_415,
    json_and_rest_answers_are_compressed_when_asked,
    connect_bodies_and_answers_may_be_compressed,
);

const MIB: usize = 1024 * 1024;
/// What a bomb inflates to: far past the 4 MiB message limit.
const BOMB_BYTES: usize = 64 * MIB;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// `bytes` in a content coding the server serves (`gzip` or `zstd`).
fn encode(coding: &str, bytes: &[u8]) -> Vec<u8> {
    match coding {
        "gzip" => gzip(bytes),
        "zstd" => zstd::encode_all(bytes, 3).unwrap(),
        other => panic!("no encoder for {other}"),
    }
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("gzip");
    out
}

/// `head`, then `BOMB_BYTES` of `x`, then `tail`, gzipped without ever holding the inflated
/// bytes: a few tens of KiB.
fn gzip_bomb(head: &[u8], tail: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(head).unwrap();
    let chunk = vec![b'x'; MIB];
    for _ in 0..BOMB_BYTES / MIB {
        encoder.write_all(&chunk).unwrap();
    }
    encoder.write_all(tail).unwrap();
    let bomb = encoder.finish().unwrap();
    assert!(bomb.len() < 256 * 1024, "{}", bomb.len());
    bomb
}

/// A gRPC (or gRPC-Web) frame: the compressed flag, big-endian length, payload.
fn frame(compressed: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![u8::from(compressed)];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The frames of a gRPC(-Web) body: (flag, payload) each.
fn frames(mut body: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while body.len() >= 5 {
        let length = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
        out.push((body[0], body[5..5 + length].to_vec()));
        body = &body[5 + length..];
    }
    assert!(body.is_empty(), "no partial frame");
    out
}

/// An HTTP answer as sent: status, headers, raw (still coded) body.
struct Raw {
    status: u16,
    headers: HeaderMap,
    body: bytes::Bytes,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The body as JSON, inflated by its Content-Encoding.
    fn json(&self) -> Value {
        let bytes = match self.header("content-encoding") {
            None => self.body.to_vec(),
            Some("gzip") => gunzip(&self.body),
            Some("zstd") => zstd::decode_all(&self.body[..]).unwrap(),
            Some(other) => panic!("content-encoding {other}"),
        };
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("JSON: {}", String::from_utf8_lossy(&bytes)))
    }

    /// As the shared helpers' reply, for `assert_error`.
    fn reply(&self) -> Reply {
        let json = self.json();
        Reply {
            status: reqwest::StatusCode::from_u16(self.status).unwrap(),
            content_type: self.header("content-type").unwrap_or_default().to_owned(),
            text: json.to_string(),
            json,
            headers: self.headers.clone(),
        }
    }
}

/// Sends `body` to `path` with the admin token and `headers`; `h2`: over HTTP/2 (prior
/// knowledge, as gRPC), else HTTP/1.1.
async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
    h2: bool,
) -> Raw {
    let client = if h2 {
        reqwest::Client::builder()
            .http2_prior_knowledge()
            .build()
            .unwrap()
    } else {
        reqwest::Client::new()
    };
    let mut request = client
        .request(method, format!("http://{}{path}", app.address))
        .bearer_auth(&app.token)
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("an HTTP answer");
    Raw {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.bytes().await.expect("a body"),
    }
}

async fn post(app: &TestApp, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Raw {
    send(app, reqwest::Method::POST, path, headers, body, false).await
}

/// A users client that compresses its requests with `encoding` and takes compressed answers.
fn compressing_users(
    app: &TestApp,
    encoding: CompressionEncoding,
) -> UserServiceClient<common::Authed> {
    UserServiceClient::with_interceptor(app.channel.clone(), Bearer::new(Some(&app.token)))
        .send_compressed(encoding)
        .accept_compressed(encoding)
}

async fn grpc_round_trips_in_gzip_and_zstd(app: TestApp) {
    let org = api::organization(&app, "compressed").await;
    let schema = api::person_schema(&app, "person").await;
    for (encoding, name) in [
        (CompressionEncoding::Gzip, "gigi"),
        (CompressionEncoding::Zstd, "zora"),
    ] {
        let mut users = compressing_users(&app, encoding);
        let mut request = api::new_user(&org, &schema, name);
        // Something worth compressing.
        request.data = Some(api::object(
            json!({"givenName": name.repeat(40), "age": 30}),
        ));
        let id = users
            .create_user(request)
            .await
            .unwrap_or_else(|status| panic!("{encoding:?}: {status:?}"))
            .into_inner()
            .user_id;
        let listed = users
            .list_users(pb::ListUsersRequest::default())
            .await
            .unwrap_or_else(|status| panic!("{encoding:?}: {status:?}"))
            .into_inner();
        assert!(
            listed.result.iter().any(|user| user.user_id == id),
            "{encoding:?}"
        );
        let got = users
            .get_user(pb::GetUserRequest { user_id: id })
            .await
            .unwrap()
            .into_inner()
            .user
            .unwrap();
        assert_eq!(
            api::json_of(got.data.as_ref().unwrap())["givenName"],
            name.repeat(40)
        );
    }

    // Health and reflection take compressed calls too.
    let mut health = tonic_health::pb::health_client::HealthClient::new(app.channel.clone())
        .send_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Gzip);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("health in gzip")
        .into_inner();
    assert_eq!(
        status.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut reflection = ServerReflectionClient::new(app.channel.clone())
        .send_compressed(CompressionEncoding::Zstd)
        .accept_compressed(CompressionEncoding::Zstd);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let answer = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection in zstd")
        .into_inner()
        .message()
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        answer.message_response,
        Some(MessageResponse::ListServicesResponse(_))
    ));
}

/// GetUser over raw HTTP/2 gRPC with `headers`: the answer's frames as sent.
async fn raw_get_user(app: &TestApp, headers: &[(&str, &str)], payload: Vec<u8>) -> Raw {
    let mut all = vec![("content-type", "application/grpc"), ("te", "trailers")];
    all.extend_from_slice(headers);
    send(
        app,
        reqwest::Method::POST,
        "/userdir.user.v1.UserService/GetUser",
        &all,
        payload,
        true,
    )
    .await
}

async fn grpc_answers_compressed_only_when_asked(app: TestApp) {
    fixtures::base(&app.db).await;
    fixtures::insert(&app.db, vec![NewUser::new(1).email("ada@example.com")]).await;
    let request = pb::GetUserRequest {
        user_id: user_id(1),
    }
    .encode_to_vec();

    // A compressed request, a compressed answer: the message flag set, in the coding asked.
    let answer = raw_get_user(
        &app,
        &[
            ("grpc-encoding", "gzip"),
            ("grpc-accept-encoding", "gzip"),
            // HTTP's coding must not be applied on top of gRPC's.
            ("accept-encoding", "gzip"),
        ],
        frame(true, &gzip(&request)),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("grpc-encoding"), Some("gzip"));
    assert_eq!(answer.header("content-encoding"), None);
    let [(flag, payload)] = &frames(&answer.body)[..] else {
        panic!("one message: {:?} {:?}", answer.headers, answer.body);
    };
    assert_eq!(*flag, 1);
    let user = pb::GetUserResponse::decode(gunzip(payload).as_slice())
        .unwrap()
        .user
        .unwrap();
    assert_eq!(user.user_id, user_id(1));

    // zstd, asked among others by a compressed call: the first one served.
    let answer = raw_get_user(
        &app,
        &[
            ("grpc-encoding", "gzip"),
            ("grpc-accept-encoding", "br, zstd, gzip"),
        ],
        frame(true, &gzip(&request)),
    )
    .await;
    assert_eq!(answer.header("grpc-encoding"), Some("zstd"));
    let [(1, payload)] = &frames(&answer.body)[..] else {
        panic!("one compressed message");
    };
    let user = pb::GetUserResponse::decode(zstd::decode_all(&payload[..]).unwrap().as_slice())
        .unwrap()
        .user
        .unwrap();
    assert_eq!(user.user_id, user_id(1));

    // Nothing advertised, or advertised by a call that came uncompressed (grpcio, grpc-js
    // and grpc-java advertise gzip on every call): identity, as grpc-go answers.
    for headers in [
        &[][..],
        &[("grpc-accept-encoding", "identity, deflate, gzip")][..],
        &[
            ("grpc-encoding", "identity"),
            ("grpc-accept-encoding", "gzip"),
        ][..],
    ] {
        let answer = raw_get_user(&app, headers, frame(false, &request)).await;
        assert_eq!(answer.header("grpc-encoding"), None, "{headers:?}");
        let [(0, payload)] = &frames(&answer.body)[..] else {
            panic!("one plain message for {headers:?}");
        };
        assert!(pb::GetUserResponse::decode(&payload[..]).is_ok());
    }

    // A coding not served is Unimplemented, naming those that are.
    let answer = raw_get_user(&app, &[("grpc-encoding", "br")], frame(true, &request)).await;
    assert_eq!(
        answer.header("grpc-status"),
        Some("12"),
        "{:?}",
        answer.headers
    );
    let accepted = answer.header("grpc-accept-encoding").unwrap();
    assert!(
        accepted.contains("gzip") && accepted.contains("zstd"),
        "{accepted}"
    );
}

async fn grpc_bombs_are_resource_exhausted(app: TestApp) {
    // A valid CreateOrganizationRequest (field 1, 64 MiB of `x`) in a gzip frame of a few
    // tens of KiB: only its inflated size can refuse it.
    let mut head = vec![0x0a];
    prost::encoding::encode_varint(BOMB_BYTES as u64, &mut head);
    let bomb = gzip_bomb(&head, b"");
    let answer = send(
        &app,
        reqwest::Method::POST,
        "/userdir.user.v1.OrganizationService/CreateOrganization",
        &[
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("grpc-encoding", "gzip"),
        ],
        frame(true, &bomb),
        true,
    )
    .await;
    assert_eq!(
        answer.header("grpc-status"),
        Some("8"),
        "{:?}",
        answer.headers
    );
    let message = percent_encoding::percent_decode_str(answer.header("grpc-message").unwrap())
        .decode_utf8_lossy()
        .into_owned();
    assert!(
        message.contains("size limit, of 4194304 bytes, exceeded while decompressing"),
        "{message}"
    );

    // The same through tonic's client, which compresses a message of 64 MiB.
    let mut organizations =
        userdir::proto::user::v1::organization_service_client::OrganizationServiceClient::with_interceptor(
            app.channel.clone(),
            Bearer::new(Some(&app.token)),
        )
        .send_compressed(CompressionEncoding::Zstd);
    let status = organizations
        .create_organization(pb::CreateOrganizationRequest {
            name: "x".repeat(BOMB_BYTES),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("4194304"), "{status:?}");

    // Under the limit inflated, the message is served (and refused by the field's own limit).
    let status = organizations
        .create_organization(pb::CreateOrganizationRequest {
            name: "x".repeat(4 * MIB - 16),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().starts_with("name: "), "{status:?}");
}

async fn grpc_web_frames_may_be_compressed(app: TestApp) {
    fixtures::base(&app.db).await;
    fixtures::insert(&app.db, vec![NewUser::new(1).email("ada@example.com")]).await;
    let request = pb::GetUserRequest {
        user_id: user_id(1),
    }
    .encode_to_vec();
    let answer = post(
        &app,
        "/userdir.user.v1.UserService/GetUser",
        &[
            ("content-type", "application/grpc-web+proto"),
            ("x-grpc-web", "1"),
            ("grpc-encoding", "gzip"),
            ("grpc-accept-encoding", "gzip"),
            ("accept-encoding", "gzip"),
        ],
        frame(true, &gzip(&request)),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("grpc-encoding"), Some("gzip"));
    // gRPC-Web's frames are coded one by one, never the body as a whole.
    assert_eq!(answer.header("content-encoding"), None);
    let frames = frames(&answer.body);
    let (flag, payload) = &frames[0];
    assert_eq!(*flag, 1);
    let user = pb::GetUserResponse::decode(gunzip(payload).as_slice())
        .unwrap()
        .user
        .unwrap();
    assert_eq!(user.user_id, user_id(1));
    let (flag, trailers) = frames.last().unwrap();
    assert_eq!(*flag, 0x80);
    assert!(
        String::from_utf8_lossy(trailers).contains("grpc-status:0"),
        "{trailers:?}"
    );
}

async fn json_bodies_may_be_compressed(app: TestApp) {
    // Each coding served: the body goes in compressed, the organization it names comes out.
    for (coding, name) in [("gzip", "gzipped"), ("zstd", "zstandard")] {
        let body = json!({ "name": name }).to_string().into_bytes();
        let answer = post(
            &app,
            "/v1/organizations",
            &[
                ("content-type", "application/json"),
                ("content-encoding", coding),
            ],
            encode(coding, &body),
        )
        .await;
        assert_eq!(answer.status, 200, "{coding}: {:?}", answer.body);
        let id = answer.json()["organizationId"].as_str().unwrap().to_owned();
        let answer = send(
            &app,
            reqwest::Method::GET,
            &format!("/v1/organizations/{id}"),
            &[],
            Vec::new(),
            false,
        )
        .await;
        assert_eq!(answer.json()["organization"]["name"], name, "{coding}");
    }

    // A body that is not what its coding says is the caller's error.
    let answer = post(
        &app,
        "/v1/organizations",
        &[
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
        ],
        b"{\"name\": \"plain\"}".to_vec(),
    )
    .await;
    assert_error(&answer.reply(), 400, 3, "the request body is unreadable");
}

async fn json_bombs_are_413(app: TestApp) {
    let bomb = gzip_bomb(br#"{"name": ""#, br#""}"#);
    let answer = post(
        &app,
        "/v1/organizations",
        &[
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
        ],
        bomb,
    )
    .await;
    assert_error(
        &answer.reply(),
        413,
        8,
        "larger than the limit of 4194304 bytes",
    );
    // The server is fine after it.
    let answer = post(
        &app,
        "/v1/organizations",
        &[
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
        ],
        gzip(br#"{"name": "after"}"#),
    )
    .await;
    assert_eq!(answer.status, 200);
}

async fn json_codings_not_served_are_415(app: TestApp) {
    for coding in ["br", "deflate", "gzip, br"] {
        let answer = post(
            &app,
            "/v1/organizations",
            &[
                ("content-type", "application/json"),
                ("content-encoding", coding),
            ],
            b"{}".to_vec(),
        )
        .await;
        assert_error(&answer.reply(), 415, 12, "is not supported");
        assert_eq!(answer.header("accept-encoding"), Some("gzip, zstd"));
    }
    // Logto's dialect answers in its own shape.
    let answer = send(
        &app,
        reqwest::Method::GET,
        "/api/users",
        &[("content-encoding", "br")],
        Vec::new(),
        false,
    )
    .await;
    assert_eq!(answer.status, 415);
    assert!(
        answer.json().to_string().contains("is not supported"),
        "{}",
        answer.json()
    );
}

async fn json_and_rest_answers_are_compressed_when_asked(app: TestApp) {
    fixtures::base(&app.db).await;
    fixtures::insert(
        &app.db,
        (1..=5)
            .map(|n| NewUser::new(n).email(&format!("user{n}@example.com")))
            .collect(),
    )
    .await;
    for path in [
        "/v1/users/_search",
        "/api/users?page_size=5",
        "/identity/v1/users",
        "/openapi.json",
    ] {
        let method = if path.starts_with("/v1/users/_search") {
            reqwest::Method::POST
        } else {
            reqwest::Method::GET
        };
        let body = if method == reqwest::Method::POST {
            b"{}".to_vec()
        } else {
            Vec::new()
        };
        let headers = [("content-type", "application/json")];
        let plain = send(&app, method.clone(), path, &headers, body.clone(), false).await;
        assert_eq!(plain.status, 200, "{path}");
        assert_eq!(plain.header("content-encoding"), None, "{path}");
        for coding in ["gzip", "zstd"] {
            let headers = [
                ("content-type", "application/json"),
                ("accept-encoding", coding),
            ];
            let coded = send(&app, method.clone(), path, &headers, body.clone(), false).await;
            assert_eq!(coded.status, 200, "{path}");
            assert_eq!(coded.header("content-encoding"), Some(coding), "{path}");
            assert!(coded.body.len() < plain.body.len(), "{path}");
            assert_eq!(coded.json(), plain.json(), "{path} {coding}");
        }
    }
}

async fn connect_bodies_and_answers_may_be_compressed(app: TestApp) {
    fixtures::base(&app.db).await;
    fixtures::insert(&app.db, vec![NewUser::new(1).email("ada@example.com")]).await;
    let get_user = "/userdir.user.v1.UserService/GetUser";
    let body = json!({"userId": user_id(1)}).to_string().into_bytes();
    let answer = post(
        &app,
        get_user,
        &[
            ("content-type", "application/json"),
            ("connect-protocol-version", "1"),
            ("content-encoding", "gzip"),
            ("accept-encoding", "gzip"),
        ],
        gzip(&body),
    )
    .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.header("content-encoding"), Some("gzip"));
    assert_eq!(answer.json()["user"]["userId"], user_id(1));

    // Binary protobuf in zstd.
    let request = pb::GetUserRequest {
        user_id: user_id(1),
    }
    .encode_to_vec();
    let answer = post(
        &app,
        get_user,
        &[
            ("content-type", "application/proto"),
            ("content-encoding", "zstd"),
        ],
        encode("zstd", &request),
    )
    .await;
    assert_eq!(answer.status, 200);
    let user = pb::GetUserResponse::decode(&answer.body[..]).unwrap();
    assert_eq!(user.user.unwrap().user_id, user_id(1));

    // A bomb is resource_exhausted at the message limit.
    let bomb = gzip_bomb(br#"{"name": ""#, br#""}"#);
    let answer = post(
        &app,
        "/userdir.user.v1.OrganizationService/CreateOrganization",
        &[
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
        ],
        bomb,
    )
    .await;
    assert_eq!(answer.status, 429, "{:?}", answer.body);
    let error = answer.json();
    assert_eq!(error["code"], "resource_exhausted");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("larger than the limit of 4194304 bytes"),
        "{error}"
    );

    // A coding not served: Connect's unimplemented, naming those that are.
    let answer = post(
        &app,
        get_user,
        &[
            ("content-type", "application/json"),
            ("content-encoding", "br"),
        ],
        body,
    )
    .await;
    assert_eq!(answer.status, 415);
    assert_eq!(answer.json()["code"], "unimplemented");
    assert_eq!(answer.header("accept-encoding"), Some("gzip, zstd"));
}
