//! ZITADEL's search requests at the gRPC edge (as ZITADEL's `user_query.go`): the protobuf
//! `query` (offset/limit/asc), `sortingColumn` and nested `queries` of ListUsers, and the text
//! queries of other lists, converted into the one query tree. Errors name the offending field
//! by its JSON path, e.g. `queries[0].orQuery.queries[2].emailQuery.address`.

use crate::domain::{Id, Length, Phone, SearchText, TextError, UserState};
use crate::error::{Error, Result};
use crate::proto::user::v1 as pb;
use crate::query::{
    Filter, PageLimits, PageToken, PageTokenKey, Query, QueryLimits, SortField, TextMatch, TextOp,
    UserSearch, page_token,
};
use pb::search_query::Query as Pq;

/// Offset, limit and direction of a `ListQuery`, checked against the limits.
pub fn paging(query: Option<&pb::ListQuery>, pages: PageLimits) -> Result<(u64, u64, bool)> {
    let default = pb::ListQuery::default();
    let page = query.unwrap_or(&default);
    let limit = match page.limit {
        0 => pages.default,
        limit if limit > pages.max => {
            return Err(Error::invalid(
                "query.limit",
                format!("must be at most {}, got {limit}", pages.max),
            ));
        }
        limit => limit,
    };
    if page.offset > i64::MAX as u64 {
        return Err(Error::invalid(
            "query.offset",
            format!("must be at most {}", i64::MAX),
        ));
    }
    Ok((page.offset, limit.into(), page.asc))
}

/// The `pageToken` of a `ListQuery`, opened with the directory's key (its MAC checked); empty
/// is none. A token replaces the offset, so both together are InvalidArgument. Whether the
/// token belongs to this very search is `PageToken::resume`'s to say, once the search is whole.
pub fn page_token(query: Option<&pb::ListQuery>, key: &PageTokenKey) -> Result<Option<PageToken>> {
    let Some(page) = query.filter(|page| !page.page_token.is_empty()) else {
        return Ok(None);
    };
    if page.offset != 0 {
        return Err(Error::invalid(
            "query.offset",
            format!(
                "must be 0 with {}: a token says where the page starts",
                page_token::FIELD
            ),
        ));
    }
    key.open(&page.page_token).map(Some)
}

pub fn parse_list_users(
    request: &pb::ListUsersRequest,
    pages: PageLimits,
    query_limits: QueryLimits,
) -> Result<UserSearch> {
    let (offset, limit, ascending) = paging(request.query.as_ref(), pages)?;
    let mut parser = Parser {
        leaves: 0,
        limits: query_limits,
    };
    let queries = request
        .queries
        .iter()
        .enumerate()
        .map(|(i, query)| parser.query(query, &format!("queries[{i}]"), 1))
        .collect::<Result<Vec<_>>>()?;
    Ok(UserSearch {
        query: Query::all(queries),
        sort: sort_field(request.sorting_column)?,
        ascending,
        offset,
        limit,
        after: None,
    })
}

/// The sort field of a `FieldName`; UNSPECIFIED means creation date.
pub fn sort_field(number: i32) -> Result<SortField> {
    use pb::FieldName as F;
    let field = F::try_from(number)
        .map_err(|_| Error::invalid("sortingColumn", format!("unknown field name {number}")))?;
    Ok(match field {
        F::Unspecified | F::CreationDate => SortField::CreationDate,
        F::Id => SortField::Id,
        F::ChangeDate => SortField::ChangeDate,
        F::Email => SortField::Email,
        F::Phone => SortField::Phone,
        F::State => SortField::State,
        F::SchemaId => SortField::SchemaId,
        F::SchemaType => SortField::SchemaType,
    })
}

/// The `FieldName` a result is sorted by.
pub fn field_name(sort: SortField) -> pb::FieldName {
    use pb::FieldName as F;
    match sort {
        SortField::CreationDate => F::CreationDate,
        SortField::Id => F::Id,
        SortField::ChangeDate => F::ChangeDate,
        SortField::Email => F::Email,
        SortField::Phone => F::Phone,
        SortField::State => F::State,
        SortField::SchemaId => F::SchemaId,
        SortField::SchemaType => F::SchemaType,
    }
}

struct Parser {
    leaves: usize,
    limits: QueryLimits,
}

/// The length of a searched name, username or schema type: 1 to `max` characters.
pub fn name_length(max: usize) -> Length {
    Length::new(1, max)
}

