//! How many regex searches may run at once. A regex search can keep its pooled connection busy
//! far longer than any other read (PostgreSQL compiles and runs the pattern for each row), so
//! a few of them must never take every connection of the pool: they are capped below
//! `store::POOL_SIZE` (SQLite's `store::sqlite::POOL_SIZE`, checked as the server starts), and
//! a search that finds no free place within [`QUEUE_WAIT`] is refused with ResourceExhausted
//! (HTTP 429) instead of queueing behind the others.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::Error;

/// Default cap: a fifth of a PostgreSQL pool's 10 connections, two of SQLite's 5.
pub const DEFAULT_MAX_CONCURRENT_REGEX_SEARCHES: usize = 2;
/// Largest cap: two of the pool's connections always stay free for everything else (the store
/// asserts it against `store::POOL_SIZE`; on SQLite, whose pool is smaller, the server refuses
/// to start with a cap above `store::sqlite::POOL_SIZE` - 2).
pub const MAX_CONCURRENT_REGEX_SEARCHES_BOUND: usize = 8;
/// How long a regex search waits for a place before it is refused.
pub const QUEUE_WAIT: Duration = Duration::from_millis(100);

/// The places for regex searches of one server, shared by all its surfaces.
#[derive(Clone, Debug)]
pub struct RegexSearches {
    places: Arc<Semaphore>,
    max: usize,
}

impl RegexSearches {
    pub fn new(max: usize) -> Self {
        Self {
            places: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// A place for one search, held until the permit is dropped.
    pub async fn enter(&self) -> Result<OwnedSemaphorePermit, Error> {
        match tokio::time::timeout(QUEUE_WAIT, self.places.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed; a timeout is the only way to get here.
            _ => Err(Error::ResourceExhausted(format!(
                "too many regular-expression searches at once (at most {}, \
                 --max-concurrent-regex-searches); retry later",
                self.max
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_search_beyond_the_cap_is_refused_after_a_short_wait() {
        let searches = RegexSearches::new(1);
        let first = searches.enter().await.unwrap();
        let error = searches.enter().await.unwrap_err();
        assert!(
            matches!(&error, Error::ResourceExhausted(message)
                if message.contains("at most 1, --max-concurrent-regex-searches")),
            "{error}"
        );
        drop(first);
        let _again = searches.enter().await.unwrap();
    }
}
