//! The Connect protocol's unary calls on the gRPC port, and honest answers to every other request
//! on a gRPC method path.
//!
//! A Connect unary call is `POST /package.Service/Method` with `application/json` (the request in
//! proto3 JSON) or `application/proto` (binary protobuf, unframed), answered in kind. It runs
//! through the machinery of the HTTP/JSON transcoder: a JSON request is bound to a
//! `DynamicMessage` as a `body: "*"` route binds its body (same mapping, same limits, unknown
//! fields refused), a binary one passes through as the bytes a gRPC call would carry, and either
//! is sent through the gRPC router in process (`http::dispatch`). The gate has judged it before,
//! by the method's own rule, exactly as the gRPC call; refusals of the layers are drawn in
//! Connect's error format by the rescue layer (`Protocol::Connect`). Bodies may be compressed
//! (gzip, zstd) and answers are when `Accept-Encoding` asks: that is `api::content_coding`'s, in
//! front of [`Connect::unary`]. Connect's streaming content
//! types are answered with an Unimplemented end-of-stream message; any other content type on a
//! method path is 415, as gRPC over HTTP/2 specifies.

pub(crate) mod errors;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, MethodDescriptor};
use tonic::Status;

use super::http::dispatch::{self, Answer, DynamicCodec, EncodedCodec, GrpcRouter};
use super::http::{bind, body, is_length_limit, responses, write_json};

/// How a call's messages are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// `application/json`: proto3 JSON.
    Json,
    /// `application/proto`: binary protobuf.
    Proto,
}

impl Encoding {
    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Self::Json => "application/json",
            Self::Proto => "application/proto",
        })
    }
}

/// What a request's content type makes of a call to a method path in Connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `application/json` or `application/proto` (with an optional UTF-8 charset).
    Unary(Encoding),
    /// `application/connect+json` or `application/connect+proto`: a streaming call, which is
    /// answered in its own framing (the content type, as sent).
    Stream(HeaderValue),
}

/// The Connect call a content type asks for; None when it is not Connect's.
pub fn kind(headers: &HeaderMap) -> Option<Kind> {
    let value = headers.get(header::CONTENT_TYPE)?;
    let text = value.to_str().ok()?;
    let mut parts = text.split(';');
    let media = parts.next()?.trim().to_ascii_lowercase();
    // A charset is only UTF-8 (JSON's); any other parameter makes it a type we do not speak.
    let parameters_ok = parts.all(|parameter| {
        let (name, value) = parameter.split_once('=').unwrap_or((parameter, ""));
        name.trim().eq_ignore_ascii_case("charset")
            && value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
    });
    if !parameters_ok {
        return None;
    }
    match media.as_str() {
        "application/json" => Some(Kind::Unary(Encoding::Json)),
        "application/proto" => Some(Kind::Unary(Encoding::Proto)),
        "application/connect+json" | "application/connect+proto" => {
            Some(Kind::Stream(value.clone()))
        }
        _ => None,
    }
}

/// The content types a method path takes, for a 415's `Accept-Post`.
const ACCEPTED: &str = "application/grpc, application/grpc+proto, application/grpc-web, \
                        application/grpc-web+proto, application/grpc-web-text, application/json, \
                        application/proto";

/// The only protocol version there is.
const PROTOCOL_VERSION: &str = "1";

/// Serves Connect unary calls of every method of the descriptor sets; cheap to clone.
#[derive(Clone)]
pub struct Connect {
    inner: Arc<Inner>,
}

struct Inner {
    /// Every method by its path, `/package.Service/Method` (request types from the full pool).
    methods: HashMap<String, MethodDescriptor>,
    /// For responses: `http::responses::pool` (`Struct` kept as bytes).
    responses: DescriptorPool,
    grpc: GrpcRouter,
    /// Largest body and bound message, in bytes: the services' message limit.
    max_body: usize,
    /// Most JSON values in a body (`http::body::max_values`).
    max_values: usize,
}

