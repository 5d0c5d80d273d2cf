//! Queries: reads never write, and each read sees one snapshot.

pub mod compile;
pub mod directory;
pub mod tokens;
pub mod users;
