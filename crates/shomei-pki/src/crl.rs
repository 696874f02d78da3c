//! CRLs (RFC 5280 §5) written directly as DER and signed with the issuing
//! CA's key: one pass over the entries, no intermediate structures, so a
//! million entries cost a fraction of a second and about their own size in
//! memory. Full CRLs and delta CRLs (§5.2.4) share the encoder.

use time::OffsetDateTime;

use crate::CaKey;
use crate::der::{integer, len_of_len, magnitude, push_len, tlv};

/// ecdsa-with-SHA256, as a whole AlgorithmIdentifier.
const ALG_ECDSA_SHA256: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];

/// One revoked certificate.
#[derive(Debug, Clone, Copy)]
pub struct CrlEntry<'a> {
    /// Serial, big-endian magnitude (leading zero octets are dropped).
    pub serial: &'a [u8],
    /// When it was revoked: the entry's revocationDate.
    pub revoked_at: OffsetDateTime,
    /// RFC 5280 CRLReason; `None` or 0 writes no reason extension.
    pub reason: Option<u8>,
    /// RFC 5280 §5.3.2 invalidity date, when known.
    pub invalidity: Option<OffsetDateTime>,
}

/// What kind of CRL to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrlKind {
    /// A complete CRL of its scope (not a delta).
    Full,
    /// A delta CRL on top of the full CRL with this CRL number.
    Delta {
        /// The full CRL's number (the Delta CRL Indicator).
        base: u64,
    },
}

/// What a CRL says besides its entries.
#[derive(Debug, Clone, Copy)]
pub struct CrlHeader<'a> {
    /// The CRL number: grows with every CRL of its scope (RFC 5280 §5.2.3).
    pub number: u64,
    /// Full or delta.
    pub kind: CrlKind,
    /// When it was made.
    pub this_update: OffsetDateTime,
    /// When the next one is due at the latest: until then a relying party may
    /// keep using this one.
    pub next_update: OffsetDateTime,
    /// The distribution point this CRL covers (its Issuing Distribution
    /// Point): the URL in the CRL distribution point of the certificates
    /// it is for. `None`: a complete CRL for every certificate of the CA.
    pub scope_url: Option<&'a str>,
}

