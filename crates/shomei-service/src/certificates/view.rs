//! Is this server's revocation view current? The watch confirms it each
//! time it reads the revocation log; a server that cannot confirm it within
//! `revocation_view_max_lag_seconds` (its database unreachable, the watch
//! stuck) fails closed: new certificate-method logins and renewals are
//! refused, OCSP answers `tryLater`, `/readyz` fails. It recovers by itself
//! at the watch's next successful read.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::{Result, ServiceError, Shomei};

pub(crate) struct RevocationView {
    base: Instant,
    /// Milliseconds after `base` of the last confirmation.
    confirmed: AtomicU64,
    /// Only a server whose watch runs enforces freshness (an operator
    /// command serves nothing).
    watched: AtomicBool,
}

impl Default for RevocationView {
    fn default() -> Self {
        Self {
            base: Instant::now(),
            confirmed: AtomicU64::new(0),
            watched: AtomicBool::new(false),
        }
    }
}

impl RevocationView {
    pub(crate) fn confirm(&self) {
        self.confirm_at(Instant::now());
    }

    fn confirm_at(&self, now: Instant) {
        let since = now.saturating_duration_since(self.base);
        let ms = u64::try_from(since.as_millis()).unwrap_or(u64::MAX);
        self.confirmed.fetch_max(ms, Ordering::Relaxed);
    }

    pub(crate) fn watching(&self) {
        self.watched.store(true, Ordering::Relaxed);
    }

    /// Time from the last confirmation to `now`.
    fn lag_at(&self, now: Instant) -> Duration {
        let last = Duration::from_millis(self.confirmed.load(Ordering::Relaxed));
        now.saturating_duration_since(self.base)
            .saturating_sub(last)
    }

    /// Why the view is not current, if it is not (`max`: the bound).
    pub(crate) fn problem(&self, max: Duration) -> Option<String> {
        self.problem_at(Instant::now(), max)
    }

    fn problem_at(&self, now: Instant, max: Duration) -> Option<String> {
        let lag = self.lag_at(now);
        (self.watched.load(Ordering::Relaxed) && lag > max).then(|| {
            format!(
                "revocation view last confirmed {:.1} s ago (bound {} s): the revocation log cannot be read",
                lag.as_secs_f64(),
                max.as_secs()
            )
        })
    }
}

impl Shomei {
    fn view_bound(&self) -> Duration {
        Duration::from_secs(self.settings.revocation_view_max_lag_seconds)
    }

    /// `None` when the revocation view is current, else why not (English,
    /// for `/readyz` and the logs).
    pub(crate) fn revocation_view_problem(&self) -> Option<String> {
        self.view.problem(self.view_bound())
    }

    /// Fails with `ViewStale` unless the revocation view is current.
    pub(crate) fn require_current_view(&self) -> Result<()> {
        match self.revocation_view_problem() {
            None => Ok(()),
            Some(why) => {
                tracing::warn!(%why, "refusing what depends on the revocation view");
                Err(ServiceError::ViewStale(why))
            }
        }
    }

    /// Is the server ready for a load balancer: database reachable and the
    /// revocation view current? `Err` says why not.
    pub async fn readiness(&self) -> std::result::Result<(), String> {
        // The view first (memory only), then the database, waited for at
        // most two seconds: a load balancer's check gets its answer while
        // the database is away, instead of hanging on the pool.
        if let Some(why) = self.revocation_view_problem() {
            return Err(why);
        }
        match tokio::time::timeout(PING_WAIT, self.store.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("database unreachable: {e}")),
            Err(_) => Err(format!(
                "database unreachable: no answer within {} s",
                PING_WAIT.as_secs()
            )),
        }
    }
}

/// How long `/readyz` waits for the database.
const PING_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use super::*;

    /// On the view's own instants, not the wall clock: the answer cannot
    /// depend on how long the test thread waits to be scheduled.
    #[test]
    fn a_watched_view_goes_stale_past_its_bound_and_recovers_when_confirmed() {
        let v = RevocationView::default();
        let t0 = v.base;
        let s = Duration::from_secs;
        let bound = s(10);
        v.confirm_at(t0 + s(1));
        assert_eq!(
            v.problem_at(t0 + s(3600), bound),
            None,
            "not watched: never stale"
        );
        v.watching();
        assert_eq!(
            v.problem_at(t0 + s(1) + bound, bound),
            None,
            "at its bound: current"
        );
        assert_eq!(
            v.problem_at(t0 + s(1) + bound + Duration::from_millis(1), bound)
                .as_deref(),
            Some(
                "revocation view last confirmed 10.0 s ago (bound 10 s): the revocation log cannot be read"
            ),
            "1 ms past its bound"
        );
        assert_eq!(
            v.problem_at(t0 + s(31), bound).as_deref(),
            Some(
                "revocation view last confirmed 30.0 s ago (bound 10 s): the revocation log cannot be read"
            )
        );
        assert_eq!(
            v.problem_at(t0 + s(31), s(60)),
            None,
            "within a wider bound"
        );
        v.confirm_at(t0 + s(30));
        assert_eq!(v.problem_at(t0 + s(31), bound), None, "confirmed again");
        // A confirmation that arrives late with an older instant does not
        // move the view back.
        v.confirm_at(t0 + s(2));
        assert_eq!(v.lag_at(t0 + s(35)), s(5));
        assert_eq!(v.problem_at(t0 + s(35), bound), None);
        assert!(
            v.problem_at(t0 + s(41), bound).is_some(),
            "stale again past the bound"
        );
    }

    /// The wall-clock entry points are the same rule at `Instant::now()`:
    /// a view last confirmed a minute ago is stale at a 10 s bound, current
    /// at a ten-minute one, and current again once confirmed now.
    #[test]
    fn the_wall_clock_entry_points_read_now() {
        let minute = Duration::from_secs(60);
        let v = RevocationView {
            base: Instant::now()
                .checked_sub(minute)
                .expect("a minute of uptime"),
            ..RevocationView::default()
        };
        v.watching();
        let why = v.problem(Duration::from_secs(10)).expect("a minute old");
        assert!(
            why.starts_with("revocation view last confirmed 6")
                && why.ends_with("(bound 10 s): the revocation log cannot be read"),
            "{why}"
        );
        assert_eq!(v.problem(10 * minute), None);
        v.confirm();
        assert_eq!(v.problem(Duration::from_secs(10)), None, "confirmed now");
    }
}
