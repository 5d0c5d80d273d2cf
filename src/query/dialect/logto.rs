//! Logto's Management API search dialect (`GET /api/users`, `GET /api/roles/{id}/users`):
//! `page`/`page_size` paging and the flat `search_params` keys `search`, `search.<field>`,
//! `mode`, `mode.<field>`, `joint` (alias `jointMode`) and `isCaseSensitive`, parsed into the
//! one query tree. Error texts are Logto's.

use crate::domain::{Length, SearchText, TextError, fold_case, refuse_nul};
use crate::query::{Filter, Query, QueryLimits, TextMatch, TextOp, regex};

/// Page size when a request names none.
pub const DEFAULT_PAGE_SIZE: u64 = 20;
/// Largest `page_size`; larger is `guard.invalid_pagination`.
pub const MAX_PAGE_SIZE: u64 = 100;

/// A searchable field. Every field in [`Field::ALL`] is matched exhaustively in
/// [`Field::filter`], so a listed field cannot lack its filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Id,
    PrimaryEmail,
    PrimaryPhone,
    Username,
    Name,
}

impl Field {
    /// Every field, in the order the general `search` key searches them and errors list them.
    pub const ALL: [Field; 5] = [
        Field::Id,
        Field::PrimaryEmail,
        Field::PrimaryPhone,
        Field::Username,
        Field::Name,
    ];

    /// The snake-cased name, as Logto names the field in errors.
    pub fn name(self) -> &'static str {
        match self {
            Field::Id => "id",
            Field::PrimaryEmail => "primary_email",
            Field::PrimaryPhone => "primary_phone",
            Field::Username => "username",
            Field::Name => "name",
        }
    }

    /// The camel-cased name, as a client writes it in a key (`search.primaryEmail`);
    /// [`snake_case`] turns it into [`Field::name`].
    pub fn key(self) -> &'static str {
        match self {
            Field::Id => "id",
            Field::PrimaryEmail => "primaryEmail",
            Field::PrimaryPhone => "primaryPhone",
            Field::Username => "username",
            Field::Name => "name",
        }
    }

    /// The field of a snake-cased name.
    fn parse(name: &str) -> Option<Field> {
        Self::ALL.into_iter().find(|field| field.name() == name)
    }

    /// `id, primary_email, ...`: the list the errors name.
    fn listed() -> String {
        Self::ALL.map(Field::name).join(", ")
    }

    fn filter(self, text: TextMatch) -> Filter {
        match self {
            Field::Id => Filter::UserId(text),
            Field::PrimaryEmail => Filter::Email(text),
            Field::PrimaryPhone => Filter::Phone(text),
            Field::Name => Filter::Name(text),
            Field::Username => Filter::Username {
                text,
                organization_specific: None,
            },
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// `guard.invalid_pagination`.
    Pagination,
    /// `request.invalid_input`, with the details text.
    Input(String),
}

/// A page: 1-based number and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub page: u64,
    pub page_size: u64,
}

impl Page {
    pub fn offset(self) -> u64 {
        (self.page - 1) * self.page_size
    }
}

/// The last page number: whatever the page size, its offset fits a signed 64-bit integer. A
/// bound of its own (not one that moves with `page_size`) so that the OpenAPI document can say
/// it.
pub const MAX_PAGE: u64 = i64::MAX as u64 / MAX_PAGE_SIZE + 1;

