//! Logto's Management API: `GET /api/users`, `GET /api/users/{userId}` and
//! `GET /api/roles/{id}/users`, with Logto's paging headers, error codes and user JSON.

use axum::extract::rejection::PathRejection;
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use tonic::{Code, Status};

use super::openapi::{Fragment, fragment_of, nullable_text, responses, text};
use super::{Caller, Rest, RestDialect, encode_pairs, plausible_id, query_pairs};
use crate::api::http::errors::http_status;
use crate::auth::Permission::{RoleRead, UserRead};
use crate::auth::policy::{RestRule, needs};
use crate::domain::{User, UserState, display_name};
use crate::error::Error;
use crate::query::dialect::logto::{self as dialect, Page};
use crate::query::{Filter, Query, SortField, UserSearch};
use crate::store::ScopedDb;
use crate::store::reads::{directory, users};

/// The dialect's entry in `rest::DIALECTS`.
pub const DIALECT: RestDialect = RestDialect {
    prefix: "/api/",
    routes,
    access: ACCESS,
    refusal: |http, status| LogtoError::refusal(http, status).into_response(),
    openapi,
};

fn routes() -> Router<Rest> {
    Router::new()
        .route("/api/users", get(list_users))
        .route("/api/users/{user_id}", get(get_user))
        .route("/api/roles/{role_id}/users", get(role_users))
}

const ACCESS: &[RestRule] = &[
    RestRule {
        method: "GET",
        pattern: "/api/users",
        rule: needs(&[UserRead]),
    },
    RestRule {
        method: "GET",
        pattern: "/api/users/*",
        rule: needs(&[UserRead]),
    },
    RestRule {
        method: "GET",
        pattern: "/api/roles/*/users",
        rule: needs(&[RoleRead, UserRead]),
    },
];

/// A Logto error: `{code, message[, details]}` with its HTTP status.
pub struct LogtoError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Option<String>,
}

impl LogtoError {
    fn invalid_input(details: impl Into<String>) -> Self {
        let details = details.into();
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "request.invalid_input",
            message: format!("Input is invalid. {details}"),
            details: Some(details),
        }
    }

    fn pagination() -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "guard.invalid_pagination",
            message: "The request pagination value is invalid.".into(),
            details: None,
        }
    }

    fn not_found() -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "entity.not_found",
            message: "The resource does not exist.".into(),
            details: None,
        }
    }

    fn role_not_found(id: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "entity.not_exists_with_id",
            message: format!("The roles with ID `{id}` does not exist."),
            details: None,
        }
    }

    /// A refusal before the handler ran, with Logto's codes for the auth failures. An
    /// authentication failure keeps Logto's generic text (no hint of what was wrong); anything
    /// else carries our reason in `details`.
    pub fn refusal(http: StatusCode, status: &Status) -> Self {
        let (code, message) = match status.code() {
            Code::Unauthenticated => {
                let message = "Unauthorized. Please check credentials and its scope.";
                return Self {
                    status: http,
                    code: "auth.unauthorized",
                    message: message.into(),
                    details: None,
                };
            }
            Code::PermissionDenied => (
                "auth.forbidden",
                "Forbidden. Please check your user roles and permissions.",
            ),
            _ => ("request.general", "Request error occurred."),
        };
        Self {
            status: http,
            code,
            message: message.into(),
            details: Some(status.message().to_owned()),
        }
    }

    /// A database error, through the one mapping of `crate::error` (a statement past the
    /// deadline is DeadlineExceeded).
    fn database(error: sea_orm::DbErr) -> Self {
        Error::from(error).into()
    }

    /// A server fault (`what` names its kind in the log); the caller learns nothing of it.
    fn internal(what: &str, error: impl std::fmt::Display) -> Self {
        tracing::error!(error = %error, "{what}");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "unknown",
            message: "Unknown error occurred.".into(),
            details: None,
        }
    }
}

impl From<dialect::Error> for LogtoError {
    fn from(error: dialect::Error) -> Self {
        match error {
            dialect::Error::Pagination => Self::pagination(),
            dialect::Error::Input(details) => Self::invalid_input(details),
        }
    }
}

