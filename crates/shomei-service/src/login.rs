//! ログイン with login ID and login password, and the password check that
//! enrollment (simpleenroll) and the certificate method share with it: one
//! counter, one lockout, one refusal that never tells whether the ID exists.

use shomei_core::{FailureOutcome, LoginGate, LoginId, Problem, ServiceState, UserId};
use shomei_store::{AuditEntry, Tx, UserRow};

use crate::{FAILED, OK, Result, Shomei, actor_of, password};

pub const OP_LOGIN: &str = "ログイン";

/// The result of a login attempt.
#[derive(Debug)]
pub enum LoginOutcome {
    LoggedIn(UserId),
    /// One outcome for every failure, so the screen cannot reveal whether the
    /// login ID exists or why it failed.
    Refused(Problem),
}

/// The login password check, inside an open transaction that already holds
/// its 操作履歴 rows for a refusal, or the reset counter for a success.
pub(crate) enum PasswordCheck {
    Passed(UserRow),
    Refused,
    /// The client's address is refused for now (no password was checked).
    Throttled,
}

/// What the 操作履歴 rows of a password check say.
pub(crate) struct CheckedAs {
    /// Operation written for a refusal (ログイン, 証明書発行, …).
    pub op: &'static str,
    pub client: String,
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
        let r = self
            .login_with(login_id, pw, None, "ID・パスワード方式".into(), client)
            .await;
        self.count_login(&r, crate::metrics::LoginMethod::Password);
        r
    }

    pub(crate) fn count_login(
        &self,
        r: &Result<LoginOutcome>,
        method: crate::metrics::LoginMethod,
    ) {
        if let Ok(outcome) = r {
            let ok = matches!(outcome, LoginOutcome::LoggedIn(_));
            self.metrics().login(method, ok);
        }
    }

    /// ログイン by the login password, optionally only for one user (the
    /// certificate method), recording `detail` on success.
    pub(crate) async fn login_with(
        &self,
        login_id: &str,
        pw: &str,
        only: Option<UserId>,
        detail: String,
        client: &str,
    ) -> Result<LoginOutcome> {
        let as_ = CheckedAs {
            op: OP_LOGIN,
            client: client.to_owned(),
        };
        let (mut tx, check) = self.check_login_password(login_id, pw, only, &as_).await?;
        let user = match check {
            PasswordCheck::Passed(u) => u,
            PasswordCheck::Refused => {
                tx.commit().await?;
                return Ok(LoginOutcome::Refused(Problem::LoginFailed));
            }
            PasswordCheck::Throttled => {
                tx.commit().await?;
                return Ok(LoginOutcome::Refused(Problem::AddressThrottled));
            }
        };
        let now = self.now();
        tx.set_last_login(user.id, now).await?;
        let actor = actor_of(&user);
        tx.audit(&AuditEntry {
            at: now,
            company_id: Some(actor.company_id),
            actor_user_id: Some(actor.user_id),
            actor_login_id: actor.login_id.as_str(),
            operation: OP_LOGIN,
            target_login_id: actor.login_id.as_str(),
            result: OK,
            detail: &detail,
            client_addr: client,
        })
        .await?;
        tx.commit().await?;
        Ok(LoginOutcome::LoggedIn(user.id))
    }

    /// The shared password check. `only` restricts it to one user (the
    /// certificate method knows who it is). Returns the transaction, to be
    /// committed by the caller after adding its own rows. An address with
    /// too many recent failures is refused before any password is checked;
    /// the failure that reaches the limit writes one 操作履歴 row saying so.
    pub(crate) async fn check_login_password(
        &self,
        login_id: &str,
        pw: &str,
        only: Option<UserId>,
        as_: &CheckedAs,
    ) -> Result<(Tx, PasswordCheck)> {
        let client = as_.client.as_str();
        let now = self.now();
        if self.throttle.blocked(client, now) {
            // Every attempt is in 操作履歴, this one too (bank-wide: no
            // password was checked, so no user is named as its actor).
            self.metrics().login_throttled();
            let typed: String = login_id.chars().take(32).collect();
            let mut tx = self.store.begin().await?;
            bank_wide_failure(
                &mut tx,
                as_,
                &typed,
                "接続元からの失敗が多いため受け付け停止中",
                now,
            )
            .await?;
            return Ok((tx, PasswordCheck::Throttled));
        }
        let (mut tx, check) = self.check_password_of(login_id, pw, only, as_).await?;
        if matches!(check, PasswordCheck::Refused) {
            let window = time::Duration::minutes(self.settings.address_window_minutes);
            let limit = self.settings.address_failure_limit;
            if let Some(n) = self.throttle.failure(client, now, limit, window) {
                tracing::warn!(
                    client,
                    failures = n,
                    "login failures from one address: refusing it for a while"
                );
                let detail = format!(
                    "接続元からの失敗が{}分間に{n}回に達したため、{}分間受け付けを停止",
                    self.settings.address_window_minutes, self.settings.address_window_minutes
                );
                bank_wide_failure(&mut tx, as_, "", &detail, now).await?;
            }
        }
        Ok((tx, check))
    }

    async fn check_password_of(
        &self,
        login_id: &str,
        pw: &str,
        only: Option<UserId>,
        as_: &CheckedAs,
    ) -> Result<(Tx, PasswordCheck)> {
        let typed: String = login_id.chars().take(32).collect();
        let client = as_.client.as_str();
        let user = match LoginId::parse(login_id) {
            Some(id) => self.store.user_by_login_id(&id).await?,
            None => None,
        }
        .filter(|u| only.is_none_or(|o| o == u.id));
        let Some(user) = user else {
            // Same work as for a real user, so timing does not tell either.
            password::verify(&self.dummy_hash, pw).await?;
            let mut tx = self.store.begin().await?;
            bank_wide_failure(
                &mut tx,
                as_,
                &typed,
                "ログインIDまたはログインパスワード誤り",
                self.now(),
            )
            .await?;
            return Ok((tx, PasswordCheck::Refused));
        };

        let now = self.now();
        let gate = user.counters.login_gate(now);
        let password_ok = password::verify(&user.login_hash, pw).await?;
        let mut tx = self.store.begin().await?;
        // Re-read inside the transaction: a parallel attempt may have counted.
        let Some(mut fresh) = tx.user(user.id).await? else {
            return Ok((tx, PasswordCheck::Refused));
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
            tx.audit(&audit(detail, FAILED, as_.op)).await?;
            return Ok((tx, PasswordCheck::Refused));
        }
        if !password_ok {
            let outcome = fresh
                .counters
                .on_login_failure(now, &self.settings.lockout());
            tx.save_counters(fresh.id, &fresh.counters).await?;
            tx.audit(&audit("ログインパスワード誤り", FAILED, as_.op))
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
                self.queue_lock_notices(
                    &mut tx,
                    fresh.company_id,
                    &fresh.login_id,
                    fresh.id,
                    label,
                    now,
                )
                .await?;
            }
            return Ok((tx, PasswordCheck::Refused));
        }
        if fresh.counters.login_failures != 0 || fresh.counters.login_locked_until.is_some() {
            fresh.counters.on_login_success();
            tx.save_counters(fresh.id, &fresh.counters).await?;
        }
        Ok((tx, PasswordCheck::Passed(fresh)))
    }
}

/// A refused attempt that names no user of any company (an unknown login
/// ID, a refused address): a 操作履歴 row for the bank only.
async fn bank_wide_failure(
    tx: &mut Tx,
    as_: &CheckedAs,
    typed_login_id: &str,
    detail: &str,
    now: time::OffsetDateTime,
) -> Result<()> {
    tx.audit(&AuditEntry {
        at: now,
        company_id: None,
        actor_user_id: None,
        actor_login_id: typed_login_id,
        operation: as_.op,
        target_login_id: "",
        result: FAILED,
        detail,
        client_addr: &as_.client,
    })
    .await?;
    Ok(())
}
