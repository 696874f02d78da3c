//! Claims on password checks, attempts per client address, and the servers'
//! shared secrets: the rows that keep the lockout and the address limit right
//! however many requests arrive at once, on one server or several.

use shomei_core::UserId;
use time::OffsetDateTime;

use crate::Result;
use crate::db::{Conn, Get, on};
use crate::users::lock_user;
use crate::{Store, Tx};

/// Which password a claim is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimKind {
    /// The login password (ログインパスワード).
    Login,
    /// The confirmation password (確認用パスワード).
    Confirm,
}

impl ClaimKind {
    fn as_str(self) -> &'static str {
        match self {
            ClaimKind::Login => "login",
            ClaimKind::Confirm => "confirm",
        }
    }
}

/// One client address's attempts in its current window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressAttempts {
    /// When the address's current counting window began.
    pub window_start: OffsetDateTime,
    /// Attempts started in the window, less the successes.
    pub attempts: u32,
    /// Until when the address's logins and enrollments are refused
    /// outright; `None`: not blocked.
    pub blocked_until: Option<OffsetDateTime>,
    /// Refusals not yet written to 操作履歴.
    pub refused_unrecorded: u32,
    /// When the last 操作履歴 row about this address's refusals was
    /// written (at most one a minute); `None`: none yet.
    pub last_row_at: Option<OffsetDateTime>,
}

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Claims of `kind` on `user` that have not lapsed at `now` (lapsed ones go).
///
/// The caller inserts a claim when this count allows one. On Postgres the
/// user's row is locked first: a second node's transaction for the same
/// user waits at that lock until this one commits, and only then counts
/// (each statement reads what is committed when it starts), so two checks
/// never both take the last place. SQLite's one writer does the same.
pub(crate) async fn live_claims(
    mut c: Conn<'_>,
    user: UserId,
    kind: ClaimKind,
    now: OffsetDateTime,
) -> Result<u32> {
    lock_user(c.reborrow(), user).await?;
    let n: i64 = on!(c, c, d => {
        sqlx::query(d::sql("DELETE FROM password_claims WHERE user_id = ? AND expires_at <= ?"))
            .bind(user.0)
            .bind(now.unix_timestamp())
            .execute(&mut *c)
            .await?;
        sqlx::query_scalar(d::sql(
            "SELECT COUNT(*) FROM password_claims WHERE user_id = ? AND kind = ?",
        ))
        .bind(user.0)
        .bind(kind.as_str())
        .fetch_one(&mut *c)
        .await?
    });
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

pub(crate) async fn insert_claim(
    c: Conn<'_>,
    user: UserId,
    kind: ClaimKind,
    expires_at: OffsetDateTime,
) -> Result<i64> {
    Ok(on!(c, c, d => {
        sqlx::query_scalar(d::sql(
            "INSERT INTO password_claims (user_id, kind, expires_at) VALUES (?, ?, ?) RETURNING id",
        ))
        .bind(user.0)
        .bind(kind.as_str())
        .bind(expires_at.unix_timestamp())
        .fetch_one(c)
        .await?
    }))
}

/// Drops a claim. On Postgres its user's row is locked first, in the order
/// every other transaction takes it (user, then the user's claims): a check
/// counting claims while holding the user cannot wait for this one.
pub(crate) async fn delete_claim(mut c: Conn<'_>, id: i64) -> Result<()> {
    if let Conn::Pg(c) = c.reborrow() {
        sqlx::query(
            "SELECT id FROM users WHERE id = (SELECT user_id FROM password_claims WHERE id = $1) \
             FOR UPDATE",
        )
        .bind(id)
        .fetch_optional(c)
        .await?;
    }
    on!(c, c, d => {
        sqlx::query(d::sql("DELETE FROM password_claims WHERE id = ?"))
            .bind(id)
            .execute(c)
            .await?;
    });
    Ok(())
}

/// The address's attempts, read for a change in the same transaction.
///
/// The row may not exist yet, and a row that does not exist cannot be
/// locked with `FOR UPDATE`; so on Postgres the transaction first takes a
/// transaction-scoped advisory lock on the address (released at commit or
/// rollback, never held by a session). Two nodes counting attempts from one
/// address queue there, and the second reads the first's row once it has
/// committed: no attempt is lost between the read and `save_address`.
pub(crate) async fn address(mut c: Conn<'_>, addr: &str) -> Result<Option<AddressAttempts>> {
    lock_address(c.reborrow(), addr).await?;
    on!(c, c, d => {
        let row = sqlx::query(d::sql(
            "SELECT window_start, attempts, blocked_until, refused_unrecorded, last_row_at \
             FROM address_attempts WHERE addr = ?",
        ))
        .bind(addr)
        .fetch_optional(c)
        .await?;
        row.as_ref().map(address_row).transpose()
    })
}

/// Locks the address until the transaction ends (Postgres; see `address`).
///
/// Locks are taken in one order: the client's address, then the user, then
/// the 操作履歴 chain. A transaction that will read the address after it has
/// locked a user (a login's settling step) takes this first, else it and a
/// login starting from the same address could each wait for the other.
pub(crate) async fn lock_address(c: Conn<'_>, addr: &str) -> Result<()> {
    if let Conn::Pg(c) = c {
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind(ADDRESS_LOCKS)
            .bind(addr)
            .execute(c)
            .await?;
    }
    Ok(())
}

/// The first key of the advisory locks on client addresses (the second is
/// a hash of the address): "AD" in ASCII, apart from any other use.
const ADDRESS_LOCKS: i32 = 0x4144;

fn address_row(r: &impl Get) -> Result<AddressAttempts> {
    Ok(AddressAttempts {
        window_start: at(r.int("window_start")?),
        attempts: u32::try_from(r.int("attempts")?).unwrap_or(0),
        blocked_until: r.opt_int("blocked_until")?.map(at),
        refused_unrecorded: u32::try_from(r.int("refused_unrecorded")?).unwrap_or(0),
        last_row_at: r.opt_int("last_row_at")?.map(at),
    })
}

pub(crate) async fn save_address(c: Conn<'_>, addr: &str, a: &AddressAttempts) -> Result<()> {
    on!(c, c, d => {
        sqlx::query(d::sql(
            "INSERT INTO address_attempts \
             (addr, window_start, attempts, blocked_until, refused_unrecorded, last_row_at) \
             VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (addr) DO UPDATE SET window_start = excluded.window_start, \
             attempts = excluded.attempts, blocked_until = excluded.blocked_until, \
             refused_unrecorded = excluded.refused_unrecorded, last_row_at = excluded.last_row_at",
        ))
        .bind(addr)
        .bind(a.window_start.unix_timestamp())
        .bind(i64::from(a.attempts))
        .bind(a.blocked_until.map(|t| t.unix_timestamp()))
        .bind(i64::from(a.refused_unrecorded))
        .bind(a.last_row_at.map(|t| t.unix_timestamp()))
        .execute(c)
        .await?;
    });
    Ok(())
}

/// Addresses with refusals not yet written whose last row is older than
/// `before` (the upkeep writes their rows). Each row is read through
/// `address`, so it is locked as a login's would be.
pub(crate) async fn addresses_with_unrecorded(
    mut c: Conn<'_>,
    before: OffsetDateTime,
    limit: i64,
) -> Result<Vec<(String, AddressAttempts)>> {
    let addrs: Vec<String> = on!(c.reborrow(), c, d => {
        sqlx::query_scalar(d::sql(
            "SELECT addr FROM address_attempts WHERE refused_unrecorded > 0 \
             AND (last_row_at IS NULL OR last_row_at <= ?) ORDER BY addr LIMIT ?",
        ))
        .bind(before.unix_timestamp())
        .bind(limit)
        .fetch_all(c)
        .await?
    });
    let mut out = Vec::with_capacity(addrs.len());
    for a in addrs {
        if let Some(row) = address(c.reborrow(), &a).await? {
            out.push((a, row));
        }
    }
    Ok(out)
}

/// Forgets addresses whose window and block are over with nothing left to
/// record, and claims that lapsed.
pub(crate) async fn prune(
    c: Conn<'_>,
    window_start_before: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<u64> {
    Ok(on!(c, c, d => {
        let a = sqlx::query(d::sql(
            "DELETE FROM address_attempts WHERE window_start < ? AND refused_unrecorded = 0 \
             AND (blocked_until IS NULL OR blocked_until <= ?)",
        ))
        .bind(window_start_before.unix_timestamp())
        .bind(now.unix_timestamp())
        .execute(&mut *c)
        .await?
        .rows_affected();
        let b = sqlx::query(d::sql("DELETE FROM password_claims WHERE expires_at <= ?"))
            .bind(now.unix_timestamp())
            .execute(&mut *c)
            .await?
            .rows_affected();
        a + b
    }))
}

/// The secret `name`, created from `fresh` by the first server that asks.
/// On Postgres, a second node inserting at the same moment waits for the
/// first's commit (the primary key), does nothing, and reads its value.
pub(crate) async fn secret(c: Conn<'_>, name: &str, fresh: &[u8]) -> Result<Vec<u8>> {
    Ok(on!(c, c, d => {
        sqlx::query(d::sql(
            "INSERT INTO server_secrets (name, value) VALUES (?, ?) ON CONFLICT DO NOTHING",
        ))
        .bind(name)
        .bind(fresh)
        .execute(&mut *c)
        .await?;
        sqlx::query_scalar(d::sql("SELECT value FROM server_secrets WHERE name = ?"))
            .bind(name)
            .fetch_one(&mut *c)
            .await?
    }))
}

impl Store {
    /// Forgets address windows that began before `window_start_before` and
    /// are over, and lapsed claims.
    pub async fn prune_attempts(
        &self,
        window_start_before: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<u64> {
        let mut tx = self.begin().await?;
        let n = prune(tx.conn(), window_start_before, now).await?;
        tx.commit().await?;
        Ok(n)
    }
}

impl Tx {
    /// Claims on `user`'s password of `kind` still live at `now` (locks the
    /// user first: see `live_claims`).
    pub async fn live_claims(
        &mut self,
        user: UserId,
        kind: ClaimKind,
        now: OffsetDateTime,
    ) -> Result<u32> {
        live_claims(self.conn(), user, kind, now).await
    }

    /// Claims one check of `kind`'s password for `user`, before hashing;
    /// returns the claim's id for `delete_claim`. A claim a crashed server
    /// leaves lapses at `expires_at`.
    pub async fn insert_claim(
        &mut self,
        user: UserId,
        kind: ClaimKind,
        expires_at: OffsetDateTime,
    ) -> Result<i64> {
        insert_claim(self.conn(), user, kind, expires_at).await
    }

    /// Gives the claim back, in the transaction that records the check's
    /// result.
    pub async fn delete_claim(&mut self, id: i64) -> Result<()> {
        delete_claim(self.conn(), id).await
    }

    /// The address's attempts, locked until the transaction ends (see
    /// `address`).
    pub async fn address_attempts(&mut self, addr: &str) -> Result<Option<AddressAttempts>> {
        address(self.conn(), addr).await
    }

    /// Locks the address's attempts until the transaction ends, before
    /// any user is locked (the order of locks: address, user, 操作履歴
    /// chain; see `lock_address`). Nothing to do on SQLite.
    pub async fn lock_address(&mut self, addr: &str) -> Result<()> {
        lock_address(self.conn(), addr).await
    }

    /// Writes the address's attempts (inserting the row if new).
    pub async fn save_address_attempts(&mut self, addr: &str, a: &AddressAttempts) -> Result<()> {
        save_address(self.conn(), addr, a).await
    }

    /// Addresses whose refusals wait to be written, last written before `before`.
    pub async fn addresses_with_unrecorded(
        &mut self,
        before: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<(String, AddressAttempts)>> {
        addresses_with_unrecorded(self.conn(), before, limit).await
    }
}