impl From<Error> for LogtoError {
    fn from(error: Error) -> Self {
        match error {
            Error::Database(error) if regex_refused(&error) => {
                // A backstop: validation should have refused the pattern already.
                tracing::warn!(error = %error, "the database refused a validated regex");
                Self::invalid_input(
                    "Search value is invalid: the database refused the regular expression.",
                )
            }
            Error::Database(error) => Self::internal("database error", error),
            Error::Internal(error) => Self::internal("internal error", error),
            other => {
                let status = Status::from(other);
                Self::refusal(http_status(status.code()), &status)
            }
        }
    }
}

impl IntoResponse for LogtoError {
    fn into_response(self) -> Response {
        let mut body = json!({"code": self.code, "message": self.message});
        if let Some(details) = self.details {
            body["details"] = json!(details);
        }
        (self.status, Json(body)).into_response()
    }
}

type Answer = Result<Response, LogtoError>;

fn pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, LogtoError> {
    query_pairs(raw)
        .ok_or_else(|| LogtoError::invalid_input("The query string is not valid UTF-8."))
}

pub async fn list_users(
    State(rest): State<Rest>,
    Caller(db): Caller,
    OriginalUri(uri): OriginalUri,
    RawQuery(raw): RawQuery,
) -> Answer {
    let params = pairs(raw.as_deref())?;
    page(&rest, &db, uri.path(), &params, None).await
}

pub async fn role_users(
    State(rest): State<Rest>,
    Caller(db): Caller,
    OriginalUri(uri): OriginalUri,
    role_id: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Answer {
    let Path(role_id) =
        role_id.map_err(|_| LogtoError::invalid_input("The role id is invalid."))?;
    let params = pairs(raw.as_deref())?;
    if !plausible_id(&role_id) {
        return Err(LogtoError::role_not_found(&role_id));
    }
    page(&rest, &db, uri.path(), &params, Some(role_id)).await
}

/// One page of users, newest first (ties by id), with `Total-Number` and `Link` headers.
async fn page(
    rest: &Rest,
    db: &ScopedDb,
    path: &str,
    params: &[(String, String)],
    role: Option<String>,
) -> Answer {
    let page = dialect::paging(params, rest.pages.max.into())?;
    let mut query = dialect::search(params, rest.query)?;
    if let Some(role_id) = role {
        if !directory::role_exists(&rest.db, &role_id)
            .await
            .map_err(LogtoError::database)?
        {
            return Err(LogtoError::role_not_found(&role_id));
        }
        let role = Query::Filter(Filter::Role(role_id));
        query = Some(match query {
            Some(query) => Query::And(vec![role, query]),
            None => role,
        });
    }
    let search = UserSearch {
        query,
        sort: SortField::CreationDate,
        ascending: false,
        offset: page.offset(),
        limit: page.page_size,
        after: None,
    };
    let found = users::list_users(db, &rest.regex_searches, &search).await?;
    let mut headers = HeaderMap::new();
    headers.insert("Total-Number", HeaderValue::from(found.total));
    if let Ok(link) = HeaderValue::from_str(&links(path, params, page, found.total)) {
        headers.insert("Link", link);
    }
    let body: Vec<Value> = found.users.iter().map(|u| user_json(u, false)).collect();
    Ok((headers, Json(body)).into_response())
}

/// PostgreSQL's `invalid_regular_expression` (SQLSTATE 2201B), e.g. "too complex".
fn regex_refused(error: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr};
    match error {
        DbErr::Query(RuntimeErr::SqlxError(error)) | DbErr::Exec(RuntimeErr::SqlxError(error)) => {
            matches!(
                error.as_ref(),
                sqlx::Error::Database(db) if db.code().as_deref() == Some("2201B")
            )
        }
        _ => false,
    }
}

/// RFC 8288 links: first (always), prev (page > 1), next and last (page < last), where
/// last = max(1, ceil(total / page_size)). Other query keys are kept; `page` is rewritten.
fn links(path: &str, params: &[(String, String)], page: Page, total: u64) -> String {
    let last = total.div_ceil(page.page_size).max(1);
    let url = |number: u64| {
        let mut rewritten: Vec<(String, String)> = Vec::with_capacity(params.len() + 1);
        let mut placed = false;
        for (key, value) in params {
            if key == "page" {
                if !placed {
                    rewritten.push((key.clone(), number.to_string()));
                    placed = true;
                }
            } else {
                rewritten.push((key.clone(), value.clone()));
            }
        }
        if !placed {
            rewritten.push(("page".into(), number.to_string()));
        }
        format!("<{path}?{}>", encode_pairs(&rewritten))
    };
    let mut links = vec![format!("{}; rel=\"first\"", url(1))];
    if page.page > 1 {
        links.push(format!("{}; rel=\"prev\"", url(page.page - 1)));
    }
    if page.page < last {
        links.push(format!("{}; rel=\"next\"", url(page.page + 1)));
        links.push(format!("{}; rel=\"last\"", url(last)));
    }
    links.join(", ")
}

