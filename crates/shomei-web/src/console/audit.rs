//! The 監査's screens: OPR030 操作履歴照会 (every company's and the
//! operators' rows, searched and paged), its CSV download (OPR031, UTF-8 or
//! Shift_JIS), and OPR032 操作履歴検証 with its result OPR033. Each handler
//! reads the request, calls one task of the service's 監査
//! ([`shomei_service::AuditorTasks`]) and renders one template.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use shomei_core::Operation;
use shomei_core::format::jp_datetime;
use shomei_service::{AuditorTasks, ChainCheck, CsvEncoding, ReviewForm, ReviewPage};

use super::{Console, ConsoleLayout, failed, in_layout_error};
use crate::AppState;
use crate::pages::render;

/// The 監査's tasks for this request's operator, or the screen that says
/// why not.
async fn tasks<'a>(
    st: &'a AppState,
    c: &'a Console,
    title: &'static str,
    id: &'static str,
) -> Result<AuditorTasks<'a>, Response> {
    st.svc
        .auditor(&c.op.0, &c.client)
        .await
        .map_err(|e| failed(st, c, title, id, e))
}

/// The conditions as the query string gives them.
#[derive(serde::Deserialize, Default)]
pub(crate) struct ReviewParams {
    #[serde(default)]
    scope: String,
    #[serde(default)]
    company_id: String,
    #[serde(default)]
    op: String,
    #[serde(default)]
    result: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    actor: String,
    page: Option<i64>,
    enc: Option<String>,
}

impl ReviewParams {
    fn form(&self) -> ReviewForm {
        ReviewForm {
            scope: self.scope.clone(),
            company_id: self.company_id.clone(),
            operation: self.op.clone(),
            result: self.result.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            actor: self.actor.clone(),
        }
    }

    /// The conditions as a query string, for the pager and the CSV links.
    fn query(&self) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("scope", &self.scope),
            ("company_id", &self.company_id),
            ("op", &self.op),
            ("result", &self.result),
            ("from", &self.from),
            ("to", &self.to),
            ("actor", &self.actor),
        ] {
            s.append_pair(k, v.trim());
        }
        s.finish()
    }

    /// The conditions in words, for the download's 操作履歴 row.
    fn describe(&self) -> String {
        let mut parts = vec![match self.scope.trim() {
            "bank" => "銀行".to_owned(),
            "company" => format!("企業ID {}", self.company_id.trim()),
            _ => "全企業".to_owned(),
        }];
        for (label, v) in [
            ("操作", &self.op),
            ("結果", &self.result),
            ("開始日", &self.from),
            ("終了日", &self.to),
            ("操作者", &self.actor),
        ] {
            if !v.trim().is_empty() {
                parts.push(format!("{label} {}", v.trim()));
            }
        }
        parts.join("、")
    }
}

struct Row {
    at: String,
    company: String,
    actor: String,
    operation: String,
    target: String,
    result: String,
    detail: String,
    client: String,
}

#[derive(Template)]
#[template(path = "console/opr030.html")]
struct Opr030 {
    l: ConsoleLayout,
    p: ReviewParams,
    operations: Vec<&'static str>,
    found: Option<ReviewPage>,
    rows: Vec<Row>,
    first: i64,
    last: i64,
    query: String,
    error: Option<String>,
    notice: Option<String>,
}

