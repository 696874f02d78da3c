//! Claims on password checks, attempts per client address, and the servers'
//! shared secrets: the rows that keep the lockout and the address limit right
//! however many requests arrive at once, on one server or several.

use shomei_core::UserId;
use sqlx::{Row, SqliteConnection};
use time::OffsetDateTime;

use crate::Result;

/// Which password a claim is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimKind {
    Login,
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
    pub window_start: OffsetDateTime,
    /// Attempts started in the window, less the successes.
    pub attempts: u32,
    pub blocked_until: Option<OffsetDateTime>,
    /// Refusals not yet written to 操作履歴.
    pub refused_unrecorded: u32,
    pub last_row_at: Option<OffsetDateTime>,
}

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Claims of `kind` on `user` that have not lapsed at `now` (lapsed ones go).
pub(crate) async fn live_claims(
    c: &mut SqliteConnection,
    user: UserId,
    kind: ClaimKind,
    now: OffsetDateTime,
) -> Result<u32> {
    sqlx::query("DELETE FROM password_claims WHERE user_id = ? AND expires_at <= ?")
        .bind(user.0)
        .bind(now.unix_timestamp())
        .execute(&mut *c)
        .await?;
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM password_claims WHERE user_id = ? AND kind = ?")
            .bind(user.0)
            .bind(kind.as_str())
            .fetch_one(&mut *c)
            .await?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

pub(crate) async fn insert_claim(
    c: &mut SqliteConnection,
    user: UserId,
    kind: ClaimKind,
    expires_at: OffsetDateTime,
) -> Result<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO password_claims (user_id, kind, expires_at) VALUES (?, ?, ?) RETURNING id",
    )
    .bind(user.0)
    .bind(kind.as_str())
    .bind(expires_at.unix_timestamp())
    .fetch_one(c)
    .await?;
    Ok(id)
}

pub(crate) async fn delete_claim(c: &mut SqliteConnection, id: i64) -> Result<()> {
    sqlx::query("DELETE FROM password_claims WHERE id = ?")
        .bind(id)
        .execute(c)
        .await?;
    Ok(())
}

pub(crate) async fn address(
    c: &mut SqliteConnection,
    addr: &str,
) -> Result<Option<AddressAttempts>> {
    let row = sqlx::query(
        "SELECT window_start, attempts, blocked_until, refused_unrecorded, last_row_at \
         FROM address_attempts WHERE addr = ?",
    )
    .bind(addr)
    .fetch_optional(c)
    .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(AddressAttempts {
        window_start: at(r.try_get("window_start")?),
        attempts: u32::try_from(r.try_get::<i64, _>("attempts")?).unwrap_or(0),
        blocked_until: r.try_get::<Option<i64>, _>("blocked_until")?.map(at),
        refused_unrecorded: u32::try_from(r.try_get::<i64, _>("refused_unrecorded")?).unwrap_or(0),
        last_row_at: r.try_get::<Option<i64>, _>("last_row_at")?.map(at),
    }))
}

pub(crate) async fn save_address(
    c: &mut SqliteConnection,
    addr: &str,
    a: &AddressAttempts,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO address_attempts \
         (addr, window_start, attempts, blocked_until, refused_unrecorded, last_row_at) \
         VALUES (?, ?, ?, ?, ?, ?) \
         ON CONFLICT (addr) DO UPDATE SET window_start = excluded.window_start, \
         attempts = excluded.attempts, blocked_until = excluded.blocked_until, \
         refused_unrecorded = excluded.refused_unrecorded, last_row_at = excluded.last_row_at",
    )
    .bind(addr)
    .bind(a.window_start.unix_timestamp())
    .bind(i64::from(a.attempts))
    .bind(a.blocked_until.map(|t| t.unix_timestamp()))
    .bind(i64::from(a.refused_unrecorded))
    .bind(a.last_row_at.map(|t| t.unix_timestamp()))
    .execute(c)
    .await?;
    Ok(())
}

/// Addresses with refusals not yet written whose last row is older than
/// `before` (the upkeep writes their rows).
pub(crate) async fn addresses_with_unrecorded(
    c: &mut SqliteConnection,
    before: OffsetDateTime,
    limit: i64,
) -> Result<Vec<(String, AddressAttempts)>> {
    let addrs: Vec<String> = sqlx::query_scalar(
        "SELECT addr FROM address_attempts WHERE refused_unrecorded > 0 \
         AND (last_row_at IS NULL OR last_row_at <= ?) ORDER BY addr LIMIT ?",
    )
    .bind(before.unix_timestamp())
    .bind(limit)
    .fetch_all(&mut *c)
    .await?;
    let mut out = Vec::with_capacity(addrs.len());
    for a in addrs {
        if let Some(row) = address(c, &a).await? {
            out.push((a, row));
        }
    }
    Ok(out)
}

/// Forgets addresses whose window and block are over with nothing left to
/// record, and claims that lapsed.
pub(crate) async fn prune(
    c: &mut SqliteConnection,
    window_start_before: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<u64> {
    let a = sqlx::query(
        "DELETE FROM address_attempts WHERE window_start < ? AND refused_unrecorded = 0 \
         AND (blocked_until IS NULL OR blocked_until <= ?)",
    )
    .bind(window_start_before.unix_timestamp())
    .bind(now.unix_timestamp())
    .execute(&mut *c)
    .await?
    .rows_affected();
    let b = sqlx::query("DELETE FROM password_claims WHERE expires_at <= ?")
        .bind(now.unix_timestamp())
        .execute(c)
        .await?
        .rows_affected();
    Ok(a + b)
}

/// The secret `name`, created from `fresh` by the first server that asks.
pub(crate) async fn secret(c: &mut SqliteConnection, name: &str, fresh: &[u8]) -> Result<Vec<u8>> {
    sqlx::query("INSERT INTO server_secrets (name, value) VALUES (?, ?) ON CONFLICT DO NOTHING")
        .bind(name)
        .bind(fresh)
        .execute(&mut *c)
        .await?;
    Ok(
        sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = ?")
            .bind(name)
            .fetch_one(c)
            .await?,
    )
}
