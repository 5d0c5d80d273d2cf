//! The rescue layer: the one place where a [`Refusal`] from a layer below (the gate, the
//! deadline, the header limit) or from a REST handler's extractor becomes a response, in the
//! caller's own protocol. The protocol is decided once per request, from its content type and
//! path, before the request goes in ([`Protocol::of`]); linkerd's `ServerRescue` is the model.
//! The one-port router dispatches by the same decision (`api::port`).

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, header};

use super::connect::{self, Encoding, Kind};
use super::http::errors;
use super::rest::{self, RestDialect};
use crate::refusal::{Refusal, grpc_content_type, is_method_path};

/// How a caller speaks, and so how it must be answered.
#[derive(Clone)]
pub enum Protocol {
    /// gRPC: a trailers-only answer, with the request's own content type.
    Grpc(HeaderValue),
    /// gRPC-Web: a trailers-only answer too; its clients read it from the headers of their own
    /// content type.
    GrpcWeb(HeaderValue),
    /// A Connect unary call (`application/json` or `application/proto` on a gRPC method path):
    /// Connect's JSON error with the HTTP status of the code.
    Connect(Encoding),
    /// A Connect streaming call (`application/connect+*` on a method path): an end-of-stream
    /// message in a 200, with the request's content type.
    ConnectStream(HeaderValue),
    /// A gRPC method path in a content type no protocol here speaks (answered 415): refusals
    /// get grpc-gateway's error body, as everything else on the port.
    Unsupported,
    /// A REST dialect's routes (by path prefix): the dialect's own error body.
    Rest(&'static RestDialect),
    /// grpc-gateway-style HTTP/JSON, and everything else on the port: grpc-gateway's error body.
    Gateway,
}

impl Protocol {
    pub fn of(headers: &HeaderMap, path: &str) -> Self {
        if let Some(content_type) = grpc_content_type(headers) {
            return if content_type.as_bytes().starts_with(b"application/grpc-web") {
                Self::GrpcWeb(content_type.clone())
            } else {
                Self::Grpc(content_type.clone())
            };
        }
        if is_method_path(path) {
            return match connect::kind(headers) {
                Some(Kind::Unary(encoding)) => Self::Connect(encoding),
                Some(Kind::Stream(content_type)) => Self::ConnectStream(content_type),
                None => Self::Unsupported,
            };
        }
        match rest::dialect_of(path) {
            Some(dialect) => Self::Rest(dialect),
            None => Self::Gateway,
        }
    }

    /// gRPC or gRPC-Web: the status travels in `grpc-status`, never in a body.
    pub fn is_grpc(&self) -> bool {
        matches!(self, Self::Grpc(_) | Self::GrpcWeb(_))
    }

