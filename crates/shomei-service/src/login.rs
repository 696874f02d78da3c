//! ログイン with login ID and login password.

use shomei_core::{FailureOutcome, LoginGate, LoginId, Problem, ServiceState};
use shomei_store::AuditEntry;

use crate::{FAILED, OK, Result, Shomei, actor_of, password};

pub const OP_LOGIN: &str = "ログイン";

/// The result of a login attempt.
#[derive(Debug)]
pub enum LoginOutcome {
    LoggedIn(shomei_core::UserId),
    /// One outcome for every failure, so the screen cannot reveal whether the
    /// login ID exists or why it failed.
    Refused(Problem),
}

impl Shomei {
    /// Checks the login password, counts failures (locking as the policy says)
    /// and records the attempt in 操作履歴, all in one transaction.
    pub async fn login_password(
        &self,
        login_id: &str,
        pw: &str,
        client: &str,
    ) -> Result<LoginOutcome> {
        let refused = Ok(LoginOutcome::Refused(Problem::LoginFailed));
        let typed: String = login_id.chars().take(32).collect();
        let user = match LoginId::parse(login_id) {
            Some(id) => self.store.user_by_login_id(&id).await?,
            None => None,
        };
        let Some(user) = user else {
            // Same work as for a real user, so timing does not tell either.
            password::verify(&self.dummy_hash, pw).await?;
            let mut tx = self.store.begin().await?;
            tx.audit(&AuditEntry {
                at: self.now(),
                company_id: None,
                actor_user_id: None,
                actor_login_id: &typed,
                operation: OP_LOGIN,
                target_login_id: "",
                result: FAILED,
                detail: "ログインIDまたはログインパスワード誤り",
                client_addr: client,
            })
            .await?;
            tx.commit().await?;
            return refused;
        };

        let now = self.now();
        let gate = user.counters.login_gate(now);
        let password_ok = password::verify(&user.login_hash, pw).await?;
        let mut tx = self.store.begin().await?;
        // Re-read inside the transaction: a parallel attempt may have counted.
        let Some(mut fresh) = tx.user(user.id).await? else {
            return refused;
        };
        let actor = actor_of(&fresh);
        let audit = |detail: &'static str, result: &'static str, op: &'static str| AuditEntry {
            at: now,
            company_id: Some(actor.company_id),
            actor_user_id: Some(actor.user_id),
            actor_login_id: actor.login_id.as_str(),
            operation: op,
            target_login_id: actor.login_id.as_str(),
            result,
            detail,
            client_addr: client,
        };
        if gate != LoginGate::Open {
            let detail = match gate {
                LoginGate::AdminStopped => "利用停止中",
                LoginGate::PasswordStopped => "ログインパスワード利用停止中",
                _ => "ログインパスワード利用一時停止中",
            };
            tx.audit(&audit(detail, FAILED, OP_LOGIN)).await?;
            tx.commit().await?;
            return refused;
        }
        if !password_ok {
            let outcome = fresh
                .counters
                .on_login_failure(now, &self.settings.lockout());
            tx.save_counters(fresh.id, &fresh.counters).await?;
            tx.audit(&audit("ログインパスワード誤り", FAILED, OP_LOGIN))
                .await?;
            let lock = match outcome {
                FailureOutcome::TemporarilyLocked { .. } => {
                    Some(ServiceState::LoginTemporarilyLocked.label())
                }
                FailureOutcome::Stopped => Some(ServiceState::LoginStopped.label()),
                FailureOutcome::Counted { .. } => None,
            };
            if let Some(label) = lock {
                tx.audit(&audit("連続したログインパスワード誤りによる", OK, label))
                    .await?;
            }
            tx.commit().await?;
            return refused;
        }
        fresh.counters.on_login_success();
        tx.save_counters(fresh.id, &fresh.counters).await?;
        tx.set_last_login(fresh.id, now).await?;
        tx.audit(&audit("ID・パスワード方式", OK, OP_LOGIN)).await?;
        tx.commit().await?;
        Ok(LoginOutcome::LoggedIn(fresh.id))
    }
}
