//! A user's data is capped in the domain, on SQLite and PostgreSQL: above the caps (bytes of
//! JSON, JSON values) is InvalidArgument naming `data` on every surface that sets it
//! (CreateUser and PatchUser over gRPC, and so over HTTP/JSON), and data exactly at the caps
//! round-trips unchanged.
//! (Peak memory of hostile JSON is measured in tests/hostile_json_memory.rs, alone in its
//! process.)

use crate::common;

use common::TestApp;
use common::api::{self, json_of, object};
use common::http::{self as h, assert_error};
use reqwest::Method;
use serde_json::{Value, json};
use tonic::Code;
use userdir::proto::user::v1 as pb;

backend_tests!(
    data_above_the_cap_is_invalid_argument_on_every_surface,
    data_at_the_cap_round_trips_unchanged,
    data_values_are_capped_too,
);

/// The documented caps on a user's data: bytes as compact JSON and JSON values
/// (`domain::MAX_USER_DATA_BYTES`, `MAX_USER_DATA_VALUES`), spelt out so that this test speaks
/// for the documentation, not for the constants.
const DATA_CAP: usize = 256 * 1024;
const VALUES_CAP: usize = 32 * 1024;

/// An organization and a schema that takes any object.
async fn setup(app: &TestApp) -> (String, String) {
    let org = api::organization(app, "Acme").await;
    let schema = app
        .schemas
        .clone()
        .create_user_schema(pb::CreateUserSchemaRequest {
            r#type: "open".into(),
            schema: Some(object(json!({"type": "object"}))),
        })
        .await
        .unwrap()
        .into_inner()
        .schema_id;
    (org, schema)
}

/// Data of exactly `size` bytes as compact JSON, with many small values (a list of empty
/// strings, so that nothing changes on the way through `google.protobuf.Value`).
fn data_of(size: usize) -> Value {
    let mut data = json!({"givenName": "Ada", "list": vec![""; 30_000], "pad": ""});
    let base = serde_json::to_vec(&data).unwrap().len();
    data["pad"] = json!("x".repeat(size - base));
    assert_eq!(serde_json::to_vec(&data).unwrap().len(), size);
    data
}

fn create_body(org: &str, schema: &str, username: &str, data: &Value) -> String {
    json!({
        "organizationId": org,
        "schemaId": schema,
        "usernames": [{"username": username}],
        "data": data,
    })
    .to_string()
}

fn assert_too_large(status: &tonic::Status) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().starts_with("data: "), "{status:?}");
    assert!(status.message().contains("262144"), "{status:?}");
}

async fn data_above_the_cap_is_invalid_argument_on_every_surface(app: TestApp) {
    let (org, schema) = setup(&app).await;
    let over = data_of(DATA_CAP + 1);

    let mut request = api::new_user(&org, &schema, "grpc-over");
    request.data = Some(object(over.clone()));
    let status = app.users.clone().create_user(request).await.unwrap_err();
    assert_too_large(&status);

    let reply = h::post(
        &app,
        "/v1/users",
        &create_body(&org, &schema, "json-over", &over),
    )
    .await;
    assert_error(&reply, 400, 3, "data: ");
    assert!(reply.text.contains("262144"), "{}", reply.text);

    // Patching existing users is held to the same cap.
    let id = api::create_user(&app, api::new_user(&org, &schema, "small")).await;
    let status = app
        .users
        .clone()
        .patch_user(pb::PatchUserRequest {
            user_id: id.clone(),
            data: Some(object(over.clone())),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_too_large(&status);
    let body = json!({ "data": over }).to_string();
    let reply = h::send(
        &app,
        Method::PATCH,
        &format!("/v1/users/{id}"),
        Some(body.as_bytes()),
    )
    .await;
    assert_error(&reply, 400, 3, "data: ");
    assert!(reply.text.contains("262144"), "{}", reply.text);

    // Nothing was written.
    assert_eq!(
        json_of(api::get_user(&app, &id).await.data.as_ref().unwrap()),
        json!({"givenName": "small"})
    );
    let reply = h::get(&app, "/v1/users?query.limit=10").await;
    assert_eq!(
        reply.json["result"].as_array().unwrap().len(),
        1,
        "{}",
        reply.text
    );
}

async fn data_at_the_cap_round_trips_unchanged(app: TestApp) {
    let (org, schema) = setup(&app).await;
    let full = data_of(DATA_CAP);

    // Created over JSON, read over JSON and gRPC.
    let reply = h::post(
        &app,
        "/v1/users",
        &create_body(&org, &schema, "json-full", &full),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let id = reply.json["userId"].as_str().unwrap().to_owned();
    let reply = h::get(&app, &format!("/v1/users/{id}")).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["user"]["data"], full);
    assert_eq!(
        json_of(api::get_user(&app, &id).await.data.as_ref().unwrap()),
        full
    );

    // Created over gRPC with other data, then patched to the full data over gRPC.
    let id = api::create_user(&app, api::new_user(&org, &schema, "grpc-full")).await;
    app.users
        .clone()
        .patch_user(pb::PatchUserRequest {
            user_id: id.clone(),
            data: Some(object(full.clone())),
            ..Default::default()
        })
        .await
        .expect("PatchUser with data at the cap");
    let reply = h::get(&app, &format!("/v1/users/{id}")).await;
    assert_eq!(reply.json["user"]["data"], full);

    // One byte more is refused, and the data stays as it was.
    let status = app
        .users
        .clone()
        .patch_user(pb::PatchUserRequest {
            user_id: id.clone(),
            data: Some(object(data_of(DATA_CAP + 1))),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_too_large(&status);
    assert_eq!(
        json_of(api::get_user(&app, &id).await.data.as_ref().unwrap()),
        full
    );
}

/// Data of `values` JSON values (the object, `givenName` and its string, the list and its
/// items), well under the byte cap.
fn data_with_values(values: usize) -> Value {
    json!({"givenName": "Ada", "list": vec![true; values - 3]})
}

async fn data_values_are_capped_too(app: TestApp) {
    let (org, schema) = setup(&app).await;
    let full = data_with_values(VALUES_CAP);
    let reply = h::post(
        &app,
        "/v1/users",
        &create_body(&org, &schema, "full", &full),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let id = reply.json["userId"].as_str().unwrap().to_owned();
    let reply = h::get(&app, &format!("/v1/users/{id}")).await;
    assert_eq!(reply.json["user"]["data"], full);

    let over = data_with_values(VALUES_CAP + 1);
    let reply = h::post(
        &app,
        "/v1/users",
        &create_body(&org, &schema, "over", &over),
    )
    .await;
    assert_error(&reply, 400, 3, "data: must hold at most 32768 JSON values");
    let status = app
        .users
        .clone()
        .patch_user(pb::PatchUserRequest {
            user_id: id.clone(),
            data: Some(object(over)),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(
        status.message(),
        "data: must hold at most 32768 JSON values"
    );
}
