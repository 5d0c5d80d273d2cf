//! The REST dialects' part of `/openapi.json`. These routes are hand-written (they are not
//! transcoded from `google.api.http` rules), so their description is written here, next to
//! them, and merged into the generated document.

use serde_json::{Map, Value, json};

use crate::query::dialect::{logto, odata};

/// Paths and component schemas of the Logto and GreenLake routes.
pub fn fragment() -> (Map<String, Value>, Map<String, Value>) {
    let paging = json!([
        { "name": "page", "in": "query", "description": "Page number (starts from 1).",
          "schema": { "type": "integer", "minimum": 1, "default": 1 } },
        { "name": "page_size", "in": "query", "description": "Entries per page.",
          "schema": { "type": "integer", "minimum": 1, "maximum": 100, "default": 20 } },
        { "name": "search_params", "in": "query", "style": "form", "explode": true,
          "description": format!("Logto search keys: `search`, `search.<field>`, `mode`, `mode.<field>` \
            (exact, like, similar_to, posix), `joint` (or, and), `isCaseSensitive`. Fields: {}.",
            logto::Field::ALL.map(logto::Field::key).join(", ")),
          "schema": { "type": "object", "additionalProperties": { "type": "string" } } }
    ]);
    let logto_error = |description: &str| {
        json!({ "description": description,
                "content": { "application/json": { "schema": { "$ref": "#/components/schemas/LogtoError" } } } })
    };
    let users_page = json!({
        "description": "The page of users, newest first.",
        "headers": {
            "Total-Number": { "description": "Number of matching users.", "schema": { "type": "integer" } },
            "Link": { "description": "RFC 8288 links: first, prev, next, last.", "schema": { "type": "string" } }
        },
        "content": { "application/json": { "schema": {
            "type": "array", "items": { "$ref": "#/components/schemas/LogtoUser" } } } }
    });
    let mut role_parameters = vec![
        json!({ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }),
    ];
    role_parameters.extend(paging.as_array().cloned().unwrap_or_default());
    let paths = json!({
        "/api/users": { "get": {
            "operationId": "Logto_ListUsers",
            "summary": "Logto: list and search users",
            "parameters": paging,
            "responses": { "200": users_page, "400": logto_error("guard.invalid_pagination or request.invalid_input") }
        } },
        "/api/users/{userId}": { "get": {
            "operationId": "Logto_GetUser",
            "summary": "Logto: one user",
            "parameters": [
                { "name": "userId", "in": "path", "required": true, "schema": { "type": "string" } },
                { "name": "includeSsoIdentities", "in": "query", "schema": { "type": "string", "default": "false" } }
            ],
            "responses": {
                "200": { "description": "The user.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/LogtoUser" } } } },
                "404": logto_error("entity.not_found")
            }
        } },
        "/api/roles/{id}/users": { "get": {
            "operationId": "Logto_ListRoleUsers",
            "summary": "Logto: users having a role",
            "parameters": role_parameters,
            "responses": { "200": users_page, "400": logto_error("guard.invalid_pagination or request.invalid_input"),
                           "404": logto_error("entity.not_exists_with_id") }
        } },
        "/identity/v1/users": { "get": {
            "operationId": "GreenLake_ListUsers",
            "summary": "HPE GreenLake: list users with an OData filter",
            "parameters": [
                { "name": "filter", "in": "query", "description": format!("OData subset: eq, ne, gt, ge, lt; and, or, not; \
                    parentheses; single-quoted literals. Fields: {}.", odata::Field::listed()),
                  "schema": { "type": "string", "default": "" } },
                { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 600, "default": 300 } },
                { "name": "offset", "in": "query", "description": "Number of items (not pages) to skip.",
                  "schema": { "type": "integer", "minimum": 0, "default": 0 } }
            ],
            "responses": {
                "200": { "description": "The page of users, oldest first.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/GreenLakeUserList" } } } },
                "400": { "description": "Bad filter or paging: the position and token that failed.",
                         "content": { "application/json": { "schema": { "$ref": "#/components/schemas/GreenLakeError" } } } }
            }
        } }
    });
    let text = json!({ "type": "string" });
    let nullable_text = json!({ "type": "string", "nullable": true });
    let epoch_ms =
        json!({ "type": "integer", "format": "int64", "description": "Epoch milliseconds." });
    let schemas = json!({
        "LogtoUser": { "type": "object", "properties": {
            "id": text, "username": nullable_text, "primaryEmail": nullable_text, "primaryPhone": nullable_text,
            "name": nullable_text, "avatar": nullable_text, "applicationId": nullable_text,
            "customData": { "type": "object", "additionalProperties": true },
            "profile": { "type": "object", "additionalProperties": true },
            "identities": { "type": "object", "additionalProperties": { "type": "object", "additionalProperties": true } },
            "ssoIdentities": { "type": "array", "items": { "type": "object", "additionalProperties": true } },
            "lastSignInAt": { "type": "integer", "format": "int64", "nullable": true, "description": "Epoch milliseconds." },
            "createdAt": epoch_ms, "updatedAt": epoch_ms,
            "isSuspended": { "type": "boolean" }, "hasPassword": { "type": "boolean" }
        } },
        "LogtoError": { "type": "object", "required": ["code", "message"], "properties": {
            "code": text, "message": text, "details": text } },
        "GreenLakeUser": { "type": "object", "properties": {
            "id": text, "type": text, "generation": { "type": "integer" }, "resourceUri": text,
            "username": text, "firstName": nullable_text, "lastName": nullable_text,
            "userStatus": { "type": "string", "enum": odata::STATUSES.map(|(name, _)| name) },
            "createdAt": { "type": "string", "format": "date-time" },
            "updatedAt": { "type": "string", "format": "date-time" },
            "lastLogin": { "type": "string", "format": "date-time", "nullable": true }
        } },
        "GreenLakeUserList": { "type": "object", "required": ["offset", "count", "total", "items"], "properties": {
            "offset": { "type": "integer" }, "count": { "type": "integer" }, "total": { "type": "integer" },
            "items": { "type": "array", "items": { "$ref": "#/components/schemas/GreenLakeUser" } } } },
        "GreenLakeError": { "type": "object", "properties": {
            "httpStatusCode": { "type": "integer" }, "errorCode": text, "message": text,
            "errorDetails": { "type": "array", "items": { "type": "object", "additionalProperties": true } } } }
    });
    let as_map = |value: Value| match value {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    (as_map(paths), as_map(schemas))
}
