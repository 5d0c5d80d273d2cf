//! The edges: gRPC services (and, later, the HTTP routes) that turn requests into domain
//! values and domain results into responses.

pub mod grpc;
pub mod rest;