/// Email queries may search for the empty address.
fn email_length(max: usize) -> Length {
    Length::new(0, max)
}

impl Parser {
    fn query(&mut self, query: &pb::SearchQuery, path: &str, depth: usize) -> Result<Query> {
        let max_depth = self.limits.max_depth;
        if depth > max_depth {
            return Err(Error::invalid(
                path,
                format!("queries may be nested at most {max_depth} levels deep"),
            ));
        }
        let text_length = name_length(self.limits.max_text_chars);
        let Some(query) = &query.query else {
            return Err(Error::invalid(
                path,
                "must set one query: orQuery, andQuery, notQuery, userIdQuery, \
                 organizationIdQuery, usernameQuery, emailQuery, phoneQuery, stateQuery, \
                 schemaIDQuery or schemaTypeQuery",
            ));
        };
        let filter = match query {
            Pq::OrQuery(or) => {
                return self
                    .list(&or.queries, &format!("{path}.orQuery.queries"), depth)
                    .map(Query::Or);
            }
            Pq::AndQuery(and) => {
                return self
                    .list(&and.queries, &format!("{path}.andQuery.queries"), depth)
                    .map(Query::And);
            }
            Pq::NotQuery(not) => {
                let path = format!("{path}.notQuery.query");
                let Some(inner) = &not.query else {
                    return Err(Error::invalid(path, "is required"));
                };
                return Ok(Query::Not(Box::new(self.query(inner, &path, depth + 1)?)));
            }
            Pq::UserIdQuery(q) => Filter::UserId(text(
                &q.id,
                q.method,
                &format!("{path}.userIdQuery"),
                "id",
                Id::LENGTH,
            )?),
            Pq::OrganizationIdQuery(q) => Filter::OrganizationId(text(
                &q.id,
                q.method,
                &format!("{path}.organizationIdQuery"),
                "id",
                Id::LENGTH,
            )?),
            Pq::UsernameQuery(q) => Filter::Username {
                text: text(
                    &q.username,
                    q.method,
                    &format!("{path}.usernameQuery"),
                    "username",
                    text_length,
                )?,
                organization_specific: q.is_organization_specific,
            },
            Pq::EmailQuery(q) => Filter::Email(text(
                &q.address,
                q.method,
                &format!("{path}.emailQuery"),
                "address",
                email_length(self.limits.max_text_chars),
            )?),
            Pq::PhoneQuery(q) => Filter::Phone(text(
                &q.number,
                q.method,
                &format!("{path}.phoneQuery"),
                "number",
                Phone::LENGTH,
            )?),
            Pq::StateQuery(q) => {
                Filter::State(state(q.state, &format!("{path}.stateQuery.state"))?)
            }
            Pq::SchemaIdQuery(q) => {
                let id = Id::parse(&q.id)
                    .map_err(|error| invalid(&format!("{path}.schemaIDQuery.id"), error))?;
                Filter::SchemaId(id.into_string())
            }
            Pq::SchemaTypeQuery(q) => Filter::SchemaType(text(
                &q.r#type,
                q.method,
                &format!("{path}.schemaTypeQuery"),
                "type",
                text_length,
            )?),
        };
        self.leaves += 1;
        let max_leaves = self.limits.max_leaves;
        if self.leaves > max_leaves {
            return Err(Error::invalid(
                path,
                format!("a search may hold at most {max_leaves} leaf queries"),
            ));
        }
        Ok(Query::Filter(filter))
    }

    fn list(
        &mut self,
        queries: &[pb::SearchQuery],
        path: &str,
        depth: usize,
    ) -> Result<Vec<Query>> {
        if queries.is_empty() {
            return Err(Error::invalid(path, "must hold at least one query"));
        }
        queries
            .iter()
            .enumerate()
            .map(|(i, query)| self.query(query, &format!("{path}[{i}]"), depth + 1))
            .collect()
    }
}

