//! 利用者情報の管理: BRSK011 (list) → BRSK012 (登録) / BRSK014 (変更) /
//! BRSK015 (削除確認) → BRSK013 (result). The server checks authority
//! again for every request and every target.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use shomei_core::UserId;
use shomei_core::authority::{self, Target};
use shomei_service::{UserAdminError, UserForm};

use crate::AppState;
use crate::pages::{Authed, Fields, Layout, manager, render, system_error, user_error};

const ADMIN: &str = "管理業務";

struct Row {
    id: i64,
    login_id: String,
    name: String,
    role: &'static str,
    email: String,
    state: &'static str,
    manageable: bool,
}

#[derive(Template)]
#[template(path = "brsk011.html")]
struct Brsk011 {
    l: Layout,
    error: Option<String>,
    notice: Option<String>,
    rows: Vec<Row>,
}

#[derive(Template)]
#[template(path = "brsk012.html")]
struct Brsk012 {
    l: Layout,
    error: Option<String>,
    notice: Option<String>,
    editing: bool,
    action: &'static str,
    user_id: i64,
    login_id: String,
    name: String,
    role: String,
    email: String,
    rules: Vec<String>,
    id_min: usize,
    id_max: usize,
}

#[derive(Template)]
#[template(path = "brsk015.html")]
struct Brsk015 {
    l: Layout,
    error: Option<String>,
    notice: Option<String>,
    user_id: i64,
    login_id: String,
    name: String,
    role: &'static str,
}

#[derive(Template)]
#[template(path = "brsk013.html")]
struct Brsk013 {
    l: Layout,
    message: String,
}

fn refused(st: &AppState, a: &Authed, e: UserAdminError) -> Response {
    match e {
        UserAdminError::Refused(m) => user_error(st, a, StatusCode::FORBIDDEN, &m),
        UserAdminError::Internal(e) => system_error(e),
    }
}

pub(crate) async fn brsk011(State(st): State<AppState>, a: Authed) -> Response {
    let mgr = match manager(&st, &a) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let users = match mgr.user_admin_list().await {
        Ok(u) => u,
        Err(e) => return refused(&st, &a, e),
    };
    let actor = mgr.actor();
    render(&Brsk011 {
        l: Layout::user(&st, &a, "利用者管理 利用者一覧", "BRSK011", ADMIN),
        error: None,
        notice: None,
        rows: users
            .into_iter()
            .map(|(u, state)| Row {
                id: u.id.0,
                manageable: authority::offers_to_administer(
                    actor,
                    &Target {
                        user_id: u.id,
                        company_id: u.company_id,
                        role: u.role,
                    },
                ),
                login_id: u.login_id.to_string(),
                name: u.name,
                role: u.role.label(),
                email: u.email,
                state: state.label(),
            })
            .collect(),
    })
}

fn form_of(f: &Fields) -> UserForm {
    UserForm {
        login_id: f.get("login_id").to_owned(),
        name: f.get("name").to_owned(),
        role: f.get("role").to_owned(),
        email: f.get("email").to_owned(),
        login_password: f.get("login_password").to_owned(),
        confirm_password: f.get("confirm_password_new").to_owned(),
    }
}

fn form_page(
    st: &AppState,
    a: &Authed,
    user: Option<i64>,
    f: &UserForm,
    error: Option<String>,
) -> Response {
    let editing = user.is_some();
    render(&Brsk012 {
        l: if editing {
            Layout::user(st, a, "利用者管理 利用者変更", "BRSK014", ADMIN)
        } else {
            Layout::user(st, a, "利用者管理 利用者登録", "BRSK012", ADMIN)
        },
        error,
        notice: None,
        editing,
        action: if editing { "/brsk014" } else { "/brsk012" },
        user_id: user.unwrap_or(0),
        login_id: f.login_id.clone(),
        name: f.name.clone(),
        role: if f.role.is_empty() {
            "general".into()
        } else {
            f.role.clone()
        },
        email: f.email.clone(),
        rules: st.svc.settings().password_policy().rules_ja(),
        id_min: st.svc.settings().login_id_min_length,
        id_max: st.svc.settings().login_id_max_length,
    })
}

pub(crate) async fn brsk012(State(st): State<AppState>, a: Authed) -> Response {
    if let Err(r) = manager(&st, &a) {
        return r;
    }
    form_page(&st, &a, None, &UserForm::default(), None)
}

fn done(st: &AppState, a: &Authed, message: String) -> Response {
    render(&Brsk013 {
        l: Layout::user(st, a, "利用者管理 利用者情報管理結果", "BRSK013", ADMIN),
        message,
    })
}

