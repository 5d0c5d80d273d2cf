//! Errors as grpc-gateway v2 writes them: the HTTP status from the gRPC code by its table, and a
//! `google.rpc.Status`-shaped JSON body `{"code": <number>, "message": "...", "details": []}`.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use tonic::{Code, Status};

/// `google.rpc.Status` in JSON, fields in grpc-gateway's order. Details are not carried yet:
/// our services set none.
#[derive(serde::Serialize)]
struct ErrorBody<'a> {
    code: i32,
    message: &'a str,
    details: [serde_json::Value; 0],
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
    error_response_with(http_status(status.code()), status)
}

/// The error response for `status` with an explicit HTTP status (routing errors: 405 keeps its
/// own status while the body says Unimplemented, as grpc-gateway does).
pub fn error_response_with(http: StatusCode, status: &Status) -> Response {
    let body = ErrorBody {
        code: status.code() as i32,
        message: status.message(),
        details: [],
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

/// A route has this path, but not for this method.
pub fn method_not_allowed() -> Response {
    error_response_with(
        StatusCode::METHOD_NOT_ALLOWED,
        &Status::unimplemented("Method Not Allowed"),
    )
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
