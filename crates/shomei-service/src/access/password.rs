//! Argon2id hashing of login and confirmation passwords on a fixed pool of
//! workers with a bounded queue.
//!
//! Each check costs 19 MiB and tens of milliseconds: left to tokio's blocking
//! pool (512 threads), a burst of logins grows the process without bound. Here
//! a fixed number of threads each own their Argon2 memory and reuse it, so the
//! memory is `workers × 19 MiB` whatever arrives; a request first takes a
//! place (a worker or a queue slot) and, when there is none, is refused at
//! once as busy — before any database write or hashing.
//!
//! A few places are reserved for returning customers (a login that brings a
//! valid device cookie for its login ID, see `access::device`): a flood of
//! other logins cannot take them, and their checks are hashed before any
//! other waiting check. They also have a worker of their own, and the other
//! workers run at a lower scheduling priority (`hash_workers_nice`), so a
//! returning customer's check neither waits for the checks already being
//! hashed nor shares the CPU evenly with them: a flood of other logins costs
//! it little more than the requests the server answers meanwhile.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::{Result, ServiceError};

/// The largest Argon2 memory a stored hash may ask for (64 MiB); a hash that
/// asks more does not verify rather than make a worker grow.
const MAX_BLOCKS: usize = 64 * 1024;

enum Work {
    Verify {
        stored: String,
        password: String,
    },
    Hash {
        password: String,
    },
    /// Keeps the worker, once it says so, until released (the tests' way to
    /// hold one).
    #[cfg(test)]
    Hold {
        started: std::sync::mpsc::Sender<()>,
        release: std::sync::mpsc::Receiver<()>,
    },
}

enum Answer {
    Verified(bool),
    Hashed(String),
}

struct Job {
    work: Work,
    reply: oneshot::Sender<Result<Answer>>,
}

/// The checks waiting for a worker: those of returning customers first.
#[derive(Default)]
struct Waiting {
    first: VecDeque<Job>,
    rest: VecDeque<Job>,
    closed: bool,
}

#[derive(Default)]
struct Queue {
    waiting: Mutex<Waiting>,
    /// A job came (for the general workers).
    ready: Condvar,
    /// A returning customer's job came (for their worker).
    first_ready: Condvar,
}

/// Which jobs a worker takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Takes {
    /// Returning customers' first, then the rest.
    Any,
    /// Returning customers' only.
    FirstOnly,
}

impl Queue {
    fn push(&self, job: Job, first: bool) -> std::result::Result<(), Job> {
        let mut w = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        if w.closed {
            return Err(job);
        }
        if first {
            w.first.push_back(job);
        } else {
            w.rest.push_back(job);
        }
        drop(w);
        if first {
            self.first_ready.notify_one();
        }
        self.ready.notify_one();
        Ok(())
    }

    /// The next job this worker takes, or `None` once the pool is closed.
    fn pop(&self, takes: Takes) -> Option<Job> {
        let mut w = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let next = match takes {
                Takes::Any => w.first.pop_front().or_else(|| w.rest.pop_front()),
                Takes::FirstOnly => w.first.pop_front(),
            };
            if let Some(j) = next {
                return Some(j);
            }
            if w.closed {
                return None;
            }
            let ready = match takes {
                Takes::Any => &self.ready,
                Takes::FirstOnly => &self.first_ready,
            };
            w = ready.wait(w).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn close(&self) {
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .closed = true;
        self.ready.notify_all();
        self.first_ready.notify_all();
    }
}

/// Closes the queue when the last handle of the pool goes, so that its
/// workers end (and give their Argon2 memory back).
struct Closer(Arc<Queue>);

impl Drop for Closer {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The hashing pool. Cloning shares it.
#[derive(Clone)]
pub(crate) struct Hasher {
    jobs: Arc<Queue>,
    _closer: Arc<Closer>,
    places: Arc<Semaphore>,
    /// Places only returning customers' logins may take.
    reserved: Arc<Semaphore>,
    workers: usize,
    capacity: usize,
    reserved_capacity: usize,
    done: Arc<AtomicU64>,
}

/// A place on the pool, taken before anything else of a password check is
/// done; a check that holds one is never refused as busy.
pub(crate) struct Place {
    _permit: OwnedSemaphorePermit,
    /// A returning customer's: hashed before the other waiting checks.
    first: bool,
}

impl Hasher {
    /// `workers` threads (0: one per core) running `nice` steps below the
    /// process's priority, `queue` waiting places, and `reserved` more places
    /// for returning customers, with a worker of their own (at the
    /// process's priority) when there are any.
    pub(crate) fn new(workers: usize, queue: usize, reserved: usize, nice: i32) -> Self {
        let workers = if workers == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            workers
        };
        let jobs = Arc::new(Queue::default());
        let done = Arc::new(AtomicU64::new(0));
        let returning = (reserved > 0).then_some((Takes::FirstOnly, 0, "argon2-first".to_owned()));
        let general = (0..workers).map(|i| (Takes::Any, nice, format!("argon2-{i}")));
        for (takes, nice, name) in general.chain(returning) {
            let jobs = jobs.clone();
            let done = done.clone();
            let spawned = std::thread::Builder::new().name(name).spawn(move || {
                lower_priority(nice);
                worker(&jobs, &done, takes)
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password-hashing worker");
            }
        }
        Self {
            _closer: Arc::new(Closer(jobs.clone())),
            jobs,
            places: Arc::new(Semaphore::new(workers + queue)),
            reserved: Arc::new(Semaphore::new(reserved)),
            workers,
            capacity: workers + queue,
            reserved_capacity: reserved,
            done,
        }
    }

