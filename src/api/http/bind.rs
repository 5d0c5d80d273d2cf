//! Request binding: JSON body, path variables and query parameters become one
//! `DynamicMessage` of the method's input type, or an error that names the offending field.
//!
//! All value parsing goes through prost-reflect's canonical proto3-JSON deserializer, so a
//! query parameter `?state=USER_STATE_ACTIVE` or a path variable bound to an int64 is read
//! exactly as the same value in a JSON body would be.

use std::collections::HashMap;

use percent_encoding::percent_decode;
use prost_reflect::{
    DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor,
    ReflectMessage, Value,
};

use super::body::JsonBody;
use super::routes::{BodyRule, Route};
use super::template::Variable;

/// Why a request could not become a message; always InvalidArgument for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindError(pub String);

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn fail<T>(message: impl Into<String>) -> Result<T, BindError> {
    Err(BindError(message.into()))
}

/// Builds the request message of `route` from the matched path variables, the raw query string
/// and the body, which `body::check` has already walked once (value bound, repeated keys).
pub fn bind(
    route: &Route,
    path: Vec<(Variable, String)>,
    query: Option<&str>,
    body: JsonBody<'_>,
) -> Result<DynamicMessage, BindError> {
    let body = body.bytes();
    let input = route.input();
    let mut message = match &route.body {
        BodyRule::None => {
            if !body.trim_ascii().is_empty() {
                return fail(format!(
                    "{} {} takes no request body",
                    route.http_method, route.template.source
                ));
            }
            DynamicMessage::new(input)
        }
        BodyRule::Whole => {
            let message = decode_whole_body(input, body)?;
            // A field the path sets is no part of the body (the OpenAPI body schema leaves it
            // out): a body naming it too would be silently overruled by the path.
            if let Some(field) = route
                .path_bindings
                .iter()
                .filter(|b| b.fields.len() == 1)
                .map(|b| &b.fields[0])
                .find(|field| message.has_field(field))
            {
                return fail(format!(
                    "{}: the path sets it; leave it out of the request body",
                    field.json_name()
                ));
            }
            message
        }
        BodyRule::Field(field) => decode_field_body(input, field, body)?,
    };

    // Path variables win over the body, as in grpc-gateway.
    for (variable, value) in path {
        let binding = route
            .path_bindings
            .iter()
            .find(|b| b.variable == variable)
            .expect("every variable of a template has a binding");
        let leaf = binding.fields.last().expect("never empty");
        let json = json_from_text(leaf, &value)
            .map_err(|why| BindError(format!("path variable {}: {why}", variable.name())))?;
        set_leaf(&mut message, &binding.fields, json)
            .map_err(|why| BindError(format!("path variable {}: {why}", variable.name())))?;
    }

    if let Some(query) = query {
        bind_query(route, &mut message, query)?;
    }
    // Found with the transcoder_bind fuzz harness (fuzz/regressions/transcoder_bind/deep-*):
    // serde_json lets a body nest 128 levels, but the service decodes protobuf only 100
    // messages deep, so a deep enough body bound here and then failed to decode in the
    // service: a 500 (Internal) for what is a bad request.
    if let Some(path) = too_deep(&message) {
        return fail(format!(
            "{path}: messages may nest at most {MAX_NESTING} levels deep"
        ));
    }
    Ok(message)
}

/// One message of type `input` from its JSON (`body`, walked by `body::check`), as a `body: "*"`
/// route binds its whole body: the elements of a streaming body, and the records of a JSON
/// Lines import file.
pub fn bind_message(
    input: MessageDescriptor,
    body: JsonBody<'_>,
) -> Result<DynamicMessage, BindError> {
    let message = decode_whole_body(input, body.bytes())?;
    if let Some(path) = too_deep(&message) {
        return fail(format!(
            "{path}: messages may nest at most {MAX_NESTING} levels deep"
        ));
    }
    Ok(message)
}

