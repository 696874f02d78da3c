//! The help desk's password reset (a customer phones: "I forgot my
//! password"): one of the user's passwords, the login password or the
//! 確認用パスワード, replaced by a one-time initial password shown once to
//! the operator, which the portal makes the user change at the next login
//! (the same mark as the initial passwords of a new user). The lock of that
//! password is released with it.
//!
//! The operator's own password, the change and its 操作履歴 row commit in
//! one transaction. A マスター's passwords need another operator's approval
//! (the four-eyes rule): the help desk submits the request
//! ([`PasswordReset::Submitted`]); the approval that commits it makes the
//! one-time password, shown once to that approver only
//! ([`Shomei::reset_master_in`]): the requester never holds a credential
//! for the account they asked about.

use crate::Db as _;
use shomei_core::{CompanyId, LoginId, Operation, OperatorRole, Role, SecurityCounters};
use shomei_store::Tx;

use crate::operations::approvals::{
    ApprovalChange, ApprovalError, ApprovalRefusal, InvalidField, Submitted,
};
use crate::operations::console_access::OperatorContext;
use crate::operations::helpdesk::{HelpDeskTasks, NO_SUCH_USER, NOT_HELPDESK};
use crate::operations::operator::{PreparedPasswords, temporary_password};
use crate::{ActionError, PasswordKind, ServiceError, Shomei};

/// The console's note on a マスター's reset: it goes through approval.
pub const MASTER_NEEDS_APPROVAL: &str = "マスターユーザのパスワード初期化には、他のオペレーターによる承認が必要です。申請すると、承認したオペレーターの画面に初期パスワードが一度だけ表示されます。";

/// What the reset did: the one-time password, to be read to the user once.
#[derive(Debug, Clone)]
pub struct PasswordResetDone {
    /// ログインID of the user.
    pub login_id: LoginId,
    /// 利用者名.
    pub name: String,
    /// The user's company.
    pub company: String,
    /// Which password was reset.
    pub kind: PasswordKind,
    /// Shown once on the result screen; never stored nor logged.
    pub initial_password: String,
}

/// A reset done at once, or (a マスター's) submitted for approval.
#[derive(Debug, Clone)]
pub enum PasswordReset {
    /// Reset now: the new password, shown once.
    Done(PasswordResetDone),
    /// A マスター's: submitted for another operator's approval.
    Submitted(Submitted),
}

/// Which of a マスター's passwords a request resets, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasterPasswords {
    /// The ログインパスワード.
    Login,
    /// The 確認用パスワード.
    Confirm,
    /// Both (the CLI's `shomei user reset-password`).
    Both,
}

impl MasterPasswords {
    /// The value stored in the request (and sent by forms).
    pub fn code(self) -> &'static str {
        match self {
            MasterPasswords::Login => "login",
            MasterPasswords::Confirm => "confirm",
            MasterPasswords::Both => "both",
        }
    }

    /// The passwords a stored value names, if any.
    pub fn from_code(s: &str) -> Option<Self> {
        [Self::Login, Self::Confirm, Self::Both]
            .into_iter()
            .find(|k| k.code() == s)
    }

    /// The passwords' names as the screens write them.
    pub fn label(self) -> &'static str {
        match self {
            MasterPasswords::Login => PasswordKind::Login.label(),
            MasterPasswords::Confirm => PasswordKind::Confirm.label(),
            MasterPasswords::Both => "ログインパスワード・確認用パスワード",
        }
    }

    fn login(self) -> bool {
        self != MasterPasswords::Confirm
    }

    fn confirm(self) -> bool {
        self != MasterPasswords::Login
    }
}

impl From<PasswordKind> for MasterPasswords {
    fn from(k: PasswordKind) -> Self {
        match k {
            PasswordKind::Login => MasterPasswords::Login,
            PasswordKind::Confirm => MasterPasswords::Confirm,
        }
    }
}

/// The one-time passwords of a committed マスター reset: shown once to the
/// operator whose approval committed it.
#[derive(Debug, Clone)]
pub struct MasterResetDone {
    /// The マスター's company.
    pub company_id: CompanyId,
    /// The マスター's ログインID.
    pub login_id: String,
    /// Which passwords were reset.
    pub passwords: MasterPasswords,
    /// The new ログインパスワード, when it was reset.
    pub login: Option<String>,
    /// The new 確認用パスワード, when it was reset.
    pub confirm: Option<String>,
}

/// The locks a reset of these passwords releases.
fn release(c: &mut SecurityCounters, login: bool, confirm: bool) {
    if confirm {
        c.confirm_failures = 0;
        c.confirm_stopped = false;
    }
    if login {
        c.login_failures = 0;
        c.login_locked_until = None;
        c.login_stopped = false;
    }
}