pub(crate) async fn brsk012_submit(State(st): State<AppState>, a: Authed, f: Fields) -> Response {
    let mgr = match manager(&st, &a) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let form = form_of(&f);
    match mgr
        .create_user(&form, f.get("confirm_password"), &a.client)
        .await
    {
        Ok(id) => done(
            &st,
            &a,
            format!("利用者（{id}）を登録しました。初回ログイン時にパスワードの変更が必要です。"),
        ),
        Err(UserAdminError::Refused(m)) => form_page(&st, &a, None, &form, Some(m)),
        Err(e) => refused(&st, &a, e),
    }
}

/// The user named by `?user=`, if the actor may administer them; else the
/// error page (400 without a user, 403 for one the actor may not touch).
async fn administered(
    st: &AppState,
    a: &Authed,
    q: &HashMap<String, String>,
) -> Result<shomei_service::User, Response> {
    let Some(target) = q.get("user").and_then(|u| u.parse().ok()).map(UserId) else {
        return Err(user_error(
            st,
            a,
            StatusCode::BAD_REQUEST,
            "利用者を選択してください。",
        ));
    };
    manager(st, a)?
        .user_to_administer(target)
        .await
        .map_err(|e| refused(st, a, e))
}

pub(crate) async fn brsk014(
    State(st): State<AppState>,
    a: Authed,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match administered(&st, &a, &q).await {
        Ok(u) => form_page(
            &st,
            &a,
            Some(u.id.0),
            &UserForm {
                login_id: u.login_id.to_string(),
                name: u.name,
                role: u.role.code().into(),
                email: u.email,
                ..Default::default()
            },
            None,
        ),
        Err(r) => r,
    }
}

pub(crate) async fn brsk014_submit(State(st): State<AppState>, a: Authed, f: Fields) -> Response {
    let Ok(target) = f.get("user").parse::<i64>().map(UserId) else {
        return user_error(
            &st,
            &a,
            StatusCode::BAD_REQUEST,
            "利用者を選択してください。",
        );
    };
    let mgr = match manager(&st, &a) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let mut form = form_of(&f);
    match mgr
        .update_user(target, &form, f.get("confirm_password"), &a.client)
        .await
    {
        Ok(id) => done(&st, &a, format!("利用者（{id}）の情報を変更しました。")),
        Err(UserAdminError::Refused(m)) => {
            // Show the login ID again (it is not a form field when editing).
            if let Ok(u) = mgr.user_to_administer(target).await {
                form.login_id = u.login_id.to_string();
                form_page(&st, &a, Some(target.0), &form, Some(m))
            } else {
                user_error(&st, &a, StatusCode::FORBIDDEN, &m)
            }
        }
        Err(e) => refused(&st, &a, e),
    }
}

fn delete_page(
    st: &AppState,
    a: &Authed,
    u: &shomei_service::User,
    error: Option<String>,
) -> Response {
    render(&Brsk015 {
        l: Layout::user(st, a, "利用者管理 利用者削除確認", "BRSK015", ADMIN),
        error,
        notice: None,
        user_id: u.id.0,
        login_id: u.login_id.to_string(),
        name: u.name.clone(),
        role: u.role.label(),
    })
}

pub(crate) async fn brsk015(
    State(st): State<AppState>,
    a: Authed,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match administered(&st, &a, &q).await {
        Ok(u) => delete_page(&st, &a, &u, None),
        Err(r) => r,
    }
}

pub(crate) async fn brsk015_submit(State(st): State<AppState>, a: Authed, f: Fields) -> Response {
    let Ok(target) = f.get("user").parse::<i64>().map(UserId) else {
        return user_error(
            &st,
            &a,
            StatusCode::BAD_REQUEST,
            "利用者を選択してください。",
        );
    };
    let mgr = match manager(&st, &a) {
        Ok(m) => m,
        Err(r) => return r,
    };
    match mgr
        .delete_user(target, f.get("confirm_password"), &a.client)
        .await
    {
        Ok(id) => done(
            &st,
            &a,
            format!("利用者（{id}）を削除しました。電子証明書は失効しました。"),
        ),
        Err(UserAdminError::Refused(m)) => match mgr.user_to_administer(target).await {
            Ok(u) => delete_page(&st, &a, &u, Some(m)),
            Err(_) => user_error(&st, &a, StatusCode::FORBIDDEN, &m),
        },
        Err(e) => refused(&st, &a, e),
    }
}
