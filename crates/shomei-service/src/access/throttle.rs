//! Login and enrollment attempts counted per client address, against
//! password spraying (one password tried on many login IDs stays under every
//! user's lockout).
//!
//! An attempt counts when it starts, before any password is checked, in the
//! database row of its address (so a burst of any size, on any number of
//! servers, gets at most `limit` checks); a success gives its place back, so
//! only failures and attempts still in flight fill the window. Once the
//! failures reach the limit the address is refused for the rest of the
//! window without checking any password. Successes never reset the count (an
//! attacker could interleave logins of their own account).
//!
//! The decisions are pure functions of the stored row; the login use case
//! loads and saves it inside its transactions.

use shomei_store::AddressAttempts;
use time::{Duration, OffsetDateTime};

/// The address-limit numbers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AddressLimit {
    /// 0: off.
    pub limit: u32,
    pub window: Duration,
}

/// What happens to an attempt from an address when it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// Counted; go on and check the password.
    Counted,
    /// Refused without a check: blocked, or the window is full of attempts.
    Refused,
}

/// A refusal to be written to 操作履歴 now, with how many refusals it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RefusalRow {
    pub refused: u32,
}

/// Refusals from one address are written at most this often (one row with
/// the number refused since), so that refusing is no way to flood 操作履歴.
pub(crate) const REFUSAL_ROW_EVERY: Duration = Duration::minutes(1);

fn fresh(now: OffsetDateTime) -> AddressAttempts {
    AddressAttempts {
        window_start: now,
        attempts: 0,
        blocked_until: None,
        refused_unrecorded: 0,
        last_row_at: None,
    }
}

impl AddressLimit {
    /// The row as it stands at `now`: a window that is over (and no block
    /// running) starts again, keeping what is still to be recorded.
    fn current(&self, row: Option<AddressAttempts>, now: OffsetDateTime) -> AddressAttempts {
        match row {
            Some(r)
                if now < r.window_start + self.window
                    || r.blocked_until.is_some_and(|u| now < u) =>
            {
                r
            }
            Some(r) => AddressAttempts {
                refused_unrecorded: r.refused_unrecorded,
                last_row_at: r.last_row_at,
                ..fresh(now)
            },
            None => fresh(now),
        }
    }

    /// Starts an attempt from the address whose row is `row`.
    pub(crate) fn start(
        &self,
        row: Option<AddressAttempts>,
        now: OffsetDateTime,
    ) -> (Start, AddressAttempts) {
        let mut r = self.current(row, now);
        if self.limit == 0 {
            return (Start::Counted, r);
        }
        let blocked = r.blocked_until.is_some_and(|u| now < u);
        if blocked || r.attempts >= self.limit {
            return (Start::Refused, r);
        }
        r.attempts += 1;
        (Start::Counted, r)
    }

    /// Ends a counted attempt: a success gives its place back; a failure
    /// that fills the window starts a block (`true`: write the row saying so).
    pub(crate) fn finish(
        &self,
        row: Option<AddressAttempts>,
        ok: bool,
        now: OffsetDateTime,
    ) -> (bool, AddressAttempts) {
        let mut r = self.current(row, now);
        if self.limit == 0 {
            return (false, r);
        }
        if ok {
            r.attempts = r.attempts.saturating_sub(1);
            return (false, r);
        }
        if r.attempts >= self.limit && r.blocked_until.is_none_or(|u| now >= u) {
            r.blocked_until = Some(now + self.window);
            return (true, r);
        }
        (false, r)
    }
}

impl AddressLimit {
    /// Counts a refusal from the address (nothing checked, no attempt
    /// counted); `Some` when its 操作履歴 row is due now.
    pub(crate) fn refuse(
        &self,
        row: Option<AddressAttempts>,
        now: OffsetDateTime,
    ) -> (Option<RefusalRow>, AddressAttempts) {
        let mut r = self.current(row, now);
        (refused(&mut r, now), r)
    }
}

/// Counts a refusal; `Some` when a row is due now.
pub(crate) fn refused(r: &mut AddressAttempts, now: OffsetDateTime) -> Option<RefusalRow> {
    r.refused_unrecorded = r.refused_unrecorded.saturating_add(1);
    due(r, now)
}

