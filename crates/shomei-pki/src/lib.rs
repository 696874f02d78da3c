//! Shomei's certificate authority: a root and an issuing CA, the client
//! certificate profile, the server certificate for the portal, and the CRL.
//!
//! This crate knows keys, certificates and revocation lists; it knows nothing
//! of users, companies or the database. What goes into a certificate is decided
//! here, from our profile only, never from what a request asks for.

pub mod crl;
pub mod csr;
mod der;
mod files;
pub mod hsm;
pub mod ocsp;
pub mod operator;
pub mod pkcs12;
pub mod pkcs7;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CrlDistributionPoint, CustomExtension, DistinguishedName,
    DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    SanType, SerialNumber,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

pub use hsm::{HsmKey, Pkcs11Config};
pub use rcgen::PublicKeyData;
pub use shomei_core::CrlScope;

/// Errors of the CA. Messages are for operators' logs, in English.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file of the CA's folder could not be read or written.
    #[error("CA file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A file of the CA's folder is there but not what it must be (not
    /// PEM, another key, a certificate that does not match).
    #[error("CA file {path} is not valid: {reason}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// rcgen could not build or sign a certificate.
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// The system gave no random numbers (for a serial or a key).
    #[error("system random generator failed")]
    Random,
    /// The PKCS#11 token (HSM) failed or refused; the message says which
    /// step.
    #[error("{0}")]
    Hsm(String),
}

/// Where relying parties find revocation information; written into every
/// certificate the issuing CA signs.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The PKI listener's base URL, e.g. `http://localhost:8480`.
    pki_url: String,
    /// The OCSP responder, e.g. `https://localhost:8443/pki/ocsp`.
    pub ocsp_url: String,
    /// The portal's public base URL (not written into certificates).
    portal_url: String,
    /// How many CRL partitions new certificates are spread over; 0: none,
    /// every certificate names the undivided CRL.
    crl_partitions: u16,
}

impl Endpoints {
    /// The standard paths under the portal's public base URL.
    pub fn under(base_url: &str) -> Self {
        Self::with_pki(base_url, base_url)
    }

    /// The portal at `portal_url`; CRLs and OCSP under `pki_url` (usually
    /// the plain-HTTP PKI listener, e.g. `http://localhost:8480`).
    pub fn with_pki(portal_url: &str, pki_url: &str) -> Self {
        let base = pki_url.trim_end_matches('/');
        Self {
            pki_url: base.to_owned(),
            ocsp_url: format!("{base}/pki/ocsp"),
            portal_url: portal_url.trim_end_matches('/').to_owned(),
            crl_partitions: 0,
        }
    }

    /// New certificates spread over `k` CRL partitions (0: none, the
    /// undivided CRL; at most `MAX_CRL_PARTITIONS`).
    pub fn with_crl_partitions(mut self, k: u16) -> Self {
        self.crl_partitions = k.min(shomei_core::MAX_CRL_PARTITIONS);
        self
    }

    /// How many CRL partitions new certificates are spread over (0: one
    /// undivided CRL).
    pub fn crl_partitions(&self) -> u16 {
        self.crl_partitions
    }

    /// The CRL a new certificate with this serial names.
    pub fn scope_for(&self, serial: &[u8]) -> CrlScope {
        if self.crl_partitions == 0 {
            CrlScope::Undivided
        } else {
            CrlScope::for_serial(serial, self.crl_partitions)
        }
    }

    /// The full CRL of `scope` (DER): the CRL distribution point of the
    /// certificates in it, and its CRLs' issuing distribution point.
    pub fn crl_url(&self, scope: CrlScope) -> String {
        match scope {
            CrlScope::Undivided => format!("{}/pki/crl", self.pki_url),
            CrlScope::Partition(p) => format!("{}/pki/crl/{p}", self.pki_url),
        }
    }

    /// The delta CRL of `scope` (the Freshest CRL extension).
    pub fn delta_crl_url(&self, scope: CrlScope) -> String {
        match scope {
            CrlScope::Undivided => format!("{}/pki/delta-crl", self.pki_url),
            CrlScope::Partition(p) => format!("{}/pki/delta-crl/{p}", self.pki_url),
        }
    }

