//! The 業務管理者's OPR025 契約サービス変更 (a company's service and the
//! limits that come with it) and its result OPR026. The role, the
//! operator's password, the checks, the change and its 操作履歴 row are the
//! service's ([`shomei_service::Shomei::console_set_service`]).

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use shomei_core::CompanyId;
use shomei_core::format::jp_datetime;
use shomei_service::{ActionError, CompanyServices, NO_SUCH_COMPANY, NOT_BUSINESS_ADMIN};

use super::{Console, ConsoleLayout, console_system_error, failed, in_layout_error};
use crate::AppState;
use crate::pages::render;

const TITLE: &str = "契約サービス変更";
const SCREEN: &str = "OPR025";

#[derive(Template)]
#[template(path = "console/opr025.html")]
struct Opr025 {
    l: ConsoleLayout,
    c: CompanyServices,
    /// The service code checked on the form.
    chosen: String,
    error: Option<String>,
    notice: Option<String>,
}

fn company_id(s: &str) -> Option<CompanyId> {
    s.trim().parse::<i64>().ok().map(CompanyId)
}

/// OPR025 with the company's services, or the screen that says why not.
async fn form(
    st: &AppState,
    c: &Console,
    company: Option<CompanyId>,
    chosen: &str,
    error: Option<String>,
) -> Response {
    let Some(company) = company else {
        return in_layout_error(st, c, TITLE, SCREEN, StatusCode::NOT_FOUND, NO_SUCH_COMPANY);
    };
    let services = match st.svc.company_services(&c.op.0, company, &c.client).await {
        Ok(s) => s,
        Err(e) => return failed(st, c, TITLE, SCREEN, e),
    };
    let status = if error.is_some() {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::OK
    };
    let mut r = render(&Opr025 {
        chosen: chosen.to_owned(),
        c: services,
        error,
        notice: None,
        l: ConsoleLayout::new(st, c, TITLE, SCREEN),
    });
    *r.status_mut() = status;
    r
}

#[derive(serde::Deserialize)]
pub(crate) struct CompanyQuery {
    #[serde(default)]
    company: String,
}

/// OPR025 契約サービス変更 (form).
pub(crate) async fn opr025(
    State(st): State<AppState>,
    c: Console,
    Query(q): Query<CompanyQuery>,
) -> Response {
    form(&st, &c, company_id(&q.company), "", None).await
}

#[derive(serde::Deserialize)]
pub(crate) struct ServiceForm {
    #[serde(default)]
    company_id: String,
    #[serde(default)]
    service: String,
    #[serde(default)]
    password: String,
}

/// OPR025 → OPR026 (result), or the form again with the refusal.
pub(crate) async fn opr025_submit(
    State(st): State<AppState>,
    c: Console,
    Form(f): Form<ServiceForm>,
) -> Response {
    let Some(company) = company_id(&f.company_id) else {
        return form(&st, &c, None, "", None).await;
    };
    match st
        .svc
        .console_set_service(&c.op.0, company, &f.service, &f.password, &c.client)
        .await
    {
        Ok(done) => {
            let offset = st.svc.settings().display_offset();
            render(&super::result_page(
                ConsoleLayout::new(&st, &c, "契約サービス変更完了", "OPR026"),
                "契約サービスを変更しました。利用者数の上限は、次の操作から新しい契約サービスのものになります。",
                vec![
                    ("企業番号", done.id.0.to_string()),
                    ("企業名", done.name),
                    (
                        "変更前の契約サービス",
                        format!(
                            "{}（利用者数の上限 {}人）",
                            done.before.service.label(),
                            done.before.max_users
                        ),
                    ),
                    (
                        "変更後の契約サービス",
                        format!(
                            "{}（利用者数の上限 {}人）",
                            done.after.service.label(),
                            done.after.max_users
                        ),
                    ),
                    ("利用者数", format!("{}人", done.users)),
                    ("変更日時", jp_datetime(done.at, offset)),
                ],
                vec![
                    (
                        format!("/opr025?company={}", done.id.0),
                        "< 契約サービス変更へ",
                    ),
                    ("/opr020".into(), "< 企業一覧へ"),
                ],
            ))
        }
        // Not a 業務管理者: the refusal alone (its row is written once).
        Err(ActionError::Refused(m)) if m == NOT_BUSINESS_ADMIN => {
            in_layout_error(&st, &c, TITLE, SCREEN, StatusCode::FORBIDDEN, &m)
        }
        Err(ActionError::Refused(m)) => form(&st, &c, Some(company), &f.service, Some(m)).await,
        Err(ActionError::Internal(e)) => console_system_error(&st, &e),
    }
}
