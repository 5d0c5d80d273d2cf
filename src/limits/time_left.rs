//! What is left of the current request's deadline, for the code the request runs: PostgreSQL
//! reads set their `statement_timeout` from it (`store::begin_snapshot`). Its own module, free
//! of imports, so the store can ask without depending on the layer that enforces the deadline
//! (`limits::deadline`, which returns a refusal for the edge to draw).

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

tokio::task_local! {
    /// When the request being served must be answered.
    static DEADLINE: Instant;
}

/// Runs `future` as a request that must finish within `limit`: [`remaining`] is known inside
/// it, and it is dropped (Err) when the time is up.
pub async fn within<F: Future>(
    limit: Duration,
    future: F,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    let deadline = Instant::now() + limit;
    DEADLINE
        .scope(deadline, tokio::time::timeout_at(deadline, future))
        .await
}

/// What is left of the current request's deadline (zero once it passed); None outside a
/// request (the operator's CLI, seeding).
pub fn remaining() -> Option<Duration> {
    DEADLINE
        .try_with(|deadline| deadline.saturating_duration_since(Instant::now()))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_remaining_time_is_known_inside_a_request_only() {
        assert_eq!(remaining(), None);
        let left = within(Duration::from_secs(2), async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            remaining()
        })
        .await
        .unwrap();
        assert_eq!(left, Some(Duration::from_millis(1500)));
        assert_eq!(remaining(), None);
    }
}