impl Connect {
    /// Calls of every method in `descriptor_sets` (those `grpc` does not serve answer what the
    /// gRPC router answers them: Unimplemented).
    pub fn new(
        descriptor_sets: &[&[u8]],
        grpc: GrpcRouter,
        max_message_bytes: usize,
    ) -> anyhow::Result<Self> {
        let mut pool = DescriptorPool::new();
        for set in descriptor_sets {
            pool.decode_file_descriptor_set(*set)?;
        }
        let methods = pool
            .services()
            .flat_map(|service| service.methods().collect::<Vec<_>>())
            .map(|method| {
                (
                    format!("/{}/{}", method.parent_service().full_name(), method.name()),
                    method,
                )
            })
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                methods,
                responses: responses::pool_of(descriptor_sets)?,
                grpc,
                max_body: max_message_bytes,
                max_values: body::max_values(max_message_bytes),
            }),
        })
    }

    /// A unary call (the rescue layer's [`Kind::Unary`]: its content type names its encoding).
    /// Its body arrives inflated: Content-Encoding is `api::content_coding`'s.
    pub async fn unary(&self, request: Request) -> Response {
        let Some(Kind::Unary(encoding)) = kind(request.headers()) else {
            return unsupported_media_type(&request);
        };
        let (parts, body) = request.into_parts();
        let path = parts.uri.path().to_owned();
        if parts.method != Method::POST {
            let mut refused = errors::unary_error(
                StatusCode::METHOD_NOT_ALLOWED,
                &Status::unimplemented(format!(
                    "{path} takes POST: Connect unary calls are POSTs (GET is not served)"
                )),
            );
            refused
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return refused;
        }
        if let Some(refused) = self.protocol_errors(&parts.headers) {
            return refused;
        }
        let Some(method) = self.inner.methods.get(&path) else {
            return errors::unary_error_of(&Status::unimplemented(format!(
                "unknown method {path}"
            )));
        };
        if method.is_client_streaming() || method.is_server_streaming() {
            return errors::unary_error_of(&streaming_unimplemented(&path));
        }
        let body = match self.read(&parts.headers, body).await {
            Ok(body) => body,
            Err(status) => return errors::unary_error_of(&status),
        };
        let metadata = dispatch::forwarded_metadata(&parts.headers);
        let grpc = self.inner.grpc.clone();
        let answered = match encoding {
            Encoding::Proto => {
                dispatch::call_unary(grpc, &path, EncodedCodec, metadata, parts.extensions, body)
                    .await
            }
            Encoding::Json => {
                let message = match self.bind(method.input(), &body) {
                    Ok(message) => message,
                    Err(status) => return errors::unary_error_of(&status),
                };
                let Some(output) = self.output(method) else {
                    return errors::unary_error_of(&Status::internal(format!(
                        "no response type {} for JSON",
                        method.output().full_name()
                    )));
                };
                dispatch::call_unary(
                    grpc,
                    &path,
                    DynamicCodec::new(output),
                    metadata,
                    parts.extensions,
                    message,
                )
                .await
                .and_then(|answer| json_answer(&path, answer))
            }
        };
        match answered {
            Ok(answer) => success(encoding, answer),
            Err(status) => errors::unary_error_of(&status),
        }
    }

    /// What Connect's headers ask for that is not served: a protocol version other than 1
    /// (the header itself is optional, as in connect-go by default).
    fn protocol_errors(&self, headers: &HeaderMap) -> Option<Response> {
        let version = headers.get("connect-protocol-version")?;
        (version != PROTOCOL_VERSION).then(|| {
            errors::unary_error_of(&Status::invalid_argument(format!(
                "connect-protocol-version must be \"{PROTOCOL_VERSION}\": got {version:?}"
            )))
        })
    }

    /// The body, within the services' message limit (ResourceExhausted past it); a compressed
    /// body is counted inflated, as it is read.
    async fn read(&self, headers: &HeaderMap, body: Body) -> Result<Bytes, Status> {
        let max = self.inner.max_body;
        let too_large = || {
            Status::resource_exhausted(format!(
                "the request body is larger than the limit of {max} bytes"
            ))
        };
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|length| length > max as u64) {
            return Err(too_large());
        }
        axum::body::to_bytes(body, max)
            .await
            .map_err(|error| match is_length_limit(&error) {
                true => too_large(),
                false => {
                    Status::invalid_argument(format!("the request body is unreadable: {error}"))
                }
            })
    }

    /// The JSON request bound as a `body: "*"` route binds its body: at most `max_values`
    /// values, no key twice, unknown fields refused, and no larger as protobuf than the limit.
    fn bind(&self, input: MessageDescriptor, body: &[u8]) -> Result<DynamicMessage, Status> {
        let checked =
            body::check(body, self.inner.max_values).map_err(|refused| match refused {
                body::Refused::TooMany(why) => Status::resource_exhausted(why),
                body::Refused::Duplicate(why) => Status::invalid_argument(why),
            })?;
        let message = bind::bind_message(input, checked)
            .map_err(|error| Status::invalid_argument(error.0))?;
        let encoded = prost::Message::encoded_len(&message);
        if encoded > self.inner.max_body {
            return Err(Status::resource_exhausted(format!(
                "the request is {encoded} bytes as protobuf, more than the limit of {} bytes",
                self.inner.max_body
            )));
        }
        Ok(message)
    }

    /// The method's response type in the responses pool.
    fn output(&self, method: &MethodDescriptor) -> Option<MessageDescriptor> {
        self.inner
            .responses
            .get_message_by_name(method.output().full_name())
    }
}

