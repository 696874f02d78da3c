//! 管理業務: BSSK001, BRSK001 and the revocation flow BRSK018 → BRSK019 → BRSK020.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use shomei_core::format::jp_datetime;
use shomei_core::{Problem, UserId};
use shomei_service::{RevocationTarget, RevokeError, SortKey, WaitingRevocation};

use crate::AppState;
use crate::pages::{Authed, Fields, Layout, render, system_error, user_error};
use crate::session::random_token;

const ADMIN: &str = "管理業務";

#[derive(Template)]
#[template(path = "bssk001.html")]
struct Bssk001 {
    l: Layout,
}

pub(crate) async fn bssk001(State(st): State<AppState>, a: Authed) -> Response {
    render(&Bssk001 {
        l: Layout::user(&st, &a, "管理業務 業務選択", "BSSK001", ADMIN),
    })
}

/// The old paths of BSSK001's items: 企業管理 is BSSK002, 操作履歴照会 BSSK011.
pub(crate) async fn bssk001_item(_a: Authed, Path(item): Path<String>) -> Response {
    let to = match item.as_str() {
        "company" => "/bssk002",
        "history" => "/bssk011",
        _ => return crate::pages::not_found().await,
    };
    axum::response::Redirect::to(to).into_response()
}

#[derive(Template)]
#[template(path = "brsk001.html")]
struct Brsk001 {
    l: Layout,
    manages: bool,
}

pub(crate) async fn brsk001(State(st): State<AppState>, a: Authed) -> Response {
    let manages = st.svc.manager(&a.s.actor).is_ok();
    render(&Brsk001 {
        l: Layout::user(&st, &a, "利用者管理 作業内容選択", "BRSK001", ADMIN),
        manages,
    })
}

/// The old paths of BRSK001's items, now screens of their own.
pub(crate) async fn brsk001_item(_a: Authed, Path(item): Path<String>) -> Response {
    let to = match item.as_str() {
        "password" => "/brsk002",
        "profile" => "/brsk005",
        "users" => "/brsk011",
        "stop" => "/brsk021",
        _ => return crate::pages::not_found().await,
    };
    axum::response::Redirect::to(to).into_response()
}

#[derive(Template)]
#[template(path = "brsk002.html")]
struct Brsk002 {
    l: Layout,
    error: Option<String>,
    notice: Option<String>,
    kind: &'static str,
    rules: Vec<String>,
}

fn brsk002_page(st: &AppState, a: &Authed, kind: &'static str, error: Option<String>) -> Response {
    let u = &a.s.user;
    let pending: Vec<&str> = [
        (u.must_change_login, "ログインパスワード"),
        (u.must_change_confirm, "確認用パスワード"),
    ]
    .iter()
    .filter(|(m, _)| *m)
    .map(|(_, l)| *l)
    .collect();
    let notice = (!pending.is_empty()).then(|| {
        format!(
            "銀行が設定した仮のパスワードです。ご利用の前に{}を変更してください。",
            pending.join("と")
        )
    });
    let kind = if !u.must_change_login && u.must_change_confirm {
        "confirm"
    } else {
        kind
    };
    render(&Brsk002 {
        l: Layout::user(st, a, "利用者管理 パスワード変更", "BRSK002", ADMIN),
        error,
        notice,
        kind,
        rules: st.svc.settings().password_policy().rules_ja(),
    })
}

/// パスワード変更 (BRSK002): the form, with the policy's rules.
pub(crate) async fn brsk002(State(st): State<AppState>, a: Authed) -> Response {
    brsk002_page(&st, &a, "login", None)
}

