//! Four-eyes approval (the operator console): the rules, the requests
//! waiting with their data, each operator's vote, and the closed companies.
//!
//! A request's `(state, version)` is its compare-and-set row: every step
//! (an approval, a rejection, the expiry, the commit) moves the version
//! with `UPDATE … WHERE id = ? AND state = 'pending' AND version = ?`, so
//! of two nodes acting on the same version one changes the row and the
//! other sees nothing changed (Postgres: the second waits on the first's
//! row lock, then re-checks the WHERE after its commit; SQLite: one writer
//! at a time).

use shomei_core::{CompanyId, UserId};
use time::OffsetDateTime;

use crate::certificates::{CERT_COLUMNS, cert};
use crate::db::{Get, Pool, on};
use crate::{ApprovalVoteRow, CertRow, Result, Store, StoreError, Tx};

/// An approval rule as stored (kinds without a row keep their default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRuleRow {
    /// The kind of change the rule governs, by its stable code
    /// (`open-company`, `close-company`, `revoke-for-company`, …).
    pub kind: String,
    /// How many operators other than the requester must approve before the
    /// change is made (each kind has its minimum, checked by the service).
    pub required: u32,
    /// Operator role codes whose holders may approve (`business-admin`,
    /// `operations-admin`, …), joined by ','.
    pub roles: String,
    /// When the rule was last changed.
    pub updated_at: OffsetDateTime,
    /// Who changed it (`銀行:<operator>`), as the 操作履歴 names actors.
    pub updated_by: String,
}

/// A request for approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRequestRow {
    /// The request's number (申請 N on the console and in the 操作履歴).
    pub id: i64,
    /// The kind of change, by its code (see [`ApprovalRuleRow::kind`]).
    pub kind: String,
    /// One line for the console's lists, in Japanese (e.g. which company).
    pub summary: String,
    /// The change, serialized (JSON).
    pub data: String,
    /// The requesting operator; `None` for a request from the shell.
    pub requested_by: Option<i64>,
    /// The requester's operator name, or `cli:<user>` from the shell.
    pub requester: String,
    /// When it was submitted.
    pub requested_at: OffsetDateTime,
    /// When a request still pending expires (closed as `expired`).
    pub expires_at: OffsetDateTime,
    /// Approvals needed, copied from the rule at submission: a later rule
    /// change does not move a request already waiting.
    pub required: u32,
    /// Role codes that may approve, copied from the rule at submission.
    pub roles: String,
    /// Approvals given so far.
    pub approvals: u32,
    /// pending, committed, rejected or expired.
    pub state: String,
    /// The compare-and-set counter: moved by every step (see the module).
    pub version: i64,
    /// When it left `pending`; `None` while pending.
    pub decided_at: Option<OffsetDateTime>,
    /// The operator whose vote closed it, or `システム` for an expiry;
    /// `None` while pending.
    pub decided_by: Option<String>,
}

/// A new request.
#[derive(Debug, Clone)]
pub struct NewApprovalRequest<'a> {
    /// The kind of change, by its code.
    pub kind: &'a str,
    /// One line for the console's lists.
    pub summary: &'a str,
    /// The change, serialized (JSON), applied as it is when approved.
    pub data: &'a str,
    /// The requesting operator, or (`None`) the shell user in
    /// `requested_via`.
    pub requested_by: Option<i64>,
    /// The shell user (`cli:<user>`) when `requested_by` is `None`; exactly
    /// one of the two is set (the table's CHECK refuses otherwise).
    pub requested_via: Option<&'a str>,
    /// When it is submitted.
    pub requested_at: OffsetDateTime,
    /// When it expires if still pending.
    pub expires_at: OffsetDateTime,
    /// Approvals needed, from the rule in force.
    pub required: u32,
    /// Role codes that may approve, from the rule in force.
    pub roles: &'a str,
}

/// A certificate of a company not yet revoked (closing the company), and
/// its user's login ID.
#[derive(Debug, Clone)]
pub struct CompanyCert {
    /// The certificate holder's login ID (for the closure's 操作履歴).
    pub login_id: String,
    /// The certificate to revoke.
    pub cert: CertRow,
}

fn corrupt(table: &'static str, column: &'static str, value: impl ToString) -> StoreError {
    StoreError::Corrupt {
        table,
        column,
        value: value.to_string(),
    }
}

