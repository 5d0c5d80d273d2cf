//! HPE GreenLake's OData subset (`GET /identity/v1/users?filter=...`): comparisons `eq`, `ne`,
//! `gt`, `ge`, `lt` of a field with a single-quoted literal (`''` is a quote), combined with
//! `not`, `and`, `or` (that precedence, tightest first) and parentheses. Keywords and field
//! names are case-sensitive. Every error names the 1-based character position and the token
//! that failed.

use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime};

use crate::domain::{Id, Length, SearchText, TextError, Timestamp, UserState, refuse_nul};
use crate::query::{CompareOp, Comparison, Filter, Query, QueryLimits, TextMatch};

/// Longest accepted filter, in characters.
pub const MAX_FILTER_CHARS: usize = 4096;
/// A filterable field. Every field in [`Field::ALL`] is matched exhaustively when a comparison
/// becomes a filter, so a listed field cannot lack its filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Id,
    Username,
    UserStatus,
    CreatedAt,
    UpdatedAt,
    LastLogin,
}

impl Field {
    /// Every field, in the order errors and the OpenAPI description list them.
    pub const ALL: [Field; 6] = [
        Field::Id,
        Field::Username,
        Field::UserStatus,
        Field::CreatedAt,
        Field::UpdatedAt,
        Field::LastLogin,
    ];

    /// The name as written in a filter (case-sensitive).
    pub fn name(self) -> &'static str {
        match self {
            Field::Id => "id",
            Field::Username => "username",
            Field::UserStatus => "userStatus",
            Field::CreatedAt => "createdAt",
            Field::UpdatedAt => "updatedAt",
            Field::LastLogin => "lastLogin",
        }
    }

    fn parse(name: &str) -> Option<Field> {
        Self::ALL.into_iter().find(|field| field.name() == name)
    }

    /// `id, username, ...`: the list errors and the OpenAPI description name.
    pub fn listed() -> String {
        Self::ALL.map(Field::name).join(", ")
    }
}

/// GreenLake's `userStatus` values and the userdir state each means. `UNVERIFIED` and
/// `DELETE_IN_PROGRESS` have no userdir state: `eq` matches nobody, `ne` everybody.
pub const STATUSES: [(&str, Option<UserState>); 6] = [
    ("UNVERIFIED", None),
    ("VERIFIED", Some(UserState::Active)),
    ("BLOCKED", Some(UserState::Locked)),
    ("DELETE_IN_PROGRESS", None),
    ("DELETED", Some(UserState::Deleted)),
    ("SUSPENDED", Some(UserState::Inactive)),
];

/// The `userStatus` of a userdir state.
pub fn status(state: UserState) -> &'static str {
    STATUSES
        .iter()
        .find(|(_, s)| *s == Some(state))
        .map(|(name, _)| *name)
        .unwrap_or("UNVERIFIED")
}

/// A filter that does not parse: where, at which token, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// 1-based character position of the token; one past the end for "end of filter".
    pub position: usize,
    /// The token as written, or empty at the end of the filter.
    pub token: String,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.token.is_empty() {
            write!(
                f,
                "invalid filter at position {} (end of filter): {}",
                self.position, self.message
            )
        } else {
            write!(
                f,
                "invalid filter at position {} (`{}`): {}",
                self.position, self.token, self.message
            )
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Word(String),
    Literal(String),
    Open,
    Close,
    End,
}

#[derive(Clone, Debug)]
struct Token {
    kind: Kind,
    /// 1-based character position.
    position: usize,
    /// As written.
    text: String,
}

fn error(token: &Token, message: impl Into<String>) -> Error {
    Error {
        position: token.position,
        token: token.text.clone(),
        message: message.into(),
    }
}

