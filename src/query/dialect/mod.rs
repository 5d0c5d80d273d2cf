//! One parser per text dialect, each producing the one query tree. ZITADEL's protobuf queries
//! are parsed at the gRPC edge (`api::grpc::search`).

pub mod logto;
pub mod odata;
