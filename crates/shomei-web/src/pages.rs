//! Shared page machinery (layout, extractors, error pages) and the pages
//! outside 管理業務: ログイン, top, the global menu, ログアウト.

use std::collections::HashMap;
use std::net::SocketAddr;

use askama::Template;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use shomei_core::format::jp_datetime;
use shomei_core::{CertState, Problem, Service};
use shomei_service::{HelpDesk, LoginOutcome, SessionEnd, SessionOpenError};

use crate::AppState;
use crate::session::{Device, clear_cookie, cookie, form_cookie, session_id};
use time::OffsetDateTime;

/// The global menu, in the guide's order.
pub(crate) const MENU: &[(&str, &str)] = &[
    ("/menu/ikkatsu", "一括データ伝送サービス"),
    ("/menu/file", "一般ファイル伝送"),
    ("/menu/zandaka", "残高・明細照会"),
    ("/menu/furikomi", "振込振替"),
    ("/menu/payeasy", "税金各種料金ペイジー払込"),
    ("/menu/shonin", "承認"),
    ("/bssk001", "管理業務"),
    ("/menu/other", "その他サービス"),
];

/// The peer address of the TLS connection, set by the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

pub(crate) fn client_of(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ClientAddr>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "-".into())
}

/// The client address as written to 操作履歴.
pub(crate) struct Client(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Client(client_of(parts)))
    }
}

pub(crate) struct UserBar {
    pub company: String,
    pub name: String,
    pub role: &'static str,
}

/// What every screen shows around its content.
pub(crate) struct Layout {
    pub title: &'static str,
    pub screen_id: &'static str,
    pub bank: String,
    pub service: String,
    pub help: Vec<(&'static str, HelpDesk)>,
    pub user: Option<UserBar>,
    pub csrf: String,
    pub menu: &'static [(&'static str, &'static str)],
    pub menu_active: &'static str,
}

impl Layout {
    /// A page before login: both services, both help desks.
    pub(crate) fn public(st: &AppState, title: &'static str, csrf: String) -> Self {
        let s = st.svc.settings();
        Self {
            title,
            screen_id: "",
            bank: s.bank_name.clone(),
            service: format!(
                "{} / {}",
                Service::BusinessIb.label(),
                Service::HottokunWebJr.label()
            ),
            help: [Service::BusinessIb, Service::HottokunWebJr]
                .map(|sv| (sv.label(), s.help_desk(sv).clone()))
                .into(),
            user: None,
            csrf,
            menu: MENU,
            menu_active: "",
        }
    }

    /// A page of a logged-in user: their company's service and help desk.
    pub(crate) fn user(
        st: &AppState,
        a: &Authed,
        title: &'static str,
        screen_id: &'static str,
        menu_active: &'static str,
    ) -> Self {
        let s = st.svc.settings();
        let service = a.s.company.service;
        Self {
            title,
            screen_id,
            bank: s.bank_name.clone(),
            service: service.label().into(),
            help: vec![(service.label(), s.help_desk(service).clone())],
            user: Some(UserBar {
                company: a.s.company.name.clone(),
                name: a.s.user.name.clone(),
                role: a.s.user.role.label(),
            }),
            csrf: a.csrf.clone(),
            menu: MENU,
            menu_active,
        }
    }
}

pub(crate) fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "info.html")]
pub(crate) struct InfoPage {
    pub l: Layout,
    pub error: Option<String>,
    pub notice: Option<String>,
    pub paragraphs: Vec<String>,
    pub back: Option<(&'static str, &'static str)>,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    message: &'a str,
}

/// A plain error page for requests that cannot be tied to a user.
pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    (status, render(&ErrorPage { message })).into_response()
}

/// The managing use cases for the acting user (the service hands them only
/// to a マスター or 管理者), or the 403 page of its refusal.
#[allow(clippy::result_large_err)] // the page, answered at once
pub(crate) fn manager<'a>(
    st: &'a AppState,
    a: &'a Authed,
) -> Result<shomei_service::Manager<'a>, Response> {
    st.svc
        .manager(&a.s.actor)
        .map_err(|r| user_error(st, a, StatusCode::FORBIDDEN, r.message_ja()))
}