/// The messages of a client-streaming route: the body is a JSON array (walked by
/// `body::check`), each element one message of the route's input, named `[i]` in errors. An
/// empty body is an empty stream. Streaming routes take no path variables or query parameters.
pub fn bind_stream(
    route: &Route,
    query: Option<&str>,
    body: JsonBody<'_>,
) -> Result<Vec<DynamicMessage>, BindError> {
    if query.is_some_and(|q| !q.is_empty()) {
        return fail(format!(
            "{} {} takes no query parameters: its body is the stream",
            route.http_method, route.template.source
        ));
    }
    let bytes = body.bytes();
    if bytes.trim_ascii().is_empty() {
        return Ok(Vec::new());
    }
    let elements: Vec<&serde_json::value::RawValue> =
        serde_json::from_slice(bytes).map_err(|error| {
            BindError(format!(
                "invalid JSON body: a streaming route takes a JSON array of messages: {error}"
            ))
        })?;
    elements
        .into_iter()
        .enumerate()
        .map(|(i, element)| {
            bind_message(route.input(), JsonBody::walked(element.get().as_bytes()))
                .map_err(|error| BindError(format!("[{i}]: {error}")))
        })
        .collect()
}

/// How deep messages may nest below the request: prost's recursion limit, which the service
/// applies when it decodes the request the transcoder sends it.
pub const MAX_NESTING: usize = 100;

/// The JSON path (cut short after a few fields) of the first message nested deeper than
/// [`MAX_NESTING`] below `message`, counted as prost counts when it decodes: a message field, a
/// message in a list and a map entry are one level each, a message value in a map entry one
/// more.
fn too_deep(message: &DynamicMessage) -> Option<String> {
    const SHOWN: usize = 8;
    // The walk that names the way allocates at every level; most messages are shallow.
    if !nests_deeper(message, 0) {
        return None;
    }
    let mut path = Vec::new();
    if !deeper(message, 0, &mut path) {
        return None;
    }
    let mut text = String::new();
    for part in path.iter().take(SHOWN) {
        if !text.is_empty() && !part.starts_with('[') {
            text.push('.');
        }
        text.push_str(part);
    }
    if path.len() > SHOWN {
        text.push_str("...");
    }
    Some(text)
}

/// Whether a message below `message` (which is `depth` levels deep) is too deep, counted as
/// [`deeper`] counts, without naming the way.
fn nests_deeper(message: &DynamicMessage, depth: usize) -> bool {
    let inner_too_deep =
        |inner: &DynamicMessage, depth: usize| depth > MAX_NESTING || nests_deeper(inner, depth);
    message.fields().any(|(_, value)| match value {
        Value::Message(inner) => inner_too_deep(inner, depth + 1),
        Value::List(items) => items.iter().any(|item| match item {
            Value::Message(inner) => inner_too_deep(inner, depth + 1),
            _ => false,
        }),
        Value::Map(entries) if !entries.is_empty() && depth + 1 > MAX_NESTING => true,
        Value::Map(entries) => entries.values().any(|item| match item {
            Value::Message(inner) => inner_too_deep(inner, depth + 2),
            _ => false,
        }),
        _ => false,
    })
}

/// Whether a message below `message` (which is `depth` levels deep) is too deep; if so, `path`
/// holds the way there (field names and `[index]`/`[key]` parts).
fn deeper(message: &DynamicMessage, depth: usize, path: &mut Vec<String>) -> bool {
    let visit = |part: String, inner: &DynamicMessage, depth: usize, path: &mut Vec<String>| {
        path.push(part);
        if depth > MAX_NESTING || deeper(inner, depth, path) {
            return true;
        }
        path.pop();
        false
    };
    for (field, value) in message.fields() {
        let name = field.json_name();
        let found = match value {
            Value::Message(inner) => visit(name.to_owned(), inner, depth + 1, path),
            Value::List(items) => items.iter().enumerate().any(|(i, item)| match item {
                Value::Message(inner) => {
                    path.push(name.to_owned());
                    let found = visit(format!("[{i}]"), inner, depth + 1, path);
                    if !found {
                        path.pop();
                    }
                    found
                }
                _ => false,
            }),
            Value::Map(entries) if !entries.is_empty() && depth + 1 > MAX_NESTING => {
                path.push(name.to_owned());
                true
            }
            Value::Map(entries) => entries.iter().any(|(key, item)| match item {
                Value::Message(inner) => {
                    path.push(name.to_owned());
                    let found = visit(format!("[{}]", map_key(key)), inner, depth + 2, path);
                    if !found {
                        path.pop();
                    }
                    found
                }
                _ => false,
            }),
            _ => false,
        };
        if found {
            return true;
        }
    }
    false
}

