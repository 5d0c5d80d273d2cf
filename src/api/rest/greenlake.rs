//! HPE GreenLake's `GET /identity/v1/users?filter=&limit=&offset=`: an OData-subset filter,
//! an item offset, and `{offset, count, total, items}`.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tonic::Status;

use super::openapi::{Fragment, fragment_of, nullable_text, responses, text};
use super::{Caller, Rest, RestDialect, query_pairs};
use crate::api::http::errors::http_status;
use crate::auth::Permission::UserRead;
use crate::auth::policy::{RestRule, needs};
use crate::domain::{Timestamp, User};
use crate::error::Error;
use crate::query::dialect::odata;
use crate::query::{SortField, UserSearch};
use crate::store::reads::users;

/// Default `limit`.
pub const DEFAULT_LIMIT: u64 = 300;
/// Largest `limit`.
pub const MAX_LIMIT: u64 = 600;

/// The dialect's entry in `rest::DIALECTS`.
pub const DIALECT: RestDialect = RestDialect {
    prefix: "/identity/",
    routes,
    access: ACCESS,
    refusal: |http, status| GreenLakeError::refusal(http, status).into_response(),
    openapi,
};

fn routes() -> Router<Rest> {
    Router::new().route("/identity/v1/users", get(list_users))
}

const ACCESS: &[RestRule] = &[RestRule {
    method: "GET",
    pattern: "/identity/v1/users",
    rule: needs(&[UserRead]),
}];

/// A GreenLake-style error body.
pub struct GreenLakeError {
    status: StatusCode,
    message: String,
    /// The parameter at fault and, for a filter, where.
    issue: Option<Value>,
}

impl GreenLakeError {
    fn bad_request(source: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            status: StatusCode::BAD_REQUEST,
            issue: Some(json!({"source": source, "description": message})),
            message,
        }
    }

    fn filter(error: odata::Error) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: error.to_string(),
            issue: Some(json!({
                "source": "filter",
                "position": error.position,
                "token": error.token,
                "description": error.message,
            })),
        }
    }

    /// A refusal before the handler ran (credential, permission, rate limit, deadline).
    pub fn refusal(http: StatusCode, status: &Status) -> Self {
        Self {
            status: http,
            message: status.message().to_owned(),
            issue: None,
        }
    }

    /// A server fault (`what` names its kind in the log); the caller learns nothing of it.
    fn internal(what: &str, error: impl std::fmt::Display) -> Self {
        tracing::error!(error = %error, "{what}");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "internal error".into(),
            issue: None,
        }
    }
}

impl From<Error> for GreenLakeError {
    fn from(error: Error) -> Self {
        match error {
            Error::Database(error) => Self::internal("database error", error),
            Error::Internal(error) => Self::internal("internal error", error),
            other => {
                let status = Status::from(other);
                Self::refusal(http_status(status.code()), &status)
            }
        }
    }
}

impl IntoResponse for GreenLakeError {
    fn into_response(self) -> Response {
        // GreenLake names its error codes after the HTTP status: HPE_GL_ERROR_BAD_REQUEST,
        // HPE_GL_ERROR_UNAUTHORIZED, HPE_GL_ERROR_TOO_MANY_REQUESTS, ...
        let reason = self.status.canonical_reason().unwrap_or("Unknown");
        let code = format!(
            "HPE_GL_ERROR_{}",
            reason.to_ascii_uppercase().replace([' ', '-'], "_")
        );
        let mut body = json!({
            "httpStatusCode": self.status.as_u16(),
            "errorCode": code,
            "message": self.message,
        });
        if let Some(issue) = self.issue {
            body["errorDetails"] =
                json!([{"type": "hpe.greenlake.bad_request", "issues": [issue]}]);
        }
        (self.status, Json(body)).into_response()
    }
}

/// The page a request asks for: `limit` items (default [`DEFAULT_LIMIT`], at most
/// [`MAX_LIMIT`] or the server's page maximum when smaller) after skipping `offset` items.
struct Paging {
    offset: u64,
    limit: u64,
}

impl Paging {
    fn of(params: &[(String, String)], page_max: u64) -> Result<Self, GreenLakeError> {
        let max = MAX_LIMIT.min(page_max).max(1);
        Ok(Self {
            limit: integer(params, "limit", DEFAULT_LIMIT.min(max), 1, max)?,
            offset: integer(params, "offset", 0, 0, i64::MAX as u64)?,
        })
    }
}

fn integer(
    params: &[(String, String)],
    key: &str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, GreenLakeError> {
    match params.iter().find(|(k, _)| k == key) {
        None => Ok(default),
        Some((_, value)) => match value.trim().parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(GreenLakeError::bad_request(
                key,
                format!(
                    "{key} must be an integer from {min} to {max}, got '{}'",
                    value.chars().take(40).collect::<String>()
                ),
            )),
        },
    }
}

