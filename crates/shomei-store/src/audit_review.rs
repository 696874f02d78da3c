//! What the bank's 監査 reads: the 操作履歴 of every company and the bank's
//! own rows (the operators'), narrowed by company, operation, result, date
//! range and actor, newest first, paged; with each row's company name.

use time::OffsetDateTime;

use crate::audit::{row as audit_row, rows_of};
use crate::db::{Get, Value, on, query_with};
use crate::{AuditScope, Result, ReviewRow, Store};

/// The 監査's conditions.
#[derive(Debug, Clone, Default)]
pub struct ReviewFilter {
    /// Whose rows (every chain by default).
    pub scope: AuditScope,
    /// The actor as recorded: a login ID, or an operator's `銀行:<name>`
    /// (given either way).
    pub actor: Option<String>,
    /// Only this operation, by its Japanese label (exact match).
    pub operation: Option<String>,
    /// Only 成功 or only 失敗.
    pub result: Option<String>,
    /// From this time on (inclusive).
    pub from: Option<OffsetDateTime>,
    /// Before this time (exclusive).
    pub until: Option<OffsetDateTime>,
}

impl ReviewFilter {
    /// The WHERE clause naming only the conditions given, and its values;
    /// for a count (not `ordered`), as `AuditFilter`'s.
    fn clause(&self, ordered: bool) -> (String, Vec<Value>) {
        let mut conds: Vec<String> = Vec::new();
        let mut values = Vec::new();
        let by_index =
            self.actor.is_some() || self.operation.is_some() || (self.result.is_some() && !ordered);
        let rows = match self.scope {
            AuditScope::All => None,
            AuditScope::Bank => Some(rows_of("a.", None, by_index)),
            AuditScope::Company(c) => Some(rows_of("a.", Some(c), by_index)),
        };
        if let Some((cond, value)) = rows {
            conds.push(cond);
            values.extend(value);
        }
        if let Some(actor) = &self.actor {
            let bare = actor.strip_prefix("銀行:").unwrap_or(actor);
            conds.push("a.actor_login_id IN (?, ?)".to_owned());
            values.push(Value::Text(bare.to_owned()));
            values.push(Value::Text(format!("銀行:{bare}")));
        }
        if let Some(o) = &self.operation {
            conds.push("a.operation = ?".to_owned());
            values.push(Value::Text(o.clone()));
        }
        if let Some(r) = &self.result {
            conds.push("a.result = ?".to_owned());
            values.push(Value::Text(r.clone()));
        }
        if let Some(t) = self.from {
            conds.push("a.at >= ?".to_owned());
            values.push(Value::Int(t.unix_timestamp()));
        }
        if let Some(t) = self.until {
            conds.push("a.at < ?".to_owned());
            values.push(Value::Int(t.unix_timestamp()));
        }
        let sql = if conds.is_empty() {
            "1 = 1".to_owned()
        } else {
            conds.join(" AND ")
        };
        (sql, values)
    }
}

impl Store {
    /// How many rows match `f`.
    pub async fn review_count(&self, f: &ReviewFilter) -> Result<i64> {
        let (clause, values) = f.clause(false);
        let sql = format!("SELECT count(*) AS n FROM audit_log a WHERE {clause}");
        on!(self.reader(), p, d => query_with!(d, sql, &values).fetch_one(p).await?.int("n"))
    }

    /// `limit` rows matching `f` after the newest `offset`, newest first.
    pub async fn review_page(
        &self,
        f: &ReviewFilter,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<ReviewRow>> {
        let (clause, mut values) = f.clause(true);
        values.push(Value::Int(limit));
        values.push(Value::Int(offset));
        let sql = format!(
            "SELECT a.id, a.at, a.company_id, a.actor_login_id, a.operation, a.target_login_id, \
             a.result, a.detail, a.client_addr, co.name AS company_name \
             FROM audit_log a LEFT JOIN companies co ON co.id = a.company_id \
             WHERE {clause} ORDER BY a.id DESC LIMIT ? OFFSET ?"
        );
        on!(self.reader(), p, d => {
            query_with!(d, sql, &values)
                .fetch_all(p)
                .await?
                .iter()
                .map(|r| {
                    Ok(ReviewRow {
                        row: audit_row(r)?,
                        company_name: r.opt_text("company_name")?,
                    })
                })
                .collect()
        })
    }
}
