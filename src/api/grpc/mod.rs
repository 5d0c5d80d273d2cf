//! tonic services: proto <-> domain only.

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
