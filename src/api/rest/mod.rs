//! The seeds' REST dialects over the same directory and the same query engine as gRPC
//! ListUsers: Logto's Management API user search ([`logto`]) and HPE GreenLake's
//! OData-filtered user list ([`greenlake`]). Handlers only parse (into the one query tree),
//! call `store::reads::users` and map the domain `User` to each dialect's JSON.
//!
//! A dialect is one module exporting a [`RestDialect`] (path prefix, routes, access rules,
//! refusal body, OpenAPI fragment) and keeping its paging and error type beside its handlers;
//! the routes here, the gate's rules, the rescue layer and `/openapi.json` iterate over
//! [`DIALECTS`]. A new dialect is a new module plus its line there.

mod greenlake;
mod logto;
pub mod openapi;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::response::Response;
use http::StatusCode;
use http::request::Parts;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode};
use sea_orm::DatabaseConnection;
use tonic::{Code, Status};

use crate::auth::Principal;
use crate::auth::policy::RestRule;
use crate::limits::regex_searches::RegexSearches;
use crate::query::{PageLimits, QueryLimits};
use crate::refusal::Refusal;
use crate::store::ScopedDb;

/// The directory as the calling principal may see it (see `api::grpc::scoped`): the auth layer
/// in front of these routes puts the principal on the request; without one the request is
/// refused (drawn by `api::rescue` like the gate's refusals), never served instance-wide.
struct Caller(ScopedDb);

impl FromRequestParts<Rest> for Caller {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, rest: &Rest) -> Result<Self, Refusal> {
        match parts.extensions.get::<Principal>() {
            Some(principal) => Ok(Caller(ScopedDb::new(
                rest.db.clone(),
                principal.scope(),
                principal.subject(),
            ))),
            None => Err(Refusal::new(
                Code::Unauthenticated,
                crate::auth::UNAUTHENTICATED,
            )),
        }
    }
}

/// What every dialect's handlers share.
#[derive(Clone)]
struct Rest {
    db: DatabaseConnection,
    pages: PageLimits,
    query: QueryLimits,
    regex_searches: RegexSearches,
}

/// Every dialect's routes (see each module). `pages.max` lowers each dialect's own page
/// maximum when it is smaller; `query` bounds the searches; regex searches share
/// `regex_searches` with the gRPC services.
pub fn routes(
    db: DatabaseConnection,
    pages: PageLimits,
    query: QueryLimits,
    regex_searches: RegexSearches,
) -> Router {
    DIALECTS
        .iter()
        .fold(Router::new(), |router, dialect| {
            router.merge((dialect.routes)())
        })
        .with_state(Rest {
            db,
            pages,
            query,
            regex_searches,
        })
}

/// A REST dialect: everything the rest of the server needs to know of it.
pub struct RestDialect {
    /// Path prefix of all its routes: a request under it is answered in the dialect's shape.
    pub prefix: &'static str,
    /// Its routes, on the state every dialect shares.
    routes: fn() -> Router<Rest>,
    /// What each route requires of the caller (the gate judges by them).
    pub access: &'static [RestRule],
    /// A refusal before any handler ran (no credential, no permission, a rate limit, the
    /// deadline, a head too large), in the dialect's error shape, so its clients read their
    /// own dialect's errors.
    pub refusal: fn(StatusCode, &Status) -> Response,
    /// Its part of `/openapi.json`: hand-written routes have no `google.api.http` rules to
    /// generate it from, so each dialect describes its own.
    pub openapi: fn() -> openapi::Fragment,
}

/// Every REST dialect on the port.
pub static DIALECTS: &[RestDialect] = &[logto::DIALECT, greenlake::DIALECT];

/// The dialect whose routes `path` is under; None for everything else (grpc-gateway's).
pub fn dialect_of(path: &str) -> Option<&'static RestDialect> {
    DIALECTS.iter().find(|d| path.starts_with(d.prefix))
}

/// Every dialect's access rules, for the gate.
pub fn access_rules() -> Vec<RestRule> {
    DIALECTS
        .iter()
        .flat_map(|d| d.access.iter().copied())
        .collect()
}

/// Decodes a raw query string into its pairs, in order (`+` is a space). None when a decoded
/// key or value is not UTF-8.
pub(crate) fn query_pairs(raw: Option<&str>) -> Option<Vec<(String, String)>> {
    let Some(raw) = raw else {
        return Some(Vec::new());
    };
    let decode = |part: &str| -> Option<String> {
        let bytes: Vec<u8> = part
            .bytes()
            .map(|b| if b == b'+' { b' ' } else { b })
            .collect();
        String::from_utf8(percent_decode(&bytes).collect()).ok()
    };
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((decode(key)?, decode(value)?))
        })
        .collect()
}

/// Characters kept as they are when a query string is written back.
const QUERY_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn encode_pairs(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(key, value)| {
            format!(
                "{}={}",
                percent_encoding::utf8_percent_encode(key, QUERY_COMPONENT),
                percent_encoding::utf8_percent_encode(value, QUERY_COMPONENT)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// An id named in a path that cannot exist (`domain::Id`: too long, NUL) is simply not found;
/// it never reaches the database.
fn plausible_id(id: &str) -> bool {
    crate::domain::Id::parse(id).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Permission::*;
    use crate::auth::policy::{http_rule, needs};

    #[test]
    fn access_rules_cover_the_dialect_routes() {
        let rules = access_rules();
        let http_rule = |method: &http::Method, path: &str| http_rule(&rules, method, path);
        let get = http::Method::GET;
        assert_eq!(
            http_rule(&get, "/api/roles/r1/users"),
            Some(needs(&[RoleRead, UserRead]))
        );
        assert_eq!(http_rule(&get, "/api/roles//users"), None);
        assert_eq!(http_rule(&get, "/api/users/u1/x"), None);
        assert_eq!(http_rule(&http::Method::POST, "/api/users"), None);
        assert_eq!(http_rule(&get, "/v2/users"), None);
        assert_eq!(
            http_rule(&get, "/identity/v1/users"),
            Some(needs(&[UserRead]))
        );
    }

    #[test]
    fn each_dialect_keeps_to_its_prefix() {
        for dialect in DIALECTS {
            for rule in dialect.access {
                assert!(rule.pattern.starts_with(dialect.prefix), "{rule:?}");
            }
            for path in (dialect.openapi)().0.keys() {
                assert!(path.starts_with(dialect.prefix), "{path}");
            }
        }
    }

    #[test]
    fn query_strings_decode_in_order_and_refuse_non_utf8() {
        assert_eq!(
            query_pairs(Some("search=%25a%2Bb%25&mode=like&x&search.id=a+b")),
            Some(vec![
                ("search".into(), "%a+b%".into()),
                ("mode".into(), "like".into()),
                ("x".into(), String::new()),
                ("search.id".into(), "a b".into()),
            ])
        );
        assert_eq!(query_pairs(Some("search=%FF")), None);
        assert_eq!(query_pairs(None), Some(vec![]));
        assert_eq!(
            encode_pairs(&[("search.id".into(), "%a b/é".into())]),
            "search.id=%25a%20b%2F%C3%A9"
        );
    }
}
