//! tonic services: proto <-> domain only.

/// `$server` (a tonic service) taking gzip and zstd messages and answering compressed when the
/// client advertises either in `grpc-accept-encoding` (tonic takes the first it advertises;
/// a client that advertises none gets identity), which [`answer_as_asked`] leaves only to
/// calls that came compressed. gRPC compresses each message, so HTTP's
/// Content-Encoding layers never wrap the gRPC services. Its message limit holds after
/// decompression: tonic inflates into a buffer bounded by `max_decoding_message_size` and a
/// message that would grow past it is ResourceExhausted (`limits::grpc_status` pins this).
macro_rules! compressed {
    ($server:expr) => {
        $server
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
            .accept_compressed(tonic::codec::CompressionEncoding::Zstd)
            .send_compressed(tonic::codec::CompressionEncoding::Gzip)
            .send_compressed(tonic::codec::CompressionEncoding::Zstd)
    };
}
pub(crate) use compressed;

/// A call that came uncompressed is answered uncompressed, as grpc-go and grpc-java servers
/// do: its `grpc-accept-encoding` is dropped before tonic reads it. grpcio, grpc-js and
/// grpc-java advertise gzip on every call whether or not their channel compresses, and gzip
/// of a page of 100 users (48 KB) cost more than reading it: 15.9 ms for that page through
/// grpcio where the same call without the advertisement took 7.3 ms. A client that wants
/// compressed answers compresses its calls (grpcio's `compression=grpc.Compression.Gzip`,
/// tonic's `send_compressed`), and gets answers in the first coding it accepts.
pub fn answer_as_asked<B>(request: &mut http::Request<B>) {
    let compressed = request
        .headers()
        .get(GRPC_ENCODING)
        .is_some_and(|coding| coding.as_bytes() != b"identity");
    if !compressed {
        request.headers_mut().remove(GRPC_ACCEPT_ENCODING);
    }
}

const GRPC_ENCODING: &str = "grpc-encoding";
const GRPC_ACCEPT_ENCODING: &str = "grpc-accept-encoding";

mod convert;
mod directory_service;
pub mod fields;
pub mod health;
pub mod import;
mod pages;
mod parse;
pub mod search;
mod state;
mod token_service;
mod user_service;

pub use directory_service::{Organizations, Roles, UserSchemas};
pub use state::ServiceState;
pub use token_service::AccessTokens;
pub use user_service::UserDirectory;
