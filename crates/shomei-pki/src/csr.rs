//! Certificate signing requests from enrollment: the signature is checked
//! (proof of possession) and the key must be of a kind we issue for. Nothing
//! else in a CSR is used: subject, extensions and validity come from our
//! profile (see `Ca::issue_client`).

use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
};
use x509_parser::prelude::{FromDer, X509CertificationRequest};
use x509_parser::public_key::PublicKey;

/// The key kinds we certify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// ECDSA on curve P-256.
    P256,
    /// ECDSA on curve P-384.
    P384,
    /// RSA with this many bits (2048 to 4096).
    Rsa(usize),
}

impl KeyKind {
    /// How the key is named on screens and in 操作履歴 (`ECDSA P-256`, `RSA 2048`).
    pub fn label(self) -> String {
        match self {
            KeyKind::P256 => "ECDSA P-256".into(),
            KeyKind::P384 => "ECDSA P-384".into(),
            KeyKind::Rsa(bits) => format!("RSA {bits}"),
        }
    }
}

/// Why a CSR is refused. The messages go back to the enrolling client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsrError {
    #[error("the request is not a DER-encoded PKCS#10 certificate signing request")]
    /// Not a DER PKCS#10 request, or bytes after it.
    Malformed,
    #[error("the signature of the certificate signing request does not verify")]
    /// The requester does not hold the key: its signature does not verify.
    BadSignature,
    #[error("unsupported key ({0}): use ECDSA P-256 or P-384, or RSA with 2048 to 4096 bits")]
    /// A key kind or size we do not certify (named in the message).
    UnsupportedKey(String),
}

/// A CSR whose signature verified: the public key to certify.
#[derive(Debug, Clone)]
pub struct CheckedCsr {
    /// SubjectPublicKeyInfo, DER.
    pub spki: Vec<u8>,
    /// The key's kind, checked to be one we certify.
    pub kind: KeyKind,
}

/// Parses a DER CSR, checks its key kind and verifies its signature.
pub fn check_csr(der: &[u8]) -> Result<CheckedCsr, CsrError> {
    let (rest, csr) = X509CertificationRequest::from_der(der).map_err(|_| CsrError::Malformed)?;
    if !rest.is_empty() {
        return Err(CsrError::Malformed);
    }
    let spki = &csr.certification_request_info.subject_pki;
    let alg = &spki.algorithm.algorithm;
    let kind = if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        match curve {
            Some(c) if c == OID_EC_P256 => KeyKind::P256,
            Some(c) if c == OID_NIST_EC_P384 => KeyKind::P384,
            Some(c) => return Err(CsrError::UnsupportedKey(format!("EC curve {c}"))),
            None => {
                return Err(CsrError::UnsupportedKey(
                    "EC key without a named curve".into(),
                ));
            }
        }
    } else if *alg == OID_PKCS1_RSAENCRYPTION {
        let bits = match spki.parsed() {
            Ok(PublicKey::RSA(k)) => k.key_size(),
            _ => return Err(CsrError::Malformed),
        };
        if !(2048..=4096).contains(&bits) {
            return Err(CsrError::UnsupportedKey(format!("RSA {bits}")));
        }
        KeyKind::Rsa(bits)
    } else {
        return Err(CsrError::UnsupportedKey(format!("algorithm {alg}")));
    };
    csr.verify_signature().map_err(|_| CsrError::BadSignature)?;
    Ok(CheckedCsr {
        spki: spki.raw.to_vec(),
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ED25519,
    };

    fn csr_for(alg: &'static rcgen::SignatureAlgorithm) -> Vec<u8> {
        let key = KeyPair::generate_for(alg).unwrap();
        let mut p = CertificateParams::new(vec!["ignored.example".into()]).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.serialize_request(&key).unwrap().der().to_vec()
    }

    #[test]
    fn ec_keys_are_accepted_and_their_kind_reported() {
        assert_eq!(
            check_csr(&csr_for(&PKCS_ECDSA_P256_SHA256)).unwrap().kind,
            KeyKind::P256
        );
        assert_eq!(
            check_csr(&csr_for(&PKCS_ECDSA_P384_SHA384)).unwrap().kind,
            KeyKind::P384
        );
    }

    #[test]
    fn other_key_kinds_are_refused_with_a_clear_message() {
        let e = check_csr(&csr_for(&PKCS_ED25519)).unwrap_err();
        assert!(matches!(e, CsrError::UnsupportedKey(_)), "{e}");
        assert!(e.to_string().contains("P-256"));
    }

    #[test]
    fn a_tampered_request_fails_its_signature() {
        let mut der = csr_for(&PKCS_ECDSA_P256_SHA256);
        // Flip a bit inside the subject (CN "rcgen self signed cert").
        let i = der.windows(5).position(|w| w == b"rcgen").unwrap();
        der[i] ^= 1;
        assert_eq!(check_csr(&der).unwrap_err(), CsrError::BadSignature);
    }

    #[test]
    fn garbage_is_malformed() {
        for bad in [&b""[..], b"not a csr", &[0x30, 0x03, 0x02, 0x01, 0x00]] {
            assert_eq!(check_csr(bad).unwrap_err(), CsrError::Malformed);
        }
    }
}
