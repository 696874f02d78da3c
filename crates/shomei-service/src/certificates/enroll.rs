//! Issuance: 証明書発行 (EST simpleenroll, login ID + login password) and
//! 証明書更新 (simplereenroll, authenticated by the current certificate).
//! The CSR only contributes its public key; everything else in the
//! certificate is our profile.

use crate::Db as _;
use shomei_core::Operation;
use shomei_core::{CertState, CrlScope, RevocationReason, Serial, UserId};
use shomei_pki::ClientSubject;
use shomei_pki::csr::{CsrError, check_csr};
use shomei_store::{AuditEntry, NewCert, Tx, UserRow};

use crate::access::login::{CheckedAs, PasswordCheck};
use crate::certificates::revocation::PendingRevocation;
use crate::{Result, ServiceError, Shomei};

/// A certificate just issued.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The user it was issued to.
    pub user_id: UserId,
    /// That user's ログインID.
    pub login_id: String,
    /// The certificate's serial number.
    pub serial: Serial,
    /// The certificate itself (DER).
    pub der: Vec<u8>,
    /// The end of its validity.
    pub not_after: time::OffsetDateTime,
}

/// A certificate signed and not yet stored.
struct Signed {
    issued: Issued,
    not_before: time::OffsetDateTime,
    issued_at: time::OffsetDateTime,
    crl_scope: CrlScope,
}

impl Signed {
    fn row(&self) -> NewCert<'_> {
        NewCert {
            user_id: self.issued.user_id,
            serial: &self.issued.serial,
            not_before: self.not_before,
            not_after: self.issued.not_after,
            der: &self.issued.der,
            issued_at: self.issued_at,
            crl_scope: self.crl_scope,
        }
    }
}

/// Why an enrollment did not issue.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    /// Wrong ID or password, locked or stopped: one answer for all.
    #[error("login ID or login password is wrong, or the login password is locked")]
    Unauthorized,
    /// The user already has a certificate in force that is not yet renewable.
    #[error(
        "a valid certificate has already been issued for this login ID: ask a master or administrator user to revoke it first (証明書失効), then issue again"
    )]
    AlreadyIssued,
    /// The certificate in force is 更新可: a renewal, not a new enrollment.
    #[error(
        "the current certificate is in its renewal period (更新可): renew it with the certificate instead (shomei-cert renew)"
    )]
    UseRenewal,
    /// The certificate presented for renewal may not be renewed.
    #[error(
        "the client certificate is not valid for renewal: it is revoked, expired, unknown or not the user's current one"
    )]
    NotRenewable,
    /// Passwords the bank or an administrator set are changed (BRSK002)
    /// before anything else, EST included.
    #[error(
        "the temporary passwords must be changed first: log in to the portal and change them (パスワード変更)"
    )]
    PasswordChangePending,
    /// The CSR cannot be read or asks for what we do not issue.
    #[error("{0}")]
    BadCsr(#[from] CsrError),
    /// Our own trouble, not the user's.
    #[error(transparent)]
    Internal(#[from] ServiceError),
}

impl From<crate::DatabaseError> for EnrollError {
    fn from(e: crate::DatabaseError) -> Self {
        EnrollError::Internal(e.into())
    }
}

impl From<shomei_pki::PkiError> for EnrollError {
    fn from(e: shomei_pki::PkiError) -> Self {
        EnrollError::Internal(e.into())
    }
}

/// A row of the user about their own certificate.
fn entry<'a>(
    u: &'a UserRow,
    op: Operation,
    client: &'a str,
    at: time::OffsetDateTime,
) -> AuditEntry<'a> {
    AuditEntry::new(op, at)
        .by_user(u)
        .target(u.login_id.as_str())
        .client(client)
}

impl Shomei {
    /// 証明書発行 with login ID and login password (simpleenroll). Allowed in
    /// 未発行, 有効期限切れ and 失効済; a wrong password counts toward the
    /// same lockout as ログイン.
    pub async fn enroll(
        &self,
        login_id: &str,
        pw: &str,
        csr_der: &[u8],
        client: &str,
    ) -> std::result::Result<Issued, EnrollError> {
        let r = self.enroll_once(login_id, pw, csr_der, client).await;
        self.count_issuance(&r, false);
        r
    }

