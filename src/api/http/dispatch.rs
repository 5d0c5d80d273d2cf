//! The in-process gRPC call: a bound request goes through the very router that serves gRPC, so
//! what that router does to a gRPC call applies to JSON calls too: the services' message limits
//! and the layer on it (`limits::grpc_status`). The layers in front of the whole port (the
//! rescue, the header limit, the deadline and the gate, see `startup`) judged the HTTP request
//! already and do not run again; the principal the gate found travels in the extensions. The
//! only cost is one protobuf encode/decode per hop (none for Connect's binary calls, whose
//! bytes pass through as they came: [`EncodedCodec`]).

use bytes::{Buf, BufMut, Bytes};
use http::HeaderMap;
use http::uri::PathAndQuery;
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::MetadataMap;
use tonic::{Request, Status};

/// The gRPC router the JSON routes dispatch to.
pub type GrpcRouter = axum::Router;

/// A protobuf codec over `DynamicMessage`; the decoder needs the method's output type.
#[derive(Clone)]
pub struct DynamicCodec {
    output: MessageDescriptor,
}

impl DynamicCodec {
    /// A codec that decodes messages of type `output` (and encodes any message).
    pub fn new(output: MessageDescriptor) -> Self {
        Self { output }
    }
}

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        DynamicDecoder(self.output.clone())
    }
}

pub struct DynamicEncoder;

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        // EncodeBuf grows on demand, so encoding cannot run out of room.
        dst.reserve(item.encoded_len());
        item.encode(dst)
            .map_err(|error| Status::internal(format!("encoding the request: {error}")))
    }
}

pub struct DynamicDecoder(MessageDescriptor);

impl Decoder for DynamicDecoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        let bytes = src.copy_to_bytes(src.remaining());
        DynamicMessage::decode(self.0.clone(), bytes)
            .map(Some)
            .map_err(|error| Status::internal(format!("decoding the response: {error}")))
    }
}

/// A codec that passes encoded messages through untouched: a Connect call in binary protobuf
/// carries the very bytes a gRPC call would, so they are neither decoded nor built again here
/// (the service decodes them, under its own message limit).
#[derive(Clone, Copy, Default)]
pub struct EncodedCodec;

impl Codec for EncodedCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = EncodedCodec;
    type Decoder = EncodedCodec;

    fn encoder(&mut self) -> Self::Encoder {
        EncodedCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        EncodedCodec
    }
}

impl Encoder for EncodedCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for EncodedCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// Headers of the HTTP request that become gRPC metadata: the credentials and the request id
/// as they are, and `grpc-metadata-<key>` as `<key>` (grpc-gateway's convention).
pub fn forwarded_metadata(headers: &HeaderMap) -> MetadataMap {
    const AS_IS: [&str; 2] = ["authorization", "x-request-id"];
    let mut forwarded = HeaderMap::new();
    for (header, value) in headers {
        let name = header.as_str();
        if AS_IS.contains(&name) {
            forwarded.append(header.clone(), value.clone());
        } else if let Some(key) = name.strip_prefix("grpc-metadata-")
            && !key.is_empty()
            && !key.starts_with("grpc-")
            && let Ok(key) = http::HeaderName::from_bytes(key.as_bytes())
        {
            forwarded.append(key, value.clone());
        }
    }
    MetadataMap::from_headers(forwarded)
}

/// Calls `grpc_path` on `router` with `message`; returns the response's header metadata and
/// message, or the call's status. `extensions` are the HTTP request's: what the layers in front
/// of the gateway established (the caller's principal, the peer address) travels with the call.
pub async fn call(
    router: GrpcRouter,
    grpc_path: &str,
    output: MessageDescriptor,
    metadata: MetadataMap,
    extensions: http::Extensions,
    message: DynamicMessage,
) -> Result<(MetadataMap, DynamicMessage), Status> {
    let (path, mut grpc) = client(router, grpc_path).await?;
    let request = Request::from_parts(metadata, extensions, message);
    let response = grpc.unary(request, path, DynamicCodec::new(output)).await?;
    let (metadata, message, _) = response.into_parts();
    Ok((metadata, message))
}

