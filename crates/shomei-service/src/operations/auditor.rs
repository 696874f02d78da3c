//! The 監査 in the operator console: the 操作履歴 of every company and of
//! the operators, read only: searched (company, operation, result, date
//! range, actor) and paged, downloaded as CSV (UTF-8 or Shift_JIS, formulas
//! defused by the rule every 操作履歴 CSV shares), and the hash chains
//! checked by the same walk as `shomei audit verify`.
//!
//! [`Shomei::auditor`] hands the tasks only to an operator holding the 監査
//! role (a refusal otherwise, with its 操作履歴 row). Nothing here changes
//! data; a download and a chain check are each recorded as one row of the
//! bank's own, since who read what is itself for the auditors to see.

use crate::Db as _;
use shomei_core::format::jp_datetime;
use shomei_core::records::ChainCheck;
use shomei_core::records::{AuditScope, ReviewRow};
use shomei_core::{CompanyId, Operation, OperatorRole, Outcome};
use shomei_store::ReviewFilter;
use time::{Date, Duration, OffsetDateTime, Time};

use crate::company::history::HISTORY_CSV_MAX;
use crate::operations::audit_export::csv_line;
use crate::operations::console_access::{OperatorContext, operator_row};
use crate::operations::operators::ConsoleOperator;
use crate::{ActionError, Shomei};

/// Rows on one page of the 監査's 操作履歴照会.
pub const REVIEW_PAGE_SIZE: i64 = 50;

/// The console's message for an operator without the role.
pub const NOT_AUDITOR: &str = "この操作は監査の役割を持つオペレーターだけが行えます。";
/// The console's message for a company ID that is not a number.
pub const BAD_COMPANY_ID: &str = "企業IDは半角数字で入力してください。";
/// The console's message for a date that is not one.
pub(crate) const BAD_DATE: &str = "期間は「2026-11-25」の形式で入力してください。";
/// The console's message for a period that ends before it starts.
pub const BAD_PERIOD: &str = "期間の開始日は終了日以前の日付を入力してください。";
/// The console's message for an actor too long or with odd characters.
pub(crate) const BAD_ACTOR: &str =
    "操作者は40文字以内で入力してください（オペレーターは「銀行:名前」または名前）。";
/// The console's message for an operation not in the list.
pub(crate) const BAD_OPERATION: &str = "操作の指定が正しくありません。";
/// The console's message for a result other than 成功/失敗.
pub(crate) const BAD_RESULT: &str = "結果は「成功」または「失敗」を選択してください。";

/// The conditions as the screen gives them (text, not yet read).
#[derive(Debug, Clone, Default)]
pub struct ReviewForm {
    /// `all`, `bank` or `company` (with `company_id`).
    pub scope: String,
    /// The company's id, with scope `company`.
    pub company_id: String,
    /// An operation's 操作履歴 label; empty: every operation.
    pub operation: String,
    /// 成功 or 失敗; empty: both.
    pub result: String,
    /// `YYYY-MM-DD`, inclusive, in the screens' time zone.
    pub from: String,
    /// `YYYY-MM-DD`, inclusive: the last day.
    pub to: String,
    /// Who acted (login ID or operator name); empty: anyone.
    pub actor: String,
}

/// The conditions, read.
#[derive(Debug, Clone, Default)]
pub struct ReviewQuery {
    /// Whose rows: the bank's, a company's, or all.
    pub scope: AuditScope,
    /// First day (inclusive), in the screens' time zone.
    pub from: Option<Date>,
    /// Last day (inclusive).
    pub to: Option<Date>,
    /// Who acted.
    pub actor: Option<String>,
    /// The operation's 操作履歴 label.
    pub operation: Option<String>,
    /// 成功 or 失敗.
    pub result: Option<String>,
}

const DATE: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

impl ReviewForm {
    /// The conditions, or the message for what is wrong.
    pub fn read(&self) -> Result<ReviewQuery, &'static str> {
        let text = |v: &str| Some(v.trim().to_owned()).filter(|v| !v.is_empty());
        let date = |v: &str| match text(v) {
            None => Ok(None),
            Some(v) => Date::parse(&v, DATE).map(Some).map_err(|_| BAD_DATE),
        };
        let scope = match self.scope.trim() {
            "" | "all" => AuditScope::All,
            "bank" => AuditScope::Bank,
            "company" => match self.company_id.trim().parse::<i64>() {
                Ok(id) if id > 0 => AuditScope::Company(CompanyId(id)),
                _ => return Err(BAD_COMPANY_ID),
            },
            _ => return Err(BAD_COMPANY_ID),
        };
        let (from, to) = (date(&self.from)?, date(&self.to)?);
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            return Err(BAD_PERIOD);
        }
        let actor = text(&self.actor);
        if actor
            .as_deref()
            .is_some_and(|a| a.chars().count() > 40 || a.chars().any(char::is_control))
        {
            return Err(BAD_ACTOR);
        }
        let operation = text(&self.operation);
        if operation
            .as_deref()
            .is_some_and(|o| Operation::from_label(o).is_none())
        {
            return Err(BAD_OPERATION);
        }
        let result = text(&self.result);
        if result
            .as_deref()
            .is_some_and(|r| r != Outcome::Succeeded.label() && r != Outcome::Failed.label())
        {
            return Err(BAD_RESULT);
        }
        Ok(ReviewQuery {
            scope,
            from,
            to,
            actor,
            operation,
            result,
        })
    }
}