/// A text value with its method; `path` is the query's path, `field` the value's name.
pub fn text(
    value: &str,
    method: i32,
    path: &str,
    field: &str,
    length: Length,
) -> Result<TextMatch> {
    let value = SearchText::parse(value, length)
        .map_err(|error| invalid(&format!("{path}.{field}"), error))?;
    use pb::TextQueryMethod as M;
    let method = M::try_from(method).map_err(|_| {
        Error::invalid(
            format!("{path}.method"),
            format!("unknown text query method {method}"),
        )
    })?;
    let (op, ignore_case) = match method {
        M::Equals => (TextOp::Equals, false),
        M::EqualsIgnoreCase => (TextOp::Equals, true),
        M::StartsWith => (TextOp::StartsWith, false),
        M::StartsWithIgnoreCase => (TextOp::StartsWith, true),
        M::Contains => (TextOp::Contains, false),
        M::ContainsIgnoreCase => (TextOp::Contains, true),
        M::EndsWith => (TextOp::EndsWith, false),
        M::EndsWithIgnoreCase => (TextOp::EndsWith, true),
    };
    Ok(TextMatch::new(op, ignore_case, value.into_string()))
}

/// A value's error in the directory's own words, after its path.
fn invalid(path: &str, error: TextError) -> Error {
    Error::invalid(path, error.to_string())
}

