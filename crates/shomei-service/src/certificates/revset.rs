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

impl RevocationSet {
    /// The set as octets (the snapshot file's body): three counts, then
    /// the short entries' records in ascending order (what `decode` keeps
    /// as they are), the long ones and the invalidity dates, each of a
    /// fixed size.
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        let short = self.base.count + self.short.len();
        out.reserve(
            24 + short * RECORD
                + self.long.len() * LONG_ENTRY
                + self.invalid_since.len() * DATE_ENTRY,
        );
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
        let size = short
            .checked_mul(RECORD)?
            .checked_add(long.checked_mul(LONG_ENTRY)?)?
            .checked_add(dates.checked_mul(DATE_ENTRY)?)?
            .checked_add(24)?;
        if b.len() != size {
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
        assert_eq!(listing(&again), listing(&back));
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
}