/// 「変更 >」: changes the password, then BRSK003; an error stays on BRSK002.
pub(crate) async fn brsk002_submit(State(st): State<AppState>, a: Authed, f: Fields) -> Response {
    let kind = match f.get("kind") {
        "login" => shomei_service::PasswordKind::Login,
        "confirm" => shomei_service::PasswordKind::Confirm,
        _ => {
            return brsk002_page(
                &st,
                &a,
                "login",
                Some("変更するパスワードの種類を選択してください。".into()),
            );
        }
    };
    let code = if kind == shomei_service::PasswordKind::Login {
        "login"
    } else {
        "confirm"
    };
    match st
        .svc
        .change_password(
            &a.s.actor,
            kind,
            f.get("current"),
            f.get("new"),
            f.get("again"),
            &a.client,
        )
        .await
    {
        Ok(()) => render(&Brsk003 {
            l: Layout::user(&st, &a, "利用者管理 パスワード変更結果", "BRSK003", ADMIN),
            kind: kind.label(),
        }),
        Err(shomei_service::PasswordChangeError::Refused(m)) => {
            brsk002_page(&st, &a, code, Some(m))
        }
        Err(shomei_service::PasswordChangeError::Internal(e)) => system_error(e),
    }
}

#[derive(Template)]
#[template(path = "brsk003.html")]
struct Brsk003 {
    l: Layout,
    kind: &'static str,
}

#[derive(Template)]
#[template(path = "brsk005.html")]
struct Brsk005 {
    l: Layout,
    login_id: String,
    name: String,
    role: &'static str,
    email: String,
    authorities: Vec<&'static str>,
    service_state: String,
    cert_state: &'static str,
    cert_expiry: String,
    last_login: String,
}

/// 利用者情報の照会 (BRSK005): the user's own information, loaded fresh.
pub(crate) async fn brsk005(State(st): State<AppState>, a: Authed) -> Response {
    let u = &a.s.user;
    let cert = match st.svc.own_certificate(&a.s).await {
        Ok(c) => c,
        Err(e) => return system_error(e),
    };
    let now = st.svc.now();
    let state = cert.state;
    let offset = st.svc.settings().display_offset();
    let in_force = matches!(
        state,
        shomei_core::CertState::Issued | shomei_core::CertState::Renewable
    );
    let authorities = shomei_core::authority::authorities_ja(u.role);
    let states = u.counters.service_states(now);
    render(&Brsk005 {
        l: Layout::user(&st, &a, "利用者管理 利用者情報照会", "BRSK005", ADMIN),
        login_id: u.login_id.to_string(),
        name: u.name.clone(),
        role: u.role.label(),
        email: if u.email.is_empty() {
            "（未登録）".into()
        } else {
            u.email.clone()
        },
        authorities,
        service_state: states
            .iter()
            .map(|s| s.label())
            .collect::<Vec<_>>()
            .join("、"),
        cert_state: state.label(),
        cert_expiry: cert
            .not_after
            .filter(|_| in_force)
            .map(|t| jp_datetime(t, offset))
            .unwrap_or_else(|| "－".into()),
        last_login: u
            .last_login_at
            .map(|t| jp_datetime(t, offset))
            .unwrap_or_else(|| "－".into()),
    })
}

struct Row {
    id: i64,
    login_id: String,
    name: String,
    role: &'static str,
    state: &'static str,
    expiry: String,
}

#[derive(Template)]
#[template(path = "brsk018.html")]
struct Brsk018 {
    l: Layout,
    error: Option<String>,
    notice: Option<String>,
    sort_keys: Vec<(&'static str, &'static str)>,
    sort: &'static str,
    ascending: bool,
    rows: Vec<Row>,
    selected: Option<i64>,
    /// Paging: a company may have thousands of users.
    page: usize,
    pages: usize,
    total: usize,
}

/// Rows a page of BRSK018.
const USERS_PER_PAGE: usize = 100;

/// The managing use cases for 証明書失効, or the 403 page of the refusal,
/// which 操作履歴 records.
async fn revocation_manager<'a>(
    st: &'a AppState,
    a: &'a Authed,
) -> Result<shomei_service::Manager<'a>, Response> {
    match st
        .svc
        .manager_recorded(
            &a.s.actor,
            shomei_core::Operation::CertificateRevocation,
            &a.client,
        )
        .await
    {
        Ok(Ok(m)) => Ok(m),
        Ok(Err(r)) => Err(user_error(st, a, StatusCode::FORBIDDEN, r.message_ja())),
        Err(e) => Err(system_error(e)),
    }
}

fn refusal_response(st: &AppState, a: &Authed, e: RevokeError) -> Response {
    match e {
        RevokeError::Refused(r) => user_error(st, a, StatusCode::FORBIDDEN, r.message_ja()),
        RevokeError::Problem(p) => user_error(st, a, StatusCode::BAD_REQUEST, p.message_ja()),
        RevokeError::Internal(e) => system_error(e),
    }
}

