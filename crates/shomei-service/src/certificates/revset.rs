//! The revocation set: every revoked serial of the issuing CA with its time
//! and reason, compact enough to hold a million in tens of megabytes.
//! Serials of up to 16 octets (all of ours) are keyed as one `u128`; longer
//! ones (RFC 5280 allows 20) sit in a small map beside. Lookups hash one
//! key: their cost does not depend on how many serials are revoked.

use std::collections::HashMap;

use shomei_core::CrlScope;
use time::OffsetDateTime;

use crate::Revocation;

#[derive(Default)]
pub(crate) struct RevocationSet {
    short: HashMap<u128, Value>,
    long: HashMap<Vec<u8>, Value>,
    /// Invalidity dates (Unix seconds) of the few entries that have one,
    /// by serial magnitude.
    invalid_since: HashMap<Vec<u8>, i64>,
}

/// No invalidity date, in `Copied`.
const NO_DATE: i64 = i64::MIN;

/// Which CRL lists a revoked certificate, and until when it must: the
/// certificate's notAfter (RFC 5280 §3.3: the entry leaves after one
/// regularly scheduled CRL issued after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Listed {
    pub(crate) scope: CrlScope,
    /// Unix seconds; `i64::MAX` when unknown (kept for ever).
    pub(crate) not_after: i64,
}

impl Listed {
    /// In one word: notAfter (seconds, saturated to 32 bits: past 2106
    /// means "for ever") above the scope's key + 1 in the low 16 bits.
    fn pack(self) -> u64 {
        let not_after = self.not_after.clamp(0, i64::from(u32::MAX)) as u64;
        not_after << 16 | (self.scope.key() + 1) as u64 & 0xffff
    }

    fn unpack(v: u64) -> Self {
        let not_after = (v >> 16) as i64;
        Self {
            scope: CrlScope::from_key((v & 0xffff) as i64 - 1).unwrap_or(CrlScope::Undivided),
            not_after: if not_after == i64::from(u32::MAX) {
                i64::MAX
            } else {
                not_after
            },
        }
    }
}

/// One entry: the revocation, and where it is listed.
#[derive(Clone, Copy)]
struct Value {
    packed: Packed,
    listed: u64,
}

/// Revocation time (Unix seconds) and reason in one word: `at << 8 | reason`,
/// reason 0 meaning none given.
#[derive(Clone, Copy)]
struct Packed(i64);

impl Packed {
    fn new(r: Revocation) -> Self {
        Self(r.at.unix_timestamp() << 8 | i64::from(r.reason.unwrap_or(0)))
    }

    fn get(self, invalidity: i64) -> Revocation {
        let reason = (self.0 & 0xff) as u8;
        Revocation {
            at: OffsetDateTime::from_unix_timestamp(self.0 >> 8)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            reason: (reason != 0).then_some(reason),
            invalidity: (invalidity != NO_DATE)
                .then(|| OffsetDateTime::from_unix_timestamp(invalidity).ok())
                .flatten(),
        }
    }
}

/// The serial's magnitude: leading zero octets dropped.
fn magnitude(serial: &[u8]) -> &[u8] {
    let first = serial.iter().position(|b| *b != 0).unwrap_or(serial.len());
    &serial[first..]
}

fn short_key(m: &[u8]) -> Option<u128> {
    (m.len() <= 16).then(|| {
        let mut b = [0u8; 16];
        b[16 - m.len()..].copy_from_slice(m);
        u128::from_be_bytes(b)
    })
}

/// One entry copied out of the set, for the CRL encoder: the serial as
/// big-endian octets (leading zeros are dropped by the encoder).
pub(crate) struct Copied {
    serial: [u8; 20],
    value: Value,
    invalidity: i64,
}

impl Copied {
    pub(crate) fn serial(&self) -> &[u8] {
        &self.serial
    }

    pub(crate) fn revocation(&self) -> Revocation {
        self.value.packed.get(self.invalidity)
    }

    pub(crate) fn listed(&self) -> Listed {
        Listed::unpack(self.value.listed)
    }
}