/// The row due for the refusals counted so far, if the last one is old enough.
pub(crate) fn due(r: &mut AddressAttempts, now: OffsetDateTime) -> Option<RefusalRow> {
    if r.refused_unrecorded == 0 || r.last_row_at.is_some_and(|t| now - t < REFUSAL_ROW_EVERY) {
        return None;
    }
    let row = RefusalRow {
        refused: r.refused_unrecorded,
    };
    r.refused_unrecorded = 0;
    r.last_row_at = Some(now);
    Some(row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-11-25 09:00 UTC);

    fn limit(n: u32) -> AddressLimit {
        AddressLimit {
            limit: n,
            window: Duration::minutes(10),
        }
    }

    #[test]
    fn attempts_count_when_they_start_so_a_burst_gets_at_most_the_limit() {
        let l = limit(5);
        let mut row = None;
        let mut counted = 0;
        for _ in 0..300 {
            let (s, r) = l.start(row, T0);
            if s == Start::Counted {
                counted += 1;
            }
            row = Some(r);
        }
        assert_eq!(counted, 5, "nothing finished yet: five in flight fill it");
    }

    #[test]
    fn failures_that_fill_the_window_block_it_and_successes_give_their_place_back() {
        let l = limit(3);
        let (_, r) = l.start(None, T0);
        let (block, r) = l.finish(Some(r), true, T0);
        assert!(!block);
        assert_eq!(r.attempts, 0, "a success takes no place");
        let mut row = Some(r);
        let mut blocks = 0;
        for _ in 0..3 {
            let (s, r) = l.start(row, T0);
            assert_eq!(s, Start::Counted);
            let (b, r) = l.finish(Some(r), false, T0);
            blocks += usize::from(b);
            row = Some(r);
        }
        assert_eq!(blocks, 1, "exactly one block starts");
        let r = row.unwrap();
        assert_eq!(r.blocked_until, Some(T0 + Duration::minutes(10)));
        let (s, r) = l.start(Some(r), T0 + Duration::minutes(9));
        assert_eq!(s, Start::Refused);
        let (s, r) = l.start(Some(r), T0 + Duration::minutes(10));
        assert_eq!(
            s,
            Start::Counted,
            "the window is over: counting starts again"
        );
        assert_eq!(r.attempts, 1);
        assert_eq!(r.blocked_until, None);
    }

    #[test]
    fn off_never_refuses() {
        let l = limit(0);
        let mut row = None;
        for _ in 0..100 {
            let (s, r) = l.start(row, T0);
            assert_eq!(s, Start::Counted);
            let (b, r) = l.finish(Some(r), false, T0);
            assert!(!b);
            row = Some(r);
        }
    }

    #[test]
    fn refusals_are_written_once_a_minute_with_their_number() {
        let mut r = fresh(T0);
        assert_eq!(refused(&mut r, T0), Some(RefusalRow { refused: 1 }));
        for _ in 0..99 {
            assert_eq!(refused(&mut r, T0 + Duration::seconds(30)), None);
        }
        assert_eq!(due(&mut r, T0 + Duration::seconds(59)), None);
        assert_eq!(
            due(&mut r, T0 + Duration::seconds(60)),
            Some(RefusalRow { refused: 99 })
        );
        assert_eq!(due(&mut r, T0 + Duration::hours(1)), None, "nothing left");
    }
}

/// Busy refusals counted in memory per address and handed out for writing
/// at most once a second (bounded: beyond `MAX` addresses the rest count
/// under the empty address, the bank-wide row).
#[derive(Default)]
pub(crate) struct BusyTally {
    inner: std::sync::Mutex<BusyInner>,
}

#[derive(Default)]
struct BusyInner {
    counts: std::collections::HashMap<String, u32>,
    last: Option<std::time::Instant>,
}

impl BusyTally {
    const MAX: usize = 10_000;
    const EVERY: std::time::Duration = std::time::Duration::from_secs(1);

    /// Counts one refusal from `addr`; `Some(batch)` when it is time to
    /// write what was counted.
    pub(crate) fn note(&self, addr: &str) -> Option<Vec<(String, u32)>> {
        self.note_at(addr, std::time::Instant::now())
    }

    /// As `note`, at the instant `now` (the tests' own clock).
    fn note_at(&self, addr: &str, now: std::time::Instant) -> Option<Vec<(String, u32)>> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let key = if g.counts.len() >= Self::MAX && !g.counts.contains_key(addr) {
            String::new()
        } else {
            addr.to_owned()
        };
        *g.counts.entry(key).or_insert(0) += 1;
        let due = g
            .last
            .is_none_or(|t| now.saturating_duration_since(t) >= Self::EVERY);
        if !due {
            return None;
        }
        g.last = Some(now);
        Some(g.counts.drain().collect())
    }
}

#[cfg(test)]
mod busy_tests {
    use std::time::{Duration, Instant};

    use super::BusyTally;

    /// On the tally's own instants (a descheduled test thread cannot make a
    /// second pass within the loop): memory only until a second after the
    /// last batch, exactly then the batch with every address's number.
    #[test]
    fn busy_refusals_are_handed_out_at_most_once_a_second_with_their_numbers() {
        let t = BusyTally::default();
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        assert_eq!(
            t.note_at("192.0.2.1", t0),
            Some(vec![("192.0.2.1".to_owned(), 1)])
        );
        for i in 0..999 {
            assert_eq!(t.note_at("192.0.2.1", ms(i)), None, "within the second");
        }
        assert_eq!(t.note_at("192.0.2.2", ms(999)), None, "1 ms short of it");
        let mut batch = t.note_at("192.0.2.2", ms(1000)).unwrap();
        batch.sort();
        assert_eq!(
            batch,
            vec![("192.0.2.1".to_owned(), 999), ("192.0.2.2".to_owned(), 2)]
        );
        // The next second counts from that batch, not from the first.
        assert_eq!(t.note_at("192.0.2.1", ms(1999)), None);
        assert_eq!(
            t.note_at("192.0.2.1", ms(2000)),
            Some(vec![("192.0.2.1".to_owned(), 2)])
        );
    }

    /// Beyond `MAX` addresses, new ones count under the bank-wide row
    /// (the empty address), so memory stays bounded.
    #[test]
    fn beyond_its_bound_of_addresses_the_tally_counts_bank_wide() {
        let t = BusyTally::default();
        let t0 = Instant::now();
        t.note_at("first", t0);
        for i in 0..BusyTally::MAX {
            assert_eq!(t.note_at(&format!("198.51.100.{i}"), t0), None);
        }
        assert_eq!(t.note_at("198.51.100.0", t0), None, "one already counted");
        assert_eq!(t.note_at("203.0.113.8", t0), None, "one past the bound");
        let batch = t
            .note_at("203.0.113.9", t0 + Duration::from_secs(1))
            .unwrap();
        assert_eq!(
            batch.len(),
            BusyTally::MAX + 1,
            "MAX addresses and the bank"
        );
        let bank: Vec<_> = batch.iter().filter(|(a, _)| a.is_empty()).collect();
        assert_eq!(bank, [&(String::new(), 2)], "two past the bound");
        assert!(batch.contains(&("198.51.100.0".to_owned(), 2)));
    }
}
