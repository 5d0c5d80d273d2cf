use crate::domain::{Timestamp, UserState};

/// Deepest allowed nesting by default: a top-level query is at depth 1, each or/and/not adds
/// one.
pub const MAX_DEPTH: usize = 10;
/// Most leaf filters one search may hold by default.
pub const MAX_LEAVES: usize = 100;
/// Longest text value of a leaf by default, in characters (ids: 200, phone numbers: 20,
/// regular expressions: 256, whatever this says).
pub const MAX_TEXT_CHARS: usize = 200;

/// What one search may hold, in every dialect (configured by `crate::limits::RequestLimits`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryLimits {
    /// Deepest nesting; a top-level query is at depth 1, each or/and/not adds one.
    pub max_depth: usize,
    /// Most leaf filters (comparisons).
    pub max_leaves: usize,
    /// Longest text value of a name, username, email address or schema type, in characters.
    pub max_text_chars: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            max_depth: MAX_DEPTH,
            max_leaves: MAX_LEAVES,
            max_text_chars: MAX_TEXT_CHARS,
        }
    }
}

/// A boolean combination of filters over users. Combinators are never empty: parsers reject
/// empty or/and lists, so the tree always means something.
#[derive(Clone, Debug, PartialEq)]
pub enum Query {
    And(Vec<Query>),
    Or(Vec<Query>),
    /// The complement: every user the inner query does not match, including users that lack
    /// the field the inner query looks at.
    Not(Box<Query>),
    Filter(Filter),
}

/// One condition on one property of a user.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    UserId(TextMatch),
    OrganizationId(TextMatch),
    /// Matches when any of the user's usernames matches; `organization_specific` narrows the
    /// usernames considered to one kind.
    Username {
        text: TextMatch,
        organization_specific: Option<bool>,
    },
    Email(TextMatch),
    Phone(TextMatch),
    /// The name the user goes by (`domain::display_name` of its data); users without one
    /// match no text.
    Name(TextMatch),
    State(UserState),
    /// Exact schema id.
    SchemaId(String),
    SchemaType(TextMatch),
    /// The user has the role with this id.
    Role(String),
    /// When the user was created.
    CreatedAt(Comparison),
    /// When the user last changed.
    ChangedAt(Comparison),
    /// When the user last logged in; users who never did match no comparison.
    LastLogin(Comparison),
    /// Matches no user: a dialect's value that no user can have (e.g. a GreenLake status
    /// without a userdir state).
    Nothing,
}

/// A timestamp compared with a fixed point in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Comparison {
    pub op: CompareOp,
    pub value: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
}

/// How a text property is compared with a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextMatch {
    pub op: TextOp,
    pub ignore_case: bool,
    /// For `Equals`, `StartsWith`, `Contains` and `EndsWith` matched literally: `%`, `_` and `\`
    /// carry no pattern meaning. For `Like` a LIKE pattern, for `Regex` a validated regular
    /// expression (see [`crate::query::regex`]).
    pub value: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextOp {
    Equals,
    StartsWith,
    Contains,
    EndsWith,
    /// A LIKE pattern: `%` and `_` are wildcards, `\\` escapes the next character. Parsers
    /// must reject a pattern ending in a lone `\\`.
    Like,
    /// A regular expression in the common subset of [`crate::query::regex`], already
    /// validated (and, for ignore-case, already folded).
    Regex,
}

impl TextMatch {
    pub fn new(op: TextOp, ignore_case: bool, value: impl Into<String>) -> Self {
        Self {
            op,
            ignore_case,
            value: value.into(),
        }
    }

    pub fn equals(value: impl Into<String>) -> Self {
        Self::new(TextOp::Equals, false, value)
    }
}

impl Query {
    /// AND of several queries, without a needless wrapper around a single one.
    pub fn all(mut queries: Vec<Query>) -> Option<Query> {
        match queries.len() {
            0 => None,
            1 => queries.pop(),
            _ => Some(Query::And(queries)),
        }
    }

    /// Number of leaf filters.
    pub fn leaves(&self) -> usize {
        match self {
            Query::And(queries) | Query::Or(queries) => queries.iter().map(Query::leaves).sum(),
            Query::Not(query) => query.leaves(),
            Query::Filter(_) => 1,
        }
    }

    /// Whether any leaf matches a regular expression (such searches are rationed, see
    /// `limits::regex_searches`).
    pub fn uses_regex(&self) -> bool {
        match self {
            Query::And(queries) | Query::Or(queries) => queries.iter().any(Query::uses_regex),
            Query::Not(query) => query.uses_regex(),
            Query::Filter(filter) => filter.text().is_some_and(|text| text.op == TextOp::Regex),
        }
    }
}

impl Filter {
    /// The text condition of a text filter.
    pub fn text(&self) -> Option<&TextMatch> {
        match self {
            Filter::UserId(text)
            | Filter::OrganizationId(text)
            | Filter::Username { text, .. }
            | Filter::Email(text)
            | Filter::Phone(text)
            | Filter::Name(text)
            | Filter::SchemaType(text) => Some(text),
            Filter::State(_)
            | Filter::SchemaId(_)
            | Filter::Role(_)
            | Filter::CreatedAt(_)
            | Filter::ChangedAt(_)
            | Filter::LastLogin(_)
            | Filter::Nothing => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_leaves_are_found_at_any_depth() {
        let regex = Query::Filter(Filter::Email(TextMatch::new(TextOp::Regex, false, "(?s)a")));
        let plain = Query::Filter(Filter::Email(TextMatch::equals("a")));
        assert!(!plain.uses_regex());
        assert!(regex.uses_regex());
        let deep = Query::And(vec![
            plain.clone(),
            Query::Or(vec![plain.clone(), Query::Not(Box::new(regex))]),
        ]);
        assert!(deep.uses_regex());
        assert!(!Query::And(vec![plain.clone(), Query::Not(Box::new(plain))]).uses_regex());
    }
}