/// One page of the 監査's 操作履歴照会.
#[derive(Debug, Clone)]
pub struct ReviewPage {
    /// The rows of this page.
    pub rows: Vec<ReviewRow>,
    /// Rows matching the conditions, on every page.
    pub total: i64,
    /// 1-based.
    pub page: i64,
    /// Pages in all (at least 1).
    pub pages: i64,
}

/// A CSV download: its bytes and what to call it.
#[derive(Debug, Clone)]
pub struct CsvDownload {
    /// The file's bytes, in `charset`.
    pub body: Vec<u8>,
    /// `UTF-8` or `Shift_JIS`.
    pub charset: &'static str,
    /// The name the browser saves it under.
    pub file_name: &'static str,
    /// 操作履歴 rows in it.
    pub rows: usize,
}

/// The two encodings a 操作履歴 CSV comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvEncoding {
    /// UTF-8 with a BOM, so that Excel opens it as UTF-8.
    Utf8,
    /// Shift_JIS, for older spreadsheet tools.
    ShiftJis,
}

/// `text` as a CSV file in `enc` (one rule for the portal's and the
/// console's downloads): the bytes and the charset's name.
pub fn csv_bytes(text: &str, enc: CsvEncoding) -> (Vec<u8>, &'static str) {
    match enc {
        CsvEncoding::ShiftJis => {
            let (bytes, _, _) = encoding_rs::SHIFT_JIS.encode(text);
            (bytes.into_owned(), "Shift_JIS")
        }
        CsvEncoding::Utf8 => {
            let mut b = vec![0xef, 0xbb, 0xbf];
            b.extend_from_slice(text.as_bytes());
            (b, "UTF-8")
        }
    }
}

/// The 監査's tasks for one operator (see [`Shomei::auditor`]).
pub struct AuditorTasks<'a> {
    svc: &'a Shomei,
    op: &'a ConsoleOperator,
    client: &'a str,
}

impl Shomei {
    /// The 監査's tasks, for an operator holding the 監査 role; otherwise
    /// the refusal (its 操作履歴 row written).
    pub async fn auditor<'a>(
        &'a self,
        op: &'a ConsoleOperator,
        client: &'a str,
    ) -> Result<AuditorTasks<'a>, ActionError> {
        self.require_operator_role(
            op,
            OperatorRole::Auditor,
            Operation::Audit,
            NOT_AUDITOR,
            client,
        )
        .await?;
        Ok(AuditorTasks {
            svc: self,
            op,
            client,
        })
    }
}