/// A JSON call's answer, written as canonical proto3 JSON.
fn json_answer(path: &str, answer: Answer<DynamicMessage>) -> Result<Answer<Bytes>, Status> {
    let mut out = Vec::new();
    write_json(&answer.message, &mut out).map_err(|error| {
        tracing::error!(%error, method = path, "serializing a response");
        Status::internal("could not serialize the response")
    })?;
    Ok(Answer {
        headers: answer.headers,
        message: Bytes::from(out),
        trailers: answer.trailers,
    })
}

/// 200 with the message in the request's encoding; the response's header metadata as headers,
/// its trailer metadata as `trailer-<key>` headers (Connect's unary calls have no trailers).
fn success(encoding: Encoding, answer: Answer<Bytes>) -> Response {
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, encoding.content_type())],
        answer.message,
    )
        .into_response();
    errors::put_metadata(response.headers_mut(), &answer.headers, "");
    errors::put_metadata(response.headers_mut(), &answer.trailers, "trailer-");
    response
}

/// Why a streaming method is not served over Connect.
fn streaming_unimplemented(path: &str) -> Status {
    Status::unimplemented(format!(
        "{path} is a streaming method, and Connect is served for unary calls only: call it over \
         gRPC or gRPC-Web"
    ))
}

/// A Connect streaming call (the rescue layer's [`Kind::Stream`]): Unimplemented, in the
/// stream's own framing so that a streaming client reads it as an error.
pub fn stream(content_type: HeaderValue, request: &Request) -> Response {
    errors::end_of_stream(
        content_type,
        &Status::unimplemented(format!(
            "Connect streaming is not served: {} takes unary Connect calls (application/json, \
             application/proto), gRPC or gRPC-Web",
            request.uri().path()
        )),
    )
}

/// A request to a method path in no protocol served here: 415, as gRPC over HTTP/2 says (an
/// HTTP/2 client must not take gRPC's 200 for a success), naming what is accepted.
pub fn unsupported_media_type(request: &Request) -> Response {
    let sent = match request.headers().get(header::CONTENT_TYPE) {
        Some(value) => format!(
            "content type {:?}",
            String::from_utf8_lossy(value.as_bytes())
        ),
        None => "no content type".to_owned(),
    };
    let message = format!(
        "{} is a gRPC method: it takes gRPC (application/grpc), gRPC-Web (application/grpc-web) \
         or Connect (application/json, application/proto), not {sent}\n",
        request.uri().path()
    );
    let mut response = (
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response();
    response.headers_mut().insert(
        HeaderName::from_static("accept-post"),
        HeaderValue::from_static(ACCEPTED),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(content_type: &str) -> Option<Kind> {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, content_type.parse().unwrap());
        kind(&headers)
    }

    #[test]
    fn content_types_name_the_call() {
        assert_eq!(
            kind_of("application/json"),
            Some(Kind::Unary(Encoding::Json))
        );
        assert_eq!(
            kind_of("Application/JSON; charset=utf-8"),
            Some(Kind::Unary(Encoding::Json))
        );
        assert_eq!(
            kind_of("application/proto"),
            Some(Kind::Unary(Encoding::Proto))
        );
        assert_eq!(
            kind_of("application/connect+proto"),
            Some(Kind::Stream(HeaderValue::from_static(
                "application/connect+proto"
            )))
        );
        for other in [
            "text/plain",
            "application/xml",
            "application/json; charset=latin1",
            "application/json; q=1",
            "application/protobuf",
            "",
        ] {
            assert_eq!(kind_of(other), None, "{other:?}");
        }
        assert_eq!(kind(&HeaderMap::new()), None);
    }
}
