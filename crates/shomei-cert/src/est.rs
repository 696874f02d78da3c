//! The EST client (RFC 7030): base64 PKCS#10 up, base64 PKCS#7 down, over
//! TLS that trusts only the bank's root certificate.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::Fail;

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
    Fail::Network(format!("{what}: {msg}"))
}

impl Est {
    /// A client trusting `root_pem` only, presenting `identity_pem` (a
    /// certificate and its key) when given.
    pub fn new(root_pem: &[u8], identity_pem: Option<&[u8]>) -> Result<Self, Fail> {
        let root = reqwest::Certificate::from_pem(root_pem).map_err(|e| {
            Fail::Local(format!("the bank's root certificate is not valid PEM: {e}"))
        })?;
        let mut b = reqwest::Client::builder()
            .tls_certs_only([root])
            .timeout(std::time::Duration::from_secs(60));
        if let Some(id) = identity_pem {
            b =
                b.identity(reqwest::Identity::from_pem(id).map_err(|e| {
                    Fail::Local(format!("the certificate or key cannot be used: {e}"))
                })?);
        }
        Ok(Self {
            client: b
                .build()
                .map_err(|e| Fail::Local(format!("TLS set-up failed: {e}")))?,
        })
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
            return Err(match status.as_u16() {
                400 | 401 | 403 | 409 => Fail::Refused(reason),
                _ => Fail::Network(format!("{what}: the server answered {status}: {reason}")),
            });
        }
        let clean: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let der = STANDARD
            .decode(clean)
            .map_err(|_| Fail::Network(format!("{what}: the answer is not base64")))?;
        shomei_pki::pkcs7::parse_certs_only(&der).map_err(|e| Fail::Network(format!("{what}: {e}")))
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
            .ok_or(Fail::Network(
                "enrolling: no certificate in the answer".into(),
            ))
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
            .ok_or(Fail::Network(
                "renewing: no certificate in the answer".into(),
            ))
    }

    /// The state the portal shows for a serial (発行済, 更新可, …).
    pub async fn status(&self, server: &str, serial_hex: &str) -> Result<String, Fail> {
        let what = "asking the certificate state";
        let r = self
            .client
            .get(format!("{server}/pki/cert-status?serial={serial_hex}"))
            .send()
            .await
            .map_err(|e| network(what, e))?;
        if r.status().as_u16() == 404 {
            return Ok("unknown to this server".into());
        }
        let text = r.text().await.map_err(|e| network(what, e))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|_| Fail::Network(format!("{what}: the answer is not JSON")))?;
        Ok(v.get("state")
            .and_then(|s| s.as_str())
            .unwrap_or("?")
            .to_owned())
    }
}
