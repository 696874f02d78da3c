//! The certificate listener's chain-validation cache: a returning
//! certificate's chain is validated once and kept, while what can change
//! between handshakes — revocation and expiry — is still checked on every
//! one, and another CA's certificate that looks the same is validated in
//! full (and refused).

use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256, SigningKey};
use shomei_core::{LoginId, RevocationReason};
use x509_parser::prelude::*;

use crate::issuance::{assert_refused, cert_login, enrolled, gets_in};
use crate::metrics::{sample, scrape};
use crate::testkit::Kit;

/// A DER element.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let first = bytes.iter().position(|b| *b != 0).unwrap();
        out.push(0x80 | (bytes.len() - first) as u8);
        out.extend_from_slice(&bytes[first..]);
    }
    out.extend_from_slice(content);
    out
}

/// Handshakes whose chain validation came from the cache, so far.
pub(crate) async fn cache_hits(kit: &Kit) -> f64 {
    sample(&scrape(kit).await, "shomei_tls_chain_cache_hits_total")
}

/// The certificate gets in, its chain taken from the cache.
async fn gets_in_from_the_cache(kit: &Kit, cert: &[u8], key: &KeyPair) {
    let before = cache_hits(kit).await;
    gets_in(kit, cert, key).await;
    assert!(
        cache_hits(kit).await > before,
        "the handshake took its chain validation from the cache"
    );
}

#[tokio::test]
async fn a_certificate_revoked_or_expired_after_a_cached_handshake_is_refused_on_the_next() {
    let kit = Kit::start().await;
    let (cert, key) = enrolled(&kit, "jirodt").await;
    let (other, other_key) = enrolled(&kit, "ichirodt").await;
    // Validated in full once, then from the cache.
    gets_in(&kit, &cert, &key).await;
    gets_in_from_the_cache(&kit, &cert, &key).await;

    // Past its notAfter by the service's clock (which the listener's TLS
    // reads): the very next handshake is refused as expired...
    let (_, c) = parse_x509_certificate(&cert).unwrap();
    let past = ::time::Duration::seconds(
        c.validity().not_after.timestamp() - kit.svc.now().unix_timestamp() + 60,
    );
    kit.clock.advance(past);
    assert_refused(
        &cert_login(&kit, Some((&cert, &key))).await,
        rustls::AlertDescription::CertificateExpired,
        "a certificate expired since its cached handshake",
    );
    // ...and back within its validity it gets in again (the control).
    kit.clock.advance(-past);
    gets_in(&kit, &cert, &key).await;
    gets_in_from_the_cache(&kit, &cert, &key).await;

    // Revoked (by the bank, key compromise): the very next handshake is
    // refused as revoked, while another cached certificate still gets in.
    gets_in(&kit, &other, &other_key).await;
    gets_in_from_the_cache(&kit, &other, &other_key).await;
    kit.svc
        .revoke_by_operator(
            &LoginId::parse("jirodt").unwrap(),
            RevocationReason::KeyCompromise,
            None,
            "yamada",
        )
        .await
        .unwrap();
    assert_refused(
        &cert_login(&kit, Some((&cert, &key))).await,
        rustls::AlertDescription::CertificateRevoked,
        "a certificate revoked since its cached handshake",
    );
    gets_in_from_the_cache(&kit, &other, &other_key).await;
    kit.stop().await;
}

#[tokio::test]
async fn another_cas_signature_on_a_cached_certificates_very_body_is_never_let_in_by_the_cache() {
    let kit = Kit::start().await;
    let (cert, key) = enrolled(&kit, "jirodt").await;
    gets_in(&kit, &cert, &key).await;
    gets_in_from_the_cache(&kit, &cert, &key).await;

    // Another CA's key signs jirodt's very certificate body: subject,
    // serial, validity, key, issuer name, extensions all the same; only the
    // signature tells it apart (as a CA with our issuing CA's name would).
    let fake_ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let (_, genuine) = parse_x509_certificate(&cert).unwrap();
    let tbs = genuine.tbs_certificate.as_ref();
    let sig = fake_ca_key.sign(tbs).unwrap();
    let mut bits = vec![0u8];
    bits.extend_from_slice(&sig);
    let alg: &[u8] = &[
        0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
    ];
    let fake = der(0x30, &[tbs, alg, &der(0x03, &bits)].concat());
    assert_ne!(fake, cert);
    let (_, f) = parse_x509_certificate(&fake).unwrap();
    assert_eq!(f.tbs_certificate.as_ref(), tbs);

    // Refused in full validation (its signature is not our CA's), however
    // often it is tried, while the genuine one goes on getting in.
    for _ in 0..2 {
        assert_refused(
            &cert_login(&kit, Some((&fake, &key))).await,
            rustls::AlertDescription::DecryptError,
            "another CA's certificate with the same subject and serial",
        );
        gets_in_from_the_cache(&kit, &cert, &key).await;
    }
    kit.stop().await;
}

