//! 証明書失効: the guide's BRSK018 → BRSK019 → BRSK020.

use crate::Db as _;
use std::cmp::Ordering;

use shomei_core::Operation;
use shomei_core::authority::{self, Target};
use shomei_core::{
    Actor, CertState, LoginId, Problem, Refusal, RevocationReason, Role, Serial, UserId,
};
use shomei_store::{AuditEntry, UserRow};
use time::OffsetDateTime;

use crate::access::check::{Confirmed, Context};
use crate::certificates::revocation::PendingRevocation;
use crate::operations::approvals::{ApprovalChange, ApprovalKind};
use crate::{Manager, ServiceError, Shomei};

/// A row of 利用者一覧 (BRSK018).
#[derive(Debug, Clone)]
pub struct UserListRow {
    /// The user's id.
    pub user_id: UserId,
    /// ログインID.
    pub login_id: LoginId,
    /// 利用者名.
    pub name: String,
    /// 利用者区分.
    pub role: Role,
    /// 証明書状態 of the user's latest certificate.
    pub state: CertState,
    /// Shown only while the certificate is valid.
    pub expiry: Option<OffsetDateTime>,
}

/// 並び順 of BRSK018.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    /// By ログインID (the default).
    #[default]
    LoginId,
    /// By 利用者名.
    Name,
    /// By 利用者区分.
    Role,
    /// By 証明書状態.
    State,
    /// By 証明書有効期限 (rows without one last).
    Expiry,
}

impl SortKey {
    /// Every key, in the order the screen offers them.
    pub const ALL: [SortKey; 5] = [
        SortKey::LoginId,
        SortKey::Name,
        SortKey::Role,
        SortKey::State,
        SortKey::Expiry,
    ];

    /// The key's name on the screen.
    pub fn label(self) -> &'static str {
        match self {
            SortKey::LoginId => "ログインID",
            SortKey::Name => "利用者名",
            SortKey::Role => "利用者区分",
            SortKey::State => "証明書状態",
            SortKey::Expiry => "証明書有効期限",
        }
    }

    /// The value a form sends for this key.
    pub fn code(self) -> &'static str {
        match self {
            SortKey::LoginId => "login_id",
            SortKey::Name => "name",
            SortKey::Role => "role",
            SortKey::State => "state",
            SortKey::Expiry => "expiry",
        }
    }

    /// The key a form's value names, if any.
    pub fn from_code(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == s)
    }

    fn compare(self, a: &UserListRow, b: &UserListRow) -> Ordering {
        let primary = match self {
            SortKey::LoginId => Ordering::Equal,
            SortKey::Name => a.name.cmp(&b.name),
            SortKey::Role => a.role.cmp(&b.role),
            SortKey::State => a.state.cmp(&b.state),
            // "-" (no expiry shown) sorts after every date.
            SortKey::Expiry => match (a.expiry, b.expiry) {
                (Some(x), Some(y)) => x.cmp(&y),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            },
        };
        primary.then_with(|| a.login_id.cmp(&b.login_id))
    }
}

/// The user whose certificate BRSK019 is about to revoke.
#[derive(Debug, Clone)]
pub struct RevocationTarget {
    /// The user's id.
    pub user_id: UserId,
    /// ログインID.
    pub login_id: LoginId,
    /// 利用者名.
    pub name: String,
    /// 証明書状態 of the certificate shown.
    pub state: CertState,
    /// 証明書有効期限, shown only while the certificate is valid.
    pub expiry: Option<OffsetDateTime>,
    /// The certificate shown, so that 実行 revokes exactly it.
    pub serial: Serial,
}

/// What BRSK020 shows.
#[derive(Debug, Clone)]
pub struct RevocationDone {
    /// ログインID of the user whose certificate was revoked.
    pub login_id: LoginId,
    /// 利用者名.
    pub name: String,
    /// 証明書状態 after the revocation.
    pub state: CertState,
    /// The revoked certificate's serial number.
    pub serial: Serial,
}

