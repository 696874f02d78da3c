//! The dangerous changes from the server's shell: `shomei company close`,
//! `shomei operator add`, … submit the same request the console does
//! ([`Shomei::submit_from_shell`], the requester recorded as `cli:<user>`),
//! to be approved in the console by operators; or, as break-glass
//! ([`Shomei::break_glass`]), commit at once with a reason: the change, its
//! own 操作履歴 rows, a prominent 緊急実行（承認省略） row with the reason and
//! a mail to every 運用管理者 (through the notices outbox) commit in one
//! transaction.
//!
//! Approving is never done from the shell: whoever holds the shell could
//! name any operator, so a second pair of eyes there proves nothing. The
//! shell is trusted as far as it was before approvals (it could commit
//! every change directly); break-glass keeps that power, loudly.

use crate::Db as _;
use shomei_core::{Operation, OperatorRole};

use crate::operations::approvals::{
    Applied, ApprovalChange, ApprovalError, ApprovalRefusal, Requester, Submitted,
};
use crate::operations::helpdesk_reset::MasterPasswords;
use crate::operations::operators::{NewOperator, OperatorAdminError, operator_fields};
use crate::pause::PausePoint;
use crate::{ServiceError, Shomei};

/// The client column of the shell's 操作履歴 rows.
const SHELL: &str = "operator-cli";
/// The notices' kind of a break-glass mail.
const KIND_BREAK_GLASS: &str = "break-glass";
/// The longest reason a break-glass keeps.
const REASON_MAX: usize = 200;

/// What a break-glass did: the change, and who was told.
#[derive(Debug, Clone)]
pub struct BreakGlassDone {
    /// The change as committed.
    pub applied: Applied,
    /// 運用管理者 a mail was queued for: (name, address).
    pub notified: Vec<(String, String)>,
    /// 運用管理者 without an e-mail address: not told.
    pub not_notified: Vec<String>,
}

/// The shell user as 操作履歴 names them: `cli:<user>`.
pub(crate) fn shell_actor(user: &str) -> String {
    let u: String = user
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    format!("cli:{}", if u.is_empty() { "unknown" } else { &u })
}

impl Shomei {
    /// Submits `change` from the shell: its checks as in the console, the
    /// request and its 承認申請 row by `cli:<user>` in one transaction. The
    /// rule of its kind decides who approves, in the console.
    pub async fn submit_from_shell(
        &self,
        change: ApprovalChange,
        user: &str,
    ) -> Result<Submitted, ApprovalError> {
        let actor = shell_actor(user);
        let mut tx = self.store.begin().await.db()?;
        if let Err(e) = self.check_change(&mut tx, &change).await {
            drop(tx);
            if let ApprovalError::Refused(r) = &e {
                self.record_refusal(&actor, Operation::ApprovalSubmit, "", SHELL, r)
                    .await?;
            }
            return Err(e);
        }
        let submitted = self
            .insert_request_in(&mut tx, &change, Requester::Shell(&actor), &actor, SHELL)
            .await?;
        tx.commit().await.db()?;
        Ok(submitted)
    }

    /// Commits `change` at once without approval, for `reason`: the change
    /// and its rows, the 緊急実行（承認省略） row naming the reason and who
    /// was told, and a mail to every active 運用管理者 with an address, in
    /// one transaction (a revocation it makes is in force once it commits).
    pub async fn break_glass(
        &self,
        change: ApprovalChange,
        user: &str,
        reason: &str,
    ) -> Result<BreakGlassDone, ApprovalError> {
        let actor = shell_actor(user);
        let target = change.kind().code();
        let reason = reason.trim();
        if reason.is_empty()
            || reason.chars().count() > REASON_MAX
            || reason.chars().any(char::is_control)
        {
            let r = ApprovalRefusal::ReasonMissing;
            self.record_refusal(&actor, Operation::BreakGlass, target, SHELL, &r)
                .await?;
            return Err(r.into());
        }
        self.check_change_now(&change, &actor, Operation::BreakGlass, target, SHELL)
            .await?;
        let material = self.material_for(&change).await?;
        let now = self.now();
        let summary = change.summary();
        let mut tx = self.store.begin().await.db()?;
        // Checked again where it commits (the data may have moved).
        self.check_change(&mut tx, &change).await?;
        let (applied, revoked) = self
            .apply_in(&mut tx, &change, material, &actor, SHELL, now)
            .await?;
        let admins = tx
            .operators_with_role(OperatorRole::OperationsAdmin)
            .await
            .db()?;
        let (with, without): (Vec<_>, Vec<_>) =
            admins.into_iter().partition(|a| !a.email.is_empty());
        let offset = self.settings.display_offset();
        let subject = format!(
            "【{}】緊急実行（承認省略）のお知らせ",
            self.settings.bank_name
        );
        let body = format!(
            "運用管理者各位\n\nサーバーのシェルから、承認を省略して次の変更が実行されました。\n\n\
             変更: {summary}\n実行者: {actor}\n日時: {}\n理由: {reason}\n\n\
             操作履歴（{}）で内容をご確認ください。心当たりのない場合は、ただちに調査してください。\n\n{}\n",
            shomei_core::format::jp_datetime(now, offset),
            Operation::BreakGlass.label(),
            self.settings.bank_name
        );
        let key = format!("{}:{actor}", now.unix_timestamp_nanos());
        for a in &with {
            tx.add_operator_notice(a.id, KIND_BREAK_GLASS, &key, &subject, &body, now)
                .await
                .db()?;
        }
        let notified: Vec<(String, String)> = with
            .into_iter()
            .map(|a| (a.name.to_string(), a.email))
            .collect();
        let not_notified: Vec<String> = without.into_iter().map(|a| a.name.to_string()).collect();
        let detail = format!(
            "{summary} 理由: {reason} 通知した運用管理者: {} 通知できなかった運用管理者（メールアドレスなし）: {}",
            if notified.is_empty() {
                "なし".to_owned()
            } else {
                notified
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join("、")
            },
            if not_notified.is_empty() {
                "なし".to_owned()
            } else {
                not_notified.join("、")
            }
        );
        self.step_row_in(
            &mut tx,
            &actor,
            Operation::BreakGlass,
            target,
            SHELL,
            &detail,
        )
        .await?;
        revoked.commit(self, tx).await?;
        Ok(BreakGlassDone {
            applied,
            notified,
            not_notified,
        })
    }
}