/// [`call`] for a client-streaming method: `messages` are the stream, in order.
pub async fn call_client_streaming(
    router: GrpcRouter,
    grpc_path: &str,
    output: MessageDescriptor,
    metadata: MetadataMap,
    extensions: http::Extensions,
    messages: Vec<DynamicMessage>,
) -> Result<(MetadataMap, DynamicMessage), Status> {
    let (path, mut grpc) = client(router, grpc_path).await?;
    let request = Request::from_parts(metadata, extensions, tokio_stream::iter(messages));
    let response = grpc
        .client_streaming(request, path, DynamicCodec::new(output))
        .await?;
    let (metadata, message, _) = response.into_parts();
    Ok((metadata, message))
}

/// A unary answer with its header and trailer metadata kept apart (Connect sends them
/// differently; tonic's own unary call merges them).
pub struct Answer<M> {
    pub headers: MetadataMap,
    pub message: M,
    pub trailers: MetadataMap,
}

/// [`call`] with any codec, keeping the trailers apart from the headers. A failed call's status
/// carries the headers too, as tonic's unary call gives them.
pub async fn call_unary<C>(
    router: GrpcRouter,
    grpc_path: &str,
    codec: C,
    metadata: MetadataMap,
    extensions: http::Extensions,
    message: C::Encode,
) -> Result<Answer<C::Decode>, Status>
where
    C: Codec,
    C::Encode: Sync,
    C::Decode: Sync,
{
    let (path, mut grpc) = client(router, grpc_path).await?;
    let request = Request::from_parts(metadata, extensions, tokio_stream::once(message));
    let (headers, mut body, _) = grpc.streaming(request, path, codec).await?.into_parts();
    let with_headers = |mut status: Status| {
        let mut merged = headers.clone().into_headers();
        for (name, value) in status.metadata().clone().into_headers().iter() {
            merged.append(name, value.clone());
        }
        *status.metadata_mut() = MetadataMap::from_headers(merged);
        status
    };
    let message =
        body.message().await.map_err(with_headers)?.ok_or_else(|| {
            with_headers(Status::internal("the service sent no response message"))
        })?;
    let trailers = body.trailers().await.map_err(with_headers)?;
    Ok(Answer {
        headers,
        message,
        trailers: trailers.unwrap_or_default(),
    })
}

/// A ready in-process client of `router` and the method's path.
async fn client(
    router: GrpcRouter,
    grpc_path: &str,
) -> Result<(PathAndQuery, tonic::client::Grpc<GrpcRouter>), Status> {
    let path = PathAndQuery::try_from(grpc_path)
        .map_err(|error| Status::internal(format!("invalid gRPC path {grpc_path}: {error}")))?;
    // The response was already produced within the server's own limits; the client's default
    // 4 MiB decoding limit would only make large pages fail over JSON and not over gRPC.
    let mut grpc =
        tonic::client::Grpc::with_origin(router, http::Uri::from_static("http://in-process"))
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX);
    grpc.ready()
        .await
        .map_err(|error| Status::unavailable(format!("service not ready: {error}")))?;
    Ok((path, grpc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_credentials_request_id_and_grpc_metadata() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("authorization", "Bearer t"),
            ("x-request-id", "r1"),
            ("grpc-metadata-x-tenant", "acme"),
            ("grpc-metadata-grpc-timeout", "1S"),
            ("cookie", "secret"),
            ("content-type", "application/json"),
        ] {
            headers.insert(name, value.parse().unwrap());
        }
        let forwarded = forwarded_metadata(&headers).into_headers();
        assert_eq!(forwarded["authorization"], "Bearer t");
        assert_eq!(forwarded["x-request-id"], "r1");
        assert_eq!(forwarded["x-tenant"], "acme");
        assert_eq!(forwarded.len(), 3, "{forwarded:?}");
    }
}
