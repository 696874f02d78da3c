//! Request guards that apply to every route: the CSRF check on every POST and
//! the security headers on every response.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use shomei_core::Problem;

use crate::AppState;
use crate::pages::error_page;
use crate::session::{same_secret, session_id};

/// Largest form body accepted.
const MAX_FORM: usize = 64 * 1024;

/// A form body, at most [`MAX_FORM`] bytes (else the refusal to answer).
pub(crate) async fn read_form(body: Body) -> Result<axum::body::Bytes, Response> {
    to_bytes(body, MAX_FORM)
        .await
        .map_err(|_| error_page(StatusCode::PAYLOAD_TOO_LARGE, Problem::BadForm.message_ja()))
}

/// One field of a form body.
pub(crate) fn form_field(bytes: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(bytes)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Every state-changing request must carry the session's CSRF token in its
/// form body. Checked here, once, for all routes.
pub(crate) async fn csrf(State(st): State<AppState>, req: Request, next: Next) -> Response {
    // EST requests carry their own authentication (HTTP Basic or the TLS
    // client certificate) and OCSP needs none; neither uses the session
    // cookie, so no CSRF token applies.
    let path = req.uri().path();
    if req.method() == Method::GET
        || req.method() == Method::HEAD
        || path.starts_with("/.well-known/est/")
        || path == "/pki/ocsp"
    {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match read_form(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let sent = || form_field(&bytes, "csrf");
    // The login forms carry a signed token: no session before login.
    if matches!(parts.uri.path(), "/login" | "/cert-login") {
        let now = time::OffsetDateTime::now_utc();
        if !st.form.accepts(&parts.headers, sent().as_deref(), now) {
            tracing::debug!(path = %parts.uri.path(), "login form token missing, stale or wrong");
            return Redirect::to("/login?e=form").into_response();
        }
        return next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await;
    }
    let sid = session_id(&parts.headers);
    let session = match sid {
        Some(id) => match st.svc.sessions().get(&id).await {
            Ok(s) => s,
            Err(e) => return crate::pages::system_error(e),
        },
        None => None,
    };
    let Some(session) = session else {
        // No live session: it expired or never existed. Start over at login.
        return Redirect::to("/login?e=expired").into_response();
    };
    if !sent().is_some_and(|t| same_secret(&t, &session.csrf)) {
        tracing::warn!(path = %parts.uri.path(), "CSRF token missing or wrong");
        return error_page(StatusCode::FORBIDDEN, Problem::BadForm.message_ja());
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Headers that keep pages out of frames, caches and other origins.
pub(crate) async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: header::HeaderName, v: &'static str| {
        h.entry(k).or_insert(HeaderValue::from_static(v));
    };
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    );
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    set(h, header::CACHE_CONTROL, "no-store");
    res
}
