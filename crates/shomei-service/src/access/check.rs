//! The one password-check step every use case goes through, in three parts:
//!
//! 1. **claim** — a place on the hashing pool (or `Busy` at once), then one
//!    short transaction that counts the checks already in flight for this
//!    password and takes one more only while the lockout still allows it;
//! 2. **hash** — Argon2 on the bounded pool, outside any transaction;
//! 3. **settle** — the transaction that drops the claim and records the
//!    result: counters, 操作履歴 rows, lock notices, and (on success) the
//!    change itself, committed together by the caller.
//!
//! So however many requests arrive at once, on however many servers share the
//! database, no more passwords are checked than the lockout allows, exactly
//! one request closes a lock, and a success cannot reopen what concurrent
//! failures closed. The confirmation step (確認用パスワード) returns a
//! [`Confirmed`] that only it can make; a change needs one to commit.

use crate::Db as _;
use shomei_core::{Actor, FailureOutcome, LoginGate, Problem, ServiceState, UserId};
use shomei_core::{Operation, Outcome};
use shomei_store::{AuditEntry, ClaimKind, Tx, UserRow};
use time::OffsetDateTime;

use crate::access::password::Place;
use crate::{PasswordKind, Result, ServiceError, Shomei};

impl PasswordKind {
    fn claim_kind(self) -> ClaimKind {
        match self {
            PasswordKind::Login => ClaimKind::Login,
            PasswordKind::Confirm => ClaimKind::Confirm,
        }
    }
}

/// Proof that the acting user's own password was checked and found right,
/// in the transaction that carries the change.
#[derive(Debug)]
pub(crate) struct Confirmed {
    /// The acting user, read inside that transaction.
    pub me: UserRow,
}

/// Why a check of the user's own password refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OwnRefusal {
    /// The password is stopped or locked: nothing was checked.
    Closed,
    /// It was checked and is wrong (`locked`: this failure closed the lock).
    Wrong { locked: bool },
    /// As many checks are in flight as the lockout still allows.
    TooManyAtOnce,
}

impl OwnRefusal {
    /// The screen's message for the 確認用パスワード.
    pub(crate) fn confirm_problem(self) -> Problem {
        match self {
            OwnRefusal::Closed | OwnRefusal::Wrong { locked: true } => {
                Problem::ConfirmPasswordStopped
            }
            OwnRefusal::Wrong { locked: false } => Problem::ConfirmPasswordWrong,
            OwnRefusal::TooManyAtOnce => Problem::TooManyAtOnce,
        }
    }
}

/// Where a check's 操作履歴 rows go.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    /// The operation written for a refusal (証明書失効, パスワード変更, …).
    pub op: Operation,
    /// The target login ID written on the refusal row.
    pub target: &'a str,
    pub client: &'a str,
}

/// A claimed check: its place on the pool and its row in the database.
pub(crate) struct Claim {
    pub(crate) place: Place,
    id: i64,
    user: UserId,
    kind: PasswordKind,
    /// The stored hash to check against.
    pub(crate) stored: String,
}

/// The label and the 操作履歴 detail of a password that is closed now.
pub(crate) fn closed_detail(kind: PasswordKind, u: &UserRow, now: OffsetDateTime) -> &'static str {
    match kind {
        PasswordKind::Confirm => "確認用パスワード利用停止中",
        PasswordKind::Login => match u.counters.login_gate(now) {
            LoginGate::AdminStopped => "利用停止中",
            LoginGate::PasswordStopped => "ログインパスワード利用停止中",
            _ => "ログインパスワード利用一時停止中",
        },
    }
}

pub(crate) fn checks_left(s: &Shomei, kind: PasswordKind, u: &UserRow, now: OffsetDateTime) -> u32 {
    let p = s.settings.lockout();
    match kind {
        PasswordKind::Login => u.counters.login_checks_left(now, &p),
        PasswordKind::Confirm => u.counters.confirm_checks_left(&p),
    }
}

/// A 操作履歴 row of the user about themself.
pub(crate) fn own_row<'a>(
    u: &'a UserRow,
    now: OffsetDateTime,
    operation: Operation,
    target: &'a str,
    result: Outcome,
    detail: &'a str,
    client: &'a str,
) -> AuditEntry<'a> {
    AuditEntry::new(operation, now)
        .by_user(u)
        .target(target)
        .outcome(result)
        .detail(detail)
        .client(client)
}