/// 企業情報の変更 for the acting user (the マスター only), or the 403 page of
/// its refusal.
#[allow(clippy::result_large_err)] // the page, answered at once
pub(crate) fn master<'a>(
    st: &'a AppState,
    a: &'a Authed,
) -> Result<shomei_service::Master<'a>, Response> {
    st.svc
        .master(&a.s.actor)
        .map_err(|r| user_error(st, a, StatusCode::FORBIDDEN, r.message_ja()))
}

/// An error shown inside the user's layout (authority refusals and the like).
pub(crate) fn user_error(st: &AppState, a: &Authed, status: StatusCode, message: &str) -> Response {
    let page = InfoPage {
        l: Layout::user(st, a, "エラー", "", ""),
        error: Some(message.to_owned()),
        notice: None,
        paragraphs: vec![],
        back: Some(("/bssk001", "管理業務へ")),
    };
    let mut r = render(&page);
    *r.status_mut() = status;
    r
}

/// Our own trouble as a page: 503 「ただいま混雑しています」 with
/// Retry-After when the password checks are all taken, else the system error.
pub(crate) fn system_error<E: std::fmt::Display + 'static>(e: E) -> Response {
    let any: &dyn std::any::Any = &e;
    match any.downcast_ref::<shomei_service::ServiceError>() {
        Some(shomei_service::ServiceError::Busy) => return busy_page(),
        Some(shomei_service::ServiceError::ViewStale(_)) => {
            let mut r = error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                shomei_core::Problem::ViewStale.message_ja(),
            );
            r.headers_mut().insert(
                header::RETRY_AFTER,
                axum::http::HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
            return r;
        }
        _ => {}
    }
    tracing::error!(error = %e, "request failed");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "システムエラーが発生しました。しばらくしてから再度お試しください。",
    )
}

/// Seconds a busy client is asked to wait.
pub(crate) const RETRY_AFTER_SECONDS: &str = "5";

pub(crate) fn busy_page() -> Response {
    let mut r = error_page(StatusCode::SERVICE_UNAVAILABLE, shomei_core::BUSY_MESSAGE);
    r.headers_mut().insert(
        header::RETRY_AFTER,
        axum::http::HeaderValue::from_static(RETRY_AFTER_SECONDS),
    );
    r
}

/// A logged-in user's request: session found, not idle too long, user still
/// allowed in. Anything else ends at the login page.
pub(crate) struct Authed {
    pub sid: String,
    pub csrf: String,
    pub s: shomei_service::Session,
    pub client: String,
}

impl FromRequestParts<AppState> for Authed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let to_login = || Redirect::to("/login").into_response();
        let client = client_of(parts);
        let sid = session_id(&parts.headers).ok_or_else(to_login)?;
        let data = st
            .svc
            .sessions()
            .get(&sid)
            .await
            .map_err(system_error)?
            .ok_or_else(to_login)?;
        let user = data.user;
        let now = st.svc.now();
        if now - data.last_seen > st.svc.settings().session_idle() {
            st.svc.sessions().remove(&sid).await.map_err(system_error)?;
            let _ = st
                .svc
                .session_ended(user, SessionEnd::Timeout, &client)
                .await;
            return Err(Redirect::to("/login?e=expired").into_response());
        }
        if let Some(serial) = &data.cert_serial
            && st.svc.is_revoked(serial.as_bytes())
        {
            st.svc.sessions().remove(&sid).await.map_err(system_error)?;
            let _ = st
                .svc
                .session_ended(user, SessionEnd::CertificateRevoked(serial), &client)
                .await;
            return Err(Redirect::to("/login?e=revoked").into_response());
        }
        let s = match st.svc.session(user).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                st.svc.sessions().remove(&sid).await.map_err(system_error)?;
                return Err(to_login());
            }
            Err(e) => return Err(system_error(e)),
        };
        st.svc
            .sessions()
            .touch(&sid, data.last_seen, now)
            .await
            .map_err(system_error)?;
        // Passwords the bank set must be changed before anything else.
        let path = parts.uri.path();
        if (s.user.must_change_login || s.user.must_change_confirm)
            && !matches!(path, "/brsk002" | "/logout")
        {
            return Err(Redirect::to("/brsk002").into_response());
        }
        Ok(Authed {
            sid,
            csrf: data.csrf,
            s,
            client,
        })
    }
}

