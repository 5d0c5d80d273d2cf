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
