//! 企業管理: BSSK002 (company information) → BSSK003 (the マスター edits the
//! contact, 確認パスワード, 実行) → BSSK004 (result).

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use shomei_service::{CompanyContact, CompanyError, CompanyOverview};

use crate::AppState;
use crate::pages::{Authed, Fields, Layout, render, system_error};

const ADMIN: &str = "管理業務";

#[derive(Template)]
#[template(path = "bssk002.html")]
struct Bssk002 {
    l: Layout,
    error: Option<String>,
    notice: Option<String>,
    name: String,
    service: &'static str,
    users: usize,
    contact_name: String,
    contact_phone: String,
    contact_email: String,
    master: bool,
}

#[derive(Template)]
#[template(path = "bssk003.html")]
struct Bssk003 {
    l: Layout,
    error: Option<String>,
    notice: Option<String>,
    contact_name: String,
    contact_phone: String,
    contact_email: String,
}

#[derive(Template)]
#[template(path = "bssk004.html")]
struct Bssk004 {
    l: Layout,
}

fn or_dash(s: String) -> String {
    if s.is_empty() {
        "（未登録）".into()
    } else {
        s
    }
}

pub(crate) async fn bssk002(State(st): State<AppState>, a: Authed) -> Response {
    let CompanyOverview { contact, users } = match st.svc.company_overview(a.s.company.id).await {
        Ok(o) => o,
        Err(e) => return system_error(e),
    };
    render(&Bssk002 {
        l: Layout::user(&st, &a, "管理業務 企業管理", "BSSK002", ADMIN),
        error: None,
        notice: None,
        name: a.s.company.name.clone(),
        service: a.s.company.service.label(),
        users,
        contact_name: or_dash(contact.name),
        contact_phone: or_dash(contact.phone),
        contact_email: or_dash(contact.email),
        master: st.svc.master(&a.s.actor).is_ok(),
    })
}

fn edit_page(st: &AppState, a: &Authed, c: CompanyContact, error: Option<String>) -> Response {
    render(&Bssk003 {
        l: Layout::user(st, a, "管理業務 企業情報変更", "BSSK003", ADMIN),
        error,
        notice: None,
        contact_name: c.name,
        contact_phone: c.phone,
        contact_email: c.email,
    })
}

pub(crate) async fn bssk003(State(st): State<AppState>, a: Authed) -> Response {
    let m = match crate::pages::master(&st, &a) {
        Ok(m) => m,
        Err(r) => return r,
    };
    match m.company_contact().await {
        Ok(c) => edit_page(&st, &a, c, None),
        Err(e) => system_error(e),
    }
}

pub(crate) async fn bssk003_submit(State(st): State<AppState>, a: Authed, f: Fields) -> Response {
    let m = match crate::pages::master(&st, &a) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let contact = CompanyContact {
        name: f.get("contact_name").to_owned(),
        phone: f.get("contact_phone").to_owned(),
        email: f.get("contact_email").to_owned(),
    };
    match m
        .update_company_contact(&contact, f.get("confirm_password"), &a.client)
        .await
    {
        Ok(()) => render(&Bssk004 {
            l: Layout::user(&st, &a, "管理業務 企業情報変更結果", "BSSK004", ADMIN),
        }),
        Err(CompanyError::Refused(m)) => edit_page(&st, &a, contact, Some(m)),
        Err(CompanyError::Internal(e)) => system_error(e),
    }
}