fn state(number: i32, path: &str) -> Result<UserState> {
    match pb::State::try_from(number) {
        Ok(pb::State::UserStateUnspecified) => Err(Error::invalid(
            path,
            "must be one of USER_STATE_ACTIVE, USER_STATE_INACTIVE, USER_STATE_DELETED, USER_STATE_LOCKED",
        )),
        Ok(state) => UserState::from_number(state as i64)
            .ok_or_else(|| Error::invalid(path, format!("unknown state {number}"))),
        Err(_) => Err(Error::invalid(path, format!("unknown state {number}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::MAX_DEPTH;

    fn email(address: &str) -> pb::SearchQuery {
        pb::SearchQuery {
            query: Some(Pq::EmailQuery(pb::EmailQuery {
                address: address.into(),
                method: 0,
            })),
        }
    }

    fn or(queries: Vec<pb::SearchQuery>) -> pb::SearchQuery {
        pb::SearchQuery {
            query: Some(Pq::OrQuery(pb::OrQuery { queries })),
        }
    }

    fn not(query: pb::SearchQuery) -> pb::SearchQuery {
        pb::SearchQuery {
            query: Some(Pq::NotQuery(Box::new(pb::NotQuery {
                query: Some(Box::new(query)),
            }))),
        }
    }

    fn parse(queries: Vec<pb::SearchQuery>) -> Result<UserSearch> {
        parse_list_users(
            &pb::ListUsersRequest {
                queries,
                ..Default::default()
            },
            PageLimits::default(),
            QueryLimits::default(),
        )
    }

    fn error_text(result: Result<UserSearch>) -> String {
        result.expect_err("must be rejected").to_string()
    }

    #[test]
    fn defaults_to_descending_creation_date_and_the_default_limit() {
        let search = parse(vec![]).unwrap();
        assert_eq!(search.query, None);
        assert_eq!(search.sort, SortField::CreationDate);
        assert!(!search.ascending);
        assert_eq!(search.limit, 100);
    }

    #[test]
    fn a_limit_above_the_maximum_is_rejected_not_cut() {
        let request = pb::ListUsersRequest {
            query: Some(pb::ListQuery {
                offset: 0,
                limit: 1001,
                asc: false,
                page_token: String::new(),
            }),
            ..Default::default()
        };
        let error =
            parse_list_users(&request, PageLimits::default(), QueryLimits::default()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "query.limit: must be at most 1000, got 1001"
        );
    }

    #[test]
    fn top_level_queries_are_anded_and_combinators_nest() {
        let search = parse(vec![email("a"), not(or(vec![email("b"), email("c")]))]).unwrap();
        let leaf = |v: &str| Query::Filter(Filter::Email(TextMatch::equals(v)));
        assert_eq!(
            search.query,
            Some(Query::And(vec![
                leaf("a"),
                Query::Not(Box::new(Query::Or(vec![leaf("b"), leaf("c")])))
            ]))
        );
    }

    #[test]
    fn empty_queries_and_lists_name_their_field() {
        assert_eq!(
            error_text(parse(vec![pb::SearchQuery { query: None }])),
            "queries[0]: must set one query: orQuery, andQuery, notQuery, userIdQuery, \
             organizationIdQuery, usernameQuery, emailQuery, phoneQuery, stateQuery, \
             schemaIDQuery or schemaTypeQuery"
        );
        assert_eq!(
            error_text(parse(vec![email("x"), or(vec![])])),
            "queries[1].orQuery.queries: must hold at least one query"
        );
        let empty_not = pb::SearchQuery {
            query: Some(Pq::NotQuery(Box::new(pb::NotQuery { query: None }))),
        };
        assert_eq!(
            error_text(parse(vec![empty_not])),
            "queries[0].notQuery.query: is required"
        );
    }

    #[test]
    fn nesting_is_limited_to_ten_levels() {
        let mut query = email("x");
        for _ in 1..MAX_DEPTH {
            query = not(query);
        }
        assert!(parse(vec![query.clone()]).is_ok());
        let error = error_text(parse(vec![not(query)]));
        assert!(error.contains("nested at most 10 levels"), "{error}");
        assert!(
            error.starts_with("queries[0].notQuery.query.notQuery.query"),
            "{error}"
        );
    }

    #[test]
    fn leaves_are_limited_to_one_hundred() {
        assert!(parse(vec![or((0..100).map(|_| email("x")).collect())]).is_ok());
        let error = error_text(parse(vec![or((0..101).map(|_| email("x")).collect())]));
        assert_eq!(
            error,
            "queries[0].orQuery.queries[100]: a search may hold at most 100 leaf queries"
        );
    }

    #[test]
    fn lengths_follow_the_seed() {
        assert!(
            parse(vec![email("")]).is_ok(),
            "an empty email address is allowed"
        );
        let long = "x".repeat(201);
        assert_eq!(
            error_text(parse(vec![email(&long)])),
            "queries[0].emailQuery.address: must be at most 200 characters, got 201"
        );
        assert!(
            parse(vec![email(&"é".repeat(200))]).is_ok(),
            "characters, not bytes"
        );
        let phone = pb::SearchQuery {
            query: Some(Pq::PhoneQuery(pb::PhoneQuery {
                number: "1".repeat(21),
                method: 0,
            })),
        };
        assert!(error_text(parse(vec![phone])).starts_with("queries[0].phoneQuery.number:"));
    }

    #[test]
    fn unspecified_state_and_unknown_enums_are_rejected() {
        let state = |state| pb::SearchQuery {
            query: Some(Pq::StateQuery(pb::StateQuery { state })),
        };
        assert!(
            error_text(parse(vec![state(0)]))
                .starts_with("queries[0].stateQuery.state: must be one of")
        );
        assert_eq!(
            error_text(parse(vec![state(9)])),
            "queries[0].stateQuery.state: unknown state 9"
        );
        let method = pb::SearchQuery {
            query: Some(Pq::EmailQuery(pb::EmailQuery {
                address: "a".into(),
                method: 8,
            })),
        };
        assert_eq!(
            error_text(parse(vec![method])),
            "queries[0].emailQuery.method: unknown text query method 8"
        );
    }

    #[test]
    fn configured_limits_apply_and_are_named() {
        let limits = QueryLimits {
            max_depth: 2,
            max_leaves: 3,
            max_text_chars: 5,
        };
        let parse = |queries: Vec<pb::SearchQuery>| {
            parse_list_users(
                &pb::ListUsersRequest {
                    queries,
                    ..Default::default()
                },
                PageLimits::default(),
                limits,
            )
        };
        assert!(parse(vec![not(email("x"))]).is_ok());
        assert_eq!(
            error_text(parse(vec![not(not(email("x")))])),
            "queries[0].notQuery.query.notQuery.query: queries may be nested at most 2 levels deep"
        );
        assert!(parse(vec![or(vec![email("a"), email("b"), email("c")])]).is_ok());
        assert_eq!(
            error_text(parse(vec![
                email("a"),
                or(vec![email("b"), email("c"), email("d")])
            ])),
            "queries[1].orQuery.queries[2]: a search may hold at most 3 leaf queries"
        );
        assert!(parse(vec![email("abcde")]).is_ok());
        assert_eq!(
            error_text(parse(vec![email("abcdef")])),
            "queries[0].emailQuery.address: must be at most 5 characters, got 6"
        );
        let username = pb::SearchQuery {
            query: Some(Pq::UsernameQuery(pb::UsernameQuery {
                username: "abcdef".into(),
                method: 0,
                is_organization_specific: None,
            })),
        };
        assert_eq!(
            error_text(parse(vec![username])),
            "queries[0].usernameQuery.username: must be at most 5 characters, got 6"
        );
        // Ids keep their own limit.
        let id = pb::SearchQuery {
            query: Some(Pq::UserIdQuery(pb::UserIdQuery {
                id: "abcdefgh".into(),
                method: 0,
            })),
        };
        assert!(parse(vec![id]).is_ok());
    }
}