fn at(t: i64, table: &'static str, column: &'static str) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(t).map_err(|_| corrupt(table, column, t))
}

fn count(n: i64, table: &'static str, column: &'static str) -> Result<u32> {
    u32::try_from(n).map_err(|_| corrupt(table, column, n))
}

type RequestTuple = (
    i64,
    String,
    String,
    String,
    Option<i64>,
    String,
    i64,
    i64,
    i64,
    String,
    i64,
    String,
    i64,
    Option<i64>,
    Option<String>,
);
const REQUEST_COLUMNS: &str = "r.id, r.kind, r.summary, r.data, r.requested_by, \
     coalesce(o.name, r.requested_via), \
     r.requested_at, r.expires_at, r.required, r.roles, r.approvals, r.state, r.version, \
     r.decided_at, r.decided_by";
const REQUEST_FROM: &str = "approval_requests r LEFT JOIN operators o ON o.id = r.requested_by";

fn request_row(t: RequestTuple) -> Result<ApprovalRequestRow> {
    const T: &str = "approval_requests";
    let (
        id,
        kind,
        summary,
        data,
        by,
        requester,
        req_at,
        exp,
        required,
        roles,
        n,
        state,
        v,
        dec,
        dby,
    ) = t;
    Ok(ApprovalRequestRow {
        id,
        kind,
        summary,
        data,
        requested_by: by,
        requester,
        requested_at: at(req_at, T, "requested_at")?,
        expires_at: at(exp, T, "expires_at")?,
        required: count(required, T, "required")?,
        roles,
        approvals: count(n, T, "approvals")?,
        state,
        version: v,
        decided_at: dec.map(|t| at(t, T, "decided_at")).transpose()?,
        decided_by: dby,
    })
}

async fn request(c: Pool<'_>, id: i64) -> Result<Option<ApprovalRequestRow>> {
    let row: Option<RequestTuple> = on!(c, p, d => {
        sqlx::query_as(d::sql(format!(
            "SELECT {REQUEST_COLUMNS} FROM {REQUEST_FROM} WHERE r.id = ?"
        )))
        .bind(id)
        .fetch_optional(p)
        .await?
    });
    row.map(request_row).transpose()
}

impl Store {
    /// Every stored rule, by kind.
    pub async fn approval_rules(&self) -> Result<Vec<ApprovalRuleRow>> {
        let rows: Vec<(String, i64, String, i64, String)> = on!(self.reader(), p, d => {
            sqlx::query_as(d::sql(
                "SELECT kind, required, roles, updated_at, updated_by FROM approval_rules ORDER BY kind",
            ))
            .fetch_all(p)
            .await?
        });
        rows.into_iter()
            .map(|(kind, required, roles, updated_at, updated_by)| {
                Ok(ApprovalRuleRow {
                    kind,
                    required: count(required, "approval_rules", "required")?,
                    roles,
                    updated_at: at(updated_at, "approval_rules", "updated_at")?,
                    updated_by,
                })
            })
            .collect()
    }

    /// Requests in `state` (every state when `None`), newest first: one
    /// page and the total.
    pub async fn approval_requests(
        &self,
        state: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<ApprovalRequestRow>, i64)> {
        let filter = if state.is_some() {
            "WHERE r.state = ?"
        } else {
            "WHERE r.state = ? OR 1 = 1"
        };
        let s = state.unwrap_or("");
        let rows: Vec<RequestTuple> = on!(self.reader(), p, d => {
            sqlx::query_as(d::sql(format!(
                "SELECT {REQUEST_COLUMNS} FROM {REQUEST_FROM} {filter} ORDER BY r.id DESC LIMIT ? OFFSET ?"
            )))
            .bind(s)
            .bind(limit)
            .bind(offset)
            .fetch_all(p)
            .await?
        });
        let total: i64 = on!(self.reader(), p, d => {
            sqlx::query_scalar(d::sql(format!(
                "SELECT count(*) FROM {REQUEST_FROM} {filter}"
            )))
            .bind(s)
            .fetch_one(p)
            .await?
        });
        Ok((
            rows.into_iter().map(request_row).collect::<Result<_>>()?,
            total,
        ))
    }

