//! OCSP (RFC 6960): requests read and responses written by hand — both are
//! small fixed structures — and signed by a delegated OCSP signing
//! certificate (id-kp-OCSPSigning, id-pkix-ocsp-nocheck) of the issuing CA.

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use time::OffsetDateTime;

use crate::der::{expect, header_len, integer, push_header, read, tlv};

/// id-pkix-ocsp-basic
const OID_OCSP_BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];
/// id-pkix-ocsp-nonce
const OID_OCSP_NONCE: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02];
/// id-sha1
const OID_SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
/// id-sha256
const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
/// ecdsa-with-SHA256, as a whole AlgorithmIdentifier.
const ALG_ECDSA_SHA256: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];

/// OCSPResponseStatus values we send without a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcspError {
    /// The request cannot be read (RFC 6960 malformedRequest).
    MalformedRequest = 1,
    /// We cannot answer: something of ours failed.
    InternalError = 2,
    /// RFC 6960 §2.3: the responder cannot answer now (our revocation view
    /// is not known to be current); try again later.
    TryLater = 3,
}

/// The hash a CertID was made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertIdHash {
    /// SHA-1, what most clients (OpenSSL's default, browsers) still send.
    Sha1,
    /// SHA-256.
    Sha256,
}

/// One CertID of a request.
#[derive(Debug, Clone)]
pub struct CertId {
    /// The hash the issuer's name and key were hashed with.
    pub hash: CertIdHash,
    /// The hash of the issuer's subject name, as encoded.
    pub issuer_name_hash: Vec<u8>,
    /// The hash of the issuer's public key (the BIT STRING's content).
    pub issuer_key_hash: Vec<u8>,
    /// The serial's INTEGER content octets as sent.
    pub serial: Vec<u8>,
    /// The CertID as sent, echoed in the response.
    pub raw: Vec<u8>,
}

/// A parsed OCSPRequest.
#[derive(Debug, Clone)]
pub struct OcspRequest {
    /// The certificates asked about, in the request's order (the answer
    /// keeps it).
    pub ids: Vec<CertId>,
    /// The nonce extension's extnValue content, echoed when present.
    pub nonce: Option<Vec<u8>>,
}

/// At most this many CertIDs in one request.
const MAX_IDS: usize = 64;

/// Parses a DER OCSPRequest. Signed requests are accepted; the signature is
/// not needed (every answer here is public).
pub fn parse_request(der: &[u8]) -> Result<OcspRequest, OcspError> {
    let bad = OcspError::MalformedRequest;
    let req = expect(der, 0x30).ok_or(bad)?;
    if !req.rest.is_empty() {
        return Err(bad);
    }
    let tbs = expect(req.content, 0x30).ok_or(bad)?;
    let mut cur = tbs.content;
    let mut e = read(cur).ok_or(bad)?;
    if e.tag == 0xa0 {
        cur = e.rest; // version
        e = read(cur).ok_or(bad)?;
    }
    if e.tag == 0xa1 {
        cur = e.rest; // requestorName
        e = read(cur).ok_or(bad)?;
    }
    if e.tag != 0x30 {
        return Err(bad);
    }
    let mut ids = Vec::new();
    let mut list = e.content;
    while !list.is_empty() {
        let request = expect(list, 0x30).ok_or(bad)?;
        list = request.rest;
        ids.push(parse_cert_id(request.content).ok_or(bad)?);
        if ids.len() > MAX_IDS {
            return Err(bad);
        }
    }
    if ids.is_empty() {
        return Err(bad);
    }
    let mut nonce = None;
    if let Some(exts) = read(e.rest).filter(|x| x.tag == 0xa2) {
        let seq = expect(exts.content, 0x30).ok_or(bad)?;
        let mut rest = seq.content;
        while !rest.is_empty() {
            let ext = expect(rest, 0x30).ok_or(bad)?;
            rest = ext.rest;
            let oid = expect(ext.content, 0x06).ok_or(bad)?;
            let mut after = oid.rest;
            if let Some(critical) = read(after).filter(|x| x.tag == 0x01) {
                after = critical.rest;
            }
            let value = expect(after, 0x04).ok_or(bad)?;
            if oid.content == OID_OCSP_NONCE {
                if value.content.len() > 128 {
                    return Err(bad);
                }
                nonce = Some(value.content.to_vec());
            }
        }
    }
    Ok(OcspRequest { ids, nonce })
}