    async fn enroll_once(
        &self,
        login_id: &str,
        pw: &str,
        csr_der: &[u8],
        client: &str,
    ) -> std::result::Result<Issued, EnrollError> {
        let as_ = CheckedAs {
            op: Operation::CertificateIssue,
            client: client.to_owned(),
            returning: false,
        };
        let (mut tx, check) = self.check_login_password(login_id, pw, None, &as_).await?;
        let user = match check {
            PasswordCheck::Passed(u) => u,
            PasswordCheck::Refused => {
                tx.commit().await.db()?;
                return Err(EnrollError::Unauthorized);
            }
            PasswordCheck::Throttled => {
                tx.commit().await.db()?;
                return Err(EnrollError::Unauthorized);
            }
        };
        let now = self.now();
        if user.must_change_login || user.must_change_confirm {
            let detail = "初回のパスワード変更前";
            tx.audit(
                &entry(&user, Operation::CertificateIssue, client, now)
                    .failed()
                    .detail(detail),
            )
            .await
            .db()?;
            tx.commit().await.db()?;
            return Err(EnrollError::PasswordChangePending);
        }
        let csr = match check_csr(csr_der) {
            Ok(c) => c,
            Err(e) => {
                let detail = e.to_string();
                tx.audit(
                    &entry(&user, Operation::CertificateIssue, client, now)
                        .failed()
                        .detail(&detail),
                )
                .await
                .db()?;
                tx.commit().await.db()?;
                return Err(e.into());
            }
        };
        let latest = tx.latest_cert(user.id).await.db()?;
        let state = CertState::derive(
            latest.as_ref().map(|c| c.record()).as_ref(),
            now,
            self.settings.renewal_window(),
        );
        let refusal = match state {
            CertState::Unissued | CertState::Expired | CertState::Revoked => None,
            CertState::Issued => Some(EnrollError::AlreadyIssued),
            CertState::Renewable => Some(EnrollError::UseRenewal),
        };
        if let Some(r) = refusal {
            let detail = format!("証明書状態 {}", state.label());
            tx.audit(
                &entry(&user, Operation::CertificateIssue, client, now)
                    .failed()
                    .detail(&detail),
            )
            .await
            .db()?;
            tx.commit().await.db()?;
            return Err(r);
        }
        let company = tx
            .company(user.company_id)
            .await
            .db()?
            .map(|c| c.name)
            .unwrap_or_default();
        let issued = self
            .issue_in(&mut tx, &user, &company, &csr.spki, now)
            .await?;
        let detail = format!("シリアル番号 {} ({})", issued.serial, csr.kind.label());
        tx.audit(&entry(&user, Operation::CertificateIssue, client, now).detail(&detail))
            .await
            .db()?;
        tx.commit().await.db()?;
        tracing::info!(serial = %issued.serial, login_id = %user.login_id, key = %csr.kind.label(), "certificate issued");
        Ok(issued)
    }

    /// 証明書更新 (simplereenroll): the TLS layer verified `presented` (chain,
    /// validity, not revoked); here it must also be the user's current
    /// certificate. The new certificate is issued and the old one revoked as
    /// superseded in one transaction.
    pub async fn renew(
        &self,
        presented: &Serial,
        csr_der: &[u8],
        client: &str,
    ) -> std::result::Result<Issued, EnrollError> {
        self.require_current_view()?;
        let r = self.renew_once(presented, csr_der, client).await;
        self.count_issuance(&r, true);
        r
    }

    fn count_issuance(&self, r: &std::result::Result<Issued, EnrollError>, renewal: bool) {
        match r {
            Ok(i) => {
                self.metrics().issued(renewal);
                self.ocsp_presign_issued(&i.serial, i.not_after);
            }
            Err(EnrollError::Internal(_)) => {}
            Err(_) => self.metrics().issuance_refused(),
        }
    }

    async fn renew_once(
        &self,
        presented: &Serial,
        csr_der: &[u8],
        client: &str,
    ) -> std::result::Result<Issued, EnrollError> {
        let now = self.now();
        // One read: the certificate, its user, whether it is the newest, the
        // company's name. Nothing is locked: the write revokes only a
        // certificate still unrevoked, which decides (see `Store::supersede`).
        let Some(r) = self.store.renewal(presented).await.db()? else {
            return Err(EnrollError::NotRenewable);
        };
        let (old, user, current) = (r.cert, r.user, r.is_latest);
        let refused =
            |state: CertState| format!("シリアル番号 {presented} 証明書状態 {}", state.label());
        let state = CertState::derive(Some(&old.record()), now, self.settings.renewal_window());
        let usable = current
            && matches!(state, CertState::Issued | CertState::Renewable)
            && !self.is_revoked(presented.as_bytes());
        if !usable || user.counters.admin_stopped {
            let detail = refused(state);
            self.store
                .audit(
                    &entry(&user, Operation::CertificateRenewal, client, now)
                        .failed()
                        .detail(&detail),
                )
                .await
                .db()?;
            return Err(EnrollError::NotRenewable);
        }
        let csr = match check_csr(csr_der) {
            Ok(c) => c,
            Err(e) => {
                let detail = e.to_string();
                self.store
                    .audit(
                        &entry(&user, Operation::CertificateRenewal, client, now)
                            .failed()
                            .detail(&detail),
                    )
                    .await
                    .db()?;
                return Err(e.into());
            }
        };
        let signed = self.sign(&user, &r.company_name, &csr.spki, now)?;
        let issued = &signed.issued;
        let detail = format!(
            "シリアル番号 {} → {} ({})",
            presented,
            issued.serial,
            csr.kind.label()
        );
        let audit = entry(&user, Operation::CertificateRenewal, client, now).detail(&detail);
        let superseded = RevocationReason::Superseded.code();
        let revoked = PendingRevocation::of_certificate(&old, now, superseded, None);
        if !self
            .store
            .supersede(&signed.row(), presented, now, superseded, &audit)
            .await
            .db()?
        {
            // Revoked by a transaction that committed after the read.
            let detail = refused(CertState::Revoked);
            self.store
                .audit(
                    &entry(&user, Operation::CertificateRenewal, client, now)
                        .failed()
                        .detail(&detail),
                )
                .await
                .db()?;
            return Err(EnrollError::NotRenewable);
        }
        revoked.committed(self);
        tracing::info!(old = %presented, new = %issued.serial, login_id = %user.login_id, "certificate renewed");
        Ok(signed.issued)
    }

