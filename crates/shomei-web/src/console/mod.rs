//! The operator console: the bank's own staff, each request carried by an
//! operator certificate (the listener's TLS takes no other profile) whose
//! operator the service looks up again on every request, so a revoked
//! operator gets no further even on an open connection. Screens OPR…,
//! Japanese, in the portal's look; no SQL and no store here. The session
//! and its CSRF token: [`access`].

mod access;
mod approvals;
mod audit;
mod company_service;
mod helpdesk;
mod operations;

use askama::Template;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use shomei_core::format::jp_datetime;
use shomei_service::{ActionError, ConsoleOperator};

use crate::pages::{client_of, render};
use crate::session::{Signed, clear_signed_cookie};
use crate::{AppState, ClientCert};
use access::ConsoleCsrf;

/// The console's routes.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/opr001") }))
        .route(access::LOGIN_PATH, get(opr000).post(opr000_submit))
        .route("/logout", post(logout))
        .route("/opr001", get(opr001))
        .route("/opr010", get(helpdesk::opr010))
        .route("/opr011", get(helpdesk::opr011))
        .route("/opr011/lift", post(helpdesk::lift))
        .route("/opr011/revoke", post(helpdesk::revoke))
        .route("/opr020", get(approvals::opr020))
        .route(
            "/opr021",
            get(approvals::opr021).post(approvals::opr021_submit),
        )
        .route(
            "/opr022",
            get(approvals::opr022).post(approvals::opr022_submit),
        )
        .route(
            "/opr023",
            get(approvals::opr023).post(approvals::opr023_submit),
        )
        .route(
            "/opr025",
            get(company_service::opr025).post(company_service::opr025_submit),
        )
        .route("/opr050", get(approvals::opr050))
        .route("/opr040", get(operations::opr040))
        .route(
            "/opr041",
            get(operations::opr041).post(operations::opr041_submit),
        )
        .route(
            "/opr042",
            get(operations::opr042).post(operations::opr042_submit),
        )
        .route(
            "/opr043",
            get(operations::opr043).post(operations::opr043_submit),
        )
        .route("/opr051", get(approvals::opr051))
        .route("/opr051/decide", post(approvals::decide))
        .route("/opr011/reset", post(helpdesk::reset))
        .route("/opr030", get(audit::opr030))
        .route("/opr031", get(audit::opr031))
        .route("/opr032", get(audit::opr032).post(audit::verify))
        .route("/static/shomei.css", get(crate::pages::stylesheet))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::guard,
        ))
        .layer(axum::middleware::from_fn(crate::guard::security_headers))
        .with_state(state)
}

/// The operator behind this request's certificate, in force now.
pub(crate) struct Operator(pub ConsoleOperator);

/// A request inside a console session: the operator in force, the
/// session's CSRF token and the client's address (for 操作履歴).
pub(crate) struct Console {
    pub op: Operator,
    pub csrf: String,
    pub client: String,
}

impl FromRequestParts<AppState> for Console {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let op = Operator::from_request_parts(parts, st).await?;
        let Some(ConsoleCsrf(csrf)) = parts.extensions.get::<ConsoleCsrf>().cloned() else {
            return Err(Redirect::to("/opr000?e=expired").into_response());
        };
        Ok(Console {
            op,
            csrf,
            client: client_of(parts),
        })
    }
}

#[derive(Template)]
#[template(path = "console/refused.html")]
struct Refused<'a> {
    bank: &'a str,
    message: &'a str,
}

pub(crate) fn refused(st: &AppState, status: StatusCode, message: &str) -> Response {
    let page = Refused {
        bank: &st.svc.settings().bank_name,
        message,
    };
    (status, render(&page)).into_response()
}

/// Message for a certificate that passed TLS but opens nothing (its
/// operator was revoked a moment ago, or it expired on an open connection).
pub(crate) const NOT_IN_FORCE: &str = shomei_service::OPERATOR_NOT_IN_FORCE;

impl FromRequestParts<AppState> for Operator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let Some(cert) = parts.extensions.get::<ClientCert>().cloned() else {
            return Err(refused(st, StatusCode::FORBIDDEN, NOT_IN_FORCE));
        };
        match st.svc.console_operator(&cert.serial).await {
            Ok(Some(op)) => Ok(Operator(op)),
            Ok(None) => {
                tracing::info!(serial = %cert.serial, "operator certificate not in force");
                Err(refused(st, StatusCode::FORBIDDEN, NOT_IN_FORCE))
            }
            Err(e) => {
                tracing::error!(error = %e, "operator lookup failed");
                Err(refused(st, StatusCode::INTERNAL_SERVER_ERROR, SYSTEM_ERROR))
            }
        }
    }
}

const SYSTEM_ERROR: &str = "システムエラーが発生しました。しばらくしてから再度お試しください。";

