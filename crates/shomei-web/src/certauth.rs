//! The certificate listener's TLS: client certificates are required and
//! verified against our issuing CA (chain, validity, clientAuth EKU) and then
//! against the in-memory revocation set — a hash lookup, so the cost does not
//! grow with the number of revoked certificates. Resumption is off: TLS 1.3
//! resumption would skip client-certificate verification, and a certificate
//! revoked since the first handshake must not get back in that way.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, RootCertStore,
    SignatureScheme,
};
use shomei_core::Serial;
use shomei_service::Shomei;

/// The serial of a certificate, as our store keeps it.
fn serial_of(der: &[u8]) -> Option<Serial> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Serial::from_bytes(cert.raw_serial())
}

/// Serial and CN of a verified client certificate.
pub(crate) fn client_cert(der: &[u8]) -> Option<crate::ClientCert> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let serial = Serial::from_bytes(cert.raw_serial())?;
    let login_id = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_owned();
    Some(crate::ClientCert { serial, login_id })
}

struct RevocationAware {
    inner: Arc<dyn ClientCertVerifier>,
    svc: Arc<Shomei>,
}

impl std::fmt::Debug for RevocationAware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RevocationAware")
    }
}

impl ClientCertVerifier for RevocationAware {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let serial = serial_of(end_entity)
            .ok_or(Error::InvalidCertificate(CertificateError::BadEncoding))?;
        if self.svc.is_revoked(serial.as_bytes()) {
            self.svc.metrics().revoked_certificate_refused();
            tracing::info!(serial = %serial, "revoked client certificate refused");
            return Err(Error::InvalidCertificate(CertificateError::Revoked));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }
}

/// TLS settings of the certificate listener.
pub(crate) fn cert_tls_config(
    svc: Arc<Shomei>,
    chain: Vec<CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> Result<rustls::ServerConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    // The issuing CA is a trust anchor too, so a client that sends only its
    // own certificate (most do) is verified without the chain.
    roots
        .add(svc.ca().issuing_der().clone())
        .map_err(|e| e.to_string())?;
    roots
        .add(svc.ca().root_der().clone())
        .map_err(|e| e.to_string())?;
    let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| e.to_string())?;
    let verifier = Arc::new(RevocationAware { inner, svc });
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| e.to_string())?;
    cfg.session_storage = Arc::new(NoServerSessionStorage {});
    cfg.send_tls13_tickets = 0;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// The login ID a client certificate names (its CN), for display only: the
/// user is always looked up by serial.
pub(crate) fn login_id_hint(_st: &crate::AppState, cert: &crate::ClientCert) -> String {
    cert.login_id.clone()
}
