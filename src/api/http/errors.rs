//! Errors as grpc-gateway v2 writes them: the HTTP status from the gRPC code by its table, and a
//! `google.rpc.Status`-shaped JSON body `{"code": <number>, "message": "...", "details": []}`.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, header};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage};
use tonic::{Code, Status};

/// `google.rpc.Status` in JSON, fields in grpc-gateway's order.
#[derive(serde::Serialize)]
struct ErrorBody<'a> {
    code: i32,
    message: &'a str,
    details: Vec<serde_json::Value>,
}

/// The status's details as proto3 JSON `Any` values: messages our descriptors know are written
/// out field by field, others as `@type` plus base64 `value`.
fn details_json(status: &Status, pool: Option<&DescriptorPool>) -> Vec<serde_json::Value> {
    if status.details().is_empty() {
        return Vec::new();
    }
    // The details are a `google.rpc.Status` on the wire (the `grpc-status-details-bin` trailer).
    let Ok(decoded) = tonic_types::pb::Status::decode(status.details()) else {
        return Vec::new();
    };
    decoded
        .details
        .into_iter()
        .map(|any| {
            let type_name = any.type_url.rsplit('/').next().unwrap_or_default();
            let known = pool
                .and_then(|pool| pool.get_message_by_name(type_name))
                .and_then(|desc| DynamicMessage::decode(desc, any.value.as_slice()).ok())
                .and_then(|message| serde_json::to_value(&message).ok());
            match known {
                Some(serde_json::Value::Object(mut fields)) => {
                    fields.insert("@type".into(), any.type_url.into());
                    serde_json::Value::Object(fields)
                }
                _ => serde_json::json!({
                    "@type": any.type_url,
                    "value": data_encoding::BASE64.encode(&any.value),
                }),
            }
        })
        .collect()
}

/// grpc-gateway v2's `HTTPStatusFromCode`.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).expect("499 is a valid status"),
        Code::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument => StatusCode::BAD_REQUEST,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        // Deliberately not 412, as in grpc-gateway.
        Code::FailedPrecondition => StatusCode::BAD_REQUEST,
        Code::Aborted => StatusCode::CONFLICT,
        Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The error response for `status`, with the HTTP status from its code.
pub fn error_response(status: &Status) -> Response {
    error_response_with(http_status(status.code()), status, None)
}

/// The error response for a status returned by a service, whose details may name message types
/// of `pool`.
pub fn service_error_response(status: &Status, pool: &DescriptorPool) -> Response {
    error_response_with(http_status(status.code()), status, Some(pool))
}

/// The error response for `status` with an explicit HTTP status (routing errors: 405 keeps its
/// own status while the body says Unimplemented, as grpc-gateway does).
pub fn error_response_with(
    http: StatusCode,
    status: &Status,
    pool: Option<&DescriptorPool>,
) -> Response {
    let body = ErrorBody {
        code: status.code() as i32,
        message: status.message(),
        details: details_json(status, pool),
    };
    let mut response = (http, axum::Json(body)).into_response();
    if status.code() == Code::Unauthenticated
        && let Ok(value) = HeaderValue::from_str(status.message())
    {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// No route has this path.
pub fn not_found() -> Response {
    error_response(&Status::not_found("Not Found"))
}

/// A route has this path, but not for this method; `Allow` lists the methods it has (RFC 9110
/// requires it on a 405, and clients and API testers read it).
pub fn method_not_allowed(allowed: &[Method]) -> Response {
    let mut response = error_response_with(
        StatusCode::METHOD_NOT_ALLOWED,
        &Status::unimplemented("Method Not Allowed"),
        None,
    );
    let allow = allowed
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if let Ok(value) = HeaderValue::from_str(&allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_grpc_gateway_table() {
        let table = [
            (Code::Ok, 200),
            (Code::Cancelled, 499),
            (Code::Unknown, 500),
            (Code::InvalidArgument, 400),
            (Code::DeadlineExceeded, 504),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::PermissionDenied, 403),
            (Code::Unauthenticated, 401),
            (Code::ResourceExhausted, 429),
            (Code::FailedPrecondition, 400),
            (Code::Aborted, 409),
            (Code::OutOfRange, 400),
            (Code::Unimplemented, 501),
            (Code::Internal, 500),
            (Code::Unavailable, 503),
            (Code::DataLoss, 500),
        ];
        for (code, expected) in table {
            assert_eq!(http_status(code).as_u16(), expected, "{code:?}");
        }
    }
}
