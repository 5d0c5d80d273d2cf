//! The directory's domain values, independent of protobuf and of the database.

pub mod codes;
pub mod keys;
pub mod password;
pub mod schema;
mod scope;
mod text;
mod time;
pub mod totp;
mod user;

pub use scope::Scope;
pub use text::{
    Email, Id, Length, Name, Phone, SearchText, Text, TextError, fold_case, printable, refuse_nul,
    refused_characters,
};
pub use time::Timestamp;
pub use user::*;
