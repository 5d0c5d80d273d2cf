//! Access control: who is calling (tokens, OIDC JWTs), what they may do (the policy), and the
//! tower layer that enforces both before any service runs.

mod jwks;
pub mod layer;
pub mod oidc;
pub mod permission;
pub mod policy;
pub mod principal;
pub mod rate_limit;
pub mod secret;
pub mod stream_meter;

pub use permission::{Grant, Permission};
pub use principal::{Credential, Principal};

/// The one answer to every missing, malformed, unknown, expired or revoked credential: it must
/// not tell an attacker which part was wrong.
pub const UNAUTHENTICATED: &str = "authentication required: send a valid bearer token";