/// Form fields of a POST body. Never rejects: a missing or malformed field is
/// simply absent, and the use case says what is wrong with that.
pub(crate) struct Fields(pub HashMap<String, String>);

impl Fields {
    pub(crate) fn get(&self, k: &str) -> &str {
        self.0.get(k).map(String::as_str).unwrap_or("")
    }
}

impl<S: Send + Sync> FromRequest<S> for Fields {
    type Rejection = Response;

    async fn from_request(req: Request, _: &S) -> Result<Self, Response> {
        let bytes = axum::body::to_bytes(req.into_body(), 64 * 1024)
            .await
            .map_err(|_| {
                error_page(StatusCode::PAYLOAD_TOO_LARGE, Problem::BadForm.message_ja())
            })?;
        Ok(Fields(
            form_urlencoded::parse(&bytes).into_owned().collect(),
        ))
    }
}

pub(crate) async fn root() -> Redirect {
    Redirect::to("/login")
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    l: Layout,
    error: Option<String>,
    notice: Option<String>,
}

/// Is the browser logged in already (a live session)?
async fn logged_in(st: &AppState, headers: &axum::http::HeaderMap) -> bool {
    match session_id(headers) {
        Some(id) => matches!(st.svc.sessions().get(&id).await, Ok(Some(_))),
        None => false,
    }
}

/// The login form's token for this browser: its cookie when still young
/// enough to be filled in, else a fresh one (`Some`: to be set). No state is
/// kept on the server.
fn login_form(st: &AppState, headers: &axum::http::HeaderMap) -> (String, Option<String>) {
    let now = OffsetDateTime::now_utc();
    let young = st.form.valid_cookie(headers, now - st.form_lifetime() / 2);
    match young {
        Some(v) => (st.form.token(&v), None),
        None => {
            let v = st.form.issue(now);
            (st.form.token(crate::session::nonce_of(&v)), Some(v))
        }
    }
}

