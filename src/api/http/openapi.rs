//! The OpenAPI 3.0.3 document of the JSON routes, generated at startup from the same route table
//! (and so the same descriptors and `google.api.http` rules) that the transcoder serves. Schemas
//! use the canonical proto3-JSON names and types: lowerCamel names, 64-bit integers as strings,
//! enums by name, Timestamp as a date-time string, Struct as an object.

use std::collections::{BTreeMap, HashSet};

use prost_reflect::{EnumDescriptor, FieldDescriptor, FileDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value, json};

use super::FieldRules;
use super::routes::{BodyRule, Route, RouteTable};

/// The component name of the error body.
const ERROR_SCHEMA: &str = "google.rpc.Status";
/// How deep query parameters descend into nested messages.
const MAX_QUERY_DEPTH: usize = 5;

/// The document for the transcoded routes plus `extra` (paths, component schemas) describing
/// routes served beside them, such as the REST dialects.
/// `rules` are the services' rules on request fields (required, lengths, patterns, oneofs).
pub fn document(
    table: &RouteTable,
    extra: (Map<String, Value>, Map<String, Value>),
    rules: FieldRules<'_>,
) -> Value {
    let mut schemas = Schemas::new(rules);
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let (extra_paths, extra_schemas) = extra;
    for (path, item) in extra_paths {
        if let Value::Object(item) = item {
            paths.insert(path, item);
        }
    }
    for route in table.routes() {
        let method = route.http_method.as_str().to_ascii_lowercase();
        // OpenAPI has no room for custom verbs; such routes are served but not documented.
        if !["get", "put", "post", "delete", "patch", "head", "options"].contains(&method.as_str())
        {
            continue;
        }
        let item = paths.entry(route.template.openapi_path()).or_default();
        if item.contains_key(&method) {
            tracing::warn!(
                path = route.template.source,
                "two routes share an OpenAPI path and method; documenting the first"
            );
            continue;
        }
        item.insert(method, operation(route, &mut schemas));
    }
    for (path, item) in public_paths() {
        paths.insert(path, item);
    }
    let mut components = schemas.done();
    components.insert(ERROR_SCHEMA.to_owned(), error_schema());
    components.insert(CONNECT_ERROR_SCHEMA.to_owned(), connect_error_schema());
    components.extend(extra_schemas);
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "userdir",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "HTTP/JSON transcoding of the userdir gRPC API (proto3 JSON mapping). \
                Unknown fields and query parameters are refused with 400.",
        },
        "paths": paths,
        // Every operation needs the bearer credential unless it says `security: []`.
        "security": [{ SECURITY_SCHEME: [] }],
        "components": {
            "schemas": components,
            "securitySchemes": { SECURITY_SCHEME: security_scheme() },
        },
    })
}

/// The name of the one security scheme, the bearer credential every non-public operation needs.
pub const SECURITY_SCHEME: &str = "bearer";

/// The component name of a Connect error body (the health check is a Connect call).
const CONNECT_ERROR_SCHEMA: &str = "ConnectError";

fn security_scheme() -> Value {
    json!({
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "udpat_…",
        "description": "`authorization: Bearer <token>`: an access token (`udpat_` and 256 random \
            bits, from `userdir token create` or TokenService) or, where the server trusts an \
            OIDC issuer, its JWT. A missing or bad credential is 401, one without the permission \
            the operation needs 403.",
    })
}

