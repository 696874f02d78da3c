//! The help desk's screens: OPR010 利用者検索, OPR011 利用者詳細 (with
//! 停止の解除 and 電話受付による証明書失効), and their result screens OPR012
//! and OPR013. Each handler reads the request, calls one task of the
//! service's help desk ([`shomei_service::HelpDeskTasks`]) and renders one
//! template.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use shomei_core::RevocationReason;
use shomei_core::format::{grouped, jp_datetime};
use shomei_service::{
    ActionError, HelpDeskTasks, PhoneRevocationDone, SearchPageKey, UserDetail, UserSearchPage,
};
use time::{OffsetDateTime, PrimitiveDateTime};

use super::{Console, ConsoleLayout, console_system_error, failed, in_layout_error};
use crate::AppState;
use crate::pages::render;

/// The help desk's tasks for this request's operator, or the screen that
/// says why not.
async fn tasks<'a>(
    st: &'a AppState,
    c: &'a Console,
    title: &'static str,
    id: &'static str,
) -> Result<HelpDeskTasks<'a>, Response> {
    st.svc
        .helpdesk(&c.op.0, &c.client)
        .await
        .map_err(|e| failed(st, c, title, id, e))
}

#[derive(Template)]
#[template(path = "console/opr010.html")]
struct Opr010 {
    l: ConsoleLayout,
    q: String,
    q_url: String,
    found: Option<UserSearchPage>,
    /// The count's cap as the screen writes it (「1,000」件以上).
    count_max: String,
    error: Option<String>,
    notice: Option<String>,
}

/// OPR010's URL: the text, and which page (the users after or before a
/// login ID, and the page's number as the links carried it).
#[derive(serde::Deserialize)]
pub(crate) struct SearchQuery {
    q: Option<String>,
    after: Option<String>,
    before: Option<String>,
    page: Option<String>,
}

/// OPR010 利用者検索: across companies, prefix match, paged.
pub(crate) async fn opr010(
    State(st): State<AppState>,
    c: Console,
    Query(q): Query<SearchQuery>,
) -> Response {
    let (title, id) = ("利用者検索", "OPR010");
    let hd = match tasks(&st, &c, title, id).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let text = q.q.clone().unwrap_or_default();
    let (found, error) = match &q.q {
        None => (None, None),
        Some(text) => match hd
            .search(
                text,
                &SearchPageKey {
                    after: q.after.as_deref(),
                    before: q.before.as_deref(),
                    page: q.page.as_deref(),
                },
            )
            .await
        {
            Ok(p) => (Some(p), None),
            Err(ActionError::Refused(m)) => (None, Some(m)),
            Err(ActionError::Internal(e)) => return console_system_error(&st, &e),
        },
    };
    render(&Opr010 {
        q_url: form_urlencoded::byte_serialize(text.as_bytes()).collect(),
        q: text,
        found,
        count_max: grouped(st.svc.settings().helpdesk_search_count_max),
        error,
        notice: None,
        l: ConsoleLayout::new(&st, &c, title, id),
    })
}