    /// A place on the pool, or `Busy` at once when every worker and queue
    /// slot is taken.
    pub(crate) fn place(&self) -> Result<Place> {
        match self.places.clone().try_acquire_owned() {
            Ok(p) => Ok(Place {
                _permit: p,
                first: false,
            }),
            Err(_) => Err(ServiceError::Busy),
        }
    }

    /// A returning customer's place: a reserved one, else one of the rest;
    /// `Busy` when none is free. Its check is hashed first.
    pub(crate) fn returning_place(&self) -> Result<Place> {
        let permit = self
            .reserved
            .clone()
            .try_acquire_owned()
            .or_else(|_| self.places.clone().try_acquire_owned())
            .map_err(|_| ServiceError::Busy)?;
        Ok(Place {
            _permit: permit,
            first: true,
        })
    }

    /// Does `password` match the PHC string `stored`? False for a wrong
    /// password and for a stored hash that does not parse.
    pub(crate) async fn verify(&self, place: &Place, stored: &str, password: &str) -> Result<bool> {
        let work = Work::Verify {
            stored: stored.to_owned(),
            password: password.to_owned(),
        };
        match self.run(place, work).await? {
            Answer::Verified(ok) => Ok(ok),
            Answer::Hashed(_) => Err(ServiceError::Invariant("hash answer to a verify")),
        }
    }

    /// A new salted Argon2id hash (PHC string) of `password`.
    pub(crate) async fn hash(&self, password: &str) -> Result<String> {
        let place = self.place()?;
        self.hash_in(&place, password).await
    }

    /// As `hash`, on a place already taken.
    pub(crate) async fn hash_in(&self, place: &Place, password: &str) -> Result<String> {
        let work = Work::Hash {
            password: password.to_owned(),
        };
        match self.run(place, work).await? {
            Answer::Hashed(h) => Ok(h),
            Answer::Verified(_) => Err(ServiceError::Invariant("verify answer to a hash")),
        }
    }

    async fn run(&self, place: &Place, work: Work) -> Result<Answer> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .push(Job { work, reply }, place.first)
            .map_err(|_| ServiceError::Password("the hashing workers are gone".into()))?;
        answer
            .await
            .map_err(|_| ServiceError::Password("a hashing worker stopped".into()))?
    }