    /// Every published full CRL in one PEM file (nginx `ssl_crl`).
    pub fn crl_bundle_url(&self) -> String {
        format!("{}/pki/crls.pem", self.pki_url)
    }

    /// The portal's public base URL.
    pub fn base_url(&self) -> &str {
        &self.portal_url
    }
}

/// The subject of a client certificate: the login ID, and the company as O.
#[derive(Debug, Clone)]
pub struct ClientSubject<'a> {
    /// The login ID, written as the CN (what the certificate login reads).
    pub login_id: &'a str,
    /// The company's name, written as O.
    pub company_name: &'a str,
}

/// A certificate just signed.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    /// Minimal big-endian serial bytes (positive, 16 octets of randomness).
    pub serial: Vec<u8>,
    /// The CRL its distribution point names.
    pub crl_scope: CrlScope,
    /// The whole certificate, DER, as the client gets it.
    pub der: Vec<u8>,
    /// Start of validity, as the caller gave it (to the whole second).
    pub not_before: OffsetDateTime,
    /// End of validity, as the caller gave it (to the whole second).
    pub not_after: OffsetDateTime,
}

/// The two-tier CA, loaded from (or created in) its directory.
pub struct Ca {
    root_der: CertificateDer<'static>,
    issuing_der: CertificateDer<'static>,
    issuing: Issuer<'static, CaKey>,
    /// The issuing CA's key again, for the CRL signer.
    key: CaKey,
    /// No certificate it signs outlives it.
    issuing_not_after: OffsetDateTime,
    endpoints: Endpoints,
    dir: PathBuf,
}

const ROOT_CERT: &str = "root-ca.crt";
const ROOT_KEY: &str = "root-ca.key";
const ISSUING_CERT: &str = "issuing-ca.crt";
const ISSUING_KEY: &str = "issuing-ca.key";
const SERVER_CERT: &str = "server.crt";
const SERVER_KEY: &str = "server.key";

impl Ca {
    /// Loads the CA from `dir`, creating root and issuing CA (ECDSA P-256) on
    /// first use. Private keys are written with mode 0600.
    pub fn load_or_create(
        dir: &Path,
        bank_name: &str,
        endpoints: Endpoints,
        now: OffsetDateTime,
    ) -> Result<Self, PkiError> {
        Self::load_or_create_with(dir, bank_name, endpoints, now, None)
    }

    /// As `load_or_create`, with the issuing CA's key in a PKCS#11 token
    /// when `hsm` is given: generated there (sensitive, non-extractable) on
    /// first use, never written to disk.
    pub fn load_or_create_with(
        dir: &Path,
        bank_name: &str,
        endpoints: Endpoints,
        now: OffsetDateTime,
        hsm: Option<&Pkcs11Config>,
    ) -> Result<Self, PkiError> {
        files::ensure_dir(dir)?;
        let root_cert = dir.join(ROOT_CERT);
        if !root_cert.exists() {
            Self::create(dir, bank_name, now, hsm)?;
        }
        let root_der = files::read_cert(&root_cert)?;
        let issuing_der = files::read_cert(&dir.join(ISSUING_CERT))?;
        let key = issuing_key(dir, &issuing_der, hsm)?;
        let issuing =
            Issuer::from_ca_cert_der(&issuing_der, key.clone()).map_err(|e| PkiError::BadFile {
                path: dir.join(ISSUING_CERT),
                reason: e.to_string(),
            })?;
        let issuing_not_after = not_after_of(&issuing_der).ok_or_else(|| PkiError::BadFile {
            path: dir.join(ISSUING_CERT),
            reason: "cannot read its validity".into(),
        })?;
        Ok(Self {
            root_der,
            issuing_der,
            issuing,
            key,
            issuing_not_after,
            endpoints,
            dir: dir.to_owned(),
        })
    }