/// The operations anyone may call, without a credential (`auth::policy`'s public rules): this
/// document itself and the health check (a Connect call on the gRPC method path).
fn public_paths() -> Vec<(String, Map<String, Value>)> {
    let json_body = |schema: Value, description: &str| json!({ "description": description, "content": { "application/json": { "schema": schema } } });
    let connect_error = |description: &str| json_body(reference(CONNECT_ERROR_SCHEMA), description);
    let item = |method: &str, operation: Value| {
        let mut item = Map::new();
        item.insert(method.to_owned(), operation);
        item
    };
    vec![
        (
            "/openapi.json".to_owned(),
            item(
                "get",
                json!({
                    "operationId": "OpenAPI",
                    "summary": "This document",
                    "security": [],
                    "responses": {
                        "200": json_body(json!({ "type": "object" }), "The OpenAPI 3.0.3 document."),
                        "429": json_body(reference(ERROR_SCHEMA), "The caller's address is over its rate limit."),
                        "503": json_body(reference(ERROR_SCHEMA), "The server is shedding load or shutting down."),
                    },
                }),
            ),
        ),
        (
            "/grpc.health.v1.Health/Check".to_owned(),
            item(
                "post",
                json!({
                    "operationId": "Health_Check",
                    "summary": "Health check (grpc.health.v1.Health/Check as a Connect unary call)",
                    "description": "`service` empty for the server as a whole, or a service's full name.",
                    "tags": ["Health"],
                    "security": [],
                    "requestBody": {
                        "required": true,
                        "content": { "application/json": { "schema": {
                            "type": "object",
                            "properties": { "service": { "type": "string", "nullable": true } },
                            "additionalProperties": false,
                        } } },
                    },
                    "responses": {
                        "200": json_body(json!({
                            "type": "object",
                            "properties": { "status": {
                                "type": "string",
                                "enum": ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"],
                            } },
                            "additionalProperties": false,
                        }), "The serving status (an absent `status` is UNKNOWN)."),
                        "400": connect_error("A malformed request (invalid_argument)."),
                        "404": connect_error("No such service (not_found)."),
                        "413": connect_error("The body is over the message limit (resource_exhausted)."),
                        "415": json_body(reference(ERROR_SCHEMA), "Not a Connect content type (`application/json` or `application/proto`)."),
                        "429": connect_error("The caller's address is over its rate limit (resource_exhausted)."),
                        "503": connect_error("The server is shedding load or shutting down (unavailable)."),
                        "504": connect_error("The deadline passed (deadline_exceeded)."),
                    },
                }),
            ),
        ),
    ]
}

/// Connect's error body: a lower_snake code name, a message and details.
fn connect_error_schema() -> Value {
    json!({
        "type": "object",
        "description": "A Connect error: the gRPC code's lower_snake name, its message and details.",
        "required": ["code"],
        "properties": {
            "code": { "type": "string" },
            "message": { "type": "string" },
            "details": { "type": "array", "items": { "type": "object", "additionalProperties": true } },
        },
    })
}

fn error_schema() -> Value {
    json!({
        "type": "object",
        "description": "The error body: the gRPC status code, its message and details.",
        "properties": {
            "code": { "type": "integer", "format": "int32" },
            "message": { "type": "string" },
            "details": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": { "@type": { "type": "string" } },
                    "additionalProperties": true,
                },
            },
        },
    })
}