    /// Workers, places (workers + queue), places taken now and hashes
    /// computed, for the metrics.
    pub(crate) fn figures(&self) -> HasherFigures {
        HasherFigures {
            workers: self.workers,
            capacity: self.capacity,
            in_use: self.capacity - self.places.available_permits(),
            reserved: self.reserved_capacity,
            reserved_in_use: self.reserved_capacity - self.reserved.available_permits(),
            done: self.done.load(Ordering::Relaxed),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct HasherFigures {
    pub workers: usize,
    pub capacity: usize,
    pub in_use: usize,
    pub reserved: usize,
    pub reserved_in_use: usize,
    pub done: u64,
}

/// Lowers the calling thread's scheduling priority by `steps` (Linux
/// keeps a nice value per thread; an unprivileged thread may lower its own
/// priority, never raise it again).
fn lower_priority(steps: i32) {
    if steps <= 0 {
        return;
    }
    let me = rustix::thread::gettid();
    let now = rustix::process::getpriority_process(Some(me)).unwrap_or(0);
    if let Err(e) = rustix::process::setpriority_process(Some(me), (now + steps).min(19)) {
        tracing::warn!(error = %e, "cannot lower a password-hashing worker's priority");
    }
}

fn worker(jobs: &Queue, done: &AtomicU64, takes: Takes) {
    // This worker's Argon2 memory, reused by every check it makes.
    let mut blocks: Vec<Block> = Vec::new();
    if takes == Takes::FirstOnly {
        // Taken now, not at the first returning customer's check.
        let _ = memory(&mut blocks, &Params::default());
    }
    while let Some(job) = jobs.pop(takes) {
        let answer = match job.work {
            #[cfg(test)]
            Work::Hold { started, release } => {
                let _ = started.send(());
                let _ = release.recv();
                Ok(Answer::Verified(false))
            }
            Work::Verify { stored, password } => Ok(Answer::Verified(verify_with(
                &mut blocks,
                &stored,
                password.as_bytes(),
            ))),
            Work::Hash { password } => {
                hash_with(&mut blocks, password.as_bytes()).map(Answer::Hashed)
            }
        };
        done.fetch_add(1, Ordering::Relaxed);
        let _ = job.reply.send(answer);
    }
}

fn memory(blocks: &mut Vec<Block>, params: &Params) -> Option<()> {
    let n = params.block_count();
    if n > MAX_BLOCKS {
        return None;
    }
    if blocks.len() < n {
        blocks.resize(n, Block::default());
    }
    Some(())
}

fn verify_with(blocks: &mut Vec<Block>, stored: &str, password: &[u8]) -> bool {
    let Ok(h) = PasswordHash::new(stored) else {
        return false;
    };
    let (Ok(alg), Ok(params)) = (Algorithm::try_from(h.algorithm), Params::try_from(&h)) else {
        return false;
    };
    let version = h
        .version
        .and_then(|v| Version::try_from(v).ok())
        .unwrap_or_default();
    let (Some(salt), Some(expected)) = (h.salt, h.hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let expected = expected.as_bytes();
    if memory(blocks, &params).is_none() {
        return false;
    }
    let n = params.block_count();
    let mut out = vec![0u8; expected.len()];
    let ok = Argon2::new(alg, version, params)
        .hash_password_into_with_memory(password, salt, &mut out, &mut blocks[..n])
        .is_ok();
    ok && aws_lc_rs::constant_time::verify_slices_are_equal(&out, expected).is_ok()
}

fn hash_with(blocks: &mut Vec<Block>, password: &[u8]) -> Result<String> {
    let mut raw = [0u8; 16];
    rand::Rng::fill(&mut rand::rng(), &mut raw[..]);
    let salt = SaltString::encode_b64(&raw).map_err(|e| ServiceError::Password(e.to_string()))?;
    let params = Params::default();
    memory(blocks, &params).ok_or(ServiceError::Invariant("default Argon2 memory"))?;
    let n = params.block_count();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let mut salt_raw = [0u8; 16];
    let salt_bytes = salt
        .decode_b64(&mut salt_raw)
        .map_err(|e| ServiceError::Password(e.to_string()))?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password, salt_bytes, &mut out, &mut blocks[..n])
        .map_err(|e| ServiceError::Password(e.to_string()))?;
    let output = argon2::password_hash::Output::new(&out)
        .map_err(|e| ServiceError::Password(e.to_string()))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: (&params)
            .try_into()
            .map_err(|e: argon2::password_hash::Error| ServiceError::Password(e.to_string()))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

#[cfg(test)]
mod tests {
    use super::{Hasher, Job, Queue, Takes, Work};
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    use tokio::sync::oneshot;

    #[tokio::test]
    async fn hashes_are_argon2id_salted_and_verify() {
        let h = Hasher::new(2, 2, 0, 0);
        let a = h.hash("Shomei#Demo1").await.unwrap();
        let b = h.hash("Shomei#Demo1").await.unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b);
        let check = |s: &str, p: &str| {
            let h = h.clone();
            let (s, p) = (s.to_owned(), p.to_owned());
            async move { h.verify(&h.place().unwrap(), &s, &p).await.unwrap() }
        };
        assert!(check(&a, "Shomei#Demo1").await);
        assert!(!check(&a, "shomei#demo1").await);
        assert!(!check("garbage", "x").await);
        // The reference implementation reads our hashes, and we read its.
        let parsed = PasswordHash::new(&a).unwrap();
        assert!(
            argon2::Argon2::default()
                .verify_password(b"Shomei#Demo1", &parsed)
                .is_ok()
        );
        let theirs = {
            use argon2::password_hash::{PasswordHasher, SaltString};
            let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
            argon2::Argon2::default()
                .hash_password(b"pw", &salt)
                .unwrap()
                .to_string()
        };
        assert!(check(&theirs, "pw").await);
        assert!(!check(&theirs, "pW").await);
    }

    #[tokio::test]
    async fn beyond_its_workers_and_queue_the_pool_is_busy_at_once() {
        let h = Hasher::new(1, 1, 0, 10);
        let a = h.place().unwrap();
        let b = h.place().unwrap();
        assert!(matches!(h.place(), Err(crate::ServiceError::Busy)));
        assert_eq!(h.figures().in_use, 2);
        drop(a);
        let c = h.place().unwrap();
        drop((b, c));
        assert_eq!(h.figures().in_use, 0);
    }

    #[tokio::test]
    async fn a_returning_customer_gets_a_reserved_place_while_the_rest_is_full() {
        let h = Hasher::new(1, 2, 1, 0);
        // The rest is full: one check being hashed, two waiting.
        let rest: Vec<_> = (0..3).map(|_| h.place().unwrap()).collect();
        assert!(matches!(h.place(), Err(crate::ServiceError::Busy)));
        let mine = h.returning_place().expect("the reserved place");
        assert_eq!(h.figures().reserved_in_use, 1);
        assert_eq!(h.figures().in_use, 3);
        // A second returning customer finds the reserved place taken and
        // the rest full: busy like anyone.
        assert!(matches!(
            h.returning_place(),
            Err(crate::ServiceError::Busy)
        ));
        assert!(!h.verify(&mine, "garbage", "x").await.unwrap());
        drop(mine);
        assert_eq!(h.figures().reserved_in_use, 0);
        // With the reserved place free but none of the rest, other logins
        // stay busy; a returning customer takes one of the rest when its
        // share is used up.
        assert!(matches!(h.place(), Err(crate::ServiceError::Busy)));
        drop(rest);
        let a = h.returning_place().unwrap();
        let b = h.returning_place().unwrap();
        assert_eq!((h.figures().reserved_in_use, h.figures().in_use), (1, 1));
        drop((a, b));
    }

    #[test]
    fn returning_customers_checks_are_taken_before_those_already_waiting() {
        let q = Queue::default();
        let job = |password: &str| Job {
            work: Work::Hash {
                password: password.to_owned(),
            },
            reply: oneshot::channel().0,
        };
        let name = |j: Job| match j.work {
            Work::Hash { password } => password,
            _ => unreachable!(),
        };
        for p in ["rest1", "rest2"] {
            assert!(q.push(job(p), false).is_ok());
        }
        assert!(q.push(job("returning"), true).is_ok());
        assert!(q.push(job("rest3"), false).is_ok());
        let order: Vec<String> = (0..4).filter_map(|_| q.pop(Takes::Any)).map(name).collect();
        assert_eq!(order, ["returning", "rest1", "rest2", "rest3"]);
        q.close();
        assert!(q.pop(Takes::Any).is_none(), "closed: the workers end");
        assert!(q.pop(Takes::FirstOnly).is_none());
        assert!(q.push(job("late"), false).is_err());
    }

    #[tokio::test]
    async fn a_returning_customers_check_does_not_wait_for_a_held_worker() {
        let h = Hasher::new(1, 2, 1, 10);
        // The one general worker is held.
        let (started, has_started) = std::sync::mpsc::channel();
        let (release, held) = std::sync::mpsc::channel();
        let (reply, holding) = oneshot::channel();
        let hold = Job {
            work: Work::Hold {
                started,
                release: held,
            },
            reply,
        };
        assert!(h.jobs.push(hold, false).is_ok());
        has_started.recv().unwrap();
        // A returning customer's check is answered meanwhile, by its own
        // worker.
        let mine = h.returning_place().unwrap();
        let answered = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            h.verify(&mine, "garbage", "x"),
        );
        let answered = answered.await.expect("answered while the worker is held");
        assert!(!answered.unwrap());
        // The control: another check waits for the held worker.
        let theirs = h.place().unwrap();
        let waiting = {
            let h = h.clone();
            tokio::spawn(async move { h.verify(&theirs, "garbage", "x").await })
        };
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "behind the held worker");
        release.send(()).unwrap();
        assert!(!waiting.await.unwrap().unwrap());
        assert!(holding.await.is_ok());
    }
}
