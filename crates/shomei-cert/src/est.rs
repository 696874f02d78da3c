//! The EST client (RFC 7030): base64 PKCS#10 up, base64 PKCS#7 down, over
//! TLS that trusts only the bank's root certificate.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::fail::Fail;
use crate::text;

pub struct Est {
    client: reqwest::Client,
}

fn network(what: &str, e: reqwest::Error) -> Fail {
    // reqwest's Display is terse; the source chain says why (TLS, refused…).
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    Fail::Network(text::unreachable(&format!("{what}: {msg}")))
}

/// The server's refusal, in the app's words. The server gives one answer for
/// a wrong password, a lock and a stopped user (it tells no one which).
fn refusal(status: reqwest::StatusCode, reason: &str) -> Fail {
    match status.as_u16() {
        401 => Fail::Refused(text::WRONG_PASSWORD.into()),
        403 if reason.contains("already been issued") => Fail::Refused(text::ALREADY_ISSUED.into()),
        403 if reason.contains("renewal period") => Fail::Refused(text::USE_RENEWAL.into()),
        403 => Fail::Refused(text::NOT_RENEWABLE.into()),
        400 | 409 => Fail::Refused(text::refused(reason)),
        503 => Fail::Network(text::BUSY.into()),
        _ => Fail::Network(text::server_error(status.as_str(), reason)),
    }
}

impl Est {
    /// A client trusting `root_pem` only, presenting `identity_pem` (a
    /// certificate and its key) when given.
    pub fn new(root_pem: &[u8], identity_pem: Option<&[u8]>) -> Result<Self, Fail> {
        let root = reqwest::Certificate::from_pem(root_pem)
            .map_err(|e| Fail::Usage(text::config_problem(&format!("root-ca.crt: {e}"))))?;
        let mut b = reqwest::Client::builder()
            .tls_certs_only([root])
            .timeout(std::time::Duration::from_secs(60));
        if let Some(id) = identity_pem {
            b = b.identity(reqwest::Identity::from_pem(id).map_err(|e| {
                Fail::Local(text::local_problem(&format!(
                    "the certificate or key cannot be used: {e}"
                )))
            })?);
        }
        Ok(Self {
            client: b.build().map_err(|e| {
                Fail::Local(text::local_problem(&format!("TLS set-up failed: {e}")))
            })?,
        })
    }