fn operation(route: &Route, schemas: &mut Schemas) -> Value {
    let mut parameters = Vec::new();
    for binding in &route.path_bindings {
        let leaf = binding.fields.last().expect("never empty");
        let mut parameter = json!({
            "name": binding.variable.name(),
            "in": "path",
            "required": true,
            "schema": schemas.field(leaf),
        });
        let pattern = route
            .template
            .variable_pattern(&binding.variable)
            .map(|pattern| format!("Matches the path segments `{pattern}`."));
        let description = [field_comment(leaf), pattern]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("\n\n");
        if !description.is_empty() {
            parameter["description"] = json!(description);
        }
        parameters.push(parameter);
    }
    let excluded: Option<&FieldDescriptor> = match &route.body {
        BodyRule::Whole => None,
        BodyRule::Field(field) => Some(field),
        BodyRule::None => None,
    };
    if !matches!(route.body, BodyRule::Whole) {
        let bound: Vec<Vec<FieldDescriptor>> = route
            .path_bindings
            .iter()
            .map(|b| b.fields.clone())
            .collect();
        let mut stack = vec![route.input().full_name().to_owned()];
        query_parameters(
            &route.input(),
            &mut Vec::new(),
            &bound,
            excluded,
            &mut stack,
            schemas,
            &mut parameters,
        );
    }

    let mut operation = json!({
        "operationId": route.operation_id,
        "tags": [route.rpc.parent_service().name()],
        "summary": format!("{} ({})", route.rpc.name(), route.rpc.full_name()),
        "responses": {
            "200": {
                "description": "A successful response.",
                "content": { "application/json": { "schema": response_schema(route, schemas) } },
            },
            "default": {
                "description": "An error: the HTTP status follows grpc-gateway's table for the gRPC code.",
                "content": { "application/json": { "schema": reference(ERROR_SCHEMA) } },
            },
        },
    });
    if !parameters.is_empty() {
        operation["parameters"] = Value::Array(parameters);
    }
    if let Some(text) = comment(&route.rpc.parent_file(), route.rpc.path()) {
        operation["description"] = json!(text);
    }
    // The top-level fields the path binds: a whole-message body leaves them out.
    let bound: Vec<FieldDescriptor> = route
        .path_bindings
        .iter()
        .filter(|b| b.fields.len() == 1)
        .map(|b| b.fields[0].clone())
        .collect();
    // A body is required when leaving it out (an empty message) is refused, i.e. when it
    // carries a required field; otherwise an absent body is the empty message.
    let body_schema = match &route.body {
        BodyRule::None => None,
        // A client stream's messages, in order.
        BodyRule::Whole if route.is_client_streaming() => Some((
            json!({
                "type": "array",
                "items": schemas.message(&route.input()),
            }),
            false,
        )),
        BodyRule::Whole => Some((
            schemas.body(&route.input(), bound.clone()),
            schemas.has_required(&route.input(), &bound),
        )),
        BodyRule::Field(field) => Some((schemas.field(field), schemas.required(field))),
    };
    if let Some((schema, required)) = body_schema {
        operation["requestBody"] = json!({
            "required": required,
            "content": { "application/json": { "schema": schema } },
        });
    }
    operation
}

fn response_schema(route: &Route, schemas: &mut Schemas) -> Value {
    match &route.response_body {
        Some(field) => schemas.field(field),
        None => schemas.message(&route.output()),
    }
}

/// Every field reachable by a query parameter: scalars, enums, repeated scalars and the
/// well-known types with a string form, through singular messages, skipping what path and body
/// bind.
fn query_parameters(
    message: &MessageDescriptor,
    prefix: &mut Vec<FieldDescriptor>,
    bound: &[Vec<FieldDescriptor>],
    excluded: Option<&FieldDescriptor>,
    stack: &mut Vec<String>,
    schemas: &mut Schemas,
    out: &mut Vec<Value>,
) {
    for field in message.fields() {
        if prefix.is_empty() && excluded == Some(&field) {
            continue;
        }
        prefix.push(field.clone());
        let is_bound = bound.iter().any(|b| {
            let n = b.len().min(prefix.len());
            b[..n] == prefix[..n]
        });
        if !is_bound && !field.is_map() {
            match field.kind() {
                Kind::Message(inner) if well_known(&inner).is_none() => {
                    if !field.is_list()
                        && prefix.len() < MAX_QUERY_DEPTH
                        && !stack.contains(&inner.full_name().to_owned())
                    {
                        stack.push(inner.full_name().to_owned());
                        query_parameters(&inner, prefix, bound, excluded, stack, schemas, out);
                        stack.pop();
                    }
                }
                Kind::Message(inner) if field.is_list() || !has_string_form(inner.full_name()) => {}
                _ => {
                    let name = prefix
                        .iter()
                        .map(|f| f.json_name())
                        .collect::<Vec<_>>()
                        .join(".");
                    let mut parameter = json!({
                        "name": name,
                        "in": "query",
                        "required": prefix.len() == 1 && schemas.required(&field),
                        "schema": schemas.field(&field),
                    });
                    if field.is_list() {
                        parameter["style"] = json!("form");
                        parameter["explode"] = json!(true);
                    }
                    if let Some(text) = field_comment(&field) {
                        parameter["description"] = json!(text);
                    }
                    out.push(parameter);
                }
            }
        }
        prefix.pop();
    }
}

/// Well-known types whose JSON form is a string or scalar, so a query parameter can carry them.
fn has_string_form(full_name: &str) -> bool {
    matches!(
        full_name,
        "google.protobuf.Timestamp"
            | "google.protobuf.Duration"
            | "google.protobuf.FieldMask"
            | "google.protobuf.DoubleValue"
            | "google.protobuf.FloatValue"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt64Value"
            | "google.protobuf.Int32Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.BoolValue"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue"
    )
}