impl RevocationSet {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            short: HashMap::with_capacity(n),
            long: HashMap::new(),
            invalid_since: HashMap::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.short.len() + self.long.len()
    }

    /// Adds a revoked serial; `false` when it was in the set already (the
    /// set keeps the first revocation it was given).
    pub(crate) fn insert(&mut self, serial: &[u8], r: Revocation, listed: Listed) -> bool {
        let m = magnitude(serial);
        if self.contains(m) {
            return false;
        }
        if let Some(t) = r.invalidity {
            self.invalid_since.insert(m.to_vec(), t.unix_timestamp());
        }
        self.put(
            m,
            Value {
                packed: Packed::new(r),
                listed: listed.pack(),
            },
        );
        true
    }

    /// As `insert`, from the database's form: Unix seconds, reason 0 for none.
    pub(crate) fn insert_raw(&mut self, serial: &[u8], e: shomei_store::RevokedEntry) {
        let listed = Listed {
            scope: e.scope,
            not_after: e.not_after,
        };
        self.put(
            magnitude(serial),
            Value {
                packed: Packed(e.at << 8 | i64::from(e.reason)),
                listed: listed.pack(),
            },
        );
    }

    fn put(&mut self, m: &[u8], v: Value) {
        match short_key(m) {
            Some(k) => {
                self.short.insert(k, v);
            }
            None => {
                self.long.insert(m.to_vec(), v);
            }
        }
    }

    /// Drops the entries `gone` says may leave (expired certificates that
    /// were listed on a scheduled CRL after their notAfter); returns how
    /// many left.
    pub(crate) fn remove_where(&mut self, gone: impl Fn(Revocation, Listed) -> bool) -> usize {
        let before = self.len();
        let invalid = &self.invalid_since;
        let keep = |k: &[u8], v: &Value| {
            let invalidity = if invalid.is_empty() {
                NO_DATE
            } else {
                invalid.get(k).copied().unwrap_or(NO_DATE)
            };
            !gone(v.packed.get(invalidity), Listed::unpack(v.listed))
        };
        self.short
            .retain(|k, v| keep(magnitude(&k.to_be_bytes()), v));
        self.long.retain(|k, v| keep(k, v));
        let (short, long) = (&self.short, &self.long);
        self.invalid_since.retain(|k, _| match short_key(k) {
            Some(s) => short.contains_key(&s),
            None => long.contains_key(k),
        });
        before - self.len()
    }

    /// Records an invalidity date for a serial (loaded beside the set).
    pub(crate) fn set_invalidity(&mut self, serial: &[u8], at: OffsetDateTime) {
        self.invalid_since
            .insert(magnitude(serial).to_vec(), at.unix_timestamp());
    }

    fn invalidity_of(&self, m: &[u8]) -> i64 {
        if self.invalid_since.is_empty() {
            return NO_DATE;
        }
        self.invalid_since.get(m).copied().unwrap_or(NO_DATE)
    }

    pub(crate) fn get(&self, serial: &[u8]) -> Option<Revocation> {
        let m = magnitude(serial);
        match short_key(m) {
            Some(k) => self.short.get(&k),
            None => self.long.get(m),
        }
        .map(|v| v.packed.get(self.invalidity_of(m)))
    }

    pub(crate) fn contains(&self, serial: &[u8]) -> bool {
        let m = magnitude(serial);
        match short_key(m) {
            Some(k) => self.short.contains_key(&k),
            None => self.long.contains_key(m),
        }
    }

    /// Every entry, copied (a plain memory copy, so the lock guarding the
    /// set is held only briefly while a CRL is encoded from the copy).
    pub(crate) fn copy_out(&self) -> Vec<Copied> {
        let mut out = Vec::with_capacity(self.len());
        out.extend(self.short.iter().map(|(k, v)| {
            let mut serial = [0u8; 20];
            serial[4..].copy_from_slice(&k.to_be_bytes());
            let invalidity = self.invalidity_of(magnitude(&serial));
            Copied {
                serial,
                value: *v,
                invalidity,
            }
        }));
        out.extend(self.long.iter().map(|(k, v)| {
            let mut serial = [0u8; 20];
            serial[20 - k.len()..].copy_from_slice(k);
            Copied {
                serial,
                value: *v,
                invalidity: self.invalidity_of(k),
            }
        }));
        out
    }
}

/// Octets per entry in `encode_into`: key (16 or a length and 20), the
/// packed revocation and where it is listed.
const SHORT_ENTRY: usize = 16 + 8 + 8;
const LONG_ENTRY: usize = 1 + 20 + 8 + 8;
const DATE_ENTRY: usize = 1 + 20 + 8;

