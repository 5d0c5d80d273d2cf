//! How the server drains when told to stop (SIGTERM, Ctrl-C): health turns NOT_SERVING at
//! once and requests are still served for the grace period, so that load balancers see it and
//! move away before anything is refused; then the listener closes, open connections are asked
//! to finish (HTTP/2 GOAWAY, HTTP/1 closes after its answer) and in-flight requests get up to
//! the timeout to do so; connections still open after it (a long stream) are dropped.

use std::time::Duration;

/// Default grace period: a few health checks of a load balancer polling every second or two.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Default time in-flight requests get after the grace period. With the grace it stays below
/// the 30 s that process supervisors (Kubernetes' termination grace period, systemd's
/// `TimeoutStopSec`) commonly wait before they kill.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);

/// The drain of one server (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShutdownLimits {
    /// How long requests are still served, with health NOT_SERVING, after the signal.
    pub grace: Duration,
    /// How long in-flight requests may take after the grace period.
    pub timeout: Duration,
}

impl Default for ShutdownLimits {
    fn default() -> Self {
        Self {
            grace: DEFAULT_SHUTDOWN_GRACE,
            timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }
}