fn map_key(key: &MapKey) -> String {
    match key {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
        MapKey::String(s) => format!("{s:?}"),
    }
}

/// `body: "*"`: the body is the whole request message. An empty body is an empty message.
fn decode_whole_body(input: MessageDescriptor, body: &[u8]) -> Result<DynamicMessage, BindError> {
    // No body is the empty message; whitespace alone is no JSON and refused below.
    if body.is_empty() {
        return Ok(DynamicMessage::new(input));
    }
    // Tracking the path costs a third of the decoding (a bulk import decodes a million
    // records), so it runs only again for a body that failed, to name the field at fault.
    let mut json = serde_json::Deserializer::from_slice(body);
    let decoded = DynamicMessage::deserialize_with_options(
        input.clone(),
        &mut json,
        &DeserializeOptions::new(),
    )
    .and_then(|message| json.end().map(|()| message));
    decoded.or_else(|_| decode_naming_the_field(input, body))
}

/// Decodes `body` again, tracking the path, for the error of a body that did not decode.
fn decode_naming_the_field(
    input: MessageDescriptor,
    body: &[u8],
) -> Result<DynamicMessage, BindError> {
    let mut json = serde_json::Deserializer::from_slice(body);
    let mut track = serde_path_to_error::Track::new();
    let message = DynamicMessage::deserialize_with_options(
        input,
        serde_path_to_error::Deserializer::new(&mut json, &mut track),
        &DeserializeOptions::new(),
    )
    .map_err(|error| {
        if error.is_syntax() || error.is_eof() || error.is_io() {
            BindError(format!("invalid JSON body: {error}"))
        } else {
            body_error(&track.path().to_string(), &error.to_string())
        }
    })?;
    json.end()
        .map_err(|error| BindError(format!("invalid JSON body: {error}")))?;
    Ok(message)
}

/// `body: "field"`: the body is that one field of the request.
fn decode_field_body(
    input: MessageDescriptor,
    field: &FieldDescriptor,
    body: &[u8],
) -> Result<DynamicMessage, BindError> {
    if body.is_empty() {
        return Ok(DynamicMessage::new(input));
    }
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|error| BindError(format!("invalid JSON body: {error}")))?;
    let wrapped = serde_json::json!({ field.json_name(): value });
    let mut track = serde_path_to_error::Track::new();
    DynamicMessage::deserialize_with_options(
        input,
        serde_path_to_error::Deserializer::new(wrapped, &mut track),
        &DeserializeOptions::new(),
    )
    .map_err(|error| body_error(&track.path().to_string(), &error.to_string()))
}

/// Turns a deserializer error into a message that names the field by its JSON path.
fn body_error(path: &str, error: &str) -> BindError {
    let path = if path == "." { "" } else { path };
    // prost-reflect reports unknown fields at the enclosing object; name the field itself.
    if let Some(rest) = error.strip_prefix("unrecognized field name '")
        && let Some((name, _)) = rest.split_once('\'')
    {
        let full = if path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        };
        return BindError(format!("unknown field {full:?} in the request body"));
    }
    if path.is_empty() {
        BindError(format!("invalid JSON body: {error}"))
    } else {
        BindError(format!(
            "invalid value for {path:?} in the request body: {error}"
        ))
    }
}