fn tokenize(filter: &str) -> Result<Vec<Token>, Error> {
    let chars: Vec<char> = filter.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let position = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let (kind, end) = match c {
            '(' => (Kind::Open, i + 1),
            ')' => (Kind::Close, i + 1),
            '\'' => {
                let mut value = String::new();
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => {
                            return Err(Error {
                                position,
                                token: chars[i..].iter().take(20).collect(),
                                message: "the string literal is not closed".into(),
                            });
                        }
                        Some('\'') if chars.get(j + 1) == Some(&'\'') => {
                            value.push('\'');
                            j += 2;
                        }
                        Some('\'') => break,
                        Some(c) => {
                            value.push(*c);
                            j += 1;
                        }
                    }
                }
                (Kind::Literal(value), j + 1)
            }
            c if c.is_alphanumeric() || c == '_' => {
                let mut j = i;
                while chars
                    .get(j)
                    .is_some_and(|c| c.is_alphanumeric() || *c == '_')
                {
                    j += 1;
                }
                (Kind::Word(chars[i..j].iter().collect()), j)
            }
            _ => {
                return Err(Error {
                    position,
                    token: c.to_string(),
                    message: "unexpected character".into(),
                });
            }
        };
        tokens.push(Token {
            kind,
            position,
            text: chars[i..end].iter().collect(),
        });
        i = end;
    }
    tokens.push(Token {
        kind: Kind::End,
        position: chars.len() + 1,
        text: String::new(),
    });
    Ok(tokens)
}

/// Parses a filter within `limits` (`username` literals: at most `limits.max_text_chars`); an
/// empty (or blank) filter is None: every user.
pub fn parse(filter: &str, limits: QueryLimits) -> Result<Option<Query>, Error> {
    let count = filter.chars().count();
    if count > MAX_FILTER_CHARS {
        return Err(Error {
            position: MAX_FILTER_CHARS + 1,
            token: String::new(),
            message: format!("the filter must be at most {MAX_FILTER_CHARS} characters"),
        });
    }
    let tokens = tokenize(filter)?;
    if tokens.len() == 1 {
        return Ok(None);
    }
    let mut parser = Parser {
        tokens,
        next: 0,
        leaves: 0,
        nesting: 0,
        limits,
    };
    let ast = parser.or()?;
    let rest = parser.peek();
    if rest.kind != Kind::End {
        return Err(error(rest, "expected `and`, `or` or the end of the filter"));
    }
    ast.into_query(1, limits.max_depth).map(Some)
}

/// The parsed filter before the depth check: every node keeps its first token for errors.
enum Ast {
    Or(Vec<Ast>, Token),
    And(Vec<Ast>, Token),
    Not(Box<Ast>, Token),
    Leaf(Query, Token),
}

impl Ast {
    fn into_query(self, depth: usize, max_depth: usize) -> Result<Query, Error> {
        let check = |token: &Token| {
            if depth > max_depth {
                Err(error(
                    token,
                    format!("the filter may nest at most {max_depth} levels deep"),
                ))
            } else {
                Ok(())
            }
        };
        let all = |items: Vec<Ast>| -> Result<Vec<Query>, Error> {
            items
                .into_iter()
                .map(|item| item.into_query(depth + 1, max_depth))
                .collect()
        };
        match self {
            Ast::Or(items, token) => {
                check(&token)?;
                all(items).map(Query::Or)
            }
            Ast::And(items, token) => {
                check(&token)?;
                all(items).map(Query::And)
            }
            Ast::Not(inner, token) => {
                check(&token)?;
                Ok(Query::Not(Box::new(
                    inner.into_query(depth + 1, max_depth)?,
                )))
            }
            Ast::Leaf(query, token) => {
                check(&token)?;
                // A `ne` leaf is NOT(eq): one level more.
                if let Query::Not(_) = query
                    && depth + 1 > max_depth
                {
                    return Err(error(
                        &token,
                        format!("the filter may nest at most {max_depth} levels deep"),
                    ));
                }
                Ok(query)
            }
        }
    }
}

struct Parser {
    tokens: Vec<Token>,
    next: usize,
    leaves: usize,
    /// Open parentheses and `not`s around the current position; bounded so that hostile
    /// input never recurses deeply.
    nesting: usize,
    limits: QueryLimits,
}