pub async fn get_user(
    Caller(db): Caller,
    user_id: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Answer {
    let Path(user_id) = user_id.map_err(|_| LogtoError::not_found())?;
    let params = pairs(raw.as_deref())?;
    let include_sso = params
        .iter()
        .find(|(key, _)| key == "includeSsoIdentities")
        .is_some_and(|(_, value)| dialect::truthy(value));
    if !plausible_id(&user_id) {
        return Err(LogtoError::not_found());
    }
    let user = users::get_user(&db, &user_id)
        .await
        .map_err(LogtoError::database)?
        .ok_or_else(LogtoError::not_found)?;
    Ok(Json(user_json(&user, include_sso)).into_response())
}

/// Keys of a user's `data` copied into Logto's `profile` when they hold a string.
const PROFILE_STRINGS: [&str; 11] = [
    "familyName",
    "givenName",
    "middleName",
    "nickname",
    "preferredUsername",
    "profile",
    "website",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
];

fn millis(micros: i64) -> i64 {
    micros.div_euclid(1000)
}

/// A user in Logto's shape (see the README's mapping table).
pub fn user_json(user: &User, include_sso_identities: bool) -> Value {
    let data = user.data.as_object();
    let string = |key: &str| {
        data.and_then(|d| d.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let mut profile = Map::new();
    for key in PROFILE_STRINGS {
        if let Some(value) = string(key) {
            profile.insert(key.into(), json!(value));
        }
    }
    if let Some(address) = data
        .and_then(|d| d.get("address"))
        .filter(|a| a.is_object())
    {
        profile.insert("address".into(), address.clone());
    }
    let name = display_name(&user.data);
    let identities: Map<String, Value> = user
        .authenticators
        .identity_providers
        .iter()
        .map(|link| {
            (
                link.idp_id.clone(),
                json!({
                    "userId": link.external_user_id,
                    "details": {
                        "idpName": link.idp_name,
                        "username": link.external_username,
                    },
                }),
            )
        })
        .collect();
    let mut json = json!({
        "id": user.id,
        "username": user.authenticators.usernames.first().map(|u| u.username.clone()),
        "primaryEmail": user.contact.email.as_ref().map(|e| e.value.clone()),
        "primaryPhone": user.contact.phone.as_ref().map(|p| p.value.clone()),
        "name": name,
        "avatar": string("avatar"),
        "customData": user.data,
        "identities": identities,
        "lastSignInAt": user.last_login.map(|t| millis(t.micros())),
        "createdAt": millis(user.created_at.micros()),
        "updatedAt": millis(user.changed_at.micros()),
        "profile": profile,
        "applicationId": Value::Null,
        "isSuspended": user.state != UserState::Active,
        "hasPassword": user.authenticators.password.is_some(),
    });
    if include_sso_identities {
        // userdir has no enterprise SSO connectors: IdP links are `identities`.
        json["ssoIdentities"] = json!([]);
    }
    json
}

/// Logto's part of `/openapi.json`.
fn openapi() -> Fragment {
    let paging = json!([
        { "name": "page", "in": "query", "description": "Page number (starts from 1).",
          "schema": { "type": "integer", "minimum": 1, "default": 1,
                      "maximum": dialect::MAX_PAGE } },
        { "name": "page_size", "in": "query", "description": "Entries per page.",
          "schema": { "type": "integer", "minimum": 1, "maximum": 100, "default": 20 } },
        { "name": "search_params", "in": "query", "style": "form", "explode": true,
          "description": format!("Logto search keys: `search`, `search.<field>`, `mode`, `mode.<field>` \
            (exact, like, similar_to, posix), `joint` (or, and), `isCaseSensitive`. Fields: {}.",
            dialect::Field::ALL.map(dialect::Field::key).join(", ")),
          "schema": { "type": "object", "additionalProperties": { "type": "string" } } }
    ]);
    let logto_error = |description: &str| {
        json!({ "description": description,
                "content": { "application/json": { "schema": { "$ref": "#/components/schemas/LogtoError" } } } })
    };
    let users_page = json!({
        "description": "The page of users, newest first.",
        "headers": {
            "Total-Number": { "description": "Number of matching users.", "schema": { "type": "integer" } },
            "Link": { "description": "RFC 8288 links: first, prev, next, last.", "schema": { "type": "string" } }
        },
        "content": { "application/json": { "schema": {
            "type": "array", "items": { "$ref": "#/components/schemas/LogtoUser" } } } }
    });
    let mut role_parameters = vec![
        json!({ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }),
    ];
    role_parameters.extend(paging.as_array().cloned().unwrap_or_default());
    let paths = json!({
        "/api/users": { "get": {
            "operationId": "Logto_ListUsers",
            "summary": "Logto: list and search users",
            "parameters": paging,
            "responses": responses(json!({ "200": users_page,
                "400": logto_error("guard.invalid_pagination or request.invalid_input") }), "LogtoError")
        } },
        "/api/users/{userId}": { "get": {
            "operationId": "Logto_GetUser",
            "summary": "Logto: one user",
            "parameters": [
                { "name": "userId", "in": "path", "required": true, "schema": { "type": "string" } },
                { "name": "includeSsoIdentities", "in": "query", "schema": { "type": "string", "default": "false" } }
            ],
            "responses": responses(json!({
                "200": { "description": "The user.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/LogtoUser" } } } },
                "400": logto_error("request.invalid_input: the query string is not UTF-8"),
                "404": logto_error("entity.not_found")
            }), "LogtoError")
        } },
        "/api/roles/{id}/users": { "get": {
            "operationId": "Logto_ListRoleUsers",
            "summary": "Logto: users having a role",
            "parameters": role_parameters,
            "responses": responses(json!({ "200": users_page,
                "400": logto_error("guard.invalid_pagination or request.invalid_input"),
                "404": logto_error("entity.not_exists_with_id") }), "LogtoError")
        } }
    });
    let text = text();
    let nullable_text = nullable_text();
    let epoch_ms =
        json!({ "type": "integer", "format": "int64", "description": "Epoch milliseconds." });
    let schemas = json!({
        "LogtoUser": { "type": "object", "properties": {
            "id": text, "username": nullable_text, "primaryEmail": nullable_text, "primaryPhone": nullable_text,
            "name": nullable_text, "avatar": nullable_text, "applicationId": nullable_text,
            "customData": { "type": "object", "additionalProperties": true },
            "profile": { "type": "object", "additionalProperties": true },
            "identities": { "type": "object", "additionalProperties": { "type": "object", "additionalProperties": true } },
            "ssoIdentities": { "type": "array", "items": { "type": "object", "additionalProperties": true } },
            "lastSignInAt": { "type": "integer", "format": "int64", "nullable": true, "description": "Epoch milliseconds." },
            "createdAt": epoch_ms, "updatedAt": epoch_ms,
            "isSuspended": { "type": "boolean" }, "hasPassword": { "type": "boolean" }
        } },
        "LogtoError": { "type": "object", "required": ["code", "message"],
            "description": "Logto's error body: `code` (e.g. `auth.unauthorized`, `auth.forbidden`, \
                `guard.invalid_pagination`, `request.invalid_input`, `entity.not_found`, \
                `request.general`), its message and our reason in `details`.",
            "properties": { "code": text, "message": text, "details": text } }
    });
    fragment_of(paths, schemas)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn links_follow_logto() {
        let p = params(&[("search", "%a%"), ("page", "2"), ("page_size", "10")]);
        let page = Page {
            page: 2,
            page_size: 10,
        };
        assert_eq!(
            links("/api/users", &p, page, 35),
            "</api/users?search=%25a%25&page=1&page_size=10>; rel=\"first\", \
             </api/users?search=%25a%25&page=1&page_size=10>; rel=\"prev\", \
             </api/users?search=%25a%25&page=3&page_size=10>; rel=\"next\", \
             </api/users?search=%25a%25&page=4&page_size=10>; rel=\"last\""
        );
        let first = Page {
            page: 1,
            page_size: 20,
        };
        assert_eq!(
            links("/api/users", &[], first, 0),
            "</api/users?page=1>; rel=\"first\""
        );
    }
}
