//! CORS, for browser applications on other origins (gRPC-Web, Connect, HTTP/JSON): off unless
//! `--cors-allowed-origin` names origins, and then only for those. A request from an allowed
//! origin gets tower-http's CORS: a preflight (`OPTIONS`) is answered at once, before the gate
//! and its rate limits (it carries no credential and calls nothing), and every other answer,
//! refusals included, names the origin and exposes the headers a gRPC-Web or Connect client
//! reads. A request from any other origin, or with none, passes as if CORS were off: no CORS
//! header at all, and a preflight is just an `OPTIONS` the gate judges.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, Method, header};
use tower::{Layer, ServiceExt};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// What a browser may send: credentials, content types and codings, gRPC-Web's and Connect's
/// headers, the deadline, the request id and trace context.
const ALLOWED_HEADERS: [&str; 13] = [
    "authorization",
    "content-type",
    "content-encoding",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "grpc-encoding",
    "grpc-accept-encoding",
    "connect-protocol-version",
    "connect-timeout-ms",
    "x-request-id",
    "traceparent",
    "tracestate",
];

/// What a browser's script may read of an answer besides the CORS-safelisted headers: the gRPC
/// status (gRPC-Web's trailers-only answers carry it in headers), the request id, when to come
/// back, the credential challenge and the message coding.
const EXPOSED_HEADERS: [&str; 7] = [
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    "grpc-encoding",
    "x-request-id",
    "retry-after",
    "www-authenticate",
];

/// How long a browser may keep a preflight's answer (it asks again after that).
const MAX_AGE: Duration = Duration::from_secs(600);

/// The origins allowed, and the CORS answers for them.
#[derive(Clone)]
pub struct Cors {
    origins: Arc<[HeaderValue]>,
    layer: CorsLayer,
}

impl Cors {
    /// CORS for `origins`; None when there are none (CORS off).
    pub fn new(origins: &[HeaderValue]) -> Option<Self> {
        if origins.is_empty() {
            return None;
        }
        let layer = CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins.iter().cloned()))
            // Every method of the HTTP/JSON routes; gRPC-Web and Connect POST.
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers(ALLOWED_HEADERS.map(HeaderName::from_static))
            .expose_headers(EXPOSED_HEADERS.map(HeaderName::from_static))
            // No cookies: the credential is a bearer token the script sends itself, which needs
            // no credentialed CORS.
            .allow_credentials(false)
            .max_age(MAX_AGE);
        Some(Self {
            origins: origins.into(),
            layer,
        })
    }

    fn allows(&self, origin: Option<&HeaderValue>) -> bool {
        origin.is_some_and(|origin| self.origins.contains(origin))
    }
}

/// The middleware (`from_fn_with_state(cors, enforce)`): CORS for allowed origins, nothing for
/// the rest.
pub async fn enforce(State(cors): State<Cors>, request: Request, next: Next) -> Response {
    if !cors.allows(request.headers().get(header::ORIGIN)) {
        return next.run(request).await;
    }
    match cors.layer.layer(next).oneshot(request).await {
        Ok(response) => response.into_response(),
        Err(never) => match never {},
    }
}

/// An origin as `--cors-allowed-origin` takes it: `scheme://host[:port]`, as a browser sends it
/// in `Origin` (scheme and host in lower case, no path, no trailing slash).
pub fn origin(text: &str) -> anyhow::Result<HeaderValue> {
    let text = text.trim();
    let explain = |why: &str| {
        anyhow::anyhow!(
            "--cors-allowed-origin {text:?}: {why}; write an origin as a browser sends it, such \
             as https://app.example.com or http://localhost:3000"
        )
    };
    if text == "*" || text.eq_ignore_ascii_case("null") {
        return Err(explain("list the allowed origins one by one"));
    }
    let uri: http::Uri = text.parse().map_err(|_| explain("not an origin"))?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err(explain("an origin has a scheme and a host"));
    };
    if authority.as_str().contains('@') {
        return Err(explain("an origin has no user name"));
    }
    if uri.path_and_query().is_some_and(|p| p.as_str() != "/") || text.ends_with('/') {
        return Err(explain("an origin has no path, not even a trailing slash"));
    }
    let origin = format!("{scheme}://{authority}").to_ascii_lowercase();
    HeaderValue::try_from(origin).map_err(|_| explain("not an origin"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_taken_as_browsers_send_them() {
        assert_eq!(
            origin("https://App.Example.com").unwrap(),
            "https://app.example.com"
        );
        assert_eq!(
            origin(" http://localhost:3000 ").unwrap(),
            "http://localhost:3000"
        );
        for bad in [
            "*",
            "null",
            "app.example.com",
            "https://app.example.com/",
            "https://app.example.com/app",
            "https://app.example.com?x=1",
            "https://user@app.example.com",
            "",
        ] {
            let error = origin(bad).expect_err(bad).to_string();
            assert!(error.contains("--cors-allowed-origin"), "{error}");
        }
    }
}
