//! HTTP content coding (`Content-Encoding`, `Accept-Encoding`) for everything on the port that
//! is not gRPC: the HTTP/JSON routes, the REST dialects and Connect unary calls (which use plain
//! HTTP content coding). gRPC and gRPC-Web never pass here: they compress each message
//! (`grpc-encoding`, in tonic; see `api::grpc::compressed!`), and a second, HTTP-level coding
//! would break their framing.
//!
//! A request body in gzip or zstd is inflated as it is read, so the body limits of the routes
//! hold for the inflated body: a bomb (a small body that inflates to gigabytes) is refused at
//! the limit as any other body too large, never inflated whole. Any other coding is refused
//! with 415 before the body is read ([`Refusal`], drawn by the rescue layer in the caller's
//! protocol, with `Accept-Encoding` naming what is served). An answer is compressed with gzip
//! or zstd when the caller's `Accept-Encoding` asks for one of them.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use tonic::Code;
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceBuilder};
use tower_http::compression::CompressionLayer;
use tower_http::decompression::RequestDecompressionLayer;

use crate::refusal::Refusal;

/// The request codings served besides identity, for `Accept-Encoding` on a 415.
pub const SERVED: &str = "gzip, zstd";

/// `inner` (routes that read plain HTTP bodies) behind content coding both ways.
pub fn serve<S>(inner: S) -> BoxCloneSyncService<Request, Response, Infallible>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
{
    BoxCloneSyncService::new(
        ServiceBuilder::new()
            // Before tower-http's decompression: it would answer a coding it does not take with
            // a bare 415, and takes only the exact lower-case names.
            .layer(from_fn(request_coding))
            .map_response(IntoResponse::into_response)
            // Answers: gzip or zstd by the caller's Accept-Encoding (and its q-values); tiny
            // bodies, and gRPC content types should one pass, stay as they are.
            .layer(CompressionLayer::new().no_br().no_deflate())
            .map_response(IntoResponse::into_response)
            // Requests: the body inflated while the route reads it (within its limit); the
            // Content-Encoding and Content-Length headers go, as they describe the coded body.
            .layer(RequestDecompressionLayer::new().no_br().no_deflate())
            .map_request(|request: http::Request<_>| request.map(Body::new))
            .service(inner),
    )
}

/// Refuses a request coding that is not served (415, before any body is read) and names a
/// served one as tower-http's decompression expects it: lower case, `x-gzip` as gzip
/// (RFC 9110), and identity as no coding at all.
async fn request_coding(mut request: Request, next: Next) -> Response {
    let headers = request.headers_mut();
    let mut values = headers.get_all(header::CONTENT_ENCODING).iter();
    let coding = match (values.next(), values.next()) {
        (None, _) => return next.run(request).await,
        (Some(value), None) => String::from_utf8_lossy(value.as_bytes())
            .trim()
            .to_ascii_lowercase(),
        (Some(_), Some(_)) => {
            return refuse("more than one Content-Encoding header: send the body in one coding");
        }
    };
    match coding.as_str() {
        "identity" => {
            headers.remove(header::CONTENT_ENCODING);
        }
        "gzip" | "x-gzip" => {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        "zstd" => {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("zstd"));
        }
        other => {
            return refuse(&format!(
                "content-encoding {other:?} is not supported: send the body in gzip, zstd or \
                 uncompressed"
            ));
        }
    }
    next.run(request).await
}

