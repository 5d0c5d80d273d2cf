//! Per-caller and per-peer request rates (GCRA token buckets from `governor`). A caller over its
//! rate is told how long to wait; nothing is queued.
//!
//! A peer is an IPv4 address or an IPv6 /64: one IPv6 host is usually handed a whole /64, so
//! keying on the full address would give an attacker 2^64 fresh budgets.

use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// A sustained rate with room for bursts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub per_second: NonZeroU32,
    pub burst: NonZeroU32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateLimitSettings {
    /// Per credential (token id or JWT subject); None: unlimited.
    pub per_token: Option<Rate>,
    /// Per client IPv4 address or IPv6 /64, counting failed authentications and public services
    /// (health, reflection, the OpenAPI document) too; None: unlimited.
    pub per_peer: Option<Rate>,
    /// Whether the bootstrap admin token skips both limits (for a first bulk import).
    pub exempt_bootstrap: bool,
}

/// Keyed limiters forget idle keys once they hold this many, so a flood of new peers or
/// credentials cannot grow memory without bound.
const SHRINK_AT: usize = 10_000;

struct Limiter<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    fn new(rate: Rate) -> Self {
        let quota = Quota::per_second(rate.per_second).allow_burst(rate.burst);
        Self {
            limiter: RateLimiter::keyed(quota),
        }
    }

    fn check(&self, key: &K) -> Result<(), Duration> {
        if self.limiter.len() > SHRINK_AT {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

pub struct RateLimits {
    per_token: Option<Limiter<String>>,
    per_peer: Option<Limiter<IpAddr>>,
    exempt_bootstrap: bool,
    /// Refusals so far, for the metrics (`telemetry::metrics`).
    refused_peer: AtomicU64,
    refused_token: AtomicU64,
}

/// How many requests each limit has refused since the server started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Refusals {
    pub peer: u64,
    pub token: u64,
}

impl RateLimits {
    pub fn new(settings: RateLimitSettings) -> Self {
        Self {
            per_token: settings.per_token.map(Limiter::new),
            per_peer: settings.per_peer.map(Limiter::new),
            exempt_bootstrap: settings.exempt_bootstrap,
            refused_peer: AtomicU64::new(0),
            refused_token: AtomicU64::new(0),
        }
    }

    pub fn refusals(&self) -> Refusals {
        Refusals {
            peer: self.refused_peer.load(Ordering::Relaxed),
            token: self.refused_token.load(Ordering::Relaxed),
        }
    }

    pub fn exempts_bootstrap(&self) -> bool {
        self.exempt_bootstrap
    }

    /// Ok, or how long the peer must wait.
    pub fn check_peer(&self, peer: Option<IpAddr>) -> Result<(), Duration> {
        match (&self.per_peer, peer) {
            (Some(limiter), Some(peer)) => limiter
                .check(&peer_key(peer))
                .inspect_err(|_| _ = self.refused_peer.fetch_add(1, Ordering::Relaxed)),
            _ => Ok(()),
        }
    }

    /// Ok, or how long the credential must wait.
    pub fn check_token(&self, subject: &str) -> Result<(), Duration> {
        match &self.per_token {
            Some(limiter) => limiter
                .check(&subject.to_owned())
                .inspect_err(|_| _ = self.refused_token.fetch_add(1, Ordering::Relaxed)),
            None => Ok(()),
        }
    }
}

/// The bucket a peer address draws from: an IPv4 address (also when it arrives IPv4-mapped on
/// an IPv6 socket), or the /64 an IPv6 address belongs to.
fn peer_key(peer: IpAddr) -> IpAddr {
    match peer.to_canonical() {
        IpAddr::V6(address) => {
            let [a, b, c, d, ..] = address.segments();
            IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// A wait as the whole seconds of a `retry-after`, rounded up (a client that waits exactly this
/// long gets through), at least 1.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(per_second: u32, burst: u32) -> Option<Rate> {
        Some(Rate {
            per_second: NonZeroU32::new(per_second).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
        })
    }

    #[test]
    fn a_burst_passes_then_the_caller_waits_while_others_do_not() {
        let limits = RateLimits::new(RateLimitSettings {
            per_token: rate(1, 3),
            per_peer: None,
            exempt_bootstrap: false,
        });
        for _ in 0..3 {
            limits.check_token("token:a").unwrap();
        }
        let wait = limits.check_token("token:a").unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        limits.check_token("token:b").unwrap();
        limits.check_peer(Some([127, 0, 0, 1].into())).unwrap();
    }

    #[test]
    fn an_ipv6_peer_is_its_64_and_an_ipv4_peer_its_address() {
        let limits = RateLimits::new(RateLimitSettings {
            per_token: None,
            per_peer: rate(1, 2),
            exempt_bootstrap: false,
        });
        let peer = |text: &str| Some(text.parse::<IpAddr>().unwrap());
        // Rotating the interface id within one /64 draws on the same budget.
        limits.check_peer(peer("2001:db8:1:2::1")).unwrap();
        limits.check_peer(peer("2001:db8:1:2:ffff:1:2:3")).unwrap();
        limits.check_peer(peer("2001:db8:1:2:abcd::9")).unwrap_err();
        // The next /64 has its own.
        limits.check_peer(peer("2001:db8:1:3::1")).unwrap();
        // IPv4: per address, the same whether it arrives plain or IPv4-mapped.
        limits.check_peer(peer("192.0.2.1")).unwrap();
        limits.check_peer(peer("::ffff:192.0.2.1")).unwrap();
        limits.check_peer(peer("192.0.2.1")).unwrap_err();
        limits.check_peer(peer("192.0.2.2")).unwrap();
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_secs(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1001)), 2);
    }
}
