//! The clock every rule reads, so that tests can move time (lockout expiry,
//! idle timeout, certificate expiry) without sleeping.

use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

/// Where the service reads the time: the system's, or a test's.
pub trait Clock: Send + Sync + 'static {
    /// The current time (UTC).
    fn now(&self) -> OffsetDateTime;
}

/// The real time.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// Real time plus an offset that a test can advance.
#[derive(Default)]
pub struct ManualClock {
    offset: Mutex<Duration>,
}

impl ManualClock {
    /// Moves this clock's time forward by `by`.
    pub fn advance(&self, by: Duration) {
        if let Ok(mut o) = self.offset.lock() {
            *o += by;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.offset.lock().map(|o| *o).unwrap_or_default()
    }
}