/// The issuing CA's CRL signer.
pub struct CrlSigner {
    key: CaKey,
    issuer_name: Vec<u8>,
    key_id: Vec<u8>,
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

fn extension(oid: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
    let mut c = tlv(0x06, oid);
    if critical {
        c.extend_from_slice(&[0x01, 0x01, 0xff]);
    }
    c.extend(tlv(0x04, value));
    tlv(0x30, &c)
}

impl CrlSigner {
    /// From the issuing CA's certificate and its P-256 key (a file's or the HSM's).
    pub fn new(issuing_ca_der: &[u8], key: CaKey) -> Result<Self, String> {
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
        })
    }

    /// A signed CRL over `entries` (any order). The iterator is walked
    /// twice — once to size the CRL, once to write it — so the DER is
    /// written straight into one buffer of its final size: the peak memory
    /// of a generation is the CRL itself.
    pub fn sign<'a>(
        &self,
        entries: impl Iterator<Item = CrlEntry<'a>> + Clone,
        header: &CrlHeader<'_>,
    ) -> Result<Vec<u8>, String> {
        let exact: usize = entries.clone().map(|e| tlv_len(entry_len(&e))).sum();
        let mut list = CrlList::with_capacity(exact);
        for e in entries {
            list.push(&e);
        }
        self.sign_list(list, header)
    }

    /// Signs a CRL over entries already written into `list` (see
    /// [`CrlList`]): the headers go into the room kept in front of the
    /// entries, so the entries are never copied.
    pub fn sign_list(&self, list: CrlList, header: &CrlHeader<'_>) -> Result<Vec<u8>, String> {
        self.sign_in_place(list, header).map(SignedCrl::into_vec)
    }

    /// [`sign_list`](Self::sign_list), the CRL left where it was written:
    /// in front of and after the entries in `list`'s own buffer, so that
    /// not one octet of the entries moves (at a million revoked a
    /// partition's entries are most of a megabyte; only its hash is paid).
    pub fn sign_in_place(
        &self,
        list: CrlList,
        header: &CrlHeader<'_>,
    ) -> Result<SignedCrl, String> {
        let CrlHeader {
            number,
            kind,
            this_update,
            next_update,
            scope_url,
        } = *header;
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
        if let Some(url) = scope_url {
            // IssuingDistributionPoint { [0] distributionPoint { [0]
            // fullName { [6] uniformResourceIdentifier } } }, critical
            // (RFC 5280 §5.2.5): this CRL covers exactly the certificates
            // whose CRL distribution point names `url`.
            let uri = tlv(0x86, url.as_bytes());
            let idp = tlv(0x30, &tlv(0xa0, &tlv(0xa0, &uri)));
            exts.extend(extension(&[0x55, 0x1d, 0x1c], true, &idp));
        }
        let mut head = vec![0x02, 0x01, 0x01]; // v2
        head.extend_from_slice(ALG_ECDSA_SHA256);
        head.extend_from_slice(&self.issuer_name);
        push_time(&mut head, this_update);
        push_time(&mut head, next_update);
        let tail = tlv(0xa0, &tlv(0x30, &exts));

        let mut out = list.buf;
        let list_content = out.len() - ROOM;
        // Everything before the entries: TBS header, fields, list header.
        let mut front = Vec::with_capacity(head.len() + 16);
        let list_len = if list_content == 0 {
            0
        } else {
            tlv_len(list_content)
        };
        let tbs_len = head.len() + list_len + tail.len();
        front.push(0x30);
        push_len(&mut front, tbs_len);
        front.extend_from_slice(&head);
        if list_content != 0 {
            front.push(0x30);
            push_len(&mut front, list_content);
        }
        // The outer SEQUENCE header goes in front of that, once the
        // signature's length is known; keep room for it.
        let outer_room = 1 + 1 + 8;
        let tbs_start = if front.len() + outer_room <= ROOM {
            let at = ROOM - front.len();
            out[at..ROOM].copy_from_slice(&front);
            at
        } else {
            // An issuer name too long for the room: make room (one copy).
            let grow = front.len() + outer_room - ROOM;
            out.splice(0..0, std::iter::repeat_n(0, grow));
            let at = ROOM + grow - front.len();
            out[at..ROOM + grow].copy_from_slice(&front);
            at
        };
        out.extend_from_slice(&tail);
        let sig = self.key.sign_der(&out[tbs_start..])?;
        let mut bits = Vec::with_capacity(sig.len() + 1);
        bits.push(0);
        bits.extend_from_slice(&sig);
        let bits = tlv(0x03, &bits);
        let body_len = out.len() - tbs_start + ALG_ECDSA_SHA256.len() + bits.len();
        out.extend_from_slice(ALG_ECDSA_SHA256);
        out.extend_from_slice(&bits);
        let mut header = vec![0x30];
        push_len(&mut header, body_len);
        let start = tbs_start - header.len();
        out[start..tbs_start].copy_from_slice(&header);
        Ok(SignedCrl { buf: out, start })
    }
}

/// A signed CRL in the buffer its entries were written into: its DER is
/// the buffer from `start` on (what is before is the unused part of the
/// room kept for the headers).
#[derive(Debug)]
pub struct SignedCrl {
    buf: Vec<u8>,
    start: usize,
}

impl SignedCrl {
    /// The CRL's DER.
    pub fn der(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// The buffer and where the CRL starts in it (for a shared buffer that
    /// serves a slice of it, without a copy).
    pub fn into_parts(self) -> (Vec<u8>, usize) {
        (self.buf, self.start)
    }

    /// The CRL's DER alone (the entries moved to the front: one copy).
    pub fn into_vec(self) -> Vec<u8> {
        let mut v = self.buf;
        v.drain(..self.start);
        v
    }
}

/// Room kept in front of the entries for the CRL's headers and fields.
const ROOM: usize = 1024;
/// Capacity kept after the entries for the extensions and the signature
/// (about 200 octets with a distribution point URL of 40), so that signing
/// never grows the buffer (a grown buffer is a copy of every entry).
const TAIL_ROOM: usize = 512;

/// The revokedCertificates of a CRL being written, entry by entry, into the
/// buffer that becomes the CRL: a million entries stream from the database
/// into it without another copy of them anywhere. A list kept and cloned
/// (one memory copy) is the cheap way to re-sign a CRL that only grew.
#[derive(Clone)]
pub struct CrlList {
    buf: Vec<u8>,
}

impl Default for CrlList {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl CrlList {
    /// `bytes`: the expected size of the entries (more is fine).
    pub fn with_capacity(bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(ROOM + bytes + TAIL_ROOM);
        buf.resize(ROOM, 0);
        Self { buf }
    }