/// Users oldest first (ties by id), so that an item offset stays put as users are added.
pub async fn list_users(
    State(rest): State<Rest>,
    Caller(db): Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, GreenLakeError> {
    let params = query_pairs(raw.as_deref()).ok_or_else(|| {
        GreenLakeError::bad_request("query", "the query string is not valid UTF-8")
    })?;
    let Paging { offset, limit } = Paging::of(&params, rest.pages.max.into())?;
    let filter = params
        .iter()
        .find(|(k, _)| k == "filter")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    let query = odata::parse(filter, rest.query).map_err(GreenLakeError::filter)?;
    let search = UserSearch {
        query,
        sort: SortField::CreationDate,
        ascending: true,
        offset,
        limit,
        after: None,
    };
    let page = users::list_users(&db, &rest.regex_searches, &search).await?;
    let items: Vec<Value> = page.users.iter().map(user_json).collect();
    Ok(Json(json!({
        "offset": offset,
        "count": items.len(),
        "total": page.total,
        "items": items,
    }))
    .into_response())
}

fn time(t: Timestamp) -> String {
    t.to_string()
}

/// A user in GreenLake's item shape (see the README's mapping table).
pub fn user_json(user: &User) -> Value {
    let data = user.data.as_object();
    let string = |key: &str| data.and_then(|d| d.get(key)).and_then(Value::as_str);
    json!({
        "id": user.id,
        "type": "user",
        "generation": user.sequence,
        "resourceUri": format!("/identity/v1/users/{}", user.id),
        "createdAt": time(user.created_at),
        "updatedAt": time(user.changed_at),
        "username": user.authenticators.usernames.first().map(|u| u.username.clone()),
        "userStatus": odata::status(user.state),
        "lastLogin": user.last_login.map(time),
        "firstName": string("givenName"),
        "lastName": string("familyName"),
    })
}

/// GreenLake's part of `/openapi.json`.
fn openapi() -> Fragment {
    let paths = json!({
        "/identity/v1/users": { "get": {
            "operationId": "GreenLake_ListUsers",
            "summary": "HPE GreenLake: list users with an OData filter",
            "parameters": [
                { "name": "filter", "in": "query", "description": format!("OData subset: eq, ne, gt, ge, lt; and, or, not; \
                    parentheses; single-quoted literals. Fields: {}.", odata::Field::listed()),
                  "schema": { "type": "string", "default": "" } },
                { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT } },
                { "name": "offset", "in": "query", "description": "Number of items (not pages) to skip.",
                  "schema": { "type": "integer", "minimum": 0, "default": 0 } }
            ],
            "responses": responses(json!({
                "200": { "description": "The page of users, oldest first.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/GreenLakeUserList" } } } },
                "400": { "description": "Bad filter or paging: the position and token that failed.",
                         "content": { "application/json": { "schema": { "$ref": "#/components/schemas/GreenLakeError" } } } }
            }), "GreenLakeError")
        } }
    });
    let text = text();
    let nullable_text = nullable_text();
    let schemas = json!({
        "GreenLakeUser": { "type": "object", "properties": {
            "id": text, "type": text, "generation": { "type": "integer" }, "resourceUri": text,
            "username": nullable_text, "firstName": nullable_text, "lastName": nullable_text,
            "userStatus": { "type": "string", "enum": odata::STATUSES.map(|(name, _)| name) },
            "createdAt": { "type": "string", "format": "date-time" },
            "updatedAt": { "type": "string", "format": "date-time" },
            "lastLogin": { "type": "string", "format": "date-time", "nullable": true }
        } },
        "GreenLakeUserList": { "type": "object", "required": ["offset", "count", "total", "items"], "properties": {
            "offset": { "type": "integer" }, "count": { "type": "integer" }, "total": { "type": "integer" },
            "items": { "type": "array", "items": { "$ref": "#/components/schemas/GreenLakeUser" } } } },
        "GreenLakeError": { "type": "object", "required": ["httpStatusCode", "errorCode", "message"],
            "description": "GreenLake's error body: the HTTP status, `HPE_GL_ERROR_<reason>` \
                (e.g. `HPE_GL_ERROR_UNAUTHORIZED`, `HPE_GL_ERROR_TOO_MANY_REQUESTS`) and, for a bad \
                request, the issue.",
            "properties": {
            "httpStatusCode": { "type": "integer" }, "errorCode": text, "message": text,
            "errorDetails": { "type": "array", "items": { "type": "object", "additionalProperties": true } } } }
    });
    fragment_of(paths, schemas)
}
