//! Which CRL lists a certificate (RFC 5280 §5.2.5). Certificates name one
//! of K CRL partitions in their CRL distribution point, chosen from their
//! serial at issuance, so that a revocation re-signs one small CRL rather
//! than one that lists every revocation. Certificates issued before
//! partitions name the undivided CRL, which is published for them until
//! the last of them has expired.

use std::fmt;

/// The most partitions a CA may have (so that a URL or a database row can
/// never name an unbounded number of CRLs).
pub const MAX_CRL_PARTITIONS: u16 = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
/// The CRL a certificate names in its distribution point.
pub enum CrlScope {
    /// The one CRL of the certificates issued before partitions.
    Undivided,
    /// Partition `n` of `0..K`.
    Partition(u16),
}

impl CrlScope {
    /// The partition for a new certificate with this serial, of `k`
    /// partitions: the serial is random, so partitions fill evenly.
    pub fn for_serial(serial: &[u8], k: u16) -> Self {
        let k = k.clamp(1, MAX_CRL_PARTITIONS);
        let tail = serial
            .iter()
            .rev()
            .take(4)
            .rev()
            .fold(0u32, |a, b| a << 8 | u32::from(*b));
        Self::Partition((tail % u32::from(k)) as u16)
    }

    /// As stored in the database: the partition, or -1 for the undivided CRL.
    pub fn key(self) -> i64 {
        match self {
            Self::Undivided => -1,
            Self::Partition(p) => i64::from(p),
        }
    }

    /// From the database's key; `None` for a key no scope has.
    pub fn from_key(key: i64) -> Option<Self> {
        match key {
            -1 => Some(Self::Undivided),
            p if (0..i64::from(MAX_CRL_PARTITIONS)).contains(&p) => Some(Self::Partition(p as u16)),
            _ => None,
        }
    }

    /// The partition's number as written in URLs and metric labels.
    pub fn label(self) -> String {
        match self {
            Self::Undivided => "undivided".to_owned(),
            Self::Partition(p) => p.to_string(),
        }
    }
}

impl fmt::Display for CrlScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Undivided => f.write_str("the undivided CRL"),
            Self::Partition(p) => write!(f, "CRL partition {p}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_spread_over_every_partition() {
        let mut seen = [0u32; 16];
        for i in 0u32..1600 {
            let serial = (i.wrapping_mul(2_654_435_761)).to_be_bytes();
            let CrlScope::Partition(p) = CrlScope::for_serial(&serial, 16) else {
                panic!("a new certificate always gets a partition")
            };
            seen[p as usize] += 1;
        }
        assert!(seen.iter().all(|n| *n > 50), "{seen:?}");
        assert_eq!(
            CrlScope::for_serial(&[1, 2, 3], 0),
            CrlScope::Partition(0),
            "K is at least 1"
        );
    }

    #[test]
    fn keys_round_trip() {
        for s in [
            CrlScope::Undivided,
            CrlScope::Partition(0),
            CrlScope::Partition(MAX_CRL_PARTITIONS - 1),
        ] {
            assert_eq!(CrlScope::from_key(s.key()), Some(s));
        }
        assert_eq!(CrlScope::from_key(-2), None);
        assert_eq!(CrlScope::from_key(i64::from(MAX_CRL_PARTITIONS)), None);
    }
}
