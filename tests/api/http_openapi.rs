//! GET /openapi.json: an OpenAPI 3.0.3 document covering every JSON route, valid under
//! `openapi-spec-validator` when `USERDIR_OPENAPI_VALIDATOR` names its executable.

use crate::common;

use common::TestApp;
use common::http as h;
use serde_json::Value;

backend_tests!(openapi_document_covers_every_route_and_validates);

async fn openapi_document_covers_every_route_and_validates(app: TestApp) {
    let reply = h::get(&app, "/openapi.json").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.content_type, "application/json");
    let doc = &reply.json;
    assert_eq!(doc["openapi"], "3.0.3");

    let operation = |path: &str, method: &str| doc["paths"][path][method].clone();
    // The bearer credential is required by default; the public operations say they need none,
    // and are answered without one.
    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    assert_eq!(scheme["bearerFormat"], "udpat_…");
    assert_eq!(doc["security"], serde_json::json!([{"bearer": []}]));
    for (path, method) in [
        ("/openapi.json", "get"),
        ("/grpc.health.v1.Health/Check", "post"),
    ] {
        assert_eq!(
            operation(path, method)["security"],
            serde_json::json!([]),
            "{path}"
        );
    }
    let anonymous = reqwest::Client::new();
    let public = h::send_as(
        &anonymous,
        &app,
        None,
        reqwest::Method::GET,
        "/openapi.json",
        None,
    )
    .await;
    assert_eq!(public.status, 200, "{}", public.text);
    let health = h::send_as(
        &anonymous,
        &app,
        None,
        reqwest::Method::POST,
        "/grpc.health.v1.Health/Check",
        Some(b"{}"),
    )
    .await;
    assert_eq!(health.status, 200, "{}", health.text);
    assert_eq!(health.json["status"], "SERVING");
    assert!(operation("/v1/users", "get").get("security").is_none());
    // The REST dialects are documented beside the transcoded routes.
    for (path, id) in [
        ("/api/users", "Logto_ListUsers"),
        ("/api/users/{userId}", "Logto_GetUser"),
        ("/api/roles/{id}/users", "Logto_ListRoleUsers"),
        ("/identity/v1/users", "GreenLake_ListUsers"),
    ] {
        let op = operation(path, "get");
        assert_eq!(op["operationId"], id, "{path}");
        // The refusals before the handler, in the dialect's own error body.
        let error = if id.starts_with("Logto") {
            "LogtoError"
        } else {
            "GreenLakeError"
        };
        for status in ["400", "401", "403", "429", "503", "504"] {
            assert_eq!(
                op["responses"][status]["content"]["application/json"]["schema"]["$ref"],
                format!("#/components/schemas/{error}"),
                "{path} {status}"
            );
        }
    }
    // And they are answered so: without a credential, in the dialect's body.
    for (path, field, value) in [
        ("/api/users", "code", "auth.unauthorized"),
        (
            "/identity/v1/users",
            "errorCode",
            "HPE_GL_ERROR_UNAUTHORIZED",
        ),
    ] {
        let reply = h::send_as(&anonymous, &app, None, reqwest::Method::GET, path, None).await;
        assert_eq!(reply.status, 401, "{path}: {}", reply.text);
        assert_eq!(reply.json[field], value, "{path}");
    }
    let search = operation("/v1/users/_search", "post");
    assert_eq!(search["operationId"], "UserService_ListUsers");
    assert_eq!(
        search["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/userdir.user.v1.ListUsersRequest"
    );
    assert_eq!(
        search["responses"]["default"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/google.rpc.Status"
    );
    let list = operation("/v1/users", "get");
    assert_eq!(list["operationId"], "UserService_ListUsers2");
    let names: Vec<&str> = list["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "query.offset",
            "query.limit",
            "query.asc",
            "query.pageToken",
            "sortingColumn"
        ]
    );
    let get = operation("/v1/users/{user_id}", "get");
    assert_eq!(get["operationId"], "UserService_GetUser");
    assert_eq!(get["parameters"][0]["in"], "path");
    assert_eq!(get["parameters"][0]["name"], "user_id");

    // Canonical JSON names and types in the schemas.
    let schemas = &doc["components"]["schemas"];
    let details = &schemas["userdir.user.v1.ListDetails"]["properties"];
    // 64-bit integers are written as strings, and read from numbers too.
    assert_eq!(details["totalResult"]["oneOf"][0]["type"], "string");
    assert_eq!(details["totalResult"]["oneOf"][0]["format"], "uint64");
    assert_eq!(details["totalResult"]["oneOf"][1]["type"], "integer");
    assert_eq!(details["timestamp"]["format"], "date-time");
    let user = &schemas["userdir.user.v1.User"]["properties"];
    assert_eq!(user["data"]["type"], "object");
    assert_eq!(user["userId"]["type"], "string");
    assert_eq!(
        schemas["userdir.user.v1.Authenticators"]["properties"]["webAuthN"]["type"],
        "array"
    );
    let states = schemas["userdir.user.v1.State"]["oneOf"][0]["enum"]
        .as_array()
        .unwrap();
    assert!(states.contains(&Value::from("USER_STATE_LOCKED")));
    assert!(schemas["userdir.user.v1.SearchQuery"]["properties"]["schemaIDQuery"].is_object());

    // The services' rules on request fields (api::grpc::fields), from the same table the
    // validation's constants are in.
    let create = &schemas["userdir.user.v1.CreateUserRequest"];
    assert_eq!(
        create["required"],
        serde_json::json!(["organizationId", "schemaId"])
    );
    let organization = &create["properties"]["organizationId"];
    assert_eq!(
        (&organization["minLength"], &organization["maxLength"]),
        (&serde_json::json!(1), &serde_json::json!(200))
    );
    assert!(organization["pattern"].is_string());
    let usernames = &schemas["userdir.user.v1.SetUsername"]["properties"]["username"];
    // The server's text limit (`--max-text-length`), as the test server has it.
    assert!(usernames["maxLength"].as_u64().unwrap() >= 1);
    // A oneof: exactly one of password and hash; at most one verification of an email.
    let password = &schemas["userdir.user.v1.SetPassword"]["oneOf"];
    assert_eq!(password.as_array().unwrap().len(), 2);
    let email = &schemas["userdir.user.v1.SetEmail"]["oneOf"];
    assert_eq!(email.as_array().unwrap().len(), 4);
    let assign = &schemas["userdir.user.v1.AssignRoleRequest.Body"]["properties"]["userIds"];
    assert_eq!(
        (&assign["minItems"], &assign["maxItems"]),
        (&serde_json::json!(1), &serde_json::json!(100))
    );
    // A list that pages by offset only says its page token must stay empty, and the server
    // agrees; ListUsers's query takes one.
    let roles_query = &schemas["userdir.user.v1.ListRolesRequest"]["properties"]["query"];
    assert_eq!(
        roles_query["allOf"][0]["$ref"],
        "#/components/schemas/userdir.user.v1.ListQuery"
    );
    assert_eq!(
        roles_query["allOf"][1]["properties"]["pageToken"]["maxLength"],
        0
    );
    let users_query = &schemas["userdir.user.v1.ListUsersRequest"]["properties"]["query"];
    assert_eq!(
        users_query["allOf"],
        serde_json::json!([{"$ref": "#/components/schemas/userdir.user.v1.ListQuery"}])
    );
    let refused = h::post(
        &app,
        "/v1/roles/_search",
        r#"{"query": {"pageToken": "x"}}"#,
    )
    .await;
    h::assert_invalid_field(&refused, "query.pageToken");
    // A body is required where an empty one is refused; the path's fields are not in it.
    assert_eq!(
        operation("/v1/users", "post")["requestBody"]["required"],
        true
    );
    assert_eq!(search["requestBody"]["required"], false);
    let lock = operation("/v1/users/{user_id}/lock", "post");
    assert_eq!(lock["requestBody"]["required"], false);
    assert_eq!(
        lock["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/userdir.user.v1.LockUserRequest.Body"
    );
    assert!(
        schemas["userdir.user.v1.LockUserRequest.Body"]["properties"]
            .as_object()
            .unwrap()
            .is_empty()
    );
    // And the server agrees: a missing required body is refused, naming the field.
    let refused = h::send(&app, reqwest::Method::POST, "/v1/users", None).await;
    h::assert_invalid_field(&refused, "organizationId");
    let refused = h::post(&app, "/v1/users/u1/lock", r#"{"userId": "u2"}"#).await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(
        refused.json["message"],
        "userId: the path sets it; leave it out of the request body"
    );
    let refused = h::post(&app, "/v1/users/u1/lock", " ").await;
    assert_eq!(refused.status, 400, "{}", refused.text);

    // Every operation's references resolve.
    for reference in references(doc) {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .expect("a component reference");
        assert!(schemas.get(name).is_some(), "dangling {reference}");
    }

    match std::env::var("USERDIR_OPENAPI_VALIDATOR") {
        Ok(validator) if !validator.is_empty() => {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("openapi.json");
            std::fs::write(&file, &reply.text).unwrap();
            let output = std::process::Command::new(&validator)
                .arg(&file)
                .output()
                .unwrap_or_else(|e| panic!("running {validator}: {e}"));
            assert!(
                output.status.success(),
                "{validator} refused the document:\n{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        _ => eprintln!(
            "skipping OpenAPI validation: USERDIR_OPENAPI_VALIDATOR is not set \
             (see .ci/run for the openapi-spec-validator venv)"
        ),
    }
}

fn references(value: &Value) -> Vec<String> {
    match value {
        Value::Object(map) => map
            .iter()
            .flat_map(|(key, v)| {
                if key == "$ref" {
                    vec![v.as_str().unwrap().to_owned()]
                } else {
                    references(v)
                }
            })
            .collect(),
        Value::Array(items) => items.iter().flat_map(references).collect(),
        _ => vec![],
    }
}
