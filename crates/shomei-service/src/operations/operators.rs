//! The bank's operators, who log in to the operator console with a
//! certificate of the operator profile: adding one (a key, a certificate and
//! a PKCS#12 whose password is shown once), listing them, revoking one, and
//! finding the operator behind a certificate presented to the console.
//!
//! Revoking an operator puts their certificates in force as revoked the way
//! a customer's revocation does: the rows, the revocation log entry and the
//! 操作履歴 row commit together, then the revocation set takes it (here, or
//! in the running server through the log).

use crate::Db as _;
use shomei_core::records::OperatorCertRow;
use shomei_core::{OperatorName, OperatorRoles, Serial};
use shomei_store::AuditEntry;
use time::OffsetDateTime;

use crate::certificates::revocation::PendingRevocation;
use crate::certificates::revset::Listed;
use crate::operations::console_access::{OperatorContext, operator_row};
use crate::operations::operator_add::operator_email;
use crate::{Revocation, ServiceError, Shomei};
use shomei_core::{Operation, Outcome};

/// RFC 5280 CRLReason cessationOfOperation: the operator no longer works
/// the console.
const REASON_CESSATION: u8 = 5;

/// Why an operator command did nothing (English: the CLI and logs).
#[derive(Debug, thiserror::Error)]
pub enum OperatorAdminError {
    /// The name does not fit the rule.
    #[error("invalid operator name {0:?}: 1-32 half-width letters, digits, '.', '-' or '_'")]
    BadName(String),
    /// The roles given are not known (or none).
    #[error(
        "invalid roles {0:?}: one or more of helpdesk, business-admin, audit, operations-admin, separated by ','"
    )]
    BadRoles(String),
    /// The e-mail address is not one.
    #[error("invalid e-mail address {0:?}")]
    BadEmail(String),
    /// The name is another operator's.
    #[error("an operator named {0} already exists")]
    NameTaken(String),
    /// No operator has this name.
    #[error("no operator named {0}")]
    NoSuchOperator(String),
    /// The operator is revoked already.
    #[error("operator {0} is already revoked")]
    AlreadyRevoked(String),
    /// Our own trouble, not the operator's.
    #[error(transparent)]
    Internal(#[from] ServiceError),
}

impl From<crate::DatabaseError> for OperatorAdminError {
    fn from(e: crate::DatabaseError) -> Self {
        Self::Internal(e.into())
    }
}

/// A new operator: their PKCS#12 file and the two passwords, each shown
/// once and kept nowhere but as a hash.
#[derive(Debug, Clone)]
pub struct NewOperator {
    /// The operator's name (their login).
    pub name: OperatorName,
    /// The console roles the operator holds.
    pub roles: OperatorRoles,
    /// The serial number of the operator's certificate.
    pub serial: Serial,
    /// End of the certificate's validity.
    pub not_after: OffsetDateTime,
    /// The key and certificate (with the CA chain), encrypted with
    /// `p12_password`.
    pub p12: Vec<u8>,
    /// The PKCS#12 file's password.
    pub p12_password: String,
    /// The operator's own password, asked again on every change in the
    /// console.
    pub confirm_password: String,
}

/// An operator with their newest certificate (`shomei operator list`).
#[derive(Debug, Clone)]
pub struct OperatorListRow {
    /// The operator.
    pub operator: crate::Operator,
    /// Their newest certificate, if any.
    pub newest: Option<OperatorCertRow>,
}

/// The operator behind a certificate that opened the console.
#[derive(Debug, Clone)]
pub struct ConsoleOperator {
    /// The operator.
    pub operator: crate::Operator,
    /// Their password's hash, compared at the console's login and before
    /// every change; never handed out.
    pub(crate) confirm_hash: String,
    /// The serial number of the certificate presented.
    pub serial: Serial,
    /// End of that certificate's validity.
    pub not_after: OffsetDateTime,
}

/// A new operator's name, roles and e-mail address, checked.
pub(crate) fn operator_fields<'a>(
    name: &str,
    roles: &str,
    email: &'a str,
) -> Result<(OperatorName, OperatorRoles, &'a str), OperatorAdminError> {
    let name_ok =
        OperatorName::parse(name).ok_or_else(|| OperatorAdminError::BadName(name.into()))?;
    let roles_ok =
        OperatorRoles::parse(roles).ok_or_else(|| OperatorAdminError::BadRoles(roles.into()))?;
    let email = operator_email(email).ok_or_else(|| OperatorAdminError::BadEmail(email.into()))?;
    Ok((name_ok, roles_ok, email))
}