/// `page` (default 1, at most [`MAX_PAGE`]) and `page_size` (default 20, at most 100; both
/// lowered to the server's `max_limit` when that is smaller): positive integers, the first
/// occurrence of each key counts. The offset must fit a signed 64-bit integer.
pub fn paging(params: &[(String, String)], server_max: u64) -> Result<Page, Error> {
    let max = MAX_PAGE_SIZE.min(server_max).max(1);
    let number = |key: &str, default: u64| -> Result<u64, Error> {
        match params.iter().find(|(k, _)| k == key) {
            None => Ok(default),
            Some((_, value)) => match value.trim().parse::<u64>() {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err(Error::Pagination),
            },
        }
    };
    let page = number("page", 1)?;
    let page_size = number("page_size", DEFAULT_PAGE_SIZE.min(max))?;
    if page_size > max || page > MAX_PAGE {
        return Err(Error::Pagination);
    }
    match (page - 1).checked_mul(page_size) {
        Some(offset) if offset <= i64::MAX as u64 => Ok(Page { page, page_size }),
        _ => Err(Error::Pagination),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Exact,
    Like,
    SimilarTo,
    Posix,
}

impl Mode {
    fn parse(value: &str, field: Option<&str>) -> Result<Self, Error> {
        Ok(match value {
            "exact" => Self::Exact,
            "like" => Self::Like,
            "similar_to" => Self::SimilarTo,
            "posix" => Self::Posix,
            _ => {
                let field = field
                    .map(|f| format!(" for field `{f}`"))
                    .unwrap_or_default();
                return Err(Error::Input(format!(
                    "Search match mode `{value}`{field} is not valid, expect one of exact, like, \
                     similar_to, posix."
                )));
            }
        })
    }
}

/// Logto's truthy strings: 1, true, y, yes, yep, yeah (any case).
pub fn truthy(value: &str) -> bool {
    matches!(
        value.to_ascii_lowercase().as_str(),
        "1" | "true" | "y" | "yes" | "yep" | "yeah"
    )
}

/// `primaryEmail` -> `primary_email`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn field(raw: &str) -> Result<Field, Error> {
    if raw.contains('.') {
        return Err(Error::Input(format!(
            "Unsupported nested search field path `{raw}` detected. Only the first level field \
             is supported."
        )));
    }
    let name = snake_case(raw);
    Field::parse(&name).ok_or_else(|| {
        Error::Input(format!(
            "Search field `{name}` is not valid, expect one of {}.",
            Field::listed()
        ))
    })
}

/// The search of a request: None when it has no search keys. Keys other than the search keys
/// are ignored, as Logto does. `exact` and `like` values may hold `limits.max_text_chars`
/// characters (regular expressions: 256), a search `limits.max_leaves` field values. The tree
/// is at most three levels deep by construction (keys, fields, values), so `limits.max_depth`
/// does not restrict it further.
pub fn search(params: &[(String, String)], limits: QueryLimits) -> Result<Option<Query>, Error> {
    // (None = the general key, Some(field)), the key as first written, values, in order of
    // first appearance.
    let mut keys: Vec<(Option<Field>, &str, Vec<String>)> = Vec::new();
    let mut general_mode: Option<Mode> = None;
    let mut field_modes: Vec<(Field, Mode)> = Vec::new();
    let mut joint: Option<&str> = None;
    let mut case_sensitive: Option<bool> = None;
    for (key, value) in params {
        if key == "joint" || key == "jointMode" {
            if joint.is_none() {
                joint = Some(value.as_str());
            }
        } else if key == "isCaseSensitive" {
            case_sensitive.get_or_insert(truthy(value));
        } else if key.starts_with("mode") {
            match key.split_once('.') {
                None => general_mode = Some(Mode::parse(value, None)?),
                Some((_, raw)) => {
                    let name = snake_case(raw);
                    let mode = Mode::parse(value, Some(&name))?;
                    // A mode for a field that is never searched is ignored (as in Logto);
                    // keeping only known fields also bounds this list.
                    if let Some(field) = Field::parse(&name) {
                        field_modes.retain(|(f, _)| *f != field);
                        field_modes.push((field, mode));
                    }
                }
            }
        } else if key.starts_with("search") {
            let field = match key.split_once('.') {
                None => None,
                Some((_, raw)) => Some(self::field(raw)?),
            };
            match keys.iter_mut().find(|(f, _, _)| *f == field) {
                Some((_, _, values)) => values.push(value.clone()),
                None => keys.push((field, key.as_str(), vec![value.clone()])),
            }
        }
    }
    let and = match joint {
        None | Some("or") => false,
        Some("and") => true,
        Some(other) => {
            return Err(Error::Input(format!(
                "Search joint mode `{other}` is not valid, expect one of or, and."
            )));
        }
    };
    let case_sensitive = case_sensitive.unwrap_or(false);
    let mut conditions = Vec::with_capacity(keys.len());
    let mut leaves = 0;
    for (field, key, values) in &keys {
        let mode = field
            .and_then(|f| field_modes.iter().find(|(m, _)| *m == f).map(|(_, m)| *m))
            .or(general_mode)
            .unwrap_or(Mode::Like);
        if values.iter().any(|v| v.is_empty()) {
            return Err(Error::Input("Search value cannot be empty.".into()));
        }
        if values.len() > 1 && mode != Mode::Exact {
            return Err(Error::Input(
                "Only one search value is allowed when search mode is not `exact`.".into(),
            ));
        }
        if mode == Mode::SimilarTo && !case_sensitive {
            return Err(Error::Input(
                "Cannot use case-insensitive match for `similar to`.".into(),
            ));
        }
        let texts = values
            .iter()
            .map(|value| text(mode, !case_sensitive, value, key, limits.max_text_chars))
            .collect::<Result<Vec<_>, _>>()?;
        let fields: Vec<Field> = match field {
            Some(field) => vec![*field],
            None => Field::ALL.to_vec(),
        };
        let per_field: Vec<Query> = fields
            .iter()
            .map(|field| {
                any(texts
                    .iter()
                    .map(|text| Query::Filter(field.filter(text.clone())))
                    .collect())
            })
            .collect();
        leaves += fields.len() * texts.len();
        if leaves > limits.max_leaves {
            return Err(Error::Input(format!(
                "A search may hold at most {} field values; {key} brings it to {leaves}.",
                limits.max_leaves
            )));
        }
        conditions.push(any(per_field));
    }
    Ok(match conditions.len() {
        0 => None,
        1 => conditions.pop(),
        _ if and => Some(Query::And(conditions)),
        _ => Some(Query::Or(conditions)),
    })
}

