//! CRLs (RFC 5280 §5) written directly as DER and signed with the issuing
//! CA's key: one pass over the entries, no intermediate structures, so a
//! million entries cost a fraction of a second and about their own size in
//! memory. Full CRLs and delta CRLs (§5.2.4) share the encoder.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use time::OffsetDateTime;

use crate::der::tlv;

/// ecdsa-with-SHA256, as a whole AlgorithmIdentifier.
const ALG_ECDSA_SHA256: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];

/// One revoked certificate.
#[derive(Debug, Clone, Copy)]
pub struct CrlEntry<'a> {
    /// Serial, big-endian magnitude without leading zero octets.
    pub serial: &'a [u8],
    pub revoked_at: OffsetDateTime,
    /// RFC 5280 CRLReason; `None` or 0 writes no reason extension.
    pub reason: Option<u8>,
}

/// What kind of CRL to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrlKind {
    Full,
    /// A delta CRL on top of the full CRL with this CRL number.
    Delta {
        base: u64,
    },
}

/// The issuing CA's CRL signer.
pub struct CrlSigner {
    key: EcdsaKeyPair,
    issuer_name: Vec<u8>,
    key_id: Vec<u8>,
    rng: SystemRandom,
}

/// Writes `len` as a DER length.
fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let first = bytes
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - first) as u8);
        out.extend_from_slice(&bytes[first..]);
    }
}

fn len_of_len(len: usize) -> usize {
    if len < 0x80 {
        1
    } else {
        1 + (usize::BITS as usize / 8 - len.leading_zeros() as usize / 8)
    }
}

/// RFC 5280 Time: UTCTime through 2049, GeneralizedTime after.
fn push_time(out: &mut Vec<u8>, t: OffsetDateTime) {
    let t = t.to_offset(time::UtcOffset::UTC);
    let two = |out: &mut Vec<u8>, v: u32| {
        out.push(b'0' + (v / 10 % 10) as u8);
        out.push(b'0' + (v % 10) as u8);
    };
    let year = t.year().clamp(0, 9999) as u32;
    if (1950..2050).contains(&year) {
        out.extend_from_slice(&[0x17, 13]);
        two(out, year % 100);
    } else {
        out.extend_from_slice(&[0x18, 15]);
        two(out, year / 100);
        two(out, year % 100);
    }
    two(out, u8::from(t.month()) as u32);
    two(out, t.day() as u32);
    two(out, t.hour() as u32);
    two(out, t.minute() as u32);
    two(out, t.second() as u32);
    out.push(b'Z');
}

fn integer(magnitude: &[u8]) -> Vec<u8> {
    let m = match magnitude.iter().position(|b| *b != 0) {
        Some(i) => &magnitude[i..],
        None => &[0u8][..],
    };
    let mut content = Vec::with_capacity(m.len() + 1);
    if m[0] & 0x80 != 0 {
        content.push(0);
    }
    content.extend_from_slice(m);
    tlv(0x02, &content)
}

fn extension(oid: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
    let mut c = tlv(0x06, oid);
    if critical {
        c.extend_from_slice(&[0x01, 0x01, 0xff]);
    }
    c.extend(tlv(0x04, value));
    tlv(0x30, &c)
}