    async fn issue_in(
        &self,
        tx: &mut Tx,
        user: &UserRow,
        company: &str,
        spki: &[u8],
        now: time::OffsetDateTime,
    ) -> std::result::Result<Issued, EnrollError> {
        let signed = self.sign(user, company, spki, now)?;
        tx.insert_cert(&signed.row()).await.db()?;
        Ok(signed.issued)
    }

    /// Signs the user's new certificate (not yet stored).
    fn sign(
        &self,
        user: &UserRow,
        company: &str,
        spki: &[u8],
        now: time::OffsetDateTime,
    ) -> std::result::Result<Signed, EnrollError> {
        let cert = self.ca.issue_client_spki(
            spki,
            &ClientSubject {
                login_id: user.login_id.as_str(),
                company_name: company,
            },
            now,
            now + self.settings.cert_validity(),
        )?;
        let serial = Serial::from_bytes(&cert.serial).ok_or(ServiceError::Invariant(
            "issued serial is not a valid serial",
        ))?;
        Ok(Signed {
            not_before: cert.not_before,
            issued_at: now,
            crl_scope: cert.crl_scope,
            issued: Issued {
                user_id: user.id,
                login_id: user.login_id.to_string(),
                serial,
                der: cert.der,
                not_after: cert.not_after,
            },
        })
    }

    /// The state of the certificate with this serial, as `shomei-cert show`
    /// reports it; None if we never issued it.
    pub async fn cert_state_of(&self, serial: &Serial) -> Result<Option<CertState>> {
        let Some(c) = self.store.cert_by_serial(serial).await.db()? else {
            return Ok(None);
        };
        Ok(Some(CertState::derive(
            Some(&c.record()),
            self.now(),
            self.settings.renewal_window(),
        )))
    }

    /// The user a verified client certificate belongs to, if the certificate
    /// is still good (not revoked, and the user not stopped).
    pub(crate) async fn user_of_cert(&self, serial: &Serial) -> Result<Option<UserRow>> {
        if self.is_revoked(serial.as_bytes()) {
            return Ok(None);
        }
        let Some(c) = self.store.cert_by_serial(serial).await.db()? else {
            return Ok(None);
        };
        if c.revoked_at.is_some() {
            return Ok(None);
        }
        Ok(self
            .store
            .user(c.user_id)
            .await
            .db()?
            .filter(|u| !u.counters.admin_stopped))
    }

    /// The certificate method's second factor: the login password of the
    /// user the certificate names. Same counters and 操作履歴 as ログイン.
    pub async fn login_certificate(
        &self,
        serial: &Serial,
        pw: &str,
        client: &str,
    ) -> Result<crate::LoginOutcome> {
        if self.require_current_view().is_err() {
            self.count_login(
                &Ok(crate::LoginOutcome::Refused(
                    shomei_core::Problem::ViewStale,
                )),
                crate::operations::metrics::LoginMethod::Certificate,
            );
            return Ok(crate::LoginOutcome::Refused(
                shomei_core::Problem::ViewStale,
            ));
        }
        let r = match self.user_of_cert(serial).await? {
            None => Ok(crate::LoginOutcome::Refused(
                shomei_core::Problem::LoginFailed,
            )),
            Some(user) => {
                let detail = format!("電子証明書方式 シリアル番号 {serial}");
                self.login_with(user.login_id.as_str(), pw, Some(user.id), detail, client)
                    .await
            }
        };
        self.count_login(&r, crate::operations::metrics::LoginMethod::Certificate);
        r
    }
}