fn parse_cert_id(request: &[u8]) -> Option<CertId> {
    let id = expect(request, 0x30)?;
    let alg = expect(id.content, 0x30)?;
    let oid = expect(alg.content, 0x06)?;
    let hash = match oid.content {
        OID_SHA1 => CertIdHash::Sha1,
        OID_SHA256 => CertIdHash::Sha256,
        _ => return None,
    };
    let name = expect(alg.rest, 0x04)?;
    let key = expect(name.rest, 0x04)?;
    let serial = expect(key.rest, 0x02)?;
    if serial.content.is_empty() || serial.content.len() > 21 {
        return None;
    }
    Some(CertId {
        hash,
        issuer_name_hash: name.content.to_vec(),
        issuer_key_hash: key.content.to_vec(),
        serial: serial.content.to_vec(),
        raw: id.raw.to_vec(),
    })
}

/// The issuer a CertID must name: the issuing CA's subject and key hashed
/// both ways clients use.
#[derive(Debug, Clone)]
pub struct IssuerHashes {
    sha1: (Vec<u8>, Vec<u8>),
    sha256: (Vec<u8>, Vec<u8>),
}

impl IssuerHashes {
    /// The hashes of `issuing_ca_der`; `None` if it is not a certificate.
    pub fn of(issuing_ca_der: &[u8]) -> Option<Self> {
        let (_, cert) = x509_parser::parse_x509_certificate(issuing_ca_der).ok()?;
        let name = cert.subject().as_raw();
        let key = cert.public_key().subject_public_key.data.as_ref();
        let h =
            |alg: &'static digest::Algorithm, d: &[u8]| digest::digest(alg, d).as_ref().to_vec();
        Some(Self {
            sha1: (
                h(&digest::SHA1_FOR_LEGACY_USE_ONLY, name),
                h(&digest::SHA1_FOR_LEGACY_USE_ONLY, key),
            ),
            sha256: (h(&digest::SHA256, name), h(&digest::SHA256, key)),
        })
    }

    /// A minimal OCSPRequest (SHA-1 CertID, no nonce) for `serial` of this
    /// issuer — what `openssl ocsp` sends; for load tools and tests.
    pub fn request(&self, serial: &[u8]) -> Vec<u8> {
        let mut cert_id = vec![
            0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00,
        ];
        cert_id.extend(tlv(0x04, &self.sha1.0));
        cert_id.extend(tlv(0x04, &self.sha1.1));
        cert_id.extend(integer(serial));
        let request = tlv(0x30, &tlv(0x30, &cert_id));
        tlv(0x30, &tlv(0x30, &tlv(0x30, &request)))
    }

    /// Is `id` exactly the CertID `request` writes for its serial (SHA-1
    /// with NULL parameters, this issuer, the serial's minimal INTEGER)?
    /// Compared in place, without writing one.
    pub fn is_canonical(&self, id: &CertId) -> bool {
        const ALG: [u8; 11] = [
            0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00,
        ];
        let serial = integer(&id.serial);
        let (name, key) = &self.sha1;
        let content = ALG.len() + 2 + name.len() + 2 + key.len() + serial.len();
        let Some(rest) = id.raw.strip_prefix(&[0x30, content as u8][..]) else {
            return false;
        };
        id.hash == CertIdHash::Sha1
            && content < 0x80
            && name.len() < 0x80
            && key.len() < 0x80
            && rest.len() == content
            && [
                &ALG[..],
                &[0x04, name.len() as u8],
                name,
                &[0x04, key.len() as u8],
                key,
                &serial,
            ]
            .iter()
            .try_fold(rest, |r, part| r.strip_prefix(*part))
            .is_some_and(<[u8]>::is_empty)
    }

