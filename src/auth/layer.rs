//! The one gate every request passes (a tower layer on the whole router, see `startup`):
//! it finds the operation a request calls, charges the request to its peer's rate limit, lets
//! public operations through, authenticates the bearer credential, charges the credential's rate
//! limit, asks `policy` whether the caller may run the operation, and hands the caller's
//! `Principal` to the services in the request's extensions.
//!
//! A request it turns away gets a [`Refusal`] (with RFC 6750's challenge on an authentication
//! failure and `Retry-After` on a rate limit); the rescue layer at the edge (`api::rescue`)
//! draws it in the caller's protocol.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, header};
use sea_orm::DatabaseConnection;
use tonic::Code;

use super::oidc::{OidcVerifier, looks_like_jwt};
use super::policy::{self, RestRule, Rule};
use super::rate_limit::{RateLimits, retry_after_seconds};
use super::{Credential, Grant, Principal, UNAUTHENTICATED, secret};
use crate::domain::Timestamp;
use crate::refusal::{Refusal, grpc_content_type, is_method_path};
use crate::store::entities::access_token;
use crate::store::reads::tokens;

/// Maps an HTTP/JSON route to the gRPC method it calls (`/package.Service/Method`), so JSON
/// calls are judged by the same rules as the gRPC calls they become.
pub type RouteResolver = Arc<dyn Fn(&Method, &str) -> Option<String> + Send + Sync>;

/// RFC 6750's challenge on a refused credential (answers that are not gRPC).
const CHALLENGE: &str = "Bearer realm=\"userdir\"";

/// Longest credential accepted; anything longer is refused before any work is done.
const MAX_CREDENTIAL_BYTES: usize = 8 * 1024;

/// What the gate needs; cheap to clone.
#[derive(Clone)]
pub struct Gate {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    /// Verifies JWTs of the configured OIDC issuer; None: only access tokens are accepted.
    oidc: Option<OidcVerifier>,
    /// Shared with the metered public streams (`stream_meter`), which charge the same peers.
    limits: Arc<RateLimits>,
    routes: RouteResolver,
    /// The REST dialects' access rules (see [`RestRule`] for why they are handed in).
    rest: Vec<RestRule>,
}

impl Gate {
    pub fn new(
        db: DatabaseConnection,
        oidc: Option<OidcVerifier>,
        limits: Arc<RateLimits>,
        routes: RouteResolver,
        rest: Vec<RestRule>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                oidc,
                limits,
                routes,
                rest,
            }),
        }
    }

    /// The operation's name and rule. `by_method`: the request names a gRPC method by its path
    /// (gRPC, gRPC-Web, Connect), so it is judged by that method's rule whatever its protocol.
    fn rule(&self, by_method: bool, method: &Method, path: &str) -> (String, Rule) {
        if by_method {
            return (path.to_owned(), policy::grpc_rule(path));
        }
        if let Some(rule) = policy::http_rule(&self.inner.rest, method, path) {
            return (format!("{method} {path}"), rule);
        }
        match (self.inner.routes)(method, path) {
            Some(grpc_path) => {
                let rule = policy::grpc_rule(&grpc_path);
                (grpc_path, rule)
            }
            None => (format!("{method} {path}"), policy::UNLISTED),
        }
    }

    /// The principal behind the request's bearer credential; None for every kind of missing or
    /// bad credential alike. Errors are the store's own (the caller answers Unavailable).
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Option<Principal>, sea_orm::DbErr> {
        let Some(credential) = bearer(headers) else {
            return Ok(None);
        };
        if !credential.starts_with(secret::PREFIX) {
            let Some(oidc) = &self.inner.oidc else {
                return Ok(None);
            };
            if !looks_like_jwt(credential) {
                return Ok(None);
            }
            return Ok(match oidc.verify(credential).await {
                Ok(principal) => Some(principal),
                Err(reason) => {
                    // The reason helps the operator; the caller only learns "unauthenticated".
                    tracing::debug!(%reason, "JWT refused");
                    None
                }
            });
        }
        let found =
            tokens::active_by_hash(&self.inner.db, &secret::hash(credential), Timestamp::now())
                .await?;
        Ok(found.and_then(principal_of))
    }
}

/// `authorization: Bearer <credential>` (one header, scheme in any case); None otherwise.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() || value.len() > MAX_CREDENTIAL_BYTES {
        return None;
    }
    let (scheme, credential) = value.to_str().ok()?.split_once(' ')?;
    let credential = credential.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !credential.is_empty()).then_some(credential)
}