/// The JSON value a path or query text stands for, given the field it fills. Most kinds accept
/// their JSON string form directly; booleans and numeric enums need a JSON type of their own.
fn json_from_text(field: &FieldDescriptor, text: &str) -> Result<serde_json::Value, String> {
    Ok(match field.kind() {
        Kind::Bool => match text {
            "true" | "True" | "TRUE" | "t" | "T" | "1" => serde_json::Value::Bool(true),
            "false" | "False" | "FALSE" | "f" | "F" | "0" => serde_json::Value::Bool(false),
            _ => return Err(format!("{text:?} is not a boolean")),
        },
        Kind::Enum(_) => match text.parse::<i32>() {
            Ok(number) => serde_json::Value::from(number),
            Err(_) => serde_json::Value::String(text.to_owned()),
        },
        _ => serde_json::Value::String(text.to_owned()),
    })
}

/// Sets the last field of `fields` (descending through the others, creating them as needed)
/// from its JSON form. A JSON array fills a repeated field.
fn set_leaf(
    message: &mut DynamicMessage,
    fields: &[FieldDescriptor],
    json: serde_json::Value,
) -> Result<(), String> {
    let (leaf, parents) = fields.split_last().expect("never empty");
    let mut target = message;
    for parent in parents {
        target = match target.get_field_mut(parent) {
            Value::Message(inner) => inner,
            _ => return Err(format!("{} is not a message", parent.name())),
        };
    }
    let wrapped = serde_json::json!({ leaf.json_name(): json });
    let mut parsed = DynamicMessage::deserialize(target.descriptor(), wrapped)
        .map_err(|error| format!("invalid value: {error}"))?;
    let value = parsed
        .take_field(leaf)
        .unwrap_or_else(|| Value::default_value_for_field(leaf));
    target
        .try_set_field(leaf, value)
        .map_err(|error| error.to_string())
}

/// Query parameters: `a.b=` for nested fields (JSON or proto names), repeated keys for
/// repeated fields. Unknown names, fields already bound by path or body, and a second value for
/// a singular field are errors.
fn bind_query(route: &Route, message: &mut DynamicMessage, query: &str) -> Result<(), BindError> {
    // Key -> (resolved fields, values), in first-seen order.
    let mut order: Vec<String> = Vec::new();
    let mut params: HashMap<String, (String, Vec<FieldDescriptor>, Vec<String>)> = HashMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode_query_text(key)
            .map_err(|why| BindError(format!("query parameter {key:?}: {why}")))?;
        let value = decode_query_text(value)
            .map_err(|why| BindError(format!("query parameter {key:?}: {why}")))?;
        let fields = resolve_query_key(route, &key)?;
        let canonical = fields
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(".");
        match params.get_mut(&canonical) {
            Some((_, _, values)) => values.push(value),
            None => {
                order.push(canonical.clone());
                params.insert(canonical, (key, fields, vec![value]));
            }
        }
    }
    for canonical in order {
        let (key, fields, values) = params.remove(&canonical).expect("inserted above");
        let leaf = fields.last().expect("never empty");
        let json = if leaf.is_list() {
            let items = values
                .iter()
                .map(|v| json_from_text(leaf, v))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|why| BindError(format!("query parameter {key}: {why}")))?;
            serde_json::Value::Array(items)
        } else {
            if values.len() > 1 {
                return fail(format!(
                    "query parameter {key} is given {} times but is not repeated",
                    values.len()
                ));
            }
            json_from_text(leaf, &values[0])
                .map_err(|why| BindError(format!("query parameter {key}: {why}")))?
        };
        set_leaf(message, &fields, json)
            .map_err(|why| BindError(format!("query parameter {key}: {why}")))?;
    }
    Ok(())
}