/// The inline schema of a well-known type with a special JSON form.
fn well_known(message: &MessageDescriptor) -> Option<Value> {
    Some(match message.full_name() {
        "google.protobuf.Timestamp" => json!({"type": "string", "format": "date-time"}),
        "google.protobuf.Duration" => {
            json!({"type": "string", "description": "Seconds with an `s` suffix, e.g. `1.5s`."})
        }
        "google.protobuf.FieldMask" => {
            json!({"type": "string", "description": "Comma-separated lowerCamel field paths."})
        }
        "google.protobuf.Struct" => json!({"type": "object", "additionalProperties": true}),
        "google.protobuf.Value" => json!({"description": "Any JSON value."}),
        "google.protobuf.ListValue" => json!({"type": "array", "items": {}}),
        "google.protobuf.Empty" => json!({"type": "object"}),
        "google.protobuf.Any" => json!({
            "type": "object",
            "properties": {"@type": {"type": "string"}},
            "additionalProperties": true,
        }),
        "google.protobuf.DoubleValue" => {
            json!({"type": "number", "format": "double", "nullable": true})
        }
        "google.protobuf.FloatValue" => {
            json!({"type": "number", "format": "float", "nullable": true})
        }
        "google.protobuf.Int64Value" => {
            json!({"type": "string", "format": "int64", "nullable": true})
        }
        "google.protobuf.UInt64Value" => {
            json!({"type": "string", "format": "uint64", "nullable": true})
        }
        "google.protobuf.Int32Value" => {
            json!({"type": "integer", "format": "int32", "nullable": true})
        }
        "google.protobuf.UInt32Value" => {
            json!({"type": "integer", "format": "int64", "minimum": 0, "nullable": true})
        }
        "google.protobuf.BoolValue" => json!({"type": "boolean", "nullable": true}),
        "google.protobuf.StringValue" => json!({"type": "string", "nullable": true}),
        "google.protobuf.BytesValue" => {
            json!({"type": "string", "format": "byte", "nullable": true})
        }
        _ => return None,
    })
}

/// The alternatives of a oneof with members `names` (JSON names): one alternative per member
/// (it is present), plus, unless exactly one must be, one for none of them. A JSON object
/// with two members present matches two alternatives and so fails `oneOf`, as protojson
/// refuses it.
fn oneof_constraint(names: &[String], exactly_one: bool) -> Value {
    // `type` in each alternative, though the schema around says it too: an alternative
    // without one reads to some tools as a schema for any value.
    let each: Vec<Value> = names
        .iter()
        .map(|n| json!({ "type": "object", "required": [n] }))
        .collect();
    let mut alternatives = each.clone();
    if !exactly_one {
        alternatives.push(json!({ "type": "object", "not": { "anyOf": each } }));
    }
    Value::Array(alternatives)
}

