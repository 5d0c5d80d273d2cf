//! The span of every request: its request id (the caller's `x-request-id`, or a new uuid v4,
//! answered in the response's `x-request-id`, which gRPC clients read as header metadata), its
//! W3C trace id, method and path, and for gRPC the service and method. Every log line written
//! while the request is served carries these fields; one line at its end adds the status (and
//! the gRPC code) and the latency. tower-http's `TraceLayer` runs the span; this module says
//! what goes into it.

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{MakeSpan, OnEos, OnResponse, TraceLayer};
use tracing::Span;

use super::trace_context::TraceContext;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest request id taken from a caller; a longer one (or one with other than visible ASCII)
/// is replaced, so that no caller writes what it likes into our logs.
const MAX_REQUEST_ID: usize = 128;

/// Drops a caller's request id that is too long or not printable, so that a new one is made.
pub fn drop_unusable_request_id<B>(mut request: Request<B>) -> Request<B> {
    let usable = |value: &HeaderValue| {
        let bytes = value.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= MAX_REQUEST_ID
            && bytes.iter().all(|b| b.is_ascii_graphic())
    };
    if request
        .headers()
        .get(&REQUEST_ID)
        .is_some_and(|v| !usable(v))
    {
        request.headers_mut().remove(&REQUEST_ID);
    }
    request
}

pub type RequestTrace = TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    RequestSpan,
    (),
    Finished,
    (),
    Finished,
    (),
>;

/// The span layer (under the layer that sets the request id, so that the span has it).
pub fn layer() -> RequestTrace {
    TraceLayer::new_for_http()
        .make_span_with(RequestSpan)
        .on_request(())
        .on_response(Finished)
        .on_body_chunk(())
        .on_eos(Finished)
        // The `finished` line says everything a failure would.
        .on_failure(())
}

#[derive(Clone, Copy, Debug)]
pub struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &Request<B>) -> Span {
        let headers = request.headers();
        let request_id = headers
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let trace = TraceContext::of(headers);
        let path = request.uri().path();
        let (grpc_service, grpc_method) = match crate::refusal::grpc_content_type(headers) {
            Some(_) => grpc_names(path),
            None => ("", ""),
        };
        tracing::info_span!(
            "request",
            request_id,
            trace_id = %trace.trace_id,
            parent_span_id = trace.parent_id.as_deref().unwrap_or_default(),
            method = %request.method(),
            path,
            grpc_service,
            grpc_method,
        )
    }
}

/// `/package.Service/Method` as its two names.
fn grpc_names(path: &str) -> (&str, &str) {
    path.trim_start_matches('/')
        .split_once('/')
        .unwrap_or(("", ""))
}

/// The line at the end of a request. A gRPC answer with its status in the head (trailers-only,
/// most errors) or any other answer ends at its head; a gRPC answer with trailers (every
/// success) ends at its trailers.
#[derive(Clone, Copy, Debug)]
pub struct Finished;

fn grpc_status(headers: &HeaderMap) -> Option<&str> {
    headers.get("grpc-status").and_then(|v| v.to_str().ok())
}

impl<B> OnResponse<B> for Finished {
    fn on_response(self, response: &Response<B>, latency: Duration, _span: &Span) {
        let status = response.status().as_u16();
        let headers = response.headers();
        let grpc = headers
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
        match grpc_status(headers) {
            Some(code) => tracing::info!(
                status,
                grpc_code = code,
                latency_ms = millis(latency),
                "finished"
            ),
            // The code comes with the trailers.
            None if grpc && !is_grpc_web(headers) => {}
            None => tracing::info!(status, latency_ms = millis(latency), "finished"),
        }
    }
}

impl OnEos for Finished {
    fn on_eos(self, trailers: Option<&HeaderMap>, stream_duration: Duration, _span: &Span) {
        if let Some(code) = trailers.and_then(grpc_status) {
            tracing::info!(
                status = 200,
                grpc_code = code,
                latency_ms = millis(stream_duration),
                "finished"
            );
        }
    }
}

fn is_grpc_web(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc-web"))
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_paths_split_into_service_and_method() {
        assert_eq!(
            grpc_names("/userdir.user.v1.UserService/GetUser"),
            ("userdir.user.v1.UserService", "GetUser")
        );
        assert_eq!(grpc_names("/nothing"), ("", ""));
    }

    #[test]
    fn unusable_request_ids_are_dropped() {
        let with = |value: &str| {
            let request = Request::builder()
                .header(REQUEST_ID, value)
                .body(())
                .unwrap();
            drop_unusable_request_id(request)
                .headers()
                .get(&REQUEST_ID)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(with("abc-123").as_deref(), Some("abc-123"));
        assert_eq!(with(&"x".repeat(MAX_REQUEST_ID + 1)), None);
        assert_eq!(with("two words"), None);
    }
}
