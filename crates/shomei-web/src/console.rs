//! The operator console: the bank's own staff, each request carried by an
//! operator certificate (the listener's TLS takes no other profile) whose
//! operator the service looks up again on every request, so a revoked
//! operator gets no further even on an open connection. Screens OPR…,
//! Japanese, in the portal's look; no SQL and no store here.

use askama::Template;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Extension, Router};
use shomei_core::format::jp_datetime;
use shomei_service::ConsoleOperator;

use crate::pages::render;
use crate::{AppState, ClientCert};

/// The console's routes.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/opr001") }))
        .route("/opr001", get(opr001))
        .route("/static/shomei.css", get(crate::pages::stylesheet))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(crate::guard::security_headers))
        .with_state(state)
}

/// The operator behind this request's certificate, in force now.
pub(crate) struct Operator(pub ConsoleOperator);

#[derive(Template)]
#[template(path = "console/refused.html")]
struct Refused<'a> {
    bank: &'a str,
    message: &'a str,
}

fn refused(st: &AppState, status: StatusCode, message: &str) -> Response {
    let page = Refused {
        bank: &st.svc.settings().bank_name,
        message,
    };
    (status, render(&page)).into_response()
}

/// Message for a certificate that passed TLS but opens nothing (its
/// operator was revoked a moment ago, or it expired on an open connection).
pub(crate) const NOT_IN_FORCE: &str =
    "このオペレーター証明書は使用できません。運用管理者に連絡してください。";

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
                Err(refused(
                    st,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "システムエラーが発生しました。しばらくしてから再度お試しください。",
                ))
            }
        }
    }
}

/// What every console screen shows around its content.
pub(crate) struct ConsoleLayout {
    pub title: &'static str,
    pub screen_id: &'static str,
    pub bank: String,
    pub operator: String,
    pub roles: String,
}

impl ConsoleLayout {
    fn new(st: &AppState, op: &Operator, title: &'static str, screen_id: &'static str) -> Self {
        Self {
            title,
            screen_id,
            bank: st.svc.settings().bank_name.clone(),
            operator: op.0.operator.name.to_string(),
            roles: op.0.operator.roles.labels(),
        }
    }
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
async fn opr001(State(st): State<AppState>, op: Operator) -> Response {
    let offset = st.svc.settings().display_offset();
    render(&Opr001 {
        serial: op.0.serial.to_string(),
        not_after: jp_datetime(op.0.not_after, offset),
        tasks: vec![],
        l: ConsoleLayout::new(&st, &op, "トップ", "OPR001"),
    })
}

async fn not_found(State(st): State<AppState>, _op: Option<Extension<ClientCert>>) -> Response {
    refused(
        &st,
        StatusCode::NOT_FOUND,
        "指定されたページは存在しません。",
    )
}
