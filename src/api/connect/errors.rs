//! Errors as the Connect protocol writes them: a unary call gets the HTTP status of its code and
//! the body `{"code": "not_found", "message": "...", "details": [{"type": ..., "value": ...}]}`
//! (always `application/json`, whatever the request's encoding); a streaming call gets HTTP 200
//! and an end-of-stream message carrying the same error.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use prost::Message;
use tonic::metadata::MetadataMap;
use tonic::{Code, Status};

/// Connect's name of a code (`canceled` with one l, as Connect spells it).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Cancelled => "canceled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
        // An error never carries OK; should one, it is no success either.
        Code::Ok => "unknown",
    }
}

/// The HTTP status of a unary error. Connect's table (since its 2023 revision: canceled 499,
/// deadline_exceeded 504, failed_precondition 400, unimplemented 501) is grpc-gateway's, so the
/// one table serves both (the test below pins Connect's).
pub fn http_status(code: Code) -> StatusCode {
    crate::api::http::errors::http_status(code)
}

/// The error as Connect's JSON: its code, message (left out when empty) and the status's details
/// (`google.rpc.Status` details: each `Any` as its type's full name and the unpadded base64 of
/// its bytes, as Connect writes them).
pub fn error_json(status: &Status) -> serde_json::Value {
    let mut error = serde_json::Map::new();
    error.insert("code".into(), code_name(status.code()).into());
    if !status.message().is_empty() {
        error.insert("message".into(), status.message().into());
    }
    let details: Vec<serde_json::Value> = tonic_types::pb::Status::decode(status.details())
        .map(|decoded| decoded.details)
        .unwrap_or_default()
        .into_iter()
        .map(|any| {
            serde_json::json!({
                "type": any.type_url.rsplit('/').next().unwrap_or_default(),
                "value": data_encoding::BASE64_NOPAD.encode(&any.value),
            })
        })
        .collect();
    if !details.is_empty() {
        error.insert("details".into(), details.into());
    }
    serde_json::Value::Object(error)
}

/// A unary call's error response: `http` (the code's, unless a refusal names its own), the JSON
/// error body, and the status's metadata as headers.
pub fn unary_error(http: StatusCode, status: &Status) -> Response {
    let body = serde_json::to_vec(&error_json(status)).unwrap_or_default();
    let mut response = (
        http,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response();
    put_metadata(response.headers_mut(), status.metadata(), "");
    response
}

/// [`unary_error`] with the code's own HTTP status.
pub fn unary_error_of(status: &Status) -> Response {
    unary_error(http_status(status.code()), status)
}

/// Connect's flag of the end-of-stream message in a stream's envelope.
const END_STREAM: u8 = 0b10;

/// A streaming call's error: HTTP 200 with the request's content type and one end-of-stream
/// message `{"error": {...}}` (JSON whatever the stream's encoding, as Connect specifies).
pub fn end_of_stream(content_type: HeaderValue, status: &Status) -> Response {
    let message =
        serde_json::to_vec(&serde_json::json!({"error": error_json(status)})).unwrap_or_default();
    let mut envelope = BytesMut::with_capacity(5 + message.len());
    envelope.put_u8(END_STREAM);
    envelope.put_u32(u32::try_from(message.len()).unwrap_or(u32::MAX));
    envelope.put_slice(&message);
    let mut response = Response::new(Body::from(envelope.freeze()));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response
}

/// Metadata of a call (headers or trailers) as response headers named `prefix` + key; gRPC's own
/// headers and the HTTP headers of the gRPC response are not metadata.
pub fn put_metadata(headers: &mut HeaderMap, metadata: &MetadataMap, prefix: &str) {
    for (name, value) in metadata.clone().into_headers().iter() {
        let key = name.as_str();
        if key.starts_with("grpc-")
            || matches!(
                key,
                "content-type" | "content-length" | "content-encoding" | "date" | "te" | "trailer"
            )
        {
            continue;
        }
        if let Ok(name) = HeaderName::from_bytes(format!("{prefix}{key}").as_bytes()) {
            headers.append(name, value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_http_statuses_follow_the_connect_spec() {
        let table = [
            (Code::Cancelled, "canceled", 499),
            (Code::Unknown, "unknown", 500),
            (Code::InvalidArgument, "invalid_argument", 400),
            (Code::DeadlineExceeded, "deadline_exceeded", 504),
            (Code::NotFound, "not_found", 404),
            (Code::AlreadyExists, "already_exists", 409),
            (Code::PermissionDenied, "permission_denied", 403),
            (Code::ResourceExhausted, "resource_exhausted", 429),
            (Code::FailedPrecondition, "failed_precondition", 400),
            (Code::Aborted, "aborted", 409),
            (Code::OutOfRange, "out_of_range", 400),
            (Code::Unimplemented, "unimplemented", 501),
            (Code::Internal, "internal", 500),
            (Code::Unavailable, "unavailable", 503),
            (Code::DataLoss, "data_loss", 500),
            (Code::Unauthenticated, "unauthenticated", 401),
        ];
        for (code, name, http) in table {
            assert_eq!(code_name(code), name);
            assert_eq!(http_status(code).as_u16(), http, "{code:?}");
        }
    }

    #[test]
    fn details_are_typed_and_base64_without_padding() {
        let info = tonic_types::pb::ErrorInfo {
            reason: "R".into(),
            domain: "d".into(),
            metadata: Default::default(),
        };
        let details = tonic_types::pb::Status {
            code: Code::NotFound as i32,
            message: "gone".into(),
            details: vec![prost_types::Any {
                type_url: "type.googleapis.com/google.rpc.ErrorInfo".into(),
                value: info.encode_to_vec(),
            }],
        };
        let status = Status::with_details(Code::NotFound, "gone", details.encode_to_vec().into());
        let json = error_json(&status);
        assert_eq!(json["code"], "not_found");
        assert_eq!(json["message"], "gone");
        assert_eq!(json["details"][0]["type"], "google.rpc.ErrorInfo");
        let value = json["details"][0]["value"].as_str().unwrap();
        assert!(!value.ends_with('='), "{value}");
        let bytes = data_encoding::BASE64_NOPAD
            .decode(value.as_bytes())
            .unwrap();
        assert_eq!(
            tonic_types::pb::ErrorInfo::decode(bytes.as_slice()).unwrap(),
            info
        );
        // No message, no details: only the code.
        assert_eq!(
            error_json(&Status::new(Code::Internal, "")),
            serde_json::json!({"code": "internal"})
        );
    }

    #[tokio::test]
    async fn a_stream_ends_with_one_end_of_stream_message() {
        let response = end_of_stream(
            HeaderValue::from_static("application/connect+proto"),
            &Status::unimplemented("no streams"),
        );
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "application/connect+proto"
        );
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(body[0], END_STREAM);
        let length = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
        assert_eq!(length, body.len() - 5);
        let json: serde_json::Value = serde_json::from_slice(&body[5..]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"error": {"code": "unimplemented", "message": "no streams"}})
        );
    }
}