/// How BRSK018 lists: 並び順, ascending or not, and the page.
struct ListView {
    sort: SortKey,
    ascending: bool,
    page: usize,
}

impl Default for ListView {
    fn default() -> Self {
        Self {
            sort: SortKey::default(),
            ascending: true,
            page: 1,
        }
    }
}

async fn user_list(
    st: &AppState,
    a: &Authed,
    view: ListView,
    error: Option<String>,
    notice: Option<String>,
    selected: Option<i64>,
) -> Response {
    let ListView {
        sort,
        ascending,
        page,
    } = view;
    let mgr = match revocation_manager(st, a).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let rows = match mgr.revocation_list(sort, ascending).await {
        Ok(r) => r,
        Err(e) => return refusal_response(st, a, e),
    };
    let offset = st.svc.settings().display_offset();
    let total = rows.len();
    let pages = total.div_ceil(USERS_PER_PAGE).max(1);
    let page = page.clamp(1, pages);
    let rows = rows
        .into_iter()
        .skip((page - 1) * USERS_PER_PAGE)
        .take(USERS_PER_PAGE)
        .map(|r| Row {
            id: r.user_id.0,
            login_id: r.login_id.to_string(),
            name: r.name,
            role: r.role.label(),
            state: r.state.label(),
            expiry: r
                .expiry
                .map(|t| jp_datetime(t, offset))
                .unwrap_or_else(|| "-".into()),
        })
        .collect();
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut res = render(&Brsk018 {
        l: Layout::user(st, a, "利用者管理 利用者一覧", "BRSK018", ADMIN),
        error,
        notice,
        sort_keys: SortKey::ALL.iter().map(|k| (k.code(), k.label())).collect(),
        sort: sort.code(),
        ascending,
        rows,
        selected,
        page,
        pages,
        total,
    });
    *res.status_mut() = status;
    res
}

/// BRSK018 利用者一覧, sorted by 並び順 (再表示 submits the query).
pub(crate) async fn brsk018(
    State(st): State<AppState>,
    a: Authed,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let sort = q
        .get("sort")
        .and_then(|s| SortKey::from_code(s))
        .unwrap_or_default();
    let ascending = q.get("order").map(String::as_str) != Some("desc");
    let notice = q
        .get("m")
        .filter(|m| *m == "done")
        .map(|_| Problem::AlreadyDone.message_ja().to_owned());
    let page = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let view = ListView {
        sort,
        ascending,
        page,
    };
    user_list(&st, &a, view, None, notice, None).await
}

/// 「失効 >」: checks the selection and moves to BRSK019.
pub(crate) async fn brsk018_submit(State(st): State<AppState>, a: Authed, f: Fields) -> Response {
    let selected = f.get("user").parse::<i64>().ok();
    let mgr = match revocation_manager(&st, &a).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    match mgr.revocation_target(selected, &a.client).await {
        Ok(target) => {
            let token = random_token();
            if let Err(e) = st
                .svc
                .sessions()
                .set_pending(&a.sid, Some(&WaitingRevocation { token, target }))
                .await
            {
                return system_error(e);
            }
            Redirect::to("/brsk019").into_response()
        }
        // A selection the actor may not act on, or one that is not revocable,
        // is an error on this screen; nothing changes.
        Err(RevokeError::Problem(p)) => {
            user_list(
                &st,
                &a,
                ListView::default(),
                Some(p.message_ja().into()),
                None,
                selected,
            )
            .await
        }
        Err(RevokeError::Refused(r)) if st.svc.manager(&a.s.actor).is_ok() => {
            user_list(
                &st,
                &a,
                ListView::default(),
                Some(r.message_ja().into()),
                None,
                selected,
            )
            .await
        }
        Err(e) => refusal_response(&st, &a, e),
    }
}

#[derive(Template)]
#[template(path = "brsk019.html")]
struct Brsk019 {
    l: Layout,
    error: Option<String>,
    notice: Option<String>,
    token: String,
    login_id: String,
    name: String,
    state: &'static str,
    expiry: String,
}

