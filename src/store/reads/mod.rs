//! Queries: reads never write, and each read sees one snapshot.

pub mod compile;
pub mod directory;
pub mod recount;
pub mod sequences;
pub mod tokens;
pub mod totals;
pub mod users;