    /// Appends one entry, encoded at once into the CRL's buffer.
    pub fn push(&mut self, e: &CrlEntry<'_>) {
        write_entry(&mut self.buf, e);
    }

    /// A list of entries already encoded (a kept CRL's, see
    /// [`KeptCrl::entries_at`]), with room for `more` octets to come.
    pub fn from_encoded(entries: &[u8], more: usize) -> Self {
        let mut l = Self::with_capacity(entries.len() + more);
        l.buf.extend_from_slice(entries);
        l
    }

    /// Appends the entries of `other` (already encoded: one copy).
    pub fn append(&mut self, other: &CrlList) {
        self.buf.extend_from_slice(&other.buf[ROOM..]);
    }

    /// A copy written into `buf`, whose allocation is kept when it is large
    /// enough (what it held is dropped): the buffer of a CRL no longer served
    /// takes the next one, without a fresh allocation to fault in.
    pub fn copy_into(&self, mut buf: Vec<u8>) -> Self {
        let needed = self.buf.len() + TAIL_ROOM;
        buf.clear();
        if buf.capacity() < needed {
            // Fresh (nothing to move), with room to grow for a while.
            buf = Vec::with_capacity(needed + needed / 8);
        }
        buf.extend_from_slice(&self.buf);
        Self { buf }
    }

    /// A copy with room for `more` bytes of entries to come.
    pub fn clone_with_room(&self, more: usize) -> Self {
        let mut buf = Vec::with_capacity(self.buf.len() + more + TAIL_ROOM);
        buf.extend_from_slice(&self.buf);
        Self { buf }
    }

    /// The encoded size of the entries so far, in octets.
    pub fn len(&self) -> usize {
        self.buf.len() - ROOM
    }

