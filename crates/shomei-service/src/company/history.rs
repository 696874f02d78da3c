//! 操作履歴照会 (BSSK011): a company's 操作履歴, filtered and paged, newest
//! first, and the same rows as CSV. マスター and 管理者 see the company's
//! rows; a 一般 user only the rows of their own operations.

use crate::Db as _;
use shomei_core::Operation;
use shomei_core::authority;
use shomei_core::records::AuditRow;
use shomei_store::AuditFilter;
use time::{Date, Duration, OffsetDateTime, Time};

use crate::{Result, Session, Shomei};

/// Rows a page.
pub const HISTORY_PAGE_SIZE: i64 = 50;
/// Rows a CSV download at the most (the newest).
pub(crate) const HISTORY_CSV_MAX: i64 = 100_000;

/// The conditions of 操作履歴照会, as the screen gives them.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    /// First day (inclusive), in the screens' time zone.
    pub from: Option<Date>,
    /// Last day (inclusive).
    pub to: Option<Date>,
    /// ログインID of the acting user.
    pub actor: Option<String>,
    /// The operation's 操作履歴 label (one of [`HistoryPage::operations`]).
    pub operation: Option<String>,
    /// 成功 or 失敗.
    pub result: Option<String>,
    /// 1-based.
    pub page: i64,
}

/// One page of 操作履歴照会.
#[derive(Debug, Clone)]
pub struct HistoryPage {
    /// The rows of this page, newest first.
    pub rows: Vec<AuditRow>,
    /// Rows matching the conditions, on every page.
    pub total: i64,
    /// This page's number (1-based, within `1..=pages`).
    pub page: i64,
    /// Pages in all (at least 1).
    pub pages: i64,
    /// The operations recorded for the company (the filter's choices).
    pub operations: Vec<String>,
    /// True when the user sees only their own operations (一般).
    pub own_only: bool,
}

impl Shomei {
    fn history_filter(&self, s: &Session, q: &HistoryQuery) -> AuditFilter {
        let offset = self.settings.display_offset();
        let start = |d: Date| OffsetDateTime::new_in_offset(d, Time::MIDNIGHT, offset);
        AuditFilter {
            actor_user_id: authority::sees_own_history_only(&s.actor).then_some(s.user.id),
            actor_login_id: q.actor.clone(),
            operation: q.operation.clone(),
            result: q.result.clone(),
            from: q.from.map(start),
            until: q.to.map(|d| start(d) + Duration::days(1)),
        }
    }

    /// A page of 操作履歴照会 for the session's user; a page past the end
    /// shows the last one.
    pub async fn history(&self, s: &Session, q: &HistoryQuery) -> Result<HistoryPage> {
        let f = self.history_filter(s, q);
        let total = self.store.audit_count(s.company.id, &f).await.db()?;
        let pages = ((total + HISTORY_PAGE_SIZE - 1) / HISTORY_PAGE_SIZE).max(1);
        let page = q.page.clamp(1, pages);
        let rows = self
            .store
            .audit_page(
                s.company.id,
                &f,
                HISTORY_PAGE_SIZE,
                (page - 1) * HISTORY_PAGE_SIZE,
                total,
            )
            .await
            .db()?;
        Ok(HistoryPage {
            rows,
            total,
            page,
            pages,
            // A fixed list: reading the distinct values of a million rows
            // would cost more than the page itself.
            operations: Operation::filter_labels().map(str::to_owned).collect(),
            own_only: f.actor_user_id.is_some(),
        })
    }

    /// Every row of the conditions (the newest `HISTORY_CSV_MAX`), for CSV.
    pub async fn history_rows(&self, s: &Session, q: &HistoryQuery) -> Result<Vec<AuditRow>> {
        let f = self.history_filter(s, q);
        let total = self.store.audit_count(s.company.id, &f).await.db()?;
        Ok(self
            .store
            .audit_page(s.company.id, &f, HISTORY_CSV_MAX.min(total), 0, total)
            .await
            .db()?)
    }
}
