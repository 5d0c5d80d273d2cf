//! The one query engine. Every dialect parses into the typed tree in [`tree`]; [`compile`] is
//! the only place that turns a tree into SQL (through sea-query, with every user value bound
//! as a parameter).

pub mod compile;
pub mod dialect;
pub mod regex;
mod search;
mod tree;

pub use search::{PageLimits, SortField, UserSearch};
pub use tree::{
    CompareOp, Comparison, Filter, MAX_DEPTH, MAX_LEAVES, MAX_TEXT_CHARS, Query, QueryLimits,
    TextMatch, TextOp,
};