/// The doc comment of the element at `path` in `file` (protox keeps source info).
fn comment(file: &FileDescriptor, path: &[i32]) -> Option<String> {
    let info = file.file_descriptor_proto().source_code_info.as_ref()?;
    let location = info.location.iter().find(|l| l.path == path)?;
    let text = location
        .leading_comments
        .as_deref()
        .or(location.trailing_comments.as_deref())?;
    let text = text.lines().map(str::trim).collect::<Vec<_>>().join("\n");
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn field_comment(field: &FieldDescriptor) -> Option<String> {
    comment(&field.parent_file(), field.path())
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// Component schemas, added as they are referenced.
struct Schemas<'a> {
    rules: FieldRules<'a>,
    done: BTreeMap<String, Value>,
    seen: HashSet<String>,
    /// Messages to describe: the component's name, the message, and the top-level fields left
    /// out (those a route's path binds, when the message is its whole body).
    pending_messages: Vec<(String, MessageDescriptor, Vec<FieldDescriptor>)>,
    pending_enums: Vec<EnumDescriptor>,
}

impl<'a> Schemas<'a> {
    fn new(rules: FieldRules<'a>) -> Self {
        Self {
            rules,
            done: BTreeMap::new(),
            seen: HashSet::new(),
            pending_messages: Vec::new(),
            pending_enums: Vec::new(),
        }
    }

    fn message(&mut self, message: &MessageDescriptor) -> Value {
        if let Some(schema) = well_known(message) {
            return schema;
        }
        if self.seen.insert(message.full_name().to_owned()) {
            self.pending_messages.push((
                message.full_name().to_owned(),
                message.clone(),
                Vec::new(),
            ));
        }
        reference(message.full_name())
    }

    /// A message as a route's whole body when its path binds `bound` (top-level fields): the
    /// path sets those, so the body schema leaves them out (`<message>.Body`).
    fn body(&mut self, message: &MessageDescriptor, bound: Vec<FieldDescriptor>) -> Value {
        if bound.is_empty() {
            return self.message(message);
        }
        let name = format!("{}.Body", message.full_name());
        if self.seen.insert(name.clone()) {
            self.pending_messages
                .push((name.clone(), message.clone(), bound));
        }
        reference(&name)
    }

    /// Whether a request without `field` is refused (a field of a oneof, or with presence,
    /// never is: leaving it out is the point of those).
    fn required(&self, field: &FieldDescriptor) -> bool {
        field.containing_oneof().is_none()
            && (self.rules)(field.full_name()).is_some_and(|rule| rule.required)
    }

    /// Whether a message's schema lists required fields once `excluded` are left out.
    fn has_required(&self, message: &MessageDescriptor, excluded: &[FieldDescriptor]) -> bool {
        message
            .fields()
            .any(|field| !excluded.contains(&field) && self.required(&field))
    }

    fn enumeration(&mut self, enumeration: &EnumDescriptor) -> Value {
        if enumeration.full_name() == "google.protobuf.NullValue" {
            return json!({"type": "string", "enum": ["NULL_VALUE"], "nullable": true});
        }
        if self.seen.insert(enumeration.full_name().to_owned()) {
            self.pending_enums.push(enumeration.clone());
        }
        reference(enumeration.full_name())
    }

    fn field(&mut self, field: &FieldDescriptor) -> Value {
        if field.is_map()
            && let Kind::Message(entry) = field.kind()
        {
            let value = entry.map_entry_value_field();
            return json!({"type": "object", "additionalProperties": self.kind(&value.kind())});
        }
        let rule = (self.rules)(field.full_name()).unwrap_or_default();
        let mut item = match rule.replacement {
            Some(schema) => schema,
            None => self.kind(&field.kind()),
        };
        // The services' rules on the value (lengths, pattern, range), for each element of a
        // list; a 64-bit integer's range goes to its integer form.
        if !rule.keywords.is_empty()
            && let Value::Object(schema) = &mut item
        {
            let target = if schema.contains_key("oneOf") {
                schema
                    .get_mut("oneOf")
                    .and_then(Value::as_array_mut)
                    .and_then(|forms| forms.iter_mut().find(|form| form["type"] == "integer"))
                    .and_then(Value::as_object_mut)
            } else if schema.contains_key("type") {
                Some(schema)
            } else {
                None
            };
            if let Some(target) = target {
                target.extend(rule.keywords);
            }
        }
        if field.is_list() {
            let mut list = json!({"type": "array", "items": item});
            if let Value::Object(schema) = &mut list {
                schema.extend(rule.list_keywords);
            }
            list
        } else {
            item
        }
    }

    fn kind(&mut self, kind: &Kind) -> Value {
        match kind {
            Kind::Double => json!({"type": "number", "format": "double"}),
            Kind::Float => json!({"type": "number", "format": "float"}),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                json!({"type": "integer", "format": "int32"})
            }
            Kind::Uint32 | Kind::Fixed32 => {
                json!({"type": "integer", "format": "int64", "minimum": 0, "maximum": u32::MAX})
            }
            // Written as a string of decimal digits; read from that or from a JSON number, as
            // protojson reads them.
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => json!({"oneOf": [
                {"type": "string", "format": "int64", "pattern": "^-?[0-9]{1,19}$"},
                {"type": "integer", "format": "int64", "minimum": i64::MIN, "maximum": i64::MAX},
            ]}),
            Kind::Uint64 | Kind::Fixed64 => json!({"oneOf": [
                {"type": "string", "format": "uint64", "pattern": "^[0-9]{1,20}$"},
                {"type": "integer", "minimum": 0, "maximum": u64::MAX},
            ]}),
            Kind::Bool => json!({"type": "boolean"}),
            Kind::String => json!({"type": "string"}),
            Kind::Bytes => json!({"type": "string", "format": "byte"}),
            Kind::Enum(enumeration) => self.enumeration(enumeration),
            Kind::Message(message) => self.message(message),
        }
    }

    /// Builds every pending schema (which may reference more) and returns them all.
    fn done(mut self) -> Map<String, Value> {
        loop {
            if let Some((name, message, excluded)) = self.pending_messages.pop() {
                let mut properties = Map::new();
                let mut required = Vec::new();
                let mut oneofs = Vec::new();
                let mut constraints = Vec::new();
                for field in message.fields() {
                    if excluded.contains(&field) {
                        continue;
                    }
                    let is_required = self.required(&field);
                    if is_required {
                        required.push(field.json_name().to_owned());
                    }
                    let mut schema = self.field(&field);
                    // protojson reads `null` as the field's default, so a field that may be
                    // left out may be null too (not a oneof's member: null there still counts
                    // as the member set).
                    if !is_required
                        && field.containing_oneof().is_none_or(|o| o.is_synthetic())
                        && schema.get("nullable").is_none()
                    {
                        if schema.get("$ref").is_some() {
                            schema = json!({"allOf": [schema]});
                        }
                        schema["nullable"] = json!(true);
                    }
                    if let Some(text) = field_comment(&field) {
                        // A description beside `$ref` would be ignored in OpenAPI 3.0.
                        if schema.get("$ref").is_some() {
                            schema = json!({"allOf": [schema]});
                        }
                        schema["description"] = json!(text);
                    }
                    properties.insert(field.json_name().to_owned(), schema);
                }
                for oneof in message.oneofs().filter(|o| !o.is_synthetic()) {
                    let names: Vec<_> = oneof.fields().map(|f| f.json_name().to_owned()).collect();
                    let exactly_one =
                        (self.rules)(oneof.full_name()).is_some_and(|rule| rule.exactly_one);
                    let how = if exactly_one { "exactly" } else { "at most" };
                    oneofs.push(format!("{how} one of {}", names.join(", ")));
                    constraints.push(oneof_constraint(&names, exactly_one));
                }
                let mut schema = json!({
                    "type": "object",
                    "properties": properties,
                    "additionalProperties": false,
                });
                if !required.is_empty() {
                    schema["required"] = json!(required);
                }
                match constraints.len() {
                    0 => {}
                    1 => {
                        schema["oneOf"] = constraints.pop().expect("one");
                    }
                    _ => {
                        schema["allOf"] = Value::Array(
                            constraints
                                .into_iter()
                                .map(|c| json!({ "oneOf": c }))
                                .collect(),
                        );
                    }
                }
                let oneofs = (!oneofs.is_empty()).then(|| format!("Set {}.", oneofs.join("; ")));
                let description = [comment(&message.parent_file(), message.path()), oneofs]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("\n\n");
                if !description.is_empty() {
                    schema["description"] = json!(description);
                }
                self.done.insert(name, schema);
            } else if let Some(enumeration) = self.pending_enums.pop() {
                let names: Vec<_> = enumeration.values().map(|v| v.name().to_owned()).collect();
                let numbers: Vec<_> = enumeration.values().map(|v| v.number()).collect();
                self.done.insert(
                    enumeration.full_name().to_owned(),
                    json!({
                        "oneOf": [
                            { "type": "string", "enum": names },
                            { "type": "integer", "format": "int32", "enum": numbers },
                        ],
                        "description": "By name (as answered); the number is accepted in requests too.",
                    }),
                );
            } else {
                break;
            }
        }
        self.done.into_iter().collect()
    }
}
