//! The certificate listener's TLS: client certificates are required and
//! verified against our issuing CA (chain, validity, clientAuth EKU) and then
//! against the in-memory revocation set — a hash lookup, so the cost does not
//! grow with the number of revoked certificates. Resumption is off: TLS 1.3
//! resumption would skip client-certificate verification, and a certificate
//! revoked since the first handshake must not get back in that way.
//!
//! A returning client's certificate does not change between handshakes, so
//! a chain validation that succeeded is kept ([`ChainCache`]), keyed by the
//! SHA-256 of the whole end-entity certificate: any other certificate (another
//! CA's with the same subject and serial included) hashes differently and is
//! validated in full. What can change is checked on every handshake as
//! before: the revocation set, and the time against the validity window the
//! entry was kept with (the certificate's and its CA's). The cache belongs to
//! one verifier and its trust anchors: a new CA means a new verifier and an
//! empty cache. The handshake's own signature (CertificateVerify) is checked
//! every time, as ever.
//!
//! Each listener takes certificates of one profile ([`Profile`]): the
//! certificate listener a customer's, the operator console an operator's.
//! The profile is kept with the cached validation and checked on every
//! handshake, a cache hit included, so a certificate validated once on one
//! listener never opens another.
//!
//! The listener's TLS reads the service's clock (the system clock outside
//! tests), like every other rule about time.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use aws_lc_rs::digest;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, RootCertStore,
    SignatureScheme,
};
use shomei_core::Serial;
use shomei_pki::operator::{Profile, profile_of};
use shomei_service::Shomei;

/// Serial and CN of a verified client certificate, with its validity
/// (Unix seconds).
fn parse_client_cert(der: &[u8]) -> Option<(crate::ClientCert, i64, i64)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let serial = Serial::from_bytes(cert.raw_serial())?;
    let login_id = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_owned();
    let v = cert.validity();
    Some((
        crate::ClientCert { serial, login_id },
        v.not_before.timestamp(),
        v.not_after.timestamp(),
    ))
}

/// Serial and CN of a verified client certificate.
pub(crate) fn client_cert(der: &[u8]) -> Option<crate::ClientCert> {
    parse_client_cert(der).map(|(c, _, _)| c)
}

/// At most this many validated certificates are kept (about 200 bytes
/// each); beyond it, an arbitrary entry makes room.
const CHAIN_CACHE_ENTRIES: usize = 100_000;

type CertHash = [u8; 32];

fn cert_hash(der: &[u8]) -> CertHash {
    let mut h = [0u8; 32];
    h.copy_from_slice(digest::digest(&digest::SHA256, der).as_ref());
    h
}

/// One successful chain validation.
#[derive(Clone)]
struct Validated {
    cert: crate::ClientCert,
    /// The certificate's profile (customer or operator), if it has one.
    profile: Option<Profile>,
    /// The window in which the validation stands (Unix seconds, both ends
    /// included, as webpki reads notBefore and notAfter): the certificate's
    /// validity within its issuing CA's.
    not_before: i64,
    not_after: i64,
}

/// Successful chain validations of client certificates, by certificate hash.
pub(crate) struct ChainCache {
    entries: RwLock<HashMap<CertHash, Validated>>,
    limit: usize,
    /// The issuing CA's validity: no entry outlives it.
    ca_window: (i64, i64),
}

impl ChainCache {
    fn new(limit: usize, ca_window: (i64, i64)) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            limit,
            ca_window,
        }
    }

    /// The kept validation of `hash`, if `now` is inside its window; an
    /// entry outside it is dropped (the full validation then says why).
    fn get(&self, hash: &CertHash, now: i64) -> Option<Validated> {
        let hit = {
            let e = self.entries.read().ok()?;
            let v = e.get(hash)?;
            (v.not_before <= now && now <= v.not_after).then(|| v.clone())
        };
        if hit.is_none()
            && let Ok(mut e) = self.entries.write()
        {
            e.remove(hash);
        }
        hit
    }

    fn put(&self, hash: CertHash, kept: Validated) {
        let Ok(mut e) = self.entries.write() else {
            return;
        };
        if e.len() >= self.limit
            && !e.contains_key(&hash)
            && let Some(k) = e.keys().next().copied()
        {
            e.remove(&k);
        }
        e.insert(
            hash,
            Validated {
                not_before: kept.not_before.max(self.ca_window.0),
                not_after: kept.not_after.min(self.ca_window.1),
                ..kept
            },
        );
    }

    /// Serial and CN of a certificate verified in this listener's handshake:
    /// from the cache, or parsed.
    pub(crate) fn client_cert(&self, der: &[u8]) -> Option<crate::ClientCert> {
        let kept = self
            .entries
            .read()
            .ok()
            .and_then(|e| e.get(&cert_hash(der)).map(|v| v.cert.clone()));
        kept.or_else(|| client_cert(der))
    }
}

