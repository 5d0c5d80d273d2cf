//! Connection limits: how long a connection may stay silent or idle, and how many connections
//! the server and each peer address may hold, so that idle sockets of one client never take the
//! descriptors every other client needs.

use std::time::Duration;

/// Default time for the first request head of a connection (any protocol) and for every later
/// HTTP/1 head.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a connection with no request in flight stays open.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Default interval of HTTP/2 keep-alive pings.
pub const DEFAULT_HTTP2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(60);
/// Default time a peer has to answer a keep-alive ping.
pub const DEFAULT_HTTP2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// Default most connections from one peer address.
pub const DEFAULT_MAX_CONNECTIONS_PER_PEER: usize = 256;
/// Default time a connection past its maximum age has to finish its requests.
pub const DEFAULT_MAX_CONNECTION_AGE_GRACE: Duration = Duration::from_secs(30);
/// Default most concurrent HTTP/2 streams (requests) of one connection, as hyper's and
/// grpc-go's own defaults.
pub const DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS: u32 = 200;
/// A connection's maximum age varies by up to this share either way, as gRPC's
/// `MAX_CONNECTION_AGE` does, so that connections opened together do not all close together.
pub const MAX_CONNECTION_AGE_JITTER: f64 = 0.1;
/// The default connection cap when the descriptor limit allows it.
pub const MAX_CONNECTIONS_CEILING: usize = 10_000;
/// Descriptors left for everything that is not a client connection: the database pool, the
/// SQLite files, logs, the listener.
pub const DESCRIPTOR_HEADROOM: u64 = 128;

/// The connection limits of one server (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A connection whose first complete request head has not arrived after this long is
    /// closed (also one that sends nothing at all, or only the HTTP/2 preface); later HTTP/1
    /// heads have as long.
    pub header_timeout: Duration,
    /// A connection with no request in flight (HTTP/1 keep-alive, HTTP/2 with no open stream)
    /// is closed after this long; HTTP/2 gets a GOAWAY first.
    pub idle_timeout: Duration,
    /// Interval of HTTP/2 keep-alive pings; `None`: no pings.
    pub http2_keepalive_interval: Option<Duration>,
    /// A peer that does not answer a ping within this long is disconnected.
    pub http2_keepalive_timeout: Duration,
    /// Most open connections; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// Most open connections from one IP address; more are closed as soon as accepted.
    pub max_connections_per_peer: usize,
    /// A connection older than this (± [`MAX_CONNECTION_AGE_JITTER`]) is told to go away
    /// (HTTP/2 GOAWAY; HTTP/1 closes after its request), so that long-lived clients spread
    /// over replicas that were added since they connected; `None`: no maximum.
    pub max_connection_age: Option<Duration>,
    /// After its GOAWAY for age, how long a connection's requests in flight may take before it
    /// is closed.
    pub max_connection_age_grace: Duration,
    /// Most concurrent HTTP/2 streams of one connection (SETTINGS_MAX_CONCURRENT_STREAMS).
    pub http2_max_concurrent_streams: u32,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            http2_keepalive_interval: Some(DEFAULT_HTTP2_KEEPALIVE_INTERVAL),
            http2_keepalive_timeout: DEFAULT_HTTP2_KEEPALIVE_TIMEOUT,
            max_connections: default_max_connections(),
            max_connections_per_peer: DEFAULT_MAX_CONNECTIONS_PER_PEER,
            max_connection_age: None,
            max_connection_age_grace: DEFAULT_MAX_CONNECTION_AGE_GRACE,
            http2_max_concurrent_streams: DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS,
        }
    }
}

impl ConnectionLimits {
    /// Refuses limits the server cannot keep.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.header_timeout.is_zero(),
            "--header-timeout must be positive"
        );
        anyhow::ensure!(
            !self.idle_timeout.is_zero(),
            "--idle-timeout must be positive"
        );
        anyhow::ensure!(
            !self.http2_keepalive_timeout.is_zero(),
            "--http2-keepalive-timeout must be positive"
        );
        anyhow::ensure!(
            self.max_connections >= 1,
            "--max-connections must be at least 1"
        );
        anyhow::ensure!(
            self.max_connections_per_peer >= 1,
            "--max-connections-per-peer must be at least 1"
        );
        anyhow::ensure!(
            self.max_connection_age.is_none_or(|age| !age.is_zero()),
            "--max-connection-age must be positive (leave it out for no maximum)"
        );
        anyhow::ensure!(
            self.http2_max_concurrent_streams >= 1,
            "--http2-max-concurrent-streams must be at least 1"
        );
        Ok(())
    }
}

impl ConnectionLimits {
    /// This connection's maximum age: the configured one, moved by a random share of up to
    /// [`MAX_CONNECTION_AGE_JITTER`] either way.
    pub fn connection_age(&self) -> Option<Duration> {
        use rand::Rng;
        let age = self.max_connection_age?;
        let share =
            rand::rng().random_range(-MAX_CONNECTION_AGE_JITTER..=MAX_CONNECTION_AGE_JITTER);
        Some(age.mul_f64(1.0 + share))
    }
}

/// The soft descriptor limit less [`DESCRIPTOR_HEADROOM`], at most [`MAX_CONNECTIONS_CEILING`]:
/// a full server then still has descriptors for its database and refuses clients cleanly
/// instead of failing `accept` (EMFILE) for everyone.
pub fn default_max_connections() -> usize {
    let ceiling = MAX_CONNECTIONS_CEILING as u64;
    let allowed = descriptor_limit().map_or(ceiling, |limit| {
        limit.saturating_sub(DESCRIPTOR_HEADROOM).clamp(1, ceiling)
    });
    allowed as usize
}

/// The soft RLIMIT_NOFILE; `None`: unlimited or unknown.
#[cfg(unix)]
fn descriptor_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

#[cfg(not(unix))]
fn descriptor_limit() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bounds_are_enforced() {
        ConnectionLimits::default().validate().unwrap();
        let default_cap = default_max_connections();
        assert!((1..=MAX_CONNECTIONS_CEILING).contains(&default_cap));
        let bad = [
            ConnectionLimits {
                header_timeout: Duration::ZERO,
                ..Default::default()
            },
            ConnectionLimits {
                idle_timeout: Duration::ZERO,
                ..Default::default()
            },
            ConnectionLimits {
                http2_keepalive_timeout: Duration::ZERO,
                ..Default::default()
            },
            ConnectionLimits {
                max_connections: 0,
                ..Default::default()
            },
            ConnectionLimits {
                max_connections_per_peer: 0,
                ..Default::default()
            },
            ConnectionLimits {
                max_connection_age: Some(Duration::ZERO),
                ..Default::default()
            },
            ConnectionLimits {
                http2_max_concurrent_streams: 0,
                ..Default::default()
            },
        ];
        for limits in bad {
            assert!(limits.validate().is_err(), "{limits:?}");
        }
    }

    #[test]
    fn connection_ages_spread_within_the_jitter() {
        assert_eq!(ConnectionLimits::default().connection_age(), None);
        let limits = ConnectionLimits {
            max_connection_age: Some(Duration::from_secs(100)),
            ..Default::default()
        };
        let ages: Vec<Duration> = (0..200).map(|_| limits.connection_age().unwrap()).collect();
        assert!(
            ages.iter()
                .all(|age| (Duration::from_secs(90)..=Duration::from_secs(110)).contains(age))
        );
        assert!(ages.iter().any(|age| *age != ages[0]), "the ages vary");
    }
}
