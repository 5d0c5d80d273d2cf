//! The Connect protocol on the gRPC port, on SQLite and PostgreSQL: unary calls in JSON and
//! binary protobuf answer what gRPC answers, errors in Connect's format with the code's HTTP
//! status, `Connect-Timeout-Ms` as the deadline, and 415 for any other content type on a method
//! path. The curl calls of the README, as a client would send them (reqwest, HTTP/1.1 and h2c).

use crate::common;

use common::TestApp;
use common::api;
use common::fixtures::{self, EMPLOYEE, NewUser, ORG_B, user_id};
use common::http::{canonical_json, read_answer};
use prost::Message;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use userdir::domain::UserState;
use userdir::proto::user::v1 as pb;

backend_tests!(
    json_list_users_with_a_nested_query_answers_what_grpc_answers,
    json_create_user_then_get_user,
    proto_get_user_answers_what_grpc_answers,
    service_errors_are_connect_errors,
    the_gate_judges_connect_calls_as_grpc_calls,
    streaming_methods_and_unknown_methods_are_unimplemented,
    connect_timeout_ms_is_the_deadline,
    other_content_types_on_a_method_path_are_415,
    grpc_is_unchanged_beside_connect,
);

const LIST_USERS: &str = "/userdir.user.v1.UserService/ListUsers";
const GET_USER: &str = "/userdir.user.v1.UserService/GetUser";
const CREATE_USER: &str = "/userdir.user.v1.UserService/CreateUser";

/// A Connect answer: HTTP status, headers and body (JSON when it is JSON, else Null).
struct Answer {
    status: u16,
    headers: HeaderMap,
    bytes: bytes::Bytes,
    json: Value,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// Asserts a Connect error: `status`, JSON, `code`, and a message containing `needle`.
    fn assert_error(&self, status: u16, code: &str, needle: &str) {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(self.headers["content-type"], "application/json");
        assert_eq!(self.json["code"], code, "{}", self.text());
        let message = self.json["message"].as_str().expect("a message");
        assert!(
            message.contains(needle),
            "{message:?} should name {needle:?}"
        );
        assert!(self.headers.get("grpc-status").is_none());
    }
}

/// POSTs `body` to `path` with `content_type`, the bearer `token` (None: anonymous) and the
/// Connect protocol version header, over `client`.
async fn post_as(
    client: &reqwest::Client,
    app: &TestApp,
    token: Option<&str>,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Answer {
    let mut request = client
        .post(format!("http://{}{path}", app.address))
        .header("connect-protocol-version", "1")
        .body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("an HTTP answer");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("a body");
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        bytes,
        json,
    }
}

/// A Connect JSON call with the admin token.
async fn call_json(app: &TestApp, path: &str, body: Value) -> Answer {
    post_as(
        &reqwest::Client::new(),
        app,
        Some(&app.token),
        path,
        Some("application/json"),
        serde_json::to_vec(&body).unwrap(),
    )
    .await
}

/// A Connect binary call with the admin token.
async fn call_proto(app: &TestApp, path: &str, request: &impl Message) -> Answer {
    post_as(
        &reqwest::Client::new(),
        app,
        Some(&app.token),
        path,
        Some("application/proto"),
        request.encode_to_vec(),
    )
    .await
}

async fn some_users(app: &TestApp) {
    fixtures::base(&app.db).await;
    fixtures::insert(
        &app.db,
        vec![
            NewUser::new(1).email("ada@example.com"),
            NewUser::new(2)
                .org(ORG_B)
                .phone("+41791234567")
                .state(UserState::Locked),
            NewUser::new(3).email("zoe@example.com").customer(),
            NewUser::new(4),
            NewUser::new(5).email("bob@example.com"),
        ],
    )
    .await;
}

fn ids(reply: &Value) -> Vec<&str> {
    reply["result"]
        .as_array()
        .map(|users| {
            users
                .iter()
                .map(|u| u["userId"].as_str().unwrap())
                .collect()
        })
        .unwrap_or_default()
}