    fn create(
        dir: &Path,
        bank_name: &str,
        now: OffsetDateTime,
        hsm: Option<&Pkcs11Config>,
    ) -> Result<(), PkiError> {
        let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut root = ca_params(bank_name, &format!("{bank_name} Shomei Root CA"), now, 20)?;
        root.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
        let root_cert = root.self_signed(&root_key)?;
        let root_issuer = Issuer::new(root, &root_key);

        let issuing_key = match hsm {
            Some(cfg) => CaKey::Hsm(Arc::new(HsmKey::generate(cfg).map_err(PkiError::Hsm)?)),
            None => CaKey::File(Arc::new(KeyPair::generate_for(
                &rcgen::PKCS_ECDSA_P256_SHA256,
            )?)),
        };
        let mut issuing = ca_params(
            bank_name,
            &format!("{bank_name} Shomei Issuing CA 1"),
            now,
            10,
        )?;
        issuing.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        issuing.use_authority_key_identifier_extension = true;
        let issuing_cert = issuing.signed_by(&issuing_key, &root_issuer)?;

        // Keys first: a CA certificate without its key on disk would be a
        // half-created CA that the next start could not use.
        files::write_private(&dir.join(ROOT_KEY), root_key.serialize_pem().as_bytes())?;
        if let CaKey::File(k) = &issuing_key {
            files::write_private(&dir.join(ISSUING_KEY), k.serialize_pem().as_bytes())?;
        }
        files::write_public(&dir.join(ISSUING_CERT), issuing_cert.pem().as_bytes())?;
        files::write_public(&dir.join(ROOT_CERT), root_cert.pem().as_bytes())?;
        Ok(())
    }

    /// Path of the root certificate that clients must trust.
    pub fn root_cert_path(&self) -> PathBuf {
        self.dir.join(ROOT_CERT)
    }

