//! The edges: gRPC services that turn requests into domain values and domain results into
//! responses, the HTTP/JSON transcoder, the Connect protocol and the REST dialects beside them,
//! HTTP content coding for the routes that are not gRPC, CORS, the one-port router that sends
//! each request to its protocol's server, and the rescue layer that answers every refusal in
//! its caller's protocol.

pub mod connect;
pub mod content_coding;
pub mod cors;
pub mod grpc;
pub mod http;
pub mod port;
pub mod rescue;
pub mod rest;
