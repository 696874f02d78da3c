//! The few DER structures rcgen does not write for us.

use rcgen::CustomExtension;

/// id-pe-authorityInfoAccess (1.3.6.1.5.5.7.1.1)
const OID_AIA: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];
/// id-ad-ocsp (1.3.6.1.5.5.7.48.1), DER-encoded content octets.
const OID_AD_OCSP: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];

/// Writes `len` as a DER length (short form below 128, else long form).
pub(crate) fn push_len(out: &mut Vec<u8>, len: usize) {
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

/// Octets `push_len` writes for `len`.
pub(crate) fn len_of_len(len: usize) -> usize {
    if len < 0x80 {
        1
    } else {
        1 + (usize::BITS as usize / 8 - len.leading_zeros() as usize / 8)
    }
}

/// A DER tag and the length of `len` octets of content.
pub(crate) fn push_header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(tag);
    push_len(out, len);
}

/// Octets `push_header` writes for `len`.
pub(crate) fn header_len(len: usize) -> usize {
    1 + len_of_len(len)
}

pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(header_len(content.len()) + content.len());
    push_header(&mut out, tag, content.len());
    out.extend_from_slice(content);
    out
}

/// A big-endian magnitude without leading zero octets (at least one octet).
pub(crate) fn magnitude(octets: &[u8]) -> &[u8] {
    match octets.iter().position(|b| *b != 0) {
        Some(i) => &octets[i..],
        None => &[0u8][..],
    }
}

/// An INTEGER of the unsigned big-endian `magnitude`, minimal: leading
/// zero octets dropped, one added when the top bit is set.
pub(crate) fn integer(magnitude_octets: &[u8]) -> Vec<u8> {
    let m = magnitude(magnitude_octets);
    let mut content = Vec::with_capacity(m.len() + 1);
    if m[0] & 0x80 != 0 {
        content.push(0);
    }
    content.extend_from_slice(m);
    tlv(0x02, &content)
}

/// One DER element read from the front of `input`.
pub(crate) struct Element<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    /// The whole element: tag, length and content.
    pub raw: &'a [u8],
    pub rest: &'a [u8],
}

/// Reads one DER element (definite lengths up to 4 octets). `None` for
/// anything malformed or truncated: input from outside never panics.
pub(crate) fn read(input: &[u8]) -> Option<Element<'_>> {
    let (&tag, after_tag) = input.split_first()?;
    let (&first, after_len) = after_tag.split_first()?;
    let (len, body) = if first < 0x80 {
        (first as usize, after_len)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || after_len.len() < n {
            return None;
        }
        let len = after_len[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, &after_len[n..])
    };
    if body.len() < len {
        return None;
    }
    let header = input.len() - body.len();
    Some(Element {
        tag,
        content: &body[..len],
        raw: &input[..header + len],
        rest: &body[len..],
    })
}

/// Reads an element that must have `tag`.
pub(crate) fn expect(input: &[u8], tag: u8) -> Option<Element<'_>> {
    read(input).filter(|e| e.tag == tag)
}

/// AuthorityInfoAccessSyntax with one OCSP access description (RFC 5280 §4.2.2.1).
pub(crate) fn authority_info_access_ocsp(url: &str) -> CustomExtension {
    let method = tlv(0x06, OID_AD_OCSP);
    let location = tlv(0x86, url.as_bytes()); // [6] IA5String uniformResourceIdentifier
    let description = tlv(0x30, &[method, location].concat());
    let syntax = tlv(0x30, &description);
    CustomExtension::from_oid_content(OID_AIA, syntax)
}

/// id-ce-freshestCRL (2.5.29.46)
const OID_FRESHEST_CRL: &[u64] = &[2, 5, 29, 46];

/// FreshestCRL: where the delta CRLs are (RFC 5280 §4.2.1.15), same syntax
/// as the CRL distribution points.
pub(crate) fn freshest_crl(url: &str) -> CustomExtension {
    let uri = tlv(0x86, url.as_bytes()); // [6] uniformResourceIdentifier
    let full_name = tlv(0xa0, &uri); // [0] fullName (GeneralNames)
    let dp_name = tlv(0xa0, &full_name); // [0] distributionPoint
    let dp = tlv(0x30, &dp_name);
    CustomExtension::from_oid_content(OID_FRESHEST_CRL, tlv(0x30, &dp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lengths_use_the_long_form() {
        assert_eq!(tlv(0x04, &[0; 3])[..2], [0x04, 3]);
        let t = tlv(0x04, &[0; 200]);
        assert_eq!(t[..3], [0x04, 0x81, 200]);
        let t = tlv(0x04, &[0; 300]);
        assert_eq!(t[..4], [0x04, 0x82, 0x01, 0x2c]);
    }

    #[test]
    fn integers_are_positive_and_minimal() {
        assert_eq!(integer(&[0, 0, 5]), vec![2, 1, 5]);
        assert_eq!(integer(&[0x80]), vec![2, 2, 0, 0x80]);
        assert_eq!(integer(&0u64.to_be_bytes()), vec![2, 1, 0]);
        assert_eq!(integer(&[0, 0, 0x7f]), [0x02, 0x01, 0x7f]);
        assert_eq!(integer(&[0, 0x80]), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(integer(&[]), [0x02, 0x01, 0x00]);
    }
}
