//! Shomei's domain: the types and rules of the guide, pure.
//!
//! Nothing here does I/O, async, SQL, HTTP or cryptography. Every question the
//! product asks ("what state is this certificate in?", "may this user revoke
//! that one?", "is this user locked out?") is answered here, once.

pub mod authority;
pub mod cert_state;
pub mod crl_scope;
pub mod error;
pub mod format;
pub mod ids;
pub mod lockout;
pub mod operation;
pub mod operator;
pub mod password_policy;
pub mod records;

pub use authority::{Actor, Refusal};
pub use cert_state::{CertRecord, CertState, RevocationReason};
pub use crl_scope::{CrlScope, MAX_CRL_PARTITIONS};
pub use error::{BUSY_MESSAGE, Problem};
pub use ids::{CompanyId, LoginId, Role, Serial, Service, UserId};
pub use lockout::{FailureOutcome, LockoutPolicy, LoginGate, SecurityCounters, ServiceState};
pub use operation::{Operation, Outcome};
pub use operator::{OperatorName, OperatorRole, OperatorRoles};
pub use password_policy::{PasswordPolicy, PolicyViolation};
pub use records::{
    ApprovalVoteRow, AuditRow, AuditScope, ChainCheck, CompanyContact, CompanyRow, CompanySummary,
    OperatorCertRow, ReviewRow,
};
