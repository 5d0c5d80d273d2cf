//! Load shedding: past `--max-concurrent-requests` requests in progress, one more is refused at
//! once with Unavailable (HTTP 503, `Retry-After: 1`) instead of queueing behind the others.
//! A queue in front of a saturated server only turns every request into a slow one and then a
//! deadline; a quick Unavailable lets a client or a mesh retry on another replica. tower's
//! `LoadShed` over a `GlobalConcurrencyLimit` (one count for every route of the port) does the
//! work; this module says how the refusal reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::BoxError;
use axum::response::{IntoResponse, Response};
use tonic::Code;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::error::Overloaded;

use crate::refusal::Refusal;

/// Default most requests in progress on the server: far more than the database pool serves at
/// once, so a burst waits for a connection (bounded by `--database-acquire-timeout`), while the
/// memory all of them may hold stays bounded.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 256;

/// One count of requests in progress for the whole port; `0` takes no limit.
pub fn concurrency_limit(max_concurrent_requests: usize) -> GlobalConcurrencyLimitLayer {
    let permits = match max_concurrent_requests {
        0 => tokio::sync::Semaphore::MAX_PERMITS,
        max => max,
    };
    GlobalConcurrencyLimitLayer::new(permits)
}

/// Answers the requests that were shed, and counts them (for the metrics).
#[derive(Clone, Default)]
pub struct Shedder {
    refused: Arc<AtomicU64>,
}

impl Shedder {
    /// Requests shed since the server started.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// The answer to a request that was shed (the only error below: every route is
    /// infallible).
    pub fn refuse(&self, error: BoxError) -> impl Future<Output = Response> + use<> {
        if error.is::<Overloaded>() {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        refuse(error)
    }
}

async fn refuse(error: BoxError) -> Response {
    if error.is::<Overloaded>() {
        tracing::warn!("shed a request: the server is at --max-concurrent-requests");
        return Refusal::new(
            Code::Unavailable,
            "the server is at its limit of concurrent requests (--max-concurrent-requests); \
             retry shortly",
        )
        .with_retry_after(1)
        .into_response();
    }
    tracing::error!(%error, "a layer failed");
    Refusal::new(Code::Internal, "internal error").into_response()
}
