//! The people the use cases hand out: a company's user and a bank operator,
//! as the screens and the shell show them. The store's rows carry the
//! password hashes besides; those stay in the service, which reads them
//! again inside the transaction that checks a password.

use shomei_core::{
    CompanyId, LoginId, OperatorName, OperatorRoles, Role, SecurityCounters, UserId,
};
use shomei_store::{OperatorRow, UserRow};
use time::OffsetDateTime;

/// A person of a client company who logs in to the portal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Certificates, sessions and 操作履歴 rows refer to it.
    pub id: UserId,
    /// The client company the user belongs to; never changes.
    pub company_id: CompanyId,
    /// The login ID typed on the login screen, unique across all companies.
    pub login_id: LoginId,
    /// The person's name as the company administrator entered it.
    pub name: String,
    /// マスター / 管理者 / 一般: what the user may do for their company.
    pub role: Role,
    /// Where e-mail notices go; empty: none is sent.
    pub email: String,
    /// Failure counts, time locks and stops for both passwords and the
    /// administrator's stop.
    pub counters: SecurityCounters,
    /// When the user last logged in; `None` until the first login.
    pub last_login_at: Option<OffsetDateTime>,
    /// Set by the bank (new user, reset): change at the next login.
    pub must_change_login: bool,
    /// The same for the confirmation password.
    pub must_change_confirm: bool,
}

impl From<UserRow> for User {
    fn from(u: UserRow) -> User {
        User {
            id: u.id,
            company_id: u.company_id,
            login_id: u.login_id,
            name: u.name,
            role: u.role,
            email: u.email,
            counters: u.counters,
            last_login_at: u.last_login_at,
            must_change_login: u.must_change_login,
            must_change_confirm: u.must_change_confirm,
        }
    }
}

/// One of the bank's operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// Certificates, votes and requests refer to it.
    pub id: i64,
    /// The operator's name, unique; what the console and the 操作履歴 show.
    pub name: OperatorName,
    /// What the operator may do (ヘルプデスク, 業務管理者, 監査, 運用管理者).
    pub roles: OperatorRoles,
    /// `false` once revoked: no certificate of theirs opens the console.
    pub active: bool,
    /// Wrong passwords in a row since the last right one.
    pub password_failures: u32,
    /// When the operator was added.
    pub created_at: OffsetDateTime,
    /// Who added them (`銀行:<name>` of the CLI user or operator).
    pub created_by: String,
}

impl From<OperatorRow> for Operator {
    fn from(o: OperatorRow) -> Operator {
        Operator {
            id: o.id,
            name: o.name,
            roles: o.roles,
            active: o.active,
            password_failures: o.password_failures,
            created_at: o.created_at,
            created_by: o.created_by,
        }
    }
}
