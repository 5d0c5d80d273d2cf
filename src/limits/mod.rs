//! Request limits: how large, how deep and how long one request may be. Every limit answers
//! with a clear status instead of a crash or an Internal error:
//!
//! | limit                              | gRPC                | HTTP/JSON                   |
//! |------------------------------------|---------------------|-----------------------------|
//! | message / JSON body size           | ResourceExhausted   | 413, code 8                 |
//! | request head (headers, URI)        | ResourceExhausted   | 431                         |
//! | request deadline                   | DeadlineExceeded    | 504, code 4                 |
//! | query depth, leaves, text length   | InvalidArgument     | 400, code 3 (REST: 400)     |
//! | concurrent regex searches          | ResourceExhausted   | 429, code 8                 |
//! | password hashes beyond the queue   | ResourceExhausted   | 429, code 8                 |
//! | no database connection in time     | Unavailable         | 503, code 14 (`store`)      |
//! | requests in progress (shedding)    | Unavailable         | 503, code 14                |
//!
//! Connections are bounded too (see [`connections`]): silent and idle ones are closed, and over
//! `--max-connections` or `--max-connections-per-peer` a new one is closed at once.
//!
//! Field lengths that are not configurable (ids 200, phone numbers 20, codes 20, passwords
//! 8–200, role descriptions 1000, regular expressions 256, OData filters 4096 characters) are
//! checked where the field is parsed.
//!
//! This folder enforces the limits; their flags are read in `config::limits`.

mod activity;
mod admission;
pub mod connections;
pub mod deadline;
pub mod grpc_status;
pub mod hashing;
pub mod head;
pub mod regex_searches;
pub mod serve;
pub mod shedding;
pub mod shutdown;
pub mod time_left;

use std::time::Duration;

use crate::query::{MAX_DEPTH, MAX_LEAVES, MAX_TEXT_CHARS, QueryLimits};
use regex_searches::{DEFAULT_MAX_CONCURRENT_REGEX_SEARCHES, MAX_CONCURRENT_REGEX_SEARCHES_BOUND};
pub use shedding::DEFAULT_MAX_CONCURRENT_REQUESTS;

/// Default largest message: gRPC's customary 4 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// Default largest request head (HTTP/1 request line and headers, HTTP/2 header list): room
/// for a longest OData filter, percent-encoded, and large bearer tokens.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;
/// Default longest request.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// hyper's smallest HTTP/1 read buffer, which bounds the request head.
pub const MIN_HEADER_BYTES: usize = 8192;
/// Bounds of the configurable limits. Depth and leaves stay far below what the SQL engines
/// refuse (SQLite: expression depth 1000); text lengths keep every indexed value (at most 4
/// bytes per character, two per index) below PostgreSQL's B-tree row limit of 2704 bytes.
pub const MAX_QUERY_DEPTH_BOUND: usize = 32;
pub const MAX_QUERY_LEAVES_BOUND: usize = 500;
pub const MAX_TEXT_CHARS_BOUND: usize = 255;

/// The limits of one server (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestLimits {
    /// Largest gRPC message (after decompression) and JSON request body, in bytes.
    pub max_message_bytes: usize,
    /// Largest request head in bytes: HTTP/1 request line and headers (at least
    /// [`MIN_HEADER_BYTES`]), HTTP/2 header list.
    pub max_header_bytes: usize,
    /// Longest a request may take; a client's shorter `grpc-timeout` wins.
    pub request_timeout: Duration,
    /// Deepest query nesting (ZITADEL queries, OData filters).
    pub max_query_depth: usize,
    /// Most leaf conditions of one search (every dialect).
    pub max_query_leaves: usize,
    /// Longest name, username, email address, schema type or search text, in characters.
    pub max_text_chars: usize,
    /// Most regex searches running at once (see [`regex_searches`]).
    pub max_concurrent_regex_searches: usize,
    /// Most requests in progress on the server; more are shed (see [`shedding`]); 0: no limit.
    pub max_concurrent_requests: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_query_depth: MAX_DEPTH,
            max_query_leaves: MAX_LEAVES,
            max_text_chars: MAX_TEXT_CHARS,
            max_concurrent_regex_searches: DEFAULT_MAX_CONCURRENT_REGEX_SEARCHES,
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
        }
    }
}

impl RequestLimits {
    /// What one search may hold.
    pub fn query(&self) -> QueryLimits {
        QueryLimits {
            max_depth: self.max_query_depth,
            max_leaves: self.max_query_leaves,
            max_text_chars: self.max_text_chars,
        }
    }

    /// Refuses limits the server cannot keep.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.max_message_bytes >= 1024,
            "--max-message-bytes must be at least 1024"
        );
        anyhow::ensure!(
            (MIN_HEADER_BYTES..=u32::MAX as usize).contains(&self.max_header_bytes),
            "--max-header-bytes must be at least {MIN_HEADER_BYTES}"
        );
        anyhow::ensure!(
            !self.request_timeout.is_zero(),
            "--request-timeout must be positive"
        );
        anyhow::ensure!(
            (1..=MAX_QUERY_DEPTH_BOUND).contains(&self.max_query_depth),
            "--max-query-depth must be between 1 and {MAX_QUERY_DEPTH_BOUND}"
        );
        anyhow::ensure!(
            (1..=MAX_QUERY_LEAVES_BOUND).contains(&self.max_query_leaves),
            "--max-query-leaves must be between 1 and {MAX_QUERY_LEAVES_BOUND}"
        );
        anyhow::ensure!(
            (1..=MAX_TEXT_CHARS_BOUND).contains(&self.max_text_chars),
            "--max-text-length must be between 1 and {MAX_TEXT_CHARS_BOUND}"
        );
        anyhow::ensure!(
            (1..=MAX_CONCURRENT_REGEX_SEARCHES_BOUND).contains(&self.max_concurrent_regex_searches),
            "--max-concurrent-regex-searches must be between 1 and \
             {MAX_CONCURRENT_REGEX_SEARCHES_BOUND} (two of the database pool's connections \
             always stay free)"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bounds_are_enforced() {
        RequestLimits::default().validate().unwrap();
        let bad = [
            RequestLimits {
                max_header_bytes: 4096,
                ..Default::default()
            },
            RequestLimits {
                request_timeout: Duration::ZERO,
                ..Default::default()
            },
            RequestLimits {
                max_query_depth: 33,
                ..Default::default()
            },
            RequestLimits {
                max_query_leaves: 0,
                ..Default::default()
            },
            RequestLimits {
                max_text_chars: 256,
                ..Default::default()
            },
            RequestLimits {
                max_message_bytes: 10,
                ..Default::default()
            },
            RequestLimits {
                max_concurrent_regex_searches: 0,
                ..Default::default()
            },
            RequestLimits {
                max_concurrent_regex_searches: 9,
                ..Default::default()
            },
        ];
        for limits in bad {
            assert!(limits.validate().is_err(), "{limits:?}");
        }
    }
}
