//! The one query engine, free of SQL and protobuf: the typed tree in [`tree`], the search it
//! belongs to, and the text dialects (Logto, OData) that parse into it, with the regex subset
//! both backends agree on. The gRPC edge parses ZITADEL's queries (`api::grpc::search`); the
//! store compiles a tree into SQL (`store::reads::compile`), nowhere else.

pub mod dialect;
pub mod page_token;
pub mod regex;
mod search;
mod tree;

pub use page_token::{Cursor, PageToken, PageTokenKey, SortValue};
pub use search::{PageLimits, SortField, UserSearch};
pub use tree::{
    CompareOp, Comparison, Filter, MAX_DEPTH, MAX_LEAVES, MAX_TEXT_CHARS, Query, QueryLimits,
    TextMatch, TextOp,
};