impl HelpDeskTasks<'_> {
    /// Resets the user's password of `kind` after the operator's own
    /// `password`: a new initial password, to be changed at the next login.
    /// A マスター's is submitted for approval instead.
    pub async fn reset_password(
        &self,
        login_id: &str,
        kind: PasswordKind,
        password: &str,
    ) -> Result<PasswordReset, ActionError> {
        let d = self.user(login_id).await?;
        let login = d.user.login_id.clone();
        let target = login.as_str();
        let detail = format!("{}（ヘルプデスク）", kind.label());
        if d.user.role == Role::Master {
            return self
                .request_master_reset(
                    d.user.company_id,
                    &d.user.login_id,
                    &d.company,
                    kind,
                    password,
                )
                .await;
        }
        let initial = temporary_password();
        let hash = self.svc.hasher.hash(&initial).await?;
        let ctx = OperatorContext {
            op: Operation::PasswordReset,
            target,
            client: self.client,
        };
        let (mut tx, me) = self.svc.confirm_operator(self.op, password, ctx).await?;
        if !me.operator.roles.has(OperatorRole::HelpDesk) {
            // The role was taken away since this request began.
            return Err(ActionError::Refused(NOT_HELPDESK.into()));
        }
        let Some(mut u) = tx.user_by_login_id(&login).await.db()? else {
            return Err(ActionError::Refused(NO_SUCH_USER.into()));
        };
        if u.role == Role::Master {
            // Made a マスター since the check above: through approval.
            drop(tx);
            return self
                .request_master_reset(u.company_id, &u.login_id, &d.company, kind, password)
                .await;
        }
        let confirm = kind == PasswordKind::Confirm;
        tx.set_initial_password(u.id, confirm, &hash).await.db()?;
        release(&mut u.counters, !confirm, confirm);
        tx.save_counters(u.id, &u.counters).await.db()?;
        let actor = me.operator.name.actor();
        tx.audit(
            &self
                .svc
                .entry(Operation::PasswordReset)
                .by_name(Some(u.company_id), &actor)
                .target(target)
                .detail(&detail)
                .client(self.client),
        )
        .await
        .db()?;
        tx.commit().await.db()?;
        Ok(PasswordReset::Done(PasswordResetDone {
            login_id: login,
            name: d.user.name,
            company: d.company,
            kind,
            initial_password: initial,
        }))
    }

    /// A マスター's reset: the request submitted (its 承認申請 row), nothing
    /// reset yet.
    async fn request_master_reset(
        &self,
        company_id: shomei_core::CompanyId,
        login_id: &shomei_core::LoginId,
        company: &str,
        kind: PasswordKind,
        password: &str,
    ) -> Result<PasswordReset, ActionError> {
        let change = ApprovalChange::ResetMasterPasswords {
            company_id: company_id.0,
            company: company.to_owned(),
            login_id: login_id.to_string(),
            passwords: MasterPasswords::from(kind).code().to_owned(),
        };
        Ok(PasswordReset::Submitted(
            self.svc
                .submit_approval(self.op, change, password, self.client)
                .await?,
        ))
    }
}

impl Shomei {
    /// The checks of a マスター's reset against the data as it is now: the
    /// user is there, still a マスター of that company.
    pub(crate) async fn check_master_reset(
        &self,
        tx: &mut Tx,
        company_id: i64,
        login_id: &str,
        passwords: &str,
    ) -> Result<(), ApprovalError> {
        MasterPasswords::from_code(passwords)
            .ok_or(ApprovalRefusal::Invalid(InvalidField::Passwords))?;
        let user = match LoginId::parse(login_id) {
            Some(l) => tx.user_by_login_id(&l).await.db()?,
            None => None,
        };
        match user {
            None => Err(ApprovalRefusal::NoSuchUser(login_id.to_owned()).into()),
            Some(u) if u.company_id.0 != company_id || u.role != Role::Master => {
                Err(ApprovalRefusal::NotMaster(login_id.to_owned()).into())
            }
            Some(_) => Ok(()),
        }
    }

    /// A マスター's reset in the transaction of its last approval (or a
    /// break-glass): the passwords replaced by the prepared one-time ones,
    /// to be changed at the next login, their locks released, the
    /// パスワード初期化 row by `actor` in the company's chain.
    pub(crate) async fn reset_master_in(
        &self,
        tx: &mut Tx,
        login_id: &str,
        passwords: &str,
        p: PreparedPasswords,
        actor: &str,
        client: &str,
    ) -> Result<MasterResetDone, ServiceError> {
        let which = MasterPasswords::from_code(passwords).ok_or(ServiceError::Invariant(
            "a checked reset names no passwords",
        ))?;
        let u = match LoginId::parse(login_id) {
            Some(l) => tx.user_by_login_id(&l).await.db()?,
            None => None,
        };
        let Some(mut u) = u else {
            return Err(ServiceError::Invariant("a checked マスター is gone"));
        };
        match which {
            MasterPasswords::Both => {
                tx.reset_passwords(u.id, &p.login_hash, &p.confirm_hash, true)
                    .await
                    .db()?;
            }
            MasterPasswords::Login => tx
                .set_initial_password(u.id, false, &p.login_hash)
                .await
                .db()?,
            MasterPasswords::Confirm => tx
                .set_initial_password(u.id, true, &p.confirm_hash)
                .await
                .db()?,
        }
        release(&mut u.counters, which.login(), which.confirm());
        tx.save_counters(u.id, &u.counters).await.db()?;
        let detail = format!("{}（マスター、承認済み）", which.label());
        tx.audit(
            &self
                .entry(Operation::PasswordReset)
                .by_name(Some(u.company_id), actor)
                .target(u.login_id.as_str())
                .detail(&detail)
                .client(client),
        )
        .await
        .db()?;
        Ok(MasterResetDone {
            company_id: u.company_id,
            login_id: u.login_id.to_string(),
            passwords: which,
            login: which.login().then_some(p.temp.login),
            confirm: which.confirm().then_some(p.temp.confirm),
        })
    }
}
