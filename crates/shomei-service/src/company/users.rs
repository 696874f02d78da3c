//! 利用者情報の管理 (BRSK011 list → BRSK012 登録 / BRSK014 変更 / BRSK015
//! 削除 → BRSK013 result): マスター and 管理者 users manage the company's
//! users. A 管理者 cannot create, edit or delete a マスター user; the portal
//! never creates a マスター (the bank does) and nobody deletes the last one;
//! nobody deletes themselves. Login IDs are unique across the bank. A new
//! user gets the initial passwords the administrator sets and must change
//! both at the first login. Deleting a user revokes their certificate.
//! Every change and its 操作履歴 row commit together, confirmed with the
//! administrator's 確認用パスワード.

use crate::Db as _;
use shomei_core::Operation;
use shomei_core::authority::{self, Target};
use shomei_core::{Actor, CertState, LoginId, RevocationReason, Role, UserId};
use shomei_store::{AuditEntry, NewUser, Tx, UserRow};

use crate::Manager;
use crate::access::check::Context;

/// Why nothing changed: a message for the screen.
pub type UserAdminError = crate::ActionError;

fn refused(m: impl Into<String>) -> UserAdminError {
    UserAdminError::Refused(m.into())
}

/// What the administrator enters for a user.
#[derive(Debug, Clone, Default)]
pub struct UserForm {
    /// ログインID as typed.
    pub login_id: String,
    /// 利用者名 as typed.
    pub name: String,
    /// "admin" or "general" (the portal never makes a マスター).
    pub role: String,
    /// The user's e-mail address, where notices go.
    pub email: String,
    /// Initial passwords (登録 only).
    pub login_password: String,
    /// Initial 確認用パスワード (登録 only).
    pub confirm_password: String,
}

/// Checks the fields every form has.
fn check_fields(f: &UserForm, current_role: Option<Role>) -> Result<Role, String> {
    let name = f.name.trim();
    if name.is_empty() || name.chars().count() > 40 || name.chars().any(char::is_control) {
        return Err("利用者名は1文字以上40文字以内で入力してください。".into());
    }
    let role = match (f.role.as_str(), current_role) {
        ("admin", _) => Role::Admin,
        ("general", _) => Role::General,
        ("master", Some(Role::Master)) => Role::Master,
        _ => return Err("利用者区分を選択してください。".into()),
    };
    let e = f.email.trim();
    let at = e.find('@');
    if e.len() > 254
        || !e.is_ascii()
        || e.contains(char::is_whitespace)
        || at.is_none_or(|i| i == 0 || !e[i + 1..].contains('.'))
    {
        return Err("メールアドレスを正しく入力してください。".into());
    }
    Ok(role)
}

