//! tonic services: proto <-> domain only.

mod convert;
mod directory_service;
mod parse;
pub mod search;
mod token_service;
mod user_service;

pub use directory_service::{Organizations, Roles, UserSchemas};
pub use token_service::AccessTokens;
pub use user_service::UserDirectory;

use sea_orm::DatabaseConnection;
use tonic::{Request, Status};

use crate::auth::Principal;
use crate::store::ScopedDb;

/// The directory as the caller may see it. The auth layer puts the caller's principal on every
/// request it lets through; a request without one never passed the layer, so it is refused
/// (fail closed) rather than served instance-wide.
fn scoped<T>(db: &DatabaseConnection, request: &Request<T>) -> Result<ScopedDb, Status> {
    let principal = request
        .extensions()
        .get::<Principal>()
        .ok_or_else(|| Status::unauthenticated(crate::auth::UNAUTHENTICATED))?;
    Ok(ScopedDb::new(
        db.clone(),
        principal.scope(),
        principal.subject(),
    ))
}