/// OR of several queries, without a wrapper around one.
fn any(mut queries: Vec<Query>) -> Query {
    if queries.len() == 1 {
        queries.pop().expect("one query")
    } else {
        Query::Or(queries)
    }
}

/// The value of `key`; errors name the key.
fn text(
    mode: Mode,
    ignore_case: bool,
    value: &str,
    key: &str,
    max_chars: usize,
) -> Result<TextMatch, Error> {
    let invalid =
        |reason: String| Error::Input(format!("Search value is invalid: {key}: {reason}."));
    // Logto reports a NUL before a length, and refuses it in every mode (regular expressions
    // have their own length rule).
    refuse_nul(value).map_err(|error| invalid(reason(error)))?;
    let (op, value) = match mode {
        Mode::Exact | Mode::Like => {
            // Empty values were refused with the whole key.
            let value = SearchText::parse(value, Length::new(0, max_chars))
                .map_err(|error| invalid(reason(error)))?
                .into_string();
            if mode == Mode::Like && ends_with_lone_escape(&value) {
                return Err(invalid("the like pattern ends with a lone `\\`".into()));
            }
            let op = if mode == Mode::Exact {
                TextOp::Equals
            } else {
                TextOp::Like
            };
            (op, value)
        }
        Mode::SimilarTo => (TextOp::Regex, regex::similar_to(value).map_err(invalid)?),
        Mode::Posix => {
            // Ignore-case regexes run on the folded column, so the pattern is folded too.
            let pattern = if ignore_case {
                fold_case(value)
            } else {
                value.to_owned()
            };
            (TextOp::Regex, regex::validate(&pattern).map_err(invalid)?)
        }
    };
    Ok(TextMatch::new(op, ignore_case, value))
}

/// A refused value's reason, in Logto's words.
fn reason(error: TextError) -> String {
    match error {
        TextError::Nul => "it may not contain NUL".into(),
        TextError::TooLong { length, chars } => {
            format!("it must be at most {} characters, got {chars}", length.max)
        }
        other => format!("it {other}"),
    }
}

