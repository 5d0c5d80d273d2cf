//! The seeds' REST dialects over the same directory and the same query engine as gRPC
//! ListUsers: Logto's Management API user search ([`logto`]) and HPE GreenLake's
//! OData-filtered user list ([`greenlake`]). Handlers only parse (into the one query tree),
//! call `store::reads::users` and map the domain `User` to each dialect's JSON.

mod greenlake;
mod logto;
pub mod openapi;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use http::request::Parts;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode};
use sea_orm::DatabaseConnection;
use tonic::Status;

use crate::auth::Principal;
use crate::limits::regex_searches::RegexSearches;
use crate::query::{PageLimits, QueryLimits};
use crate::store::ScopedDb;

/// The directory as the calling principal may see it (see `api::grpc::scoped`): the auth layer
/// in front of these routes puts the principal on the request; without one the request is
/// refused, never served instance-wide.
struct Caller(ScopedDb);

impl FromRequestParts<Rest> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, rest: &Rest) -> Result<Self, Response> {
        match parts.extensions.get::<Principal>() {
            Some(principal) => Ok(Caller(ScopedDb::new(
                rest.db.clone(),
                principal.scope(),
                principal.subject(),
            ))),
            None => Err(refusal(
                parts.uri.path(),
                StatusCode::UNAUTHORIZED,
                &Status::unauthenticated(crate::auth::UNAUTHENTICATED),
            )),
        }
    }
}

#[derive(Clone)]
struct Rest {
    db: DatabaseConnection,
    limits: PageLimits,
    query: QueryLimits,
    regex_searches: RegexSearches,
}

/// `GET /api/users`, `GET /api/users/{userId}`, `GET /api/roles/{id}/users` (Logto) and
/// `GET /identity/v1/users` (GreenLake). `limits.max` lowers each dialect's own page maximum
/// when it is smaller; `query` bounds the searches; regex searches share `regex_searches`
/// with the gRPC services.
pub fn routes(
    db: DatabaseConnection,
    limits: PageLimits,
    query: QueryLimits,
    regex_searches: RegexSearches,
) -> Router {
    Router::new()
        .route("/api/users", get(logto::list_users))
        .route("/api/users/{user_id}", get(logto::get_user))
        .route("/api/roles/{role_id}/users", get(logto::role_users))
        .route("/identity/v1/users", get(greenlake::list_users))
        .with_state(Rest {
            db,
            limits,
            query,
            regex_searches,
        })
}

/// Path prefixes of the dialects' routes.
const LOGTO_PREFIX: &str = "/api/";
const GREENLAKE_PREFIX: &str = "/identity/";

/// The answer to an HTTP request refused before any handler ran (no credential, no permission,
/// a rate limit, the deadline, a head too large), in the error shape of the API its path
/// belongs to: a Logto or GreenLake client reads its own dialect's errors, everyone else
/// grpc-gateway's.
pub fn refusal(path: &str, http: StatusCode, status: &Status) -> Response {
    if path.starts_with(LOGTO_PREFIX) {
        logto::LogtoError::refusal(http, status).into_response()
    } else if path.starts_with(GREENLAKE_PREFIX) {
        greenlake::GreenLakeError::refusal(http, status).into_response()
    } else {
        crate::api::http::errors::error_response_with(http, status, None)
    }
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

    /// The JSON body and HTTP status of a refusal.
    async fn refused(path: &str, status: Status) -> (u16, serde_json::Value) {
        let http = crate::api::http::errors::http_status(status.code());
        let response = refusal(path, http, &status);
        let code = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (code, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn refusals_speak_the_dialect_of_their_path() {
        let (code, body) = refused("/api/users", Status::unauthenticated("who?")).await;
        assert_eq!(code, 401);
        assert_eq!(body["code"], "auth.unauthorized");
        assert_eq!(body.get("details"), None, "no hint of what was wrong");
        let (code, body) = refused(
            "/api/roles/r/users",
            Status::permission_denied("needs role.read"),
        )
        .await;
        assert_eq!(code, 403);
        assert_eq!(body["code"], "auth.forbidden");
        assert_eq!(body["details"], "needs role.read");
        let (code, body) = refused("/api/users/u", Status::resource_exhausted("slow down")).await;
        assert_eq!(code, 429);
        assert_eq!(body["code"], "request.general");
        assert_eq!(body["details"], "slow down");

        let (code, body) = refused("/identity/v1/users", Status::unauthenticated("who?")).await;
        assert_eq!(code, 401);
        assert_eq!(body["httpStatusCode"], 401);
        assert_eq!(body["errorCode"], "HPE_GL_ERROR_UNAUTHORIZED");
        assert_eq!(body["message"], "who?");
        let (code, body) = refused("/identity/v1/users", Status::deadline_exceeded("late")).await;
        assert_eq!(code, 504);
        assert_eq!(body["errorCode"], "HPE_GL_ERROR_GATEWAY_TIMEOUT");

        let (code, body) = refused("/v1/users/_search", Status::permission_denied("no")).await;
        assert_eq!(code, 403);
        assert_eq!(body["code"], 7);
        // Only the dialects' own prefixes: a lookalike is grpc-gateway's.
        let (_, body) = refused("/apis/users", Status::unauthenticated("who?")).await;
        assert_eq!(body["code"], 16);
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
