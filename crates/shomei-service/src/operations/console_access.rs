//! The operator's own password in the console: the login that opens a
//! console session (the certificate says who; the password that it is them
//! at the keyboard), and the re-confirmation every change asks for, like
//! the customers' 確認用パスワード.
//!
//! A check is two steps: the hash on the bounded pool, outside any
//! transaction ([`Shomei::check_operator_password`]), then the settlement in
//! the transaction that carries the change
//! ([`Shomei::settle_operator_password`]), which re-reads the operator with
//! their row locked, counts a failure (stopping the password at the
//! customers' `confirm_stop_after`) or resets the count, and alone makes the
//! [`OperatorConfirmed`] a change needs.

use crate::Db as _;
use shomei_store::{AuditEntry, OperatorRow, Tx};

use crate::operations::operators::ConsoleOperator;
use crate::{ActionError, Result, Shomei};
use shomei_core::{Operation, Outcome};

/// The console's message for a wrong operator password.
pub const OPERATOR_PASSWORD_WRONG: &str =
    "パスワードが正しくありません。連続して誤るとパスワードの利用が停止されます。";
/// The console's message for a stopped operator password.
pub const OPERATOR_PASSWORD_STOPPED: &str = "パスワードの利用が停止されているため、この操作は行えません。運用管理者に停止の解除を依頼してください。";
/// The console's message for an operator who lost the console meanwhile.
pub const OPERATOR_NOT_IN_FORCE: &str =
    "このオペレーター証明書は使用できません。運用管理者に連絡してください。";

/// A password hashed and compared on the pool, not yet settled.
#[derive(Debug)]
pub(crate) struct OperatorCheck {
    operator_id: i64,
    /// `None`: not compared (the password was stopped already).
    right: Option<bool>,
}

/// Proof that the acting operator's own password was checked and found
/// right, in the transaction that carries the change: only
/// [`Shomei::settle_operator_password`] makes one.
#[derive(Debug)]
pub(crate) struct OperatorConfirmed {
    /// The acting operator, read inside that transaction.
    pub operator: OperatorRow,
}

/// Where a check's 操作履歴 row goes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OperatorContext<'a> {
    /// The change asked for (its 操作履歴 operation).
    pub op: Operation,
    pub target: &'a str,
    pub client: &'a str,
}

/// A 操作履歴 row of the bank's own (no company) by an operator.
pub(crate) fn operator_row<'a>(
    s: &Shomei,
    actor: &'a str,
    ctx: OperatorContext<'a>,
    result: Outcome,
    detail: &'a str,
) -> AuditEntry<'a> {
    s.entry(ctx.op)
        .by_name(None, actor)
        .target(ctx.target)
        .outcome(result)
        .detail(detail)
        .client(ctx.client)
}

impl Shomei {
    fn operator_stop_after(&self) -> u32 {
        self.settings.confirm_stop_after
    }

    /// Step one: `password` against the operator's hash on the bounded pool
    /// (busy at once when it is full); nothing is compared for a password
    /// already stopped.
    pub(crate) async fn check_operator_password(
        &self,
        op: &ConsoleOperator,
        password: &str,
    ) -> Result<OperatorCheck> {
        let operator_id = op.operator.id;
        if op.operator.password_failures >= self.operator_stop_after() {
            return Ok(OperatorCheck {
                operator_id,
                right: None,
            });
        }
        let place = self.hasher.place()?;
        let right = self
            .hasher
            .verify(&place, &op.confirm_hash, password)
            .await?;
        Ok(OperatorCheck {
            operator_id,
            right: Some(right),
        })
    }

