//! HTTP/JSON in grpc-gateway style, the OpenAPI document and gRPC-Web, on the gRPC port.
//!
//! Routes come from the `google.api.http` rules in the descriptor set, not from per-RPC code.
//! A JSON request is bound to a `DynamicMessage`, sent through the gRPC router in process (so
//! the layers on that router apply to it, as they do to a gRPC call; the layers on the whole
//! port, such as the gate and the deadline, have already judged the JSON request itself) and the
//! response is written as canonical proto3 JSON. Connect calls (`api::connect`) reuse this
//! machinery: the binding, the in-process dispatch and the JSON writer. Which protocol a request
//! speaks is decided in front of this router, by `api::port`.

pub(crate) mod bind;
pub(crate) mod body;
pub(crate) mod dispatch;
pub(crate) mod errors;
pub(crate) mod openapi;
pub(crate) mod protojson;
pub(crate) mod responses;
pub(crate) mod routes;
pub(crate) mod template;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderName, Method, StatusCode, header};
use prost_reflect::{
    DescriptorPool, DynamicMessage, Kind, ReflectMessage, SerializeOptions, Value,
};
use tonic::Status;
use tonic::metadata::MetadataMap;

use crate::auth::layer::RouteResolver;
use crate::refusal::grpc_content_type;
use dispatch::GrpcRouter;
use routes::{Lookup, Route, RouteTable};

const OPENAPI_PATH: &str = "/openapi.json";

/// The transcoder's routes, decoded and built once from the descriptor set: the router serves
/// them, and the gate judges a JSON call by the gRPC method its route names ([`Self::resolver`]).
/// What the OpenAPI document says of one request field or oneof beyond its type: the
/// directory's validation rules (`api::grpc::fields`), which this generic transcoder does not
/// know itself and is handed by startup.
#[derive(Clone, Debug, Default)]
pub struct FieldSchema {
    /// JSON Schema keywords for a string field (`minLength`, `maxLength`, `pattern`).
    pub keywords: serde_json::Map<String, serde_json::Value>,
    /// JSON Schema keywords for a list field (`minItems`, `maxItems`).
    pub list_keywords: serde_json::Map<String, serde_json::Value>,
    /// A schema in place of the one the field's type gives (a narrower enum).
    pub replacement: Option<serde_json::Value>,
    /// A request without the field is refused.
    pub required: bool,
    /// On a oneof: exactly one member must be set (otherwise at most one may be).
    pub exactly_one: bool,
}

/// The [`FieldSchema`] of a field or oneof, by its full proto name.
pub type FieldRules<'a> = &'a dyn Fn(&str) -> Option<FieldSchema>;

pub struct Transcoder {
    /// For error details (`Any`) whose types our protos define.
    pool: DescriptorPool,
    /// For responses: [`responses::pool`].
    responses: DescriptorPool,
    table: Arc<RouteTable>,
}

impl Transcoder {
    pub fn new(descriptor_set: &[u8]) -> anyhow::Result<Self> {
        let pool = DescriptorPool::decode(descriptor_set)?;
        let table = RouteTable::from_pool(&pool)?;
        Ok(Self {
            pool,
            responses: responses::pool(descriptor_set)?,
            table: Arc::new(table),
        })
    }

    /// The gRPC method each HTTP/JSON route calls, for the gate in front of the router (which
    /// judges a JSON call by its gRPC method's rule, before the body is even read).
    pub fn resolver(&self) -> RouteResolver {
        let table = self.table.clone();
        Arc::new(
            move |method: &Method, path: &str| match table.lookup(method, path) {
                Lookup::Found(route, _) => Some(route.grpc_path.clone()),
                _ => None,
            },
        )
    }

    /// The route template (as written in the `google.api.http` rule) of each HTTP/JSON route,
    /// for metrics labelled by route rather than by raw path.
    pub fn templates(&self) -> RouteResolver {
        let table = self.table.clone();
        Arc::new(
            move |method: &Method, path: &str| match table.lookup(method, path) {
                Lookup::Found(route, _) => Some(route.template.source.clone()),
                _ => None,
            },
        )
    }

