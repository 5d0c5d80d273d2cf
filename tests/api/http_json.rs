//! The HTTP/JSON transcoder on the gRPC port, on SQLite and PostgreSQL: the same answers as
//! gRPC in canonical proto3 JSON, grpc-gateway's error format, and strict request binding.

use crate::common;

use common::TestApp;
use common::fixtures::{self, EMPLOYEE, NewUser, ORG_B, user_id};
use common::http::{self as h, assert_error};
use common::queries::{self as q, M};
use reqwest::Method;
use serde_json::{Value, json};
use userdir::domain::UserState;
use userdir::proto::user::v1::{self as pb, FieldName};

backend_tests!(
    search_answers_what_grpc_answers,
    get_user_by_path_and_not_found,
    input_accepts_proto_names_and_enum_numbers,
    unknown_fields_and_bad_values_are_400_naming_the_field,
    get_binds_query_parameters,
    routing_errors_follow_grpc_gateway,
    hostile_input_gets_a_clear_4xx,
    h2c_serves_json_too,
    struct_numbers_are_spelled_as_protojson_spells_them,
);

async fn some_users(app: &TestApp) {
    fixtures::base(&app.db).await;
    fixtures::insert(
        &app.db,
        vec![
            NewUser::new(1)
                .email("ada@example.com")
                .every_authenticator(),
            NewUser::new(2)
                .org(ORG_B)
                .phone("+41791234567")
                .state(UserState::Locked),
            NewUser::new(3)
                .email("zoe@example.com")
                .customer()
                .last_login(1_700_000_123_000_000),
            NewUser::new(4).every_authenticator(),
            NewUser::new(5).email("bob@example.com"),
        ],
    )
    .await;
}

async fn grpc_list(app: &TestApp, request: pb::ListUsersRequest) -> pb::ListUsersResponse {
    app.users
        .clone()
        .list_users(request)
        .await
        .expect("ListUsers")
        .into_inner()
}

