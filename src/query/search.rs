use super::Query;
use super::page_token::Cursor;

/// A parsed, valid user search: what to match, in which order, which page.
#[derive(Clone, Debug, PartialEq)]
pub struct UserSearch {
    /// None matches every user.
    pub query: Option<Query>,
    pub sort: SortField,
    pub ascending: bool,
    pub offset: u64,
    pub limit: u64,
    /// Resume strictly after this row (a page token's position); then `offset` is 0.
    pub after: Option<Cursor>,
}

/// Sortable user properties. Every order ends with the user id in the same direction, so
/// pages never overlap or skip; users lacking the sorted property come last either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortField {
    CreationDate,
    Id,
    ChangeDate,
    Email,
    Phone,
    State,
    SchemaId,
    SchemaType,
}

/// Page size rules of list requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageLimits {
    /// Used when a request asks for no limit (0).
    pub default: u32,
    /// A larger requested limit is an error, never silently cut.
    pub max: u32,
}

impl Default for PageLimits {
    fn default() -> Self {
        Self {
            default: 100,
            max: 1000,
        }
    }
}
