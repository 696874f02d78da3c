//! The one way a revocation is written and takes effect: a use case writes
//! it in its transaction ([`Shomei::revoke_in`]), adds its 操作履歴 row, and
//! commits through the [`PendingRevocation`] it got back, which puts the
//! revocation in force here (the revoked set: TLS, sessions, OCSP; the CRLs
//! within the second) as soon as the commit succeeds. A revocation that
//! never commits is never in force; one that commits is never left out.

use crate::Db as _;
use shomei_core::Serial;
use shomei_store::{CertRow, RevokedOperatorCert, Tx};
use time::OffsetDateTime;

use crate::certificates::revset::Listed;
use crate::{Result, Revocation, Shomei};

/// Revocations written in a transaction that has not committed yet.
/// Committing them ([`PendingRevocation::commit`]) is what puts them in
/// force in this process; other servers read them from the revocation log.
#[must_use = "a revocation takes effect only when its transaction commits through it"]
#[derive(Debug, Default)]
pub(crate) struct PendingRevocation {
    revoked: Vec<(Serial, Revocation, Listed)>,
}

impl PendingRevocation {
    /// `cert`, revoked at `at` for `reason` (RFC 5280 code; 0 lists no
    /// reason), the key untrusted since `invalidity` when known.
    pub(crate) fn of_certificate(
        cert: &CertRow,
        at: OffsetDateTime,
        reason: u8,
        invalidity: Option<OffsetDateTime>,
    ) -> Self {
        let mut p = Self::default();
        p.push(
            cert.serial.clone(),
            at,
            reason,
            invalidity,
            Listed {
                scope: cert.crl_scope,
                not_after: cert.not_after.unix_timestamp(),
            },
        );
        p
    }

    /// An operator's certificates, revoked together at `at` for `reason`.
    pub(crate) fn of_operator(
        certs: &[RevokedOperatorCert],
        at: OffsetDateTime,
        reason: u8,
    ) -> Self {
        let mut p = Self::default();
        for c in certs {
            p.push(
                c.serial.clone(),
                at,
                reason,
                None,
                Listed {
                    scope: c.crl_scope,
                    not_after: c.not_after.unix_timestamp(),
                },
            );
        }
        p
    }

    fn push(
        &mut self,
        serial: Serial,
        at: OffsetDateTime,
        reason: u8,
        invalidity: Option<OffsetDateTime>,
        listed: Listed,
    ) {
        let r = Revocation {
            at,
            reason: Some(reason).filter(|c| *c != 0),
            invalidity,
        };
        self.revoked.push((serial, r, listed));
    }

    /// Adds the revocations of `other` (several written in one transaction).
    pub(crate) fn and(mut self, other: PendingRevocation) -> Self {
        self.revoked.extend(other.revoked);
        self
    }

    /// Commits `tx`, in which these revocations and their 操作履歴 rows were
    /// written, then puts them in force here before returning.
    pub(crate) async fn commit(self, svc: &Shomei, tx: Tx) -> Result<()> {
        tx.commit().await.db()?;
        self.committed(svc);
        Ok(())
    }

    /// For a store call that wrote and committed them in one statement (the
    /// renewal's `Store::supersede`): puts them in force here now.
    pub(crate) fn committed(self, svc: &Shomei) {
        svc.put_in_force(&self);
    }
}

impl Shomei {
    /// Revokes `cert` in `tx` (if nobody revoked it first: `None` then,
    /// and nothing written). Commit through what it returns.
    pub(crate) async fn revoke_in(
        &self,
        tx: &mut Tx,
        cert: &CertRow,
        at: OffsetDateTime,
        reason: u8,
        invalidity: Option<OffsetDateTime>,
    ) -> Result<Option<PendingRevocation>> {
        if !tx
            .revoke_cert_with(&cert.serial, at, reason, invalidity)
            .await
            .db()?
        {
            return Ok(None);
        }
        Ok(Some(PendingRevocation::of_certificate(
            cert, at, reason, invalidity,
        )))
    }

    /// Puts committed revocations in force in this process: the one place a
    /// use case's revocation takes effect (the revocation log's watch puts
    /// other processes' in force one by one, `mark_revoked_with`).
    fn put_in_force(&self, p: &PendingRevocation) {
        for (serial, r, listed) in &p.revoked {
            self.mark_revoked_with(serial.as_bytes(), *r, *listed);
        }
    }
}
