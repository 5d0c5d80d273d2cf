//! Terse constructors of `SearchQuery` values.

use userdir::proto::user::v1::{self as pb, search_query::Query as Q};

pub use pb::TextQueryMethod as M;

fn wrap(query: Q) -> pb::SearchQuery {
    pb::SearchQuery { query: Some(query) }
}

pub fn or(queries: Vec<pb::SearchQuery>) -> pb::SearchQuery {
    wrap(Q::OrQuery(pb::OrQuery { queries }))
}

pub fn and(queries: Vec<pb::SearchQuery>) -> pb::SearchQuery {
    wrap(Q::AndQuery(pb::AndQuery { queries }))
}

pub fn not(query: pb::SearchQuery) -> pb::SearchQuery {
    wrap(Q::NotQuery(Box::new(pb::NotQuery {
        query: Some(Box::new(query)),
    })))
}

pub fn user_id(id: &str, method: M) -> pb::SearchQuery {
    wrap(Q::UserIdQuery(pb::UserIdQuery {
        id: id.into(),
        method: method.into(),
    }))
}

pub fn org(id: &str, method: M) -> pb::SearchQuery {
    wrap(Q::OrganizationIdQuery(pb::OrganizationIdQuery {
        id: id.into(),
        method: method.into(),
    }))
}

pub fn username(name: &str, method: M, organization_specific: Option<bool>) -> pb::SearchQuery {
    wrap(Q::UsernameQuery(pb::UsernameQuery {
        username: name.into(),
        method: method.into(),
        is_organization_specific: organization_specific,
    }))
}

pub fn email(address: &str, method: M) -> pb::SearchQuery {
    wrap(Q::EmailQuery(pb::EmailQuery {
        address: address.into(),
        method: method.into(),
    }))
}

pub fn phone(number: &str, method: M) -> pb::SearchQuery {
    wrap(Q::PhoneQuery(pb::PhoneQuery {
        number: number.into(),
        method: method.into(),
    }))
}

pub fn state(state: pb::State) -> pb::SearchQuery {
    wrap(Q::StateQuery(pb::StateQuery {
        state: state.into(),
    }))
}

pub fn schema_id(id: &str) -> pb::SearchQuery {
    wrap(Q::SchemaIdQuery(pb::SchemaIdQuery { id: id.into() }))
}

pub fn schema_type(kind: &str, method: M) -> pb::SearchQuery {
    wrap(Q::SchemaTypeQuery(pb::SchemaTypeQuery {
        r#type: kind.into(),
        method: method.into(),
    }))
}

/// A request for the given queries, page and order.
pub fn request(
    queries: Vec<pb::SearchQuery>,
    offset: u64,
    limit: u32,
    asc: bool,
    sorting: pb::FieldName,
) -> pb::ListUsersRequest {
    pb::ListUsersRequest {
        query: Some(pb::ListQuery {
            offset,
            limit,
            asc,
            ..Default::default()
        }),
        sorting_column: sorting.into(),
        queries,
    }
}

/// Queries with the default page and order.
pub fn matching(queries: Vec<pb::SearchQuery>) -> pb::ListUsersRequest {
    pb::ListUsersRequest {
        queries,
        ..Default::default()
    }
}