/// 415 with Unimplemented (Connect's code for a coding it does not take) and the served codings.
fn refuse(message: &str) -> Response {
    Refusal::new(Code::Unimplemented, message)
        .with_http_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
        .with_accept_encoding(SERVED)
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use tower::ServiceExt;

    /// Echoes the request body it read (up to `limit` bytes), or 413.
    fn echo(limit: usize) -> BoxCloneSyncService<Request, Response, Infallible> {
        serve(tower::service_fn(move |request: Request| async move {
            let response = match axum::body::to_bytes(request.into_body(), limit).await {
                Ok(body) => body.into_response(),
                Err(_) => StatusCode::PAYLOAD_TOO_LARGE.into_response(),
            };
            Ok::<_, Infallible>(response)
        }))
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    async fn send(
        service: BoxCloneSyncService<Request, Response, Infallible>,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (Response, Vec<u8>) {
        let mut request = http::Request::post("/v1/things");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = service
            .oneshot(request.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        (Response::from_parts(parts, Body::empty()), bytes.to_vec())
    }

    #[tokio::test]
    async fn coded_bodies_are_read_inflated() {
        let text = b"{\"name\": \"ada\"}".repeat(10);
        for coding in ["gzip", "GZIP", "x-gzip", " gzip "] {
            let (response, body) =
                send(echo(1024), &[("content-encoding", coding)], gzip(&text)).await;
            assert_eq!(response.status(), 200, "{coding}");
            assert_eq!(body, text, "{coding}");
        }
        let zstd = zstd::encode_all(text.as_slice(), 3).unwrap();
        let (response, body) = send(echo(1024), &[("content-encoding", "zstd")], zstd).await;
        assert_eq!(response.status(), 200);
        assert_eq!(body, text);
        let (response, body) = send(
            echo(1024),
            &[("content-encoding", "identity")],
            text.clone(),
        )
        .await;
        assert_eq!(response.status(), 200);
        assert_eq!(body, text);
    }

    #[tokio::test]
    async fn the_limit_holds_for_the_inflated_body() {
        // 1 MiB of zeros is about 1 KiB of gzip: under the limit coded, over it inflated.
        let bomb = gzip(&vec![0; 1 << 20]);
        assert!(bomb.len() < 4096, "{}", bomb.len());
        let (response, _) = send(echo(4096), &[("content-encoding", "gzip")], bomb).await;
        assert_eq!(response.status(), 413);
    }

    #[tokio::test]
    async fn other_codings_are_refused_naming_the_served_ones() {
        for coding in ["br", "deflate", "gzip, zstd", "compress"] {
            let (response, _) = send(echo(1024), &[("content-encoding", coding)], vec![1]).await;
            let refusal = Refusal::of(&response).expect("a refusal");
            assert_eq!(refusal.code(), Code::Unimplemented, "{coding}");
            assert_eq!(
                refusal.http_status(),
                Some(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            );
            assert_eq!(refusal.accept_encoding(), Some(SERVED));
            assert!(refusal.message().contains("not supported"), "{refusal:?}");
        }
        let request = http::Request::post("/v1/things")
            .header("content-encoding", "gzip")
            .header("content-encoding", "gzip")
            .body(Body::from(gzip(b"x")))
            .unwrap();
        let response = echo(1024).oneshot(request).await.unwrap();
        let refusal = Refusal::of(&response).expect("a refusal");
        assert!(refusal.message().contains("more than one"), "{refusal:?}");
    }

    #[tokio::test]
    async fn answers_are_compressed_when_asked() {
        let text = b"{\"name\": \"ada\"}".repeat(10);
        let (response, body) = send(echo(1024), &[("accept-encoding", "gzip")], text.clone()).await;
        assert_eq!(response.headers()["content-encoding"], "gzip");
        let mut inflated = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(body.as_slice()),
            &mut inflated,
        )
        .unwrap();
        assert_eq!(inflated, text);
        let (response, body) = send(echo(1024), &[("accept-encoding", "zstd")], text.clone()).await;
        assert_eq!(response.headers()["content-encoding"], "zstd");
        assert_eq!(zstd::decode_all(body.as_slice()).unwrap(), text);
        // Nothing asked, or only what is not served: as it is.
        for asked in [None, Some("br")] {
            let headers: Vec<_> = asked.map(|a| ("accept-encoding", a)).into_iter().collect();
            let (response, body) = send(echo(1024), &headers, text.clone()).await;
            assert!(response.headers().get("content-encoding").is_none());
            assert_eq!(body, text);
        }
    }
}