/// Renders a login form, setting its cookie when it is new.
fn with_form_cookie(st: &AppState, mut r: Response, cookie: Option<String>) -> Response {
    if let Some(v) = cookie
        && let Ok(v) = form_cookie(&v, st.form_lifetime()).parse()
    {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

fn login_response(
    st: &AppState,
    headers: &axum::http::HeaderMap,
    error: Option<String>,
    notice: Option<String>,
) -> Response {
    let (csrf, cookie) = login_form(st, headers);
    let page = LoginPage {
        l: Layout::public(st, "ログイン", csrf),
        error,
        notice,
    };
    with_form_cookie(st, render(&page), cookie)
}

/// Opens a logged-in session (dropping the browser's old one) and goes to
/// the top page; refused as busy when every session place is taken.
async fn open_session(
    st: &AppState,
    headers: &axum::http::HeaderMap,
    user: shomei_core::UserId,
    cert_serial: Option<shomei_core::Serial>,
    returning: bool,
) -> Response {
    if let Some(old) = session_id(headers)
        && let Err(e) = st.svc.sessions().remove(&old).await
    {
        return system_error(e);
    }
    let id = match st
        .svc
        .sessions()
        .create(user, st.svc.now(), cert_serial, returning)
        .await
    {
        Ok((id, _)) => id,
        Err(SessionOpenError::Full) => {
            tracing::warn!("every logged-in session place is taken: login refused as busy");
            return busy_page();
        }
        Err(SessionOpenError::Internal(e)) => return system_error(e),
    };
    let mut r = Redirect::to("/top").into_response();
    if let Ok(v) = cookie(&id).parse() {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[derive(serde::Deserialize)]
pub(crate) struct LoginQuery {
    e: Option<String>,
}

pub(crate) async fn login_page(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
) -> Response {
    let q = LoginQuery {
        e: q.get("e").cloned(),
    };
    if logged_in(&st, &headers).await {
        return Redirect::to("/top").into_response();
    }
    let (error, notice) = match q.e.as_deref() {
        Some("expired") => (Some(Problem::SessionExpired.message_ja().to_owned()), None),
        Some("form") => (Some(Problem::BadForm.message_ja().to_owned()), None),
        Some("out") => (None, Some("ログアウトしました。".to_owned())),
        Some("revoked") => (Some(CERT_REVOKED.to_owned()), None),
        _ => (None, None),
    };
    login_response(&st, &headers, error, notice)
}

pub(crate) async fn login_submit(
    State(st): State<AppState>,
    Client(client): Client,
    headers: axum::http::HeaderMap,
    fields: Fields,
) -> Response {
    let login_id = fields.get("login_id");
    let device = st.devices.check(&headers, login_id, st.svc.now());
    if device != Device::None {
        st.svc.metrics().device_cookie(device == Device::Returning);
    }
    match st
        .svc
        .login_password_from(
            login_id,
            fields.get("password"),
            &client,
            device == Device::Returning,
        )
        .await
    {
        Ok(LoginOutcome::LoggedIn(user)) => {
            let mut r = open_session(&st, &headers, user, None, device == Device::Returning).await;
            // This browser is a returning customer's from now on (a fresh
            // cookie each time, so its lifetime runs from the last login).
            if r.status().is_redirection()
                && let Ok(v) = st
                    .devices
                    .set_cookie(&st.devices.issue(login_id, st.svc.now()))
                    .parse()
            {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            r
        }
        Ok(LoginOutcome::Refused(p)) => {
            login_response(&st, &headers, Some(p.message_ja().to_owned()), None)
        }
        Err(e) => system_error(e),
    }
}

pub(crate) async fn logout(State(st): State<AppState>, a: Authed) -> Response {
    if let Err(e) = st.svc.sessions().remove(&a.sid).await {
        return system_error(e);
    }
    if let Err(e) = st.svc.logout(&a.s.actor, &a.client).await {
        return system_error(e);
    }
    let mut r = Redirect::to("/login?e=out").into_response();
    if let Ok(v) = clear_cookie().parse() {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

fn preparing_public(st: &AppState, title: &'static str, text: &str) -> Response {
    render(&InfoPage {
        l: Layout::public(st, title, String::new()),
        error: None,
        notice: None,
        paragraphs: vec!["準備中".into(), text.into()],
        back: Some(("/login", "ログイン画面へ")),
    })
}

/// Shown when a certificate is revoked while it is in use.
pub(crate) const CERT_REVOKED: &str =
    "ご利用の電子証明書は失効しています。電子証明書を再発行してからログインしてください。";

#[derive(Template)]
#[template(path = "cert_login.html")]
struct CertLoginPage {
    l: Layout,
    error: Option<String>,
    notice: Option<String>,
    login_id: String,
    serial: String,
}

/// 電子証明書方式のログイン. On the portal listener it leads to the
/// certificate listener; there, the certificate names the user and the login
/// password is the second factor.
pub(crate) async fn cert_login(
    State(st): State<AppState>,
    cert: Option<axum::Extension<crate::ClientCert>>,
    headers: axum::http::HeaderMap,
) -> Response {
    let Some(axum::Extension(cert)) = cert else {
        return match &st.cert_base {
            Some(base) => Redirect::to(&format!("{base}/cert-login")).into_response(),
            None => preparing_public(
                &st,
                "電子証明書方式ログイン",
                "電子証明書方式のログインは、このサーバーでは提供されていません。ID・パスワード方式でログインしてください。",
            ),
        };
    };
    cert_login_page(&st, &headers, &cert, None).await
}

async fn cert_login_page(
    st: &AppState,
    headers: &axum::http::HeaderMap,
    cert: &crate::ClientCert,
    error: Option<String>,
) -> Response {
    if error.is_none() && logged_in(st, headers).await {
        return Redirect::to("/top").into_response();
    }
    let (csrf, form) = login_form(st, headers);
    let login_id = crate::certauth::login_id_hint(st, cert);
    let page = CertLoginPage {
        l: Layout::public(st, "電子証明書方式ログイン", csrf),
        error,
        notice: None,
        login_id,
        serial: cert.serial.to_string(),
    };
    with_form_cookie(st, render(&page), form)
}

pub(crate) async fn cert_login_submit(
    State(st): State<AppState>,
    cert: Option<axum::Extension<crate::ClientCert>>,
    Client(client): Client,
    headers: axum::http::HeaderMap,
    fields: Fields,
) -> Response {
    let Some(axum::Extension(cert)) = cert else {
        return error_page(
            StatusCode::FORBIDDEN,
            "電子証明書が提示されていません。電子証明書方式の「ログイン」からやり直してください。",
        );
    };
    match st
        .svc
        .login_certificate(&cert.serial, fields.get("password"), &client)
        .await
    {
        Ok(LoginOutcome::LoggedIn(user)) => {
            open_session(&st, &headers, user, Some(cert.serial.clone()), false).await
        }
        Ok(LoginOutcome::Refused(p)) => {
            cert_login_page(&st, &headers, &cert, Some(p.message_ja().to_owned())).await
        }
        Err(e) => system_error(e),
    }
}

#[derive(Template)]
#[template(path = "top.html")]
struct TopPage {
    l: Layout,
    error: Option<String>,
    notice: Option<String>,
    company: String,
    name: String,
    login_id: String,
    role: &'static str,
    last_login: String,
    cert_state: &'static str,
}

pub(crate) async fn top(State(st): State<AppState>, a: Authed) -> Response {
    let cert = match st.svc.own_certificate(&a.s).await {
        Ok(c) => c,
        Err(e) => return system_error(e),
    };
    let state = cert.state;
    let offset = st.svc.settings().display_offset();
    let notice = match (state, cert.not_after) {
        (CertState::Renewable, Some(not_after)) => Some(format!(
            "電子証明書の有効期限（{}）が近づいています。証明書発行アプリの「証明書更新」で証明書を更新してください。",
            jp_datetime(not_after, offset)
        )),
        _ => None,
    };
    render(&TopPage {
        l: Layout::user(&st, &a, "トップページ", "", ""),
        error: None,
        notice,
        company: a.s.company.name.clone(),
        name: a.s.user.name.clone(),
        login_id: a.s.user.login_id.to_string(),
        role: a.s.user.role.label(),
        last_login: a
            .s
            .user
            .last_login_at
            .map(|t| jp_datetime(t, offset))
            .unwrap_or_else(|| "-".into()),
        cert_state: state.label(),
    })
}

/// Global-menu services that are not part of Shomei yet.
pub(crate) async fn menu_item(
    State(st): State<AppState>,
    a: Authed,
    Path(item): Path<String>,
) -> Response {
    let Some((_, label)) = MENU
        .iter()
        .find(|(href, _)| href.strip_prefix("/menu/") == Some(item.as_str()))
    else {
        return not_found().await;
    };
    render(&InfoPage {
        l: Layout::user(&st, &a, label, "", label),
        error: None,
        notice: None,
        paragraphs: vec!["準備中".into(), format!("「{label}」は現在準備中です。")],
        back: Some(("/top", "トップページへ")),
    })
}

pub(crate) async fn not_found() -> Response {
    error_page(StatusCode::NOT_FOUND, "指定されたページは存在しません。")
}

pub(crate) async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../assets/shomei.css"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_error_page_escapes_its_message() {
        let html = ErrorPage {
            message: "<script>alert('x')</script> & \"q\"",
        }
        .render()
        .unwrap();
        assert!(
            html.contains("&#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62; &#38; &#34;q&#34;"),
            "{html}"
        );
        assert!(!html.contains("<script>"));
        let plain = ErrorPage {
            message: "ログインできません。",
        }
        .render()
        .unwrap();
        assert!(plain.contains("<div class=\"error\" role=\"alert\">ログインできません。</div>"));
    }
}