/// OPR030 操作履歴照会: every company's and the operators' 操作履歴.
pub(crate) async fn opr030(
    State(st): State<AppState>,
    c: Console,
    Query(p): Query<ReviewParams>,
) -> Response {
    let (title, id) = ("操作履歴照会", "OPR030");
    let au = match tasks(&st, &c, title, id).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let (found, error) = match p.form().read() {
        Ok(q) => match au.history(&q, p.page.unwrap_or(1)).await {
            Ok(page) => (Some(page), None),
            Err(e) => return failed(&st, &c, title, id, e),
        },
        Err(m) => (None, Some(m.to_owned())),
    };
    let offset = st.svc.settings().display_offset();
    let rows = found
        .iter()
        .flat_map(|f| f.rows.iter())
        .map(|r| Row {
            at: jp_datetime(r.row.at, offset),
            company: match (r.row.company_id, &r.company_name) {
                (Some(id), Some(name)) => format!("{name}（{}）", id.0),
                (Some(id), None) => format!("企業ID {}", id.0),
                (None, _) => "銀行".to_owned(),
            },
            actor: r.row.actor_login_id.clone(),
            operation: r.row.operation.clone(),
            target: r.row.target_login_id.clone(),
            result: r.row.result.clone(),
            detail: r.row.detail.clone(),
            client: r.row.client_addr.clone(),
        })
        .collect::<Vec<_>>();
    let (first, last) = match &found {
        Some(f) if f.total > 0 => {
            let first = (f.page - 1) * shomei_service::REVIEW_PAGE_SIZE + 1;
            (first, first + rows.len() as i64 - 1)
        }
        _ => (0, 0),
    };
    let notice = found
        .as_ref()
        .is_some_and(|f| f.total == 0)
        .then(|| "条件に該当する操作履歴はありません。".to_owned());
    render(&Opr030 {
        l: ConsoleLayout::new(&st, &c, title, id),
        operations: Operation::ALL.iter().map(|o| o.label()).collect(),
        query: p.query(),
        p,
        found,
        rows,
        first,
        last,
        error,
        notice,
    })
}

/// OPR031: the rows of OPR030's conditions as CSV (`enc=sjis`: Shift_JIS).
pub(crate) async fn opr031(
    State(st): State<AppState>,
    c: Console,
    Query(p): Query<ReviewParams>,
) -> Response {
    let (title, id) = ("操作履歴照会", "OPR030");
    let au = match tasks(&st, &c, title, id).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let q = match p.form().read() {
        Ok(q) => q,
        Err(m) => return in_layout_error(&st, &c, title, id, StatusCode::BAD_REQUEST, m),
    };
    let enc = if p.enc.as_deref() == Some("sjis") {
        CsvEncoding::ShiftJis
    } else {
        CsvEncoding::Utf8
    };
    match au.csv(&q, &p.describe(), enc).await {
        Ok(d) => (
            [
                (
                    header::CONTENT_TYPE,
                    format!("text/csv; charset={}", d.charset),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{}\"", d.file_name),
                ),
                (header::CACHE_CONTROL, "no-store".to_owned()),
            ],
            d.body,
        )
            .into_response(),
        Err(e) => failed(&st, &c, title, id, e),
    }
}

#[derive(Template)]
#[template(path = "console/opr032.html")]
struct Opr032 {
    l: ConsoleLayout,
    error: Option<String>,
    notice: Option<String>,
}

/// OPR032 操作履歴検証: what the check does, and its button.
pub(crate) async fn opr032(State(st): State<AppState>, c: Console) -> Response {
    let (title, id) = ("操作履歴検証", "OPR032");
    if let Err(r) = tasks(&st, &c, title, id).await {
        return r;
    }
    render(&Opr032 {
        l: ConsoleLayout::new(&st, &c, title, id),
        error: None,
        notice: None,
    })
}

#[derive(Template)]
#[template(path = "console/opr033.html")]
struct Opr033 {
    l: ConsoleLayout,
    check: ChainCheck,
    at: String,
}

/// 「検証」 → OPR033: every chain walked, the result.
pub(crate) async fn verify(State(st): State<AppState>, c: Console) -> Response {
    let (title, id) = ("操作履歴検証", "OPR032");
    let au = match tasks(&st, &c, title, id).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    match au.verify().await {
        Ok(check) => render(&Opr033 {
            l: ConsoleLayout::new(&st, &c, "操作履歴検証結果", "OPR033"),
            at: jp_datetime(st.svc.now(), st.svc.settings().display_offset()),
            check,
        }),
        Err(e) => failed(&st, &c, title, id, e),
    }
}