async fn json_list_users_with_a_nested_query_answers_what_grpc_answers(app: TestApp) {
    some_users(&app).await;
    // Employees, or anyone whose email does not start with "zoe" (any case), oldest first.
    let body = json!({
        "query": {"limit": 3, "asc": true},
        "sortingColumn": "FIELD_NAME_CREATION_DATE",
        "queries": [{"orQuery": {"queries": [
            {"schemaIDQuery": {"id": EMPLOYEE}},
            {"notQuery": {"query": {"emailQuery": {
                "address": "ZOE", "method": "TEXT_QUERY_METHOD_STARTS_WITH_IGNORE_CASE"}}}}
        ]}}]
    });
    let answer = call_json(&app, LIST_USERS, body.clone()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.headers["content-type"], "application/json");
    let request: pb::ListUsersRequest = {
        // The same request as gRPC sends it: decoded from the JSON by the descriptors.
        let pool = prost_reflect::DescriptorPool::decode(userdir::proto::DESCRIPTOR_SET).unwrap();
        let descriptor = pool
            .get_message_by_name("userdir.user.v1.ListUsersRequest")
            .unwrap();
        let message = prost_reflect::DynamicMessage::deserialize(descriptor, &body).unwrap();
        pb::ListUsersRequest::decode(message.encode_to_vec().as_slice()).unwrap()
    };
    let grpc = app
        .users
        .clone()
        .list_users(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        answer.json,
        canonical_json(&grpc, "userdir.user.v1.ListUsersResponse")
    );
    assert_eq!(ids(&answer.json), [user_id(1), user_id(2), user_id(4)]);
    assert_eq!(answer.json["details"]["totalResult"], "4");
}

async fn json_create_user_then_get_user(app: TestApp) {
    let org = api::organization(&app, "Acme").await;
    let schema = api::person_schema(&app, "person").await;
    let created = call_json(
        &app,
        CREATE_USER,
        json!({
            "organizationId": org,
            "schemaId": schema,
            "data": {"givenName": "Ann", "age": 7},
            "usernames": [{"username": "ann"}],
            "contact": {"email": {"address": "ann@example.com", "isVerified": true}}
        }),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.text());
    let id = created.json["userId"]
        .as_str()
        .expect("the new id")
        .to_owned();
    assert!(created.json["details"]["sequence"].as_str().is_some());

    let got = call_json(&app, GET_USER, json!({"userId": id})).await;
    assert_eq!(got.status, 200, "{}", got.text());
    let user = &got.json["user"];
    assert_eq!(user["userId"], id.as_str());
    assert_eq!(user["details"]["resourceOwner"], org.as_str());
    assert_eq!(user["data"], json!({"givenName": "Ann", "age": 7}));
    assert_eq!(user["contact"]["email"]["address"], "ann@example.com");
    assert_eq!(user["authenticators"]["usernames"][0]["username"], "ann");
    // gRPC reads the same user.
    let grpc = api::get_user(&app, &id).await;
    assert_eq!(
        got.json,
        canonical_json(
            &pb::GetUserResponse { user: Some(grpc) },
            "userdir.user.v1.GetUserResponse"
        )
    );

    // The same username again is the service's AlreadyExists, as Connect writes it.
    let again = call_json(
        &app,
        CREATE_USER,
        json!({
            "organizationId": org,
            "schemaId": schema,
            "data": {"givenName": "Ann"},
            "usernames": [{"username": "ANN"}]
        }),
    )
    .await;
    again.assert_error(409, "already_exists", "");
}

async fn proto_get_user_answers_what_grpc_answers(app: TestApp) {
    some_users(&app).await;
    let request = pb::GetUserRequest {
        user_id: user_id(3),
    };
    let answer = call_proto(&app, GET_USER, &request).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.headers["content-type"], "application/proto");
    let connect = pb::GetUserResponse::decode(answer.bytes.clone()).expect("a GetUserResponse");
    let grpc = app
        .users
        .clone()
        .get_user(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(connect, grpc);
    assert_eq!(connect.user.unwrap().user_id, user_id(3));

    // Bytes that are no GetUserRequest are the client's error, in Connect's JSON.
    let answer = post_as(
        &reqwest::Client::new(),
        &app,
        Some(&app.token),
        GET_USER,
        Some("application/proto"),
        vec![0x0a, 0xff],
    )
    .await;
    answer.assert_error(400, "invalid_argument", "decode");
    // Errors are JSON whatever the call's encoding.
    let missing = call_proto(
        &app,
        GET_USER,
        &pb::GetUserRequest {
            user_id: user_id(99),
        },
    )
    .await;
    missing.assert_error(404, "not_found", &user_id(99));
}

