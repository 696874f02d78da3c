//! Argon2id hashing of login and confirmation passwords on a fixed pool of
//! workers with a bounded queue.
//!
//! Each check costs 19 MiB and tens of milliseconds: left to tokio's blocking
//! pool (512 threads), a burst of logins grows the process without bound. Here
//! a fixed number of threads each own their Argon2 memory and reuse it, so the
//! memory is `workers × 19 MiB` whatever arrives; a request first takes a
//! place (a worker or a queue slot) and, when there is none, is refused at
//! once as busy — before any database write or hashing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::{Result, ServiceError};

/// The largest Argon2 memory a stored hash may ask for (64 MiB); a hash that
/// asks more does not verify rather than make a worker grow.
const MAX_BLOCKS: usize = 64 * 1024;

enum Work {
    Verify { stored: String, password: String },
    Hash { password: String },
}

enum Answer {
    Verified(bool),
    Hashed(String),
}

struct Job {
    work: Work,
    reply: oneshot::Sender<Result<Answer>>,
}

/// The hashing pool. Cloning shares it.
#[derive(Clone)]
pub(crate) struct Hasher {
    jobs: mpsc::Sender<Job>,
    places: Arc<Semaphore>,
    workers: usize,
    capacity: usize,
    done: Arc<AtomicU64>,
}

/// A place on the pool, taken before anything else of a password check is
/// done; a check that holds one is never refused as busy.
pub(crate) struct Place(#[allow(dead_code)] OwnedSemaphorePermit);

impl Hasher {
    /// `workers` threads (0: one per core) and `queue` waiting places.
    pub(crate) fn new(workers: usize, queue: usize) -> Self {
        let workers = if workers == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            workers
        };
        let (jobs, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let done = Arc::new(AtomicU64::new(0));
        for i in 0..workers {
            let rx = rx.clone();
            let done = done.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || worker(&rx, &done));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password-hashing worker");
            }
        }
        Self {
            jobs,
            places: Arc::new(Semaphore::new(workers + queue)),
            workers,
            capacity: workers + queue,
            done,
        }
    }

    /// A place on the pool, or `Busy` at once when every worker and queue
    /// slot is taken.
    pub(crate) fn place(&self) -> Result<Place> {
        match self.places.clone().try_acquire_owned() {
            Ok(p) => Ok(Place(p)),
            Err(_) => Err(ServiceError::Busy),
        }
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

    async fn run(&self, _place: &Place, work: Work) -> Result<Answer> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { work, reply })
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
            done: self.done.load(Ordering::Relaxed),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct HasherFigures {
    pub workers: usize,
    pub capacity: usize,
    pub in_use: usize,
    pub done: u64,
}

fn worker(rx: &Mutex<mpsc::Receiver<Job>>, done: &AtomicU64) {
    // This worker's Argon2 memory, reused by every check it makes.
    let mut blocks: Vec<Block> = Vec::new();
    loop {
        let job = {
            let Ok(rx) = rx.lock() else { return };
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let answer = match job.work {
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
    use super::Hasher;
    use argon2::password_hash::{PasswordHash, PasswordVerifier};

    #[tokio::test]
    async fn hashes_are_argon2id_salted_and_verify() {
        let h = Hasher::new(2, 2);
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
        let h = Hasher::new(1, 1);
        let a = h.place().unwrap();
        let b = h.place().unwrap();
        assert!(matches!(h.place(), Err(crate::ServiceError::Busy)));
        assert_eq!(h.figures().in_use, 2);
        drop(a);
        let c = h.place().unwrap();
        drop((b, c));
        assert_eq!(h.figures().in_use, 0);
    }
}
