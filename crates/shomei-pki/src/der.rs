//! The few DER structures rcgen does not write for us.

use rcgen::CustomExtension;

/// id-pe-authorityInfoAccess (1.3.6.1.5.5.7.1.1)
const OID_AIA: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];
/// id-ad-ocsp (1.3.6.1.5.5.7.48.1), DER-encoded content octets.
const OID_AD_OCSP: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];

pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
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
    out.extend_from_slice(content);
    out
}

/// AuthorityInfoAccessSyntax with one OCSP access description (RFC 5280 §4.2.2.1).
pub(crate) fn authority_info_access_ocsp(url: &str) -> CustomExtension {
    let method = tlv(0x06, OID_AD_OCSP);
    let location = tlv(0x86, url.as_bytes()); // [6] IA5String uniformResourceIdentifier
    let description = tlv(0x30, &[method, location].concat());
    let syntax = tlv(0x30, &description);
    CustomExtension::from_oid_content(OID_AIA, syntax)
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
}