    /// The root certificate, DER: the trust anchor of every chain we send.
    pub fn root_der(&self) -> &CertificateDer<'static> {
        &self.root_der
    }

    /// The issuing CA's certificate, DER: what signs client certificates,
    /// CRLs and the OCSP signer's certificate.
    pub fn issuing_der(&self) -> &CertificateDer<'static> {
        &self.issuing_der
    }

    /// The root certificate as PEM, for browsers and `shomei-cert.toml`.
    pub fn root_pem(&self) -> String {
        files::pem("CERTIFICATE", &self.root_der)
    }

    /// The issuing CA's certificate as PEM (the chain clients send).
    pub fn issuing_pem(&self) -> String {
        files::pem("CERTIFICATE", &self.issuing_der)
    }

    /// The CRL and OCSP URLs this CA writes into every certificate.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// Signs a client certificate for `public_key`. Everything in it comes
    /// from this profile: CA:FALSE, digitalSignature, clientAuth, the login ID
    /// as CN, our CRL distribution point and OCSP responder, a fresh random serial.
    pub fn issue_client(
        &self,
        public_key: &impl PublicKeyData,
        subject: &ClientSubject<'_>,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<IssuedCert, PkiError> {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CountryName, country_jp());
        dn.push(DnType::OrganizationName, subject.company_name);
        dn.push(DnType::CommonName, subject.login_id);
        self.issue_end_entity(public_key, dn, not_before, not_after, vec![])
    }

    /// The body of every client profile: what `issue_client` says, with
    /// `dn` as the subject and `extra` extensions (an operator's policy).
    fn issue_end_entity(
        &self,
        public_key: &impl PublicKeyData,
        dn: DistinguishedName,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
        extra: Vec<CustomExtension>,
    ) -> Result<IssuedCert, PkiError> {
        let mut p = CertificateParams::default();
        let serial = random_serial()?;
        let crl_scope = self.endpoints.scope_for(&serial);
        p.serial_number = Some(SerialNumber::from_slice(&serial));
        p.not_before = truncate_to_seconds(not_before);
        p.not_after = self.clamp(not_after);
        p.distinguished_name = dn;
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.use_authority_key_identifier_extension = true;
        p.key_identifier_method = KeyIdMethod::Sha256;
        p.crl_distribution_points = vec![CrlDistributionPoint {
            uris: vec![self.endpoints.crl_url(crl_scope)],
        }];
        p.custom_extensions = vec![
            der::authority_info_access_ocsp(&self.endpoints.ocsp_url),
            der::freshest_crl(&self.endpoints.delta_crl_url(crl_scope)),
        ];
        p.custom_extensions.extend(extra);
        let cert = p.signed_by(public_key, &self.issuing)?;
        Ok(IssuedCert {
            serial,
            crl_scope,
            der: cert.der().to_vec(),
            not_before: p.not_before,
            not_after: p.not_after,
        })
    }

    /// `issue_client` for a key given as SubjectPublicKeyInfo (DER), the form
    /// it has in a checked CSR (`csr::check_csr`).
    pub fn issue_client_spki(
        &self,
        spki_der: &[u8],
        subject: &ClientSubject<'_>,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<IssuedCert, PkiError> {
        let key = rcgen::SubjectPublicKeyInfo::from_der(spki_der)?;
        self.issue_client(&key, subject, not_before, not_after)
    }

    /// The delegated OCSP responder of the issuing CA: id-kp-OCSPSigning
    /// and id-pkix-ocsp-nocheck, its own P-256 key (mode 0600). Reused from
    /// disk while valid for another 30 days.
    pub fn ocsp_signer(&self, now: OffsetDateTime) -> Result<ocsp::OcspSigner, PkiError> {
        let cert_path = self.dir.join("ocsp-signer.crt");
        let key_path = self.dir.join("ocsp-signer.key");
        let reusable = key_path.exists()
            && files::read_cert(&cert_path)
                .ok()
                .and_then(|der| not_after_of(&der))
                .is_some_and(|na| na > now + Duration::days(30));
        if !reusable {
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
            let mut p = CertificateParams::default();
            p.serial_number = Some(SerialNumber::from_slice(&random_serial()?));
            p.not_before = truncate_to_seconds(now - Duration::minutes(5));
            p.not_after = self.clamp(now + Duration::days(365));
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, "Shomei OCSP Responder");
            p.distinguished_name = dn;
            p.is_ca = IsCa::ExplicitNoCa;
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
            p.use_authority_key_identifier_extension = true;
            // id-pkix-ocsp-nocheck (1.3.6.1.5.5.7.48.1.5), value NULL.
            p.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 5, 5, 7, 48, 1, 5],
                vec![0x05, 0x00],
            )];
            let cert = p.signed_by(&key, &self.issuing)?;
            files::write_private(&key_path, key.serialize_pem().as_bytes())?;
            files::write_public(&cert_path, cert.pem().as_bytes())?;
        }
        let cert = files::read_cert(&cert_path)?;
        let key = files::read_key(&key_path)?;
        ocsp::OcspSigner::new(cert.to_vec(), &key.serialize_der()).map_err(|reason| {
            PkiError::BadFile {
                path: key_path,
                reason,
            }
        })
    }

    /// What a CertID must say to name our issuing CA.
    pub fn ocsp_issuer(&self) -> Result<ocsp::IssuerHashes, PkiError> {
        ocsp::IssuerHashes::of(&self.issuing_der).ok_or_else(|| PkiError::BadFile {
            path: self.dir.join(ISSUING_CERT),
            reason: "cannot read the issuing CA certificate".into(),
        })
    }

    /// The portal's TLS certificate chain and key, for `names` (DNS names or IP
    /// addresses). Reused from disk while it is valid for another 30 days and
    /// covers the same names; otherwise a new one is issued.
    pub fn server_tls(
        &self,
        names: &[String],
        now: OffsetDateTime,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), PkiError> {
        let cert_path = self.dir.join(SERVER_CERT);
        let key_path = self.dir.join(SERVER_KEY);
        let names_path = self.dir.join("server.names");
        let wanted = names.join("\n");
        let reusable = cert_path.exists()
            && key_path.exists()
            && std::fs::read_to_string(&names_path).ok().as_deref() == Some(wanted.as_str())
            && files::read_cert(&cert_path)
                .ok()
                .and_then(|der| not_after_of(&der))
                .is_some_and(|na| na > now + Duration::days(30));
        if !reusable {
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
            let mut p = CertificateParams::default();
            p.serial_number = Some(SerialNumber::from_slice(&random_serial()?));
            p.not_before = truncate_to_seconds(now - Duration::minutes(5));
            p.not_after = self.clamp(now + Duration::days(365));
            let mut dn = DistinguishedName::new();
            dn.push(
                DnType::CommonName,
                names.first().cloned().unwrap_or_else(|| "localhost".into()),
            );
            p.distinguished_name = dn;
            p.subject_alt_names = names
                .iter()
                .map(|n| match n.parse::<std::net::IpAddr>() {
                    Ok(ip) => Ok(SanType::IpAddress(ip)),
                    Err(_) => n.clone().try_into().map(SanType::DnsName),
                })
                .collect::<Result<_, _>>()?;
            p.is_ca = IsCa::ExplicitNoCa;
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            p.use_authority_key_identifier_extension = true;
            let cert = p.signed_by(&key, &self.issuing)?;
            files::write_private(&key_path, key.serialize_pem().as_bytes())?;
            files::write_public(&cert_path, cert.pem().as_bytes())?;
            files::write_public(&names_path, wanted.as_bytes())?;
        }
        let leaf = files::read_cert(&cert_path)?;
        let key = files::read_key(&key_path)?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok((vec![leaf, self.issuing_der.clone()], key_der))
    }

    /// The issuing CA's CRL signer straight from the CA files in `dir`,
    /// without loading the rest of the CA (for offline CRL export).
    pub fn crl_signer_in(
        dir: &Path,
        hsm: Option<&Pkcs11Config>,
    ) -> Result<crl::CrlSigner, PkiError> {
        let issuing_der = files::read_cert(&dir.join(ISSUING_CERT))?;
        let key = issuing_key(dir, &issuing_der, hsm)?;
        crl::CrlSigner::new(&issuing_der, key).map_err(|reason| PkiError::BadFile {
            path: dir.join(ISSUING_CERT),
            reason,
        })
    }

    /// The CRL signer of the issuing CA.
    pub fn crl_signer(&self) -> Result<crl::CrlSigner, PkiError> {
        crl::CrlSigner::new(&self.issuing_der, self.key.clone()).map_err(|reason| {
            PkiError::BadFile {
                path: self.dir.join(ISSUING_CERT),
                reason,
            }
        })
    }

    /// When the issuing CA's certificate expires: no certificate it signs
    /// is valid longer (a client certificate issued in its last year is
    /// shortened, and the operator is warned at start).
    pub fn issuing_not_after(&self) -> OffsetDateTime {
        self.issuing_not_after
    }

    fn clamp(&self, not_after: OffsetDateTime) -> OffsetDateTime {
        truncate_to_seconds(not_after.min(self.issuing_not_after))
    }

    /// Where the issuing CA's key is: a file, or a token.
    pub fn issuing_key(&self) -> &CaKey {
        &self.key
    }

    /// `issuing_key().describe(…)` for this CA's directory.
    pub fn describe_issuing_key(&self) -> String {
        self.key.describe(&self.dir)
    }
}