async fn service_errors_are_connect_errors(app: TestApp) {
    some_users(&app).await;
    let missing = call_json(&app, GET_USER, json!({"userId": user_id(99)})).await;
    missing.assert_error(404, "not_found", &user_id(99));
    assert!(missing.json.get("details").is_none(), "{}", missing.text());

    // The service's own validation, and the binder's (the field named by its JSON path).
    let long = call_json(&app, GET_USER, json!({"userId": "x".repeat(201)})).await;
    long.assert_error(400, "invalid_argument", "userId");
    let unknown = call_json(
        &app,
        LIST_USERS,
        json!({"queries": [{"emailQuery": {"adress": "a"}}]}),
    )
    .await;
    unknown.assert_error(400, "invalid_argument", "queries[0].emailQuery.adress");
    let invalid = post_as(
        &reqwest::Client::new(),
        &app,
        Some(&app.token),
        GET_USER,
        Some("application/json"),
        b"{\"userId\": ".to_vec(),
    )
    .await;
    invalid.assert_error(400, "invalid_argument", "invalid JSON");

    // A protocol version other than 1 is refused; none at all is fine (tested above: the
    // helper always sends 1, so send none here).
    let client = reqwest::Client::new();
    let none = client
        .post(format!("http://{}{GET_USER}", app.address))
        .header("content-type", "application/json")
        .bearer_auth(&app.token)
        .body(json!({"userId": user_id(1)}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 200);
    let two = client
        .post(format!("http://{}{GET_USER}", app.address))
        .header("content-type", "application/json")
        .header("connect-protocol-version", "2")
        .bearer_auth(&app.token)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(two.status(), 400);
    let body: Value = two.json().await.unwrap();
    assert_eq!(body["code"], "invalid_argument");
}

async fn the_gate_judges_connect_calls_as_grpc_calls(app: TestApp) {
    some_users(&app).await;
    let client = reqwest::Client::new();
    let body = || serde_json::to_vec(&json!({"userId": user_id(1)})).unwrap();
    let json = Some("application/json");

    let anonymous = post_as(&client, &app, None, GET_USER, json, body()).await;
    anonymous.assert_error(401, "unauthenticated", "");
    assert!(
        anonymous.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let bad = post_as(&client, &app, Some("udt_nope"), GET_USER, json, body()).await;
    bad.assert_error(401, "unauthenticated", "");

    // A reader may read over Connect as over gRPC, and is refused a write in both.
    let reader = app
        .tokens
        .clone()
        .create_access_token(pb::CreateAccessTokenRequest {
            description: "reader".into(),
            admin: false,
            permissions: vec!["user.read".into()],
            organization_id: None,
            expiration_date: None,
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    let read = post_as(&client, &app, Some(&reader), GET_USER, json, body()).await;
    assert_eq!(read.status, 200, "{}", read.text());
    let write = post_as(
        &client,
        &app,
        Some(&reader),
        CREATE_USER,
        json,
        b"{}".to_vec(),
    )
    .await;
    write.assert_error(403, "permission_denied", "user.write");
    let grpc = app
        .clients(Some(&reader))
        .users
        .create_user(pb::CreateUserRequest::default())
        .await
        .unwrap_err();
    assert_eq!(grpc.code(), tonic::Code::PermissionDenied);
    assert_eq!(grpc.message(), write.json["message"]);

    // Health is public over Connect as over gRPC.
    let health = post_as(
        &client,
        &app,
        None,
        "/grpc.health.v1.Health/Check",
        json,
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(health.status, 200, "{}", health.text());
    assert_eq!(health.json, json!({"status": "SERVING"}));
}

async fn streaming_methods_and_unknown_methods_are_unimplemented(app: TestApp) {
    let import = call_json(&app, "/userdir.user.v1.UserService/ImportUsers", json!({})).await;
    import.assert_error(501, "unimplemented", "streaming");
    let unknown = call_json(&app, "/userdir.user.v1.UserService/NoSuchMethod", json!({})).await;
    unknown.assert_error(501, "unimplemented", "NoSuchMethod");

    // Connect's streaming content type: an end-of-stream message carrying the error.
    let stream = post_as(
        &reqwest::Client::new(),
        &app,
        Some(&app.token),
        "/userdir.user.v1.UserService/ImportUsers",
        Some("application/connect+json"),
        Vec::new(),
    )
    .await;
    assert_eq!(stream.status, 200);
    assert_eq!(stream.headers["content-type"], "application/connect+json");
    assert_eq!(stream.bytes[0], 0b10, "an end-of-stream message");
    let length = u32::from_be_bytes(stream.bytes[1..5].try_into().unwrap()) as usize;
    assert_eq!(length, stream.bytes.len() - 5);
    let end: Value = serde_json::from_slice(&stream.bytes[5..]).unwrap();
    assert_eq!(end["error"]["code"], "unimplemented");
}

async fn connect_timeout_ms_is_the_deadline(app: TestApp) {
    // A body that never arrives: the call cannot finish before its deadline, whatever the
    // machine's speed.
    let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
    stream
        .write_all(
            format!(
                "POST /userdir.user.v1.OrganizationService/CreateOrganization HTTP/1.1\r\n\
                 Host: test\r\nContent-Type: application/json\r\nConnect-Protocol-Version: 1\r\n\
                 Authorization: Bearer {}\r\nContent-Length: 100\r\nConnect-Timeout-Ms: 200\r\n\
                 \r\n{{\"name\": ",
                app.token
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let (status, body) = read_answer(&mut stream).await;
    assert_eq!(status, 504, "{body}");
    let json: Value = serde_json::from_str(&body).expect("a Connect error body");
    assert_eq!(
        json,
        json!({
            "code": "deadline_exceeded",
            "message": "the request did not finish within 200ms (the client's Connect-Timeout-Ms)"
        })
    );
    // Nothing was written, and the server answers on.
    let organizations = app
        .organizations
        .clone()
        .list_organizations(pb::ListOrganizationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(organizations.result.is_empty(), "{organizations:?}");
}

async fn other_content_types_on_a_method_path_are_415(app: TestApp) {
    let client = reqwest::Client::new();
    let h2c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    for client in [&client, &h2c] {
        for content_type in [
            Some("text/plain"),
            Some("application/xml"),
            Some("application/x-www-form-urlencoded"),
            None,
        ] {
            let answer = post_as(
                client,
                &app,
                Some(&app.token),
                LIST_USERS,
                content_type,
                b"{}".to_vec(),
            )
            .await;
            assert_eq!(answer.status, 415, "{content_type:?}: {}", answer.text());
            assert!(answer.headers.get("grpc-status").is_none());
            assert!(answer.text().contains(LIST_USERS), "{}", answer.text());
            let accepted = answer.headers["accept-post"].to_str().unwrap();
            assert!(accepted.contains("application/grpc") && accepted.contains("application/json"));
        }
    }
    // A public method too, before any credential.
    let health = post_as(
        &client,
        &app,
        None,
        "/grpc.health.v1.Health/Check",
        Some("text/plain"),
        Vec::new(),
    )
    .await;
    assert_eq!(health.status, 415);
    // Connect over h2c works like over HTTP/1.1.
    let answer = post_as(
        &h2c,
        &app,
        Some(&app.token),
        LIST_USERS,
        Some("application/json"),
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json["result"], Value::Null, "no users, so no list");
    assert!(answer.json["details"].is_object(), "{}", answer.text());
}

async fn grpc_is_unchanged_beside_connect(app: TestApp) {
    some_users(&app).await;
    let user = api::get_user(&app, &user_id(1)).await;
    assert_eq!(user.user_id, user_id(1));
    let missing = app
        .users
        .clone()
        .get_user(pb::GetUserRequest {
            user_id: user_id(99),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let anonymous = app
        .clients(None)
        .users
        .get_user(pb::GetUserRequest {
            user_id: user_id(1),
        })
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated);
    // The JSON routes are grpc-gateway's still.
    let reply = common::http::get(&app, &format!("/v1/users/{}", user_id(99))).await;
    common::http::assert_error(&reply, 404, 5, &user_id(99));
}
