//! tonic services: proto <-> domain only.

mod convert;
mod directory_service;
mod parse;
mod user_service;

pub use directory_service::{Organizations, Roles, UserSchemas};
pub use user_service::UserDirectory;
