//! EST (RFC 7030) on the portal: `cacerts`, `csrattrs`, `simpleenroll`
//! (HTTP Basic = login ID + login password), and `simplereenroll` on the
//! certificate listener (authenticated by the TLS client certificate).
//! Bodies are base64 (Content-Transfer-Encoding: base64); errors are one
//! English line of text/plain, which the issuance app prints as it is.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use shomei_core::Serial;
use shomei_service::EnrollError;

use crate::AppState;
use crate::pages::ClientAddr;

/// The verified client certificate of a connection on the certificate
/// listener (absent on the portal listener).
#[derive(Debug, Clone)]
pub struct ClientCert {
    /// Its serial: what the revocation set and the session are checked by
    /// on every request.
    pub serial: Serial,
    /// The subject CN (our certificates put the login ID there).
    pub login_id: String,
}

fn base64_body(content_type: &'static str, der: &[u8]) -> Response {
    // RFC 7030 §4: base64 with line breaks, as PEM bodies are.
    let b64 = STANDARD.encode(der);
    let mut body = String::with_capacity(b64.len() + b64.len() / 64 + 1);
    for chunk in b64.as_bytes().chunks(64) {
        body.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        body.push_str("\r\n");
    }
    (
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::HeaderName::from_static("content-transfer-encoding"),
                "base64",
            ),
        ],
        body,
    )
        .into_response()
}

fn text_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

/// `GET /.well-known/est/cacerts`: the issuing CA and the root.
pub(crate) async fn cacerts(State(st): State<AppState>) -> Response {
    let ca = st.svc.ca();
    let p7 = shomei_pki::pkcs7::certs_only(&[ca.issuing_der().as_ref(), ca.root_der().as_ref()]);
    base64_body("application/pkcs7-mime", &p7)
}

/// `GET /.well-known/est/csrattrs`: we want ecdsa-with-SHA256 over a P-256
/// key (other supported keys are accepted too).
pub(crate) async fn csrattrs() -> Response {
    // SEQUENCE { ecdsa-with-SHA256, SEQUENCE { id-ecPublicKey, SET { prime256v1 } } }
    const ATTRS: &[u8] = &[
        0x30, 0x21, // CsrAttrs
        0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02, // ecdsa-with-SHA256
        0x30, 0x15, // Attribute
        0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, // id-ecPublicKey
        0x31, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01,
        0x07, // { prime256v1 }
    ];
    base64_body("application/csrattrs", ATTRS)
}

/// The CSR of an enrollment body: base64 (the standard), or raw DER.
fn csr_of(body: &[u8]) -> Option<Vec<u8>> {
    if body.first() == Some(&0x30) {
        return Some(body.to_vec());
    }
    let clean: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    STANDARD.decode(clean).ok()
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(b64.trim()).ok()?).ok()?;
    let (id, pw) = decoded.split_once(':')?;
    Some((id.to_owned(), pw.to_owned()))
}

fn unauthorized(message: &str) -> Response {
    let mut r = text_error(StatusCode::UNAUTHORIZED, message);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Basic realm=\"shomei\", charset=\"UTF-8\""),
    );
    r
}

fn issued_response(r: Result<shomei_service::Issued, EnrollError>) -> Response {
    match r {
        Ok(issued) => base64_body(
            "application/pkcs7-mime; smime-type=certs-only",
            &shomei_pki::pkcs7::certs_only(&[&issued.der]),
        ),
        Err(e @ EnrollError::Unauthorized) => unauthorized(&e.to_string()),
        Err(
            e @ (EnrollError::AlreadyIssued
            | EnrollError::UseRenewal
            | EnrollError::NotRenewable
            | EnrollError::PasswordChangePending),
        ) => text_error(StatusCode::FORBIDDEN, &e.to_string()),
        Err(e @ EnrollError::BadCsr(_)) => text_error(StatusCode::BAD_REQUEST, &e.to_string()),
        Err(EnrollError::Internal(
            shomei_service::ServiceError::Busy | shomei_service::ServiceError::ViewStale(_),
        )) => {
            // RFC 7030 §4.2.3: 503 with Retry-After for a server that cannot
            // take the request now.
            let mut r = text_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "server busy; please try again later",
            );
            r.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from_static(crate::pages::RETRY_AFTER_SECONDS),
            );
            r
        }
        Err(EnrollError::Internal(e)) => {
            tracing::error!(error = %e, "enrollment failed");
            text_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error; please try again later",
            )
        }
    }
}

/// `POST /.well-known/est/simpleenroll`.
pub(crate) async fn simpleenroll(
    State(st): State<AppState>,
    client: Option<axum::Extension<ClientAddr>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some((login_id, password)) = basic_credentials(&headers) else {
        return unauthorized("login ID and login password are required (HTTP Basic)");
    };
    let Some(csr) = csr_of(&body) else {
        return text_error(
            StatusCode::BAD_REQUEST,
            "the body is not a base64-encoded PKCS#10 request",
        );
    };
    let client = client.map(|c| c.0.0.ip().to_string()).unwrap_or_default();
    issued_response(st.svc.enroll(&login_id, &password, &csr, &client).await)
}

/// `POST /.well-known/est/simplereenroll`: only with a client certificate.
pub(crate) async fn simplereenroll(
    State(st): State<AppState>,
    cert: Option<axum::Extension<ClientCert>>,
    client: Option<axum::Extension<ClientAddr>>,
    body: Bytes,
) -> Response {
    let Some(axum::Extension(cert)) = cert else {
        return text_error(
            StatusCode::FORBIDDEN,
            "renewal needs the current certificate: connect to the certificate server (port 8444 by default) with it",
        );
    };
    let Some(csr) = csr_of(&body) else {
        return text_error(
            StatusCode::BAD_REQUEST,
            "the body is not a base64-encoded PKCS#10 request",
        );
    };
    let client = client.map(|c| c.0.0.ip().to_string()).unwrap_or_default();
    issued_response(st.svc.renew(&cert.serial, &csr, &client).await)
}

#[derive(serde::Deserialize)]
pub(crate) struct StatusQuery {
    serial: Option<String>,
}

/// `GET /pki/cert-status?serial=HEX`: the state the portal shows for a
/// certificate, for `shomei-cert show`. Serials are not secrets (they are
/// in the CRL); nothing about the user is returned.
pub(crate) async fn cert_status(
    State(st): State<AppState>,
    Query(q): Query<StatusQuery>,
) -> Response {
    let Some(serial) = q
        .serial
        .as_deref()
        .and_then(|s| Serial::from_hex(&s.to_ascii_lowercase()))
    else {
        return text_error(
            StatusCode::BAD_REQUEST,
            "serial must be the certificate's serial number in hex",
        );
    };
    match st.svc.cert_state_of(&serial).await {
        Ok(Some(state)) => {
            let body = serde_json::json!({ "serial": serial.to_string(), "state": state.label(), "code": state_code(state) });
            (
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response()
        }
        Ok(None) => text_error(
            StatusCode::NOT_FOUND,
            "no certificate with this serial was issued here",
        ),
        Err(e) => {
            tracing::error!(error = %e, "certificate status lookup failed");
            text_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error; please try again later",
            )
        }
    }
}

fn state_code(s: shomei_core::CertState) -> &'static str {
    use shomei_core::CertState::*;
    match s {
        Unissued => "unissued",
        Issued => "issued",
        Renewable => "renewable",
        Expired => "expired",
        Revoked => "revoked",
    }
}