fn principal_of(row: access_token::Model) -> Option<Principal> {
    let grant = match Grant::from_names(&row.permissions) {
        Ok(grant) => grant,
        Err(error) => {
            // Only a hand-edited row gets here; refuse rather than guess.
            tracing::error!(token_id = %row.id, %error, "access token with unknown permissions");
            return None;
        }
    };
    Some(Principal {
        credential: Credential::AccessToken {
            id: row.id,
            bootstrap: row.bootstrap,
        },
        grant,
        organization: row.organization_id,
        expires_at: row.expires_at.map(Timestamp::from_micros),
    })
}

/// The client's IP address, from the `ConnectInfo` the listener puts on every request.
pub(super) fn peer(extensions: &http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip())
}

/// The middleware (`axum::middleware::from_fn_with_state(gate, enforce)`).
pub async fn enforce(State(gate): State<Gate>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path();
    // A Connect call, or a method path in a content type nobody speaks (answered 415 below),
    // is judged exactly as the gRPC call of the same method.
    let by_method = grpc_content_type(request.headers()).is_some() || is_method_path(path);
    let (operation, rule) = gate.rule(by_method, request.method(), path);
    let peer = peer(request.extensions());
    let limits = &gate.inner.limits;
    // The peer pays first, before any credential is looked up: a flood of bad credentials costs
    // no database work, and public operations are metered like the rest. Only the bootstrap
    // exemption needs to know who is calling, so with it a request over its peer's rate is
    // still authenticated (and refused below unless it is the bootstrap token).
    let peer_wait = limits.check_peer(peer).err();
    if let Some(wait) = peer_wait
        && (rule == Rule::Public || !limits.exempts_bootstrap())
    {
        return rate_limited(&operation, peer, wait);
    }
    if rule == Rule::Public {
        return next.run(request).await;
    }
    let principal = match gate.authenticate(request.headers()).await {
        Ok(principal) => principal,
        Err(error) => {
            // An outage is logged once by the health probe; anything else is worth a line each.
            if crate::error::database_unavailable(&error) {
                tracing::debug!(%error, "looking up an access token");
            } else {
                tracing::error!(%error, "looking up an access token");
            }
            return Refusal::new(Code::Unavailable, crate::error::UNAVAILABLE).into_response();
        }
    };
    let exempt =
        limits.exempts_bootstrap() && principal.as_ref().is_some_and(Principal::is_bootstrap);
    if !exempt {
        let waited = match (peer_wait, &principal) {
            (Some(wait), _) => Err(wait),
            (None, Some(principal)) => limits.check_token(&principal.subject()),
            (None, None) => Ok(()),
        };
        if let Err(wait) = waited {
            return rate_limited(&operation, peer, wait);
        }
    }
    let Some(principal) = principal else {
        tracing::debug!(%operation, ?peer, "unauthenticated request refused");
        // The challenge replaces grpc-gateway's copy of the message in `WWW-Authenticate`.
        return Refusal::new(Code::Unauthenticated, UNAUTHENTICATED)
            .with_challenge(CHALLENGE)
            .into_response();
    };
    if let Err(policy::Denied(reason)) = policy::authorize(&principal, rule, &operation) {
        tracing::debug!(%operation, subject = %principal.subject(), "permission denied");
        return Refusal::new(Code::PermissionDenied, reason).into_response();
    }
    tracing::debug!(%operation, subject = %principal.subject(), "authorized");
    request.extensions_mut().insert(principal);
    next.run(request).await
}

fn rate_limited(operation: &str, peer: Option<IpAddr>, wait: Duration) -> Response {
    tracing::debug!(%operation, ?peer, "rate limited");
    Refusal::new(Code::ResourceExhausted, "rate limit exceeded; retry later")
        .with_retry_after(retry_after_seconds(wait))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::AUTHORIZATION, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn only_one_well_formed_bearer_header_counts() {
        assert_eq!(bearer(&headers(&["Bearer abc"])), Some("abc"));
        assert_eq!(bearer(&headers(&["bearer  abc "])), Some("abc"));
        assert_eq!(bearer(&headers(&["Basic abc"])), None);
        assert_eq!(bearer(&headers(&["Bearer "])), None);
        assert_eq!(bearer(&headers(&["Bearer"])), None);
        assert_eq!(bearer(&headers(&["Bearer a", "Bearer b"])), None);
        assert_eq!(bearer(&headers(&[])), None);
        let long = format!("Bearer {}", "a".repeat(MAX_CREDENTIAL_BYTES));
        assert_eq!(bearer(&headers(&[&long])), None);
    }
}
