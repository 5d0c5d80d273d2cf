//! sea-orm entities, one per table. Timestamps are microseconds since the Unix epoch (UTC); see
//! `migrations/src/columns.rs` for why. `*_lower` columns hold the Rust-side case folding of
//! their sibling, so both backends agree on non-ASCII text and indexes serve ignore-case search.

pub mod access_token;
pub mod authentication_key;
pub mod event;
pub mod idp_link;
pub mod organization;
pub mod otp_email;
pub mod otp_sms;
pub mod password;
pub mod role;
pub mod role_assignment;
pub mod role_user_count;
pub mod server_key;
pub mod totp;
pub mod user;
pub mod user_count;
pub mod user_schema;
pub mod user_schema_revision;
pub mod username;
pub mod verification_code;
pub mod webauthn_credential;