impl Shomei {
    /// Takes a claim on `user`'s password of `kind` inside `tx`, or says why
    /// not (writing the refusal's row) and hands `place` back, so that a
    /// refused login can still spend on it the work any other refusal costs.
    pub(crate) async fn claim_in(
        &self,
        tx: &mut Tx,
        place: Place,
        user: &UserRow,
        kind: PasswordKind,
        ctx: Context<'_>,
        now: OffsetDateTime,
    ) -> Result<std::result::Result<Claim, (OwnRefusal, Place)>> {
        let left = checks_left(self, kind, user, now);
        let refusal = if left == 0 {
            Some((OwnRefusal::Closed, closed_detail(kind, user, now)))
        } else if tx.live_claims(user.id, kind.claim_kind(), now).await.db()? >= left {
            self.metrics().password_claim_refused();
            Some((
                OwnRefusal::TooManyAtOnce,
                "同時に照合中の試行が上限に達したため照合せず",
            ))
        } else {
            None
        };
        if let Some((r, detail)) = refusal {
            tx.audit(&own_row(
                user,
                now,
                ctx.op,
                ctx.target,
                Outcome::Failed,
                detail,
                ctx.client,
            ))
            .await
            .db()?;
            return Ok(Err((r, place)));
        }
        let expires = now + time::Duration::seconds(self.settings.password_claim_seconds);
        let id = tx
            .insert_claim(user.id, kind.claim_kind(), expires)
            .await
            .db()?;
        let stored = match kind {
            PasswordKind::Login => user.login_hash.clone(),
            PasswordKind::Confirm => user.confirm_hash.clone(),
        };
        Ok(Ok(Claim {
            place,
            id,
            user: user.id,
            kind,
            stored,
        }))
    }

    /// Settles a claimed check inside `tx`: drops the claim, re-reads the
    /// user, and records the result. A failure counts (closing the lock at
    /// most once, with its row and notices); a success resets the counter
    /// only while the password is still open.
    pub(crate) async fn settle_in(
        &self,
        tx: &mut Tx,
        claim: &Claim,
        ok: bool,
        ctx: Context<'_>,
        now: OffsetDateTime,
    ) -> Result<std::result::Result<UserRow, OwnRefusal>> {
        let kind = claim.kind;
        tx.delete_claim(claim.id).await.db()?;
        let Some(mut me) = tx.user(claim.user).await.db()? else {
            return Ok(Err(OwnRefusal::Closed));
        };
        let open = match kind {
            PasswordKind::Login => me.counters.login_gate(now) == LoginGate::Open,
            PasswordKind::Confirm => me.counters.confirm_open(),
        };
        if !open {
            // Closed meanwhile (by concurrent failures or an administrator):
            // even a right password does not get through now.
            let detail = closed_detail(kind, &me, now);
            tx.audit(&own_row(
                &me,
                now,
                ctx.op,
                ctx.target,
                Outcome::Failed,
                detail,
                ctx.client,
            ))
            .await
            .db()?;
            return Ok(Err(OwnRefusal::Closed));
        }
        if ok {
            let c = &mut me.counters;
            let changed = match kind {
                PasswordKind::Login => c.login_failures != 0 || c.login_locked_until.is_some(),
                PasswordKind::Confirm => c.confirm_failures != 0,
            };
            if changed {
                match kind {
                    PasswordKind::Login => c.on_login_success(),
                    PasswordKind::Confirm => c.on_confirm_success(),
                }
                tx.save_counters(me.id, &me.counters).await.db()?;
            }
            return Ok(Ok(me));
        }
        let policy = self.settings.lockout();
        let outcome = match kind {
            PasswordKind::Login => me.counters.on_login_failure(now, &policy),
            PasswordKind::Confirm => me.counters.on_confirm_failure(&policy),
        };
        tx.save_counters(me.id, &me.counters).await.db()?;
        let detail = match kind {
            PasswordKind::Login => "ログインパスワード誤り",
            PasswordKind::Confirm => "確認用パスワード誤り",
        };
        tx.audit(&own_row(
            &me,
            now,
            ctx.op,
            ctx.target,
            Outcome::Failed,
            detail,
            ctx.client,
        ))
        .await
        .db()?;
        let lock = match (kind, outcome) {
            (_, FailureOutcome::Counted { .. }) => None,
            (PasswordKind::Login, FailureOutcome::TemporarilyLocked { .. }) => {
                Some(ServiceState::LoginTemporarilyLocked)
            }
            (PasswordKind::Login, FailureOutcome::Stopped) => Some(ServiceState::LoginStopped),
            (PasswordKind::Confirm, _) => Some(ServiceState::ConfirmStopped),
        };
        if let Some(state) = lock
            && let Some(op) = state.closed_operation()
        {
            let why = match kind {
                PasswordKind::Login => "連続したログインパスワード誤りによる",
                PasswordKind::Confirm => "連続した確認用パスワード誤りによる",
            };
            let label = state.label();
            let login = me.login_id.as_str();
            tx.audit(&own_row(
                &me,
                now,
                op,
                login,
                Outcome::Succeeded,
                why,
                ctx.client,
            ))
            .await
            .db()?;
            if kind == PasswordKind::Login {
                self.queue_lock_notices(tx, me.company_id, &me.login_id, me.id, label, now)
                    .await?;
            }
        }
        Ok(Err(OwnRefusal::Wrong {
            locked: lock.is_some(),
        }))
    }