#[derive(Template)]
#[template(path = "console/opr011.html")]
struct Opr011 {
    l: ConsoleLayout,
    d: UserDetail,
    /// serial, from, until, revoked at, state.
    certs: Vec<(String, String, String, String, &'static str)>,
    /// at, actor, operation, target, result, detail.
    history: Vec<(String, String, String, String, String, String)>,
    reasons: Vec<(u8, &'static str)>,
    error: Option<String>,
    notice: Option<String>,
}

fn detail_page(st: &AppState, c: &Console, d: UserDetail, error: Option<String>) -> Response {
    let offset = st.svc.settings().display_offset();
    let certs = d
        .certificates
        .iter()
        .map(|x| {
            (
                x.serial.to_string(),
                jp_datetime(x.not_before, offset),
                jp_datetime(x.not_after, offset),
                x.revoked_at
                    .map(|t| jp_datetime(t, offset))
                    .unwrap_or_else(|| "-".into()),
                x.state.label(),
            )
        })
        .collect();
    let history = d
        .history
        .iter()
        .map(|h| {
            (
                jp_datetime(h.at, offset),
                h.actor_login_id.clone(),
                h.operation.clone(),
                h.target_login_id.clone(),
                h.result.clone(),
                h.detail.clone(),
            )
        })
        .collect();
    let status = if error.is_some() {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::OK
    };
    let mut r = render(&Opr011 {
        l: ConsoleLayout::new(st, c, "利用者詳細", "OPR011"),
        d,
        certs,
        history,
        reasons: RevocationReason::ALL
            .iter()
            .map(|r| (r.code(), r.label()))
            .collect(),
        error,
        notice: None,
    });
    *r.status_mut() = status;
    r
}

#[derive(serde::Deserialize)]
pub(crate) struct UserQuery {
    #[serde(default)]
    id: String,
}

/// OPR011 利用者詳細: state, certificates, 操作履歴, and the two changes.
pub(crate) async fn opr011(
    State(st): State<AppState>,
    c: Console,
    Query(q): Query<UserQuery>,
) -> Response {
    let (title, id) = ("利用者詳細", "OPR011");
    let hd = match tasks(&st, &c, title, id).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    match hd.user(&q.id).await {
        Ok(d) => detail_page(&st, &c, d, None),
        Err(e) => failed(&st, &c, title, id, e),
    }
}

/// A change refused: OPR011 again with the message, or the refusal alone
/// when the user is not there to show.
async fn refused_on_detail(
    st: &AppState,
    c: &Console,
    hd: &HelpDeskTasks<'_>,
    login_id: &str,
    e: ActionError,
) -> Response {
    match e {
        ActionError::Refused(m) => match hd.user(login_id).await {
            Ok(d) => detail_page(st, c, d, Some(m)),
            Err(_) => in_layout_error(st, c, "利用者詳細", "OPR011", StatusCode::FORBIDDEN, &m),
        },
        ActionError::Internal(e) => console_system_error(st, &e),
    }
}

#[derive(Template)]
#[template(path = "console/result.html")]
pub(crate) struct ResultPage {
    pub l: ConsoleLayout,
    pub done: &'static str,
    pub rows: Vec<(&'static str, String)>,
    /// Rows shown once and never again (one-time passwords), set apart.
    pub secrets: Vec<(&'static str, String)>,
    pub links: Vec<(String, &'static str)>,
}

impl ResultPage {
    /// The page with rows shown only this once.
    pub(crate) fn with_secrets(self, secrets: Vec<(&'static str, String)>) -> Self {
        Self { secrets, ..self }
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct LiftForm {
    #[serde(default)]
    id: String,
    #[serde(default)]
    password: String,
}

/// 停止の解除 → OPR012 (result).
pub(crate) async fn lift(
    State(st): State<AppState>,
    c: Console,
    Form(f): Form<LiftForm>,
) -> Response {
    let hd = match tasks(&st, &c, "利用者詳細", "OPR011").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    match hd.lift_stop(&f.id, &f.password).await {
        Ok(done) => render(&ResultPage {
            l: ConsoleLayout::new(&st, &c, "停止解除完了", "OPR012"),
            done: "一時停止・利用停止を解除しました。",
            rows: vec![
                ("ログインID", done.login_id.to_string()),
                ("利用者名", done.name),
                ("企業名", done.company),
                ("解除前の利用状態", done.before.join("、")),
                ("解除後の利用状態", "利用可能".into()),
            ],
            secrets: vec![],
            links: vec![
                (format!("/opr011?id={}", done.login_id), "< 利用者詳細へ"),
                ("/opr010".into(), "< 利用者検索へ"),
            ],
        }),
        Err(e) => refused_on_detail(&st, &c, &hd, &f.id, e).await,
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct RevokeForm {
    #[serde(default)]
    id: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    caller: String,
    #[serde(default)]
    invalidity: String,
    #[serde(default)]
    password: String,
}

/// `YYYY-MM-DDTHH:MM` (a datetime-local field) at the display offset.
fn parse_local(s: &str, offset: time::UtcOffset) -> Option<OffsetDateTime> {
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let f2 = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let t = PrimitiveDateTime::parse(s, f)
        .or_else(|_| PrimitiveDateTime::parse(s, f2))
        .ok()?;
    Some(t.assume_offset(offset))
}

const BAD_REASON: &str = "失効理由を選択してください。";
const BAD_INVALIDITY: &str = "無効日時は「年-月-日 時:分」の形で入力してください。";

/// 電話受付による証明書失効 → OPR013 (result).
pub(crate) async fn revoke(
    State(st): State<AppState>,
    c: Console,
    Form(f): Form<RevokeForm>,
) -> Response {
    let hd = match tasks(&st, &c, "利用者詳細", "OPR011").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let offset = st.svc.settings().display_offset();
    let Some(reason) = f
        .reason
        .parse::<u8>()
        .ok()
        .and_then(RevocationReason::from_code)
    else {
        return refused_on_detail(&st, &c, &hd, &f.id, ActionError::Refused(BAD_REASON.into()))
            .await;
    };
    let invalidity = match f.invalidity.trim() {
        "" => None,
        s => match parse_local(s, offset) {
            Some(t) => Some(t),
            None => {
                return refused_on_detail(
                    &st,
                    &c,
                    &hd,
                    &f.id,
                    ActionError::Refused(BAD_INVALIDITY.into()),
                )
                .await;
            }
        },
    };
    match hd
        .revoke(&f.id, reason, invalidity, &f.caller, &f.password)
        .await
    {
        Ok(PhoneRevocationDone::Submitted(s)) => super::approvals::submitted_page(&st, &c, s),
        Ok(PhoneRevocationDone::Revoked(done)) => render(&ResultPage {
            l: ConsoleLayout::new(&st, &c, "証明書失効完了", "OPR013"),
            done: "電子証明書を失効しました。この証明書によるログインは、ただちに受け付けられなくなります。",
            rows: vec![
                ("ログインID", done.login_id.to_string()),
                ("企業名", done.company),
                ("シリアル番号", done.serial.to_string()),
                ("失効理由", reason.label().into()),
                ("依頼者", f.caller.trim().to_owned()),
                (
                    "無効日時",
                    invalidity
                        .map(|t| jp_datetime(t, offset))
                        .unwrap_or_else(|| "-".into()),
                ),
                ("失効日時", jp_datetime(done.at, offset)),
            ],
            secrets: vec![],
            links: vec![
                (format!("/opr011?id={}", done.login_id), "< 利用者詳細へ"),
                ("/opr010".into(), "< 利用者検索へ"),
            ],
        }),
        Err(e) => refused_on_detail(&st, &c, &hd, &f.id, e).await,
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct ResetForm {
    #[serde(default)]
    id: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    password: String,
}

#[derive(Template)]
#[template(path = "console/opr014.html")]
struct Opr014 {
    l: ConsoleLayout,
    done: shomei_service::PasswordResetDone,
}

const BAD_KIND: &str = "初期化するパスワードを選択してください。";

/// パスワード初期化 → OPR014 (result, the initial password shown once).
pub(crate) async fn reset(
    State(st): State<AppState>,
    c: Console,
    Form(f): Form<ResetForm>,
) -> Response {
    let hd = match tasks(&st, &c, "利用者詳細", "OPR011").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let kind = match f.kind.as_str() {
        "login" => shomei_service::PasswordKind::Login,
        "confirm" => shomei_service::PasswordKind::Confirm,
        _ => {
            return refused_on_detail(&st, &c, &hd, &f.id, ActionError::Refused(BAD_KIND.into()))
                .await;
        }
    };
    match hd.reset_password(&f.id, kind, &f.password).await {
        Ok(shomei_service::PasswordReset::Done(done)) => render(&Opr014 {
            l: ConsoleLayout::new(&st, &c, "パスワード初期化完了", "OPR014"),
            done,
        }),
        // A マスター's: submitted, the password made on its approval.
        Ok(shomei_service::PasswordReset::Submitted(s)) => {
            super::approvals::submitted_page(&st, &c, s)
        }
        Err(e) => refused_on_detail(&st, &c, &hd, &f.id, e).await,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_local;

    #[test]
    fn a_datetime_local_field_is_read_at_the_display_offset() {
        let jst = time::UtcOffset::from_hms(9, 0, 0).unwrap();
        let t = parse_local("2026-12-02T09:30", jst).unwrap();
        assert_eq!(t, time::macros::datetime!(2026-12-02 00:30 UTC));
        assert!(parse_local("2026-12-02T09:30:15", jst).is_some());
        assert_eq!(parse_local("2026/12/02 09:30", jst), None);
    }
}
