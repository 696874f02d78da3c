//! The console's door after TLS: a session opened on OPR000 by the
//! operator's own password, bound to their certificate, ending after
//! `operator_session_idle_minutes` without a request (by the service's
//! clock); every POST carries the session's CSRF token. The session is a
//! signed cookie of the portal's kind ([`crate::session::LoginForm`]),
//! bound to the certificate's serial and reissued with every answer (same
//! nonce, so the same CSRF token; a new time, so the idle clock moves).
//! Another certificate, or a copy of the cookie without the certificate's
//! key, opens nothing: the TLS handshake needs the key, the MAC the serial.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use shomei_core::Problem;

use super::{NOT_IN_FORCE, refused};
use crate::guard::{form_field, read_form};
use crate::session::{Signed, same_secret, signed_cookie};
use crate::{AppState, ClientCert};

/// The console's login screen.
pub(crate) const LOGIN_PATH: &str = "/opr000";

/// The session's CSRF token, for the forms of the screen being answered.
#[derive(Debug, Clone)]
pub(crate) struct ConsoleCsrf(pub String);

/// What a console session is bound to: the certificate's serial.
pub(crate) fn binding(cert: &ClientCert) -> String {
    cert.serial.to_hex()
}

/// Sets `cookie` on `res` unless the answer sets its own.
fn with_cookie(mut res: Response, cookie: String) -> Response {
    if !res.headers().contains_key(header::SET_COOKIE)
        && let Ok(h) = cookie.parse()
    {
        res.headers_mut().append(header::SET_COOKIE, h);
    }
    res
}

/// Every console request but the stylesheet: OPR000 with its login form's
/// token; anything else within a live session bound to this certificate,
/// a POST with the session's token.
pub(crate) async fn guard(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    // The stylesheet, and the icon a browser asks for by itself (sent to
    // OPR000 it would issue a new login form cookie under the open form).
    if path == "/static/shomei.css" || path == "/favicon.ico" {
        return next.run(req).await;
    }
    let Some(cert) = req.extensions().get::<ClientCert>().cloned() else {
        return refused(&st, StatusCode::FORBIDDEN, NOT_IN_FORCE);
    };
    let bind = binding(&cert);
    let now = st.svc.now();
    let post = req.method() == Method::POST;
    let (parts, body) = req.into_parts();
    let bytes = if post {
        match read_form(body).await {
            Ok(b) => b,
            Err(r) => return r,
        }
    } else {
        axum::body::Bytes::new()
    };
    let sent = form_field(&bytes, "csrf");
    if path == LOGIN_PATH {
        if post
            && st
                .form
                .accepts_signed(
                    &parts.headers,
                    Signed::ConsoleLogin,
                    &bind,
                    st.form_lifetime(),
                    sent.as_deref(),
                    now,
                )
                .is_none()
        {
            tracing::debug!("console login form token missing, stale or wrong");
            return Redirect::to("/opr000?e=form").into_response();
        }
        return next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await;
    }
    let idle = st.svc.settings().operator_session_idle();
    let Some(nonce) = st
        .form
        .signed_nonce(&parts.headers, Signed::Console, &bind, idle, now)
    else {
        return Redirect::to("/opr000?e=expired").into_response();
    };
    let token = st.form.csrf_token(Signed::Console, &bind, &nonce);
    if post && !sent.is_some_and(|t| same_secret(&t, &token)) {
        tracing::warn!(path, "console CSRF token missing or wrong");
        return refused(&st, StatusCode::FORBIDDEN, Problem::BadForm.message_ja());
    }
    let mut req = Request::from_parts(parts, Body::from(bytes));
    req.extensions_mut().insert(ConsoleCsrf(token));
    let res = next.run(req).await;
    let fresh = st
        .form
        .issue_signed(Signed::Console, &bind, Some(&nonce), now);
    with_cookie(res, signed_cookie(Signed::Console, &fresh, idle))
}

/// A new session's cookie (a fresh nonce: no fixation) for `cert`.
pub(crate) fn new_session_cookie(st: &AppState, cert: &ClientCert) -> String {
    let v = st
        .form
        .issue_signed(Signed::Console, &binding(cert), None, st.svc.now());
    signed_cookie(
        Signed::Console,
        &v,
        st.svc.settings().operator_session_idle(),
    )
}

/// A fresh login form cookie for `cert` and the token its form carries.
pub(crate) fn login_form(st: &AppState, cert: &ClientCert) -> (String, String) {
    let bind = binding(cert);
    let v = st
        .form
        .issue_signed(Signed::ConsoleLogin, &bind, None, st.svc.now());
    let token = st
        .form
        .csrf_token(Signed::ConsoleLogin, &bind, crate::session::nonce_of(&v));
    (
        token,
        signed_cookie(Signed::ConsoleLogin, &v, st.form_lifetime()),
    )
}

/// Answers `res` with `cookie` set.
pub(crate) fn set_cookie(res: Response, cookie: String) -> Response {
    with_cookie(res, cookie)
}