impl RevocationSet {
    /// The set as octets (the snapshot file's body): three counts, then
    /// the short entries, the long ones and the invalidity dates, each of a
    /// fixed size. A plain copy of the maps' words, read back by `decode`.
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        out.reserve(
            24 + self.short.len() * SHORT_ENTRY
                + self.long.len() * LONG_ENTRY
                + self.invalid_since.len() * DATE_ENTRY,
        );
        for n in [self.short.len(), self.long.len(), self.invalid_since.len()] {
            out.extend_from_slice(&(n as u64).to_le_bytes());
        }
        for (k, v) in &self.short {
            out.extend_from_slice(&k.to_le_bytes());
            out.extend_from_slice(&v.packed.0.to_le_bytes());
            out.extend_from_slice(&v.listed.to_le_bytes());
        }
        let padded = |out: &mut Vec<u8>, m: &[u8]| {
            let m = &m[m.len().saturating_sub(20)..];
            out.push(m.len() as u8);
            let mut b = [0u8; 20];
            b[..m.len()].copy_from_slice(m);
            out.extend_from_slice(&b);
        };
        for (k, v) in &self.long {
            padded(out, k);
            out.extend_from_slice(&v.packed.0.to_le_bytes());
            out.extend_from_slice(&v.listed.to_le_bytes());
        }
        for (k, t) in &self.invalid_since {
            padded(out, k);
            out.extend_from_slice(&t.to_le_bytes());
        }
    }

    /// Reads `encode_into`'s octets back; `None` when they are not exactly
    /// such a body.
    pub(crate) fn decode(b: &[u8]) -> Option<Self> {
        fn word(b: &[u8], at: usize) -> u64 {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[at..at + 8]);
            u64::from_le_bytes(w)
        }
        if b.len() < 24 {
            return None;
        }
        let (short, long, dates) = (
            usize::try_from(word(b, 0)).ok()?,
            usize::try_from(word(b, 8)).ok()?,
            usize::try_from(word(b, 16)).ok()?,
        );
        let size = short
            .checked_mul(SHORT_ENTRY)?
            .checked_add(long.checked_mul(LONG_ENTRY)?)?
            .checked_add(dates.checked_mul(DATE_ENTRY)?)?
            .checked_add(24)?;
        if b.len() != size {
            return None;
        }
        let mut set = Self {
            short: HashMap::with_capacity(short),
            long: HashMap::with_capacity(long),
            invalid_since: HashMap::with_capacity(dates),
        };
        let mut at = 24;
        for e in b[at..at + short * SHORT_ENTRY].chunks_exact(SHORT_ENTRY) {
            let mut k = [0u8; 16];
            k.copy_from_slice(&e[..16]);
            let value = Value {
                packed: Packed(word(e, 16) as i64),
                listed: word(e, 24),
            };
            set.short.insert(u128::from_le_bytes(k), value);
        }
        at += short * SHORT_ENTRY;
        let key = |e: &[u8]| -> Option<Vec<u8>> {
            let n = usize::from(e[0]);
            (n <= 20).then(|| e[1..1 + n].to_vec())
        };
        for e in b[at..at + long * LONG_ENTRY].chunks_exact(LONG_ENTRY) {
            let value = Value {
                packed: Packed(word(e, 21) as i64),
                listed: word(e, 29),
            };
            set.long.insert(key(e)?, value);
        }
        at += long * LONG_ENTRY;
        for e in b[at..].chunks_exact(DATE_ENTRY) {
            set.invalid_since.insert(key(e)?, word(e, 21) as i64);
        }
        Some(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(at: i64, reason: Option<u8>) -> Revocation {
        Revocation {
            at: OffsetDateTime::from_unix_timestamp(at).unwrap(),
            reason,
            invalidity: None,
        }
    }

    #[test]
    fn short_and_long_serials_round_trip() {
        let mut s = RevocationSet::default();
        let short = [0x40u8; 16];
        let long = [0x7fu8; 20];
        s.insert(
            &short,
            rev(1_800_000_000, Some(4)),
            listed(3, 1_900_000_000),
        );
        s.insert(&long, rev(1_700_000_000, None), listed(-1, i64::MAX));
        s.insert(&[0, 0, 5], rev(1, Some(1)), listed(1023, 2));
        assert_eq!(s.len(), 3);
        assert!(s.contains(&short));
        assert!(s.contains(&long));
        assert!(s.contains(&[5]), "leading zeros do not make another serial");
        assert!(
            !s.insert(&[5], rev(9, None), listed(0, 9)),
            "a serial is in the set once"
        );
        assert!(!s.contains(&[6]));
        assert!(!s.contains(&[0x40u8; 15]));
        let r = s.get(&short).unwrap();
        assert_eq!(r.at.unix_timestamp(), 1_800_000_000);
        assert_eq!(r.reason, Some(4));
        assert_eq!(s.get(&long).unwrap().reason, None);
        assert_eq!(s.get(&long).unwrap().invalidity, None);
        s.set_invalidity(&[0, 5], OffsetDateTime::from_unix_timestamp(77).unwrap());
        assert_eq!(
            s.get(&[5]).unwrap().invalidity.unwrap().unix_timestamp(),
            77
        );
        assert!(s.copy_out().iter().any(|c| {
            c.revocation()
                .invalidity
                .is_some_and(|t| t.unix_timestamp() == 77)
        }));
        let mut copied: Vec<(Vec<u8>, i64)> = s
            .copy_out()
            .iter()
            .map(|c| {
                (
                    magnitude(c.serial()).to_vec(),
                    c.revocation().at.unix_timestamp(),
                )
            })
            .collect();
        copied.sort();
        assert_eq!(
            copied,
            vec![
                (vec![5], 1),
                (short.to_vec(), 1_800_000_000),
                (long.to_vec(), 1_700_000_000),
            ]
        );
        let mut where_listed: Vec<(Vec<u8>, Listed)> = s
            .copy_out()
            .iter()
            .map(|c| (magnitude(c.serial()).to_vec(), c.listed()))
            .collect();
        where_listed.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            where_listed,
            vec![
                (vec![5], listed(1023, 2)),
                (short.to_vec(), listed(3, 1_900_000_000)),
                (long.to_vec(), listed(-1, i64::MAX)),
            ]
        );
    }

    fn listed(scope: i64, not_after: i64) -> Listed {
        Listed {
            scope: CrlScope::from_key(scope).unwrap(),
            not_after,
        }
    }

    #[test]
    fn the_snapshot_body_reads_back_as_the_same_set() {
        let mut s = RevocationSet::default();
        s.insert(
            &[0x40; 16],
            rev(1_800_000_000, Some(4)),
            listed(3, 1_900_000_000),
        );
        s.insert(&[0x7f; 20], rev(1_700_000_000, None), listed(-1, i64::MAX));
        s.insert(&[0, 5], rev(1, Some(1)), listed(1023, 2));
        s.set_invalidity(
            &[0x7f; 20],
            OffsetDateTime::from_unix_timestamp(77).unwrap(),
        );
        s.set_invalidity(&[5], OffsetDateTime::from_unix_timestamp(78).unwrap());
        let mut body = Vec::new();
        s.encode_into(&mut body);
        let back = RevocationSet::decode(&body).expect("reads back");
        let listing = |s: &RevocationSet| {
            let mut v: Vec<_> = s
                .copy_out()
                .iter()
                .map(|c| {
                    let r = c.revocation();
                    (
                        magnitude(c.serial()).to_vec(),
                        r.at.unix_timestamp(),
                        r.reason,
                        r.invalidity.map(|t| t.unix_timestamp()),
                        c.listed(),
                    )
                })
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        assert_eq!(listing(&back), listing(&s));
        assert_eq!(back.len(), 3);
        // A body cut short, or one with a byte too many, is no set.
        assert!(RevocationSet::decode(&body[..body.len() - 1]).is_none());
        body.push(0);
        assert!(RevocationSet::decode(&body).is_none());
        assert!(RevocationSet::decode(&[]).is_none());
    }

    #[test]
    fn expired_entries_leave_and_the_rest_stay() {
        let mut s = RevocationSet::default();
        s.insert(&[1], rev(100, Some(1)), listed(0, 1_000));
        s.insert(&[2], rev(100, Some(1)), listed(0, 5_000));
        let mut with_date = rev(100, Some(1));
        with_date.invalidity = OffsetDateTime::from_unix_timestamp(50).ok();
        s.insert(&[0x7f; 20], with_date, listed(-1, 1_000));
        s.insert(&[4], rev(100, None), listed(1, i64::MAX));
        let gone = s.remove_where(|r, l| l.not_after < 2_000 && r.at.unix_timestamp() < 2_000);
        assert_eq!(gone, 2);
        assert!(!s.contains(&[1]) && !s.contains(&[0x7f; 20]));
        assert!(s.contains(&[2]) && s.contains(&[4]));
        assert!(
            s.invalid_since.is_empty(),
            "the invalidity date left with its entry"
        );
        assert_eq!(s.len(), 2);
    }
}