/// The issuing CA's private key: a PEM file beside the certificate, or a
/// key in a PKCS#11 token. Cheap to clone.
#[derive(Clone, Debug)]
pub enum CaKey {
    /// A key in a PEM file beside its certificate (mode 0600).
    File(Arc<KeyPair>),
    /// A key in a PKCS#11 token, which signs there and never leaves it.
    Hsm(Arc<HsmKey>),
}

impl CaKey {
    /// Where the key is, for the operator: the file, or the token and
    /// whether the key is locked in it (sensitive, never extractable).
    pub fn describe(&self, dir: &Path) -> String {
        match self {
            CaKey::File(_) => format!("file {}", dir.join(ISSUING_KEY).display()),
            CaKey::Hsm(k) => match k.is_locked_in() {
                Ok(true) => format!("{} (sensitive, never extractable)", k.describe()),
                Ok(false) => format!("{} (WARNING: the key is extractable)", k.describe()),
                Err(e) => format!("{} ({e})", k.describe()),
            },
        }
    }

    /// ECDSA P-256 with SHA-256 over `msg`: the DER signature.
    pub fn sign_der(&self, msg: &[u8]) -> Result<Vec<u8>, String> {
        match self {
            CaKey::File(k) => rcgen::SigningKey::sign(k.as_ref(), msg).map_err(|e| e.to_string()),
            CaKey::Hsm(k) => k.sign_der(msg),
        }
    }
}