/// Our own trouble on a console screen: busy (503, try again) or the
/// system error, logged.
pub(crate) fn console_system_error(st: &AppState, e: &shomei_service::ServiceError) -> Response {
    if matches!(e, shomei_service::ServiceError::Busy) {
        let mut r = refused(
            st,
            StatusCode::SERVICE_UNAVAILABLE,
            shomei_core::BUSY_MESSAGE,
        );
        r.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static(crate::pages::RETRY_AFTER_SECONDS),
        );
        return r;
    }
    tracing::error!(error = %e, "console request failed");
    refused(st, StatusCode::INTERNAL_SERVER_ERROR, SYSTEM_ERROR)
}

#[derive(Template)]
#[template(path = "console/info.html")]
struct MessagePage {
    l: ConsoleLayout,
    error: Option<String>,
    notice: Option<String>,
}

/// A refusal shown in the console's layout, on the screen asked for.
pub(crate) fn in_layout_error(
    st: &AppState,
    c: &Console,
    title: &'static str,
    screen_id: &'static str,
    status: StatusCode,
    message: &str,
) -> Response {
    let mut r = render(&MessagePage {
        l: ConsoleLayout::new(st, c, title, screen_id),
        error: Some(message.to_owned()),
        notice: None,
    });
    *r.status_mut() = status;
    r
}

/// A use case's refusal in the screen's layout (403, its message), or our
/// own trouble (the system error screen): every console handler's `Err`.
pub(crate) fn failed(
    st: &AppState,
    c: &Console,
    title: &'static str,
    id: &'static str,
    e: ActionError,
) -> Response {
    match e {
        ActionError::Refused(m) => in_layout_error(st, c, title, id, StatusCode::FORBIDDEN, &m),
        ActionError::Internal(e) => console_system_error(st, &e),
    }
}

/// The console's screens an operator's roles open, for the menu and
/// OPR001: (href, label, what it does).
fn tasks_of(op: &Operator) -> Vec<(&'static str, &'static str, &'static str)> {
    use shomei_core::OperatorRole;
    let roles = &op.0.operator.roles;
    let mut t = Vec::new();
    if roles.has(OperatorRole::HelpDesk) {
        t.push((
            "/opr010",
            "利用者検索",
            "全企業の利用者を検索し、状態・証明書・操作履歴の確認、停止の解除、パスワードの初期化、電話受付による失効を行います。",
        ));
    }
    if roles.has(OperatorRole::Auditor) {
        t.push((
            "/opr030",
            "操作履歴照会",
            "全企業と銀行（オペレーター）の操作履歴を照会し、CSVでダウンロードします（参照のみ）。",
        ));
        t.push((
            "/opr032",
            "操作履歴検証",
            "操作履歴のハッシュ連鎖をたどり、改ざんがないことを確かめます。",
        ));
    }
    if roles.has(OperatorRole::BusinessAdmin) {
        t.push((
            "/opr020",
            "企業管理",
            "企業の開設（最初のマスターを含む）・解約、マスターがいない企業へのマスター登録を申請し、契約サービスを変更します。",
        ));
    }
    if roles.has(OperatorRole::OperationsAdmin) {
        t.push((
            "/opr040",
            "オペレーター管理",
            "オペレーターの役割の変更と承認ルールの変更を申請します。",
        ));
    }
    t.push((
        "/opr050",
        "承認待ち一覧",
        "ほかのオペレーターの申請を確認し、承認・否認します。",
    ));
    t
}