impl Manager<'_> {
    /// The company's users for 利用者情報の管理, with their certificate state.
    pub async fn user_admin_list(&self) -> Result<Vec<(crate::User, CertState)>, UserAdminError> {
        let actor = self.actor();
        Ok(self
            .store
            .users_with_latest_cert(actor.company_id)
            .await
            .db()?
            .into_iter()
            .map(|(u, c)| {
                let state = self.cert_state(c.as_ref().map(|c| c.record()).as_ref());
                (u.into(), state)
            })
            .collect())
    }

    /// A user of the actor's company whom the actor may administer.
    pub async fn user_to_administer(&self, target: UserId) -> Result<crate::User, UserAdminError> {
        let actor = self.actor();
        let Some(u) = self
            .store
            .user(target)
            .await
            .db()?
            .filter(|u| u.company_id == actor.company_id)
        else {
            return Err(refused(authority::Refusal::NoSuchUser.message_ja()));
        };
        authority::may_administer(actor, &target_of(&u)).map_err(|r| refused(r.message_ja()))?;
        Ok(u.into())
    }

    /// Begins the transaction of a change to `target`: the 確認用パスワード
    /// (a failure is recorded and committed, then refused), then the target
    /// and the authority decided again inside the transaction.
    async fn begin_confirmed(
        &self,
        actor: &Actor,
        target: UserId,
        confirm_password: &str,
        operation: Operation,
        current: &crate::User,
        client: &str,
    ) -> Result<(Tx, UserRow), UserAdminError> {
        let ctx = Context {
            op: operation,
            target: current.login_id.as_str(),
            client,
        };
        let (mut tx, _confirmed) = self
            .confirm(actor, confirm_password, ctx)
            .await?
            .map_err(|r| refused(r.confirm_problem().message_ja()))?;
        let Some(u) = tx
            .user(target)
            .await
            .db()?
            .filter(|u| u.company_id == actor.company_id)
        else {
            return Err(refused(authority::Refusal::NoSuchUser.message_ja()));
        };
        authority::may_administer(actor, &target_of(&u)).map_err(|r| refused(r.message_ja()))?;
        Ok((tx, u))
    }

    /// The row of a change to `target` by `actor`.
    fn audit_ok<'a>(
        &self,
        actor: &'a Actor,
        operation: Operation,
        target: &'a str,
        detail: &'a str,
        client: &'a str,
    ) -> AuditEntry<'a> {
        self.entry(operation)
            .by_actor(actor)
            .target(target)
            .detail(detail)
            .client(client)
    }

    /// 利用者登録.
    pub async fn create_user(
        &self,
        f: &UserForm,
        actor_confirm_password: &str,
        client: &str,
    ) -> Result<LoginId, UserAdminError> {
        let actor = self.actor();
        let Some(login_id) = LoginId::parse(f.login_id.trim()).filter(|id| {
            id.fits(
                self.settings.login_id_min_length,
                self.settings.login_id_max_length,
            )
        }) else {
            return Err(refused(self.settings.login_id_rule_ja()));
        };
        let role = check_fields(f, None).map_err(refused)?;
        let policy = self.settings.password_policy();
        policy
            .check(&f.login_password, login_id.as_str())
            .map_err(|v| refused(format!("ログインパスワード: {}", v.message_ja())))?;
        policy
            .check(&f.confirm_password, login_id.as_str())
            .map_err(|v| refused(format!("確認用パスワード: {}", v.message_ja())))?;
        if f.login_password == f.confirm_password {
            return Err(refused(
                "ログインパスワードと確認用パスワードには異なるパスワードを設定してください。",
            ));
        }
        let login_hash = self.hasher.hash(&f.login_password).await?;
        let confirm_hash = self.hasher.hash(&f.confirm_password).await?;
        let ctx = Context {
            op: Operation::UserCreate,
            target: login_id.as_str(),
            client,
        };
        let (mut tx, _confirmed) = self
            .confirm(actor, actor_confirm_password, ctx)
            .await?
            .map_err(|r| refused(r.confirm_problem().message_ja()))?;
        let Some(company) = tx.company(actor.company_id).await.db()? else {
            return Err(refused(authority::Refusal::NoAuthority.message_ja()));
        };
        let (users, _) = tx.user_counts(actor.company_id).await.db()?;
        let max = self.settings.max_users(company.service);
        let problem = if tx.login_id_taken(&login_id).await.db()? {
            Some(
                "このログインIDは既に使用されています。別のログインIDを入力してください。"
                    .to_string(),
            )
        } else if users >= max {
            Some(format!(
                "{}で登録できる利用者は{max}人までです。",
                company.service.label()
            ))
        } else {
            None
        };
        if let Some(p) = problem {
            let e = self
                .audit_ok(actor, Operation::UserCreate, login_id.as_str(), &p, client)
                .failed();
            tx.audit(&e).await.db()?;
            tx.commit().await.db()?;
            return Err(refused(p));
        }
        let email = f.email.trim();
        let id = tx
            .insert_user(
                &NewUser {
                    company_id: actor.company_id,
                    login_id: &login_id,
                    name: f.name.trim(),
                    role,
                    email,
                    login_hash: &login_hash,
                    confirm_hash: &confirm_hash,
                },
                self.now(),
            )
            .await
            .db()?;
        tx.reset_passwords(id, &login_hash, &confirm_hash, true)
            .await
            .db()?;
        tx.audit(&self.audit_ok(
            actor,
            Operation::UserCreate,
            login_id.as_str(),
            role.label(),
            client,
        ))
        .await
        .db()?;
        tx.commit().await.db()?;
        Ok(login_id)
    }

    /// 利用者変更: name, 利用者区分, e-mail.
    pub async fn update_user(
        &self,
        target: UserId,
        f: &UserForm,
        actor_confirm_password: &str,
        client: &str,
    ) -> Result<LoginId, UserAdminError> {
        let actor = self.actor();
        let current = self.user_to_administer(target).await?;
        let role = check_fields(f, Some(current.role)).map_err(refused)?;
        if current.role == Role::Master && role != Role::Master {
            return Err(refused("マスターユーザの利用者区分は変更できません。"));
        }
        if target == actor.user_id && role != current.role {
            return Err(refused("ご自身の利用者区分は変更できません。"));
        }
        let (mut tx, u) = self
            .begin_confirmed(
                actor,
                target,
                actor_confirm_password,
                Operation::UserUpdate,
                &current,
                client,
            )
            .await?;
        tx.update_user(u.id, f.name.trim(), role, f.email.trim())
            .await
            .db()?;
        let detail = format!("利用者名・利用者区分（{}）・メールアドレス", role.label());
        tx.audit(&self.audit_ok(
            actor,
            Operation::UserUpdate,
            u.login_id.as_str(),
            &detail,
            client,
        ))
        .await
        .db()?;
        tx.commit().await.db()?;
        Ok(u.login_id)
    }

    /// 利用者削除: the user and their certificate in force (revoked).
    pub async fn delete_user(
        &self,
        target: UserId,
        actor_confirm_password: &str,
        client: &str,
    ) -> Result<LoginId, UserAdminError> {
        let actor = self.actor();
        let current = self.user_to_administer(target).await?;
        if target == actor.user_id {
            return Err(refused("ご自身を削除することはできません。"));
        }
        let now = self.now();
        let (mut tx, u) = self
            .begin_confirmed(
                actor,
                target,
                actor_confirm_password,
                Operation::UserDelete,
                &current,
                client,
            )
            .await?;
        if u.role == Role::Master {
            let (_, masters) = tx.user_counts(actor.company_id).await.db()?;
            if masters <= 1 {
                let p = "マスターユーザは削除できません（企業に1人必要です）。";
                let e = self
                    .audit_ok(actor, Operation::UserDelete, u.login_id.as_str(), p, client)
                    .failed();
                tx.audit(&e).await.db()?;
                tx.commit().await.db()?;
                return Err(refused(p));
            }
        }
        let cert = tx.latest_cert(u.id).await.db()?;
        let in_force = cert.as_ref().is_some_and(|c| {
            matches!(
                CertState::derive(Some(&c.record()), now, self.settings.renewal_window()),
                CertState::Issued | CertState::Renewable
            )
        });
        let reason = RevocationReason::AffiliationChanged.code();
        let mut revoked = None;
        if in_force && let Some(c) = &cert {
            revoked = self.revoke_in(&mut tx, c, now, reason, None).await?;
        }
        tx.delete_user(u.id, now).await.db()?;
        let detail = match (&revoked, &cert) {
            (Some(_), Some(c)) => format!("証明書失効 シリアル番号 {}", c.serial),
            _ => String::new(),
        };
        tx.audit(&self.audit_ok(
            actor,
            Operation::UserDelete,
            u.login_id.as_str(),
            &detail,
            client,
        ))
        .await
        .db()?;
        revoked.unwrap_or_default().commit(self, tx).await?;
        Ok(u.login_id)
    }
}

fn target_of(u: &UserRow) -> Target {
    Target {
        user_id: u.id,
        company_id: u.company_id,
        role: u.role,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_checked_field_by_field() {
        let ok = UserForm {
            login_id: "newuser01".into(),
            name: "新規 一郎".into(),
            role: "general".into(),
            email: "new@example.jp".into(),
            ..Default::default()
        };
        assert_eq!(check_fields(&ok, None), Ok(Role::General));
        let with = |f: &dyn Fn(&mut UserForm)| {
            let mut x = ok.clone();
            f(&mut x);
            check_fields(&x, None).unwrap_err()
        };
        assert!(with(&|x| x.name = String::new()).contains("利用者名"));
        assert!(
            with(&|x| x.role = "master".into()).contains("利用者区分"),
            "the portal never makes a マスター"
        );
        assert!(with(&|x| x.email = "x".into()).contains("メールアドレス"));
        let mut m = ok.clone();
        m.role = "master".into();
        assert_eq!(check_fields(&m, Some(Role::Master)), Ok(Role::Master));
    }
}
