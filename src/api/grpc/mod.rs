//! tonic services: proto <-> domain only.

mod convert;
mod user_service;

pub use user_service::UserDirectory;
