//! One bound on password hashing for the whole server. Each argon2 hash or verification takes
//! a core for tens of milliseconds and 19 MiB (up to 64 MiB for an imported hash at the
//! ceiling): 190 concurrent SetPassword calls once took the server to 3.6 GiB. So hashing runs
//! on `max_concurrent` threads of its own, at most `queue` more jobs wait for one, and any
//! beyond that are refused at once with ResourceExhausted instead of piling up.
//!
//! Threads of their own, each keeping its argon2 memory from one job to the next: allocating
//! and freeing a fresh 19 MiB buffer per hash made the allocator hold on to ever more of them
//! (see [`password::Memory`]). So the memory of hashing is at most `max_concurrent` buffers
//! (19 MiB each for our hashes, up to 64 MiB after one at the ceiling).
//! A job holds its place until it has run, so a request cancelled by its deadline does not make
//! room while its hash still runs; a job whose request is gone before it starts is skipped.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};

use tokio::sync::{Semaphore, oneshot};

use crate::domain::password::{self, Memory};
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
/// one `Hashing` (clones share the bound and the threads; the threads end with the last clone).
#[derive(Clone, Debug)]
pub struct Hashing {
    limits: HashingLimits,
    /// Jobs admitted: running plus waiting.
    admitted: Arc<Semaphore>,
    jobs: Sender<Job>,
}

type Job = Box<dyn FnOnce(&mut Memory) + Send>;

impl Hashing {
    pub fn new(limits: HashingLimits) -> std::io::Result<Self> {
        let (jobs, waiting) = std::sync::mpsc::channel::<Job>();
        let waiting = Arc::new(Mutex::new(waiting));
        for i in 0..limits.max_concurrent {
            let waiting = waiting.clone();
            std::thread::Builder::new()
                .name(format!("password-hash-{i}"))
                .spawn(move || work(&waiting))?;
        }
        Ok(Self {
            limits,
            admitted: Arc::new(Semaphore::new(limits.max_concurrent + limits.queue)),
            jobs,
        })
    }

    /// Hashes a new password with our own parameters.
    pub async fn hash(&self, plain: String) -> Result<String> {
        self.run(move |memory| password::hash_in(memory, &plain))
            .await?
            .map_err(|e| internal(format!("password hash: {e}")))
    }

    /// Whether `plain` matches `stored` (see [`password::verify`]).
    pub async fn verify(&self, stored: String, plain: String) -> Result<bool> {
        self.run(move |memory| password::verify_in(memory, &stored, &plain))
            .await
    }

    /// Runs `job` on a hashing thread; ResourceExhausted at once when the queue is full.
    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> Result<T> {
        let admitted = self.admitted.clone().try_acquire_owned().map_err(|_| {
            Error::ResourceExhausted(format!(
                "password hashing is busy: {} run and {} wait already \
                 (--max-concurrent-password-hashes, --password-hash-queue); retry later",
                self.limits.max_concurrent, self.limits.queue
            ))
        })?;
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |memory| {
            let _admitted = admitted;
            if !answer.is_closed() {
                let _ = answer.send(job(memory));
            }
        });
        self.jobs
            .send(job)
            .map_err(|_| internal("password hashing has stopped".into()))?;
        answered
            .await
            .map_err(|_| internal("password hashing failed".into()))
    }
}

/// A hashing thread: runs jobs until the last `Hashing` is dropped.
fn work(waiting: &Mutex<Receiver<Job>>) {
    let mut memory = Memory::default();
    loop {
        // The lock is held while taking a job, not while running it.
        let job = match waiting.lock() {
            Ok(waiting) => waiting.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        // A job that panics fails its request (its answer is dropped), not the thread.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut memory)));
    }
}

fn internal(message: String) -> Error {
    Error::Internal(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn beyond_the_queue_is_refused_at_once() {
        let hashing = Hashing::new(HashingLimits {
            max_concurrent: 1,
            queue: 1,
        })
        .unwrap();
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let running = tokio::spawn({
            let hashing = hashing.clone();
            async move { hashing.run(move |_| hold.recv().ok()).await }
        });
        let waiting = tokio::spawn({
            let hashing = hashing.clone();
            async move { hashing.run(|_| 2).await }
        });
        while hashing.admitted.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let refused = hashing.run(|_| 3).await.unwrap_err();
        assert!(matches!(refused, Error::ResourceExhausted(_)), "{refused}");
        release.send(()).unwrap();
        assert_eq!(running.await.unwrap().unwrap(), Some(()));
        assert_eq!(waiting.await.unwrap().unwrap(), 2);
        assert_eq!(hashing.run(|_| 4).await.unwrap(), 4);
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