fn ids(reply: &Value) -> Vec<String> {
    reply["result"]
        .as_array()
        .map(|users| {
            users
                .iter()
                .map(|u| u["userId"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn search_answers_what_grpc_answers(app: TestApp) {
    some_users(&app).await;
    let body = json!({
        "query": {"offset": "1", "limit": 2, "asc": true},
        "sortingColumn": "FIELD_NAME_CREATION_DATE",
        "queries": [{"orQuery": {"queries": [
            {"schemaIDQuery": {"id": EMPLOYEE}},
            {"notQuery": {"query": {"emailQuery": {
                "address": "ZOE", "method": "TEXT_QUERY_METHOD_STARTS_WITH_IGNORE_CASE"}}}}
        ]}}]
    });
    let reply = h::post(&app, "/v1/users/_search", &body.to_string()).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.content_type, "application/json");

    let grpc = grpc_list(
        &app,
        q::request(
            vec![q::or(vec![
                q::schema_id(EMPLOYEE),
                q::not(q::email("ZOE", M::StartsWithIgnoreCase)),
            ])],
            1,
            2,
            true,
            FieldName::CreationDate,
        ),
    )
    .await;
    assert_eq!(
        reply.json,
        h::canonical_json(&grpc, "userdir.user.v1.ListUsersResponse")
    );

    // The seed's JSON names and types, as grpc-gateway writes them.
    assert_eq!(reply.json["details"]["totalResult"], "4");
    assert!(reply.json["details"]["processedSequence"].is_string());
    assert!(
        reply.json["details"]["timestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(reply.json["sortingColumn"], "FIELD_NAME_CREATION_DATE");
    assert_eq!(ids(&reply.json), vec![user_id(2), user_id(4)]);
    let authenticators = &reply.json["result"][1]["authenticators"];
    for key in [
        "webAuthN",
        "otpSms",
        "otpEmail",
        "authenticationKeys",
        "usernames",
    ] {
        assert!(
            authenticators.get(key).is_some(),
            "{key} in {authenticators}"
        );
    }
    assert_eq!(reply.json["result"][0]["state"], "USER_STATE_LOCKED");
    // Defaults are omitted: user 2 has no email and is not verified anywhere.
    assert!(reply.json["result"][0]["contact"].get("email").is_none());

    // An empty body is an empty request: every user, newest first.
    let reply = h::post(&app, "/v1/users/_search", "").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(ids(&reply.json)[0], user_id(5));
    assert_eq!(reply.json["details"]["totalResult"], "5");
}

async fn get_user_by_path_and_not_found(app: TestApp) {
    some_users(&app).await;
    let id = user_id(3);
    let reply = h::get(&app, &format!("/v1/users/{id}")).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let grpc = app
        .users
        .clone()
        .get_user(pb::GetUserRequest {
            user_id: id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        reply.json,
        h::canonical_json(&grpc, "userdir.user.v1.GetUserResponse")
    );
    assert_eq!(reply.json["user"]["userId"], id);
    assert_eq!(reply.json["user"]["lastLogin"], "2023-11-14T22:15:23Z");
    // A number of `Struct` data as protojson writes it: integral, so without a fraction (the
    // fixture stores the double 3.0), and a fraction kept where there is one.
    assert_eq!(reply.json["user"]["data"], json!({"n": 3}));
    assert!(reply.text.contains(r#""data":{"n":3}"#), "{}", reply.text);

    let missing = user_id(99);
    let reply = h::get(&app, &format!("/v1/users/{missing}")).await;
    assert_error(&reply, 404, 5, &missing);

    // The service's own validation comes back as InvalidArgument.
    let long = "x".repeat(201);
    let reply = h::get(&app, &format!("/v1/users/{long}")).await;
    assert_error(&reply, 400, 3, "userId");
}

async fn input_accepts_proto_names_and_enum_numbers(app: TestApp) {
    some_users(&app).await;
    let by_json = h::post(
        &app,
        "/v1/users/_search",
        &json!({"sortingColumn": "FIELD_NAME_EMAIL", "query": {"asc": true},
                "queries": [{"userIdQuery": {"id": user_id(1)}}]})
        .to_string(),
    )
    .await;
    let by_proto = h::post(
        &app,
        "/v1/users/_search",
        &json!({"sorting_column": 4, "query": {"asc": true},
                "queries": [{"user_id_query": {"id": user_id(1)}}]})
        .to_string(),
    )
    .await;
    assert_eq!(by_json.status, 200, "{}", by_json.text);
    assert_eq!(by_json.json, by_proto.json);
    assert_eq!(by_json.json["sortingColumn"], "FIELD_NAME_EMAIL");
    assert_eq!(ids(&by_json.json), vec![user_id(1)]);

    // 64-bit integers are accepted as numbers as well as strings; enum numbers inside queries.
    let reply = h::post(
        &app,
        "/v1/users/_search",
        &json!({"query": {"offset": 3}, "queries": [{"stateQuery": {"state": 1}}]}).to_string(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["details"]["totalResult"], "4");
    assert_eq!(ids(&reply.json), vec![user_id(1)]);
}

async fn unknown_fields_and_bad_values_are_400_naming_the_field(app: TestApp) {
    some_users(&app).await;
    for (body, needle) in [
        (json!({"bogus": 1}), "\"bogus\""),
        (json!({"query": {"limit": 2, "lmit": 3}}), "query.lmit"),
        (
            json!({"queries": [{"orQuery": {"queries": [{"emailQuery": {"adress": "a"}}]}}]}),
            "queries[0].orQuery.queries[0].emailQuery.adress",
        ),
        (json!({"sortingColumn": "FIELD_NAME_NOPE"}), "sortingColumn"),
        (json!({"query": {"limit": "abc"}}), "query.limit"),
        (json!({"query": {"limit": -1}}), "query.limit"),
        (
            json!({"query": {"offset": "18446744073709551616"}}),
            "query.offset",
        ),
        (json!({"query": {"asc": "yes"}}), "query.asc"),
        (json!({"queries": {}}), "queries"),
    ] {
        let reply = h::post(&app, "/v1/users/_search", &body.to_string()).await;
        assert_error(&reply, 400, 3, needle);
    }
    // Query parameters on a body-"*" route are unknown too.
    let reply = h::post(&app, "/v1/users/_search?query.limit=1", "{}").await;
    assert_error(&reply, 400, 3, "query.limit");
    // The service's own limits answer with its messages.
    let reply = h::post(&app, "/v1/users/_search", r#"{"query":{"limit":1001}}"#).await;
    assert_error(&reply, 400, 3, "query.limit");
    let reply = h::post(&app, "/v1/users/_search", r#"{"queries":[{}]}"#).await;
    assert_error(&reply, 400, 3, "queries[0]");
    // A key given twice is a bad request, not a size limit, wherever it stands.
    let reply = h::post(
        &app,
        "/v1/users/_search",
        r#"{"queries":[{"orQuery":{"queries":[],"queries":[]}}]}"#,
    )
    .await;
    assert_error(
        &reply,
        400,
        3,
        "\"queries[0].orQuery.queries\" is given twice",
    );
}

async fn get_binds_query_parameters(app: TestApp) {
    some_users(&app).await;
    let reply = h::get(
        &app,
        "/v1/users?query.limit=2&query.asc=true&sorting_column=FIELD_NAME_EMAIL",
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let grpc = grpc_list(&app, q::request(vec![], 0, 2, true, FieldName::Email)).await;
    assert_eq!(
        reply.json,
        h::canonical_json(&grpc, "userdir.user.v1.ListUsersResponse")
    );
    assert_eq!(ids(&reply.json), vec![user_id(1), user_id(5)]);

    let reply = h::get(
        &app,
        "/v1/users?query.offset=1&query.limit=1&sortingColumn=2",
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(ids(&reply.json), vec![user_id(4)]);

    let reply = h::get(&app, "/v1/users?query.limit=abc").await;
    assert_error(&reply, 400, 3, "query.limit");
    let reply = h::get(&app, "/v1/users?query.limit=1&query.limit=2").await;
    assert_error(&reply, 400, 3, "query.limit");
    let reply = h::get(&app, "/v1/users?limit=1").await;
    assert_error(&reply, 400, 3, "unknown query parameter \"limit\"");
    let reply = h::get(&app, "/v1/users?sortingColumn=FIELD_NAME_NOPE").await;
    assert_error(&reply, 400, 3, "sortingColumn");
    let reply = h::get(&app, &format!("/v1/users/{}?userId=x", user_id(1))).await;
    assert_error(&reply, 400, 3, "userId");
}

async fn routing_errors_follow_grpc_gateway(app: TestApp) {
    let reply = h::get(&app, "/v2/nothing/here").await;
    assert_error(&reply, 404, 5, "Not Found");
    // grpc-gateway's field order, byte for byte.
    assert_eq!(
        reply.text,
        r#"{"code":5,"message":"Not Found","details":[]}"#
    );
    // GET, PATCH and DELETE are bound on /v1/users/{user_id}; PUT is not.
    let reply = h::send(&app, Method::PUT, "/v1/users/abc", Some(b"{}")).await;
    assert_error(&reply, 405, 12, "Method Not Allowed");
    assert_eq!(reply.header("allow"), "GET, PATCH, DELETE");
    // A bound route reaches the service, whose NotFound keeps its message.
    let reply = h::send(&app, Method::DELETE, "/v1/users/abc", None).await;
    assert_error(&reply, 404, 5, "userId: no user with id \"abc\"");
    let reply = h::send(&app, Method::PUT, "/v1/users/_search", Some(b"{}")).await;
    assert_error(&reply, 405, 12, "Method Not Allowed");
    // The methods of the most specific path, as the OpenAPI document lists them.
    assert_eq!(reply.header("allow"), "POST");
    let reply = h::send(&app, Method::POST, "/openapi.json", Some(b"{}")).await;
    assert_error(&reply, 405, 12, "Method Not Allowed");
    assert_eq!(reply.header("allow"), "GET, HEAD");
    // The REST dialects' routes answer a wrong method with 405 and `Allow` too.
    for path in ["/api/users", "/api/users/abc", "/identity/v1/users"] {
        let reply = h::send(&app, Method::DELETE, path, None).await;
        assert_eq!(reply.status, 405, "{path}: {}", reply.text);
        assert_eq!(reply.header("allow"), "GET,HEAD", "{path}");
    }
}

async fn hostile_input_gets_a_clear_4xx(app: TestApp) {
    some_users(&app).await;
    let bodies: [&[u8]; 8] = [
        b"{\"query\": {\"limit\": 1",
        b"\xff\xfe{}",
        b"{\"queries\": [{\"userIdQuery\": {\"id\": \"\xc3\x28\"}}]}",
        b"{\"query\": {\"limit\": 1e400}}",
        b"{\"query\": {\"offset\": 123456789012345678901234567890}}",
        b"[]",
        b"{} trailing",
        b"{\"query\": null, \"query\": {\"limit\": 1}}",
    ];
    for body in bodies {
        let reply = h::send(&app, Method::POST, "/v1/users/_search", Some(body)).await;
        assert!(
            reply.status.is_client_error(),
            "{:?}: {} {}",
            String::from_utf8_lossy(body),
            reply.status,
            reply.text
        );
        assert_eq!(reply.json["code"], 3, "{}", reply.text);
    }
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let reply = h::send(
        &app,
        Method::POST,
        "/v1/users/_search",
        Some(deep.as_bytes()),
    )
    .await;
    assert_error(&reply, 400, 3, "invalid JSON body");
    // Within serde_json's nesting limit but deeper than protobuf decodes (found by fuzzing):
    // a 400 naming the field, not a 500 from the service's decoder.
    for (name, needle) in [
        ("deep-not-query", "queries[0].notQuery.query"),
        ("deep-struct-data", "data.fields"),
    ] {
        let saved = std::fs::read(format!(
            "{}/fuzz/regressions/transcoder_bind/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let text = String::from_utf8(saved).unwrap();
        let (line, body) = text.split_once('\n').unwrap();
        let (method, path) = line.split_once(' ').unwrap();
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let reply = h::send(&app, method, path, Some(body.as_bytes())).await;
        assert_error(&reply, 400, 3, needle);
        assert!(
            reply.text.contains("at most 100 levels deep"),
            "{}",
            reply.text
        );
    }

    // Sent raw: HTTP clients normalise dot segments away.
    for path in [
        "/v1/users/%FF",
        "/v1/users/..",
        "/v1/users/%2e%2e",
        "/v1/users/.",
        "/v1/users?query.limit=%FF",
        "/v1/users?%FF=1",
    ] {
        let (status, body) = h::raw_get(&app, path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains(r#""code":3"#), "{path}: {body}");
    }
    // An encoded slash is data inside a variable, not a path separator.
    let reply = h::get(&app, "/v1/users/a%2Fb").await;
    assert_error(&reply, 404, 5, "a/b");
    let reply = h::send(&app, Method::GET, "/v1/users/abc", Some(b"{}")).await;
    assert_error(&reply, 400, 3, "no request body");

    // The server is still fine.
    let reply = h::get(&app, &format!("/v1/users/{}", user_id(1))).await;
    assert_eq!(reply.status, 200);
}

async fn h2c_serves_json_too(app: TestApp) {
    some_users(&app).await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let reply = h::send_with(
        &client,
        &app,
        Method::POST,
        "/v1/users/_search",
        Some(br#"{"query":{"limit":1}}"#),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(ids(&reply.json), vec![user_id(5)]);
}

/// `Struct` numbers are doubles; protojson (and ZITADEL's gateway) writes an integral one
/// without a fraction, as the gRPC answer reads in a JavaScript or Python client.
async fn struct_numbers_are_spelled_as_protojson_spells_them(app: TestApp) {
    fixtures::base(&app.db).await;
    let user = NewUser::new(6).data(json!({
        "amount": 19998, "ratio": 0.5, "negative": -7, "huge": 1e21, "list": [1, 2.5, {"n": 0}],
    }));
    let id = user.id();
    fixtures::insert(&app.db, vec![user]).await;
    let reply = h::get(&app, &format!("/v1/users/{id}")).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    for spelled in [
        r#""amount":19998"#,
        r#""ratio":0.5"#,
        r#""negative":-7"#,
        r#""huge":1e+21"#,
        r#""list":[1,2.5,{"n":0}]"#,
    ] {
        assert!(reply.text.contains(spelled), "{spelled} in {}", reply.text);
    }
    assert!(!reply.text.contains("19998.0"), "{}", reply.text);
}