    /// The gRPC services (`grpc`, with their layers) with the JSON routes and the OpenAPI
    /// document as their fallback: JSON calls are bound and dispatched to `grpc` itself. The
    /// one-port router (`api::port`) puts gRPC-Web, Connect and content coding in front.
    /// `extra_openapi` documents routes served beside the transcoded ones (paths, schemas);
    /// `field_rules` adds the services' rules on request fields to its schemas. A JSON body, and
    /// the message bound from it, may hold `max_message_bytes` (the gRPC services' message
    /// limit) and [`body::max_values`] JSON values; larger is 413 with a ResourceExhausted body.
    pub fn router(
        self,
        grpc: GrpcRouter,
        extra_openapi: (
            serde_json::Map<String, serde_json::Value>,
            serde_json::Map<String, serde_json::Value>,
        ),
        field_rules: FieldRules<'_>,
        max_message_bytes: usize,
    ) -> anyhow::Result<axum::Router> {
        let openapi = Bytes::from(serde_json::to_vec(&openapi::document(
            &self.table,
            extra_openapi,
            field_rules,
        ))?);
        tracing::debug!(routes = self.table.routes().len(), "HTTP/JSON routes");
        let gateway = Gateway {
            pool: self.pool,
            responses: self.responses,
            table: self.table,
            grpc: grpc.clone(),
            openapi,
            max_body: max_message_bytes,
            max_values: body::max_values(max_message_bytes),
        };
        Ok(grpc.fallback(move |request: Request| {
            let gateway = gateway.clone();
            async move { gateway.handle(request).await }
        }))
    }
}

#[derive(Clone)]
struct Gateway {
    /// For error details (`Any`) whose types our protos define.
    pool: DescriptorPool,
    /// For responses: [`responses::pool`].
    responses: DescriptorPool,
    table: Arc<RouteTable>,
    grpc: GrpcRouter,
    openapi: Bytes,
    /// Largest body and bound message, in bytes.
    max_body: usize,
    /// Most JSON values in a body.
    max_values: usize,
}

impl Gateway {
    async fn handle(&self, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        // A gRPC call that no service registered must fail as gRPC, never as JSON (a streaming
        // client would otherwise wait forever).
        if grpc_content_type(&parts.headers).is_some() {
            return Status::unimplemented(format!("unknown method {}", parts.uri.path()))
                .into_http::<Body>();
        }
        if parts.uri.path() == OPENAPI_PATH {
            return if parts.method == Method::GET || parts.method == Method::HEAD {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    self.openapi.clone(),
                )
                    .into_response()
            } else {
                errors::method_not_allowed(&[Method::GET, Method::HEAD])
            };
        }
        let (route, path) = match self.table.lookup(&parts.method, parts.uri.path()) {
            Lookup::Found(route, path) => (route, path),
            Lookup::BadPath(why) => return errors::error_response(&Status::invalid_argument(why)),
            Lookup::MethodNotAllowed(allowed) => return errors::method_not_allowed(&allowed),
            Lookup::NotFound => return errors::not_found(),
        };
        let too_large = || {
            errors::error_response_with(
                StatusCode::PAYLOAD_TOO_LARGE,
                &Status::resource_exhausted(format!(
                    "the request body is larger than the limit of {} bytes",
                    self.max_body
                )),
                None,
            )
        };
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|length| length > self.max_body as u64) {
            return too_large();
        }
        let body = match axum::body::to_bytes(body, self.max_body).await {
            Ok(body) => body,
            Err(error) if is_length_limit(&error) => return too_large(),
            Err(error) => {
                return errors::error_response(&Status::invalid_argument(format!(
                    "the request body is unreadable: {error}"
                )));
            }
        };
        let checked = match body::check(&body, self.max_values) {
            Ok(checked) => checked,
            Err(body::Refused::TooMany(why)) => {
                return errors::error_response_with(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &Status::resource_exhausted(why),
                    None,
                );
            }
            Err(body::Refused::Duplicate(why)) => {
                return errors::error_response(&Status::invalid_argument(why));
            }
        };
        if route.is_client_streaming() {
            let messages = match bind::bind_stream(route, parts.uri.query(), checked) {
                Ok(messages) => messages,
                Err(error) => return errors::error_response(&Status::invalid_argument(error.0)),
            };
            // Each message must fit the services' limit, as a gRPC stream's messages must.
            for (i, message) in messages.iter().enumerate() {
                if let Some(refused) = self.too_large_as_protobuf(message, &format!("[{i}] ")) {
                    return refused;
                }
            }
            let Some(output) = self.output(route) else {
                return self.no_output(route);
            };
            let metadata = dispatch::forwarded_metadata(&parts.headers);
            return match dispatch::call_client_streaming(
                self.grpc.clone(),
                &route.grpc_path,
                output,
                metadata,
                parts.extensions,
                messages,
            )
            .await
            {
                Ok((metadata, message)) => success(route, metadata, &message),
                Err(status) => errors::service_error_response(&status, &self.pool),
            };
        }
        let message = match bind::bind(route, path, parts.uri.query(), checked) {
            Ok(message) => message,
            Err(error) => return errors::error_response(&Status::invalid_argument(error.0)),
        };
        // Protobuf is usually smaller than JSON, but not always (a `Struct` number costs more
        // than its digits): the message must fit the services' limit as well.
        if let Some(refused) = self.too_large_as_protobuf(&message, "") {
            return refused;
        }
        let metadata = dispatch::forwarded_metadata(&parts.headers);
        let Some(output) = self.output(route) else {
            return self.no_output(route);
        };
        match dispatch::call(
            self.grpc.clone(),
            &route.grpc_path,
            output,
            metadata,
            parts.extensions,
            message,
        )
        .await
        {
            Ok((metadata, message)) => success(route, metadata, &message),
            Err(status) => errors::service_error_response(&status, &self.pool),
        }
    }
}