    /// Claims a check of the acting user's own password of `kind` (its own
    /// transaction, committed). `Busy` when the pool is full.
    pub(crate) async fn claim_own(
        &self,
        actor: &Actor,
        kind: PasswordKind,
        ctx: Context<'_>,
    ) -> Result<std::result::Result<Claim, OwnRefusal>> {
        let place = self.place()?;
        let now = self.now();
        let mut tx = self.store.begin().await.db()?;
        let Some(me) = tx.user(actor.user_id).await.db()? else {
            return Ok(Err(OwnRefusal::Closed));
        };
        let claim = self.claim_in(&mut tx, place, &me, kind, ctx, now).await?;
        tx.commit().await.db()?;
        Ok(claim.map_err(|(r, _)| r))
    }

    /// Checks `password` against a claimed check's stored hash, on the
    /// claim's place.
    pub(crate) async fn verify_claimed(&self, claim: &Claim, password: &str) -> Result<bool> {
        self.hasher
            .verify(&claim.place, &claim.stored, password)
            .await
    }

    /// Settles a claimed check of the user's own password in a new
    /// transaction. A refusal is committed here; a success comes back with
    /// the open transaction, for the change to commit with it.
    pub(crate) async fn settle_own(
        &self,
        claim: Claim,
        ok: bool,
        ctx: Context<'_>,
    ) -> Result<std::result::Result<(Tx, Confirmed), OwnRefusal>> {
        let now = self.now();
        let mut tx = self.store.begin().await.db()?;
        let settled = self.settle_in(&mut tx, &claim, ok, ctx, now).await?;
        drop(claim.place);
        match settled {
            Ok(me) => Ok(Ok((tx, Confirmed { me }))),
            Err(r) => {
                tx.commit().await.db()?;
                Ok(Err(r))
            }
        }
    }

    /// The confirmation step of every change that asks for the
    /// 確認用パスワード: claim → hash → settle. On success the change goes
    /// into the returned transaction and commits with the check's result.
    pub(crate) async fn confirm(
        &self,
        actor: &Actor,
        password: &str,
        ctx: Context<'_>,
    ) -> Result<std::result::Result<(Tx, Confirmed), OwnRefusal>> {
        let claim = match self.claim_own(actor, PasswordKind::Confirm, ctx).await? {
            Ok(c) => c,
            Err(r) => return Ok(Err(r)),
        };
        let ok = self.verify_claimed(&claim, password).await?;
        self.settle_own(claim, ok, ctx).await
    }

    /// A place on the hashing pool, counted in the metrics when refused.
    pub(crate) fn place(&self) -> Result<Place> {
        self.hasher.place().inspect_err(|e| {
            if matches!(e, ServiceError::Busy) {
                tracing::debug!("password hashing pool full: refused as busy");
            }
        })
    }
}