/// Why a portal revocation (BRSK019) did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    /// Not allowed: who may revoke whose certificate (its message for the screen).
    #[error(transparent)]
    Refused(Refusal),
    /// A problem the user is told about (a wrong 確認用パスワード, no certificate in force, …).
    #[error(transparent)]
    Problem(Problem),
    /// Our own trouble, not the user's.
    #[error(transparent)]
    Internal(#[from] ServiceError),
}

impl From<crate::DatabaseError> for RevokeError {
    fn from(e: crate::DatabaseError) -> Self {
        RevokeError::Internal(e.into())
    }
}

fn target_of(u: &UserRow) -> Target {
    Target {
        user_id: u.id,
        company_id: u.company_id,
        role: u.role,
    }
}

impl Manager<'_> {
    /// 利用者一覧 of the actor's company, sorted. Only マスター and 管理者.
    pub async fn revocation_list(
        &self,
        key: SortKey,
        ascending: bool,
    ) -> Result<Vec<UserListRow>, RevokeError> {
        let actor = self.actor();
        let now = self.now();
        let mut rows: Vec<UserListRow> = self
            .store
            .user_summaries(actor.company_id)
            .await
            .db()?
            .into_iter()
            .map(|u| {
                let state = CertState::derive(u.cert.as_ref(), now, self.settings.renewal_window());
                UserListRow {
                    user_id: u.id,
                    login_id: u.login_id,
                    name: u.name,
                    role: u.role,
                    expiry: u.cert.filter(|_| state.shows_expiry()).map(|c| c.not_after),
                    state,
                }
            })
            .collect();
        rows.sort_by(|a, b| {
            let o = key.compare(a, b);
            if ascending { o } else { o.reverse() }
        });
        Ok(rows)
    }

    /// The 「失効 >」 step: is this selection a certificate the actor may revoke?
    pub async fn revocation_target(
        &self,
        selected: Option<i64>,
        client: &str,
    ) -> Result<RevocationTarget, RevokeError> {
        let actor = self.actor();
        let Some(selected) = selected else {
            return Err(RevokeError::Problem(Problem::NothingSelected));
        };
        let user = self.store.user(UserId(selected)).await.db()?;
        let Some(user) = user.filter(|u| u.company_id == actor.company_id) else {
            return Err(RevokeError::Refused(
                self.refuse(
                    actor,
                    Operation::CertificateRevocation,
                    "",
                    Refusal::NoSuchUser,
                    client,
                )
                .await?,
            ));
        };
        let cert = self.store.latest_cert(user.id).await.db()?;
        let state = self.cert_state(cert.as_ref().map(|c| c.record()).as_ref());
        if let Err(r) = authority::may_revoke(actor, &target_of(&user), state) {
            return Err(RevokeError::Refused(
                self.refuse(
                    actor,
                    Operation::CertificateRevocation,
                    user.login_id.as_str(),
                    r,
                    client,
                )
                .await?,
            ));
        }
        let Some(cert) = cert else {
            return Err(RevokeError::Refused(Refusal::NotRevocable(state)));
        };
        Ok(RevocationTarget {
            user_id: user.id,
            login_id: user.login_id,
            name: user.name,
            state,
            expiry: Some(cert.not_after),
            serial: cert.serial,
        })
    }
}

