//! ログイン with login ID and login password, and the password check that
//! enrollment (simpleenroll) and the certificate method share with it: one
//! counter, one lockout, one refusal that never tells whether the ID exists.

use crate::Db as _;
use shomei_core::Operation;
use shomei_core::{LoginId, Problem, UserId};
use shomei_store::{AuditEntry, Tx, UserRow};

use crate::access::check::Context;
use crate::access::throttle::{self, AddressLimit, Start};
use crate::{PasswordKind, Result, ServiceError, Shomei, actor_of};

/// The result of a login attempt.
#[derive(Debug)]
pub enum LoginOutcome {
    /// The password was right: the session is opened for this user.
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
    pub op: Operation,
    pub client: String,
    /// A returning customer (a login with a valid device cookie for this
    /// login ID): a reserved hashing place, hashed first, and not counted
    /// against the client's address. Everything else is the same: the
    /// password is checked, the lockout counts, a closed password spends the
    /// dummy hash.
    pub returning: bool,
}

impl CheckedAs {
    /// The address the attempt counts against, if any.
    fn counted_address(&self) -> Option<&str> {
        (!self.returning && !self.client.is_empty()).then_some(self.client.as_str())
    }
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
        self.login_password_from(login_id, pw, client, false).await
    }

    /// As `login_password`; `returning`: the browser brought a valid device
    /// cookie for this login ID (checked by the caller, which holds its key).
    pub async fn login_password_from(
        &self,
        login_id: &str,
        pw: &str,
        client: &str,
        returning: bool,
    ) -> Result<LoginOutcome> {
        let as_ = CheckedAs {
            op: Operation::Login,
            client: client.to_owned(),
            returning,
        };
        let r = self
            .login_as(login_id, pw, None, "ID・パスワード方式".into(), &as_)
            .await;
        self.count_login(&r, crate::operations::metrics::LoginMethod::Password);
        r
    }

    pub(crate) fn count_login(
        &self,
        r: &Result<LoginOutcome>,
        method: crate::operations::metrics::LoginMethod,
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
            op: Operation::Login,
            client: client.to_owned(),
            returning: false,
        };
        self.login_as(login_id, pw, only, detail, &as_).await
    }

    async fn login_as(
        &self,
        login_id: &str,
        pw: &str,
        only: Option<UserId>,
        detail: String,
        as_: &CheckedAs,
    ) -> Result<LoginOutcome> {
        let client = as_.client.as_str();
        let (mut tx, check) = self.check_login_password(login_id, pw, only, as_).await?;
        let user = match check {
            PasswordCheck::Passed(u) => u,
            PasswordCheck::Refused => {
                tx.commit().await.db()?;
                return Ok(LoginOutcome::Refused(Problem::LoginFailed));
            }
            PasswordCheck::Throttled => {
                tx.commit().await.db()?;
                return Ok(LoginOutcome::Refused(Problem::AddressThrottled));
            }
        };
        let now = self.now();
        tx.set_last_login(user.id, now).await.db()?;
        let actor = actor_of(&user);
        let login = actor.login_id.as_str();
        let e = self.entry(Operation::Login).by_actor(&actor).target(login);
        tx.audit(&e.detail(&detail).client(client)).await.db()?;
        tx.commit().await.db()?;
        Ok(LoginOutcome::LoggedIn(user.id))
    }

    /// The shared password check (login, the certificate method's second
    /// factor, simpleenroll). `only` restricts it to one user (the
    /// certificate method knows who it is). Returns the transaction, to be
    /// committed by the caller after adding its own rows.
    ///
    /// In the order that keeps the work bounded: a place on the hashing pool
    /// (else `Busy`, nothing written); one transaction that counts the
    /// attempt against the client's address and claims a check of the user's
    /// password (refusing, without checking it, what the limits no longer
    /// allow); the hash; one transaction that records the result. An unknown
    /// login ID, and a password refused unchecked, do the same work against a
    /// dummy hash, so timing does not tell whether the ID exists.
    pub(crate) async fn check_login_password(
        &self,
        login_id: &str,
        pw: &str,
        only: Option<UserId>,
        as_: &CheckedAs,
    ) -> Result<(Tx, PasswordCheck)> {
        let client = as_.client.as_str();
        let typed: String = login_id.chars().take(32).collect();
        let place = if as_.returning {
            self.hasher.returning_place()
        } else {
            self.place()
        };
        let place = match place {
            Ok(p) => p,
            Err(ServiceError::Busy) => {
                self.metrics().password_busy();
                self.address_refused(as_, &typed, "混雑のため受け付けず")
                    .await?;
                return Err(ServiceError::Busy);
            }
            Err(e) => return Err(e),
        };
        let ctx = Context {
            op: as_.op,
            target: "",
            client,
        };

        // 1. Claim. A returning customer's transactions take SQLite's next
        // writer turn, ahead of a flood's.
        let now = self.now();
        let mut tx = self.begin_for(as_).await?;
        if !self.address_start(&mut tx, as_, &typed, now).await? {
            self.metrics().login_throttled();
            return Ok((tx, PasswordCheck::Throttled));
        }
        let user = match LoginId::parse(login_id) {
            Some(id) => tx.user_by_login_id(&id).await.db()?,
            None => None,
        }
        .filter(|u| only.is_none_or(|o| o == u.id));
        // A closed password (locked, stopped) or one at its limit of checks
        // in flight is refused without checking it, but not sooner than a
        // wrong one: it spends the same dummy hash on the same place, in the
        // same address count, so timing does not tell a locked ID (which
        // exists) from an unknown one (which never locks).
        let mut place = Some(place);
        let mut refused_unchecked = false;
        let claim = match (&user, place.take()) {
            (None, p) => {
                place = p;
                None
            }
            (Some(u), Some(p)) => {
                let ctx = Context {
                    target: u.login_id.as_str(),
                    ..ctx
                };
                match self
                    .claim_in(&mut tx, p, u, PasswordKind::Login, ctx, now)
                    .await?
                {
                    Ok(c) => Some(c),
                    Err((_, p)) => {
                        place = Some(p);
                        refused_unchecked = true;
                        None
                    }
                }
            }
            (Some(_), None) => return Err(ServiceError::Invariant("no place for the check")),
        };
        tx.commit().await.db()?;

        // 2. Hash (an unknown ID, or a password refused unchecked, against
        // the dummy, for the same work).
        let ok = match &claim {
            Some(c) => self.verify_claimed(c, pw).await?,
            None => {
                let place = place.ok_or(ServiceError::Invariant("no place for the check"))?;
                self.metrics().password_dummy_hash();
                self.hasher.verify(&place, &self.dummy_hash, pw).await?;
                false
            }
        };

        // 3. Settle. The address is locked before the user (the store's
        // order of locks), as in step 1.
        let now = self.now();
        let mut tx = self.begin_for(as_).await?;
        if let Some(client) = as_.counted_address() {
            tx.lock_address(client).await.db()?;
        }
        let Some(claim) = claim else {
            // A refusal unchecked has its row from the claim's step.
            if !refused_unchecked {
                bank_wide_failure(
                    &mut tx,
                    as_,
                    &typed,
                    "ログインIDまたはログインパスワード誤り",
                    now,
                )
                .await?;
            }
            self.address_finish(&mut tx, as_, false, now).await?;
            return Ok((tx, PasswordCheck::Refused));
        };
        let target = user
            .as_ref()
            .map(|u| u.login_id.to_string())
            .unwrap_or_default();
        let ctx = Context {
            target: &target,
            ..ctx
        };
        let settled = self.settle_in(&mut tx, &claim, ok, ctx, now).await?;
        drop(claim);
        self.address_finish(&mut tx, as_, settled.is_ok(), now)
            .await?;
        Ok(match settled {
            Ok(u) => (tx, PasswordCheck::Passed(u)),
            Err(_) => (tx, PasswordCheck::Refused),
        })
    }

    /// A write transaction for this check: a returning customer's first.
    async fn begin_for(&self, as_: &CheckedAs) -> Result<Tx> {
        Ok(if as_.returning {
            self.store.begin_first().await.db()?
        } else {
            self.store.begin().await.db()?
        })
    }

    /// The address limit as the settings give it.
    fn address_limit(&self) -> AddressLimit {
        AddressLimit {
            limit: self.settings.address_failure_limit,
            window: time::Duration::minutes(self.settings.address_window_minutes),
        }
    }

    /// Counts an attempt from the client's address as it starts; `false`:
    /// refused (its coalesced 操作履歴 row written when one is due).
    async fn address_start(
        &self,
        tx: &mut Tx,
        as_: &CheckedAs,
        typed: &str,
        now: time::OffsetDateTime,
    ) -> Result<bool> {
        let Some(client) = as_.counted_address() else {
            return Ok(true);
        };
        let row = tx.address_attempts(client).await.db()?;
        let (start, row) = self.address_limit().start(row, now);
        if start == Start::Refused {
            let (due, row) = self.address_limit().refuse(Some(row), now);
            tx.save_address_attempts(client, &row).await.db()?;
            if let Some(due) = due {
                let detail = refusal_detail("接続元からの失敗が多いため受け付け停止中", due);
                bank_wide_failure(tx, as_, typed, &detail, now).await?;
            }
            return Ok(false);
        }
        tx.save_address_attempts(client, &row).await.db()?;
        Ok(true)
    }

    /// Ends a counted attempt from the client's address; the failure that
    /// fills the window writes the one row that says the address is refused.
    async fn address_finish(
        &self,
        tx: &mut Tx,
        as_: &CheckedAs,
        ok: bool,
        now: time::OffsetDateTime,
    ) -> Result<()> {
        let Some(client) = as_.counted_address() else {
            return Ok(());
        };
        let row = tx.address_attempts(client).await.db()?;
        let (blocked, row) = self.address_limit().finish(row, ok, now);
        tx.save_address_attempts(client, &row).await.db()?;
        if blocked {
            let minutes = self.settings.address_window_minutes;
            tracing::warn!(
                client,
                failures = row.attempts,
                "login failures from one address: refusing it for a while"
            );
            let detail = format!(
                "接続元からの失敗が{minutes}分間に{}回に達したため、{minutes}分間受け付けを停止",
                row.attempts
            );
            bank_wide_failure(tx, as_, "", &detail, now).await?;
        }
        Ok(())
    }

    /// A refusal that checked nothing and counted nothing (the server is
    /// busy): coalesced per address like the address's own refusals.
    ///
    /// Counted in memory first and written at most once a second, all
    /// addresses in one transaction: a flood of busy answers (which cost no
    /// hashing) must not turn into a flood of database writes either.
    async fn address_refused(&self, as_: &CheckedAs, typed: &str, why: &str) -> Result<()> {
        let Some(batch) = self.busy_refusals.note(&as_.client) else {
            return Ok(());
        };
        let now = self.now();
        let mut tx = self.store.begin().await.db()?;
        for (client, n) in batch {
            let as_client = CheckedAs {
                op: as_.op,
                client: client.clone(),
                returning: false,
            };
            let typed = if client == as_.client { typed } else { "" };
            let due = if client.is_empty() {
                Some(throttle::RefusalRow { refused: n })
            } else {
                let mut row = tx.address_attempts(&client).await.db()?;
                let mut due = None;
                for _ in 0..n {
                    let (d, r) = self.address_limit().refuse(row, now);
                    row = Some(r);
                    // At most one row falls due within the minute; the
                    // rest wait in the address's count for the next.
                    due = due.or(d);
                }
                if let Some(r) = &row {
                    tx.save_address_attempts(&client, r).await.db()?;
                }
                due
            };
            if let Some(due) = due {
                bank_wide_failure(&mut tx, &as_client, typed, &refusal_detail(why, due), now)
                    .await?;
            }
        }
        tx.commit().await.db()?;
        Ok(())
    }

    /// Writes the refusals counted but not yet written, for addresses whose
    /// last such row is a minute old (the upkeep).
    pub async fn record_address_refusals(&self) -> Result<usize> {
        let now = self.now();
        let mut tx = self.store.begin().await.db()?;
        let due = tx
            .addresses_with_unrecorded(now - throttle::REFUSAL_ROW_EVERY, 1000)
            .await
            .db()?;
        let as_ = |client: &str| CheckedAs {
            op: Operation::Login,
            client: client.to_owned(),
            returning: false,
        };
        let n = due.len();
        for (addr, mut row) in due {
            if let Some(d) = throttle::due(&mut row, now) {
                let detail = format!(
                    "接続元からの受け付けを停止中（前回の記録以降 {} 件）",
                    d.refused
                );
                bank_wide_failure(&mut tx, &as_(&addr), "", &detail, now).await?;
            }
            tx.save_address_attempts(&addr, &row).await.db()?;
        }
        let window = time::Duration::minutes(self.settings.address_window_minutes);
        tx.commit().await.db()?;
        self.store.prune_attempts(now - window, now).await.db()?;
        Ok(n)
    }
}

/// The detail of a coalesced refusal row.
fn refusal_detail(why: &str, due: throttle::RefusalRow) -> String {
    if due.refused == 1 {
        why.to_owned()
    } else {
        format!("{why}（前回の記録以降 {} 件）", due.refused)
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
    let e = AuditEntry::new(as_.op, now).by_name(None, typed_login_id);
    tx.audit(&e.failed().detail(detail).client(&as_.client))
        .await
        .db()?;
    Ok(())
}