struct RevocationAware {
    inner: Arc<dyn ClientCertVerifier>,
    svc: Arc<Shomei>,
    cache: Arc<ChainCache>,
    /// The one profile this listener takes: a customer's certificate never
    /// opens the operator console, nor an operator's the portal.
    profile: Profile,
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
        let hash = cert_hash(end_entity);
        let at = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let kept = match self.cache.get(&hash, at) {
            Some(kept) => {
                self.svc.metrics().chain_cache_hit();
                kept
            }
            None => {
                self.inner
                    .verify_client_cert(end_entity, intermediates, now)?;
                let (cert, not_before, not_after) = parse_client_cert(end_entity)
                    .ok_or(Error::InvalidCertificate(CertificateError::BadEncoding))?;
                let kept = Validated {
                    cert,
                    profile: profile_of(end_entity),
                    not_before,
                    not_after,
                };
                self.cache.put(hash, kept.clone());
                kept
            }
        };
        let serial = kept.cert.serial;
        // Checked on a cache hit too: the profile is part of what this
        // listener accepts, not of the chain's validity.
        if kept.profile != Some(self.profile) {
            tracing::info!(serial = %serial, expected = ?self.profile, "client certificate of another profile refused");
            return Err(Error::InvalidCertificate(CertificateError::InvalidPurpose));
        }
        if self.svc.is_revoked(serial.as_bytes()) {
            self.svc.metrics().revoked_certificate_refused();
            tracing::info!(serial = %serial, "revoked client certificate refused");
            return Err(Error::InvalidCertificate(CertificateError::Revoked));
        }
        Ok(ClientCertVerified::assertion())
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

/// The service's clock, for the validity checks of the listener's TLS.
struct ServiceTime(Arc<Shomei>);

impl std::fmt::Debug for ServiceTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServiceTime")
    }
}

impl rustls::time_provider::TimeProvider for ServiceTime {
    fn current_time(&self) -> Option<UnixTime> {
        let secs = u64::try_from(self.0.now().unix_timestamp()).ok()?;
        Some(UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            secs,
        )))
    }
}

/// The issuing CA's validity (Unix seconds).
fn validity_of(der: &[u8]) -> Result<(i64, i64), String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    let v = cert.validity();
    Ok((v.not_before.timestamp(), v.not_after.timestamp()))
}

/// TLS settings of a listener that requires client certificates of
/// `profile` (the certificate listener: customers'; the operator console:
/// operators'), and its chain-validation cache.
pub(crate) fn client_tls_config(
    svc: Arc<Shomei>,
    chain: Vec<CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
    profile: Profile,
) -> Result<(rustls::ServerConfig, Arc<ChainCache>), String> {
    client_tls_config_with(svc, chain, key, profile, CHAIN_CACHE_ENTRIES)
}

fn client_tls_config_with(
    svc: Arc<Shomei>,
    chain: Vec<CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
    profile: Profile,
    cache_entries: usize,
) -> Result<(rustls::ServerConfig, Arc<ChainCache>), String> {
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
    let cache = Arc::new(ChainCache::new(
        cache_entries,
        validity_of(svc.ca().issuing_der())?,
    ));
    let verifier = Arc::new(RevocationAware {
        inner,
        svc: svc.clone(),
        cache: cache.clone(),
        profile,
    });
    let mut cfg = rustls::ServerConfig::builder_with_details(provider, Arc::new(ServiceTime(svc)))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| e.to_string())?;
    cfg.session_storage = Arc::new(NoServerSessionStorage {});
    cfg.send_tls13_tickets = 0;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((cfg, cache))
}