    /// The request with this number, whatever its state; `None` if there
    /// is none.
    pub async fn approval_request(&self, id: i64) -> Result<Option<ApprovalRequestRow>> {
        request(self.reader(), id).await
    }

    /// The votes on a request, in order.
    pub async fn approval_votes(&self, id: i64) -> Result<Vec<ApprovalVoteRow>> {
        let rows: Vec<(String, String, i64)> = on!(self.reader(), p, d => {
            sqlx::query_as(d::sql(
                "SELECT o.name, v.vote, v.at FROM approval_votes v \
                 JOIN operators o ON o.id = v.operator_id WHERE v.request_id = ? ORDER BY v.at, o.name",
            ))
            .bind(id)
            .fetch_all(p)
            .await?
        });
        rows.into_iter()
            .map(|(operator, vote, t)| {
                Ok(ApprovalVoteRow {
                    operator,
                    vote,
                    at: at(t, "approval_votes", "at")?,
                })
            })
            .collect()
    }

    /// Pending requests whose time ran out at `now`: (id, version).
    pub async fn approvals_due(&self, now: OffsetDateTime) -> Result<Vec<(i64, i64)>> {
        Ok(on!(self.reader(), p, d => {
            sqlx::query_as(d::sql(
                "SELECT id, version FROM approval_requests WHERE state = 'pending' AND expires_at <= ? ORDER BY id",
            ))
            .bind(now.unix_timestamp())
            .fetch_all(p)
            .await?
        }))
    }

    /// The companies the bank closed: (company, closed at).
    pub async fn company_closures(&self) -> Result<Vec<(CompanyId, OffsetDateTime)>> {
        let rows: Vec<(i64, i64)> = on!(self.reader(), p, d => {
            sqlx::query_as(d::sql("SELECT company_id, closed_at FROM company_closures"))
                .fetch_all(p)
                .await?
        });
        rows.into_iter()
            .map(|(c, t)| Ok((CompanyId(c), at(t, "company_closures", "closed_at")?)))
            .collect()
    }
}

impl Tx {
    /// The stored rule of a kind.
    pub async fn approval_rule(&mut self, kind: &str) -> Result<Option<(u32, String)>> {
        let row: Option<(i64, String)> = on!(self.conn(), c, d => {
            sqlx::query_as(d::sql("SELECT required, roles FROM approval_rules WHERE kind = ?"))
                .bind(kind)
                .fetch_optional(c)
                .await?
        });
        row.map(|(n, roles)| Ok((count(n, "approval_rules", "required")?, roles)))
            .transpose()
    }

