//! What one connection is doing, for the timers hyper lacks: no timer covers a connection that
//! never completes its first request head while the auto builder still reads the protocol
//! preface (or an HTTP/2 connection that sends no HEADERS after it), and HTTP/2 has no idle
//! timeout at all. [`Tracked`] counts the requests in flight (a request ends when its response
//! body is sent or dropped); [`Watch::expiry`] says when the connection has been silent or idle too
//! long.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use http::{Request, Response};
use http_body::{Frame, SizeHint};
use tokio::sync::watch;
use tokio::time::Instant;
use tower::Service;

use super::connections::ConnectionLimits;

/// The requests of one connection.
#[derive(Clone, Copy, Debug)]
struct State {
    /// Whether any request head has arrived.
    started: bool,
    /// Requests whose response is not yet sent.
    in_flight: usize,
    /// When the last request in flight ended.
    idle_since: Instant,
}

/// Why a connection should end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// No complete request head within the header timeout.
    NoRequest,
    /// No request in flight for the idle timeout.
    Idle,
}

/// A connection's activity: the service side that records it and the watch side that reads it.
pub fn track<S>(inner: S) -> (Tracked<S>, Watch) {
    let (sender, receiver) = watch::channel(State {
        started: false,
        in_flight: 0,
        idle_since: Instant::now(),
    });
    (
        Tracked {
            inner,
            state: Arc::new(sender),
        },
        Watch {
            state: receiver,
            opened: Instant::now(),
        },
    )
}

/// The connection's service, counting its requests.
#[derive(Clone, Debug)]
pub struct Tracked<S> {
    inner: S,
    state: Arc<watch::Sender<State>>,
}

impl<S, B> Service<Request<B>> for Tracked<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let guard = InFlight::start(self.state.clone());
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| {
                Body::new(Guarded {
                    body,
                    _in_flight: guard,
                })
            }))
        })
    }
}

/// A response body that keeps its request in flight until hyper has sent (or dropped) all of
/// it, however long a stream lasts.
struct Guarded {
    body: Body,
    _in_flight: InFlight,
}

impl http_body::Body for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// One request in flight.
struct InFlight(Arc<watch::Sender<State>>);

impl InFlight {
    fn start(state: Arc<watch::Sender<State>>) -> Self {
        state.send_modify(|state| {
            state.started = true;
            state.in_flight += 1;
        });
        Self(state)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|state| {
            state.in_flight -= 1;
            if state.in_flight == 0 {
                state.idle_since = Instant::now();
            }
        });
    }
}

/// Reads a connection's activity.
#[derive(Debug)]
pub struct Watch {
    state: watch::Receiver<State>,
    opened: Instant,
}

impl Watch {
    /// Completes when the connection has had no complete request head for the header timeout
    /// since it opened, or no request in flight for the idle timeout; pends while a request is
    /// in flight.
    pub async fn expiry(mut self, limits: ConnectionLimits) -> Expiry {
        loop {
            let state = *self.state.borrow_and_update();
            let (deadline, expiry) = if !state.started {
                (self.opened + limits.header_timeout, Expiry::NoRequest)
            } else {
                (state.idle_since + limits.idle_timeout, Expiry::Idle)
            };
            // Once the service is gone (hyper dropped it with the connection, or a test did)
            // the state is final: only the deadline is left, if any.
            tokio::select! {
                biased;
                Ok(()) = self.state.changed() => {}
                () = tokio::time::sleep_until(deadline), if state.in_flight == 0 => return expiry,
                else => return std::future::pending().await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tower::ServiceExt;

    use super::*;

    const LIMITS: ConnectionLimits = ConnectionLimits {
        header_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        http2_keepalive_interval: None,
        http2_keepalive_timeout: Duration::from_secs(20),
        max_connections: 10,
        max_connections_per_peer: 10,
        max_connection_age: None,
        max_connection_age_grace: Duration::from_secs(30),
        http2_max_concurrent_streams: 200,
    };

    async fn answer(_: Request<()>) -> Result<Response<Body>, std::convert::Infallible> {
        Ok(Response::new(Body::from("answer")))
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_a_request_expires_after_the_header_timeout() {
        let (_service, watch) = track(tower::service_fn(answer));
        let started = Instant::now();
        assert_eq!(watch.expiry(LIMITS).await, Expiry::NoRequest);
        assert_eq!(started.elapsed(), LIMITS.header_timeout);
    }

    /// A request stays in flight until its response body is gone, however long that takes;
    /// the idle time counts from then.
    #[tokio::test(start_paused = true)]
    async fn idle_time_counts_from_the_end_of_the_last_response_body() {
        let (service, watch) = track(tower::service_fn(answer));
        let mut expiry = Box::pin(watch.expiry(LIMITS));
        let response = service
            .oneshot(Request::new(()))
            .await
            .unwrap_or_else(|never| match never {});
        let waited = LIMITS.header_timeout + LIMITS.idle_timeout * 2;
        assert!(
            tokio::time::timeout(waited, &mut expiry).await.is_err(),
            "a response being sent is not idle"
        );
        let answered = Instant::now();
        drop(response);
        assert_eq!(expiry.await, Expiry::Idle);
        assert_eq!(answered.elapsed(), LIMITS.idle_timeout);
    }
}