/// Resolves a dotted query key against the input message and refuses keys that the path or the
/// body already binds.
fn resolve_query_key(route: &Route, key: &str) -> Result<Vec<FieldDescriptor>, BindError> {
    let unknown = || BindError(format!("unknown query parameter {key:?}"));
    if matches!(route.body, BodyRule::Whole) {
        return Err(BindError(format!(
            "unknown query parameter {key:?}: every field of this route is in the body"
        )));
    }
    let mut message = route.input();
    let mut fields = Vec::new();
    let parts: Vec<&str> = key.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let field = message
            .get_field_by_json_name(part)
            .or_else(|| message.get_field_by_name(part))
            .ok_or_else(unknown)?;
        if i + 1 < parts.len() {
            match field.kind() {
                Kind::Message(next) if !field.is_list() && !field.is_map() => message = next,
                _ => return Err(unknown()),
            }
        }
        fields.push(field);
    }
    if fields.last().is_some_and(|f| f.is_map()) {
        return fail(format!(
            "query parameter {key}: map fields cannot be set in the query"
        ));
    }
    let bound_by_path = route.path_bindings.iter().any(|binding| {
        let n = binding.fields.len().min(fields.len());
        binding.fields[..n] == fields[..n]
    });
    if bound_by_path {
        return fail(format!(
            "query parameter {key} is already bound by the path"
        ));
    }
    if let BodyRule::Field(body) = &route.body
        && fields[0] == *body
    {
        return fail(format!(
            "query parameter {key} is already bound by the body"
        ));
    }
    Ok(fields)
}

