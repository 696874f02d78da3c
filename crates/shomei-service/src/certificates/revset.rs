//! The revocation set: every revoked serial of the issuing CA with its time
//! and reason, compact enough to hold a million in tens of megabytes.
//! Serials of up to 16 octets (all of ours) are keyed as one `u128`; longer
//! ones (RFC 5280 allows 20) sit in a small map beside.
//!
//! The serials loaded at start (from the snapshot or the database) are one
//! sorted array of fixed-size records, the snapshot file's own octets: a
//! start reads it with one read and allocates nothing per entry (a million
//! hash-map inserts took most of a second on a loaded machine). Those
//! revoked after the load go into a hash map beside it. A lookup is one
//! hash and one binary search: its cost hardly depends on how many serials
//! are revoked.

use std::collections::HashMap;

use shomei_core::CrlScope;
use time::OffsetDateTime;

use crate::Revocation;

#[derive(Default)]
pub(crate) struct RevocationSet {
    /// The serials of up to 16 octets loaded at start, sorted.
    base: Base,
    /// Those revoked since (not in `base`).
    short: HashMap<u128, Value>,
    long: HashMap<Vec<u8>, Value>,
    /// Invalidity dates (Unix seconds) of the few entries that have one,
    /// by serial magnitude.
    invalid_since: HashMap<Vec<u8>, i64>,
}

/// Octets of one record of `Base`: the key (little-endian), the packed
/// revocation and where it is listed.
const RECORD: usize = 16 + 8 + 8;

/// Records of `RECORD` octets in `bytes[start..]`, strictly ascending by
/// key.
#[derive(Default)]
struct Base {
    bytes: Vec<u8>,
    start: usize,
    count: usize,
}

fn word(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

fn record_key(r: &[u8]) -> u128 {
    let mut k = [0u8; 16];
    k.copy_from_slice(&r[..16]);
    u128::from_le_bytes(k)
}

fn record_value(r: &[u8]) -> Value {
    Value {
        packed: Packed(word(r, 16) as i64),
        listed: word(r, 24),
    }
}

fn push_record(out: &mut Vec<u8>, k: u128, v: &Value) {
    out.extend_from_slice(&k.to_le_bytes());
    out.extend_from_slice(&v.packed.0.to_le_bytes());
    out.extend_from_slice(&v.listed.to_le_bytes());
}

impl Base {
    fn records(&self) -> &[u8] {
        &self.bytes[self.start..self.start + self.count * RECORD]
    }

    fn iter(&self) -> impl Iterator<Item = (u128, Value)> + '_ {
        self.records()
            .chunks_exact(RECORD)
            .map(|r| (record_key(r), record_value(r)))
    }

    fn get(&self, k: u128) -> Option<Value> {
        let recs = self.records();
        let (mut lo, mut hi) = (0usize, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let r = &recs[mid * RECORD..(mid + 1) * RECORD];
            match record_key(r).cmp(&k) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(record_value(r)),
            }
        }
        None
    }

    /// Keeps the records `keep` says, in order (moved forward in place).
    fn retain(&mut self, mut keep: impl FnMut(u128, &Value) -> bool) {
        let mut kept = 0usize;
        for i in 0..self.count {
            let at = self.start + i * RECORD;
            let r = &self.bytes[at..at + RECORD];
            if keep(record_key(r), &record_value(r)) {
                if kept != i {
                    let to = self.start + kept * RECORD;
                    self.bytes.copy_within(at..at + RECORD, to);
                }
                kept += 1;
            }
        }
        self.count = kept;
        self.bytes.truncate(self.start + kept * RECORD);
    }

    /// From records in any order (a load from the database): sorted, the
    /// first of equal keys kept.
    fn from_unsorted(mut v: Vec<(u128, Value)>) -> Self {
        if !v.is_sorted_by(|a, b| a.0 < b.0) {
            v.sort_by_key(|e| e.0);
            v.dedup_by_key(|e| e.0);
        }
        let mut bytes = Vec::with_capacity(v.len() * RECORD);
        for (k, val) in &v {
            push_record(&mut bytes, *k, val);
        }
        Self {
            bytes,
            start: 0,
            count: v.len(),
        }
    }
}

/// The revocation set being loaded from the database: its records in the
/// order they come, sorted once at the end.
pub(crate) struct Loading {
    short: Vec<(u128, Value)>,
    long: HashMap<Vec<u8>, Value>,
}