fn is_word(token: &Token, word: &str) -> bool {
    matches!(&token.kind, Kind::Word(w) if w == word)
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.next]
    }

    fn take(&mut self) -> Token {
        let token = self.tokens[self.next].clone();
        if token.kind != Kind::End {
            self.next += 1;
        }
        token
    }

    fn or(&mut self) -> Result<Ast, Error> {
        let first = self.peek().clone();
        let mut items = vec![self.and()?];
        while is_word(self.peek(), "or") {
            self.take();
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            Ast::Or(items, first)
        })
    }

    fn and(&mut self) -> Result<Ast, Error> {
        let first = self.peek().clone();
        let mut items = vec![self.unary()?];
        while is_word(self.peek(), "and") {
            self.take();
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            Ast::And(items, first)
        })
    }

    fn enter(&mut self, token: &Token) -> Result<(), Error> {
        self.nesting += 1;
        let max_depth = self.limits.max_depth;
        if self.nesting > max_depth {
            return Err(error(
                token,
                format!("the filter may nest at most {max_depth} levels deep"),
            ));
        }
        Ok(())
    }

    fn unary(&mut self) -> Result<Ast, Error> {
        let token = self.peek().clone();
        if is_word(&token, "not") {
            self.take();
            self.enter(&token)?;
            let inner = self.unary()?;
            self.nesting -= 1;
            return Ok(Ast::Not(Box::new(inner), token));
        }
        if token.kind == Kind::Open {
            self.take();
            self.enter(&token)?;
            let ast = self.or()?;
            let close = self.take();
            if close.kind != Kind::Close {
                return Err(error(&close, "expected `)`"));
            }
            self.nesting -= 1;
            return Ok(ast);
        }
        let query = self.comparison()?;
        Ok(Ast::Leaf(query, token))
    }

    fn comparison(&mut self) -> Result<Query, Error> {
        let field = self.take();
        let name = match &field.kind {
            Kind::Word(name) if let Some(known) = Field::parse(name) => known,
            Kind::Word(name)
                if matches!(
                    name.as_str(),
                    "and" | "or" | "eq" | "ne" | "gt" | "ge" | "lt"
                ) =>
            {
                return Err(error(&field, "expected a field, `not` or `(`"));
            }
            Kind::Word(_) => {
                return Err(error(
                    &field,
                    format!("unknown field, expected one of {}", Field::listed()),
                ));
            }
            _ => return Err(error(&field, "expected a field, `not` or `(`")),
        };
        let op_token = self.take();
        let op = match &op_token.kind {
            Kind::Word(w) => match w.as_str() {
                "eq" => CompareOp::Eq,
                "ne" => CompareOp::Ne,
                "gt" => CompareOp::Gt,
                "ge" => CompareOp::Ge,
                "lt" => CompareOp::Lt,
                _ => {
                    return Err(error(
                        &op_token,
                        "unknown operator, expected one of eq, ne, gt, ge, lt",
                    ));
                }
            },
            _ => {
                return Err(error(
                    &op_token,
                    "expected an operator: eq, ne, gt, ge or lt",
                ));
            }
        };
        let literal = self.take();
        let Kind::Literal(value) = &literal.kind else {
            return Err(error(
                &literal,
                "expected a value in single quotes, e.g. 'text'",
            ));
        };
        let query = self.leaf(name, op, &op_token, value, &literal)?;
        self.leaves += 1;
        let max_leaves = self.limits.max_leaves;
        if self.leaves > max_leaves {
            return Err(error(
                &field,
                format!("the filter may hold at most {max_leaves} comparisons"),
            ));
        }
        Ok(query)
    }

    fn leaf(
        &self,
        field: Field,
        op: CompareOp,
        op_token: &Token,
        value: &str,
        literal: &Token,
    ) -> Result<Query, Error> {
        let equality = |filter: Filter| -> Result<Query, Error> {
            match op {
                CompareOp::Eq => Ok(Query::Filter(filter)),
                CompareOp::Ne => Ok(Query::Not(Box::new(Query::Filter(filter)))),
                _ => Err(error(
                    op_token,
                    format!("`{}` supports only eq and ne", field.name()),
                )),
            }
        };
        // A literal compared with stored text (`Id::LENGTH` for ids); GreenLake reports a NUL
        // before a length.
        let text = |length: Length| -> Result<String, Error> {
            refuse_nul(value)
                .and_then(|()| SearchText::parse(value, length))
                .map(SearchText::into_string)
                .map_err(|refused| error(literal, reason(refused)))
        };
        let time = |filter: fn(Comparison) -> Filter| -> Result<Query, Error> {
            let value = timestamp(value).map_err(|message| error(literal, message))?;
            Ok(Query::Filter(filter(Comparison { op, value })))
        };
        match field {
            Field::Id => equality(Filter::UserId(TextMatch::equals(text(Id::LENGTH)?))),
            Field::Username => equality(Filter::Username {
                text: TextMatch::equals(text(Length::new(1, self.limits.max_text_chars))?),
                organization_specific: None,
            }),
            Field::UserStatus => {
                let Some((_, state)) = STATUSES.iter().find(|(name, _)| *name == value) else {
                    let names: Vec<&str> = STATUSES.iter().map(|(name, _)| *name).collect();
                    return Err(error(
                        literal,
                        format!(
                            "unknown userStatus, expected one of {} (case-sensitive)",
                            names.join(", ")
                        ),
                    ));
                };
                equality(match state {
                    Some(state) => Filter::State(*state),
                    None => Filter::Nothing,
                })
            }
            Field::CreatedAt => time(Filter::CreatedAt),
            Field::UpdatedAt => time(Filter::ChangedAt),
            Field::LastLogin => time(Filter::LastLogin),
        }
    }
}

