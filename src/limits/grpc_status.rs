//! The right status for requests tonic refuses before a service sees them. tonic answers a
//! message over the size limit with OutOfRange and a message it cannot decode (e.g. nested
//! deeper than prost's recursion limit of 100) with Internal; both are the client's doing, and
//! gRPC's own implementations say ResourceExhausted and InvalidArgument. This middleware on the
//! gRPC router rewrites those two (and only those: they are recognised by tonic's messages,
//! which the tests pin) in the trailers-only answer tonic gives them. A compressed message that
//! inflates past the limit needs no rewrite: tonic stops inflating at the limit and says
//! ResourceExhausted itself (pinned below too).

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;
use percent_encoding::percent_decode_str;

/// tonic's message for a message over `max_decoding_message_size` (code OutOfRange).
const TOO_LARGE: &str = "Error, decoded message length too large";
/// tonic-prost's message for a message prost cannot decode (code Internal).
const UNDECODABLE: &str = "failed to decode Protobuf message";

pub async fn client_errors(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let code = headers.get("grpc-status").map(HeaderValue::as_bytes);
    let replacement = match code {
        Some(b"11") | Some(b"13") => {
            let message = headers
                .get("grpc-message")
                .and_then(|v| v.to_str().ok())
                .map(|v| percent_decode_str(v).decode_utf8_lossy().into_owned())
                .unwrap_or_default();
            match code {
                Some(b"11") if message.starts_with(TOO_LARGE) => Some("8"),
                Some(b"13") if message.starts_with(UNDECODABLE) => Some("3"),
                _ => None,
            }
        }
        _ => None,
    };
    if let Some(code) = replacement {
        headers.insert("grpc-status", HeaderValue::from_static(code));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, Bytes, BytesMut};
    use tonic::Status;
    use tonic::codec::{Codec, Streaming};

    /// A gRPC frame of `payload`.
    fn frame(payload: &[u8]) -> Bytes {
        let mut frame = BytesMut::new();
        frame.put_u8(0);
        frame.put_u32(payload.len() as u32);
        frame.put_slice(payload);
        frame.freeze()
    }

    /// What tonic answers for a request body, decoded as `T` with a size limit.
    async fn decode_error(body: Bytes, limit: usize) -> Status {
        let mut codec = tonic_prost::ProstCodec::<prost_types::Struct, prost_types::Struct>::new();
        let mut stream = Streaming::new_request(
            codec.decoder(),
            http_body_util::Full::new(body),
            None,
            Some(limit),
        );
        stream.message().await.expect_err("refused")
    }

    /// Pins the tonic messages the middleware recognises: an upgrade that changes them fails
    /// here rather than silently bringing back OutOfRange and Internal.
    #[tokio::test]
    async fn tonic_still_says_what_the_middleware_recognises() {
        let status = decode_error(frame(&[0; 100]), 10).await;
        assert_eq!(status.code(), tonic::Code::OutOfRange);
        assert!(status.message().starts_with(TOO_LARGE), "{status:?}");
        let status = decode_error(frame(&[0xff, 0xff]), 100).await;
        assert_eq!(status.code(), tonic::Code::Internal);
        assert!(status.message().starts_with(UNDECODABLE), "{status:?}");
    }

    /// A gzip frame (compressed flag set) of `payload`.
    fn gzip_frame(payload: &[u8]) -> Bytes {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(payload).unwrap();
        let compressed = encoder.finish().unwrap();
        let mut frame = BytesMut::from(&self::frame(&compressed)[..]);
        frame[0] = 1;
        frame.freeze()
    }

    /// tonic bounds the inflated message by the limit too (it inflates into a buffer that
    /// refuses to grow past it), and already says ResourceExhausted: a small compressed
    /// message that inflates past the limit is refused, one that inflates to within it is read.
    /// An upgrade that inflated first and checked after would fail the first half here.
    #[tokio::test]
    async fn compressed_messages_are_bounded_after_decompression() {
        let message = prost_types::Struct {
            fields: [(
                "pad".to_owned(),
                prost_types::Value {
                    kind: Some(prost_types::value::Kind::StringValue("x".repeat(1 << 20))),
                },
            )]
            .into(),
        };
        let body = gzip_frame(&prost::Message::encode_to_vec(&message));
        assert!(body.len() < 4096, "{}", body.len());
        let decode = |limit| {
            let body = body.clone();
            async move {
                let mut codec =
                    tonic_prost::ProstCodec::<prost_types::Struct, prost_types::Struct>::new();
                Streaming::new_request(
                    codec.decoder(),
                    http_body_util::Full::new(body),
                    Some(tonic::codec::CompressionEncoding::Gzip),
                    Some(limit),
                )
                .message()
                .await
            }
        };
        let status = decode(64 * 1024).await.expect_err("refused");
        assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
        assert!(
            status.message().contains("size limit, of 65536 bytes"),
            "{status:?}"
        );
        let read = decode(2 << 20).await.expect("read").expect("a message");
        assert_eq!(read, message);
    }

    #[tokio::test]
    async fn the_two_are_rewritten_and_nothing_else() {
        use axum::Router;
        use axum::body::Body;
        use axum::routing::any;
        use tower::ServiceExt;
        let answer = |status: Status| {
            let router = Router::new()
                .route(
                    "/",
                    any(move || {
                        let status = status.clone();
                        async move { status.into_http::<Body>() }
                    }),
                )
                .layer(axum::middleware::from_fn(client_errors));
            async move {
                let response = router
                    .oneshot(Request::builder().uri("/").body(Body::empty()).unwrap())
                    .await
                    .unwrap();
                response.headers()["grpc-status"]
                    .to_str()
                    .unwrap()
                    .to_owned()
            }
        };
        let too_large = Status::out_of_range(format!("{TOO_LARGE}: found 9 bytes"));
        assert_eq!(answer(too_large).await, "8");
        let undecodable = Status::internal(format!("{UNDECODABLE}: recursion limit reached"));
        assert_eq!(answer(undecodable).await, "3");
        assert_eq!(answer(Status::internal("internal error")).await, "13");
        assert_eq!(answer(Status::out_of_range("offset")).await, "11");
        assert_eq!(answer(Status::not_found("x")).await, "5");
    }
}