impl Shomei {
    /// 実行 on BRSK019: checks the actor's 確認用パスワード, then revokes the
    /// certificate shown, records it, and puts the revocation in force (the
    /// revoked set: TLS, sessions, OCSP) before returning; the CRLs follow
    /// within the second.
    pub async fn revoke_certificate(
        &self,
        actor: &Actor,
        target: UserId,
        expected_serial: &Serial,
        confirm_password: &str,
        client: &str,
    ) -> Result<RevocationDone, RevokeError> {
        let now = self.now();
        let target_login = self
            .store
            .user(target)
            .await
            .db()?
            .filter(|u| u.company_id == actor.company_id)
            .map(|u| u.login_id.to_string())
            .unwrap_or_default();
        let ctx = Context {
            op: Operation::CertificateRevocation,
            target: &target_login,
            client,
        };
        let (mut tx, Confirmed { me }) = self
            .confirm(actor, confirm_password, ctx)
            .await?
            .map_err(|r| RevokeError::Problem(r.confirm_problem()))?;
        let target_user = tx
            .user(target)
            .await
            .db()?
            .filter(|u| u.company_id == actor.company_id);
        let entry = || {
            AuditEntry::new(Operation::CertificateRevocation, now)
                .by_actor(actor)
                .client(client)
        };

        // Authority and state, decided again inside the transaction.
        let me_actor = crate::actor_of(&me);
        let Some(target_user) = target_user else {
            tx.audit(&entry().failed().detail(Refusal::NoSuchUser.message_ja()))
                .await
                .db()?;
            tx.commit().await.db()?;
            return Err(RevokeError::Refused(Refusal::NoSuchUser));
        };
        let cert = tx.latest_cert(target_user.id).await.db()?;
        let state = CertState::derive(
            cert.as_ref().map(|c| c.record()).as_ref(),
            now,
            self.settings.renewal_window(),
        );
        let same_cert = cert.as_ref().is_some_and(|c| &c.serial == expected_serial);
        let refusal = authority::may_revoke(&me_actor, &target_of(&target_user), state).err();
        if refusal.is_some() || !same_cert {
            let problem = if cert
                .as_ref()
                .is_some_and(|c| &c.serial == expected_serial && c.revoked_at.is_some())
            {
                RevokeError::Problem(Problem::AlreadyDone)
            } else if let Some(r) = refusal.filter(|r| !matches!(r, Refusal::NotRevocable(_))) {
                RevokeError::Refused(r)
            } else {
                RevokeError::Problem(Problem::Changed)
            };
            let detail = match &problem {
                RevokeError::Refused(r) => r.message_ja(),
                RevokeError::Problem(p) => p.message_ja(),
                RevokeError::Internal(_) => "",
            };
            tx.audit(&entry().target(&target_login).failed().detail(detail))
                .await
                .db()?;
            tx.commit().await.db()?;
            return Err(problem);
        }
        let reason = RevocationReason::CessationOfOperation.code();
        let revoked = match cert.as_ref().filter(|_| same_cert) {
            Some(c) => self.revoke_in(&mut tx, c, now, reason, None).await?,
            None => None,
        };
        let Some(revoked) = revoked else {
            return Err(RevokeError::Problem(Problem::AlreadyDone));
        };
        let detail = format!("シリアル番号 {expected_serial}");
        tx.audit(&entry().target(&target_login).detail(&detail))
            .await
            .db()?;
        revoked.commit(self, tx).await?;
        tracing::info!(serial = %expected_serial, target = %target_user.login_id, by = %actor.login_id, "certificate revoked");
        Ok(RevocationDone {
            login_id: target_user.login_id,
            name: target_user.name,
            state: CertState::Revoked,
            serial: expected_serial.clone(),
        })
    }
}

/// Why the bank operator's revocation was refused (English: CLI and logs).
#[derive(Debug, thiserror::Error)]
pub enum OperatorRevokeError {
    /// No user has this login ID.
    #[error("no user with login ID {0}")]
    NoSuchUser(String),
    /// The user has no certificate in force to revoke.
    #[error("{login_id} has no certificate in force (state {state})")]
    NotInForce {
        /// The user's login ID.
        login_id: String,
        /// The state of their latest certificate.
        state: &'static str,
    },
    /// The invalidity date given is later than the revocation.
    #[error("the invalidity date must not be after the revocation time")]
    InvalidityInFuture,
    /// The bank's approval rule for a revocation on a company's behalf asks
    /// for approvals: the revocation is submitted as a request instead.
    #[error(
        "a revocation on a company's behalf needs {required} other operator(s)' approval under this bank's rule (revoke-for-company): it is submitted for approval in the operator console, or committed at once with --break-glass --break-glass-reason"
    )]
    NeedsApproval {
        /// Approvals the bank's rule asks for.
        required: u32,
    },
    /// Our own trouble, not the operator's.
    #[error(transparent)]
    Internal(#[from] ServiceError),
}