/// One HTTPS request over a fresh connection with `cfg` (whose session
/// cache carries over between calls, as a browser's does): the answer's
/// status line and whether the handshake resumed an earlier session.
fn request_once(
    cfg: &std::sync::Arc<rustls::ClientConfig>,
    base: &str,
    path: &str,
) -> (String, rustls::HandshakeKind) {
    use std::io::{Read, Write};
    let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(cfg.clone(), name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    // The server may close without close_notify once it has answered.
    if let Err(e) = tls.read_to_end(&mut answer) {
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}");
    }
    let status = String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned();
    (status, tls.conn.handshake_kind().unwrap())
}

/// README: the certificate listener checks every handshake in full (no TLS
/// resumption, which would skip the client certificate's verification),
/// in TLS 1.3 and 1.2. The control: the same client, with the same session
/// cache, resumes on the portal listener, which allows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificate_listener_never_resumes_a_session_where_the_portal_does() {
    use rustls::HandshakeKind::{Full, Resumed};
    let kit = Kit::start().await;
    let (cert, key) = enrolled(&kit, "jirodt").await;
    let mut roots = rustls::RootCertStore::empty();
    let root = kit.svc.ca().root_pem();
    use rustls::pki_types::pem::PemObject;
    let root_der = rustls::pki_types::CertificateDer::from_pem_slice(root.as_bytes()).unwrap();
    roots.add(root_der).unwrap();
    let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let (base, cert_base) = (kit.base.clone(), kit.cert_base.clone());
    tokio::task::spawn_blocking(move || {
        for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
            let cfg = std::sync::Arc::new(
                rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
                    rustls::crypto::aws_lc_rs::default_provider(),
                ))
                .with_protocol_versions(&[version])
                .unwrap()
                .with_root_certificates(roots.clone())
                .with_client_auth_cert(vec![cert.clone().into()], key_der.clone_key())
                .unwrap(),
            );
            let portal: Vec<_> = (0..2)
                .map(|_| request_once(&cfg, &base, "/login"))
                .collect();
            assert_eq!(
                portal,
                [
                    ("HTTP/1.1 200 OK".to_owned(), Full),
                    ("HTTP/1.1 200 OK".to_owned(), Resumed)
                ],
                "{version:?}: the client resumes where the server lets it"
            );
            let certs: Vec<_> = (0..3)
                .map(|_| request_once(&cfg, &cert_base, "/cert-login"))
                .collect();
            assert_eq!(
                certs,
                vec![("HTTP/1.1 200 OK".to_owned(), Full); 3],
                "{version:?}: every handshake on the certificate listener is a full one"
            );
        }
    })
    .await
    .unwrap();
    kit.stop().await;
}

/// A client certificate resolver that records the CAs the server's
/// CertificateRequest names, and answers with one certificate.
#[derive(Debug)]
struct RecordsHints {
    key: std::sync::Arc<rustls::sign::CertifiedKey>,
    hints: std::sync::Mutex<Vec<Vec<u8>>>,
}

impl rustls::client::ResolvesClientCert for RecordsHints {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<std::sync::Arc<rustls::sign::CertifiedKey>> {
        *self.hints.lock().unwrap() = root_hint_subjects.iter().map(|h| h.to_vec()).collect();
        Some(self.key.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The certificate listener's CertificateRequest names our issuing and root
/// CAs, so a browser offers the user only certificates of ours (the user
/// sees no list of unrelated certificates to choose from). The control:
/// with these hints the handshake goes through and the page is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificate_request_names_our_cas_so_the_client_picks_our_certificate() {
    use rustls::pki_types::pem::PemObject;
    let kit = Kit::start().await;
    let (cert, key) = enrolled(&kit, "jirodt").await;
    let root_der =
        rustls::pki_types::CertificateDer::from_pem_slice(kit.svc.ca().root_pem().as_bytes())
            .unwrap();
    let issuing_der =
        rustls::pki_types::CertificateDer::from_pem_slice(kit.svc.ca().issuing_pem().as_bytes())
            .unwrap();
    let mut expected: Vec<Vec<u8>> = [&root_der, &issuing_der]
        .iter()
        .map(|d| {
            let (_, c) = parse_x509_certificate(d).unwrap();
            c.subject().as_raw().to_vec()
        })
        .collect();
    expected.sort();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root_der).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let certified = rustls::sign::CertifiedKey::new(
        vec![cert.clone().into()],
        provider.key_provider.load_private_key(key_der).unwrap(),
    );
    let resolver = std::sync::Arc::new(RecordsHints {
        key: std::sync::Arc::new(certified),
        hints: std::sync::Mutex::new(Vec::new()),
    });
    let cfg = std::sync::Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_cert_resolver(resolver.clone()),
    );
    let cert_base = kit.cert_base.clone();
    let (status, _) =
        tokio::task::spawn_blocking(move || request_once(&cfg, &cert_base, "/cert-login"))
            .await
            .unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK");
    let mut hints = resolver.hints.lock().unwrap().clone();
    hints.sort();
    assert_eq!(hints, expected, "the CertificateRequest names our two CAs");
    kit.stop().await;
}
