//! The directory's domain values, independent of protobuf and of the database.

mod text;
mod time;
mod user;

pub use text::fold_case;
pub use time::Timestamp;
pub use user::*;
