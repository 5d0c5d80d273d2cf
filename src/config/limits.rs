//! The command-line flags (and environment variables) of the request, hashing and connection
//! limits, read into the value types that `limits` enforces.

use std::time::Duration;

use clap::Args;

use super::duration::{self, HOURS, MILLISECONDS, MINUTES, SECONDS};
use crate::limits::RequestLimits;
use crate::limits::connections::{
    self, ConnectionLimits, DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS, DEFAULT_MAX_CONNECTIONS_PER_PEER,
};
use crate::limits::hashing::{DEFAULT_QUEUE_PER_HASH, HashingLimits};
use crate::limits::regex_searches::DEFAULT_MAX_CONCURRENT_REGEX_SEARCHES;
use crate::limits::shutdown::ShutdownLimits;
use crate::limits::{
    DEFAULT_MAX_CONCURRENT_REQUESTS, DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_MESSAGE_BYTES,
};
use crate::query::{MAX_DEPTH, MAX_LEAVES, MAX_TEXT_CHARS};

/// The command-line flags (and environment variables) of [`RequestLimits`].
#[derive(Args, Clone, Debug)]
pub struct LimitArgs {
    /// Largest gRPC message (after decompression) and JSON request body, in bytes; larger is
    /// ResourceExhausted (HTTP 413).
    #[arg(long, env = "USERDIR_MAX_MESSAGE_BYTES", default_value_t = DEFAULT_MAX_MESSAGE_BYTES)]
    pub max_message_bytes: usize,

    /// Largest request head in bytes (HTTP/1 request line and headers, HTTP/2 header list;
    /// at least 8192); larger is ResourceExhausted (HTTP 431).
    #[arg(long, env = "USERDIR_MAX_HEADER_BYTES", default_value_t = DEFAULT_MAX_HEADER_BYTES)]
    pub max_header_bytes: usize,

    /// Longest a request may take, e.g. `30s`, `500ms`, `2m`; longer is DeadlineExceeded
    /// (HTTP 504). A client's shorter `grpc-timeout` wins.
    #[arg(long, env = "USERDIR_REQUEST_TIMEOUT", default_value = "30s", value_parser = flag_duration)]
    pub request_timeout: Duration,

    /// Deepest nesting of a search (ZITADEL or/and/not queries, OData filters), 1 to 32.
    #[arg(long, env = "USERDIR_MAX_QUERY_DEPTH", default_value_t = MAX_DEPTH)]
    pub max_query_depth: usize,

    /// Most leaf conditions of a search, in every dialect, 1 to 500.
    #[arg(long, env = "USERDIR_MAX_QUERY_LEAVES", default_value_t = MAX_LEAVES)]
    pub max_query_leaves: usize,

    /// Longest name, username, email address, schema type or search text, in characters,
    /// 1 to 255.
    #[arg(long, env = "USERDIR_MAX_TEXT_LENGTH", default_value_t = MAX_TEXT_CHARS)]
    pub max_text_length: usize,