    /// Whether no entry has been added.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Length of a whole TLV with `content` octets.
fn tlv_len(content: usize) -> usize {
    1 + len_of_len(content) + content
}

fn time_len(t: OffsetDateTime) -> usize {
    if (1950..2050).contains(&t.to_offset(time::UtcOffset::UTC).year()) {
        15
    } else {
        17
    }
}

/// Extension { reasonCode }, only for a real reason.
fn reason_ext(reason: Option<u8>) -> Option<[u8; 12]> {
    reason.filter(|r| *r != 0).map(|r| {
        [
            0x30, 0x0a, 0x06, 0x03, 0x55, 0x1d, 0x15, 0x04, 0x03, 0x0a, 0x01, r,
        ]
    })
}

/// Extension { invalidityDate GeneralizedTime }.
fn invalidity_ext(t: Option<OffsetDateTime>) -> Option<[u8; 26]> {
    let t = t?;
    let mut time = Vec::with_capacity(17);
    // GeneralizedTime always (RFC 5280 §5.3.2), whatever the year.
    let t = t.to_offset(time::UtcOffset::UTC);
    time.extend_from_slice(&[0x18, 15]);
    let year = t.year().clamp(0, 9999) as u32;
    for v in [
        year / 100,
        year % 100,
        u8::from(t.month()) as u32,
        t.day() as u32,
        t.hour() as u32,
        t.minute() as u32,
        t.second() as u32,
    ] {
        time.push(b'0' + (v / 10 % 10) as u8);
        time.push(b'0' + (v % 10) as u8);
    }
    time.push(b'Z');
    let mut out = [0u8; 26];
    out[..9].copy_from_slice(&[0x30, 0x18, 0x06, 0x03, 0x55, 0x1d, 0x18, 0x04, 0x11]);
    out[9..].copy_from_slice(&time);
    Some(out)
}

/// Content length of an entry's crlEntryExtensions SEQUENCE (0: none).
fn entry_exts_len(e: &CrlEntry<'_>) -> usize {
    reason_ext(e.reason).map_or(0, |r| r.len())
        + invalidity_ext(e.invalidity).map_or(0, |r| r.len())
}

/// Content length of one revokedCertificates entry.
fn entry_len(e: &CrlEntry<'_>) -> usize {
    let m = magnitude(e.serial);
    let serial = tlv_len(m.len() + usize::from(m[0] & 0x80 != 0));
    let exts = entry_exts_len(e);
    serial + time_len(e.revoked_at) + if exts == 0 { 0 } else { tlv_len(exts) }
}

fn write_entry(out: &mut Vec<u8>, e: &CrlEntry<'_>) {
    out.push(0x30);
    push_len(out, entry_len(e));
    let m = magnitude(e.serial);
    let pad = m[0] & 0x80 != 0;
    out.push(0x02);
    push_len(out, m.len() + usize::from(pad));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(m);
    push_time(out, e.revoked_at);
    let exts = entry_exts_len(e);
    if exts != 0 {
        out.push(0x30);
        push_len(out, exts);
        if let Some(r) = reason_ext(e.reason) {
            out.extend_from_slice(&r);
        }
        if let Some(i) = invalidity_ext(e.invalidity) {
            out.extend_from_slice(&i);
        }
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
}

/// What a CRL of ours lists, as read back (a node's own copy of the newest
/// CRL, to re-import revocations a restored database is missing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadCrl {
    /// Its CRL number.
    pub number: u64,
    /// Serial (DER content octets), revocation time, reason code.
    pub entries: Vec<(Vec<u8>, OffsetDateTime, Option<u8>)>,
}

/// A CRL's number read from its extensions alone, without reading its
/// entries or checking its signature: enough to see that a kept copy is not
/// newer than what the database knows (a start then reads none of its
/// million entries). `None` when it is not found; a number read here is not
/// trusted for anything else (`read_own` checks the CRL).
pub fn crl_number_of(der: &[u8]) -> Option<u64> {
    use crate::der::{expect, read};
    const CRL_NUMBER: &[u8] = &[0x55, 0x1d, 0x14];
    let list = expect(der, 0x30)?;
    let mut tbs = expect(list.content, 0x30)?.content;
    while !tbs.is_empty() {
        let e = read(tbs)?;
        tbs = e.rest;
        if e.tag != 0xa0 {
            continue;
        }
        let mut exts = expect(e.content, 0x30)?.content;
        while !exts.is_empty() {
            let ext = expect(exts, 0x30)?;
            exts = ext.rest;
            let oid = expect(ext.content, 0x06)?;
            if oid.content != CRL_NUMBER {
                continue;
            }
            let mut rest = oid.rest;
            if let Some(b) = expect(rest, 0x01) {
                rest = b.rest;
            }
            let value = expect(expect(rest, 0x04)?.content, 0x02)?.content;
            let digits = value.strip_prefix(&[0]).unwrap_or(value);
            if digits.len() > 8 || value.first().is_some_and(|b| *b & 0x80 != 0) {
                return None;
            }
            return Some(digits.iter().fold(0u64, |n, b| n << 8 | u64::from(*b)));
        }
        return None;
    }
    None
}

/// Reads a full CRL and checks it is signed by the issuing CA whose
/// certificate is `issuing_ca_der`.
pub fn read_own(der: &[u8], issuing_ca_der: &[u8]) -> Result<ReadCrl, String> {
    let (_, ca) = x509_parser::parse_x509_certificate(issuing_ca_der).map_err(|e| e.to_string())?;
    let (_, crl) = x509_parser::parse_x509_crl(der).map_err(|e| format!("not a CRL: {e}"))?;
    crl.verify_signature(ca.public_key())
        .map_err(|e| format!("CRL not signed by the issuing CA: {e}"))?;
    let number = crl
        .crl_number()
        .and_then(|n| u64::try_from(n.clone()).ok())
        .ok_or("CRL without a usable CRL number")?;
    let mut entries = Vec::new();
    for r in crl.iter_revoked_certificates() {
        let at = OffsetDateTime::from_unix_timestamp(r.revocation_date.timestamp())
            .map_err(|e| e.to_string())?;
        let reason = r.reason_code().map(|(_, c)| c.0);
        entries.push((r.raw_serial().to_vec(), at, reason));
    }
    Ok(ReadCrl { number, entries })
}

/// A kept copy of one of our own CRLs, read so that a start can serve it
/// again instead of signing a new one: what it says besides its entries,
/// where its entries are, and how many. Its signature by the issuing CA is
/// checked; its entries are walked, not decoded (see [`KeptCrl::serials`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptCrl {
    /// Its CRL number.
    pub number: u64,
    /// `Some(base)` for a delta CRL.
    pub delta_base: Option<u64>,
    /// When it was made.
    pub this_update: OffsetDateTime,
    /// When it stops being current: a copy past it is never served again.
    pub next_update: OffsetDateTime,
    /// The URI of its Issuing Distribution Point, if it has one.
    pub scope_url: Option<String>,
    /// How many revokedCertificates entries it has.
    pub entries: usize,
    /// Where the content of its revokedCertificates SEQUENCE is in the DER
    /// (empty when it lists nothing).
    list: std::ops::Range<usize>,
}

/// RFC 5280 Time (UTCTime or GeneralizedTime, in UTC, to the second).
fn read_time(e: &crate::der::Element<'_>) -> Option<OffsetDateTime> {
    let s = std::str::from_utf8(e.content).ok()?;
    let (year, rest) = match (e.tag, s.len()) {
        (0x17, 13) => {
            let yy: i32 = s.get(..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &s[2..])
        }
        (0x18, 15) => (s.get(..4)?.parse().ok()?, &s[4..]),
        _ => return None,
    };
    let rest = rest.strip_suffix('Z')?;
    if !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let two = |i: usize| rest[i..i + 2].parse::<u8>().ok();
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(two(0)?).ok()?, two(2)?).ok()?;
    let t = time::Time::from_hms(two(4)?, two(6)?, two(8)?).ok()?;
    Some(time::PrimitiveDateTime::new(date, t).assume_utc())
}

/// The value of an INTEGER of at most 8 octets, not negative.
fn read_u64(content: &[u8]) -> Option<u64> {
    if content.first().is_none_or(|b| *b & 0x80 != 0) {
        return None;
    }
    let digits = content.strip_prefix(&[0]).unwrap_or(content);
    (digits.len() <= 8).then(|| digits.iter().fold(0u64, |n, b| n << 8 | u64::from(*b)))
}

/// Reads a kept copy of one of our CRLs (see [`KeptCrl`]): signed with
/// ECDSA P-256 SHA-256 by the issuing CA whose certificate is
/// `issuing_ca_der`, issued by its name, nothing after it.
pub fn read_kept(der: &[u8], issuing_ca_der: &[u8]) -> Result<KeptCrl, String> {
    use crate::der::{expect, read};
    let (_, ca) = x509_parser::parse_x509_certificate(issuing_ca_der).map_err(|e| e.to_string())?;
    let bad = |what: &str| format!("not a CRL of ours: {what}");
    let outer = expect(der, 0x30).ok_or_else(|| bad("no outer SEQUENCE"))?;
    if !outer.rest.is_empty() {
        return Err(bad("octets after it"));
    }
    let tbs = expect(outer.content, 0x30).ok_or_else(|| bad("no TBSCertList"))?;
    let alg = read(tbs.rest).ok_or_else(|| bad("no signature algorithm"))?;
    if alg.raw != ALG_ECDSA_SHA256 {
        return Err(bad("not signed with ecdsa-with-SHA256"));
    }
    let bits = expect(alg.rest, 0x03).ok_or_else(|| bad("no signature"))?;
    let sig = bits
        .content
        .strip_prefix(&[0])
        .ok_or_else(|| bad("signature with unused bits"))?;
    if !bits.rest.is_empty() {
        return Err(bad("octets after the signature"));
    }
    aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1,
        ca.public_key().subject_public_key.data.as_ref(),
    )
    .verify(tbs.raw, sig)
    .map_err(|_| "CRL not signed by the issuing CA".to_string())?;

