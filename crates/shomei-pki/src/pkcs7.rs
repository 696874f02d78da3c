//! PKCS#7 / CMS "certs-only" SignedData (RFC 7030 §4.1.3, RFC 5652): the
//! EST wire format for certificates, written and read by hand — the structure
//! is tiny and fixed, and no signer is involved.

use crate::der::tlv;

/// id-signedData (1.2.840.113549.1.7.2)
const OID_SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
/// id-data (1.2.840.113549.1.7.1)
const OID_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];

/// A degenerate SignedData carrying `certs` (DER), no content, no signers.
pub fn certs_only<C: AsRef<[u8]>>(certs: &[C]) -> Vec<u8> {
    let version = tlv(0x02, &[1]);
    let digest_algorithms = tlv(0x31, &[]);
    let encap = tlv(0x30, &tlv(0x06, OID_DATA));
    let all: Vec<u8> = certs.iter().flat_map(|c| c.as_ref().to_vec()).collect();
    let certificates = tlv(0xa0, &all); // [0] IMPLICIT SET OF Certificate
    let signer_infos = tlv(0x31, &[]);
    let signed = tlv(
        0x30,
        &[
            version,
            digest_algorithms,
            encap,
            certificates,
            signer_infos,
        ]
        .concat(),
    );
    tlv(
        0x30,
        &[tlv(0x06, OID_SIGNED_DATA), tlv(0xa0, &signed)].concat(),
    )
}

/// Why a certs-only message could not be read.
#[derive(Debug, thiserror::Error)]
#[error("not a PKCS#7 certs-only message: {0}")]
pub struct Pkcs7Error(&'static str);

fn element(input: &[u8]) -> Result<(u8, &[u8], &[u8]), Pkcs7Error> {
    let e = crate::der::read(input).ok_or(Pkcs7Error("truncated or bad length"))?;
    Ok((e.tag, e.content, e.rest))
}

fn expect<'a>(
    input: &'a [u8],
    tag: u8,
    what: &'static str,
) -> Result<(&'a [u8], &'a [u8]), Pkcs7Error> {
    let (t, content, rest) = element(input)?;
    if t != tag {
        return Err(Pkcs7Error(what));
    }
    Ok((content, rest))
}

/// The certificates (DER) of a certs-only SignedData, in the order sent.
pub fn parse_certs_only(der: &[u8]) -> Result<Vec<Vec<u8>>, Pkcs7Error> {
    let (content_info, _) = expect(der, 0x30, "ContentInfo is not a SEQUENCE")?;
    let (oid, rest) = expect(content_info, 0x06, "no content type")?;
    if oid != OID_SIGNED_DATA {
        return Err(Pkcs7Error("content type is not signedData"));
    }
    let (explicit, _) = expect(rest, 0xa0, "no [0] content")?;
    let (signed, _) = expect(explicit, 0x30, "SignedData is not a SEQUENCE")?;
    let (_, rest) = expect(signed, 0x02, "no version")?;
    let (_, rest) = expect(rest, 0x31, "no digestAlgorithms")?;
    let (_, rest) = expect(rest, 0x30, "no encapContentInfo")?;
    let (mut certs, _) = expect(rest, 0xa0, "no certificates")?;
    let mut out = Vec::new();
    while !certs.is_empty() {
        let (tag, _, rest) = element(certs)?;
        if tag != 0x30 {
            return Err(Pkcs7Error("a certificate is not a SEQUENCE"));
        }
        out.push(certs[..certs.len() - rest.len()].to_vec());
        certs = rest;
    }
    if out.is_empty() {
        return Err(Pkcs7Error("no certificates"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back() {
        let a = tlv(0x30, &[0x02, 0x01, 0x05]);
        let b = tlv(0x30, &vec![0x04; 300]);
        let p7 = certs_only(&[&a, &b]);
        assert_eq!(parse_certs_only(&p7).unwrap(), vec![a, b]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[0x30, 0x03, 0x06, 0x01, 0x00],
        ] {
            assert!(parse_certs_only(bad).is_err(), "{bad:?}");
        }
        let p7 = certs_only::<&[u8]>(&[]);
        assert!(parse_certs_only(&p7).is_err(), "no certificates");
    }
}
