//! The bank's operation of the service: the operator's tasks, backups and
//! the 操作履歴 export, e-mail notices, metrics and the demo company.

pub(crate) mod approvals;
pub(crate) mod audit_export;
pub(crate) mod auditor;
pub(crate) mod backup;
pub(crate) mod company_service;
pub(crate) mod console_access;
pub(crate) mod demo;
pub(crate) mod helpdesk;
pub(crate) mod helpdesk_reset;
pub(crate) mod metrics;
pub(crate) mod notices;
pub(crate) mod operator;
pub(crate) mod operator_add;
pub(crate) mod operators;
pub(crate) mod records;
pub(crate) mod shell_approvals;