    /// Whether `id` names our issuing CA: otherwise the answer is unknown,
    /// whatever the serial.
    pub fn matches(&self, id: &CertId) -> bool {
        let (n, k) = match id.hash {
            CertIdHash::Sha1 => &self.sha1,
            CertIdHash::Sha256 => &self.sha256,
        };
        *n == id.issuer_name_hash && *k == id.issuer_key_hash
    }
}

/// A certificate's status as we answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    /// Issued by us and not revoked.
    Good,
    /// Revoked (also when superseded by a renewal).
    Revoked {
        /// When it was revoked.
        at: OffsetDateTime,
        /// The CRLReason code, when one was given.
        reason: Option<u8>,
    },
    /// Not a certificate of ours (another issuer, or a serial we never
    /// issued).
    Unknown,
}

/// One answer of a response.
pub struct SingleResponse<'a> {
    /// The certificate asked about, echoed back as it was asked.
    pub id: &'a CertId,
    /// Its status.
    pub status: CertStatus,
    /// When the status was known to be right.
    pub this_update: OffsetDateTime,
    /// Until when a client may cache the answer; `None`: no promise.
    pub next_update: Option<OffsetDateTime>,
}

/// The delegated responder: its certificate and key.
pub struct OcspSigner {
    cert_der: Vec<u8>,
    key: EcdsaKeyPair,
    key_hash: Vec<u8>,
    rng: SystemRandom,
}

fn generalized_time(t: OffsetDateTime) -> Vec<u8> {
    let t = t.to_offset(time::UtcOffset::UTC);
    let s = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    tlv(0x18, s.as_bytes())
}