impl PublicKeyData for CaKey {
    fn der_bytes(&self) -> &[u8] {
        match self {
            CaKey::File(k) => k.der_bytes(),
            CaKey::Hsm(k) => k.der_bytes(),
        }
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            CaKey::File(k) => PublicKeyData::algorithm(k.as_ref()),
            CaKey::Hsm(k) => k.algorithm(),
        }
    }
}

impl rcgen::SigningKey for CaKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        match self {
            CaKey::File(k) => k.sign(msg),
            CaKey::Hsm(k) => k.sign(msg),
        }
    }
}

/// The issuing CA's key for the certificate `issuing_der`: the key file if
/// there is one, else the token's key, which must match the certificate.
fn issuing_key(
    dir: &Path,
    issuing_der: &[u8],
    hsm: Option<&Pkcs11Config>,
) -> Result<CaKey, PkiError> {
    let file = dir.join(ISSUING_KEY);
    let key = match (file.exists(), hsm) {
        (true, None) => return Ok(CaKey::File(Arc::new(files::read_key(&file)?))),
        (true, Some(_)) => {
            return Err(PkiError::Hsm(format!(
                "the issuing CA's key is the file {}, but a PKCS#11 token is configured; \
                 this CA was created without the token (moving a key into a token is not supported)",
                file.display()
            )));
        }
        (false, None) => {
            return Err(PkiError::Hsm(format!(
                "no issuing CA key: {} does not exist and no PKCS#11 token is configured \
                 (this CA keeps its key in a token: set the pkcs11_* settings)",
                file.display()
            )));
        }
        (false, Some(cfg)) => HsmKey::open(cfg).map_err(PkiError::Hsm)?,
    };
    let (_, cert) =
        x509_parser::parse_x509_certificate(issuing_der).map_err(|e| PkiError::BadFile {
            path: dir.join(ISSUING_CERT),
            reason: e.to_string(),
        })?;
    if cert.public_key().subject_public_key.data.as_ref() != key.der_bytes() {
        return Err(PkiError::Hsm(format!(
            "the token's key {:?} is not the issuing CA certificate's key",
            hsm.map(|c| c.key_label.as_str()).unwrap_or_default()
        )));
    }
    Ok(CaKey::Hsm(Arc::new(key)))
}

/// PEM armour for `der` under `label` ("CERTIFICATE", "X509 CRL", …).
pub fn to_pem(label: &str, der: &[u8]) -> String {
    files::pem(label, der)
}

/// countryName "JP" as RFC 5280 requires it: a PrintableString (rcgen's
/// default string type is UTF8String, which strict relying parties and
/// pkilint reject for this attribute).
fn country_jp() -> DnValue {
    DnValue::PrintableString("JP".try_into().expect("JP is printable"))
}

/// A fresh key pair generated on this machine, for certificates whose key the
/// server itself holds (the demo data).
pub fn generate_p256() -> Result<KeyPair, PkiError> {
    Ok(KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?)
}

fn ca_params(
    org: &str,
    cn: &str,
    now: OffsetDateTime,
    years: i64,
) -> Result<CertificateParams, PkiError> {
    let mut p = CertificateParams::default();
    p.serial_number = Some(SerialNumber::from_slice(&random_serial()?));
    p.not_before = truncate_to_seconds(now - Duration::minutes(5));
    p.not_after = truncate_to_seconds(now + Duration::days(365 * years));
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, country_jp());
    dn.push(DnType::OrganizationName, org);
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.key_identifier_method = KeyIdMethod::Sha256;
    Ok(p)
}

/// 16 random octets, made positive and without a leading zero octet so that
/// the DER INTEGER is exactly these bytes.
fn random_serial() -> Result<Vec<u8>, PkiError> {
    let mut s = [0u8; 16];
    rand::Rng::fill(&mut rand::rng(), &mut s[..]);
    s[0] = (s[0] & 0x7f) | 0x40;
    Ok(s.to_vec())
}

fn truncate_to_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

fn not_after_of(der: &[u8]) -> Option<OffsetDateTime> {
    let (_, c) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(c.validity().not_after.to_datetime())
}

/// The custom extension type, re-exported for tests that inspect certificates.
pub type Extension = CustomExtension;

#[cfg(test)]
mod tests;
