//! A request refused before any service ran (credential, permission, rate limit, deadline,
//! size), as a value: the layers that refuse (`auth::layer`, `limits::deadline`,
//! `limits::head`) say *what* they refuse with a [`Refusal`], and the one rescue layer at the
//! edge (`api::rescue`) draws it in the caller's protocol. This module sits below all of them,
//! so none of them imports the edge.
//!
//! Also here: the tests of whether a request speaks gRPC ([`grpc_content_type`]) and whether it
//! names a gRPC method by its path ([`is_method_path`]; gRPC, gRPC-Web and Connect all do), which
//! the gate needs to pick a rule and the edge needs to pick an answer.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use tonic::{Code, Status};

/// What a refusal carries; how it looks on the wire is the rescue layer's business.
///
/// A layer hands it up as an extension of an otherwise empty response rather than as the
/// service's error: axum's `from_fn` layers and the `Router` they wrap require infallible
/// services, so an error type would need a `HandleErrorLayer` and boxed errors at every depth,
/// while a response passes through every layer above it unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    code: Code,
    message: String,
    /// For answers that are not gRPC: an HTTP status other than the code's (431 for a request
    /// head too large, where the code says ResourceExhausted).
    http_status: Option<StatusCode>,
    /// When to come back (`Retry-After`, whole seconds), for a rate limit.
    retry_after_seconds: Option<u64>,
    /// RFC 6750's `WWW-Authenticate` challenge, for answers that are not gRPC.
    challenge: Option<&'static str>,
    /// The content codings served (`Accept-Encoding`, RFC 9110 15.5.16), for a request body in
    /// a coding that is not (`api::content_coding`).
    accept_encoding: Option<&'static str>,
}

impl Refusal {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            http_status: None,
            retry_after_seconds: None,
            challenge: None,
            accept_encoding: None,
        }
    }

    pub fn with_http_status(mut self, status: StatusCode) -> Self {
        self.http_status = Some(status);
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_seconds = Some(seconds);
        self
    }

    pub fn with_challenge(mut self, challenge: &'static str) -> Self {
        self.challenge = Some(challenge);
        self
    }

    pub fn with_accept_encoding(mut self, codings: &'static str) -> Self {
        self.accept_encoding = Some(codings);
        self
    }

    pub fn code(&self) -> Code {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn http_status(&self) -> Option<StatusCode> {
        self.http_status
    }

    pub fn retry_after_seconds(&self) -> Option<u64> {
        self.retry_after_seconds
    }

    pub fn challenge(&self) -> Option<&'static str> {
        self.challenge
    }

    pub fn accept_encoding(&self) -> Option<&'static str> {
        self.accept_encoding
    }

    /// The gRPC status of the refusal.
    pub fn status(&self) -> Status {
        Status::new(self.code, self.message.clone())
    }

    /// The refusal a response carries, if it is one.
    pub fn of(response: &Response) -> Option<&Refusal> {
        response.extensions().get::<Refusal>()
    }

    /// Takes the refusal out of a response, if it is one.
    pub fn take(response: &mut Response) -> Option<Refusal> {
        response.extensions_mut().remove::<Refusal>()
    }
}

impl IntoResponse for Refusal {
    /// An empty 500 carrying the refusal: only a response that reaches the client without
    /// passing the rescue layer (a wiring mistake) ever shows it.
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        response.extensions_mut().insert(self);
        response
    }
}

/// The request's content type when it is gRPC or gRPC-Web (`application/grpc*`); None for
/// everything else.
pub fn grpc_content_type(headers: &HeaderMap) -> Option<&HeaderValue> {
    headers
        .get(header::CONTENT_TYPE)
        .filter(|v| v.to_str().is_ok_and(|v| v.starts_with("application/grpc")))
}

/// Whether `path` names a gRPC method, `/package.Service/Method`: two segments, the first a
/// dotted name. gRPC, gRPC-Web and Connect call a method by such a path, whatever their content
/// type; no HTTP/JSON or REST route has this shape (theirs start with a version or a prefix).
pub fn is_method_path(path: &str) -> bool {
    let Some((service, method)) = path.strip_prefix('/').and_then(|p| p.split_once('/')) else {
        return false;
    };
    let name = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
    };
    name(service) && name(method) && service.contains('.') && !method.contains('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_paths_are_a_dotted_service_and_a_method() {
        assert!(is_method_path("/userdir.user.v1.UserService/ListUsers"));
        assert!(is_method_path("/grpc.health.v1.Health/Check"));
        for path in [
            "/v1/users",
            "/v1/users/_search",
            "/api/users",
            "/openapi.json",
            "/userdir.user.v1.UserService/",
            "/userdir.user.v1.UserService/ListUsers/x",
            "//ListUsers",
            "/UserService/ListUsers",
            "/a.b/c%2F",
            "/",
            "",
        ] {
            assert!(!is_method_path(path), "{path}");
        }
    }

    #[test]
    fn a_refusal_travels_on_an_empty_response() {
        let refusal = Refusal::new(Code::ResourceExhausted, "slow down").with_retry_after(2);
        let mut response = refusal.clone().into_response();
        assert_eq!(response.status(), 500);
        assert_eq!(Refusal::of(&response), Some(&refusal));
        assert_eq!(Refusal::take(&mut response), Some(refusal));
        assert_eq!(Refusal::of(&response), None);
    }

    #[test]
    fn grpc_and_grpc_web_are_the_grpc_family() {
        let content_type = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            grpc_content_type(&headers).is_some()
        };
        assert!(content_type("application/grpc"));
        assert!(content_type("application/grpc+proto"));
        assert!(content_type("application/grpc-web-text"));
        assert!(!content_type("application/json"));
        assert!(grpc_content_type(&HeaderMap::new()).is_none());
    }
}
