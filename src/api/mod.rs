//! The edges: gRPC services that turn requests into domain values and domain results into
//! responses, and the HTTP/JSON transcoder in front of them.

pub mod grpc;
pub mod http;
pub mod rest;