/// The login ID a client certificate names (its CN), for display only: the
/// user is always looked up by serial.
pub(crate) fn login_id_hint(_st: &crate::AppState, cert: &crate::ClientCert) -> String {
    cert.login_id.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validated(login_id: &str, not_before: i64, not_after: i64) -> Validated {
        Validated {
            cert: crate::ClientCert {
                serial: Serial::from_bytes(&[0x2a]).unwrap(),
                login_id: login_id.to_owned(),
            },
            profile: None,
            not_before,
            not_after,
        }
    }

    fn key(n: u8) -> CertHash {
        [n; 32]
    }

    #[test]
    fn a_kept_validation_stands_only_where_the_certificate_and_its_ca_both_do() {
        let cache = ChainCache::new(10, (1000, 2000));
        // The certificate outlives its CA at both ends: the CA's window holds.
        cache.put(key(1), validated("taro", 500, 3000));
        assert_eq!(
            cache.get(&key(1), 1000).map(|v| v.cert.login_id).as_deref(),
            Some("taro")
        );
        assert!(cache.get(&key(1), 2000).is_some());
        assert!(
            cache.get(&key(1), 2001).is_none(),
            "after the CA's notAfter"
        );
        cache.put(key(1), validated("taro", 500, 3000));
        assert!(
            cache.get(&key(1), 999).is_none(),
            "before the CA's notBefore"
        );

        // Inside the CA's window, the certificate's own window holds.
        cache.put(key(2), validated("hanako", 1200, 1800));
        assert!(cache.get(&key(2), 1200).is_some());
        assert!(cache.get(&key(2), 1800).is_some());
        assert!(cache.get(&key(2), 1801).is_none(), "after its notAfter");
        cache.put(key(2), validated("hanako", 1200, 1800));
        assert!(cache.get(&key(2), 1199).is_none(), "before its notBefore");
        // A miss outside the window drops the entry: it is gone at any time.
        assert!(cache.get(&key(2), 1500).is_none());
    }

    /// The serial and CN of a verified certificate come from the kept
    /// validation when there is one, and from the certificate itself when
    /// there is none (an entry pushed out since the handshake).
    #[test]
    fn the_verified_certificate_is_read_from_the_cache_or_else_from_itself() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "jirodt");
        params.serial_number = Some(rcgen::SerialNumber::from(vec![0x01, 0x7f]));
        let der = params.self_signed(&key).unwrap().der().to_vec();
        let cache = ChainCache::new(10, (0, i64::MAX));
        let parsed = cache.client_cert(&der).expect("read from the certificate");
        assert_eq!(parsed.login_id, "jirodt");
        assert_eq!(parsed.serial.as_bytes(), &[0x01, 0x7f]);
        cache.put(cert_hash(&der), validated("kept", 0, i64::MAX));
        let kept = cache.client_cert(&der).expect("read from the cache");
        assert_eq!(kept.login_id, "kept");
        assert_eq!(kept.serial.as_bytes(), &[0x2a]);
    }

    #[test]
    fn a_full_cache_makes_room_for_a_new_certificate_only() {
        let cache = ChainCache::new(16, (0, 10_000));
        for n in 0..16 {
            cache.put(key(n), validated("taro", 0, 10_000));
        }
        // Kept again when full: nothing is pushed out for a certificate it holds.
        for n in 0..16 {
            cache.put(key(n), validated("taro", 0, 10_000));
        }
        assert_eq!(
            (0..16).filter(|n| cache.get(&key(*n), 1).is_some()).count(),
            16
        );
        // A seventeenth certificate pushes out exactly one of the others.
        cache.put(key(16), validated("jiro", 0, 10_000));
        assert!(cache.get(&key(16), 1).is_some());
        assert_eq!(
            (0..16).filter(|n| cache.get(&key(*n), 1).is_some()).count(),
            15
        );
    }
}
