//! 利用者停止・解除 (BRSK021 → BRSK022 → BRSK023): an administrator stops
//! company users or makes them available again (which also clears their
//! password locks), confirmed with the administrator's 確認用パスワード. All
//! the users change together or none does; each change writes its 操作履歴
//! row in the same transaction. A 管理者 cannot change a マスター user; a
//! マスター user's password locks are released by the bank; nobody changes
//! their own state here.

use crate::Db as _;
use shomei_core::Operation;
use shomei_core::authority::{self, Target};
use shomei_core::{Actor, LoginId, Role, ServiceState, UserId};
use shomei_store::{AuditEntry, UserRow};

use crate::Manager;
use crate::access::check::Context;

/// 変更後のサービス状態.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceChange {
    /// 利用可能: stop and password locks cleared.
    Available,
    /// 利用停止 by an administrator.
    Stopped,
}

impl ServiceChange {
    /// The state's name as the screens write it.
    pub fn label(self) -> &'static str {
        match self {
            ServiceChange::Available => ServiceState::Available.label(),
            ServiceChange::Stopped => ServiceState::AdminStopped.label(),
        }
    }

    /// The value a form sends for this change.
    pub fn code(self) -> &'static str {
        match self {
            ServiceChange::Available => "available",
            ServiceChange::Stopped => "stopped",
        }
    }

    /// The change a form's value names, if any.
    pub fn from_code(s: &str) -> Option<Self> {
        match s {
            "available" => Some(ServiceChange::Available),
            "stopped" => Some(ServiceChange::Stopped),
            _ => None,
        }
    }
}

/// A row of the service-state list.
#[derive(Debug, Clone)]
pub struct ServiceStateRow {
    /// The user's id.
    pub user_id: UserId,
    /// The user's ログインID.
    pub login_id: LoginId,
    /// The user's name.
    pub name: String,
    /// The user's role in the company.
    pub role: Role,
    /// The user's service states (利用可能, 利用停止, locks).
    pub states: Vec<ServiceState>,
    /// Whether the acting user may change this user.
    pub changeable: bool,
}

/// Why nothing changed: a message for the screen.
pub type StopError = crate::ActionError;

/// Why `actor` may not change `target` to `change`, if so.
fn refusal(actor: &Actor, target: &UserRow, change: ServiceChange) -> Option<String> {
    if target.id == actor.user_id {
        return Some("ご自身のサービス状態は変更できません。".into());
    }
    let t = Target {
        user_id: target.id,
        company_id: target.company_id,
        role: target.role,
    };
    if let Err(r) = authority::may_administer(actor, &t) {
        return Some(r.message_ja().to_owned());
    }
    let locked = target.counters.login_stopped
        || target.counters.login_locked_until.is_some()
        || target.counters.confirm_stopped;
    if target.role == Role::Master && change == ServiceChange::Available && locked {
        return Some(format!(
            "マスターユーザ（{}）のパスワードの利用停止は、銀行へご連絡の上で解除してください。",
            target.login_id
        ));
    }
    None
}

impl Manager<'_> {
    /// The company's users with their service states, for 利用者停止・解除.
    pub async fn service_state_list(&self) -> Result<Vec<ServiceStateRow>, StopError> {
        let actor = self.actor();
        let now = self.now();
        let users = self
            .store
            .users_with_latest_cert(actor.company_id)
            .await
            .db()?;
        Ok(users
            .into_iter()
            .map(|(u, _)| ServiceStateRow {
                changeable: authority::offers_to_administer(
                    actor,
                    &Target {
                        user_id: u.id,
                        company_id: u.company_id,
                        role: u.role,
                    },
                ),
                user_id: u.id,
                states: u.counters.service_states(now),
                login_id: u.login_id,
                name: u.name,
                role: u.role,
            })
            .collect())
    }

    /// Checks a selection before the confirmation screen: the users, or why not.
    pub async fn service_change_targets(
        &self,
        targets: &[UserId],
        change: ServiceChange,
    ) -> Result<Vec<crate::User>, StopError> {
        let actor = self.actor();
        if targets.is_empty() {
            return Err(StopError::Refused("利用者を選択してください。".into()));
        }
        let mut users = Vec::with_capacity(targets.len());
        for id in targets {
            let Some(u) = self
                .store
                .user(*id)
                .await
                .db()?
                .filter(|u| u.company_id == actor.company_id)
            else {
                return Err(StopError::Refused(
                    authority::Refusal::NoSuchUser.message_ja().to_owned(),
                ));
            };
            if let Some(r) = refusal(actor, &u, change) {
                return Err(StopError::Refused(r));
            }
            users.push(u.into());
        }
        Ok(users)
    }

    /// 実行: checks the 確認用パスワード and changes every selected user.
    pub async fn change_service_state(
        &self,
        targets: &[UserId],
        change: ServiceChange,
        confirm_password: &str,
        client: &str,
    ) -> Result<Vec<crate::User>, StopError> {
        let actor = self.actor();
        let now = self.now();
        let entry = || {
            AuditEntry::new(Operation::ServiceState, now)
                .by_actor(actor)
                .client(client)
        };
        let ctx = Context {
            op: Operation::ServiceState,
            target: "",
            client,
        };
        let (mut tx, _confirmed) = match self.confirm(actor, confirm_password, ctx).await? {
            Ok(c) => c,
            Err(r) => {
                return Err(StopError::Refused(
                    r.confirm_problem().message_ja().to_owned(),
                ));
            }
        };
        let mut rows = Vec::new();
        let mut changed = Vec::new();
        let outcome: Result<(), String> = if targets.is_empty() {
            Err("利用者を選択してください。".into())
        } else {
            let mut problem = None;
            for id in targets {
                let Some(mut u) = tx
                    .user(*id)
                    .await
                    .db()?
                    .filter(|u| u.company_id == actor.company_id)
                else {
                    problem = Some(authority::Refusal::NoSuchUser.message_ja().to_owned());
                    break;
                };
                if let Some(r) = refusal(actor, &u, change) {
                    problem = Some(r);
                    break;
                }
                match change {
                    ServiceChange::Stopped => u.counters.admin_stopped = true,
                    ServiceChange::Available => u.counters.release_all(),
                }
                tx.save_counters(u.id, &u.counters).await.db()?;
                rows.push((
                    u.login_id.to_string(),
                    format!("変更後のサービス状態: {}", change.label()),
                ));
                changed.push(u.into());
            }
            match problem {
                Some(p) => {
                    // Nothing changes: the transaction is dropped, then the
                    // refusal alone is recorded.
                    drop(tx);
                    self.record(&entry().failed().detail(&p)).await?;
                    return Err(StopError::Refused(p));
                }
                None => Ok(()),
            }
        };
        for (target, detail) in &rows {
            tx.audit(&entry().target(target).detail(detail))
                .await
                .db()?;
        }
        tx.commit().await.db()?;
        outcome.map_err(StopError::Refused)?;
        Ok(changed)
    }
}
