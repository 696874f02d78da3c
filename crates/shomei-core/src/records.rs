//! Records the store keeps and every layer reads as they are: a company
//! and its summary, its contact, a 操作履歴 row and the scope of a review of
//! them, what walking the 操作履歴 chains found, an operator's certificate,
//! a vote on a request. None holds a secret (the rows that hold password
//! hashes stay in the store; the service shows them through its own views).

use time::OffsetDateTime;

use crate::{CompanyId, CrlScope, Serial, Service};

/// One client company of the bank.
#[derive(Debug, Clone)]
pub struct CompanyRow {
    /// The row's id; users and the company's 操作履歴 chain refer to it.
    pub id: CompanyId,
    /// The company's name as registered (not unique); it goes into its
    /// users' certificates.
    pub name: String,
    /// The internet-banking service it contracted (ビジネスIB or
    /// ほっと君WebJr.).
    pub service: Service,
}

/// A company's contact person (企業管理).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompanyContact {
    /// The contact person's name; empty when not given.
    pub name: String,
    /// Their telephone number as entered; empty when not given.
    pub phone: String,
    /// Their e-mail address; empty when not given.
    pub email: String,
}

/// A stored row.
#[derive(Debug, Clone)]
pub struct AuditRow {
    /// The row's id; rows are listed in its order (the order written).
    pub id: i64,
    /// When the operation happened.
    pub at: OffsetDateTime,
    /// The company whose chain holds it; `None`: the bank's chain.
    pub company_id: Option<CompanyId>,
    /// Who acted, as recorded (as the store's `AuditEntry` wrote it).
    pub actor_login_id: String,
    /// The operation's Japanese label as it was when written.
    pub operation: String,
    /// Whom it was done to.
    pub target_login_id: String,
    /// 成功 or 失敗.
    pub result: String,
    /// The detail text.
    pub detail: String,
    /// The client's address or the tool's name.
    pub client_addr: String,
}

/// What walking the 操作履歴 chains found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChainCheck {
    /// Rows whose hashes held, before the first broken one.
    pub rows: u64,
    /// Chains walked (the companies' and the bank's own).
    pub chains: u64,
    /// The id of the first row that breaks its chain: edited, deleted or
    /// reordered.
    pub broken_at: Option<i64>,
}

/// One certificate of an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorCertRow {
    /// Whose certificate it is.
    pub operator_id: i64,
    /// Its serial, unique among operator certificates.
    pub serial: Serial,
    /// Start of validity, as in the certificate.
    pub not_before: OffsetDateTime,
    /// End of validity, as in the certificate.
    pub not_after: OffsetDateTime,
    /// When it was revoked; `None` while in force.
    pub revoked_at: Option<OffsetDateTime>,
    /// The CRL its distribution point names.
    pub crl_scope: CrlScope,
}

/// A company with how many users it has (the operator's `company list`).
#[derive(Debug, Clone)]
pub struct CompanySummary {
    /// The company's id.
    pub id: CompanyId,
    /// Its name.
    pub name: String,
    /// Its contracted service.
    pub service: Service,
    /// How many users it has (deleted ones not counted).
    pub users: i64,
    /// How many of them are マスター (a new one is registered only when
    /// none is left).
    pub masters: i64,
    /// When the bank registered it.
    pub created_at: OffsetDateTime,
}

/// One operator's say on a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalVoteRow {
    /// The voting operator's name.
    pub operator: String,
    /// approve or reject.
    pub vote: String,
    /// When the vote was cast.
    pub at: OffsetDateTime,
}

/// Whose rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuditScope {
    /// Every company's and the bank's own.
    #[default]
    All,
    /// The bank's own rows (no company): the operators' and attempts that
    /// named no company.
    Bank,
    /// One company's rows only.
    Company(CompanyId),
}

/// A row with its company's name (`None` for the bank's own).
#[derive(Debug, Clone)]
pub struct ReviewRow {
    /// The 操作履歴 row.
    pub row: AuditRow,
    /// Its company's current name; `None` for the bank's own rows.
    pub company_name: Option<String>,
}
