//! Public PKI endpoints: the CRL (DER and PEM) and the CA certificates.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use time::format_description::well_known::Rfc2822;

use shomei_core::{CrlScope, MAX_CRL_PARTITIONS};

use crate::AppState;

fn crl_response(
    crl: std::sync::Arc<shomei_service::CrlSnapshot>,
    headers: &HeaderMap,
    content_type: &'static str,
    pem: bool,
) -> Response {
    let etag = if pem {
        format!("{}-pem\"", crl.etag.trim_end_matches('"'))
    } else {
        crl.etag.clone()
    };
    let mut res = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else if pem {
        let body = shomei_pki::to_pem("X509 CRL", &crl.der);
        ([(header::CONTENT_TYPE, content_type)], body).into_response()
    } else {
        ([(header::CONTENT_TYPE, content_type)], crl.der.clone()).into_response()
    };
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    let http_date = |t: time::OffsetDateTime| {
        t.format(&Rfc2822)
            .ok()
            .and_then(|s| HeaderValue::from_str(&s.replace("+0000", "GMT")).ok())
    };
    if let Some(v) = http_date(crl.this_update) {
        h.insert(header::LAST_MODIFIED, v);
    }
    // Clients may cache, but must revalidate: a revocation is published at once.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, no-cache"),
    );
    res
}

/// A CRL that is not published: a partition no certificate names, or the
/// undivided CRL once every certificate naming it has expired.
fn crl_not_published(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!(
            "not found: {what} is not published (no certificate in force names it); \
             every published CRL is in /pki/crls.pem\n"
        ),
    )
        .into_response()
}

/// `N` or `N.pem`, a partition number below the limit: the scope and
/// whether PEM is asked for.
fn partition_of(segment: &str) -> Option<(CrlScope, bool)> {
    let (number, pem) = match segment.strip_suffix(".pem") {
        Some(n) => (n, true),
        None => (segment, false),
    };
    // Digits only: no sign, no spaces, no leading "+".
    if number.is_empty() || number.len() > 4 || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let p: u16 = number.parse().ok()?;
    (p < MAX_CRL_PARTITIONS).then_some((CrlScope::Partition(p), pem))
}

fn serve(
    crl: Option<std::sync::Arc<shomei_service::CrlSnapshot>>,
    scope: CrlScope,
    headers: &HeaderMap,
    pem: bool,
) -> Response {
    match crl {
        Some(c) if c.number != 0 => {
            let content_type = if pem {
                "application/x-pem-file"
            } else {
                "application/pkix-crl"
            };
            crl_response(c, headers, content_type, pem)
        }
        _ => crl_not_published(&scope.to_string()),
    }
}

/// The undivided CRL of the certificates issued before partitions.
pub(crate) async fn crl_der(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let s = CrlScope::Undivided;
    serve(st.svc.crl_of(s), s, &headers, false)
}

pub(crate) async fn crl_pem(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let s = CrlScope::Undivided;
    serve(st.svc.crl_of(s), s, &headers, true)
}

/// The delta CRL named by the Freshest CRL extension of the certificates
/// issued before partitions.
pub(crate) async fn delta_crl_der(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let s = CrlScope::Undivided;
    serve(st.svc.delta_crl_of(s), s, &headers, false)
}

pub(crate) async fn delta_crl_pem(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let s = CrlScope::Undivided;
    serve(st.svc.delta_crl_of(s), s, &headers, true)
}

/// A partition's CRL, `/pki/crl/N` (DER) or `/pki/crl/N.pem`.
pub(crate) async fn partition_crl(
    State(st): State<AppState>,
    axum::extract::Path(segment): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    match partition_of(&segment) {
        Some((s, pem)) => serve(st.svc.crl_of(s), s, &headers, pem),
        None => crl_not_published("that CRL partition"),
    }
}

/// A partition's delta CRL (its certificates' Freshest CRL).
pub(crate) async fn partition_delta_crl(
    State(st): State<AppState>,
    axum::extract::Path(segment): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    match partition_of(&segment) {
        Some((s, pem)) => serve(st.svc.delta_crl_of(s), s, &headers, pem),
        None => crl_not_published("that delta CRL partition"),
    }
}

/// Every published full CRL, partitions and undivided, in one PEM file:
/// for relying parties that load one CRL file (nginx `ssl_crl`).
pub(crate) async fn crl_bundle(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let (pem, etag) = st.svc.crl_bundle().await;
    let mut res = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/x-pem-file")], pem).into_response()
    };
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, no-cache"),
    );
    res
}

pub(crate) async fn root_cert(State(st): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        st.svc.ca().root_pem(),
    )
        .into_response()
}

pub(crate) async fn issuing_cert(State(st): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        st.svc.ca().issuing_pem(),
    )
        .into_response()
}

fn ocsp_response(body: axum::body::Bytes) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/ocsp-response"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// OCSP over POST (RFC 6960 §A.1): the DER request is the body.
pub(crate) async fn ocsp_post(State(st): State<AppState>, body: axum::body::Bytes) -> Response {
    ocsp_response(st.svc.ocsp(&body).await)
}

/// OCSP over GET: the base64 DER request, URL-encoded, is the rest of the path.
pub(crate) async fn ocsp_get(
    State(st): State<AppState>,
    axum::extract::Path(encoded): axum::extract::Path<String>,
) -> Response {
    use base64::Engine;
    // Path extraction has already percent-decoded; tolerate the URL-safe
    // alphabet and missing padding that some clients send.
    let cleaned: String = encoded
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(cleaned.trim_end_matches('='))
        .or_else(|_| {
            base64::engine::general_purpose::STANDARD_NO_PAD.decode(cleaned.trim_end_matches('='))
        })
        .unwrap_or_default();
    ocsp_response(st.svc.ocsp(&der).await)
}

/// Anything else on the PKI listener.
pub(crate) async fn not_found() -> Response {
    (
        axum::http::StatusCode::NOT_FOUND,
        [(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "not found: this listener serves only the CRLs (/pki/crl/N, /pki/delta-crl/N, /pki/crls.pem, /pki/crl, /pki/delta-crl), /pki/ocsp and the CA certificates\n",
    )
        .into_response()
}
