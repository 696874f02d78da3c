//! The revocation set: every revoked serial of the issuing CA with its time
//! and reason, compact enough to hold a million in tens of megabytes.
//! Serials of up to 16 octets (all of ours) are keyed as one `u128`; longer
//! ones (RFC 5280 allows 20) sit in a small map beside. Lookups hash one
//! key: their cost does not depend on how many serials are revoked.

use std::collections::HashMap;

use time::OffsetDateTime;

use crate::Revocation;

#[derive(Default)]
pub(crate) struct RevocationSet {
    short: HashMap<u128, Packed>,
    long: HashMap<Vec<u8>, Packed>,
    /// Invalidity dates (Unix seconds) of the few entries that have one,
    /// by serial magnitude.
    invalid_since: HashMap<Vec<u8>, i64>,
}

/// No invalidity date, in `Copied`.
const NO_DATE: i64 = i64::MIN;

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
    packed: Packed,
    invalidity: i64,
}

impl Copied {
    pub(crate) fn serial(&self) -> &[u8] {
        &self.serial
    }

    pub(crate) fn revocation(&self) -> Revocation {
        self.packed.get(self.invalidity)
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

    pub(crate) fn insert(&mut self, serial: &[u8], r: Revocation) {
        let m = magnitude(serial);
        if let Some(t) = r.invalidity {
            self.invalid_since.insert(m.to_vec(), t.unix_timestamp());
        }
        match short_key(m) {
            Some(k) => {
                self.short.insert(k, Packed::new(r));
            }
            None => {
                self.long.insert(m.to_vec(), Packed::new(r));
            }
        }
    }

    /// As `insert`, from the database's form: Unix seconds, reason 0 for none.
    pub(crate) fn insert_raw(&mut self, serial: &[u8], at: i64, reason: u8) {
        let p = Packed(at << 8 | i64::from(reason));
        let m = magnitude(serial);
        match short_key(m) {
            Some(k) => {
                self.short.insert(k, p);
            }
            None => {
                self.long.insert(m.to_vec(), p);
            }
        }
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
        .map(|p| p.get(self.invalidity_of(m)))
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
        out.extend(self.short.iter().map(|(k, p)| {
            let mut serial = [0u8; 20];
            serial[4..].copy_from_slice(&k.to_be_bytes());
            let invalidity = self.invalidity_of(magnitude(&serial));
            Copied {
                serial,
                packed: *p,
                invalidity,
            }
        }));
        out.extend(self.long.iter().map(|(k, p)| {
            let mut serial = [0u8; 20];
            serial[20 - k.len()..].copy_from_slice(k);
            Copied {
                serial,
                packed: *p,
                invalidity: self.invalidity_of(k),
            }
        }));
        out
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
        s.insert(&short, rev(1_800_000_000, Some(4)));
        s.insert(&long, rev(1_700_000_000, None));
        s.insert(&[0, 0, 5], rev(1, Some(1)));
        assert_eq!(s.len(), 3);
        assert!(s.contains(&short));
        assert!(s.contains(&long));
        assert!(s.contains(&[5]), "leading zeros do not make another serial");
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
    }
}