    /// A client trusting `root_pem` only, presenting `cert` with a key that
    /// signs where it is kept (the Windows store): TLS 1.2, whose RSA
    /// PKCS#1 signatures the store's provider makes (it has no PSS, which
    /// TLS 1.3 would ask for).
    pub fn with_signer(
        root_pem: &[u8],
        cert: &[u8],
        key: crate::store::Signer,
    ) -> Result<Self, Fail> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(root_pem) {
            let c =
                c.map_err(|e| Fail::Usage(text::config_problem(&format!("root-ca.crt: {e}"))))?;
            roots
                .add(c)
                .map_err(|e| Fail::Usage(text::config_problem(&format!("root-ca.crt: {e}"))))?;
        }
        let certified = std::sync::Arc::new(rustls::sign::CertifiedKey::new(
            vec![CertificateDer::from(cert.to_vec())],
            key,
        ));
        let config =
            rustls::ClientConfig::builder_with_protocol_versions(&[&rustls::version::TLS12])
                .with_root_certificates(roots)
                .with_client_cert_resolver(std::sync::Arc::new(Present(certified)));
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(config)
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| Fail::Local(text::local_problem(&format!("TLS set-up failed: {e}"))))?;
        Ok(Self { client })
    }

    /// The certificates of a base64 PKCS#7 certs-only answer, or the server's
    /// one-line reason.
    async fn certs(r: reqwest::Response, what: &str) -> Result<Vec<Vec<u8>>, Fail> {
        let status = r.status();
        let body = r.text().await.map_err(|e| network(what, e))?;
        if !status.is_success() {
            let reason = body.lines().next().unwrap_or("").trim().to_owned();
            let reason = if reason.is_empty() {
                status.to_string()
            } else {
                reason
            };
            return Err(refusal(status, &reason));
        }
        let clean: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let der = STANDARD
            .decode(clean)
            .map_err(|_| Fail::Network(text::server_error(what, "the answer is not base64")))?;
        shomei_pki::pkcs7::parse_certs_only(&der)
            .map_err(|e| Fail::Network(text::server_error(what, &e.to_string())))
    }

    pub async fn cacerts(&self, server: &str) -> Result<Vec<Vec<u8>>, Fail> {
        let what = "fetching the CA certificates";
        let r = self
            .client
            .get(format!("{server}/.well-known/est/cacerts"))
            .send()
            .await
            .map_err(|e| network(what, e))?;
        Self::certs(r, what).await
    }

    pub async fn simpleenroll(
        &self,
        server: &str,
        login_id: &str,
        password: &str,
        csr: &[u8],
    ) -> Result<Vec<u8>, Fail> {
        let what = "enrolling";
        let r = self
            .client
            .post(format!("{server}/.well-known/est/simpleenroll"))
            .basic_auth(login_id, Some(password))
            .header("content-type", "application/pkcs10")
            .header("content-transfer-encoding", "base64")
            .body(STANDARD.encode(csr))
            .send()
            .await
            .map_err(|e| network(what, e))?;
        Self::certs(r, what)
            .await?
            .into_iter()
            .next()
            .ok_or(Fail::Network(text::server_error(
                what,
                "no certificate in the answer",
            )))
    }

    pub async fn simplereenroll(&self, cert_server: &str, csr: &[u8]) -> Result<Vec<u8>, Fail> {
        let what = "renewing";
        let r = self
            .client
            .post(format!("{cert_server}/.well-known/est/simplereenroll"))
            .header("content-type", "application/pkcs10")
            .header("content-transfer-encoding", "base64")
            .body(STANDARD.encode(csr))
            .send()
            .await
            .map_err(|e| network(what, e))?;
        Self::certs(r, what)
            .await?
            .into_iter()
            .next()
            .ok_or(Fail::Network(text::server_error(
                what,
                "no certificate in the answer",
            )))
    }

    /// The state the portal shows for a serial: its label (発行済, 更新可, …)
    /// and its code (issued, renewable, expired, revoked, …).
    pub async fn status(&self, server: &str, serial_hex: &str) -> Result<State, Fail> {
        let what = "asking the certificate state";
        let r = self
            .client
            .get(format!("{server}/pki/cert-status?serial={serial_hex}"))
            .send()
            .await
            .map_err(|e| network(what, e))?;
        let status = r.status();
        if status.as_u16() == 404 {
            return Ok(State {
                label: "不明（この銀行の記録にありません）".into(),
                code: "unknown".into(),
            });
        }
        let body = r.text().await.map_err(|e| network(what, e))?;
        if !status.is_success() {
            return Err(refusal(status, body.lines().next().unwrap_or("")));
        }
        let v: serde_json::Value = serde_json::from_str(&body)
            .map_err(|_| Fail::Network(text::server_error(what, "the answer is not JSON")))?;
        let field = |k: &str| v.get(k).and_then(|s| s.as_str()).unwrap_or("?").to_owned();
        Ok(State {
            label: field("state"),
            code: field("code"),
        })
    }
}

/// Presents one certificate whatever the server asks.
#[derive(Debug)]
struct Present(std::sync::Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for Present {
    fn resolve(
        &self,
        _hints: &[&[u8]],
        _schemes: &[rustls::SignatureScheme],
    ) -> Option<std::sync::Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A certificate's state as the bank keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    /// What the portal shows: 発行済, 更新可, 有効期限切れ, 失効済…
    pub label: String,
    /// The machine form: issued, renewable, expired, revoked, unknown…
    pub code: String,
}