/// Why the first operator was not added (English: the CLI).
#[derive(Debug, thiserror::Error)]
pub enum FirstOperatorError {
    /// There is an operator already.
    #[error(
        "an operator exists already (the first one is made only while there is none): use the operator console, where a new operator is submitted and approved (or --break-glass)"
    )]
    NotFirst,
    /// The first operator would not be a 運用管理者.
    #[error(
        "the first operator must hold the operations-admin role: they and a second 運用管理者 add the others through approval"
    )]
    NotOperationsAdmin,
    /// The operator's fields, or our own trouble.
    #[error(transparent)]
    Refused(#[from] OperatorAdminError),
}

impl Shomei {
    /// How many operators there are (revoked ones too).
    pub async fn operator_count(&self) -> Result<i64, ServiceError> {
        Ok(self.store.operator_count().await.db()?)
    }

    /// The bootstrap on the server's shell: the first operator, a
    /// 運用管理者, added at once, only while the database has none (checked
    /// in the transaction that adds them, which keeps every other writer
    /// of operators out until it commits).
    pub async fn add_first_operator(
        &self,
        name: &str,
        roles: &str,
        email: &str,
        user: &str,
    ) -> Result<NewOperator, FirstOperatorError> {
        let (name, roles, email) = operator_fields(name, roles, email)?;
        if !roles.has(OperatorRole::OperationsAdmin) {
            return Err(FirstOperatorError::NotOperationsAdmin);
        }
        let prepared = self
            .prepare_operator(&name, &roles)
            .await
            .map_err(OperatorAdminError::from)?;
        self.pauses
            .at(PausePoint::Begin(Operation::OperatorAdd))
            .await;
        let mut tx = self
            .store
            .begin()
            .await
            .db()
            .map_err(OperatorAdminError::from)?;
        // Counted with every other writer of operators kept out until this
        // commits: of two bootstraps at once, the second counts the first.
        let count = tx
            .operator_count_locked()
            .await
            .db()
            .map_err(OperatorAdminError::from)?;
        self.pauses
            .at(PausePoint::InTransaction(Operation::OperatorAdd))
            .await;
        if count > 0 {
            return Err(FirstOperatorError::NotFirst);
        }
        let actor = shell_actor(user);
        let added = self
            .insert_operator_in(&mut tx, prepared, email, &actor, SHELL)
            .await?;
        tx.commit().await.db().map_err(OperatorAdminError::from)?;
        Ok(added)
    }

    /// The request that resets a マスター's two passwords (`shomei user
    /// reset-password`); `None` when the user is not a マスター (their reset
    /// needs no approval).
    pub async fn master_reset_change(
        &self,
        login_id: &shomei_core::LoginId,
    ) -> Result<Option<ApprovalChange>, ServiceError> {
        let Some((u, company)) = self.store.user_with_company(login_id).await.db()? else {
            return Ok(None);
        };
        Ok(
            (u.role == shomei_core::Role::Master).then(|| ApprovalChange::ResetMasterPasswords {
                company_id: u.company_id.0,
                company,
                login_id: u.login_id.to_string(),
                passwords: MasterPasswords::Both.code().to_owned(),
            }),
        )
    }
}
