//! tonic services: proto <-> domain only.

/// `$server` (a tonic service) taking gzip and zstd messages and answering compressed when the
/// client advertises either in `grpc-accept-encoding` (tonic takes the first it advertises;
/// a client that advertises none gets identity). gRPC compresses each message, so HTTP's
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
