//! The 運用管理者's screens: OPR040 オペレーター一覧, OPR041 役割変更の申請
//! and OPR042 承認ルール (view and the request to change one). Both
//! changes go through the approval engine (result on OPR024, decided on
//! OPR051); the authority check is the service's.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use shomei_core::OperatorRole;
use shomei_core::format::jp_datetime;
use shomei_service::{ActionError, ApprovalChange, ApprovalError, ApprovalKind, MAX_REQUIRED};

use super::approvals::submitted;
use super::{Console, ConsoleLayout, console_system_error, failed, in_layout_error};
use crate::AppState;
use crate::pages::render;

#[derive(Template)]
#[template(path = "console/opr040.html")]
struct Opr040 {
    l: ConsoleLayout,
    /// name, roles, state, serial, until, added by, changeable.
    operators: Vec<(String, String, &'static str, String, String, String, bool)>,
    error: Option<String>,
    notice: Option<String>,
}

/// OPR040 オペレーター一覧 (運用管理者).
pub(crate) async fn opr040(State(st): State<AppState>, c: Console) -> Response {
    let (title, id) = ("オペレーター管理", "OPR040");
    let list = match st.svc.operations_operators(&c.op.0, &c.client).await {
        Ok(l) => l,
        Err(e) => return failed(&st, &c, title, id, e),
    };
    let offset = st.svc.settings().display_offset();
    render(&Opr040 {
        operators: list
            .into_iter()
            .map(|o| {
                (
                    o.operator.name.to_string(),
                    o.operator.roles.labels(),
                    if o.operator.active {
                        "有効"
                    } else {
                        "失効"
                    },
                    o.newest
                        .as_ref()
                        .map(|c| c.serial.to_string())
                        .unwrap_or_default(),
                    o.newest
                        .as_ref()
                        .map(|c| jp_datetime(c.not_after, offset))
                        .unwrap_or_default(),
                    o.operator.created_by.clone(),
                    o.operator.active,
                )
            })
            .collect(),
        error: None,
        notice: None,
        l: ConsoleLayout::new(&st, &c, title, id),
    })
}

#[derive(Template)]
#[template(path = "console/opr041.html")]
struct Opr041 {
    l: ConsoleLayout,
    name: String,
    current: String,
    roles: Vec<(&'static str, &'static str, bool)>,
    rule: String,
    error: Option<String>,
    notice: Option<String>,
}

#[derive(serde::Deserialize)]
pub(crate) struct NameQuery {
    #[serde(default)]
    name: String,
}

async fn roles_form(
    st: &AppState,
    c: &Console,
    name: &str,
    chosen: Option<&[String]>,
    error: Option<String>,
) -> Response {
    let (title, id) = ("役割変更の申請", "OPR041");
    let list = match st.svc.operations_operators(&c.op.0, &c.client).await {
        Ok(l) => l,
        Err(e) => return failed(st, c, title, id, e),
    };
    let Some(o) = list
        .into_iter()
        .find(|o| o.operator.name.as_str() == name && o.operator.active)
    else {
        return in_layout_error(
            st,
            c,
            title,
            id,
            StatusCode::NOT_FOUND,
            "指定されたオペレーターは見つかりません。",
        );
    };
    let status = if error.is_some() {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::OK
    };
    let mut r = render(&Opr041 {
        roles: OperatorRole::ALL
            .into_iter()
            .map(|r| {
                let on = match chosen {
                    Some(c) => c.iter().any(|x| x == r.code()),
                    None => o.operator.roles.has(r),
                };
                (r.code(), r.label(), on)
            })
            .collect(),
        name: o.operator.name.to_string(),
        current: o.operator.roles.labels(),
        rule: super::approvals::rule_line(st, ApprovalKind::ChangeOperatorRoles).await,
        error,
        notice: None,
        l: ConsoleLayout::new(st, c, title, id),
    });
    *r.status_mut() = status;
    r
}

/// OPR041 役割変更の申請 (form).
pub(crate) async fn opr041(
    State(st): State<AppState>,
    c: Console,
    Query(q): Query<NameQuery>,
) -> Response {
    roles_form(&st, &c, &q.name, None, None).await
}

/// The repeated `role` values and the other fields of a form.
fn fields(body: &[u8]) -> (Vec<String>, std::collections::HashMap<String, String>) {
    let mut roles = Vec::new();
    let mut rest = std::collections::HashMap::new();
    for (k, v) in form_urlencoded::parse(body) {
        if k == "role" {
            if roles.len() < OperatorRole::ALL.len() {
                roles.push(v.into_owned());
            }
        } else {
            rest.insert(k.into_owned(), v.into_owned());
        }
    }
    (roles, rest)
}

/// OPR041 → submit.
pub(crate) async fn opr041_submit(State(st): State<AppState>, c: Console, body: Bytes) -> Response {
    let (roles, f) = fields(&body);
    let name = f.get("name").cloned().unwrap_or_default();
    let change = ApprovalChange::ChangeOperatorRoles {
        operator: name.clone(),
        roles: roles.join(","),
    };
    let password = f.get("password").map(String::as_str).unwrap_or_default();
    match submitted(&st, &c, change, password).await {
        Ok(r) => r,
        Err(ApprovalError::Internal(e)) => console_system_error(&st, &e),
        Err(e) => {
            roles_form(
                &st,
                &c,
                &name,
                Some(&roles),
                Some(ActionError::from(e).to_string()),
            )
            .await
        }
    }
}

#[derive(Template)]
#[template(path = "console/opr042.html")]
struct Opr042 {
    l: ConsoleLayout,
    /// code, label, required, roles, last change.
    rules: Vec<(&'static str, &'static str, u32, String, String)>,
    counts: Vec<u32>,
    roles: Vec<(&'static str, &'static str)>,
    error: Option<String>,
    notice: Option<String>,
}

async fn rules_page(st: &AppState, c: &Console, error: Option<String>) -> Response {
    let (title, id) = ("承認ルール", "OPR042");
    if let Err(e) = st.svc.operations_operators(&c.op.0, &c.client).await {
        return failed(st, c, title, id, e);
    }
    let rules = match st.svc.approval_rules().await {
        Ok(r) => r,
        Err(e) => return console_system_error(st, &e),
    };
    let offset = st.svc.settings().display_offset();
    let status = if error.is_some() {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::OK
    };
    let mut r = render(&Opr042 {
        rules: rules
            .into_iter()
            .map(|r| {
                (
                    r.kind.code(),
                    r.kind.label(),
                    r.required,
                    r.roles.labels(),
                    r.changed
                        .map(|(t, by)| format!("{} {by}", jp_datetime(t, offset)))
                        .unwrap_or_else(|| "初期設定".into()),
                )
            })
            .collect(),
        counts: (0..=MAX_REQUIRED).collect(),
        roles: OperatorRole::ALL
            .into_iter()
            .map(|r| (r.code(), r.label()))
            .collect(),
        error,
        notice: None,
        l: ConsoleLayout::new(st, c, title, id),
    });
    *r.status_mut() = status;
    r
}

/// OPR042 承認ルール.
pub(crate) async fn opr042(State(st): State<AppState>, c: Console) -> Response {
    rules_page(&st, &c, None).await
}

/// OPR042 → submit a rule change.
pub(crate) async fn opr042_submit(State(st): State<AppState>, c: Console, body: Bytes) -> Response {
    let (roles, f) = fields(&body);
    let Some(required) = f.get("required").and_then(|n| n.parse::<u32>().ok()) else {
        return rules_page(&st, &c, Some("必要な承認数を選択してください。".into())).await;
    };
    let change = ApprovalChange::ChangeApprovalRule {
        rule: f.get("rule").cloned().unwrap_or_default(),
        required,
        roles: roles.join(","),
    };
    let password = f.get("password").map(String::as_str).unwrap_or_default();
    match submitted(&st, &c, change, password).await {
        Ok(r) => r,
        Err(ApprovalError::Internal(e)) => console_system_error(&st, &e),
        Err(e) => rules_page(&st, &c, Some(ActionError::from(e).to_string())).await,
    }
}

#[derive(Template)]
#[template(path = "console/opr043.html")]
struct Opr043 {
    l: ConsoleLayout,
    name: String,
    email: String,
    roles: Vec<(&'static str, &'static str, bool)>,
    rule: String,
    error: Option<String>,
    notice: Option<String>,
}

async fn add_form(
    st: &AppState,
    c: &Console,
    f: &std::collections::HashMap<String, String>,
    chosen: &[String],
    error: Option<String>,
) -> Response {
    let (title, id) = ("オペレーター登録の申請", "OPR043");
    if let Err(e) = st.svc.operations_operators(&c.op.0, &c.client).await {
        return failed(st, c, title, id, e);
    }
    let status = if error.is_some() {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::OK
    };
    let field = |k: &str| f.get(k).cloned().unwrap_or_default();
    let mut r = render(&Opr043 {
        name: field("name"),
        email: field("email"),
        roles: OperatorRole::ALL
            .into_iter()
            .map(|r| (r.code(), r.label(), chosen.iter().any(|x| x == r.code())))
            .collect(),
        rule: super::approvals::rule_line(st, ApprovalKind::AddOperator).await,
        error,
        notice: None,
        l: ConsoleLayout::new(st, c, title, id),
    });
    *r.status_mut() = status;
    r
}

/// OPR043 オペレーター登録の申請 (form).
pub(crate) async fn opr043(State(st): State<AppState>, c: Console) -> Response {
    add_form(&st, &c, &Default::default(), &[], None).await
}

/// OPR043 → submit.
pub(crate) async fn opr043_submit(State(st): State<AppState>, c: Console, body: Bytes) -> Response {
    let (roles, f) = fields(&body);
    let field = |k: &str| f.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let change = ApprovalChange::AddOperator {
        name: field("name"),
        roles: roles.join(","),
        email: field("email"),
    };
    let password = f.get("password").map(String::as_str).unwrap_or_default();
    match submitted(&st, &c, change, password).await {
        Ok(r) => r,
        Err(ApprovalError::Internal(e)) => console_system_error(&st, &e),
        Err(e) => add_form(&st, &c, &f, &roles, Some(ActionError::from(e).to_string())).await,
    }
}