/// A LIKE pattern whose last `\` escapes nothing.
fn ends_with_lone_escape(pattern: &str) -> bool {
    pattern.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(query: &[(&str, &str)]) -> Vec<(String, String)> {
        query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn parse(query: &[(&str, &str)]) -> Result<Option<Query>, Error> {
        search(&params(query), QueryLimits::default())
    }

    fn input_error(query: &[(&str, &str)]) -> String {
        match parse(query) {
            Err(Error::Input(text)) => text,
            other => panic!("{query:?}: {other:?}"),
        }
    }

    fn leaf(filter: Filter) -> Query {
        Query::Filter(filter)
    }

    #[test]
    fn paging_defaults_bounds_and_overflow() {
        assert_eq!(
            paging(&[], 1000),
            Ok(Page {
                page: 1,
                page_size: 20
            })
        );
        let page = paging(&params(&[("page", "3"), ("page_size", "100")]), 1000).unwrap();
        assert_eq!(page.offset(), 200);
        assert_eq!(paging(&[], 10).unwrap().page_size, 10);
        assert_eq!(
            paging(&params(&[("page_size", "11")]), 10),
            Err(Error::Pagination)
        );
        for bad in [
            ("page", "0"),
            ("page", "-1"),
            ("page", "1.5"),
            ("page", "x"),
            ("page_size", "0"),
            ("page_size", "101"),
            ("page", "99999999999999999999999"),
            ("page", "500000000000000000"),
        ] {
            assert_eq!(
                paging(&params(&[bad]), 1000),
                Err(Error::Pagination),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn no_search_keys_is_no_query_and_other_keys_are_ignored() {
        assert_eq!(parse(&[("page", "2"), ("foo", "bar")]), Ok(None));
    }

    #[test]
    fn a_field_key_defaults_to_like_ignoring_case() {
        assert_eq!(
            parse(&[("search.primaryEmail", "%Ann%")]),
            Ok(Some(leaf(Filter::Email(TextMatch::new(
                TextOp::Like,
                true,
                "%Ann%"
            )))))
        );
    }

    #[test]
    fn the_general_key_searches_every_field() {
        let query = parse(&[("search", "ann"), ("mode", "exact")])
            .unwrap()
            .unwrap();
        let Query::Or(fields) = query else {
            panic!("{query:?}")
        };
        assert_eq!(fields.len(), Field::ALL.len());
        assert_eq!(
            fields[0],
            leaf(Filter::UserId(TextMatch::new(TextOp::Equals, true, "ann")))
        );
    }

    #[test]
    fn exact_takes_several_values_as_an_or() {
        let query = parse(&[
            ("search.id", "a"),
            ("search.id", "b"),
            ("mode.id", "exact"),
            ("isCaseSensitive", "true"),
        ])
        .unwrap();
        assert_eq!(
            query,
            Some(Query::Or(vec![
                leaf(Filter::UserId(TextMatch::equals("a"))),
                leaf(Filter::UserId(TextMatch::equals("b"))),
            ]))
        );
    }

    #[test]
    fn joint_combines_the_keys_and_field_modes_override_the_general_mode() {
        let query = parse(&[
            ("search.username", "ann"),
            ("search.primary_phone", "+41%"),
            ("mode", "exact"),
            ("mode.primaryPhone", "like"),
            ("joint", "and"),
            ("jointMode", "or"),
        ])
        .unwrap();
        assert_eq!(
            query,
            Some(Query::And(vec![
                leaf(Filter::Username {
                    text: TextMatch::new(TextOp::Equals, true, "ann"),
                    organization_specific: None
                }),
                leaf(Filter::Phone(TextMatch::new(TextOp::Like, true, "+41%"))),
            ]))
        );
        assert!(matches!(
            parse(&[("search.id", "a"), ("search.username", "b")]),
            Ok(Some(Query::Or(_)))
        ));
    }

    #[test]
    fn regex_modes_are_validated_and_folded() {
        assert_eq!(
            parse(&[("search.username", "^AN+"), ("mode", "posix")]),
            Ok(Some(leaf(Filter::Username {
                text: TextMatch::new(TextOp::Regex, true, "(?s)^an+"),
                organization_specific: None
            })))
        );
        assert_eq!(
            parse(&[
                ("search.username", "A%"),
                ("mode", "similar_to"),
                ("isCaseSensitive", "1")
            ]),
            Ok(Some(leaf(Filter::Username {
                text: TextMatch::new(TextOp::Regex, false, "(?s)^(A.*)$"),
                organization_specific: None
            })))
        );
        let error = input_error(&[("search.username", "(a"), ("mode", "posix")]);
        assert!(
            error.starts_with(
                "Search value is invalid: search.username: the regular expression is invalid"
            ),
            "{error}"
        );
        let error = input_error(&[("search.id", r"\d"), ("mode", "posix")]);
        assert!(error.contains("escape `\\d`"), "{error}");
    }

    #[test]
    fn every_logto_error_text() {
        assert_eq!(
            input_error(&[("search.name.first", "x")]),
            "Unsupported nested search field path `name.first` detected. Only the first level \
             field is supported."
        );
        assert_eq!(
            input_error(&[("search", "x"), ("joint", "xor")]),
            "Search joint mode `xor` is not valid, expect one of or, and."
        );
        assert_eq!(
            input_error(&[("mode.id", "fuzzy")]),
            "Search match mode `fuzzy` for field `id` is not valid, expect one of exact, like, \
             similar_to, posix."
        );
        assert_eq!(
            input_error(&[("mode", "fuzzy")]),
            "Search match mode `fuzzy` is not valid, expect one of exact, like, similar_to, posix."
        );
        assert_eq!(
            input_error(&[("search.id", "")]),
            "Search value cannot be empty."
        );
        assert_eq!(
            input_error(&[("search.id", "a"), ("search.id", "b")]),
            "Only one search value is allowed when search mode is not `exact`."
        );
        assert_eq!(
            input_error(&[("search.id", "a"), ("mode", "similar_to")]),
            "Cannot use case-insensitive match for `similar to`."
        );
        assert_eq!(
            input_error(&[("search.foo", "a")]),
            "Search field `foo` is not valid, expect one of id, primary_email, primary_phone, \
             username, name."
        );
        assert_eq!(
            input_error(&[("search.id", "a\0")]),
            "Search value is invalid: search.id: it may not contain NUL."
        );
        assert!(input_error(&[("search.id", &"a".repeat(201))]).contains("at most 200"));
        assert!(input_error(&[("search.id", r"ab\")]).contains("lone"));
    }

    #[test]
    fn like_escapes_are_checked_pairwise() {
        assert!(!ends_with_lone_escape(r"a\\"));
        assert!(ends_with_lone_escape(r"a\\\"));
        assert!(parse(&[("search.id", r"50\%")]).is_ok());
    }

    #[test]
    fn too_many_values_are_refused() {
        let mut query = vec![("mode", "exact")];
        query.extend(std::iter::repeat_n(("search", "x"), 21));
        assert_eq!(
            input_error(&query),
            "A search may hold at most 100 field values; search brings it to 105."
        );
    }

    #[test]
    fn configured_limits_apply() {
        let limits = QueryLimits {
            max_depth: 1,
            max_leaves: 6,
            max_text_chars: 3,
        };
        let search = |query: &[(&str, &str)]| super::search(&params(query), limits);
        // Depth is fixed by the dialect: a general key with two values is three levels deep.
        assert!(search(&[("search", "a"), ("search.id", "b")]).is_ok());
        assert_eq!(
            search(&[("search", "a"), ("search.id", "b"), ("search.name", "c")]),
            Err(Error::Input(
                "A search may hold at most 6 field values; search.name brings it to 7.".into()
            ))
        );
        assert!(search(&[("search.name", "abc")]).is_ok());
        assert_eq!(
            search(&[("search.name", "abcd")]),
            Err(Error::Input(
                "Search value is invalid: search.name: it must be at most 3 characters, got 4."
                    .into()
            ))
        );
    }

    #[test]
    fn modes_of_unsearched_or_unknown_fields_are_ignored() {
        assert_eq!(
            parse(&[("mode.foo", "exact"), ("mode.id", "posix")]),
            Ok(None)
        );
        assert_eq!(
            parse(&[
                ("mode.id", "posix"),
                ("mode.id", "exact"),
                ("search.id", "a")
            ]),
            Ok(Some(leaf(Filter::UserId(TextMatch::new(
                TextOp::Equals,
                true,
                "a"
            )))))
        );
    }

    #[test]
    fn camel_cased_keys_name_their_fields() {
        for field in Field::ALL {
            assert_eq!(Field::parse(&snake_case(field.key())), Some(field));
        }
    }

    #[test]
    fn truthy_strings() {
        for yes in ["1", "true", "TRUE", "y", "yes", "Yep", "yeah"] {
            assert!(truthy(yes), "{yes}");
        }
        for no in ["0", "false", "", "no", "on"] {
            assert!(!truthy(no), "{no}");
        }
    }
}
