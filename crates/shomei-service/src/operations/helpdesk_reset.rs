//! The help desk's password reset (a customer phones: "I forgot my
//! password"): one of the user's passwords, the login password or the
//! 確認用パスワード, replaced by a one-time initial password shown once to
//! the operator, which the portal makes the user change at the next login
//! (the same mark as the initial passwords of a new user). The lock of that
//! password is released with it.
//!
//! The operator's own password, the change and its 操作履歴 row commit in
//! one transaction. A マスター's passwords are refused here: the issue's
//! four-eyes rule says resetting them needs another operator's approval,
//! which the help desk cannot ask for yet (see [`MASTER_NEEDS_APPROVAL`]).

use shomei_core::{LoginId, Operation, OperatorRole, Outcome, Role};

use crate::operations::console_access::{OperatorContext, operator_row};
use crate::operations::helpdesk::{HelpDeskTasks, NO_SUCH_USER, NOT_HELPDESK};
use crate::operations::operator::temporary_password;
use crate::{ActionError, PasswordKind};

/// The console's message for a マスター's password reset.
pub const MASTER_NEEDS_APPROVAL: &str = "マスターユーザのパスワード初期化には、他のオペレーターによる承認が必要です。ヘルプデスクの画面からは初期化できません。";

/// What the reset did: the one-time password, to be read to the user once.
#[derive(Debug, Clone)]
pub struct PasswordResetDone {
    pub login_id: LoginId,
    pub name: String,
    pub company: String,
    pub kind: PasswordKind,
    /// Shown once on the result screen; never stored nor logged.
    pub initial_password: String,
}

impl HelpDeskTasks<'_> {
    /// Resets the user's password of `kind` after the operator's own
    /// `password`: a new initial password, to be changed at the next login.
    pub async fn reset_password(
        &self,
        login_id: &str,
        kind: PasswordKind,
        password: &str,
    ) -> Result<PasswordResetDone, ActionError> {
        let d = self.user(login_id).await?;
        let login = d.user.login_id.clone();
        let target = login.as_str();
        let detail = format!("{}（ヘルプデスク）", kind.label());
        if d.user.role == Role::Master {
            // Four-eyes approval goes here once requests can be submitted.
            return self.refuse_master(d.user.company_id, target, &detail).await;
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
        let Some(mut u) = tx.user_by_login_id(&login).await? else {
            return Err(ActionError::Refused(NO_SUCH_USER.into()));
        };
        if u.role == Role::Master {
            // Made a マスター since the check above.
            drop(tx);
            return self.refuse_master(u.company_id, target, &detail).await;
        }
        let confirm = kind == PasswordKind::Confirm;
        tx.set_initial_password(u.id, confirm, &hash).await?;
        if confirm {
            u.counters.confirm_failures = 0;
            u.counters.confirm_stopped = false;
        } else {
            u.counters.login_failures = 0;
            u.counters.login_locked_until = None;
            u.counters.login_stopped = false;
        }
        tx.save_counters(u.id, &u.counters).await?;
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
        .await?;
        tx.commit().await?;
        Ok(PasswordResetDone {
            login_id: login,
            name: d.user.name,
            company: d.company,
            kind,
            initial_password: initial,
        })
    }

    /// A マスター's reset refused, its 失敗 row in the company's chain.
    async fn refuse_master<T>(
        &self,
        company: shomei_core::CompanyId,
        target: &str,
        detail: &str,
    ) -> Result<T, ActionError> {
        let actor = self.op.operator.name.actor();
        let ctx = OperatorContext {
            op: Operation::PasswordReset,
            target,
            client: self.client,
        };
        let detail = format!("{detail}: マスターユーザは承認が必要");
        let mut tx = self.svc.store.begin().await?;
        tx.audit(
            &operator_row(self.svc, &actor, ctx, Outcome::Failed, &detail)
                .by_name(Some(company), &actor),
        )
        .await?;
        tx.commit().await?;
        Err(ActionError::Refused(MASTER_NEEDS_APPROVAL.into()))
    }
}