    /// The refusal as this protocol answers it: a trailers-only gRPC status, or an error body
    /// with the HTTP status of the gRPC code (unless the refusal names its own) and the
    /// refusal's challenge; `Retry-After` on every protocol.
    pub fn draw(&self, refusal: &Refusal) -> Response {
        let status = refusal.status();
        let http_status = refusal
            .http_status()
            .unwrap_or_else(|| errors::http_status(refusal.code()));
        let mut response = match self {
            Self::Grpc(content_type) | Self::GrpcWeb(content_type) => {
                let mut response = status.into_http::<Body>();
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, content_type.clone());
                response
            }
            Self::Connect(_) => connect::errors::unary_error(http_status, &status),
            Self::ConnectStream(content_type) => {
                connect::errors::end_of_stream(content_type.clone(), &status)
            }
            Self::Rest(dialect) => (dialect.refusal)(http_status, &status),
            Self::Gateway | Self::Unsupported => {
                errors::error_response_with(http_status, &status, None)
            }
        };
        if !self.is_grpc()
            && let Some(challenge) = refusal.challenge()
        {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        if let Some(codings) = refusal.accept_encoding() {
            response
                .headers_mut()
                .insert(header::ACCEPT_ENCODING, HeaderValue::from_static(codings));
        }
        if let Some(seconds) = refusal.retry_after_seconds() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The middleware (`axum::middleware::from_fn(rescue)`): passes every answer through, except
/// a refusal, which it draws in the protocol the request arrived in.
pub async fn rescue(request: Request, next: Next) -> Response {
    let protocol = Protocol::of(request.headers(), request.uri().path());
    let mut response = next.run(request).await;
    match Refusal::take(&mut response) {
        Some(refusal) => protocol.draw(&refusal),
        None => response,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::Router;
    use axum::response::IntoResponse;
    use axum::routing::any;
    use http::{StatusCode, Version};
    use tonic::{Code, Status};
    use tower::ServiceExt;

    use super::*;
    use crate::limits::{deadline, head};

    async fn body(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn header<'a>(response: &'a Response, name: &str) -> &'a str {
        response.headers()[name].to_str().unwrap()
    }

    /// The JSON body and HTTP status of a refusal of an HTTP request to `path`.
    async fn refused(path: &str, status: Status) -> (u16, serde_json::Value) {
        let response = Protocol::of(&HeaderMap::new(), path)
            .draw(&Refusal::new(status.code(), status.message()));
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

    #[tokio::test]
    async fn challenges_and_retry_after_follow_the_protocol() {
        let unauthenticated = Refusal::new(Code::Unauthenticated, "who?").with_challenge("Bearer");
        let json = Protocol::Gateway.draw(&unauthenticated);
        assert_eq!(header(&json, "www-authenticate"), "Bearer");
        let grpc =
            Protocol::Grpc(HeaderValue::from_static("application/grpc")).draw(&unauthenticated);
        assert!(grpc.headers().get("www-authenticate").is_none());
        let limited = Refusal::new(Code::ResourceExhausted, "later").with_retry_after(3);
        let grpc = Protocol::Grpc(HeaderValue::from_static("application/grpc")).draw(&limited);
        assert_eq!(header(&grpc, "retry-after"), "3");
        assert_eq!(header(&grpc, "grpc-status"), "8");
    }

    fn with_content_type(content_type: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, content_type.parse().unwrap());
        headers
    }

    #[test]
    fn method_paths_are_grpc_connect_or_unsupported() {
        let path = "/userdir.user.v1.UserService/ListUsers";
        let of = |content_type: &str| Protocol::of(&with_content_type(content_type), path);
        assert!(matches!(of("application/grpc"), Protocol::Grpc(_)));
        assert!(matches!(
            of("application/grpc-web+proto"),
            Protocol::GrpcWeb(_)
        ));
        assert!(matches!(
            of("application/json"),
            Protocol::Connect(Encoding::Json)
        ));
        assert!(matches!(
            of("application/proto"),
            Protocol::Connect(Encoding::Proto)
        ));
        assert!(matches!(
            of("application/connect+json"),
            Protocol::ConnectStream(_)
        ));
        assert!(matches!(of("text/plain"), Protocol::Unsupported));
        assert!(matches!(
            Protocol::of(&HeaderMap::new(), path),
            Protocol::Unsupported
        ));
        // JSON elsewhere is grpc-gateway's.
        let json = with_content_type("application/json");
        assert!(matches!(
            Protocol::of(&json, "/v1/users/_search"),
            Protocol::Gateway
        ));
    }

    #[tokio::test]
    async fn connect_refusals_are_connect_errors() {
        let unauthenticated = Refusal::new(Code::Unauthenticated, "who?").with_challenge("Bearer");
        let response = Protocol::Connect(Encoding::Proto).draw(&unauthenticated);
        assert_eq!(response.status(), 401);
        assert_eq!(header(&response, "content-type"), "application/json");
        assert_eq!(header(&response, "www-authenticate"), "Bearer");
        let json: serde_json::Value = serde_json::from_str(&body(response).await).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"code": "unauthenticated", "message": "who?"})
        );
        let limited = Refusal::new(Code::ResourceExhausted, "later").with_retry_after(3);
        let response = Protocol::Connect(Encoding::Json).draw(&limited);
        assert_eq!(response.status(), 429);
        assert_eq!(header(&response, "retry-after"), "3");