impl OcspSigner {
    /// From the signer's certificate and PKCS#8 P-256 key.
    pub fn new(cert_der: Vec<u8>, pkcs8_key: &[u8]) -> Result<Self, String> {
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8_key)
            .map_err(|e| e.to_string())?;
        let (_, cert) =
            x509_parser::parse_x509_certificate(&cert_der).map_err(|e| e.to_string())?;
        let key_hash = digest::digest(
            &digest::SHA1_FOR_LEGACY_USE_ONLY,
            cert.public_key().subject_public_key.data.as_ref(),
        )
        .as_ref()
        .to_vec();
        Ok(Self {
            cert_der,
            key,
            key_hash,
            rng: SystemRandom::new(),
        })
    }

    /// The signer's delegated certificate, DER, sent inside each response so
    /// clients can check the signature.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// A signed `successful` OCSPResponse.
    pub fn respond(
        &self,
        answers: &[SingleResponse<'_>],
        nonce: Option<&[u8]>,
        produced_at: OffsetDateTime,
    ) -> Result<Vec<u8>, OcspError> {
        Ok(self.assemble(&self.sign(answers, nonce, produced_at)?))
    }

    /// The signed part of a response: tbsResponseData, the signature
    /// algorithm and the signature, DER one after the other. Kept instead of
    /// the whole response (the signer's certificate and the wrappers are the
    /// same in every one), [`assemble`](Self::assemble) makes the response
    /// from it: about 260 octets for one answer about our CertID.
    pub fn sign(
        &self,
        answers: &[SingleResponse<'_>],
        nonce: Option<&[u8]>,
        produced_at: OffsetDateTime,
    ) -> Result<Vec<u8>, OcspError> {
        let mut singles = Vec::new();
        for a in answers {
            let status = match a.status {
                CertStatus::Good => vec![0x80, 0x00],
                CertStatus::Unknown => vec![0x82, 0x00],
                CertStatus::Revoked { at, reason } => {
                    let mut info = generalized_time(at);
                    if let Some(r) = reason.filter(|r| *r != 0) {
                        info.extend(tlv(0xa0, &tlv(0x0a, &[r])));
                    }
                    tlv(0xa1, &info)
                }
            };
            let mut single = a.id.raw.clone();
            single.extend(status);
            single.extend(generalized_time(a.this_update));
            if let Some(n) = a.next_update {
                single.extend(tlv(0xa0, &generalized_time(n)));
            }
            singles.extend(tlv(0x30, &single));
        }
        let mut data = tlv(0xa2, &tlv(0x04, &self.key_hash)); // responderID byKey
        data.extend(generalized_time(produced_at));
        data.extend(tlv(0x30, &singles));
        if let Some(n) = nonce {
            let ext = tlv(0x30, &[tlv(0x06, OID_OCSP_NONCE), tlv(0x04, n)].concat());
            data.extend(tlv(0xa1, &tlv(0x30, &ext)));
        }
        let mut signed = tlv(0x30, &data);
        let sig = self
            .key
            .sign(&self.rng, &signed)
            .map_err(|_| OcspError::InternalError)?;
        let mut bitstring = Vec::with_capacity(sig.as_ref().len() + 1);
        bitstring.push(0u8);
        bitstring.extend_from_slice(sig.as_ref());
        signed.extend_from_slice(ALG_ECDSA_SHA256);
        signed.extend(tlv(0x03, &bitstring));
        Ok(signed)
    }

    /// The whole `successful` OCSPResponse around what [`sign`](Self::sign)
    /// made: one allocation and a few copies.
    pub fn assemble(&self, signed: &[u8]) -> Vec<u8> {
        // BasicOCSPResponse: signed part, then [0] { SEQUENCE { cert } }.
        let cert_seq = header_len(self.cert_der.len()) + self.cert_der.len();
        let certs = header_len(cert_seq) + cert_seq;
        let basic_content = signed.len() + certs;
        let basic = header_len(basic_content) + basic_content;
        let octets = header_len(basic) + basic;
        let rb_content = 2 + OID_OCSP_BASIC.len() + octets;
        let rb_seq = header_len(rb_content) + rb_content;
        let explicit = header_len(rb_seq) + rb_seq;
        let top_content = 3 + explicit;
        let mut out = Vec::with_capacity(header_len(top_content) + top_content);
        push_header(&mut out, 0x30, top_content);
        out.extend_from_slice(&[0x0a, 0x01, 0x00]);
        push_header(&mut out, 0xa0, rb_seq);
        push_header(&mut out, 0x30, rb_content);
        out.extend_from_slice(&[0x06, OID_OCSP_BASIC.len() as u8]);
        out.extend_from_slice(OID_OCSP_BASIC);
        push_header(&mut out, 0x04, basic);
        push_header(&mut out, 0x30, basic_content);
        out.extend_from_slice(signed);
        push_header(&mut out, 0xa0, cert_seq);
        push_header(&mut out, 0x30, self.cert_der.len());
        out.extend_from_slice(&self.cert_der);
        out
    }
}

/// An unsuccessful OCSPResponse (status only).
pub fn error_response(e: OcspError) -> Vec<u8> {
    tlv(0x30, &tlv(0x0a, &[e as u8]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for bad in [
            &b""[..],
            b"\x30",
            b"\x30\x03\x30\x01\x00",
            b"\x30\x84\xff\xff\xff\xff",
            b"\x30\x02\x30\x00",
        ] {
            assert_eq!(
                parse_request(bad).unwrap_err(),
                OcspError::MalformedRequest,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn headers_are_written_as_tlv_writes_them() {
        for len in [
            0usize, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0xff_ffff, 0x100_0000,
        ] {
            let content = vec![7u8; len];
            let mut h = Vec::new();
            push_header(&mut h, 0x30, len);
            assert_eq!(h.len(), header_len(len), "{len}");
            h.extend_from_slice(&content);
            assert_eq!(h, tlv(0x30, &content), "{len}");
        }
    }

    #[test]
    fn error_responses_are_tiny() {
        assert_eq!(
            error_response(OcspError::MalformedRequest),
            vec![0x30, 0x03, 0x0a, 0x01, 0x01]
        );
    }
}
