//! 利用者停止・解除: BRSK021 (select users and the state after the change)
//! → BRSK022 (confirm with 確認パスワード, 実行) → BRSK023 (result). The
//! server checks the authority again for every request and every user.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use shomei_core::{Operation, UserId};
use shomei_service::User;
use shomei_service::{ServiceChange, StopError};

use crate::AppState;
use crate::pages::{Authed, Layout, render, system_error, user_error};

const ADMIN: &str = "管理業務";

struct ListRow {
    id: i64,
    login_id: String,
    name: String,
    role: &'static str,
    states: String,
    changeable: bool,
    checked: bool,
}

#[derive(Template)]
#[template(path = "brsk021.html")]
struct Brsk021 {
    l: Layout,
    error: Option<String>,
    notice: Option<String>,
    rows: Vec<ListRow>,
    state: String,
}

struct UserLine {
    id: i64,
    login_id: String,
    name: String,
    role: &'static str,
    states: String,
}

#[derive(Template)]
#[template(path = "brsk022.html")]
struct Brsk022 {
    l: Layout,
    error: Option<String>,
    notice: Option<String>,
    rows: Vec<UserLine>,
    state: &'static str,
    state_label: &'static str,
}

#[derive(Template)]
#[template(path = "brsk023.html")]
struct Brsk023 {
    l: Layout,
    rows: Vec<UserLine>,
}

/// The form's `user` values (repeated) and `state`.
struct Selection {
    users: Vec<UserId>,
    state: String,
}

fn selection(body: &[u8]) -> Result<Selection, String> {
    let mut users = Vec::new();
    let mut state = String::new();
    for (k, v) in form_urlencoded::parse(body) {
        match k.as_ref() {
            "user" => users
                .push(UserId(v.parse().map_err(|_| {
                    "利用者の選択が正しくありません。".to_string()
                })?)),
            "state" => state = v.into_owned(),
            _ => {}
        }
    }
    if users.len() > 1000 {
        return Err("一度に選択できる利用者は1,000人までです。".into());
    }
    Ok(Selection { users, state })
}

/// The selection and the state after the change, or BRSK021 again with
/// what is wrong.
async fn selection_and_change(
    st: &AppState,
    a: &Authed,
    body: &[u8],
) -> Result<(Selection, ServiceChange), Response> {
    let sel = match selection(body) {
        Ok(s) => s,
        Err(m) => return Err(list(st, a, Some(m), None).await),
    };
    match ServiceChange::from_code(&sel.state) {
        Some(change) => Ok((sel, change)),
        None => Err(list(
            st,
            a,
            Some("変更後のサービス状態を選択してください。".into()),
            Some(&sel),
        )
        .await),
    }
}

fn states_of(st: &AppState, u: &User) -> String {
    u.counters
        .service_states(st.svc.now())
        .iter()
        .map(|s| s.label())
        .collect::<Vec<_>>()
        .join("、")
}

fn line(st: &AppState, u: &User) -> UserLine {
    UserLine {
        id: u.id.0,
        login_id: u.login_id.to_string(),
        name: u.name.clone(),
        role: u.role.label(),
        states: states_of(st, u),
    }
}

async fn list(
    st: &AppState,
    a: &Authed,
    error: Option<String>,
    sel: Option<&Selection>,
) -> Response {
    let mgr = match crate::pages::manager(st, a) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let rows = match mgr.service_state_list().await {
        Ok(r) => r,
        Err(StopError::Refused(m)) => return user_error(st, a, StatusCode::FORBIDDEN, &m),
        Err(StopError::Internal(e)) => return system_error(e),
    };
    // A refused selection is shown again with its message, as 400 like
    // BRSK018's refusals.
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut res = render(&Brsk021 {
        l: Layout::user(st, a, "利用者管理 利用者停止・解除", "BRSK021", ADMIN),
        error,
        notice: None,
        state: sel.map(|s| s.state.clone()).unwrap_or_default(),
        rows: rows
            .into_iter()
            .map(|r| ListRow {
                id: r.user_id.0,
                checked: sel.is_some_and(|s| s.users.contains(&r.user_id)),
                login_id: r.login_id.to_string(),
                name: r.name,
                role: r.role.label(),
                states: r
                    .states
                    .iter()
                    .map(|s| s.label())
                    .collect::<Vec<_>>()
                    .join("、"),
                changeable: r.changeable,
            })
            .collect(),
    });
    *res.status_mut() = status;
    res
}

pub(crate) async fn brsk021(State(st): State<AppState>, a: Authed) -> Response {
    list(&st, &a, None, None).await
}

/// 「次へ >」: checks the selection, then the confirmation screen.
pub(crate) async fn brsk021_submit(
    State(st): State<AppState>,
    a: Authed,
    body: axum::body::Bytes,
) -> Response {
    let (sel, change) = match selection_and_change(&st, &a, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mgr = match crate::pages::manager(&st, &a) {
        Ok(m) => m,
        Err(r) => return r,
    };
    match mgr.service_change_targets(&sel.users, change).await {
        Ok(users) => confirm(&st, &a, &users, change, None),
        Err(StopError::Refused(m)) => list(&st, &a, Some(m), Some(&sel)).await,
        Err(StopError::Internal(e)) => system_error(e),
    }
}

fn confirm(
    st: &AppState,
    a: &Authed,
    users: &[User],
    change: ServiceChange,
    error: Option<String>,
) -> Response {
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut res = render(&Brsk022 {
        l: Layout::user(st, a, "利用者管理 利用者停止・解除確認", "BRSK022", ADMIN),
        error,
        notice: None,
        rows: users.iter().map(|u| line(st, u)).collect(),
        state: change.code(),
        state_label: change.label(),
    });
    *res.status_mut() = status;
    res
}

/// 「実行 >」: every selected user changes, or none.
pub(crate) async fn brsk022_submit(
    State(st): State<AppState>,
    a: Authed,
    body: axum::body::Bytes,
) -> Response {
    let (sel, change) = match selection_and_change(&st, &a, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let confirm_password = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "confirm_password")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let mgr = match st
        .svc
        .manager_recorded(&a.s.actor, Operation::ServiceState, &a.client)
        .await
    {
        Ok(Ok(m)) => m,
        Ok(Err(r)) => return user_error(&st, &a, StatusCode::FORBIDDEN, r.message_ja()),
        Err(e) => return system_error(e),
    };
    match mgr
        .change_service_state(&sel.users, change, &confirm_password, &a.client)
        .await
    {
        Ok(changed) => render(&Brsk023 {
            l: Layout::user(&st, &a, "利用者管理 利用者停止・解除結果", "BRSK023", ADMIN),
            rows: changed.iter().map(|u| line(&st, u)).collect(),
        }),
        Err(StopError::Refused(m)) => {
            // Back to the confirmation with the message when the selection
            // still holds; otherwise to the list.
            match mgr.service_change_targets(&sel.users, change).await {
                Ok(users) => confirm(&st, &a, &users, change, Some(m)),
                Err(_) => list(&st, &a, Some(m), Some(&sel)).await,
            }
        }
        Err(StopError::Internal(e)) => system_error(e),
    }
}