/// A refused literal's reason, in GreenLake's words.
fn reason(error: TextError) -> String {
    match error {
        TextError::Nul => "the value may not contain NUL".into(),
        TextError::TooShort { length, chars } | TextError::TooLong { length, chars } => format!(
            "the value must be {} to {} characters, got {chars}",
            length.min, length.max
        ),
        other => format!("the value {other}"),
    }
}

/// `2020-09-21T14:19:09.769747` (UTC when there is no zone), with an optional `Z` or
/// `±hh:mm`, 0 to 9 fractional digits (beyond microseconds only zeros), or a bare date
/// (midnight UTC).
pub fn timestamp(value: &str) -> Result<Timestamp, String> {
    let bad = || {
        format!(
            "expected a timestamp like '2020-09-21T14:19:09.769747' (UTC unless it names a \
             zone), got '{value}'"
        )
    };
    if value.len() > 40 {
        return Err(bad());
    }
    let time = if let Ok(time) = DateTime::parse_from_rfc3339(value) {
        time.naive_utc()
    } else if let Ok(time) = NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f") {
        time
    } else if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        date.and_hms_opt(0, 0, 0).ok_or_else(bad)?
    } else {
        return Err(bad());
    };
    let time = time.and_utc();
    if time.timestamp_subsec_nanos() % 1000 != 0 {
        return Err("timestamps have at most microsecond precision".into());
    }
    Ok(Timestamp::from_micros(time.timestamp_micros()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{MAX_DEPTH, MAX_LEAVES};

    fn parse(filter: &str) -> Result<Option<Query>, Error> {
        super::parse(filter, QueryLimits::default())
    }

    fn ok(filter: &str) -> Query {
        parse(filter)
            .unwrap_or_else(|e| panic!("{filter}: {e}"))
            .unwrap()
    }

    fn fails(filter: &str) -> Error {
        parse(filter).expect_err(filter)
    }

    fn id(value: &str) -> Query {
        Query::Filter(Filter::UserId(TextMatch::equals(value)))
    }

    fn micros(value: &str) -> Timestamp {
        timestamp(value).unwrap()
    }

    #[test]
    fn blank_filters_match_everybody() {
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse("  \t"), Ok(None));
    }

    #[test]
    fn every_field_and_operator() {
        assert_eq!(ok("id eq 'a'"), id("a"));
        assert_eq!(ok("id ne 'a'"), Query::Not(Box::new(id("a"))));
        assert_eq!(
            ok("username eq 'user@example.com'"),
            Query::Filter(Filter::Username {
                text: TextMatch::equals("user@example.com"),
                organization_specific: None
            })
        );
        assert_eq!(
            ok("userStatus eq 'BLOCKED'"),
            Query::Filter(Filter::State(UserState::Locked))
        );
        assert_eq!(
            ok("userStatus ne 'UNVERIFIED'"),
            Query::Not(Box::new(Query::Filter(Filter::Nothing)))
        );
        let t = micros("2020-09-21T14:19:09.769747");
        for (op, expected) in [
            ("eq", CompareOp::Eq),
            ("ne", CompareOp::Ne),
            ("gt", CompareOp::Gt),
            ("ge", CompareOp::Ge),
            ("lt", CompareOp::Lt),
        ] {
            let comparison = Comparison {
                op: expected,
                value: t,
            };
            assert_eq!(
                ok(&format!("createdAt {op} '2020-09-21T14:19:09.769747'")),
                Query::Filter(Filter::CreatedAt(comparison))
            );
            assert_eq!(
                ok(&format!("updatedAt {op} '2020-09-21T14:19:09.769747'")),
                Query::Filter(Filter::ChangedAt(comparison))
            );
            assert_eq!(
                ok(&format!("lastLogin {op} '2020-09-21T14:19:09.769747'")),
                Query::Filter(Filter::LastLogin(comparison))
            );
        }
    }

    #[test]
    fn precedence_is_not_then_and_then_or() {
        assert_eq!(
            ok("id eq 'a' or id eq 'b' and not id eq 'c'"),
            Query::Or(vec![
                id("a"),
                Query::And(vec![id("b"), Query::Not(Box::new(id("c")))]),
            ])
        );
        assert_eq!(
            ok("(id eq 'a' or id eq 'b') and id eq 'c'"),
            Query::And(vec![Query::Or(vec![id("a"), id("b")]), id("c")])
        );
        assert_eq!(
            ok("id eq 'a' or id eq 'b' or id eq 'c'"),
            Query::Or(vec![id("a"), id("b"), id("c")])
        );
        assert_eq!(
            ok("not (id eq 'a' or id eq 'b')"),
            Query::Not(Box::new(Query::Or(vec![id("a"), id("b")])))
        );
        assert_eq!(ok("((id eq 'a'))"), id("a"));
    }

    #[test]
    fn quotes_double_inside_literals() {
        assert_eq!(ok("id eq 'o''brien'"), id("o'brien"));
        assert_eq!(ok("id eq ''''"), id("'"));
        assert_eq!(ok("id eq 'a b  c'"), id("a b  c"));
    }

    #[test]
    fn timestamps_are_utc_unless_zoned() {
        assert_eq!(
            micros("1970-01-01T00:00:01"),
            Timestamp::from_micros(1_000_000)
        );
        assert_eq!(
            micros("1970-01-01T00:00:01.5"),
            Timestamp::from_micros(1_500_000)
        );
        assert_eq!(
            micros("1970-01-01T00:00:01Z"),
            Timestamp::from_micros(1_000_000)
        );
        assert_eq!(
            micros("1970-01-01T01:00:01+01:00"),
            Timestamp::from_micros(1_000_000)
        );
        assert_eq!(micros("1970-01-02"), Timestamp::from_micros(86_400_000_000));
        assert_eq!(
            micros("1970-01-01T00:00:00.000001000"),
            Timestamp::from_micros(1)
        );
        assert!(timestamp("1970-01-01T00:00:00.0000001").is_err());
        assert!(timestamp("yesterday").is_err());
        assert!(timestamp("2020-13-01T00:00:00").is_err());
    }

    #[test]
    fn errors_name_position_and_token() {
        let cases: &[(&str, usize, &str, &str)] = &[
            ("id eqq 'a'", 4, "eqq", "unknown operator"),
            (
                "idx eq 'a'",
                1,
                "idx",
                "unknown field, expected one of id, username",
            ),
            ("id eq a", 7, "a", "expected a value in single quotes"),
            ("id eq 'a", 7, "'a", "not closed"),
            ("id eq 'a' and", 14, "", "expected a field"),
            ("id eq 'a' xor id eq 'b'", 11, "xor", "expected `and`, `or`"),
            ("(id eq 'a'", 11, "", "expected `)`"),
            ("id eq 'a')", 10, ")", "expected `and`, `or`"),
            ("id gt 'a'", 4, "gt", "`id` supports only eq and ne"),
            ("username lt 'a'", 10, "lt", "supports only eq and ne"),
            (
                "userStatus eq 'verified'",
                15,
                "'verified'",
                "unknown userStatus",
            ),
            (
                "userStatus ge 'VERIFIED'",
                12,
                "ge",
                "supports only eq and ne",
            ),
            ("createdAt gt 'soon'", 14, "'soon'", "expected a timestamp"),
            ("id eq ''", 7, "''", "1 to 200 characters"),
            ("id eq 'a' & id eq 'b'", 11, "&", "unexpected character"),
            ("ID eq 'a'", 1, "ID", "unknown field"),
            ("id EQ 'a'", 4, "EQ", "unknown operator"),
            ("and eq 'a'", 1, "and", "expected a field"),
            ("id 'a'", 4, "'a'", "expected an operator"),
            ("()", 2, ")", "expected a field"),
        ];
        for (filter, position, token, message) in cases {
            let e = fails(filter);
            assert_eq!(
                (e.position, e.token.as_str()),
                (*position, *token),
                "{filter}: {e}"
            );
            assert!(e.message.contains(message), "{filter}: {e}");
        }
        assert_eq!(
            fails("id eqq 'a'").to_string(),
            "invalid filter at position 4 (`eqq`): unknown operator, expected one of eq, ne, \
             gt, ge, lt"
        );
        assert_eq!(
            fails("id eq").to_string(),
            "invalid filter at position 6 (end of filter): expected a value in single quotes, \
             e.g. 'text'"
        );
    }

    #[test]
    fn nesting_and_size_are_bounded() {
        let deep = format!("{}id eq 'a'{}", "(".repeat(10), ")".repeat(10));
        assert_eq!(ok(&deep), id("a"));
        let deep = format!("{}id eq 'a'{}", "(".repeat(11), ")".repeat(11));
        assert_eq!(fails(&deep).position, 11);
        let nots = format!("{}id eq 'a'", "not ".repeat(MAX_DEPTH - 1));
        ok(&nots);
        let too_deep = format!("{}id eq 'a'", "not ".repeat(MAX_DEPTH));
        assert!(fails(&too_deep).message.contains("at most 10 levels"));
        let hostile = "(".repeat(100_000);
        assert!(fails(&hostile).message.contains("at most 4096 characters"));
        let hostile = format!("{}id eq 'a'", "not (".repeat(800));
        assert!(fails(&hostile).message.contains("levels deep"));
        let many = vec!["id eq 'a'"; MAX_LEAVES + 1].join(" or ");
        assert!(fails(&many).message.contains("at most 100 comparisons"));
        let enough = vec!["id eq 'a'"; MAX_LEAVES].join(" or ");
        ok(&enough);
        let nested = format!(
            "{}id eq 'a'{}",
            "(id eq 'b' and ".repeat(20),
            ")".repeat(20)
        );
        assert!(fails(&nested).message.contains("levels deep"));
    }

    #[test]
    fn configured_limits_apply() {
        let limits = QueryLimits {
            max_depth: 2,
            max_leaves: 2,
            max_text_chars: 3,
        };
        let parse = |filter: &str| super::parse(filter, limits);
        assert!(parse("not id eq 'a'").is_ok());
        let error = parse("not not id eq 'a'").unwrap_err();
        assert_eq!((error.position, error.token.as_str()), (9, "id"));
        assert!(error.message.contains("at most 2 levels"), "{error}");
        // `ne` is NOT(eq): one level more.
        assert!(parse("id ne 'a'").is_ok());
        assert!(parse("not id ne 'a'").is_err());
        assert!(parse("id eq 'a' or id eq 'b'").is_ok());
        let error = parse("id eq 'a' or id eq 'b' or id eq 'c'").unwrap_err();
        assert_eq!(error.position, 27);
        assert!(error.message.contains("at most 2 comparisons"), "{error}");
        assert!(parse("username eq 'abc'").is_ok());
        let error = parse("username eq 'abcd'").unwrap_err();
        assert_eq!(error.token, "'abcd'");
        assert!(
            error.message.contains("1 to 3 characters, got 4"),
            "{error}"
        );
        // Ids keep their own limit.
        assert!(parse("id eq 'abcdefgh'").is_ok());
    }
}
