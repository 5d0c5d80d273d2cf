//! One bound on password hashing for the whole server. Each argon2 hash or verification takes
//! a core for tens of milliseconds and 19 MiB (up to 64 MiB for an imported hash at the
//! ceiling): 190 concurrent SetPassword calls once took the server to 3.6 GiB. So at most
//! `max_concurrent` run at a time, at most `queue` more wait for a turn, and any beyond that are
//! refused at once with ResourceExhausted instead of piling up.
//!
//! A turn is held by the blocking job itself, not by the request: a request cancelled by its
//! deadline stops waiting, but a hash already running keeps its turn until it finishes, so the
//! bound counts the work that really runs.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::domain::password;
use crate::error::{Error, Result};

/// How much hashing may run and wait (flags `--max-concurrent-password-hashes`,
/// `--password-hash-queue`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashingLimits {
    /// Hashes and verifications that run at the same time (at least 1).
    pub max_concurrent: usize,
    /// Further ones that may wait for a turn; beyond them, ResourceExhausted.
    pub queue: usize,
}

/// Waiting room per running hash by default: a short burst waits, a flood is refused.
pub const DEFAULT_QUEUE_PER_HASH: usize = 4;

impl HashingLimits {
    /// One hash per core, and a short queue.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self {
            max_concurrent: cores,
            queue: cores * DEFAULT_QUEUE_PER_HASH,
        }
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.max_concurrent >= 1,
            "--max-concurrent-password-hashes must be at least 1"
        );
        anyhow::ensure!(
            self.max_concurrent <= Semaphore::MAX_PERMITS
                && self.queue <= Semaphore::MAX_PERMITS - self.max_concurrent,
            "--max-concurrent-password-hashes and --password-hash-queue are too large"
        );
        Ok(())
    }
}

impl Default for HashingLimits {
    fn default() -> Self {
        Self::for_this_machine()
    }
}

/// The server's password hashing: every hash and verification of every service goes through
/// one `Hashing` (clones share the bound).
#[derive(Clone, Debug)]
pub struct Hashing {
    limits: HashingLimits,
    /// Requests admitted: running plus waiting.
    admitted: Arc<Semaphore>,
    /// Turns to run.
    running: Arc<Semaphore>,
}

impl Hashing {
    pub fn new(limits: HashingLimits) -> Self {
        Self {
            limits,
            admitted: Arc::new(Semaphore::new(limits.max_concurrent + limits.queue)),
            running: Arc::new(Semaphore::new(limits.max_concurrent)),
        }
    }

    /// Hashes a new password with our own parameters.
    pub async fn hash(&self, plain: String) -> Result<String> {
        self.run(move || password::hash(&plain))
            .await?
            .map_err(|e| Error::Database(sea_orm::DbErr::Custom(format!("password hash: {e}"))))
    }

    /// Whether `plain` matches `stored` (see [`password::verify`]).
    pub async fn verify(&self, stored: String, plain: String) -> Result<bool> {
        self.run(move || password::verify(&stored, &plain)).await
    }

    /// Runs `job` on a blocking thread once it has a turn; ResourceExhausted at once when the
    /// queue is full.
    async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let admitted = self.admitted.clone().try_acquire_owned().map_err(|_| {
            Error::ResourceExhausted(format!(
                "password hashing is busy: {} run and {} wait already \
                 (--max-concurrent-password-hashes, --password-hash-queue); retry later",
                self.limits.max_concurrent, self.limits.queue
            ))
        })?;
        let turn = acquire(&self.running).await?;
        tokio::task::spawn_blocking(move || {
            let _held = (admitted, turn);
            job()
        })
        .await
        .map_err(|e| Error::Database(sea_orm::DbErr::Custom(format!("password hashing: {e}"))))
    }
}

async fn acquire(semaphore: &Arc<Semaphore>) -> Result<OwnedSemaphorePermit> {
    semaphore
        .clone()
        .acquire_owned()
        .await
        // The semaphores are never closed.
        .map_err(|e| Error::Database(sea_orm::DbErr::Custom(format!("password hashing: {e}"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn beyond_the_queue_is_refused_at_once() {
        let hashing = Hashing::new(HashingLimits {
            max_concurrent: 1,
            queue: 1,
        });
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let running = tokio::spawn({
            let hashing = hashing.clone();
            async move { hashing.run(move || hold.recv().ok()).await }
        });
        let waiting = tokio::spawn({
            let hashing = hashing.clone();
            async move { hashing.run(|| 2).await }
        });
        while hashing.admitted.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let refused = hashing.run(|| 3).await.unwrap_err();
        assert!(matches!(refused, Error::ResourceExhausted(_)), "{refused}");
        release.send(()).unwrap();
        assert_eq!(running.await.unwrap().unwrap(), Some(()));
        assert_eq!(waiting.await.unwrap().unwrap(), 2);
        assert_eq!(hashing.run(|| 4).await.unwrap(), 4);
    }

    #[test]
    fn limits_are_validated() {
        HashingLimits::default().validate().unwrap();
        let none = HashingLimits {
            max_concurrent: 0,
            queue: 4,
        };
        assert!(none.validate().is_err());
    }
}