fn confirm_page(
    st: &AppState,
    a: &Authed,
    p: &WaitingRevocation,
    error: Option<String>,
) -> Response {
    let t: &RevocationTarget = &p.target;
    let offset = st.svc.settings().display_offset();
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut res = render(&Brsk019 {
        l: Layout::user(st, a, "利用者管理 証明書失効確認", "BRSK019", ADMIN),
        error,
        notice: None,
        token: p.token.clone(),
        login_id: t.login_id.to_string(),
        name: t.name.clone(),
        state: t.state.label(),
        expiry: t
            .expiry
            .map(|e| jp_datetime(e, offset))
            .unwrap_or_else(|| "-".into()),
    });
    *res.status_mut() = status;
    res
}

/// BRSK019 証明書失効確認.
pub(crate) async fn brsk019(State(st): State<AppState>, a: Authed) -> Response {
    if let Err(r) = crate::pages::manager(&st, &a) {
        return r;
    }
    let pending = match st.svc.sessions().get(&a.sid).await {
        Ok(d) => d.and_then(|d| d.pending),
        Err(e) => return system_error(e),
    };
    match pending {
        Some(p) => confirm_page(&st, &a, &p, None),
        None => Redirect::to("/brsk018").into_response(),
    }
}

/// 「< 戻る」 or 「実行 >」 on BRSK019.
pub(crate) async fn brsk019_submit(State(st): State<AppState>, a: Authed, f: Fields) -> Response {
    if f.get("action") == "back" {
        if let Err(e) = st.svc.sessions().set_pending(&a.sid, None).await {
            return system_error(e);
        }
        return Redirect::to("/brsk018").into_response();
    }
    // Taking the pending operation makes a second submit of this form find
    // nothing: a double click or the back button revokes once.
    let taken = match st.svc.sessions().take_pending(&a.sid, f.get("token")).await {
        Ok(p) => p,
        Err(e) => return system_error(e),
    };
    let Some(p) = taken else {
        if let Err(r) = revocation_manager(&st, &a).await {
            return r;
        }
        return Redirect::to("/brsk018?m=done").into_response();
    };
    let t = &p.target;
    match st
        .svc
        .revoke_certificate(
            &a.s.actor,
            UserId(t.user_id.0),
            &t.serial,
            f.get("confirm_password"),
            &a.client,
        )
        .await
    {
        Ok(done) => {
            if let Err(e) = st.svc.sessions().set_done(&a.sid, &done).await {
                return system_error(e);
            }
            Redirect::to("/brsk020").into_response()
        }
        Err(RevokeError::Problem(
            pr @ (Problem::ConfirmPasswordWrong | Problem::ConfirmPasswordStopped),
        )) => {
            // Same confirmation again, with the error; the operation stays pending.
            if let Err(e) = st.svc.sessions().set_pending(&a.sid, Some(&p)).await {
                return system_error(e);
            }
            confirm_page(&st, &a, &p, Some(pr.message_ja().into()))
        }
        Err(RevokeError::Problem(pr)) => {
            user_list(
                &st,
                &a,
                ListView::default(),
                Some(pr.message_ja().into()),
                None,
                None,
            )
            .await
        }
        Err(e) => refusal_response(&st, &a, e),
    }
}

#[derive(Template)]
#[template(path = "brsk020.html")]
struct Brsk020 {
    l: Layout,
    login_id: String,
    name: String,
    state: &'static str,
}

/// BRSK020 証明書失効結果.
pub(crate) async fn brsk020(State(st): State<AppState>, a: Authed) -> Response {
    if let Err(r) = crate::pages::manager(&st, &a) {
        return r;
    }
    let done = match st.svc.sessions().get(&a.sid).await {
        Ok(d) => d.and_then(|d| d.done),
        Err(e) => return system_error(e),
    };
    match done {
        Some(d) => render(&Brsk020 {
            l: Layout::user(&st, &a, "利用者管理 証明書失効結果", "BRSK020", ADMIN),
            login_id: d.login_id.to_string(),
            name: d.name,
            state: d.state.label(),
        }),
        None => Redirect::to("/brsk018").into_response(),
    }
}
