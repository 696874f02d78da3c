//! The operator certificate profile: the bank's own staff log in to the
//! operator console with a certificate from the same issuing CA as the
//! customers', told apart by a certificate policy of their own. The console
//! accepts only certificates that carry it and the customers' certificate
//! listener refuses every certificate that does, so neither kind ever opens
//! the other's door.

use rcgen::{CustomExtension, DistinguishedName, DnType, PublicKeyData};
use time::OffsetDateTime;

use crate::der::tlv;
use crate::{Ca, IssuedCert, PkiError, country_jp};

/// Shomei's operator certificate policy: an arc under a UUID OID
/// (ITU-T X.667, `2.25.<uuid>`), which needs no registration.
pub const OPERATOR_POLICY_OID: &str = "2.25.142659555223720110570222044035142204408.1";

/// `OPERATOR_POLICY_OID`, DER-encoded content octets.
const OPERATOR_POLICY_DER: &[u8] = &[
    0x69, 0x81, 0xd6, 0xd3, 0x9d, 0xc7, 0xbe, 0xc9, 0x9a, 0x9e, 0xe9, 0xbf, 0xc1, 0xf1, 0x98, 0x9a,
    0xa4, 0xb4, 0xf7, 0x78, 0x01,
];

/// id-ce-certificatePolicies (2.5.29.32)
const OID_CERTIFICATE_POLICIES: &[u64] = &[2, 5, 29, 32];

/// Which of our profiles a client certificate was issued under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// A company user's certificate (電子証明書方式 login, EST renewal).
    Customer,
    /// A bank operator's certificate (the operator console only).
    Operator,
}

/// The profile of a certificate, by its policies: the operator policy makes
/// it an operator's; anything else is a customer's. `None` when the
/// certificate cannot be read.
pub fn profile_of(der: &[u8]) -> Option<Profile> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let operator = cert.extensions().iter().any(|e| {
        matches!(
            e.parsed_extension(),
            x509_parser::extensions::ParsedExtension::CertificatePolicies(policies)
                if policies.iter().any(|p| p.policy_id.as_bytes() == OPERATOR_POLICY_DER)
        )
    });
    Some(if operator {
        Profile::Operator
    } else {
        Profile::Customer
    })
}

/// CertificatePolicies with the operator policy alone, non-critical.
fn operator_policy() -> CustomExtension {
    let policy_information = tlv(0x30, &tlv(0x06, OPERATOR_POLICY_DER));
    CustomExtension::from_oid_content(OID_CERTIFICATE_POLICIES, tlv(0x30, &policy_information))
}

impl Ca {
    /// Signs an operator's certificate: the client profile (CA:FALSE,
    /// digitalSignature, clientAuth, our CRL and OCSP), the operator policy,
    /// and the subject C=JP, O=<bank>, OU=オペレーター, CN=<operator name>.
    pub fn issue_operator(
        &self,
        public_key: &impl PublicKeyData,
        bank_name: &str,
        operator_name: &str,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<IssuedCert, PkiError> {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CountryName, country_jp());
        dn.push(DnType::OrganizationName, bank_name);
        dn.push(DnType::OrganizationalUnitName, "オペレーター");
        dn.push(DnType::CommonName, operator_name);
        self.issue_end_entity(
            public_key,
            dn,
            not_before,
            not_after,
            vec![operator_policy()],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClientSubject, Endpoints, generate_p256};

    #[test]
    fn the_policy_bytes_are_the_policy_oid() {
        // Base-128 arcs, the first byte holding two (X.690 §8.19); the UUID
        // arc needs 128 bits, more than the parser's dotted form handles.
        let mut arcs = vec![];
        let mut n: u128 = 0;
        for b in &OPERATOR_POLICY_DER[1..] {
            n = (n << 7) | u128::from(b & 0x7f);
            if b & 0x80 == 0 {
                arcs.push(n.to_string());
                n = 0;
            }
        }
        assert_eq!(OPERATOR_POLICY_DER[0], 2 * 40 + 25);
        assert_eq!(format!("2.25.{}", arcs.join(".")), OPERATOR_POLICY_OID);
    }

    #[test]
    fn operator_and_customer_certificates_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        let ca = Ca::load_or_create(
            dir.path(),
            "北国銀行",
            Endpoints::under("https://localhost:8443"),
            now,
        )
        .unwrap();
        let key = generate_p256().unwrap();
        let op = ca
            .issue_operator(
                &key,
                "北国銀行",
                "sato",
                now,
                now + time::Duration::days(30),
            )
            .unwrap();
        let customer = ca
            .issue_client(
                &key,
                &ClientSubject {
                    login_id: "hanakodt",
                    company_name: "株式会社ほくぎん商事",
                },
                now,
                now + time::Duration::days(30),
            )
            .unwrap();
        assert_eq!(profile_of(&op.der), Some(Profile::Operator));
        assert_eq!(profile_of(&customer.der), Some(Profile::Customer));
        assert_eq!(profile_of(b"not a certificate"), None);
        let (_, cert) = x509_parser::parse_x509_certificate(&op.der).unwrap();
        let cn = cert.subject().iter_common_name().next().unwrap();
        assert_eq!(cn.as_str().unwrap(), "sato");
        assert!(!cert.is_ca());
    }
}