impl Shomei {
    fn operator_audit<'a>(
        &self,
        actor: &'a str,
        operation: Operation,
        target: &'a str,
        detail: &'a str,
    ) -> AuditEntry<'a> {
        let ctx = OperatorContext {
            op: operation,
            target,
            client: "operator-cli",
        };
        operator_row(self, actor, ctx, Outcome::Succeeded, detail)
    }

    /// `shomei operator add`: the operator, their certificate of the
    /// operator profile and its 操作履歴 row, in one transaction, at once
    /// (the first operator, a break-glass; later ones go through approval).
    pub async fn add_operator(
        &self,
        name: &str,
        roles: &str,
        by: &str,
    ) -> Result<NewOperator, OperatorAdminError> {
        self.add_operator_with(name, roles, "", &format!("銀行:{by}"), "operator-cli")
            .await
    }

    /// [`Shomei::add_operator`] with the operator's e-mail address, by
    /// `actor` (as 操作履歴 names them) from `client`.
    pub async fn add_operator_with(
        &self,
        name: &str,
        roles: &str,
        email: &str,
        actor: &str,
        client: &str,
    ) -> Result<NewOperator, OperatorAdminError> {
        let (name_ok, roles_ok, email) = operator_fields(name, roles, email)?;
        let prepared = self.prepare_operator(&name_ok, &roles_ok).await?;
        let mut tx = self.store.begin().await.db()?;
        let added = self
            .insert_operator_in(&mut tx, prepared, email, actor, client)
            .await?;
        tx.commit().await.db()?;
        Ok(added)
    }

    /// `shomei operator list`: every operator with their newest certificate.
    pub async fn operator_list(&self) -> Result<Vec<OperatorListRow>, OperatorAdminError> {
        let mut out = Vec::new();
        for operator in self.store.operators().await.db()? {
            let newest = self
                .store
                .operator_certificates(operator.id)
                .await
                .db()?
                .into_iter()
                .next();
            out.push(OperatorListRow {
                operator: operator.into(),
                newest,
            });
        }
        Ok(out)
    }

    /// `shomei operator revoke`: every certificate of the operator still in
    /// force is revoked and the operator can no longer open the console;
    /// returns the serials revoked. In force here at once, and in every
    /// running server from its next look at the revocation log.
    pub async fn revoke_operator(
        &self,
        name: &str,
        by: &str,
    ) -> Result<Vec<Serial>, OperatorAdminError> {
        let name_ok =
            OperatorName::parse(name).ok_or_else(|| OperatorAdminError::BadName(name.into()))?;
        let now = self.now();
        let actor = format!("銀行:{by}");
        let mut tx = self.store.begin().await.db()?;
        let Some(op) = tx.operator_by_name(&name_ok).await.db()? else {
            return Err(OperatorAdminError::NoSuchOperator(name_ok.to_string()));
        };
        if !op.active {
            return Err(OperatorAdminError::AlreadyRevoked(name_ok.to_string()));
        }
        let revoked = tx
            .revoke_operator(op.id, now, REASON_CESSATION)
            .await
            .db()?;
        let serials: Vec<String> = revoked.iter().map(|r| r.serial.to_string()).collect();
        let detail = format!("シリアル番号 {}", serials.join("、"));
        tx.audit(&self.operator_audit(
            &actor,
            Operation::OperatorRevoke,
            name_ok.as_str(),
            &detail,
        ))
        .await
        .db()?;
        PendingRevocation::of_operator(&revoked, now, REASON_CESSATION)
            .commit(self, tx)
            .await?;
        Ok(revoked.into_iter().map(|r| r.serial).collect())
    }

    /// The operator whose certificate this is, when it may open the console
    /// now: the operator is active and the certificate in force (not
    /// revoked, within its validity). `None` otherwise.
    pub async fn console_operator(
        &self,
        serial: &Serial,
    ) -> Result<Option<ConsoleOperator>, ServiceError> {
        if self.is_revoked(serial.as_bytes()) {
            return Ok(None);
        }
        let Some((operator, cert)) = self.store.operator_by_certificate(serial).await.db()? else {
            return Ok(None);
        };
        let now = self.now();
        let in_force = operator.active
            && cert.revoked_at.is_none()
            && cert.not_before <= now
            && now < cert.not_after;
        Ok(in_force.then_some(ConsoleOperator {
            confirm_hash: operator.confirm_hash.clone(),
            operator: operator.into(),
            not_after: cert.not_after,
            serial: cert.serial,
        }))
    }

    /// Puts the revoked operator certificates into a revocation set being
    /// loaded (at start, beside the customers').
    pub(crate) async fn revoked_operator_certificates(
        &self,
    ) -> Result<Vec<(Serial, Revocation, Listed)>, ServiceError> {
        Ok(self
            .store
            .revoked_operator_certificates()
            .await
            .db()?
            .into_iter()
            .filter_map(|(c, reason)| {
                Some((
                    c.serial.clone(),
                    Revocation {
                        at: c.revoked_at?,
                        reason: (reason != 0).then_some(reason),
                        invalidity: None,
                    },
                    Listed {
                        scope: c.crl_scope,
                        not_after: c.not_after.unix_timestamp(),
                    },
                ))
            })
            .collect())
    }
}