    /// Step two, in the change's transaction: the operator re-read with
    /// their row locked; a failure counted with its 操作履歴 row (the caller
    /// commits it and shows the message), a success resets the count. A
    /// password stopped meanwhile refuses even when it was right.
    pub(crate) async fn settle_operator_password(
        &self,
        tx: &mut Tx,
        check: &OperatorCheck,
        ctx: OperatorContext<'_>,
    ) -> Result<std::result::Result<OperatorConfirmed, &'static str>> {
        let Some(me) = tx.operator_for_update(check.operator_id).await.db()? else {
            return Ok(Err(OPERATOR_NOT_IN_FORCE));
        };
        let actor = me.name.actor();
        if !me.active {
            return Ok(Err(OPERATOR_NOT_IN_FORCE));
        }
        let limit = self.operator_stop_after();
        if me.password_failures >= limit || check.right.is_none() {
            tx.audit(&operator_row(
                self,
                &actor,
                ctx,
                Outcome::Failed,
                "パスワード利用停止中",
            ))
            .await
            .db()?;
            return Ok(Err(OPERATOR_PASSWORD_STOPPED));
        }
        if check.right != Some(true) {
            let failures = me.password_failures + 1;
            tx.set_operator_failures(me.id, failures).await.db()?;
            let stopped = failures >= limit;
            let detail = if stopped {
                "パスワード誤り（利用停止）"
            } else {
                "パスワード誤り"
            };
            tx.audit(&operator_row(self, &actor, ctx, Outcome::Failed, detail))
                .await
                .db()?;
            return Ok(Err(if stopped {
                OPERATOR_PASSWORD_STOPPED
            } else {
                OPERATOR_PASSWORD_WRONG
            }));
        }
        if me.password_failures > 0 {
            tx.set_operator_failures(me.id, 0).await.db()?;
        }
        Ok(Ok(OperatorConfirmed { operator: me }))
    }

    /// Both steps for a change: the confirmation and the open transaction
    /// to carry the change in, or the refusal (its row committed).
    pub(crate) async fn confirm_operator(
        &self,
        op: &ConsoleOperator,
        password: &str,
        ctx: OperatorContext<'_>,
    ) -> std::result::Result<(Tx, OperatorConfirmed), ActionError> {
        let check = self.check_operator_password(op, password).await?;
        self.pauses
            .at(crate::pause::PausePoint::Begin(ctx.op))
            .await;
        let mut tx = self.store.begin().await.db()?;
        match self.settle_operator_password(&mut tx, &check, ctx).await? {
            Ok(c) => Ok((tx, c)),
            Err(message) => {
                tx.commit().await.db()?;
                Err(ActionError::Refused(message.into()))
            }
        }
    }

    /// The console's login: the operator's certificate opened the
    /// listener; their own password opens a session. One 操作履歴 row
    /// either way.
    pub async fn console_login(
        &self,
        op: &ConsoleOperator,
        password: &str,
        client: &str,
    ) -> std::result::Result<(), ActionError> {
        let ctx = OperatorContext {
            op: Operation::ConsoleLogin,
            target: op.operator.name.as_str(),
            client,
        };
        let (mut tx, me) = self.confirm_operator(op, password, ctx).await?;
        let actor = me.operator.name.actor();
        let detail = format!("シリアル番号 {}", op.serial);
        tx.audit(&operator_row(
            self,
            &actor,
            ctx,
            Outcome::Succeeded,
            &detail,
        ))
        .await
        .db()?;
        tx.commit().await.db()?;
        Ok(())
    }

    /// `shomei operator unlock`: an operator whose password was stopped by
    /// wrong passwords may try again.
    pub async fn unlock_operator(
        &self,
        name: &str,
        by: &str,
    ) -> std::result::Result<(), crate::OperatorAdminError> {
        use crate::OperatorAdminError;
        let name_ok = shomei_core::OperatorName::parse(name)
            .ok_or_else(|| OperatorAdminError::BadName(name.into()))?;
        let actor = format!("銀行:{by}");
        let mut tx = self.store.begin().await.db()?;
        let Some(op) = tx.operator_by_name(&name_ok).await.db()? else {
            return Err(OperatorAdminError::NoSuchOperator(name_ok.to_string()));
        };
        tx.set_operator_failures(op.id, 0).await.db()?;
        let detail = format!("誤り回数 {}", op.password_failures);
        let ctx = OperatorContext {
            op: Operation::OperatorUnlock,
            target: name_ok.as_str(),
            client: "operator-cli",
        };
        tx.audit(&operator_row(
            self,
            &actor,
            ctx,
            Outcome::Succeeded,
            &detail,
        ))
        .await
        .db()?;
        tx.commit().await.db()?;
        Ok(())
    }
}

impl Shomei {
    /// The door of a role's console tasks: `Ok` for an operator holding
    /// `role`; otherwise `message`, with a 失敗 row of `operation` naming
    /// the roles they hold (one rule for every role's capability).
    pub(crate) async fn require_operator_role(
        &self,
        op: &ConsoleOperator,
        role: shomei_core::OperatorRole,
        operation: Operation,
        message: &str,
        client: &str,
    ) -> std::result::Result<(), ActionError> {
        if op.operator.roles.has(role) {
            return Ok(());
        }
        let actor = op.operator.name.actor();
        let ctx = OperatorContext {
            op: operation,
            target: "",
            client,
        };
        let detail = format!("権限なし（役割: {}）", op.operator.roles.labels());
        let mut tx = self.store.begin().await.db()?;
        tx.audit(&operator_row(self, &actor, ctx, Outcome::Failed, &detail))
            .await
            .db()?;
        tx.commit().await.db()?;
        Err(ActionError::Refused(message.into()))
    }
}