/// The console's message when the bank's rule sends a phone revocation to
/// approval.
pub fn needs_approval_ja(required: u32) -> String {
    format!(
        "企業に代わる証明書失効には、銀行の承認ルールにより{required}名の承認が必要です。申請として受け付け、ほかのオペレーターの承認後に失効します。"
    )
}

impl From<crate::DatabaseError> for OperatorRevokeError {
    fn from(e: crate::DatabaseError) -> Self {
        Self::Internal(e.into())
    }
}

/// A revocation asked for on the phone: why, since when the key is not to
/// be trusted (a compromised key), and who called.
#[derive(Debug, Clone, Copy)]
pub struct PhoneRequest<'a> {
    /// The reason recorded in the CRL and OCSP.
    pub reason: RevocationReason,
    /// Since when the key is not to be trusted (invalidityDate), if given.
    pub invalidity: Option<OffsetDateTime>,
    /// Who called (written in the 操作履歴 row).
    pub caller: &'a str,
}

/// What the operator's revocation did.
#[derive(Debug, Clone)]
pub struct OperatorRevocation {
    /// ログインID of the certificate's user.
    pub login_id: LoginId,
    /// Their company's name.
    pub company: String,
    /// The revoked certificate's serial number.
    pub serial: Serial,
    /// When it was revoked.
    pub at: OffsetDateTime,
}

impl Shomei {
    /// Revocation on a phone request (the bank operator's `shomei cert
    /// revoke`): the user's certificate in force (発行済 or 更新可) is revoked
    /// with the reason given and, for a compromised key, the invalidity
    /// date; the change and its 操作履歴 row commit together, a refusal is
    /// recorded too. A server running in another process puts it in force
    /// from its revocation log within a moment; in this process at once.
    pub async fn revoke_by_operator(
        &self,
        login_id: &LoginId,
        reason: RevocationReason,
        invalidity: Option<OffsetDateTime>,
        operator: &str,
    ) -> Result<OperatorRevocation, OperatorRevokeError> {
        let request = PhoneRequest {
            reason,
            invalidity,
            caller: "",
        };
        self.revoke_on_phone_request(login_id, &request, operator, "operator-cli")
            .await
    }

    /// As [`Shomei::revoke_by_operator`], with who called (written in the
    /// 操作履歴 row when given) and where the operator works from (the
    /// console's client address, or `operator-cli`).
    pub(crate) async fn revoke_on_phone_request(
        &self,
        login_id: &LoginId,
        request: &PhoneRequest<'_>,
        operator: &str,
        client: &str,
    ) -> Result<OperatorRevocation, OperatorRevokeError> {
        let PhoneRequest {
            invalidity, caller, ..
        } = *request;
        let caller = if caller.is_empty() {
            String::new()
        } else {
            format!(" 依頼者: {caller}")
        };
        let now = self.now();
        if invalidity.is_some_and(|t| t > now) {
            return Err(OperatorRevokeError::InvalidityInFuture);
        }
        let actor = format!("銀行:{operator}");
        let mut tx = self.store.begin().await.db()?;
        let Some(user) = tx.user_by_login_id(login_id).await.db()? else {
            return Err(OperatorRevokeError::NoSuchUser(login_id.to_string()));
        };
        let company = tx.company(user.company_id).await.db()?;
        let cert = tx.latest_cert(user.id).await.db()?;
        let state = CertState::derive(
            cert.as_ref().map(|c| c.record()).as_ref(),
            now,
            self.settings.renewal_window(),
        );
        let e = AuditEntry::new(Operation::CertificateRevocation, now)
            .by_name(Some(user.company_id), &actor)
            .target(login_id.as_str())
            .client(client);
        let cert = match cert {
            Some(c) if matches!(state, CertState::Issued | CertState::Renewable) => c,
            _ => {
                let detail = format!(
                    "電話受付による失効: 証明書が有効ではありません（{}）{caller}",
                    state.label()
                );
                tx.audit(&e.clone().failed().detail(&detail)).await.db()?;
                tx.commit().await.db()?;
                return Err(OperatorRevokeError::NotInForce {
                    login_id: login_id.to_string(),
                    state: state.label(),
                });
            }
        };
        let (required, _) = self
            .rule_in(&mut tx, ApprovalKind::RevokeForCompany)
            .await?;
        if required > 0 {
            let detail =
                format!("電話受付による失効: 承認が必要です（必要な承認 {required}名）{caller}");
            tx.audit(&e.failed().detail(&detail)).await.db()?;
            tx.commit().await.db()?;
            return Err(OperatorRevokeError::NeedsApproval { required });
        }
        let Some(revoked) = self
            .phone_revoke_in(&mut tx, &user, &cert, request, &actor, client, now)
            .await?
        else {
            return Err(OperatorRevokeError::NotInForce {
                login_id: login_id.to_string(),
                state: CertState::Revoked.label(),
            });
        };
        revoked.commit(self, tx).await?;
        tracing::info!(serial = %cert.serial, target = %login_id, by = %actor, "certificate revoked by the bank operator");
        Ok(OperatorRevocation {
            login_id: login_id.clone(),
            company: company.map(|c| c.name).unwrap_or_default(),
            serial: cert.serial,
            at: now,
        })
    }
}

