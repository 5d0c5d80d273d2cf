//! The request deadline: every request ends within the server's `request_timeout`, or sooner
//! when the client sends a shorter `grpc-timeout` (gRPC, gRPC-Web and HTTP/JSON alike, as
//! grpc-gateway honours it) or `Connect-Timeout-Ms` (Connect's). A request past its deadline is dropped (its transaction rolls
//! back) and refused with DeadlineExceeded, which the rescue layer (`api::rescue`) draws: a gRPC
//! status for gRPC and gRPC-Web, 504 with an error body for everything else.
//!
//! The deadline is also known to the code the request runs (`time_left::remaining`): PostgreSQL reads
//! run under a `statement_timeout` of what is left of it (see `store::begin_snapshot`), so a
//! statement stops when its request is answered.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use tonic::Code;

use crate::refusal::Refusal;

/// Longest `grpc-timeout` value: 8 digits (gRPC's wire format).
const MAX_TIMEOUT_DIGITS: usize = 8;
/// Longest `Connect-Timeout-Ms` value: 10 digits (Connect's wire format).
const MAX_CONNECT_TIMEOUT_DIGITS: usize = 10;

/// The middleware: `router.layer(axum::middleware::from_fn_with_state(max, deadline::enforce))`.
pub async fn enforce(State(max): State<Duration>, request: Request, next: Next) -> Response {
    let (limit, whose) = match client_timeout(request.headers()) {
        Some((client, whose)) if client < max => (client, whose),
        _ => (max, "the server's limit"),
    };
    let path = request.uri().path().to_owned();
    match super::time_left::within(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(path, ?limit, whose, "request deadline exceeded");
            Refusal::new(
                Code::DeadlineExceeded,
                format!("the request did not finish within {limit:?} ({whose})"),
            )
            .into_response()
        }
    }
}

/// The shorter of the client's timeouts (`grpc-timeout`, `Connect-Timeout-Ms`), and its name
/// for the refusal's message.
fn client_timeout(headers: &HeaderMap) -> Option<(Duration, &'static str)> {
    let grpc = grpc_timeout(headers).map(|t| (t, "the client's grpc-timeout"));
    let connect = connect_timeout(headers).map(|t| (t, "the client's Connect-Timeout-Ms"));
    match (grpc, connect) {
        (Some(grpc), Some(connect)) => Some(if connect.0 < grpc.0 { connect } else { grpc }),
        (grpc, connect) => grpc.or(connect),
    }
}

/// The `Connect-Timeout-Ms` header: 1 to 10 digits, milliseconds. A malformed value is ignored
/// (the server's limit still applies), as a malformed `grpc-timeout` is.
pub fn connect_timeout(headers: &HeaderMap) -> Option<Duration> {
    let digits = headers.get("connect-timeout-ms")?.to_str().ok()?;
    if digits.is_empty()
        || digits.len() > MAX_CONNECT_TIMEOUT_DIGITS
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    Some(Duration::from_millis(digits.parse().ok()?))
}

/// The `grpc-timeout` header: 1 to 8 digits and a unit (H, M, S, m, u, n). A malformed value
/// is ignored (the server's limit still applies).
pub fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty()
        || digits.len() > MAX_TIMEOUT_DIGITS
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let number: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(number * 3600),
        "M" => Duration::from_secs(number * 60),
        "S" => Duration::from_secs(number),
        "m" => Duration::from_millis(number),
        "u" => Duration::from_micros(number),
        "n" => Duration::from_nanos(number),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::any;
    use tower::ServiceExt;

    /// A router whose `/never` never answers and whose `/now` answers at once.
    fn app(max: Duration) -> Router {
        Router::new()
            .route("/never", any(std::future::pending::<&'static str>))
            .route("/now", any(|| async { "done" }))
            .layer(axum::middleware::from_fn_with_state(max, enforce))
    }

    fn request(path: &str, headers: &[(&str, &str)]) -> Request {
        let mut request = Request::builder().uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(Body::empty()).unwrap()
    }

    async fn body(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn grpc_timeouts_parse_by_the_spec() {
        let parse = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("grpc-timeout", value.parse().unwrap());
            grpc_timeout(&headers)
        };
        assert_eq!(parse("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse("3S"), Some(Duration::from_secs(3)));
        assert_eq!(parse("400m"), Some(Duration::from_millis(400)));
        assert_eq!(parse("5u"), Some(Duration::from_micros(5)));
        assert_eq!(parse("99999999n"), Some(Duration::from_nanos(99_999_999)));
        for bad in ["", "S", "123456789S", "1s", "1.5S", "-1S", "1 S", "1Sx"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert_eq!(grpc_timeout(&HeaderMap::new()), None);
    }

    #[test]
    fn connect_timeouts_parse_by_the_spec_and_the_shorter_client_timeout_counts() {
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.insert(*name, value.parse().unwrap());
            }
            headers
        };
        let parse = |value: &str| connect_timeout(&headers(&[("connect-timeout-ms", value)]));
        assert_eq!(parse("250"), Some(Duration::from_millis(250)));
        assert_eq!(parse("0"), Some(Duration::ZERO));
        assert_eq!(
            parse("9999999999"),
            Some(Duration::from_millis(9_999_999_999))
        );
        for bad in ["", "12345678901", "1.5", "-1", "1s", " 1"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        let both = headers(&[("grpc-timeout", "1S"), ("connect-timeout-ms", "500")]);
        assert_eq!(
            client_timeout(&both),
            Some((
                Duration::from_millis(500),
                "the client's Connect-Timeout-Ms"
            ))
        );
        let both = headers(&[("grpc-timeout", "100m"), ("connect-timeout-ms", "500")]);
        assert_eq!(
            client_timeout(&both),
            Some((Duration::from_millis(100), "the client's grpc-timeout"))
        );
    }

    // Paused time: the runtime jumps to the deadline as soon as every task waits, so these
    // tests neither sleep nor depend on the machine's speed.

    #[tokio::test(start_paused = true)]
    async fn past_the_deadline_the_request_is_refused_and_a_shorter_client_timeout_wins() {
        let refusal = |response: Response| Refusal::of(&response).cloned().unwrap();
        let response = app(Duration::from_secs(30))
            .oneshot(request("/never", &[]))
            .await
            .unwrap();
        let refused = refusal(response);
        assert_eq!(refused.code(), Code::DeadlineExceeded);
        assert_eq!(
            refused.message(),
            "the request did not finish within 30s (the server's limit)"
        );
        let response = app(Duration::from_secs(30))
            .oneshot(request("/never", &[("grpc-timeout", "250m")]))
            .await
            .unwrap();
        assert_eq!(
            refusal(response).message(),
            "the request did not finish within 250ms (the client's grpc-timeout)"
        );
        // A longer client timeout does not extend the server's limit.
        let response = app(Duration::from_secs(1))
            .oneshot(request("/never", &[("grpc-timeout", "1H")]))
            .await
            .unwrap();
        assert!(refusal(response).message().contains("server's limit"));
        let response = app(Duration::from_secs(30))
            .oneshot(request("/never", &[("connect-timeout-ms", "250")]))
            .await
            .unwrap();
        assert_eq!(
            refusal(response).message(),
            "the request did not finish within 250ms (the client's Connect-Timeout-Ms)"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn requests_within_the_deadline_are_untouched() {
        let response = app(Duration::from_millis(1))
            .oneshot(request("/now", &[("grpc-timeout", "1n")]))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(body(response).await, "done");
    }
}