    /// Most regex searches (Logto `posix` and `similar_to` modes) running at once, 1 to 8 (a
    /// PostgreSQL pool has 10 connections; 1 to 3 on SQLite, whose pool has 5); one more waits
    /// briefly, then is ResourceExhausted (HTTP 429).
    #[arg(
        long,
        env = "USERDIR_MAX_CONCURRENT_REGEX_SEARCHES",
        default_value_t = DEFAULT_MAX_CONCURRENT_REGEX_SEARCHES
    )]
    pub max_concurrent_regex_searches: usize,

    /// Password hashes and verifications that run at the same time, server-wide: one thread
    /// each, keeping 19 MiB of argon2 memory (up to 64 MiB after an imported hash at the
    /// ceiling). Default: the number of cores.
    #[arg(long, env = "USERDIR_MAX_CONCURRENT_PASSWORD_HASHES")]
    pub max_concurrent_password_hashes: Option<usize>,

    /// Password hashes and verifications that may wait for a turn; beyond them a request is
    /// ResourceExhausted (HTTP 429) at once. Default: 4 per concurrent hash.
    #[arg(long, env = "USERDIR_PASSWORD_HASH_QUEUE")]
    pub password_hash_queue: Option<usize>,

    /// Time for a connection's first complete request head (a connection that sends nothing,
    /// or only the HTTP/2 preface, is closed after it) and for every later HTTP/1 head.
    #[arg(long, env = "USERDIR_HEADER_TIMEOUT", default_value = "10s", value_parser = flag_duration)]
    pub header_timeout: Duration,

    /// A connection with no request in flight (HTTP/1 keep-alive, HTTP/2 without open streams)
    /// is closed after this long (HTTP/2 with a GOAWAY).
    #[arg(long, env = "USERDIR_IDLE_TIMEOUT", default_value = "5m", value_parser = flag_duration)]
    pub idle_timeout: Duration,

    /// Interval of HTTP/2 keep-alive pings; 0: none.
    #[arg(long, env = "USERDIR_HTTP2_KEEPALIVE_INTERVAL", default_value = "60s", value_parser = flag_duration)]
    pub http2_keepalive_interval: Duration,

    /// A peer that answers no keep-alive ping within this long is disconnected.
    #[arg(long, env = "USERDIR_HTTP2_KEEPALIVE_TIMEOUT", default_value = "20s", value_parser = flag_duration)]
    pub http2_keepalive_timeout: Duration,

    /// Most open connections; further ones are closed as soon as they are accepted. Default:
    /// the descriptor limit (`ulimit -n`) less 128, at most 10000.
    #[arg(long, env = "USERDIR_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// Most open connections from one IP address; further ones are closed as soon as they are
    /// accepted. Behind a proxy or sidecar all clients share its address.
    #[arg(long, env = "USERDIR_MAX_CONNECTIONS_PER_PEER", default_value_t = DEFAULT_MAX_CONNECTIONS_PER_PEER)]
    pub max_connections_per_peer: usize,

    /// A connection older than this (±10%) gets an HTTP/2 GOAWAY (HTTP/1: is closed after its
    /// request), so that clients spread over new replicas; e.g. `30m`. Default: no maximum.
    #[arg(long, env = "USERDIR_MAX_CONNECTION_AGE", value_parser = flag_duration)]
    pub max_connection_age: Option<Duration>,

    /// After the GOAWAY for age, how long the connection's requests in flight may take before
    /// it is closed.
    #[arg(long, env = "USERDIR_MAX_CONNECTION_AGE_GRACE", default_value = "30s", value_parser = flag_duration)]
    pub max_connection_age_grace: Duration,

    /// Most concurrent HTTP/2 streams (requests) of one connection.
    #[arg(long, env = "USERDIR_HTTP2_MAX_CONCURRENT_STREAMS", default_value_t = DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS)]
    pub http2_max_concurrent_streams: u32,

    /// Most requests in progress on the whole server; one more is refused at once with
    /// Unavailable (HTTP 503, `Retry-After: 1`) instead of queueing behind the others (load
    /// shedding); `0`: no limit.
    #[arg(long, env = "USERDIR_MAX_CONCURRENT_REQUESTS", default_value_t = DEFAULT_MAX_CONCURRENT_REQUESTS)]
    pub max_concurrent_requests: usize,

    /// After SIGTERM or Ctrl-C, how long requests are still served with health NOT_SERVING,
    /// so that load balancers move away before anything is refused; `0`: none.
    #[arg(long, env = "USERDIR_SHUTDOWN_GRACE", default_value = "5s", value_parser = flag_duration)]
    pub shutdown_grace: Duration,

    /// After the grace period, how long requests in flight may take to finish; connections
    /// still open then are dropped.
    #[arg(long, env = "USERDIR_SHUTDOWN_TIMEOUT", default_value = "20s", value_parser = flag_duration)]
    pub shutdown_timeout: Duration,
}

impl LimitArgs {
    pub fn limits(&self) -> anyhow::Result<RequestLimits> {
        let limits = RequestLimits {
            max_message_bytes: self.max_message_bytes,
            max_header_bytes: self.max_header_bytes,
            request_timeout: self.request_timeout,
            max_query_depth: self.max_query_depth,
            max_query_leaves: self.max_query_leaves,
            max_text_chars: self.max_text_length,
            max_concurrent_regex_searches: self.max_concurrent_regex_searches,
            max_concurrent_requests: self.max_concurrent_requests,
        };
        limits.validate()?;
        Ok(limits)
    }

    pub fn hashing(&self) -> anyhow::Result<HashingLimits> {
        let machine = HashingLimits::for_this_machine();
        let max_concurrent = self
            .max_concurrent_password_hashes
            .unwrap_or(machine.max_concurrent);
        let limits = HashingLimits {
            max_concurrent,
            queue: self
                .password_hash_queue
                .unwrap_or(max_concurrent.saturating_mul(DEFAULT_QUEUE_PER_HASH)),
        };
        limits.validate()?;
        Ok(limits)
    }