    let version = expect(tbs.content, 0x02).ok_or_else(|| bad("no version"))?;
    if version.content != [1] {
        return Err(bad("not a v2 CRL"));
    }
    let inner_alg = read(version.rest).ok_or_else(|| bad("no signature field"))?;
    if inner_alg.raw != ALG_ECDSA_SHA256 {
        return Err(bad("its signature field is not ecdsa-with-SHA256"));
    }
    let issuer = expect(inner_alg.rest, 0x30).ok_or_else(|| bad("no issuer"))?;
    if issuer.raw != ca.subject().as_raw() {
        return Err(bad("another issuer"));
    }
    let this = read(issuer.rest).ok_or_else(|| bad("no thisUpdate"))?;
    let next = read(this.rest).ok_or_else(|| bad("no nextUpdate"))?;
    let this_update = read_time(&this).ok_or_else(|| bad("thisUpdate unreadable"))?;
    let next_update = read_time(&next).ok_or_else(|| bad("nextUpdate unreadable"))?;
    let mut rest = next.rest;
    let mut list = 0..0;
    let mut entries = 0usize;
    if let Some(l) = expect(rest, 0x30) {
        let start = l.content.as_ptr() as usize - der.as_ptr() as usize;
        list = start..start + l.content.len();
        let mut e = l.content;
        while !e.is_empty() {
            let entry = expect(e, 0x30).ok_or_else(|| bad("an entry is not a SEQUENCE"))?;
            expect(entry.content, 0x02).ok_or_else(|| bad("an entry has no serial"))?;
            entries += 1;
            e = entry.rest;
        }
        rest = l.rest;
    }
    let (mut number, mut delta_base, mut scope_url) = (None, None, None);
    let exts = expect(rest, 0xa0).ok_or_else(|| bad("no extensions"))?;
    if !exts.rest.is_empty() {
        return Err(bad("octets after its extensions"));
    }
    let mut all = expect(exts.content, 0x30)
        .ok_or_else(|| bad("extensions unreadable"))?
        .content;
    while !all.is_empty() {
        let ext = expect(all, 0x30).ok_or_else(|| bad("an extension unreadable"))?;
        all = ext.rest;
        let oid = expect(ext.content, 0x06).ok_or_else(|| bad("an extension without OID"))?;
        let mut after = oid.rest;
        if let Some(b) = expect(after, 0x01) {
            after = b.rest;
        }
        let value = expect(after, 0x04)
            .ok_or_else(|| bad("an extension without value"))?
            .content;
        match oid.content {
            [0x55, 0x1d, 0x14] => {
                number = expect(value, 0x02).and_then(|i| read_u64(i.content));
            }
            [0x55, 0x1d, 0x1b] => {
                delta_base = Some(
                    expect(value, 0x02)
                        .and_then(|i| read_u64(i.content))
                        .ok_or_else(|| bad("delta CRL indicator unreadable"))?,
                );
            }
            [0x55, 0x1d, 0x1c] => {
                // IssuingDistributionPoint { [0] { [0] fullName { [6] URI } } }
                let uri = expect(value, 0x30)
                    .and_then(|idp| expect(idp.content, 0xa0))
                    .and_then(|dp| expect(dp.content, 0xa0))
                    .and_then(|full| expect(full.content, 0x86))
                    .and_then(|u| std::str::from_utf8(u.content).ok())
                    .ok_or_else(|| bad("issuing distribution point unreadable"))?;
                scope_url = Some(uri.to_string());
            }
            _ => {}
        }
    }
    Ok(KeptCrl {
        number: number.ok_or_else(|| bad("no CRL number"))?,
        delta_base,
        this_update,
        next_update,
        scope_url,
        entries,
        list,
    })
}

impl KeptCrl {
    /// Every entry's serial (the INTEGER's content octets, as written:
    /// a leading zero octet when the top bit is set), in the CRL's order.
    /// `der` is the copy this was read from.
    pub fn serials<'a>(&self, der: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        let mut e = der.get(self.list.clone()).unwrap_or_default();
        std::iter::from_fn(move || {
            let entry = crate::der::expect(e, 0x30)?;
            e = entry.rest;
            crate::der::expect(entry.content, 0x02).map(|s| s.content)
        })
    }

    /// Where its entries' octets are in `der`: with
    /// [`CrlList::from_encoded`], the list the next CRL of its scope is
    /// signed over.
    pub fn entries_at(&self) -> std::ops::Range<usize> {
        self.list.clone()
    }
}