impl Gateway {
    /// 413 when `message` is larger as protobuf than the services take (`what` names it).
    fn too_large_as_protobuf(&self, message: &DynamicMessage, what: &str) -> Option<Response> {
        let encoded = prost::Message::encoded_len(message);
        (encoded > self.max_body).then(|| {
            errors::error_response_with(
                StatusCode::PAYLOAD_TOO_LARGE,
                &Status::resource_exhausted(format!(
                    "{what}the request is {encoded} bytes as protobuf, more than the limit of {} \
                     bytes",
                    self.max_body
                )),
                None,
            )
        })
    }

    /// The route's response type in the responses pool.
    fn output(&self, route: &Route) -> Option<prost_reflect::MessageDescriptor> {
        self.responses
            .get_message_by_name(route.output().full_name())
    }

    fn no_output(&self, route: &Route) -> Response {
        errors::error_response(&Status::internal(format!(
            "no response type {} for JSON",
            route.output().full_name()
        )))
    }
}

/// Whether reading a body failed on the size limit (rather than on the connection).
pub(crate) fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = source {
        if error.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = error.source();
    }
    false
}

/// 200 with the response (or its `response_body` field) as canonical JSON; the response's
/// header metadata is passed on as `grpc-metadata-<key>` headers, as grpc-gateway does.
fn success(route: &Route, metadata: MetadataMap, message: &DynamicMessage) -> Response {
    let body = match response_json(route, message) {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(%error, method = route.rpc.full_name(), "serializing a response");
            return errors::error_response(&Status::internal("could not serialize the response"));
        }
    };
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    for (name, value) in metadata.into_headers().iter() {
        let name = name.as_str();
        if name.starts_with("grpc-") || name == "content-type" || name == "date" {
            continue;
        }
        if let Ok(name) = HeaderName::from_bytes(format!("grpc-metadata-{name}").as_bytes()) {
            response.headers_mut().append(name, value.clone());
        }
    }
    response
}

/// A message in canonical proto3 JSON, as every JSON answer is written (the transcoder's and
/// Connect's).
pub(crate) fn write_json(
    message: &DynamicMessage,
    out: &mut Vec<u8>,
) -> Result<(), serde_json::Error> {
    message.serialize_with_options(&mut protojson::serializer(out), &SerializeOptions::new())
}

/// The JSON bytes of the response, written straight from the message so that fields keep their
/// proto order (as grpc-gateway writes them).
fn response_json(route: &Route, message: &DynamicMessage) -> Result<Vec<u8>, serde_json::Error> {
    let write = write_json;
    let mut out = Vec::new();
    let Some(field) = &route.response_body else {
        write(message, &mut out)?;
        return Ok(out);
    };
    // A message, or a list of them (where a response's bulk is), is written straight too; the
    // response comes from the responses pool, so its field is looked up there.
    if let Some(field) = message.descriptor().get_field(field.number()) {
        match &*message.get_field(&field) {
            Value::Message(inner) if message.has_field(&field) => {
                write(inner, &mut out)?;
                return Ok(out);
            }
            Value::List(items) if matches!(field.kind(), Kind::Message(_)) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    if let Value::Message(item) = item {
                        write(item, &mut out)?;
                    }
                }
                out.push(b']');
                return Ok(out);
            }
            _ => {}
        }
    }
    let whole =
        message.serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new())?;
    let value = match whole.get(field.json_name()) {
        Some(value) => value.clone(),
        // The field has its default value, which the canonical mapping omits: write the default.
        None if field.is_list() => serde_json::json!([]),
        None if field.is_map() || matches!(field.kind(), Kind::Message(_)) => serde_json::json!({}),
        None => {
            let all = message.serialize_with_options(
                serde_json::value::Serializer,
                &SerializeOptions::new().skip_default_fields(false),
            )?;
            all.get(field.json_name()).cloned().unwrap_or_default()
        }
    };
    protojson::to_vec(&value)
}