impl Loading {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            short: Vec::with_capacity(n),
            long: HashMap::new(),
        }
    }

    /// A revoked serial, in the database's form: Unix seconds, reason 0
    /// for none.
    pub(crate) fn insert_raw(&mut self, serial: &[u8], e: shomei_store::RevokedEntry) {
        let listed = Listed {
            scope: e.scope,
            not_after: e.not_after,
        };
        let v = Value {
            packed: Packed(e.at << 8 | i64::from(e.reason)),
            listed: listed.pack(),
        };
        let m = magnitude(serial);
        match short_key(m) {
            Some(k) => self.short.push((k, v)),
            None => {
                self.long.entry(m.to_vec()).or_insert(v);
            }
        }
    }

    pub(crate) fn done(self) -> RevocationSet {
        RevocationSet {
            base: Base::from_unsorted(self.short),
            long: self.long,
            ..RevocationSet::default()
        }
    }
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
    pub(crate) fn len(&self) -> usize {
        self.base.count + self.short.len() + self.long.len()
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
        let v = Value {
            packed: Packed::new(r),
            listed: listed.pack(),
        };
        match short_key(m) {
            Some(k) => {
                self.short.insert(k, v);
            }
            None => {
                self.long.insert(m.to_vec(), v);
            }
        }
        true
    }

    /// Drops the entries `gone` says may leave (expired certificates that
    /// were listed on a scheduled CRL after their notAfter); returns how
    /// many left. Only certificates that expired before `expired_before`
    /// (Unix seconds) are asked about: the others stay, read from their
    /// packed word alone (at a million, asking each took a tenth of a
    /// second at every start).
    pub(crate) fn remove_where(
        &mut self,
        expired_before: i64,
        gone: impl Fn(Revocation, Listed) -> bool,
    ) -> usize {
        let before = self.len();
        if expired_before <= 0 {
            return 0;
        }
        let invalid = &self.invalid_since;
        let keep = |k: &[u8], v: &Value| {
            // `Listed::pack`'s notAfter, saturated (for ever stays).
            if (v.listed >> 16) as i64 >= expired_before {
                return true;
            }
            let invalidity = if invalid.is_empty() {
                NO_DATE
            } else {
                invalid.get(k).copied().unwrap_or(NO_DATE)
            };
            !gone(v.packed.get(invalidity), Listed::unpack(v.listed))
        };
        self.base
            .retain(|k, v| keep(magnitude(&k.to_be_bytes()), v));
        self.short
            .retain(|k, v| keep(magnitude(&k.to_be_bytes()), v));
        self.long.retain(|k, v| keep(k, v));
        let mut invalid = std::mem::take(&mut self.invalid_since);
        invalid.retain(|k, _| self.contains(k));
        self.invalid_since = invalid;
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

    fn value(&self, m: &[u8]) -> Option<Value> {
        match short_key(m) {
            Some(k) => self.short.get(&k).copied().or_else(|| self.base.get(k)),
            None => self.long.get(m).copied(),
        }
    }

    pub(crate) fn get(&self, serial: &[u8]) -> Option<Revocation> {
        let m = magnitude(serial);
        self.value(m).map(|v| v.packed.get(self.invalidity_of(m)))
    }

    pub(crate) fn contains(&self, serial: &[u8]) -> bool {
        self.value(magnitude(serial)).is_some()
    }

    /// Every entry, copied (a plain memory copy, so the lock guarding the
    /// set is held only briefly while a CRL is encoded from the copy).
    pub(crate) fn copy_out(&self) -> Vec<Copied> {
        self.copy_out_where(|_| true)
    }

    /// The entries listed where `wanted` says, copied.
    pub(crate) fn copy_out_where(&self, wanted: impl Fn(Listed) -> bool) -> Vec<Copied> {
        let mut out = Vec::with_capacity(self.len());
        let wanted = |v: &Value| wanted(Listed::unpack(v.listed));
        let short = self
            .base
            .iter()
            .chain(self.short.iter().map(|(k, v)| (*k, *v)));
        out.extend(short.filter(|(_, v)| wanted(v)).map(|(k, v)| {
            let mut serial = [0u8; 20];
            serial[4..].copy_from_slice(&k.to_be_bytes());
            let invalidity = self.invalidity_of(magnitude(&serial));
            Copied {
                serial,
                value: v,
                invalidity,
            }
        }));
        out.extend(self.long.iter().filter(|(_, v)| wanted(v)).map(|(k, v)| {
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

/// What a scope lists, in two words: how many serials, and the sum of
/// their `serial_digest`s (any order). A kept CRL copy with the same two
/// lists the same serials (a different set would have to match a 64-bit
/// sum of mixed serials).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ScopeDigest {
    pub(crate) count: usize,
    pub(crate) sum: u64,
}

impl ScopeDigest {
    /// Adds a serial (any octets: leading zero octets are not part of it).
    pub(crate) fn add(&mut self, serial: &[u8]) {
        self.add_digest(serial_digest(magnitude(serial)));
    }

    fn add_digest(&mut self, d: u64) {
        self.count += 1;
        self.sum = self.sum.wrapping_add(d);
    }
}

/// SplitMix64's finaliser: every input bit moves every output bit.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn short_digest(k: u128) -> u64 {
    mix(k as u64 ^ mix((k >> 64) as u64))
}

/// One serial's digest, from its magnitude.
fn serial_digest(m: &[u8]) -> u64 {
    match short_key(m) {
        Some(k) => short_digest(k),
        None => m.chunks(8).fold(mix(m.len() as u64), |h, c| {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            mix(h ^ u64::from_be_bytes(w))
        }),
    }
}

impl RevocationSet {
    /// What each scope lists (see `ScopeDigest`), in one pass.
    pub(crate) fn scope_digests(&self) -> HashMap<CrlScope, ScopeDigest> {
        // By the scope's key + 1 (the packed word's low 16 bits).
        let mut by_key = vec![ScopeDigest::default(); 1 << 16];
        for (k, v) in self.base.iter() {
            by_key[(v.listed & 0xffff) as usize].add_digest(short_digest(k));
        }
        for (k, v) in &self.short {
            by_key[(v.listed & 0xffff) as usize].add_digest(short_digest(*k));
        }
        for (k, v) in &self.long {
            by_key[(v.listed & 0xffff) as usize].add_digest(serial_digest(k));
        }
        let mut out: HashMap<CrlScope, ScopeDigest> = HashMap::new();
        for (key, d) in by_key.into_iter().enumerate().filter(|(_, d)| d.count > 0) {
            // As `Listed::unpack` reads it.
            let scope = CrlScope::from_key(key as i64 - 1).unwrap_or(CrlScope::Undivided);
            let o = out.entry(scope).or_default();
            o.count += d.count;
            o.sum = o.sum.wrapping_add(d.sum);
        }
        out
    }
}

/// Octets per entry in `encode_into`: a short serial's record (`RECORD`),
/// a long one (a length and 20, the packed revocation and where it is
/// listed), an invalidity date.
const LONG_ENTRY: usize = 1 + 20 + 8 + 8;
const DATE_ENTRY: usize = 1 + 20 + 8;

/// Octets of `encode_into`'s body with these counts; `None` past `usize`.
fn body_len(short: usize, long: usize, dates: usize) -> Option<usize> {
    short
        .checked_mul(RECORD)?
        .checked_add(long.checked_mul(LONG_ENTRY)?)?
        .checked_add(dates.checked_mul(DATE_ENTRY)?)?
        .checked_add(24)
}

impl RevocationSet {
    /// The set as octets (the snapshot file's body): three counts, then
    /// the short entries' records in ascending order (what `decode` keeps
    /// as they are), the long ones and the invalidity dates, each of a
    /// fixed size.
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        let short = self.base.count + self.short.len();
        out.reserve(body_len(short, self.long.len(), self.invalid_since.len()).unwrap_or(0));
        for n in [short, self.long.len(), self.invalid_since.len()] {
            out.extend_from_slice(&(n as u64).to_le_bytes());
        }
        // The base and the (few) later ones, merged in order.
        let mut later: Vec<(u128, Value)> = self.short.iter().map(|(k, v)| (*k, *v)).collect();
        later.sort_unstable_by_key(|e| e.0);
        let mut later = later.into_iter().peekable();
        for (k, v) in self.base.iter() {
            while let Some((lk, lv)) = later.next_if(|(lk, _)| *lk < k) {
                push_record(out, lk, &lv);
            }
            push_record(out, k, &v);
        }
        for (lk, lv) in later {
            push_record(out, lk, &lv);
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

    /// Reads `encode_into`'s octets back from `bytes[start..end]`, keeping
    /// `bytes` as the sorted records (no copy of them); `None` when they
    /// are not exactly such a body (its short records not strictly
    /// ascending included: a lookup could miss one).
    pub(crate) fn decode(bytes: Vec<u8>, start: usize, end: usize) -> Option<Self> {
        let b = bytes.get(start..end)?;
        if b.len() < 24 {
            return None;
        }
        let (short, long, dates) = (
            usize::try_from(word(b, 0)).ok()?,
            usize::try_from(word(b, 8)).ok()?,
            usize::try_from(word(b, 16)).ok()?,
        );
        if b.len() != body_len(short, long, dates)? {
            return None;
        }
        let records = &b[24..24 + short * RECORD];
        let mut previous: Option<u128> = None;
        for r in records.chunks_exact(RECORD) {
            let k = record_key(r);
            if previous.is_some_and(|p| p >= k) {
                return None;
            }
            previous = Some(k);
        }
        let mut at = 24 + short * RECORD;
        let key = |e: &[u8]| -> Option<Vec<u8>> {
            let n = usize::from(e[0]);
            (n <= 20).then(|| e[1..1 + n].to_vec())
        };
        let mut long_map = HashMap::with_capacity(long);
        for e in b[at..at + long * LONG_ENTRY].chunks_exact(LONG_ENTRY) {
            let value = Value {
                packed: Packed(word(e, 21) as i64),
                listed: word(e, 29),
            };
            long_map.insert(key(e)?, value);
        }
        at += long * LONG_ENTRY;
        let mut invalid_since = HashMap::with_capacity(dates);
        for e in b[at..].chunks_exact(DATE_ENTRY) {
            invalid_since.insert(key(e)?, word(e, 21) as i64);
        }
        let mut bytes = bytes;
        bytes.truncate(start + 24 + short * RECORD);
        Some(Self {
            base: Base {
                bytes,
                start: start + 24,
                count: short,
            },
            short: HashMap::new(),
            long: long_map,
            invalid_since,
        })
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
        let decode = |b: &[u8]| {
            // As in the file: after a header, before a digest.
            let mut file = vec![9u8; 7];
            file.extend_from_slice(b);
            file.extend_from_slice(&[9u8; 5]);
            let end = file.len() - 5;
            RevocationSet::decode(file, 7, end)
        };
        let back = decode(&body).expect("reads back");
        assert_eq!(entries(&back), entries(&s));
        assert_eq!(back.len(), 3);
        // A body cut short, or one with a byte too many, is no set.
        assert!(decode(&body[..body.len() - 1]).is_none());
        let mut longer = body.clone();
        longer.push(0);
        assert!(decode(&longer).is_none());
        assert!(decode(&[]).is_none());
        // Short records out of order: a binary search could miss one.
        let mut swapped = body.clone();
        let (a, b) = (24..24 + RECORD, 24 + RECORD..24 + 2 * RECORD);
        let first = swapped[a.clone()].to_vec();
        swapped.copy_within(b.clone(), a.start);
        swapped[b].copy_from_slice(&first);
        assert!(decode(&swapped).is_none(), "records not in order");
        // Revoked after the load, beside the loaded records: found, and
        // written back in order with them.
        let mut back = back;
        assert!(back.insert(&[0x41; 16], rev(5, Some(2)), listed(3, 9)));
        assert!(back.insert(&[0x3f; 16], rev(6, None), listed(3, 9)));
        assert!(
            !back.insert(&[0x40; 16], rev(7, None), listed(3, 9)),
            "in the loaded records"
        );
        assert_eq!(back.len(), 5);
        assert_eq!(back.get(&[0x41; 16]).unwrap().reason, Some(2));
        assert_eq!(back.get(&[0x40; 16]).unwrap().reason, Some(4));
        let mut again = Vec::new();
        back.encode_into(&mut again);
        let again = decode(&again).expect("merged in order");
        assert_eq!(entries(&again), entries(&back));
        assert!(again.contains(&[0x3f; 16]) && again.contains(&[5]));
        assert!(!again.contains(&[0x42; 16]));
    }

    #[test]
    fn a_load_in_any_order_is_found_whole() {
        let mut l = Loading::with_capacity(4);
        let entry = |at: i64| shomei_store::RevokedEntry {
            at,
            reason: 1,
            not_after: 2_000,
            scope: CrlScope::Partition(1),
        };
        for (i, serial) in [[0x50u8; 16], [0x41; 16], [0x7f; 16], [0x41; 16]]
            .iter()
            .enumerate()
        {
            l.insert_raw(serial, entry(i as i64 + 100));
        }
        l.insert_raw(&[0x11; 20], entry(9));
        let s = l.done();
        assert_eq!(s.len(), 4, "one entry a serial");
        for serial in [[0x50u8; 16], [0x41; 16], [0x7f; 16]] {
            assert!(s.contains(&serial));
        }
        assert!(s.contains(&[0x11; 20]));
        assert_eq!(
            s.get(&[0x41; 16]).unwrap().at.unix_timestamp(),
            101,
            "the first of a serial's rows"
        );
        assert!(!s.contains(&[0x42; 16]));
        let mut s = s;
        assert_eq!(
            s.remove_where(i64::MAX, |r, _| r.at.unix_timestamp() == 100),
            1
        );
        assert!(!s.contains(&[0x50; 16]), "left the loaded records");
        assert!(s.contains(&[0x41; 16]) && s.contains(&[0x7f; 16]));
        assert_eq!(s.len(), 3);
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
        let gone = s.remove_where(2_000, |r, l| {
            l.not_after < 2_000 && r.at.unix_timestamp() < 2_000
        });
        assert_eq!(s.len(), 2, "{gone}");
        let gone = gone + s.remove_where(0, |_, _| true);
        assert_eq!(gone, 2);
        assert!(!s.contains(&[1]) && !s.contains(&[0x7f; 20]));
        assert!(s.contains(&[2]) && s.contains(&[4]));
        assert!(
            s.invalid_since.is_empty(),
            "the invalidity date left with its entry"
        );
        assert_eq!(s.len(), 2);
        // Certificates that expire at or after the bound are not asked about.
        assert_eq!(s.remove_where(5_000, |_, _| true), 0);
        assert_eq!(s.remove_where(5_001, |_, _| true), 1);
        assert!(!s.contains(&[2]) && s.contains(&[4]), "for ever stays");
    }

    /// Every entry as the CRL encoder reads it, in serial order.
    type Entry = (Vec<u8>, i64, Option<u8>, Option<i64>, Listed);

    fn entries(s: &RevocationSet) -> Vec<Entry> {
        let mut v: Vec<Entry> = s
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
    }

    fn body(s: &RevocationSet) -> Vec<u8> {
        let mut b = Vec::new();
        s.encode_into(&mut b);
        b
    }

    /// Decodes `body` as the snapshot file holds it: after `start` octets
    /// of header, before a digest.
    fn in_file(body: &[u8], start: usize) -> Option<RevocationSet> {
        let mut file = vec![9u8; start];
        file.extend_from_slice(body);
        file.extend_from_slice(&[9u8; 5]);
        RevocationSet::decode(file, start, start + body.len())
    }

    /// A small deterministic generator for the property tests (the MMIX
    /// linear congruential one, its high bits: apart from `mix`, which
    /// some of these tests are about).
    struct Lcg(u64);

    impl Lcg {
        fn next32(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 32
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next32() % n
        }

        fn word(&mut self) -> u64 {
            self.next32() << 32 | self.next32()
        }

        /// A serial's magnitude of `min` to `max` octets (its first not
        /// zero, below 0xf0: `ABSENT` is never one).
        fn serial(&mut self, min: usize, max: usize) -> Vec<u8> {
            let len = min + self.below((max - min + 1) as u64) as usize;
            let mut m: Vec<u8> = (0..len).map(|_| self.next32() as u8).collect();
            m[0] = 1 + (m[0] % 0xef);
            m
        }
    }

    /// Serials no generated set holds, one short and one long.
    const ABSENT: [&[u8]; 2] = [&[0xff; 16], &[0xff; 19]];

    /// A set of `base` serials loaded from the database (in any order, some
    /// twice), `later` short ones revoked after the load, `long` ones of 17
    /// to 20 octets, and `dates` invalidity dates.
    fn generated(seed: u64, base: usize, later: usize, long: usize, dates: usize) -> RevocationSet {
        let mut g = Lcg(seed);
        let scope = |g: &mut Lcg| CrlScope::from_key(g.below(5) as i64 - 1).unwrap();
        let mut loading = Loading::with_capacity(base);
        let mut loaded: Vec<Vec<u8>> = Vec::new();
        for _ in 0..base {
            let serial = match loaded.len() {
                n if n > 0 && g.below(4) == 0 => loaded[g.below(n as u64) as usize].clone(),
                _ => g.serial(1, 16),
            };
            loading.insert_raw(
                &serial,
                shomei_store::RevokedEntry {
                    at: 1_700_000_000 + g.below(1 << 20) as i64,
                    reason: g.below(11) as u8,
                    not_after: 1_800_000_000 + g.below(1 << 20) as i64,
                    scope: scope(&mut g),
                },
            );
            loaded.push(serial);
        }
        let mut s = loading.done();
        let mut all = loaded;
        let wanted = s.len() + later;
        while s.len() < wanted {
            let serial = g.serial(1, 16);
            let reason = (g.below(2) == 0).then(|| g.below(11) as u8);
            let at = 1_700_000_000 + g.below(1 << 20) as i64;
            if s.insert(
                &serial,
                rev(at, reason),
                listed(scope(&mut g).key(), i64::MAX),
            ) {
                all.push(serial);
            }
        }
        let mut added = 0;
        while added < long {
            let serial = g.serial(17, 20);
            let at = 1_700_000_000 + g.below(1 << 20) as i64;
            if s.insert(
                &serial,
                rev(at, Some(1)),
                listed(scope(&mut g).key(), 1_900_000_000),
            ) {
                all.push(serial);
                added += 1;
            }
        }
        for serial in all.iter().take(dates) {
            s.set_invalidity(
                serial,
                OffsetDateTime::from_unix_timestamp(1_600_000_000 + g.below(1000) as i64).unwrap(),
            );
        }
        s
    }

    /// Shapes of sets (loaded, revoked after, long, dates) for the property
    /// tests: empty parts included.
    const SHAPES: [(usize, usize, usize, usize); 8] = [
        (0, 0, 0, 0),
        (0, 0, 1, 1),
        (0, 0, 2, 0),
        (0, 3, 0, 0),
        (5, 0, 0, 0),
        (1, 1, 1, 0),
        (5, 3, 2, 2),
        (40, 10, 5, 4),
    ];

    #[test]
    fn the_snapshot_body_is_the_format_written_before() {
        // What a snapshot file written by the previous release holds: the
        // next one must read it (or refuse it), not misread it.
        let mut s = RevocationSet::default();
        s.insert(&[5], rev(0x0102, Some(1)), listed(2, 0x0304));
        s.insert(&[0x80; 17], rev(7, None), listed(-1, i64::MAX));
        s.set_invalidity(&[0, 5], OffsetDateTime::from_unix_timestamp(9).unwrap());
        let mut want: Vec<u8> = Vec::new();
        // Three counts: short serials, long ones, invalidity dates.
        for n in [1u64, 1, 1] {
            want.extend_from_slice(&n.to_le_bytes());
        }
        // The short serial's record: its key (16 octets, little-endian), the
        // revocation (time << 8 | reason), where listed (notAfter << 16 |
        // the scope's key + 1).
        want.extend_from_slice(&[5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        want.extend_from_slice(&0x01_0201_u64.to_le_bytes());
        want.extend_from_slice(&0x0304_0003_u64.to_le_bytes());
        // The long one: its length, its octets padded to 20, the same two
        // words (no reason; listed for ever on the undivided CRL).
        want.push(17);
        want.extend_from_slice(&[0x80; 17]);
        want.extend_from_slice(&[0; 3]);
        want.extend_from_slice(&0x0700_u64.to_le_bytes());
        want.extend_from_slice(&0xffff_ffff_0000_u64.to_le_bytes());
        // The invalidity date: the serial so, then Unix seconds.
        want.push(1);
        want.push(5);
        want.extend_from_slice(&[0; 19]);
        want.extend_from_slice(&9u64.to_le_bytes());
        assert_eq!(body(&s), want);
        let back = in_file(&want, 0).expect("the earlier file reads");
        assert_eq!(entries(&back), entries(&s));
        assert_eq!(
            entries(&back),
            vec![
                (vec![5], 0x0102, Some(1), Some(9), listed(2, 0x0304)),
                (vec![0x80; 17], 7, None, None, listed(-1, i64::MAX)),
            ]
        );
        // The empty set: three zero counts, nothing else.
        assert_eq!(body(&RevocationSet::default()), [0u8; 24]);
    }

    #[test]
    fn a_snapshot_reads_back_as_the_set_it_was_written_from() {
        for seed in [1, 2, 3, 2026, 0xdead_beef] {
            for (base, later, long, dates) in SHAPES {
                let s = generated(seed, base, later, long, dates);
                let case = format!("seed {seed}, shape {:?}", (base, later, long, dates));
                let want = entries(&s);
                assert_eq!(want.len(), s.len(), "{case}");
                let b = body(&s);
                for start in [0, 7] {
                    let back = in_file(&b, start).unwrap_or_else(|| panic!("{case}: reads back"));
                    assert_eq!(entries(&back), want, "{case}, at {start}");
                    assert_eq!(back.len(), s.len(), "{case}");
                    for (serial, ..) in &want {
                        assert!(back.contains(serial), "{case}: {serial:02x?} found");
                    }
                    for serial in ABSENT {
                        assert!(!back.contains(serial), "{case}: {serial:02x?} not found");
                    }
                    // The short ones are the file's records, in place; the
                    // rest of the file is let go.
                    assert_eq!(back.base.count, s.base.count + s.short.len(), "{case}");
                    assert_eq!(back.base.start, start + 24, "{case}");
                    assert_eq!(
                        back.base.bytes.len(),
                        start + 24 + back.base.count * RECORD,
                        "{case}"
                    );
                    // Written again from the records it read: the same set.
                    let again = in_file(&body(&back), 0).expect("reads back again");
                    assert_eq!(entries(&again), want, "{case}");
                }
            }
        }
    }

    #[test]
    fn a_snapshot_body_not_exactly_as_written_is_no_set() {
        let s = generated(7, 0, 3, 2, 1);
        let b = body(&s);
        assert_eq!(
            b.len(),
            24 + 3 * RECORD + 2 * LONG_ENTRY + DATE_ENTRY,
            "three short, two long, a date"
        );
        // The positive control: as written, it reads back.
        assert_eq!(in_file(&b, 0).map(|back| entries(&back)), Some(entries(&s)));
        let set_word = |at: usize, w: u64| {
            let mut c = b.clone();
            c[at..at + 8].copy_from_slice(&w.to_le_bytes());
            c
        };
        let set_octet = |at: usize, v: u8| {
            let mut c = b.clone();
            c[at] = v;
            c
        };
        let (records, long_at) = (24, 24 + 3 * RECORD);
        let date_at = long_at + 2 * LONG_ENTRY;
        let record = |i: usize| b[records + i * RECORD..records + (i + 1) * RECORD].to_vec();
        let with_records = |rs: [Vec<u8>; 3]| {
            let mut c = b.clone();
            c[records..long_at].copy_from_slice(&rs.concat());
            c
        };
        let mut longer = b.clone();
        longer.push(0);
        let cases: [(&str, Vec<u8>); 15] = [
            ("cut short by one octet", b[..b.len() - 1].to_vec()),
            ("one octet more", longer),
            ("the counts cut short", b[..23].to_vec()),
            ("one short record more counted", set_word(0, 4)),
            ("one short record fewer counted", set_word(0, 2)),
            ("one long entry more counted", set_word(8, 3)),
            ("one long entry fewer counted", set_word(8, 1)),
            ("one date more counted", set_word(16, 2)),
            ("no date counted", set_word(16, 0)),
            ("counts past any size", set_word(0, u64::MAX)),
            ("counts past any size (dates)", set_word(16, u64::MAX / 2)),
            ("a long serial of 21 octets", set_octet(long_at, 21)),
            ("a date's serial of 21 octets", set_octet(date_at, 21)),
            (
                "short records out of order",
                with_records([record(1), record(0), record(2)]),
            ),
            (
                "a short record twice",
                with_records([record(0), record(1), record(1)]),
            ),
        ];
        for (why, changed) in cases {
            assert_ne!(changed, b, "{why}: a change");
            assert!(in_file(&changed, 7).is_none(), "{why}: read as a set");
        }
        // A length of 20 is a serial (the positive control of the 21).
        let mut s20 = RevocationSet::default();
        s20.insert(&[0x7e; 20], rev(1, None), listed(0, 5));
        let back = in_file(&body(&s20), 0).expect("20 octets");
        assert!(back.contains(&[0x7e; 20]) && back.len() == 1);
        // The empty set's body, exactly its three counts, is a set; fewer
        // octets are not.
        let empty = in_file(&[0u8; 24], 3).expect("the empty set");
        assert_eq!(empty.len(), 0);
        assert!(!empty.contains(&[1]) && !empty.contains(&[0x7f; 20]));
        assert!(in_file(&[0u8; 23], 3).is_none());
    }

    #[test]
    fn a_load_in_any_order_is_the_set_inserted_in_order() {
        let mut g = Lcg(99);
        let mut orders: Vec<(&str, Vec<u128>)> = vec![
            ("none", vec![]),
            ("one", vec![7]),
            ("ascending", vec![1, 2, 3, 300, 1 << 70, u128::MAX >> 1]),
            ("ascending, one twice", vec![1, 2, 2, 3]),
            ("one serial three times", vec![7, 7, 7]),
            ("descending", vec![1 << 100, 1 << 64, 9, 4, 1]),
            ("descending, one twice", vec![9, 4, 4, 1]),
        ];
        for n in [10, 50, 200] {
            // Many of few serials (so some come twice), and wide ones.
            let few: Vec<u128> = (0..n).map(|_| 1 + u128::from(g.below(n / 2))).collect();
            let wide: Vec<u128> = (0..n)
                .map(|_| u128::from(g.word()) << 64 | u128::from(g.word()) | 1)
                .collect();
            orders.push(("random, some twice", few));
            orders.push(("random, wide", wide));
        }
        for (case, keys) in orders {
            let serial = |k: u128| magnitude(&k.to_be_bytes()).to_vec();
            let mut loading = Loading::with_capacity(keys.len());
            let mut inserted = RevocationSet::default();
            for (i, k) in keys.iter().enumerate() {
                let (at, reason, scope, not_after) = (
                    i as i64 + 1,
                    (i % 3) as u8,
                    i as i64 % 4 - 1,
                    2_000 + i as i64,
                );
                loading.insert_raw(
                    &serial(*k),
                    shomei_store::RevokedEntry {
                        at,
                        reason,
                        not_after,
                        scope: CrlScope::from_key(scope).unwrap(),
                    },
                );
                inserted.insert(
                    &serial(*k),
                    rev(at, (reason != 0).then_some(reason)),
                    listed(scope, not_after),
                );
            }
            let loaded = loading.done();
            assert_eq!(entries(&loaded), entries(&inserted), "{case}");
            assert_eq!(loaded.len(), inserted.len(), "{case}: each serial once");
            // In the compact records, strictly ascending (what a binary
            // search needs): each one found.
            assert_eq!(loaded.base.count, inserted.len(), "{case}");
            let ks: Vec<u128> = loaded.base.iter().map(|(k, _)| k).collect();
            assert!(ks.windows(2).all(|w| w[0] < w[1]), "{case}: {ks:?}");
            for k in &keys {
                assert!(loaded.contains(&serial(*k)), "{case}: {k} found");
                assert_eq!(
                    loaded.get(&serial(*k)).map(|r| r.at.unix_timestamp()),
                    inserted.get(&serial(*k)).map(|r| r.at.unix_timestamp()),
                    "{case}: the first row of {k}"
                );
            }
            assert!(!loaded.contains(&[0xff; 16]), "{case}");
        }
    }

    #[test]
    fn where_and_when_a_revocation_is_listed_reads_back_as_given() {
        // (scope, notAfter given, notAfter read back): saturated to 32 bits,
        // past 2106 meaning for ever, before 1970 the epoch.
        let cases = [
            (-1, i64::MAX, i64::MAX),
            (0, 0, 0),
            (1023, i64::from(u32::MAX) - 1, i64::from(u32::MAX) - 1),
            (5, i64::from(u32::MAX), i64::MAX),
            (5, 1 << 40, i64::MAX),
            (7, -5, 0),
            (512, 1_900_000_000, 1_900_000_000),
        ];
        // (time, reason given, reason read back)
        let revocations = [
            (1_700_000_000, 0, None),
            (-1, 9, Some(9)),
            (0, 255, Some(255)),
        ];
        for (i, ((scope, given, read), (at, reason, reason_back))) in
            cases.iter().zip(revocations.iter().cycle()).enumerate()
        {
            let serial = [i as u8 + 1, 0x33];
            let mut loading = Loading::with_capacity(1);
            loading.insert_raw(
                &serial,
                shomei_store::RevokedEntry {
                    at: *at,
                    reason: *reason,
                    not_after: *given,
                    scope: CrlScope::from_key(*scope).unwrap(),
                },
            );
            let mut inserted = RevocationSet::default();
            inserted.insert(&serial, rev(*at, *reason_back), listed(*scope, *given));
            let want = vec![(
                serial.to_vec(),
                *at,
                *reason_back,
                None,
                listed(*scope, *read),
            )];
            let loaded = loading.done();
            assert_eq!(entries(&loaded), want, "loaded: {scope} {given}");
            assert_eq!(entries(&inserted), want, "inserted: {scope} {given}");
            let back = in_file(&body(&loaded), 0).unwrap();
            assert_eq!(entries(&back), want, "from the snapshot: {scope} {given}");
        }
        // The scope's key + 1 in the low 16 bits (what `scope_digests`
        // groups by), notAfter above.
        assert_eq!(listed(3, 9).pack(), 9 << 16 | 4);
        assert_eq!(listed(-1, 9).pack(), 9 << 16);
        assert_eq!(listed(1023, 0).pack(), 1024);
    }

    #[test]
    fn mix_is_splitmix64() {
        // The reference generator's first outputs from seeds 0 and 1234567
        // (Vigna's splitmix64.c): the digests' collision bound rests on its
        // avalanche, so a changed step is a weaker digest.
        const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;
        assert_eq!(mix(0), 0xe220_a839_7b1d_cdaf);
        assert_eq!(mix(GAMMA), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(mix(GAMMA.wrapping_mul(2)), 0x06c4_5d18_8009_454f);
        assert_eq!(mix(1_234_567), 6_457_827_717_110_365_317);
        assert_eq!(
            mix(1_234_567u64.wrapping_add(GAMMA)),
            3_203_168_211_198_807_973
        );
    }

    /// Magnitudes that a weak digest would confuse: keys apart only in one
    /// half, halves of all zeros or all ones, long serials apart in one bit
    /// or ending in a zero octet.
    fn hard_serials() -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for high in [0u64, 1, 2, 0x8000_0000_0000_0000, u64::MAX] {
            for low in [0u64, 1, 5, 0x8000_0000_0000_0000, u64::MAX] {
                let k = u128::from(high) << 64 | u128::from(low);
                if k != 0 {
                    out.push(magnitude(&k.to_be_bytes()).to_vec());
                }
            }
        }
        for len in 17..=20 {
            for first in [0x11u8, 0x22, 0x80] {
                let mut m = vec![first; len];
                *m.last_mut().unwrap() = 0;
                out.push(m);
            }
        }
        for len in [17, 20] {
            let base: Vec<u8> = (0..len)
                .map(|i| 0x81 ^ (i as u8).wrapping_mul(37))
                .collect();
            for bit in 0..len * 8 {
                let mut m = base.clone();
                m[bit / 8] ^= 1 << (bit % 8);
                out.push(m);
            }
            out.push(base);
        }
        out
    }

    #[test]
    fn distinct_serials_have_distinct_digests_and_leading_zeros_change_none() {
        let serials = hard_serials();
        let unique: std::collections::HashSet<&Vec<u8>> = serials.iter().collect();
        assert_eq!(unique.len(), serials.len(), "the serials are distinct");
        let digest = |m: &[u8]| {
            let mut d = ScopeDigest::default();
            d.add(m);
            d
        };
        let mut sums = std::collections::HashMap::new();
        for m in &serials {
            let d = digest(m);
            assert_eq!(d.count, 1);
            if let Some(other) = sums.insert(d.sum, m) {
                panic!("{m:02x?} and {other:02x?} have one digest");
            }
            // As a CRL writes it (a zero octet before a high bit) and as
            // the encoder copies it (20 octets).
            let mut der = vec![0];
            der.extend_from_slice(m);
            let mut padded = vec![0; 20 - m.len()];
            padded.extend_from_slice(m);
            assert_eq!(digest(&der), d, "{m:02x?}");
            assert_eq!(digest(&padded), d, "{m:02x?}");
            // The set's digest of it, by its key or its octets.
            let mut s = RevocationSet::default();
            s.insert(m, rev(1, None), listed(4, 1_900_000_000));
            assert_eq!(
                s.scope_digests(),
                HashMap::from([(CrlScope::Partition(4), d)]),
                "{m:02x?}"
            );
        }
    }

    #[test]
    fn each_scope_digest_is_what_a_crl_of_its_serials_adds_up_to() {
        // (serial, scope key): loaded, revoked after the load, long.
        let loaded: [(&[u8], i64); 5] = [
            (&[0x90, 1], 0),
            (&[0x12; 16], 0),
            (&[3], 3),
            (&[0xc4; 9], -1),
            (&[0x55; 12], 1023),
        ];
        let later: [(&[u8], i64); 3] = [(&[0x80; 16], 3), (&[7, 7], 1023), (&[0xa0; 3], 5)];
        let long: [(&[u8], i64); 3] = [(&[0x99; 20], -1), (&[0x21; 17], 0), (&[0x8f; 18], 5)];
        let build = |loaded: &[(&[u8], i64)], later: &[(&[u8], i64)]| {
            let mut l = Loading::with_capacity(loaded.len());
            for (i, (serial, scope)) in loaded.iter().enumerate() {
                l.insert_raw(
                    serial,
                    shomei_store::RevokedEntry {
                        at: 1_700_000_000 + i as i64,
                        reason: 1,
                        not_after: 1_900_000_000,
                        scope: CrlScope::from_key(*scope).unwrap(),
                    },
                );
            }
            let mut s = l.done();
            for (serial, scope) in later {
                assert!(s.insert(serial, rev(5, None), listed(*scope, 1_950_000_000)));
            }
            s
        };
        let all: Vec<(&[u8], i64)> = loaded.iter().chain(&later).chain(&long).copied().collect();
        let s = build(&loaded, &[&later[..], &long[..]].concat());
        assert_eq!((s.base.count, s.short.len(), s.long.len()), (5, 3, 3));
        // What a CRL of each scope adds up to (its DER integers, a zero
        // octet before a high bit), apart from the set.
        let mut want: HashMap<CrlScope, ScopeDigest> = HashMap::new();
        for (serial, scope) in &all {
            let mut der = if serial[0] & 0x80 != 0 {
                vec![0]
            } else {
                vec![]
            };
            der.extend_from_slice(serial);
            want.entry(CrlScope::from_key(*scope).unwrap())
                .or_default()
                .add(&der);
        }
        let digests = s.scope_digests();
        assert_eq!(digests, want);
        let counts: std::collections::BTreeMap<CrlScope, usize> =
            digests.iter().map(|(s, d)| (*s, d.count)).collect();
        assert_eq!(
            counts,
            std::collections::BTreeMap::from([
                (CrlScope::Undivided, 2),
                (CrlScope::Partition(0), 3),
                (CrlScope::Partition(3), 2),
                (CrlScope::Partition(5), 2),
                (CrlScope::Partition(1023), 2),
            ]),
            "only the scopes that list a serial"
        );
        // The same serials, in another order and another part of the set,
        // or read back from the snapshot: the same digests.
        let mut reversed = all.clone();
        reversed.reverse();
        assert_eq!(build(&[], &reversed).scope_digests(), digests);
        assert_eq!(build(&reversed, &[]).scope_digests(), digests);
        assert_eq!(in_file(&body(&s), 0).unwrap().scope_digests(), digests);
        // One serial another: as many in its scope, another digest there,
        // the other scopes' unchanged.
        for (i, other) in [&[0x90u8, 2][..], &[0x13; 16], &[0x99; 19], &[0x21; 18]]
            .into_iter()
            .enumerate()
        {
            let mut changed = all.clone();
            let at = [0, 1, 8, 9][i];
            let scope = CrlScope::from_key(changed[at].1).unwrap();
            changed[at].0 = other;
            let d = build(&[], &changed).scope_digests();
            assert_eq!(d[&scope].count, digests[&scope].count, "{other:02x?}");
            assert_ne!(d[&scope].sum, digests[&scope].sum, "{other:02x?}");
            for (s, dg) in &digests {
                if *s != scope {
                    assert_eq!(d[s], *dg, "{other:02x?}: {s}");
                }
            }
        }
        assert!(RevocationSet::default().scope_digests().is_empty());
    }
}