        let stream = Protocol::ConnectStream(HeaderValue::from_static("application/connect+json"))
            .draw(&limited);
        assert_eq!(stream.status(), 200);
        assert_eq!(header(&stream, "content-type"), "application/connect+json");
        let bytes = axum::body::to_bytes(stream.into_body(), usize::MAX)
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&bytes[5..]).unwrap();
        assert_eq!(json["error"]["code"], "resource_exhausted");
    }

    #[tokio::test(start_paused = true)]
    async fn connect_timeout_ms_is_a_connect_deadline() {
        let response = deadline_app(Duration::from_secs(30))
            .oneshot(request(
                "/a.B/Never",
                &[
                    ("content-type", "application/json"),
                    ("connect-timeout-ms", "250"),
                ],
            ))
            .await
            .unwrap();
        assert_eq!(response.status(), 504);
        let json: serde_json::Value = serde_json::from_str(&body(response).await).unwrap();
        assert_eq!(json["code"], "deadline_exceeded");
        assert_eq!(
            json["message"],
            "the request did not finish within 250ms (the client's Connect-Timeout-Ms)"
        );
    }

    /// The deadline under the rescue: `/never` never answers, `/now` at once.
    fn deadline_app(max: Duration) -> Router {
        Router::new()
            .route("/never", any(std::future::pending::<&'static str>))
            .route("/a.B/Never", any(std::future::pending::<&'static str>))
            .route("/now", any(|| async { "done" }))
            .layer(axum::middleware::from_fn_with_state(max, deadline::enforce))
            .layer(axum::middleware::from_fn(rescue))
    }

    fn request(path: &str, headers: &[(&str, &str)]) -> Request {
        let mut request = Request::builder().uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(Body::empty()).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn json_requests_past_the_server_limit_are_504() {
        let response = deadline_app(Duration::from_secs(30))
            .oneshot(request("/never", &[]))
            .await
            .unwrap();
        assert_eq!(response.status(), 504);
        assert_eq!(header(&response, "content-type"), "application/json");
        let json: serde_json::Value = serde_json::from_str(&body(response).await).unwrap();
        assert_eq!(json["code"], 4);
        assert_eq!(
            json["message"],
            "the request did not finish within 30s (the server's limit)"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn grpc_requests_get_deadline_exceeded_and_a_shorter_client_timeout_wins() {
        let response = deadline_app(Duration::from_secs(30))
            .oneshot(request(
                "/never",
                &[
                    ("content-type", "application/grpc"),
                    ("grpc-timeout", "250m"),
                ],
            ))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "content-type"), "application/grpc");
        assert_eq!(header(&response, "grpc-status"), "4");
        assert_eq!(
            header(&response, "grpc-message"),
            "the%20request%20did%20not%20finish%20within%20250ms%20(the%20client's%20grpc-timeout)"
        );
        // A longer client timeout does not extend the server's limit.
        let response = deadline_app(Duration::from_secs(1))
            .oneshot(request(
                "/never",
                &[
                    ("content-type", "application/grpc-web+proto"),
                    ("grpc-timeout", "1H"),
                ],
            ))
            .await
            .unwrap();
        assert_eq!(
            header(&response, "content-type"),
            "application/grpc-web+proto"
        );
        assert_eq!(header(&response, "grpc-status"), "4");
        assert!(header(&response, "grpc-message").contains("server's%20limit"));
    }

    /// The header limit under the rescue.
    fn head_app(max: usize) -> Router {
        Router::new()
            .route("/{*rest}", any(|| async { "served" }))
            .layer(axum::middleware::from_fn_with_state(max, head::enforce))
            .layer(axum::middleware::from_fn(rescue))
    }

    fn head_request(version: Version, content_type: &str, padding: usize) -> Request {
        Request::builder()
            .version(version)
            .uri("http://test/v1/users")
            .header("content-type", content_type)
            .header("x-padding", "a".repeat(padding))
            .body(Body::empty())
            .unwrap()
    }

    #[tokio::test]
    async fn over_the_limit_is_refused_in_the_requests_protocol() {
        let max = 8192;
        let served = head_app(max)
            .oneshot(head_request(Version::HTTP_2, "application/grpc", 7000))
            .await
            .unwrap();
        assert_eq!(served.status(), 200);
        assert!(served.headers().get("grpc-status").is_none());

        let grpc = head_app(max)
            .oneshot(head_request(
                Version::HTTP_2,
                "application/grpc+proto",
                9000,
            ))
            .await
            .unwrap();
        assert_eq!(grpc.status(), 200, "gRPC carries its status in grpc-status");
        assert_eq!(grpc.headers()["grpc-status"], "8");
        assert_eq!(grpc.headers()["content-type"], "application/grpc+proto");
        let message = grpc.headers()["grpc-message"].to_str().unwrap();
        assert!(message.contains("--max-header-bytes"), "{message}");

        let json = head_app(max)
            .oneshot(head_request(Version::HTTP_2, "application/json", 9000))
            .await
            .unwrap();
        assert_eq!(json.status(), 431);
        let body = axum::body::to_bytes(json.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["code"], 8);

        // HTTP/1's head is bounded by hyper's buffer, not here.
        let http1 = head_app(max)
            .oneshot(head_request(Version::HTTP_11, "application/json", 9000))
            .await
            .unwrap();
        assert_eq!(http1.status(), 200);
    }

    #[tokio::test]
    async fn answers_that_are_not_refusals_pass_untouched() {
        let app = Router::new()
            .route("/ok", any(|| async { (StatusCode::IM_A_TEAPOT, "tea") }))
            .route(
                "/refused",
                any(|| async { Refusal::new(Code::PermissionDenied, "no").into_response() }),
            )
            .layer(axum::middleware::from_fn(rescue));
        let ok = app.clone().oneshot(request("/ok", &[])).await.unwrap();
        assert_eq!(ok.status(), 418);
        assert_eq!(body(ok).await, "tea");
        let refused = app.oneshot(request("/refused", &[])).await.unwrap();
        assert_eq!(refused.status(), 403);
        assert!(Refusal::of(&refused).is_none());
    }
}