impl Shomei {
    /// The phone revocation itself in `tx`: the certificate revoked with
    /// the reason and invalidity date, and its 証明書失効 row by `actor`
    /// (naming who called); `None` when it was revoked already. The
    /// caller commits it (putting it in force).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn phone_revoke_in(
        &self,
        tx: &mut shomei_store::Tx,
        user: &UserRow,
        cert: &shomei_store::CertRow,
        request: &PhoneRequest<'_>,
        actor: &str,
        client: &str,
        now: OffsetDateTime,
    ) -> Result<Option<PendingRevocation>, ServiceError> {
        let Some(revoked) = self
            .revoke_in(tx, cert, now, request.reason.code(), request.invalidity)
            .await?
        else {
            return Ok(None);
        };
        let caller = if request.caller.is_empty() {
            String::new()
        } else {
            format!(" 依頼者: {}", request.caller)
        };
        let detail = format!(
            "電話受付による失効: シリアル番号 {}（理由 {}）{caller}",
            cert.serial,
            request.reason.code()
        );
        tx.audit(
            &AuditEntry::new(Operation::CertificateRevocation, now)
                .by_name(Some(user.company_id), actor)
                .target(user.login_id.as_str())
                .client(client)
                .detail(&detail),
        )
        .await
        .db()?;
        Ok(Some(revoked))
    }

    /// The request that revokes `login_id`'s certificate in force on a
    /// phone request, for the approval the bank's rule asks
    /// ([`OperatorRevokeError::NeedsApproval`]).
    pub async fn phone_revocation_change(
        &self,
        login_id: &LoginId,
        request: &PhoneRequest<'_>,
    ) -> Result<ApprovalChange, OperatorRevokeError> {
        let Some((user, company)) = self.store.user_with_company(login_id).await.db()? else {
            return Err(OperatorRevokeError::NoSuchUser(login_id.to_string()));
        };
        let now = self.now();
        let cert = self.store.latest_cert(user.id).await.db()?;
        let state = CertState::derive(
            cert.as_ref().map(|c| c.record()).as_ref(),
            now,
            self.settings.renewal_window(),
        );
        let cert = match cert {
            Some(c) if matches!(state, CertState::Issued | CertState::Renewable) => c,
            _ => {
                return Err(OperatorRevokeError::NotInForce {
                    login_id: login_id.to_string(),
                    state: state.label(),
                });
            }
        };
        if request.invalidity.is_some_and(|t| t > now) {
            return Err(OperatorRevokeError::InvalidityInFuture);
        }
        Ok(ApprovalChange::RevokeCertificate {
            company_id: user.company_id.0,
            company,
            login_id: login_id.to_string(),
            serial: cert.serial.to_string(),
            reason: request.reason.code(),
            invalidity: request.invalidity.map(OffsetDateTime::unix_timestamp),
            invalidity_shown: request.invalidity.map_or_else(String::new, |t| {
                shomei_core::format::jp_datetime(t, self.settings.display_offset())
            }),
            caller: request.caller.to_owned(),
        })
    }
}
