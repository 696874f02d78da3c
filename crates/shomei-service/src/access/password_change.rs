//! パスワード変更 (BRSK002 → BRSK003): the user's own login password or
//! 確認用パスワード, with the current one, under the password policy. A wrong
//! current password counts toward that password's lockout, like any other
//! failure; the change and its 操作履歴 row commit together.

use crate::Db as _;
use shomei_core::Operation;
use shomei_core::{Actor, Problem};
use shomei_store::AuditEntry;

use crate::access::check::{Confirmed, Context, OwnRefusal};
use crate::{ServiceError, Shomei};

/// Which password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordKind {
    /// ログインパスワード, asked at every login.
    Login,
    /// 確認用パスワード, asked before a change is carried out.
    Confirm,
}

impl PasswordKind {
    /// The password's name as the screens write it.
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
        let Some(me) = self.store.user(actor.user_id).await.db()? else {
            return Err(PasswordChangeError::Refused(
                "利用者情報が見つかりません。".into(),
            ));
        };
        let other_hash = if confirm {
            &me.login_hash
        } else {
            &me.confirm_hash
        };
        let row = AuditEntry::new(Operation::PasswordChange, now)
            .by_actor(actor)
            .target(actor.login_id.as_str())
            .client(client);
        // What the form alone shows wrong is refused before any password is
        // checked.
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
        if let Some(p) = problem {
            let mut tx = self.store.begin().await.db()?;
            let detail = format!("{}: {p}", kind.label());
            tx.audit(&row.failed().detail(&detail)).await.db()?;
            tx.commit().await.db()?;
            return Err(PasswordChangeError::Refused(p));
        }

        let ctx = Context {
            op: Operation::PasswordChange,
            target: actor.login_id.as_str(),
            client,
        };
        let refusal = |r: OwnRefusal| {
            PasswordChangeError::Refused(match (r, kind) {
                (OwnRefusal::TooManyAtOnce, _) => Problem::TooManyAtOnce.message_ja().into(),
                (OwnRefusal::Closed, PasswordKind::Confirm) => "確認用パスワードが利用停止となっているため、変更できません。マスターユーザまたは管理者ユーザにご連絡ください。".into(),
                (OwnRefusal::Closed, PasswordKind::Login) => "ログインパスワードの利用が停止されているため、変更できません。マスターユーザまたは管理者ユーザにご連絡ください。".into(),
                (OwnRefusal::Wrong { .. }, _) => format!("現在の{}が正しくありません。", kind.label()),
            })
        };
        let claim = self.claim_own(actor, kind, ctx).await?.map_err(refusal)?;
        let current_ok = self.verify_claimed(&claim, current).await?;
        // The new password's own checks and hash, on the claim's place.
        let problem = if !current_ok {
            None
        } else if new == current {
            Some("現在と同じパスワードは設定できません。".to_owned())
        } else if self.hasher.verify(&claim.place, other_hash, new).await? {
            Some(
                "ログインパスワードと確認用パスワードには異なるパスワードを設定してください。"
                    .to_owned(),
            )
        } else {
            None
        };
        let new_hash = if current_ok && problem.is_none() {
            Some(self.hasher.hash_in(&claim.place, new).await?)
        } else {
            None
        };
        let (mut tx, Confirmed { me }) = self
            .settle_own(claim, current_ok, ctx)
            .await?
            .map_err(refusal)?;
        let outcome = match (problem, new_hash) {
            (Some(p), _) => {
                let detail = format!("{}: {p}", kind.label());
                tx.audit(&row.failed().detail(&detail)).await.db()?;
                Err(PasswordChangeError::Refused(p))
            }
            (None, Some(hash)) => {
                tx.set_password_hash(me.id, confirm, &hash).await.db()?;
                tx.audit(&row.detail(kind.label())).await.db()?;
                Ok(())
            }
            (None, None) => {
                return Err(ServiceError::Invariant("password change without a hash").into());
            }
        };
        tx.commit().await.db()?;
        outcome
    }
}