/// A result screen: what was done, its rows and where to go next.
pub(crate) fn result_page(
    l: ConsoleLayout,
    done: &'static str,
    rows: Vec<(&'static str, String)>,
    links: Vec<(String, &'static str)>,
) -> helpdesk::ResultPage {
    helpdesk::ResultPage {
        l,
        done,
        rows,
        secrets: vec![],
        links,
    }
}

/// What every console screen shows around its content.
pub(crate) struct ConsoleLayout {
    pub title: &'static str,
    pub screen_id: &'static str,
    pub bank: String,
    pub operator: String,
    pub roles: String,
    /// The session's CSRF token; empty outside a session (OPR000).
    pub csrf: String,
    /// The menu: (href, label), the operator's roles' screens.
    pub menu: Vec<(&'static str, &'static str)>,
}

impl ConsoleLayout {
    fn new(st: &AppState, c: &Console, title: &'static str, screen_id: &'static str) -> Self {
        Self {
            csrf: c.csrf.clone(),
            ..Self::outside(st, &c.op, title, screen_id)
        }
    }

    /// A screen outside a session (OPR000): no menu, no logout.
    fn outside(st: &AppState, op: &Operator, title: &'static str, screen_id: &'static str) -> Self {
        Self {
            title,
            screen_id,
            bank: st.svc.settings().bank_name.clone(),
            operator: op.0.operator.name.to_string(),
            roles: op.0.operator.roles.labels(),
            csrf: String::new(),
            menu: tasks_of(op).into_iter().map(|(h, l, _)| (h, l)).collect(),
        }
    }

    fn in_session(&self) -> bool {
        !self.csrf.is_empty()
    }

    /// Whether the menu entry `href` leads to this screen's task: its
    /// screens share the entry's first digits (OPR023 is 企業管理's, OPR051
    /// 承認待ち一覧's), OPR032–033 are 操作履歴検証's, OPR030–031 照会's.
    fn active(&self, href: &str) -> bool {
        let Some(entry) = href.strip_prefix("/opr").filter(|n| n.len() == 3) else {
            return false;
        };
        let Some(here) = self.screen_id.strip_prefix("OPR") else {
            return false;
        };
        match (entry, here) {
            ("030", h) => matches!(h, "030" | "031"),
            ("032", h) => matches!(h, "032" | "033"),
            (e, h) => h.get(..2) == e.get(..2),
        }
    }
}

#[derive(Template)]
#[template(path = "console/opr000.html")]
struct Opr000 {
    l: ConsoleLayout,
    serial: String,
    form_csrf: String,
    error: Option<String>,
    notice: Option<String>,
}

#[derive(serde::Deserialize)]
struct Opr000Query {
    e: Option<String>,
}

/// OPR000 ログイン: the certificate said who; their password opens a session.
async fn opr000(
    State(st): State<AppState>,
    op: Operator,
    Extension(cert): Extension<ClientCert>,
    Query(q): Query<Opr000Query>,
) -> Response {
    let (error, notice) = match q.e.as_deref() {
        Some("expired") => (
            None,
            Some(
                "一定時間操作がなかったため、ログアウトしました。パスワードを入力して、再度ログインしてください。",
            ),
        ),
        Some("logout") => (None, Some("ログアウトしました。")),
        Some("form") => (
            Some("画面の有効期限が切れました。もう一度入力してください。"),
            None,
        ),
        _ => (None, None),
    };
    login_screen(
        &st,
        &op,
        &cert,
        error.map(str::to_owned),
        notice.map(str::to_owned),
    )
}

fn login_screen(
    st: &AppState,
    op: &Operator,
    cert: &ClientCert,
    error: Option<String>,
    notice: Option<String>,
) -> Response {
    let (form_csrf, cookie) = access::login_form(st, cert);
    let page = Opr000 {
        l: ConsoleLayout::outside(st, op, "ログイン", "OPR000"),
        serial: op.0.serial.to_string(),
        form_csrf,
        error,
        notice,
    };
    access::set_cookie(render(&page), cookie)
}

#[derive(serde::Deserialize)]
struct PasswordForm {
    #[serde(default)]
    password: String,
}

async fn opr000_submit(
    State(st): State<AppState>,
    op: Operator,
    Extension(cert): Extension<ClientCert>,
    addr: Option<Extension<crate::ClientAddr>>,
    Form(f): Form<PasswordForm>,
) -> Response {
    let client = addr.map(|a| a.0.0.ip().to_string()).unwrap_or_default();
    match st.svc.console_login(&op.0, &f.password, &client).await {
        Ok(()) => access::set_cookie(
            Redirect::to("/opr001").into_response(),
            access::new_session_cookie(&st, &cert),
        ),
        Err(ActionError::Refused(m)) => {
            let mut r = login_screen(&st, &op, &cert, Some(m), None);
            *r.status_mut() = StatusCode::FORBIDDEN;
            r
        }
        Err(ActionError::Internal(e)) => console_system_error(&st, &e),
    }
}

/// Ends the session (its cookie); the certificate alone opens nothing.
async fn logout(_c: Console) -> Response {
    access::set_cookie(
        Redirect::to("/opr000?e=logout").into_response(),
        clear_signed_cookie(Signed::Console),
    )
}

#[derive(Template)]
#[template(path = "console/opr001.html")]
struct Opr001 {
    l: ConsoleLayout,
    serial: String,
    not_after: String,
    /// (href, label, what it does), the tasks the operator's roles allow.
    tasks: Vec<(&'static str, &'static str, &'static str)>,
}

/// OPR001 トップ: who the certificate says the operator is, and their tasks.
async fn opr001(State(st): State<AppState>, c: Console) -> Response {
    let offset = st.svc.settings().display_offset();
    render(&Opr001 {
        serial: c.op.0.serial.to_string(),
        not_after: jp_datetime(c.op.0.not_after, offset),
        tasks: tasks_of(&c.op),
        l: ConsoleLayout::new(&st, &c, "トップ", "OPR001"),
    })
}

async fn not_found(State(st): State<AppState>, _op: Option<Extension<ClientCert>>) -> Response {
    refused(
        &st,
        StatusCode::NOT_FOUND,
        "指定されたページは存在しません。",
    )
}
