//! 操作履歴照会 (BSSK011): the filter form, the paged list and the CSV
//! download (UTF-8 with BOM so that Excel opens it; Shift_JIS on request).

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use shomei_core::format::jp_datetime;
use shomei_service::HistoryQuery;
use time::Date;

use crate::AppState;
use crate::pages::{Authed, Layout, render, system_error, user_error};

struct Row {
    at: String,
    actor: String,
    operation: String,
    target: String,
    result: String,
    detail: String,
    client: String,
}

#[derive(Template)]
#[template(path = "bssk011.html")]
struct Bssk011 {
    l: Layout,
    error: Option<String>,
    notice: Option<String>,
    from: String,
    to: String,
    actor: String,
    operation: String,
    result: String,
    operations: Vec<String>,
    own_only: bool,
    rows: Vec<Row>,
    total: i64,
    first: i64,
    last: i64,
    page: i64,
    pages: i64,
    /// The conditions as a query string, for the pager and the CSV links.
    query: String,
}

const DATE: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

/// The conditions from the query string, or the message for what is wrong.
fn conditions(q: &HashMap<String, String>) -> Result<HistoryQuery, String> {
    let text = |k: &str| {
        q.get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let date = |k: &str, label: &str| -> Result<Option<Date>, String> {
        match text(k) {
            None => Ok(None),
            Some(v) => Date::parse(&v, DATE)
                .map(Some)
                .map_err(|_| format!("{label}は「2026-11-25」の形式で入力してください。")),
        }
    };
    let from = date("from", "期間（開始日）")?;
    let to = date("to", "期間（終了日）")?;
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err("期間の開始日は終了日以前の日付を入力してください。".into());
    }
    let actor = text("actor");
    if let Some(a) = &actor
        && (a.chars().count() > 12 || !a.chars().all(|c| c.is_ascii_alphanumeric()))
    {
        return Err("操作者のログインIDは12文字以内の半角英数字で入力してください。".into());
    }
    let result = text("result");
    if result
        .as_deref()
        .is_some_and(|r| r != "成功" && r != "失敗")
    {
        return Err("結果は「成功」または「失敗」を選択してください。".into());
    }
    let operation = text("op");
    if operation.as_deref().is_some_and(|o| o.chars().count() > 40) {
        return Err("操作の指定が正しくありません。".into());
    }
    Ok(HistoryQuery {
        from,
        to,
        actor,
        operation,
        result,
        page: text("page").and_then(|p| p.parse().ok()).unwrap_or(1),
    })
}

fn query_string(q: &HistoryQuery) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    let fmt = |d: Option<Date>| d.and_then(|d| d.format(DATE).ok()).unwrap_or_default();
    s.append_pair("from", &fmt(q.from));
    s.append_pair("to", &fmt(q.to));
    s.append_pair("actor", q.actor.as_deref().unwrap_or(""));
    s.append_pair("op", q.operation.as_deref().unwrap_or(""));
    s.append_pair("result", q.result.as_deref().unwrap_or(""));
    s.finish()
}

pub(crate) async fn bssk011(
    State(st): State<AppState>,
    a: Authed,
    Query(raw): Query<HashMap<String, String>>,
) -> Response {
    let (q, error) = match conditions(&raw) {
        Ok(q) => (q, None),
        Err(e) => (HistoryQuery::default(), Some(e)),
    };
    let mut q = q;
    if shomei_core::authority::sees_own_history_only(&a.s.actor) {
        // 一般: their own rows only, whatever the form says.
        q.actor = None;
    }
    let page = match st.svc.history(&a.s, &q).await {
        Ok(p) => p,
        Err(e) => return system_error(e),
    };
    let offset = st.svc.settings().display_offset();
    let first = if page.total == 0 {
        0
    } else {
        (page.page - 1) * shomei_service::HISTORY_PAGE_SIZE + 1
    };
    let notice = (page.total == 0 && error.is_none())
        .then(|| "条件に該当する操作履歴はありません。".to_owned());
    render(&Bssk011 {
        l: Layout::user(&st, &a, "管理業務 操作履歴照会", "BSSK011", "管理業務"),
        error,
        notice,
        from: raw.get("from").cloned().unwrap_or_default(),
        to: raw.get("to").cloned().unwrap_or_default(),
        actor: q.actor.clone().unwrap_or_default(),
        operation: q.operation.clone().unwrap_or_default(),
        result: q.result.clone().unwrap_or_default(),
        operations: page.operations,
        own_only: page.own_only,
        total: page.total,
        first,
        last: first + page.rows.len() as i64 - i64::from(first > 0),
        page: page.page,
        pages: page.pages,
        query: query_string(&q),
        rows: page
            .rows
            .into_iter()
            .map(|r| Row {
                at: jp_datetime(r.at, offset),
                actor: r.actor_login_id,
                operation: r.operation,
                target: r.target_login_id,
                result: r.result,
                detail: r.detail,
                client: r.client_addr,
            })
            .collect(),
    })
}

pub(crate) async fn bssk011_csv(
    State(st): State<AppState>,
    a: Authed,
    Query(raw): Query<HashMap<String, String>>,
) -> Response {
    let mut q = match conditions(&raw) {
        Ok(q) => q,
        Err(e) => return user_error(&st, &a, StatusCode::BAD_REQUEST, &e),
    };
    if shomei_core::authority::sees_own_history_only(&a.s.actor) {
        q.actor = None;
    }
    let rows = match st.svc.history_rows(&a.s, &q).await {
        Ok(r) => r,
        Err(e) => return system_error(e),
    };
    let offset = st.svc.settings().display_offset();
    let mut text = String::from("日時,操作者,操作,対象利用者,結果,詳細,接続元\r\n");
    for r in &rows {
        let at = jp_datetime(r.at, offset);
        text.push_str(&shomei_service::csv_line([
            at.as_str(),
            &r.actor_login_id,
            &r.operation,
            &r.target_login_id,
            &r.result,
            &r.detail,
            &r.client_addr,
        ]));
        text.push_str("\r\n");
    }
    let sjis = raw.get("enc").map(String::as_str) == Some("sjis");
    let (enc, name) = if sjis {
        (
            shomei_service::CsvEncoding::ShiftJis,
            "sousa-rireki-sjis.csv",
        )
    } else {
        (shomei_service::CsvEncoding::Utf8, "sousa-rireki.csv")
    };
    let (body, charset) = shomei_service::csv_bytes(&text, enc);
    (
        [
            (header::CONTENT_TYPE, format!("text/csv; charset={charset}")),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_refuse_bad_input_with_a_message() {
        let q = |pairs: &[(&str, &str)]| {
            conditions(
                &pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        assert!(q(&[]).is_ok());
        assert!(q(&[("from", "2026-11-31")]).unwrap_err().contains("期間"));
        assert!(
            q(&[("from", "2026-11-25"), ("to", "2026-11-01")])
                .unwrap_err()
                .contains("開始日")
        );
        assert!(
            q(&[("actor", "ab;drop")])
                .unwrap_err()
                .contains("ログインID")
        );
        assert!(q(&[("result", "maybe")]).unwrap_err().contains("結果"));
        let ok = q(&[
            ("from", "2026-11-01"),
            ("to", "2026-11-25"),
            ("actor", "hanakodt"),
            ("page", "3"),
        ])
        .unwrap();
        assert_eq!(ok.page, 3);
        assert_eq!(ok.actor.as_deref(), Some("hanakodt"));
    }
}
