//! Failed logins counted per client address, against password spraying (one
//! password tried on many login IDs stays under every user's lockout). Once
//! an address has failed `limit` times within a window, its login and
//! enrollment attempts are refused for the rest of the window without
//! checking any password — so they cost no Argon2 work and count against no
//! user. Successes do not reset the count (an attacker could interleave
//! logins of their own account).

use std::collections::HashMap;
use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

/// Addresses tracked at most; beyond this, entries whose window is over go.
const MAX_ADDRESSES: usize = 100_000;

struct Entry {
    window_start: OffsetDateTime,
    failures: u32,
    blocked_until: Option<OffsetDateTime>,
}

#[derive(Default)]
pub(crate) struct AddressThrottle {
    map: Mutex<HashMap<String, Entry>>,
}

impl AddressThrottle {
    /// Is `addr` refused now?
    pub(crate) fn blocked(&self, addr: &str, now: OffsetDateTime) -> bool {
        if addr.is_empty() {
            return false;
        }
        let Ok(m) = self.map.lock() else {
            return false;
        };
        m.get(addr)
            .and_then(|e| e.blocked_until)
            .is_some_and(|until| now < until)
    }

    /// Counts a failure from `addr`; `Some(failures)` when this one starts
    /// a block (`limit` 0: never).
    pub(crate) fn failure(
        &self,
        addr: &str,
        now: OffsetDateTime,
        limit: u32,
        window: Duration,
    ) -> Option<u32> {
        if addr.is_empty() || limit == 0 {
            return None;
        }
        let mut m = self.map.lock().ok()?;
        if m.len() >= MAX_ADDRESSES {
            m.retain(|_, e| {
                now < e.window_start + window || e.blocked_until.is_some_and(|u| now < u)
            });
        }
        let e = m.entry(addr.to_owned()).or_insert(Entry {
            window_start: now,
            failures: 0,
            blocked_until: None,
        });
        if now >= e.window_start + window && e.blocked_until.is_none_or(|u| now >= u) {
            *e = Entry {
                window_start: now,
                failures: 0,
                blocked_until: None,
            };
        }
        e.failures += 1;
        if e.failures == limit {
            e.blocked_until = Some(now + window);
            return Some(e.failures);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn an_address_is_blocked_at_the_limit_for_a_window_then_starts_over() {
        let t = AddressThrottle::default();
        let w = Duration::minutes(10);
        let t0 = datetime!(2026-11-25 09:00 UTC);
        for i in 1..5 {
            assert_eq!(t.failure("192.0.2.1", t0, 5, w), None, "failure {i}");
        }
        assert!(!t.blocked("192.0.2.1", t0));
        assert_eq!(t.failure("192.0.2.1", t0, 5, w), Some(5));
        assert!(t.blocked("192.0.2.1", t0 + Duration::minutes(9)));
        assert!(!t.blocked("192.0.2.2", t0), "another address is not");
        assert!(
            !t.blocked("192.0.2.1", t0 + w),
            "the block ends with its window"
        );
        assert_eq!(
            t.failure("192.0.2.1", t0 + w, 5, w),
            None,
            "counting starts over"
        );
        // Old failures leave the count when their window is over.
        for _ in 1..5 {
            t.failure("192.0.2.3", t0, 5, w);
        }
        assert_eq!(t.failure("192.0.2.3", t0 + w, 5, w), None);
        // Off, and unknown addresses, never block.
        for _ in 0..10 {
            assert_eq!(t.failure("192.0.2.4", t0, 0, w), None);
            assert_eq!(t.failure("", t0, 1, w), None);
        }
        assert!(!t.blocked("", t0));
    }
}
