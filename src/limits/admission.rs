//! Counting open connections, in total and per peer IP address: an accepted connection over
//! either cap is closed at once, so that one client's idle sockets never lock out another.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The open connections of one server.
#[derive(Debug)]
pub struct Admission {
    counts: Arc<Mutex<Counts>>,
    max_total: usize,
    max_per_peer: usize,
    log: RefusalLog,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_peer: HashMap<IpAddr, usize>,
}

/// Which cap a refused connection hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    Total,
    PerPeer,
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Permit {
    counts: Arc<Mutex<Counts>>,
    peer: IpAddr,
}

impl Admission {
    pub fn new(max_total: usize, max_per_peer: usize) -> Self {
        Self {
            counts: Arc::default(),
            max_total,
            max_per_peer,
            log: RefusalLog::default(),
        }
    }

    /// Admits a connection from `peer`, or says which cap it is over (and logs that, at most
    /// once a second: a flood of refusals is the client's problem, not an error of ours).
    pub fn admit(&mut self, peer: IpAddr) -> Result<Permit, Refusal> {
        // An IPv4 client reached over an IPv6 listener is the same client.
        let peer = peer.to_canonical();
        let refusal = {
            let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
            let of_peer = counts.per_peer.get(&peer).copied().unwrap_or(0);
            if counts.total >= self.max_total {
                Some(Refusal::Total)
            } else if of_peer >= self.max_per_peer {
                Some(Refusal::PerPeer)
            } else {
                counts.total += 1;
                counts.per_peer.insert(peer, of_peer + 1);
                None
            }
        };
        match refusal {
            None => Ok(Permit {
                counts: self.counts.clone(),
                peer,
            }),
            Some(refusal) => {
                self.log
                    .refused(peer, refusal, self.max_total, self.max_per_peer);
                Err(refusal)
            }
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.total -= 1;
        if let Some(of_peer) = counts.per_peer.get_mut(&self.peer) {
            *of_peer -= 1;
            if *of_peer == 0 {
                counts.per_peer.remove(&self.peer);
            }
        }
    }
}

/// Logs refusals at debug level, at most once per [`RefusalLog::INTERVAL`], with the number of
/// refusals since the last line.
#[derive(Debug, Default)]
struct RefusalLog {
    last: Option<Instant>,
    unlogged: u64,
}

impl RefusalLog {
    const INTERVAL: Duration = Duration::from_secs(1);

    fn refused(&mut self, peer: IpAddr, refusal: Refusal, max_total: usize, max_per_peer: usize) {
        self.unlogged += 1;
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < Self::INTERVAL)
        {
            return;
        }
        match refusal {
            Refusal::Total => tracing::debug!(
                %peer,
                refused = self.unlogged,
                "connection closed: the server holds --max-connections ({max_total})"
            ),
            Refusal::PerPeer => tracing::debug!(
                %peer,
                refused = self.unlogged,
                "connection closed: the peer holds --max-connections-per-peer ({max_per_peer})"
            ),
        }
        self.last = Some(now);
        self.unlogged = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_count_open_connections_and_free_them_on_drop() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let mut admission = Admission::new(3, 2);
        let first = admission.admit(a).unwrap();
        let _second = admission.admit(mapped).unwrap();
        assert_eq!(admission.admit(a).unwrap_err(), Refusal::PerPeer);
        let _third = admission.admit(b).unwrap();
        assert_eq!(admission.admit(b).unwrap_err(), Refusal::Total);
        drop(first);
        let _fourth = admission.admit(a).unwrap();
        assert_eq!(admission.admit(a).unwrap_err(), Refusal::Total);
    }
}
