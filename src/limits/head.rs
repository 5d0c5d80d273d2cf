//! The HTTP/2 header list limit, answered in the request's own protocol. h2 enforces a limit of
//! its own, but refuses a larger list with a bare 431 before any service runs, which gRPC
//! clients can only report as Unknown. So h2's limit is set to twice ours ([`h2_ceiling`]: it
//! still bounds what one stream may make the server hold), and this middleware measures each
//! HTTP/2 request's header list as RFC 9113 §6.5.2 does (name, value and 32 octets an entry,
//! pseudo-headers included) and refuses one over `--max-header-bytes` with ResourceExhausted,
//! which the rescue layer (`api::rescue`) draws: a gRPC status for gRPC and gRPC-Web, 431 with
//! an error body for everything else.
//!
//! HTTP/1 needs none of this: hyper's read buffer, which must hold the whole request head, is
//! the limit there (431 from hyper).

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, Version};
use tonic::Code;

use crate::refusal::Refusal;

/// RFC 9113 §6.5.2: each entry counts 32 octets besides its name and value.
const ENTRY_OVERHEAD: usize = 32;

/// The limit h2 itself enforces: twice `max_header_bytes`, so that a list between the two gets
/// this module's clear answer and a larger one is still cut off by the transport.
pub fn h2_ceiling(max_header_bytes: usize) -> u32 {
    u32::try_from(max_header_bytes.saturating_mul(2)).unwrap_or(u32::MAX)
}

/// The middleware: `router.layer(from_fn_with_state(max_header_bytes, head::enforce))`.
pub async fn enforce(State(max): State<usize>, request: Request, next: Next) -> Response {
    if request.version() != Version::HTTP_2 {
        return next.run(request).await;
    }
    let size = header_list_size(&request);
    if size <= max {
        return next.run(request).await;
    }
    tracing::debug!(size, max, "HTTP/2 header list over the limit");
    Refusal::new(
        Code::ResourceExhausted,
        format!(
            "the request headers (metadata) are {size} bytes; the server's limit is {max} \
             (--max-header-bytes)"
        ),
    )
    .with_http_status(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
    .into_response()
}

/// The size of the request's header list as HTTP/2 counts it.
fn header_list_size(request: &Request) -> usize {
    let uri = request.uri();
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let pseudo = [
        (":method", request.method().as_str().len()),
        (":path", path.len()),
        (":scheme", uri.scheme_str().map_or(0, str::len)),
        (
            ":authority",
            uri.authority().map_or(0, |a| a.as_str().len()),
        ),
    ];
    let pseudo: usize = pseudo
        .iter()
        .map(|(name, value)| name.len() + value + ENTRY_OVERHEAD)
        .sum();
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + ENTRY_OVERHEAD)
        .sum();
    pseudo + headers
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::any;
    use tower::ServiceExt;

    fn app(max: usize) -> Router {
        Router::new()
            .route("/{*rest}", any(|| async { "served" }))
            .layer(axum::middleware::from_fn_with_state(max, enforce))
    }

    fn request(version: Version, content_type: &str, padding: usize) -> Request {
        Request::builder()
            .version(version)
            .uri("http://test/v1/users")
            .header("content-type", content_type)
            .header("x-padding", "a".repeat(padding))
            .body(Body::empty())
            .unwrap()
    }

    #[test]
    fn sizes_count_names_values_and_32_octets_an_entry() {
        let request = Request::builder()
            .version(Version::HTTP_2)
            .method("GET")
            .uri("http://test/x?y")
            .header("ab", "cde")
            .body(Body::empty())
            .unwrap();
        let pseudo = (7 + 3 + 32) + (5 + 4 + 32) + (7 + 4 + 32) + (10 + 4 + 32);
        assert_eq!(header_list_size(&request), pseudo + (2 + 3 + 32));
    }

    #[test]
    fn h2_is_left_twice_the_room() {
        assert_eq!(h2_ceiling(65536), 131072);
        assert_eq!(h2_ceiling(usize::MAX), u32::MAX);
    }

    #[tokio::test]
    async fn over_the_limit_is_refused_as_too_large() {
        let max = 8192;
        let served = app(max)
            .oneshot(request(Version::HTTP_2, "application/grpc", 7000))
            .await
            .unwrap();
        assert_eq!(served.status(), 200);
        assert_eq!(Refusal::of(&served), None);

        let refused = app(max)
            .oneshot(request(Version::HTTP_2, "application/json", 9000))
            .await
            .unwrap();
        let refusal = Refusal::of(&refused).unwrap();
        assert_eq!(refusal.code(), Code::ResourceExhausted);
        assert_eq!(
            refusal.http_status(),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
        assert!(
            refusal.message().contains("--max-header-bytes"),
            "{}",
            refusal.message()
        );

        // HTTP/1's head is bounded by hyper's buffer, not here.
        let http1 = app(max)
            .oneshot(request(Version::HTTP_11, "application/json", 9000))
            .await
            .unwrap();
        assert_eq!(http1.status(), 200);
    }
}
