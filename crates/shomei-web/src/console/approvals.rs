//! The 業務管理者's screens and the approvals: OPR020 企業一覧, OPR021
//! 企業解約の申請, OPR022 マスター登録の申請, OPR023 企業開設の申請, OPR024
//! 申請受付 (result), OPR050 承認待ち一覧, OPR051 申請詳細 (承認・否認),
//! OPR052 承認結果 and OPR053 否認結果. Each handler reads the request,
//! calls one use case of the service's approval engine and renders one
//! template; the authority, the operator's password, the 操作履歴 rows and
//! the change itself live in `shomei-service`.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use shomei_core::format::jp_datetime;
use shomei_core::{CompanyId, Service};
use shomei_service::{
    ActionError, Applied, ApprovalChange, ApprovalError, ApprovalKind, ApprovalView, Approved,
    BusinessCompany, Submitted,
};

use super::{Console, ConsoleLayout, console_system_error, in_layout_error};
use crate::AppState;
use crate::pages::render;

fn failed(
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

async fn companies(
    st: &AppState,
    c: &Console,
    title: &'static str,
    id: &'static str,
) -> Result<Vec<BusinessCompany>, Response> {
    st.svc
        .business_companies(&c.op.0, &c.client)
        .await
        .map_err(|e| failed(st, c, title, id, e))
}

#[derive(Template)]
#[template(path = "console/opr020.html")]
struct Opr020 {
    l: ConsoleLayout,
    companies: Vec<CompanyLine>,
    error: Option<String>,
    notice: Option<String>,
}

/// A row of OPR020's list.
struct CompanyLine {
    id: i64,
    name: String,
    service: &'static str,
    users: i64,
    created: String,
    state: String,
    /// Not closed: its tasks are offered.
    open: bool,
    /// No マスター left: マスター登録 is offered.
    no_master: bool,
}

/// OPR020 企業一覧 (業務管理者).
pub(crate) async fn opr020(State(st): State<AppState>, c: Console) -> Response {
    let (title, id) = ("企業管理", "OPR020");
    let list = match companies(&st, &c, title, id).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let offset = st.svc.settings().display_offset();
    render(&Opr020 {
        companies: list
            .into_iter()
            .map(|x| CompanyLine {
                id: x.id.0,
                name: x.name,
                service: x.service.label(),
                users: x.users,
                created: jp_datetime(x.created_at, offset),
                state: x.closed_at.map_or_else(
                    || "契約中".to_owned(),
                    |t| format!("解約済み（{}）", jp_datetime(t, offset)),
                ),
                open: x.closed_at.is_none(),
                no_master: x.masters == 0,
            })
            .collect(),
        error: None,
        notice: None,
        l: ConsoleLayout::new(&st, &c, title, id),
    })
}

struct Field {
    name: &'static str,
    label: &'static str,
    max: u32,
    value: String,
    required: bool,
    note: &'static str,
    choices: Vec<(&'static str, &'static str)>,
}

fn text(name: &'static str, label: &'static str, max: u32, value: &str, required: bool) -> Field {
    Field {
        name,
        label,
        max,
        value: value.to_owned(),
        required,
        note: "",
        choices: Vec::new(),
    }
}

#[derive(Template)]
#[template(path = "console/opr_form.html")]
struct FormPage {
    l: ConsoleLayout,
    lead: &'static str,
    action: &'static str,
    back: &'static str,
    hidden: Vec<(&'static str, String)>,
    fixed: Vec<(&'static str, String)>,
    fields: Vec<Field>,
    rule: String,
    error: Option<String>,
    notice: Option<String>,
}

/// The rule's sentence under a form: who approves.
pub(super) async fn rule_line(st: &AppState, kind: ApprovalKind) -> String {
    match st.svc.approval_rules().await {
        Ok(rules) => rules
            .into_iter()
            .find(|r| r.kind == kind)
            .map(|r| {
                format!(
                    "申請は、{}の役割を持つほかのオペレーター{}名の承認で実行されます（承認期限は24時間）。",
                    r.roles.labels(),
                    r.required
                )
            })
            .unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// The company's name for a form, or the refusal screen.
async fn company_of(
    st: &AppState,
    c: &Console,
    title: &'static str,
    id: &'static str,
    company: i64,
) -> Result<BusinessCompany, Response> {
    let list = companies(st, c, title, id).await?;
    match list.into_iter().find(|x| x.id == CompanyId(company)) {
        Some(x) if x.closed_at.is_none() => Ok(x),
        Some(_) => Err(in_layout_error(
            st,
            c,
            title,
            id,
            StatusCode::FORBIDDEN,
            "この企業はすでに解約されています。",
        )),
        None => Err(in_layout_error(
            st,
            c,
            title,
            id,
            StatusCode::NOT_FOUND,
            "指定された企業は見つかりません。",
        )),
    }
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct RequestForm {
    #[serde(default)]
    company: String,
    #[serde(default)]
    company_id: String,
    #[serde(default)]
    service: String,
    #[serde(default)]
    login_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

#[derive(serde::Deserialize)]
pub(crate) struct CompanyQuery {
    #[serde(default)]
    company: String,
}

fn services() -> Vec<(&'static str, &'static str)> {
    [Service::BusinessIb, Service::HottokunWebJr]
        .into_iter()
        .map(|s| (s.code(), s.label()))
        .collect()
}

async fn open_form(st: &AppState, c: &Console, f: &RequestForm, error: Option<String>) -> Response {
    let mut service = text("service", "契約サービス", 20, &f.service, true);
    service.choices = services();
    let mut email = text("email", "マスターのメールアドレス", 254, &f.email, false);
    email.note = "任意";
    let mut r = render(&FormPage {
        lead: "開設する企業と、その最初のマスターを入力してください。承認されると企業とマスターが登録され、承認したオペレーターの画面にマスターの初期パスワードが一度だけ表示されます。",
        action: "/opr023",
        back: "/opr020",
        hidden: vec![],
        fixed: vec![],
        fields: vec![
            text("company", "企業名", 60, &f.company, true),
            service,
            text("login_id", "マスターのログインID", 12, &f.login_id, true),
            text("name", "マスターの利用者名", 40, &f.name, true),
            email,
        ],
        rule: rule_line(st, ApprovalKind::OpenCompany).await,
        error: error.clone(),
        notice: None,
        l: ConsoleLayout::new(st, c, "企業開設の申請", "OPR023"),
    });
    if error.is_some() {
        *r.status_mut() = StatusCode::FORBIDDEN;
    }
    r
}

/// OPR023 企業開設の申請 (form).
pub(crate) async fn opr023(State(st): State<AppState>, c: Console) -> Response {
    if let Err(r) = companies(&st, &c, "企業開設の申請", "OPR023").await {
        return r;
    }
    open_form(&st, &c, &RequestForm::default(), None).await
}

/// The request submitted → OPR024, or the form again with the refusal.
pub(super) async fn submitted(
    st: &AppState,
    c: &Console,
    change: ApprovalChange,
    password: &str,
) -> Result<Response, ApprovalError> {
    let s = st
        .svc
        .submit_approval(&c.op.0, change, password, &c.client)
        .await?;
    Ok(submitted_page(st, c, s))
}

/// OPR024: the request received.
pub(super) fn submitted_page(st: &AppState, c: &Console, s: Submitted) -> Response {
    let offset = st.svc.settings().display_offset();
    render(&super::result_page(
        ConsoleLayout::new(st, c, "申請受付", "OPR024"),
        "申請を受け付けました。ほかのオペレーターの承認を得て実行されます。",
        vec![
            ("申請番号", s.id.to_string()),
            ("申請内容", s.summary),
            (
                "必要な承認",
                format!("{}名（{}）", s.required, s.roles.labels()),
            ),
            ("承認期限", jp_datetime(s.expires_at, offset)),
        ],
        vec![
            ("/opr050".into(), "< 承認待ち一覧へ"),
            (format!("/opr051?id={}", s.id), "申請詳細へ >"),
        ],
    ))
}

/// OPR023 → submit.
pub(crate) async fn opr023_submit(
    State(st): State<AppState>,
    c: Console,
    Form(f): Form<RequestForm>,
) -> Response {
    let change = ApprovalChange::OpenCompany {
        company: f.company.trim().to_owned(),
        service: f.service.clone(),
        login_id: f.login_id.trim().to_owned(),
        name: f.name.trim().to_owned(),
        email: f.email.trim().to_owned(),
    };
    match submitted(&st, &c, change, &f.password).await {
        Ok(r) => r,
        Err(ApprovalError::Internal(e)) => console_system_error(&st, &e),
        Err(e) => open_form(&st, &c, &f, Some(ActionError::from(e).to_string())).await,
    }
}

async fn company_form(
    st: &AppState,
    c: &Console,
    company: &BusinessCompany,
    master: bool,
    f: &RequestForm,
    error: Option<String>,
) -> Response {
    let (title, id, kind) = if master {
        ("マスター登録の申請", "OPR022", ApprovalKind::RegisterMaster)
    } else {
        ("企業解約の申請", "OPR021", ApprovalKind::CloseCompany)
    };
    let mut fields = Vec::new();
    if master {
        let mut email = text("email", "メールアドレス", 254, &f.email, false);
        email.note = "任意";
        fields = vec![
            text("login_id", "ログインID", 12, &f.login_id, true),
            text("name", "利用者名", 40, &f.name, true),
            email,
        ];
    }
    let mut r = render(&FormPage {
        lead: if master {
            "マスターがいなくなった企業に、新しいマスターを登録します。承認されると登録され、承認したオペレーターの画面に初期パスワードが一度だけ表示されます。"
        } else {
            "企業を解約します。承認されると、この企業の全利用者が利用停止になり、全電子証明書が失効します。失効は取り消せません。"
        },
        action: if master { "/opr022" } else { "/opr021" },
        back: "/opr020",
        hidden: vec![("company_id", company.id.0.to_string())],
        fixed: vec![
            ("企業番号", company.id.0.to_string()),
            ("企業名", company.name.clone()),
            ("利用者数", format!("{}人", company.users)),
        ],
        fields,
        rule: rule_line(st, kind).await,
        error: error.clone(),
        notice: None,
        l: ConsoleLayout::new(st, c, title, id),
    });
    if error.is_some() {
        *r.status_mut() = StatusCode::FORBIDDEN;
    }
    r
}

async fn company_screen(st: AppState, c: Console, q: CompanyQuery, master: bool) -> Response {
    let (title, id) = if master {
        ("マスター登録の申請", "OPR022")
    } else {
        ("企業解約の申請", "OPR021")
    };
    let Ok(n) = q.company.parse::<i64>() else {
        return in_layout_error(
            &st,
            &c,
            title,
            id,
            StatusCode::NOT_FOUND,
            "指定された企業は見つかりません。",
        );
    };
    match company_of(&st, &c, title, id, n).await {
        Ok(company) => company_form(&st, &c, &company, master, &RequestForm::default(), None).await,
        Err(r) => r,
    }
}

/// OPR021 企業解約の申請 (form).
pub(crate) async fn opr021(
    State(st): State<AppState>,
    c: Console,
    Query(q): Query<CompanyQuery>,
) -> Response {
    company_screen(st, c, q, false).await
}

/// OPR022 マスター登録の申請 (form).
pub(crate) async fn opr022(
    State(st): State<AppState>,
    c: Console,
    Query(q): Query<CompanyQuery>,
) -> Response {
    company_screen(st, c, q, true).await
}

async fn company_submit(st: AppState, c: Console, f: RequestForm, master: bool) -> Response {
    let (title, id) = if master {
        ("マスター登録の申請", "OPR022")
    } else {
        ("企業解約の申請", "OPR021")
    };
    let Ok(n) = f.company_id.parse::<i64>() else {
        return in_layout_error(
            &st,
            &c,
            title,
            id,
            StatusCode::NOT_FOUND,
            "指定された企業は見つかりません。",
        );
    };
    let company = match company_of(&st, &c, title, id, n).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let change = if master {
        ApprovalChange::RegisterMaster {
            company_id: n,
            company: company.name.clone(),
            login_id: f.login_id.trim().to_owned(),
            name: f.name.trim().to_owned(),
            email: f.email.trim().to_owned(),
        }
    } else {
        ApprovalChange::CloseCompany {
            company_id: n,
            company: company.name.clone(),
        }
    };
    match submitted(&st, &c, change, &f.password).await {
        Ok(r) => r,
        Err(ApprovalError::Internal(e)) => console_system_error(&st, &e),
        Err(e) => {
            let m = ActionError::from(e).to_string();
            company_form(&st, &c, &company, master, &f, Some(m)).await
        }
    }
}

/// OPR021 → submit.
pub(crate) async fn opr021_submit(
    State(st): State<AppState>,
    c: Console,
    Form(f): Form<RequestForm>,
) -> Response {
    company_submit(st, c, f, false).await
}

/// OPR022 → submit.
pub(crate) async fn opr022_submit(
    State(st): State<AppState>,
    c: Console,
    Form(f): Form<RequestForm>,
) -> Response {
    company_submit(st, c, f, true).await
}

#[derive(Template)]
#[template(path = "console/opr050.html")]
struct Opr050 {
    l: ConsoleLayout,
    all: bool,
    /// id, summary, requester, at, expires, approvals, state.
    rows: Vec<(i64, String, String, String, String, String, &'static str)>,
    total: i64,
    page: i64,
    pages: i64,
    error: Option<String>,
    notice: Option<String>,
}

#[derive(serde::Deserialize)]
pub(crate) struct ListQuery {
    page: Option<i64>,
    all: Option<String>,
}

/// OPR050 承認待ち一覧 (every operator sees it; who may decide is the
/// service's rule).
pub(crate) async fn opr050(
    State(st): State<AppState>,
    c: Console,
    Query(q): Query<ListQuery>,
) -> Response {
    let all = q.all.is_some();
    let p = match st.svc.approval_list(all, q.page.unwrap_or(1)).await {
        Ok(p) => p,
        Err(e) => return console_system_error(&st, &e),
    };
    let offset = st.svc.settings().display_offset();
    render(&Opr050 {
        rows: p
            .requests
            .iter()
            .map(|v| {
                (
                    v.id,
                    v.summary.clone(),
                    v.requester.clone(),
                    jp_datetime(v.requested_at, offset),
                    jp_datetime(v.expires_at, offset),
                    format!("{}/{}名", v.approvals, v.required),
                    v.state,
                )
            })
            .collect(),
        total: p.total,
        page: p.page,
        pages: p.pages,
        all,
        error: None,
        notice: None,
        l: ConsoleLayout::new(&st, &c, "承認待ち一覧", "OPR050"),
    })
}

#[derive(Template)]
#[template(path = "console/opr051.html")]
struct Opr051 {
    l: ConsoleLayout,
    v: ApprovalView,
    requested_at: String,
    expires_at: String,
    votes: Vec<(String, &'static str, String)>,
    error: Option<String>,
    notice: Option<String>,
}

fn detail_page(st: &AppState, c: &Console, v: ApprovalView, error: Option<String>) -> Response {
    let offset = st.svc.settings().display_offset();
    let status = if error.is_some() {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::OK
    };
    let mut r = render(&Opr051 {
        requested_at: jp_datetime(v.requested_at, offset),
        expires_at: jp_datetime(v.expires_at, offset),
        votes: v
            .votes
            .iter()
            .map(|x| {
                (
                    x.operator.clone(),
                    if x.vote == "approve" {
                        "承認"
                    } else {
                        "否認"
                    },
                    jp_datetime(x.at, offset),
                )
            })
            .collect(),
        v,
        error,
        notice: None,
        l: ConsoleLayout::new(st, c, "申請詳細", "OPR051"),
    });
    *r.status_mut() = status;
    r
}

#[derive(serde::Deserialize)]
pub(crate) struct IdQuery {
    #[serde(default)]
    id: String,
}

/// OPR051 申請詳細.
pub(crate) async fn opr051(
    State(st): State<AppState>,
    c: Console,
    Query(q): Query<IdQuery>,
) -> Response {
    let id = q.id.parse::<i64>().unwrap_or(0);
    match st.svc.approval_detail(id).await {
        Ok(v) => detail_page(&st, &c, v, None),
        Err(e) => failed(&st, &c, "申請詳細", "OPR051", e.into()),
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct DecideForm {
    #[serde(default)]
    id: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    password: String,
}

/// 承認 → OPR052, 否認 → OPR053; a refusal shows OPR051 again with it.
pub(crate) async fn decide(
    State(st): State<AppState>,
    c: Console,
    Form(f): Form<DecideForm>,
) -> Response {
    let id = f.id.parse::<i64>().unwrap_or(0);
    let version = f.version.parse::<i64>().unwrap_or(-1);
    let back = vec![("/opr050".to_owned(), "< 承認待ち一覧へ")];
    let outcome = match f.decision.as_str() {
        "approve" => st
            .svc
            .approve_request(&c.op.0, id, version, &f.password, &c.client)
            .await
            .map(Some),
        "reject" => st
            .svc
            .reject_request(&c.op.0, id, version, &f.password, &c.client)
            .await
            .map(|()| None),
        _ => {
            return in_layout_error(
                &st,
                &c,
                "申請詳細",
                "OPR051",
                StatusCode::BAD_REQUEST,
                "承認または否認を選んでください。",
            );
        }
    };
    let offset = st.svc.settings().display_offset();
    match outcome {
        Ok(None) => render(&super::result_page(
            ConsoleLayout::new(&st, &c, "否認完了", "OPR053"),
            "申請を否認しました。この申請は終了し、変更は行われません。",
            vec![("申請番号", id.to_string())],
            back,
        )),
        Ok(Some(Approved::Waiting {
            id,
            approvals,
            required,
        })) => render(&super::result_page(
            ConsoleLayout::new(&st, &c, "承認完了", "OPR052"),
            "承認しました。必要な数の承認がそろうと、変更が実行されます。",
            vec![
                ("申請番号", id.to_string()),
                ("承認", format!("{approvals}/{required}名")),
            ],
            back,
        )),
        Ok(Some(Approved::Committed {
            id,
            applied: Applied::OperatorAdded(op),
        })) => operator_added(&st, &c, id, op),
        Ok(Some(Approved::Committed { id, applied })) => {
            let mut rows = vec![("申請番号", id.to_string())];
            let mut secrets = vec![];
            let mut done = "承認しました。申請された変更を実行しました。";
            match applied {
                Applied::CompanyOpened {
                    company_id,
                    company,
                    login_id,
                    passwords,
                }
                | Applied::MasterRegistered {
                    company_id,
                    company,
                    login_id,
                    passwords,
                } => {
                    done = "承認しました。申請された変更を実行しました。マスターの初期パスワードはこの画面に一度だけ表示されます。お客さまに安全な方法でお知らせください（初回ログイン時に変更が必要です）。";
                    rows.extend([
                        ("企業番号", company_id.0.to_string()),
                        ("企業名", company),
                        ("マスターのログインID", login_id),
                    ]);
                    secrets = vec![
                        ("初期ログインパスワード", passwords.login),
                        ("初期確認用パスワード", passwords.confirm),
                    ];
                }
                Applied::CompanyClosed {
                    company_id,
                    company,
                    users_stopped,
                    certificates_revoked,
                } => rows.extend([
                    ("企業番号", company_id.0.to_string()),
                    ("企業名", company),
                    ("利用停止した利用者", format!("{users_stopped}人")),
                    ("失効した電子証明書", format!("{certificates_revoked}件")),
                ]),
                Applied::MasterPasswordsReset { company, done: d } => {
                    done = "承認しました。申請された変更を実行しました。マスターの初期パスワードはこの画面に一度だけ表示されます。お客さまに安全な方法でお知らせください（次回ログイン時に変更が必要です）。";
                    rows.extend([("企業名", company), ("ログインID", d.login_id)]);
                    secrets.extend(d.login.map(|p| ("初期ログインパスワード", p)));
                    secrets.extend(d.confirm.map(|p| ("初期確認用パスワード", p)));
                }
                Applied::OperatorAdded(_) => {}
                Applied::RolesChanged { operator, roles } => {
                    rows.extend([("オペレーター", operator), ("役割", roles.labels())]);
                }
                Applied::RuleChanged(r) => rows.extend([
                    ("対象の変更", r.kind.label().to_owned()),
                    (
                        "必要な承認",
                        format!("{}名（{}）", r.required, r.roles.labels()),
                    ),
                ]),
            }
            rows.push(("実行日時", jp_datetime(st.svc.now(), offset)));
            render(
                &super::result_page(
                    ConsoleLayout::new(&st, &c, "承認完了", "OPR052"),
                    done,
                    rows,
                    back,
                )
                .with_secrets(secrets),
            )
        }
        Err(ApprovalError::Internal(e)) => console_system_error(&st, &e),
        Err(e) => {
            let m = ActionError::from(e).to_string();
            match st.svc.approval_detail(id).await {
                Ok(v) => detail_page(&st, &c, v, Some(m)),
                Err(_) => in_layout_error(&st, &c, "申請詳細", "OPR051", StatusCode::FORBIDDEN, &m),
            }
        }
    }
}

#[derive(Template)]
#[template(path = "console/opr052_operator.html")]
struct Opr052Operator {
    l: ConsoleLayout,
    id: i64,
    op: shomei_service::NewOperator,
    until: String,
    /// The PKCS#12, base64: it travels only in this answer (nothing keeps
    /// it on the server), so it is downloaded from this screen once.
    p12: String,
}

/// OPR052 of a new operator: their PKCS#12 and passwords, once.
fn operator_added(
    st: &AppState,
    c: &Console,
    id: i64,
    op: shomei_service::NewOperator,
) -> Response {
    use base64::Engine;
    let offset = st.svc.settings().display_offset();
    render(&Opr052Operator {
        l: ConsoleLayout::new(st, c, "承認完了", "OPR052"),
        id,
        until: jp_datetime(op.not_after, offset),
        p12: base64::engine::general_purpose::STANDARD.encode(&op.p12),
        op,
    })
}