impl CrlSigner {
    /// From the issuing CA's certificate and PKCS#8 P-256 key.
    pub fn new(issuing_ca_der: &[u8], pkcs8_key: &[u8]) -> Result<Self, String> {
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8_key)
            .map_err(|e| e.to_string())?;
        let (_, cert) =
            x509_parser::parse_x509_certificate(issuing_ca_der).map_err(|e| e.to_string())?;
        let key_id = cert
            .iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => {
                    Some(k.0.to_vec())
                }
                _ => None,
            })
            .ok_or("the issuing CA certificate has no subject key identifier")?;
        Ok(Self {
            key,
            issuer_name: cert.subject().as_raw().to_vec(),
            key_id,
            rng: SystemRandom::new(),
        })
    }

    /// A signed CRL over `entries` (any order).
    pub fn sign<'a>(
        &self,
        entries: impl ExactSizeIterator<Item = CrlEntry<'a>>,
        number: u64,
        kind: CrlKind,
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Result<Vec<u8>, String> {
        // revokedCertificates, written entry by entry into one buffer.
        let mut list = Vec::with_capacity(entries.len() * 52);
        for e in entries {
            let serial = integer(e.serial);
            let mut time = Vec::with_capacity(17);
            push_time(&mut time, e.revoked_at);
            // Extensions { reasonCode }, only for a real reason.
            let reason: Option<[u8; 14]> = e.reason.filter(|r| *r != 0).map(|r| {
                [
                    0x30, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55, 0x1d, 0x15, 0x04, 0x03, 0x0a, 0x01, r,
                ]
            });
            let len = serial.len() + time.len() + reason.map_or(0, |r| r.len());
            list.push(0x30);
            push_len(&mut list, len);
            list.extend_from_slice(&serial);
            list.extend_from_slice(&time);
            if let Some(r) = reason {
                list.extend_from_slice(&r);
            }
        }
        let mut exts = Vec::new();
        // AuthorityKeyIdentifier { [0] keyIdentifier }
        exts.extend(extension(
            &[0x55, 0x1d, 0x23],
            false,
            &tlv(0x30, &tlv(0x80, &self.key_id)),
        ));
        exts.extend(extension(
            &[0x55, 0x1d, 0x14],
            false,
            &integer(&number.to_be_bytes()),
        ));
        if let CrlKind::Delta { base } = kind {
            exts.extend(extension(
                &[0x55, 0x1d, 0x1b],
                true,
                &integer(&base.to_be_bytes()),
            ));
        }
        let mut head = vec![0x02, 0x01, 0x01]; // v2
        head.extend_from_slice(ALG_ECDSA_SHA256);
        head.extend_from_slice(&self.issuer_name);
        push_time(&mut head, this_update);
        push_time(&mut head, next_update);
        let tail = tlv(0xa0, &tlv(0x30, &exts));
        let list_len = if list.is_empty() {
            0
        } else {
            1 + len_of_len(list.len()) + list.len()
        };
        let tbs_len = head.len() + list_len + tail.len();
        let mut tbs = Vec::with_capacity(1 + len_of_len(tbs_len) + tbs_len);
        tbs.push(0x30);
        push_len(&mut tbs, tbs_len);
        tbs.extend_from_slice(&head);
        if !list.is_empty() {
            tbs.push(0x30);
            push_len(&mut tbs, list.len());
            tbs.extend_from_slice(&list);
        }
        drop(list);
        tbs.extend_from_slice(&tail);
        let sig = self.key.sign(&self.rng, &tbs).map_err(|e| e.to_string())?;
        let mut bits = Vec::with_capacity(sig.as_ref().len() + 1);
        bits.push(0);
        bits.extend_from_slice(sig.as_ref());
        let bits = tlv(0x03, &bits);
        let body_len = tbs.len() + ALG_ECDSA_SHA256.len() + bits.len();
        let mut out = Vec::with_capacity(1 + len_of_len(body_len) + body_len);
        out.push(0x30);
        push_len(&mut out, body_len);
        out.extend_from_slice(&tbs);
        out.extend_from_slice(ALG_ECDSA_SHA256);
        out.extend_from_slice(&bits);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_match_the_generic_encoder() {
        for n in [0usize, 1, 127, 128, 255, 256, 65535, 65536, 50_000_000] {
            let mut a = Vec::new();
            push_len(&mut a, n);
            assert_eq!(a.len(), len_of_len(n), "{n}");
            let t = tlv(0x04, &vec![0; n.min(70_000)]);
            if n <= 70_000 {
                assert_eq!(&t[1..1 + a.len()], &a[..], "{n}");
            }
        }
    }

    #[test]
    fn times_switch_to_generalized_in_2050() {
        let mut a = Vec::new();
        push_time(&mut a, time::macros::datetime!(2026-11-24 01:02:03 UTC));
        assert_eq!(a, b"\x17\x0d261124010203Z");
        let mut b = Vec::new();
        push_time(&mut b, time::macros::datetime!(2050-01-01 00:00:00 UTC));
        assert_eq!(b, b"\x18\x0f20500101000000Z");
    }

    #[test]
    fn integers_are_positive_and_minimal() {
        assert_eq!(integer(&[0, 0, 5]), vec![2, 1, 5]);
        assert_eq!(integer(&[0x80]), vec![2, 2, 0, 0x80]);
        assert_eq!(integer(&0u64.to_be_bytes()), vec![2, 1, 0]);
    }
}
