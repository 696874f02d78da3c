//! パスワード変更 (BRSK002 → BRSK003): the user's own login password or
//! 確認用パスワード, with the current one, under the password policy. A wrong
//! current password counts toward that password's lockout, like any other
//! failure; the change and its 操作履歴 row commit together.

use shomei_core::{Actor, FailureOutcome, ServiceState};
use shomei_store::AuditEntry;

use crate::{FAILED, OK, ServiceError, Shomei, password};

pub const OP_PASSWORD_CHANGE: &str = "パスワード変更";

/// Which password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordKind {
    Login,
    Confirm,
}

impl PasswordKind {
    pub fn label(self) -> &'static str {
        match self {
            PasswordKind::Login => "ログインパスワード",
            PasswordKind::Confirm => "確認用パスワード",
        }
    }
}

/// Why nothing changed: a message for the screen.
pub type PasswordChangeError = crate::ActionError;

impl Shomei {
    /// Changes the acting user's own password of `kind`.
    pub async fn change_password(
        &self,
        actor: &Actor,
        kind: PasswordKind,
        current: &str,
        new: &str,
        again: &str,
        client: &str,
    ) -> Result<(), PasswordChangeError> {
        let now = self.now();
        let confirm = kind == PasswordKind::Confirm;
        let Some(me) = self.store.user(actor.user_id).await? else {
            return Err(PasswordChangeError::Refused(
                "利用者情報が見つかりません。".into(),
            ));
        };
        let current_hash = if confirm {
            &me.confirm_hash
        } else {
            &me.login_hash
        };
        let other_hash = if confirm {
            &me.login_hash
        } else {
            &me.confirm_hash
        };
        // Decided before the transaction (Argon2 takes its time), the
        // counters again inside it.
        let problem = if current.is_empty() {
            Some(format!("現在の{}を入力してください。", kind.label()))
        } else if new != again {
            Some("新しいパスワードと新しいパスワード（確認用）が一致しません。".into())
        } else if let Err(v) = self
            .settings
            .password_policy()
            .check(new, actor.login_id.as_str())
        {
            Some(v.message_ja())
        } else {
            None
        };
        let current_ok = problem.is_none() && password::verify(current_hash, current).await?;
        let problem = problem.or_else(|| {
            (current_ok && new == current)
                .then(|| "現在と同じパスワードは設定できません。".to_owned())
        });
        let same_as_other =
            problem.is_none() && current_ok && password::verify(other_hash, new).await?;
        let new_hash = if problem.is_none() && current_ok && !same_as_other {
            Some(password::hash(new).await?)
        } else {
            None
        };

        let mut tx = self.store.begin().await?;
        let Some(mut me) = tx.user(actor.user_id).await? else {
            return Err(PasswordChangeError::Refused(
                "利用者情報が見つかりません。".into(),
            ));
        };
        let entry = |result: &'static str, detail: String| (result, detail);
        let mut rows: Vec<(&'static str, String)> = Vec::new();
        let outcome: Result<(), String> = if confirm && !me.counters.confirm_open() {
            rows.push(entry(
                FAILED,
                format!("{}: 確認用パスワード利用停止中", kind.label()),
            ));
            Err("確認用パスワードが利用停止となっているため、変更できません。マスターユーザまたは管理者ユーザにご連絡ください。".into())
        } else if let Some(p) = problem {
            rows.push(entry(FAILED, format!("{}: {p}", kind.label())));
            Err(p)
        } else if !current_ok {
            let stopped = if confirm {
                me.counters.on_confirm_failure(&self.settings.lockout()) == FailureOutcome::Stopped
            } else {
                matches!(
                    me.counters.on_login_failure(now, &self.settings.lockout()),
                    FailureOutcome::Stopped | FailureOutcome::TemporarilyLocked { .. }
                )
            };
            tx.save_counters(me.id, &me.counters).await?;
            rows.push(entry(FAILED, format!("現在の{}誤り", kind.label())));
            if stopped {
                let state = if confirm {
                    ServiceState::ConfirmStopped
                } else if me.counters.login_stopped {
                    ServiceState::LoginStopped
                } else {
                    ServiceState::LoginTemporarilyLocked
                };
                rows.push(entry(OK, state.label().to_owned()));
            }
            Err(format!("現在の{}が正しくありません。", kind.label()))
        } else if same_as_other {
            let p = "ログインパスワードと確認用パスワードには異なるパスワードを設定してください。"
                .to_owned();
            rows.push(entry(FAILED, format!("{}: {p}", kind.label())));
            Err(p)
        } else if let Some(hash) = &new_hash {
            tx.set_password_hash(me.id, confirm, hash).await?;
            if confirm {
                me.counters.on_confirm_success();
            } else {
                me.counters.on_login_success();
            }
            tx.save_counters(me.id, &me.counters).await?;
            rows.push(entry(OK, kind.label().to_owned()));
            Ok(())
        } else {
            return Err(ServiceError::Invariant("password change without a hash").into());
        };
        for (i, (result, detail)) in rows.iter().enumerate() {
            let operation = if i == 0 {
                OP_PASSWORD_CHANGE
            } else {
                // The lock that this failure caused.
                detail.as_str()
            };
            tx.audit(&AuditEntry {
                at: now,
                company_id: Some(actor.company_id),
                actor_user_id: Some(actor.user_id),
                actor_login_id: actor.login_id.as_str(),
                operation,
                target_login_id: actor.login_id.as_str(),
                result,
                detail: if i == 0 {
                    detail
                } else {
                    "連続したパスワード誤りによる"
                },
                client_addr: client,
            })
            .await?;
        }
        tx.commit().await?;
        outcome.map_err(PasswordChangeError::Refused)
    }
}