/// `application/x-www-form-urlencoded` text: `+` is a space, then percent-decoding; the result
/// must be UTF-8 (no silent replacement characters).
fn decode_query_text(raw: &str) -> Result<String, String> {
    let spaced = raw.replace('+', " ");
    String::from_utf8(percent_decode(spaced.as_bytes()).collect())
        .map_err(|_| "not valid UTF-8 after percent-decoding".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::http::routes::RouteTable;
    use crate::api::http::template::PathTemplate;
    use prost_reflect::DescriptorPool;

    fn pool() -> DescriptorPool {
        DescriptorPool::decode(crate::proto::DESCRIPTOR_SET).unwrap()
    }

    fn route(name: &str) -> Route {
        RouteTable::from_pool(&pool())
            .unwrap()
            .routes()
            .iter()
            .find(|r| r.rpc.name() == name)
            .unwrap()
            .clone()
    }

    /// A route over ListUsersRequest with the given template and body rule, for binder cases
    /// our own protos do not have (yet).
    fn custom(template: &str, body: Option<&str>) -> Route {
        let mut r = route("ListUsers");
        r.http_method = http::Method::GET;
        r.template = PathTemplate::parse(template).unwrap();
        r.body = match body {
            None => BodyRule::None,
            Some("*") => BodyRule::Whole,
            Some(name) => BodyRule::Field(r.input().get_field_by_name(name).unwrap()),
        };
        r.path_bindings = r
            .template
            .variables
            .iter()
            .map(|v| {
                let mut m = r.input();
                let mut fields = Vec::new();
                for part in &v.field_path {
                    let f = m.get_field_by_name(part).unwrap();
                    if let Kind::Message(next) = f.kind() {
                        m = next;
                    }
                    fields.push(f);
                }
                super::super::routes::PathBinding {
                    variable: v.clone(),
                    fields,
                }
            })
            .collect();
        r
    }

    fn json(message: &DynamicMessage) -> serde_json::Value {
        serde_json::to_value(message).unwrap()
    }

    /// The body as the server hands it to `bind`: walked once, without a value bound.
    fn checked(body: &[u8]) -> Result<JsonBody<'_>, String> {
        use crate::api::http::body::{Refused, check};
        check(body, usize::MAX).map_err(|refused| match refused {
            Refused::TooMany(why) | Refused::Duplicate(why) => why,
        })
    }

    fn bind_path(
        route: &Route,
        path: &str,
        query: Option<&str>,
        body: &str,
    ) -> Result<serde_json::Value, String> {
        let vars = route.template.matches(path).unwrap().unwrap();
        let body = checked(body.as_bytes())?;
        bind(route, vars, query, body)
            .map(|m| json(&m))
            .map_err(|e| e.0)
    }

    #[test]
    fn whole_body_accepts_json_and_proto_names_and_enum_numbers() {
        let r = route("ListUsers");
        let out = bind_path(
            &r,
            "/v1/users/_search",
            None,
            r#"{"query":{"limit":2,"offset":"5"},"sorting_column":3,
                "queries":[{"user_id_query":{"id":"x"}},{"schemaIDQuery":{"id":"s"}}]}"#,
        )
        .unwrap();
        assert_eq!(out["query"]["limit"], 2);
        assert_eq!(out["query"]["offset"], "5");
        assert!(out["sortingColumn"].is_string());
        assert_eq!(out["queries"][0]["userIdQuery"]["id"], "x");
        assert_eq!(out["queries"][1]["schemaIDQuery"]["id"], "s");
        // No body is the empty message; whitespace alone is no JSON.
        assert_eq!(
            bind_path(&r, "/v1/users/_search", None, "").unwrap(),
            serde_json::json!({})
        );
        assert!(
            bind_path(&r, "/v1/users/_search", None, "  ")
                .unwrap_err()
                .starts_with("invalid JSON body")
        );
    }

    #[test]
    fn whole_body_errors_name_the_field() {
        let r = route("ListUsers");
        let cases = [
            (r#"{"bogus":1}"#, "\"bogus\""),
            (r#"{"query":{"limit":1,"nope":true}}"#, "\"query.nope\""),
            (
                r#"{"queries":[{},{"emailQuery":{"adress":"a"}}]}"#,
                "queries[1].emailQuery.adress",
            ),
            (r#"{"query":{"limit":"abc"}}"#, "\"query.limit\""),
            (r#"{"query":{"limit":99999999999}}"#, "\"query.limit\""),
            (
                r#"{"sortingColumn":"FIELD_NAME_NOPE"}"#,
                "\"sortingColumn\"",
            ),
            (r#"{"query":"#, "invalid JSON body"),
            (r#"{} {}"#, "invalid JSON body"),
            ("[1]", "invalid JSON body"),
            (
                r#"{"query":{"limit":1},"query":{}}"#,
                "\"query\" is given twice",
            ),
            (
                r#"{"queries":[{"orQuery":{"queries":[],"queries":[]}}]}"#,
                "\"queries[0].orQuery.queries\" is given twice",
            ),
        ];
        for (body, expected) in cases {
            let error = bind_path(&r, "/v1/users/_search", None, body).unwrap_err();
            assert!(error.contains(expected), "{body}: {error}");
        }
        let error = bind(&r, vec![], None, checked(b"{\"a\xff\":1}").unwrap()).unwrap_err();
        assert!(error.0.contains("invalid JSON body"), "{error}");
        let error = bind(&r, vec![], Some("query.limit=1"), checked(b"{}").unwrap()).unwrap_err();
        assert!(error.0.contains("query.limit"), "{error}");
    }

    #[test]
    fn path_variables_fill_fields() {
        let r = route("GetUser");
        assert_eq!(
            bind_path(&r, "/v1/users/a%20b", None, "").unwrap(),
            serde_json::json!({"userId": "a b"})
        );
        let error = bind_path(&r, "/v1/users/x", None, "{}").unwrap_err();
        assert!(error.contains("takes no request body"), "{error}");
        let error = bind_path(&r, "/v1/users/x", Some("user_id=y"), "").unwrap_err();
        assert!(error.contains("bound by the path"), "{error}");

        // Nested variables, also into a field that the path and a body field share.
        let r = custom("/v1/{query.limit}", Some("queries"));
        let out = bind_path(&r, "/v1/7", None, r#"[{"stateQuery":{"state":2}}]"#).unwrap();
        assert_eq!(out["query"]["limit"], 7);
        assert!(out["queries"][0]["stateQuery"]["state"].is_string());
        let error = bind_path(&r, "/v1/x", None, "").unwrap_err();
        assert!(error.contains("path variable query.limit"), "{error}");
        let error = bind_path(&r, "/v1/7", None, r#"[{"bad":1}]"#).unwrap_err();
        assert!(error.contains("queries[0].bad"), "{error}");
    }

    #[test]
    fn query_parameters_fill_nested_and_repeated_fields() {
        let r = custom("/v1/users", None);
        let out = bind_path(
            &r,
            "/v1/users",
            Some("query.limit=3&query.offset=10&query.asc=true&sortingColumn=FIELD_NAME_EMAIL"),
            "",
        )
        .unwrap();
        assert_eq!(
            out["query"],
            serde_json::json!({"offset": "10", "limit": 3, "asc": true})
        );
        assert_eq!(out["sortingColumn"], "FIELD_NAME_EMAIL");
        let out = bind_path(
            &r,
            "/v1/users",
            Some("sorting_column=3&query.asc=false"),
            "",
        )
        .unwrap();
        assert!(out["sortingColumn"].is_string());
        assert_eq!(out["query"], serde_json::json!({}));

        for (query, expected) in [
            ("query.limit=abc", "query.limit"),
            (
                "query.limit=1&query.limit=2",
                "query.limit is given 2 times",
            ),
            ("bogus=1", "unknown query parameter \"bogus\""),
            ("query.bogus=1", "unknown query parameter \"query.bogus\""),
            ("query.asc=maybe", "query.asc"),
            ("sortingColumn=NOPE", "sortingColumn"),
            ("query=1", "query"),
            ("query.limit=%FF", "not valid UTF-8"),
        ] {
            let error = bind_path(&r, "/v1/users", Some(query), "").unwrap_err();
            assert!(error.contains(expected), "{query}: {error}");
        }
    }

    /// Bodies nested around prost's recursion limit: what binds is exactly what the service can
    /// decode, and the rest is refused naming where it is too deep.
    #[test]
    fn nesting_is_refused_exactly_where_the_service_could_not_decode_it() {
        use crate::proto::user::v1 as pb;
        use prost::Message;
        fn agrees<M: Message + Default>(r: &Route, path: &str, body: &str) -> Result<(), String> {
            let vars = r.template.matches(path).unwrap().unwrap();
            let bound = bind(r, vars, None, checked(body.as_bytes())?).map_err(|e| e.0);
            if let Ok(message) = &bound {
                assert!(
                    M::decode(message.encode_to_vec().as_slice()).is_ok(),
                    "{body}"
                );
            }
            bound.map(drop)
        }
        // A leaf at depth 2 + 2n below ListUsersRequest.
        let not = |n: usize| {
            let mut q = r#"{"emailQuery":{"address":"a"}}"#.to_owned();
            for _ in 0..n {
                q = format!(r#"{{"notQuery":{{"query":{q}}}}}"#);
            }
            format!(r#"{{"queries":[{q}]}}"#)
        };
        let list = route("ListUsers");
        let search = |n| agrees::<pb::ListUsersRequest>(&list, "/v1/users/_search", &not(n));
        assert_eq!(search(49), Ok(()));
        assert_eq!(
            search(50).unwrap_err(),
            "queries[0].notQuery.query.notQuery.query.notQuery.query...: messages may nest at \
             most 100 levels deep"
        );
        // 33 objects reach depth 99 (Struct, entry, Value each); a list adds one, its items two.
        let data = |inner: &str| {
            let mut d = inner.to_owned();
            for _ in 0..33 {
                d = format!(r#"{{"a":{d}}}"#);
            }
            format!(r#"{{"organizationId":"o","schemaId":"s","data":{d}}}"#)
        };
        let create = route("CreateUser");
        let create = |inner| agrees::<pb::CreateUserRequest>(&create, "/v1/users", &data(inner));
        assert_eq!(create("1"), Ok(()));
        assert_eq!(create("[]"), Ok(()));
        let error = create("[1]").unwrap_err();
        // Well-known types are named by their proto fields.
        assert_eq!(
            error,
            r#"data.fields["a"].structValue.fields["a"].structValue.fields...: messages may nest at most 100 levels deep"#
        );
    }
}