    /// Sets the rule of a kind.
    pub async fn set_approval_rule(
        &mut self,
        kind: &str,
        required: u32,
        roles: &str,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<()> {
        on!(self.conn(), c, d => {
            sqlx::query(d::sql(
                "INSERT INTO approval_rules (kind, required, roles, updated_at, updated_by) \
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT (kind) DO UPDATE SET \
                 required = excluded.required, roles = excluded.roles, \
                 updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            ))
            .bind(kind)
            .bind(i64::from(required))
            .bind(roles)
            .bind(now.unix_timestamp())
            .bind(by)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Submits the request (pending, no approvals, version 0); returns its
    /// number.
    pub async fn insert_approval_request(&mut self, r: &NewApprovalRequest<'_>) -> Result<i64> {
        Ok(on!(self.conn(), c, d => {
            sqlx::query_scalar(d::sql(
                "INSERT INTO approval_requests \
                 (kind, summary, data, requested_by, requested_via, requested_at, expires_at, \
                 required, roles) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            ))
            .bind(r.kind)
            .bind(r.summary)
            .bind(r.data)
            .bind(r.requested_by)
            .bind(r.requested_via)
            .bind(r.requested_at.unix_timestamp())
            .bind(r.expires_at.unix_timestamp())
            .bind(i64::from(r.required))
            .bind(r.roles)
            .fetch_one(c)
            .await?
        }))
    }

    /// The request as this transaction sees it (no lock: the step's
    /// compare-and-set decides).
    pub async fn approval_request(&mut self, id: i64) -> Result<Option<ApprovalRequestRow>> {
        let row: Option<RequestTuple> = on!(self.conn(), c, d => {
            sqlx::query_as(d::sql(format!(
                "SELECT {REQUEST_COLUMNS} FROM {REQUEST_FROM} WHERE r.id = ?"
            )))
            .bind(id)
            .fetch_optional(c)
            .await?
        });
        row.map(request_row).transpose()
    }

    /// Records an operator's vote; `false` when they have voted on this
    /// request already (nobody counts twice).
    pub async fn add_approval_vote(
        &mut self,
        request: i64,
        operator: i64,
        vote: &str,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let n = on!(self.conn(), c, d => {
            sqlx::query(d::sql(
                "INSERT INTO approval_votes (request_id, operator_id, vote, at) VALUES (?, ?, ?, ?) \
                 ON CONFLICT DO NOTHING",
            ))
            .bind(request)
            .bind(operator)
            .bind(vote)
            .bind(now.unix_timestamp())
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// The compare-and-set of one step: a pending request at `version`
    /// takes `approvals` and `state` (decided by `by` at `now` when the
    /// state is not pending any more) and the next version. `false` when
    /// another step moved it first: nothing changed.
    pub async fn advance_approval(
        &mut self,
        id: i64,
        version: i64,
        approvals: u32,
        state: &str,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let decided = state != "pending";
        let n = on!(self.conn(), c, d => {
            sqlx::query(d::sql(
                "UPDATE approval_requests SET approvals = ?, state = ?, version = version + 1, \
                 decided_at = ?, decided_by = ? \
                 WHERE id = ? AND state = 'pending' AND version = ?",
            ))
            .bind(i64::from(approvals))
            .bind(state)
            .bind(decided.then(|| now.unix_timestamp()))
            .bind(decided.then_some(by))
            .bind(id)
            .bind(version)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Replaces an operator's roles.
    pub async fn set_operator_roles(
        &mut self,
        operator: i64,
        roles: &shomei_core::OperatorRoles,
    ) -> Result<()> {
        on!(self.conn(), c, d => {
            sqlx::query(d::sql("UPDATE operators SET roles = ? WHERE id = ?"))
                .bind(roles.codes())
                .bind(operator)
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// The company's users (not deleted).
    pub async fn company_user_ids(&mut self, company: CompanyId) -> Result<Vec<UserId>> {
        let ids: Vec<i64> = on!(self.conn(), c, d => {
            sqlx::query_scalar(d::sql(
                "SELECT id FROM users WHERE company_id = ? AND deleted_at IS NULL ORDER BY id",
            ))
            .bind(company.0)
            .fetch_all(c)
            .await?
        });
        Ok(ids.into_iter().map(UserId).collect())
    }

    /// Every certificate of the company's users not yet revoked (expired
    /// ones too: revoking them changes nothing the CRL would not carry),
    /// with its user's login ID.
    pub async fn company_unrevoked_certs(
        &mut self,
        company: CompanyId,
    ) -> Result<Vec<CompanyCert>> {
        on!(self.conn(), c, d => {
            let rows = sqlx::query(d::sql(format!(
                "SELECT {CERT_COLUMNS}, u.login_id AS u_login_id \
                 FROM certificates c JOIN users u ON u.id = c.user_id \
                 WHERE u.company_id = ? AND c.revoked_at IS NULL ORDER BY c.id"
            )))
            .bind(company.0)
            .fetch_all(c)
            .await?;
            rows.iter()
                .filter_map(|r| match cert(r) {
                    Ok(Some(k)) => Some(r.text("u_login_id").map(|login_id| CompanyCert {
                        login_id,
                        cert: k,
                    })),
                    Ok(None) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<Vec<_>>>()
        })
    }

    /// Has the bank closed the company?
    pub async fn company_closed(&mut self, company: CompanyId) -> Result<bool> {
        let n: i64 = on!(self.conn(), c, d => {
            sqlx::query_scalar(d::sql("SELECT count(*) FROM company_closures WHERE company_id = ?"))
                .bind(company.0)
                .fetch_one(c)
                .await?
        });
        Ok(n > 0)
    }

    /// Marks the company closed; `false` when it was already.
    pub async fn close_company(
        &mut self,
        company: CompanyId,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let n = on!(self.conn(), c, d => {
            sqlx::query(d::sql(
                "INSERT INTO company_closures (company_id, closed_at, closed_by) VALUES (?, ?, ?) \
                 ON CONFLICT DO NOTHING",
            ))
            .bind(company.0)
            .bind(now.unix_timestamp())
            .bind(by)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }
}