impl AuditorTasks<'_> {
    fn filter(&self, q: &ReviewQuery) -> ReviewFilter {
        let offset = self.svc.settings.display_offset();
        let start = |d: Date| OffsetDateTime::new_in_offset(d, Time::MIDNIGHT, offset);
        ReviewFilter {
            scope: q.scope,
            actor: q.actor.clone(),
            operation: q.operation.clone(),
            result: q.result.clone(),
            from: q.from.map(start),
            until: q.to.map(|d| start(d) + Duration::days(1)),
        }
    }

    /// Page `page` (1-based; past the end: the last) of the rows matching
    /// `q`, newest first.
    pub async fn history(&self, q: &ReviewQuery, page: i64) -> Result<ReviewPage, ActionError> {
        let f = self.filter(q);
        let store = &self.svc.store;
        let total = store.review_count(&f).await.db()?;
        let pages = ((total + REVIEW_PAGE_SIZE - 1) / REVIEW_PAGE_SIZE).max(1);
        let page = page.clamp(1, pages);
        let rows = store
            .review_page(&f, REVIEW_PAGE_SIZE, (page - 1) * REVIEW_PAGE_SIZE)
            .await
            .db()?;
        Ok(ReviewPage {
            rows,
            total,
            page,
            pages,
        })
    }

    /// The rows matching `q` (the newest `HISTORY_CSV_MAX`) as CSV in
    /// `enc`; the download recorded as one row with its conditions.
    pub async fn csv(
        &self,
        q: &ReviewQuery,
        describe: &str,
        enc: CsvEncoding,
    ) -> Result<CsvDownload, ActionError> {
        let f = self.filter(q);
        let rows = self
            .svc
            .store
            .review_page(&f, HISTORY_CSV_MAX, 0)
            .await
            .db()?;
        let offset = self.svc.settings.display_offset();
        let mut text = csv_line([
            "日時",
            "企業ID",
            "企業名",
            "操作者",
            "操作",
            "対象利用者",
            "結果",
            "詳細",
            "接続元",
        ]);
        text.push_str("\r\n");
        for r in &rows {
            let at = jp_datetime(r.row.at, offset);
            let company = r
                .row
                .company_id
                .map(|c| c.0.to_string())
                .unwrap_or_default();
            let name = r.company_name.as_deref().unwrap_or("銀行");
            text.push_str(&csv_line([
                at.as_str(),
                &company,
                name,
                &r.row.actor_login_id,
                &r.row.operation,
                &r.row.target_login_id,
                &r.row.result,
                &r.row.detail,
                &r.row.client_addr,
            ]));
            text.push_str("\r\n");
        }
        let (body, charset) = csv_bytes(&text, enc);
        let detail = format!("{} {}件（{charset}）", describe, rows.len());
        self.record(Operation::AuditExport, Outcome::Succeeded, &detail)
            .await?;
        Ok(CsvDownload {
            body,
            charset,
            file_name: match enc {
                CsvEncoding::Utf8 => "sousa-rireki-all.csv",
                CsvEncoding::ShiftJis => "sousa-rireki-all-sjis.csv",
            },
            rows: rows.len(),
        })
    }

    /// Every chain walked as `shomei audit verify` does; recorded as one
    /// row (成功 when every chain holds, 失敗 with the row that breaks one).
    pub async fn verify(&self) -> Result<ChainCheck, ActionError> {
        let check = self.svc.store.check_audit_chains().await.db()?;
        let (outcome, detail) = match check.broken_at {
            None => (
                Outcome::Succeeded,
                format!("改ざんなし（{}件、{}系列）", check.rows, check.chains),
            ),
            Some(id) => (Outcome::Failed, format!("ID {id} の行で連鎖が一致しません")),
        };
        self.record(Operation::AuditVerify, outcome, &detail)
            .await?;
        Ok(check)
    }

    async fn record(
        &self,
        op: Operation,
        outcome: Outcome,
        detail: &str,
    ) -> Result<(), ActionError> {
        let actor = self.op.operator.name.actor();
        let ctx = OperatorContext {
            op,
            target: "",
            client: self.client,
        };
        let mut tx = self.svc.store.begin().await.db()?;
        tx.audit(&operator_row(self.svc, &actor, ctx, outcome, detail))
            .await
            .db()?;
        tx.commit().await.db()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> ReviewForm {
        let mut f = ReviewForm::default();
        for (k, v) in pairs {
            let v = (*v).to_owned();
            match *k {
                "scope" => f.scope = v,
                "company_id" => f.company_id = v,
                "operation" => f.operation = v,
                "result" => f.result = v,
                "from" => f.from = v,
                "to" => f.to = v,
                "actor" => f.actor = v,
                _ => unreachable!(),
            }
        }
        f
    }

    #[test]
    fn the_conditions_are_read_or_refused_with_their_message() {
        let long = "a".repeat(41);
        assert_eq!(form(&[]).read().unwrap().scope, AuditScope::All);
        assert_eq!(
            form(&[("scope", "company"), ("company_id", " 12 ")])
                .read()
                .unwrap()
                .scope,
            AuditScope::Company(CompanyId(12))
        );
        assert_eq!(
            form(&[("scope", "bank")]).read().unwrap().scope,
            AuditScope::Bank
        );
        for (pairs, message) in [
            (
                &[("scope", "company"), ("company_id", "x1")][..],
                BAD_COMPANY_ID,
            ),
            (
                &[("scope", "company"), ("company_id", "")][..],
                BAD_COMPANY_ID,
            ),
            (&[("scope", "everyone")][..], BAD_COMPANY_ID),
            (&[("from", "2026-11-31")][..], BAD_DATE),
            (
                &[("from", "2026-11-25"), ("to", "2026-11-01")][..],
                BAD_PERIOD,
            ),
            (&[("actor", long.as_str())][..], BAD_ACTOR),
            (&[("operation", "何か")][..], BAD_OPERATION),
            (&[("result", "maybe")][..], BAD_RESULT),
        ] {
            assert_eq!(form(pairs).read().unwrap_err(), message, "{pairs:?}");
        }
        let ok = form(&[
            ("from", "2026-11-01"),
            ("to", "2026-11-25"),
            ("actor", "銀行:sato"),
            ("operation", "証明書失効"),
            ("result", "成功"),
        ])
        .read()
        .unwrap();
        assert_eq!(ok.actor.as_deref(), Some("銀行:sato"));
        assert_eq!(ok.operation.as_deref(), Some("証明書失効"));
    }

    #[test]
    fn a_csv_is_utf8_with_a_bom_or_shift_jis() {
        let (u, cs) = csv_bytes("失効\r\n", CsvEncoding::Utf8);
        assert_eq!(cs, "UTF-8");
        assert_eq!(&u[..3], [0xef, 0xbb, 0xbf]);
        assert_eq!(&u[3..], "失効\r\n".as_bytes());
        let (s, cs) = csv_bytes("失効\r\n", CsvEncoding::ShiftJis);
        assert_eq!(cs, "Shift_JIS");
        assert_eq!(s, [0x8e, 0xb8, 0x8c, 0xf8, b'\r', b'\n']);
    }
}
