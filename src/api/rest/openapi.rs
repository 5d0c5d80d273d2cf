//! The REST dialects' part of `/openapi.json`. These routes are hand-written (they are not
//! transcoded from `google.api.http` rules), so each dialect describes its own routes next to
//! them (`RestDialect::openapi`); this module merges the fragments for the generated document.

use serde_json::{Map, Value, json};

/// Paths and component schemas.
pub type Fragment = (Map<String, Value>, Map<String, Value>);

/// Paths and component schemas of every dialect's routes.
pub fn fragment() -> Fragment {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for dialect in super::DIALECTS {
        let (more_paths, more_schemas) = (dialect.openapi)();
        paths.extend(more_paths);
        schemas.extend(more_schemas);
    }
    (paths, schemas)
}

/// A fragment from its two JSON objects.
pub(super) fn fragment_of(paths: Value, schemas: Value) -> Fragment {
    let as_map = |value: Value| match value {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    (as_map(paths), as_map(schemas))
}

pub(super) fn text() -> Value {
    json!({ "type": "string" })
}

pub(super) fn nullable_text() -> Value {
    json!({ "type": "string", "nullable": true })
}

/// The responses of a dialect's operation: `own` (its success and the statuses its handler
/// answers), plus the refusals that can come before any handler runs, each in the dialect's
/// error body `error_schema` (`RestDialect::refusal` draws them): no or a bad credential (401),
/// no permission (403), a rate limit (429), load shedding or shutdown (503), the deadline (504)
/// and a request head over the limit (431).
pub(super) fn responses(own: Value, error_schema: &str) -> Value {
    let error = |description: &str| {
        json!({
            "description": description,
            "content": { "application/json": { "schema": {
                "$ref": format!("#/components/schemas/{error_schema}")
            } } },
        })
    };
    let mut responses = match own {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    for (status, description) in [
        (
            "401",
            "No credential, or one that is malformed, unknown, expired or revoked.",
        ),
        (
            "403",
            "The credential lacks a permission the operation needs.",
        ),
        (
            "429",
            "Over a rate limit (`Retry-After` says when to come back).",
        ),
        ("431", "The request head is over the server's limit."),
        ("503", "The server is shedding load or shutting down."),
        ("504", "The operation did not finish within its deadline."),
    ] {
        responses
            .entry(status)
            .or_insert_with(|| error(description));
    }
    Value::Object(responses)
}
