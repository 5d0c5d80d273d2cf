//! The edges: gRPC services that turn requests into domain values and domain results into
//! responses, and the HTTP/JSON transcoder in front of them.

pub mod grpc;
pub mod http;
pub mod rest;

use ::http::{HeaderMap, StatusCode, header};
use axum::body::Body;
use axum::response::Response;
use tonic::Status;

/// A request refused before any service ran (credential, permission, rate limit, deadline,
/// size), answered in its own protocol: a trailers-only gRPC status for gRPC and gRPC-Web, an
/// error body for everything else in the shape of the API its path belongs to (see
/// [`rest::refusal`]), with the HTTP status of the gRPC code.
pub fn refusal(headers: &HeaderMap, path: &str, status: &Status) -> Response {
    refusal_with(
        headers,
        path,
        http::errors::http_status(status.code()),
        status,
    )
}

/// [`refusal`] with an HTTP status of its own for non-gRPC requests (431 for a request head too
/// large, where the code says ResourceExhausted).
pub fn refusal_with(
    headers: &HeaderMap,
    path: &str,
    http_status: StatusCode,
    status: &Status,
) -> Response {
    match headers
        .get(header::CONTENT_TYPE)
        .filter(|v| v.as_bytes().starts_with(b"application/grpc"))
    {
        Some(content_type) => {
            let mut response = status.clone().into_http::<Body>();
            // gRPC-Web clients read a trailers-only answer from the headers of their own type.
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, content_type.clone());
            response
        }
        None => rest::refusal(path, http_status, status),
    }
}