    pub fn shutdown(&self) -> ShutdownLimits {
        ShutdownLimits {
            grace: self.shutdown_grace,
            timeout: self.shutdown_timeout,
        }
    }

    pub fn connections(&self) -> anyhow::Result<ConnectionLimits> {
        let limits = ConnectionLimits {
            header_timeout: self.header_timeout,
            idle_timeout: self.idle_timeout,
            http2_keepalive_interval: Some(self.http2_keepalive_interval)
                .filter(|interval| !interval.is_zero()),
            http2_keepalive_timeout: self.http2_keepalive_timeout,
            max_connections: self
                .max_connections
                .unwrap_or_else(connections::default_max_connections),
            max_connections_per_peer: self.max_connections_per_peer,
            max_connection_age: self.max_connection_age,
            max_connection_age_grace: self.max_connection_age_grace,
            http2_max_concurrent_streams: self.http2_max_concurrent_streams,
        };
        limits.validate()?;
        Ok(limits)
    }
}

/// `500ms`, `30s`, `2m`, `1h`, or whole seconds without a unit.
pub fn flag_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    duration::parse(
        text,
        &[MILLISECONDS, SECONDS, MINUTES, HOURS],
        Some(SECONDS),
    )
    .map_err(|_| format!("`{text}` is not a duration like 500ms, 30s, 2m or 1h"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(flag_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(flag_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(flag_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(flag_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(flag_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(flag_duration("s").is_err());
        assert!(flag_duration("1d").is_err());
        assert!(flag_duration("-1s").is_err());
    }

    #[test]
    fn shutdown_flags() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            limits: LimitArgs,
        }
        let defaults = Cli::try_parse_from(["userdir"]).unwrap();
        assert_eq!(defaults.limits.shutdown(), ShutdownLimits::default());
        let set =
            Cli::try_parse_from(["userdir", "--shutdown-grace=0", "--shutdown-timeout=1500ms"])
                .unwrap();
        assert_eq!(
            set.limits.shutdown(),
            ShutdownLimits {
                grace: Duration::ZERO,
                timeout: Duration::from_millis(1500),
            }
        );
        assert!(Cli::try_parse_from(["userdir", "--shutdown-grace=soon"]).is_err());
    }

    #[test]
    fn database_flags() {
        use crate::config::DatabaseArgs;
        use crate::store::DatabaseTimeouts;
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            database: DatabaseArgs,
        }
        let defaults = Cli::try_parse_from(["userdir"]).unwrap();
        assert_eq!(
            defaults.database.timeouts().unwrap(),
            DatabaseTimeouts::default()
        );
        let set = Cli::try_parse_from([
            "userdir",
            "--database-acquire-timeout=2s",
            "--database-connect-timeout=1m",
        ])
        .unwrap();
        assert_eq!(
            set.database.timeouts().unwrap(),
            DatabaseTimeouts {
                acquire: Duration::from_secs(2),
                connect: Duration::from_secs(60),
            }
        );
        let zero = Cli::try_parse_from(["userdir", "--database-acquire-timeout=0s"]).unwrap();
        assert!(zero.database.timeouts().is_err());
    }

    #[test]
    fn connection_flags() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            limits: LimitArgs,
        }
        let defaults = Cli::try_parse_from(["userdir"]).unwrap();
        assert_eq!(
            defaults.limits.connections().unwrap(),
            ConnectionLimits::default()
        );
        let set = Cli::try_parse_from([
            "userdir",
            "--header-timeout=300ms",
            "--idle-timeout=2m",
            "--http2-keepalive-interval=0",
            "--http2-keepalive-timeout=5s",
            "--max-connections=50",
            "--max-connections-per-peer=5",
            "--max-connection-age=30m",
            "--max-connection-age-grace=10s",
            "--http2-max-concurrent-streams=64",
        ])
        .unwrap();
        assert_eq!(
            set.limits.connections().unwrap(),
            ConnectionLimits {
                header_timeout: Duration::from_millis(300),
                idle_timeout: Duration::from_secs(120),
                http2_keepalive_interval: None,
                http2_keepalive_timeout: Duration::from_secs(5),
                max_connections: 50,
                max_connections_per_peer: 5,
                max_connection_age: Some(Duration::from_secs(1800)),
                max_connection_age_grace: Duration::from_secs(10),
                http2_max_concurrent_streams: 64,
            }
        );
        let zero = Cli::try_parse_from(["userdir", "--max-connections-per-peer=0"]).unwrap();
        assert!(zero.limits.connections().is_err());
    }
}
