//! Logged-in portal sessions, shared by every server on the database: keyed
//! by the SHA-256 of the session id, with the screen state of the
//! revocation flow (BRSK019 pending, BRSK020 done).

use shomei_core::UserId;
use sqlx::{Row, SqliteConnection, SqlitePool};
use time::OffsetDateTime;

use crate::{Result, StoreError};

/// A pending BRSK019: what it shows and the token its 実行 must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRow {
    pub token: String,
    pub user_id: i64,
    pub login_id: String,
    pub name: String,
    pub state: String,
    pub expiry: Option<i64>,
    pub serial: String,
}

/// What BRSK020 shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoneRow {
    pub login_id: String,
    pub name: String,
    pub state: String,
    pub serial: String,
}

/// One session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id_hash: String,
    pub user_id: UserId,
    pub csrf: String,
    pub cert_serial: Option<String>,
    pub last_seen: OffsetDateTime,
    pub pending: Option<PendingRow>,
    pub done: Option<DoneRow>,
}

fn at(secs: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(secs).map_err(|_| StoreError::Corrupt {
        table: "sessions",
        column: "last_seen",
        value: secs.to_string(),
    })
}

const COLUMNS: &str = "id_hash, user_id, csrf, cert_serial, last_seen, pending_token, \
     pending_user_id, pending_login_id, pending_name, pending_state, pending_expiry, \
     pending_serial, done_login_id, done_name, done_state, done_serial";

fn row_of(r: &sqlx::sqlite::SqliteRow) -> Result<SessionRow> {
    let pending = match r.try_get::<Option<String>, _>("pending_token")? {
        Some(token) => Some(PendingRow {
            token,
            user_id: r.try_get::<Option<i64>, _>("pending_user_id")?.unwrap_or(0),
            login_id: r
                .try_get::<Option<String>, _>("pending_login_id")?
                .unwrap_or_default(),
            name: r
                .try_get::<Option<String>, _>("pending_name")?
                .unwrap_or_default(),
            state: r
                .try_get::<Option<String>, _>("pending_state")?
                .unwrap_or_default(),
            expiry: r.try_get("pending_expiry")?,
            serial: r
                .try_get::<Option<String>, _>("pending_serial")?
                .unwrap_or_default(),
        }),
        None => None,
    };
    let done = match r.try_get::<Option<String>, _>("done_login_id")? {
        Some(login_id) => Some(DoneRow {
            login_id,
            name: r
                .try_get::<Option<String>, _>("done_name")?
                .unwrap_or_default(),
            state: r
                .try_get::<Option<String>, _>("done_state")?
                .unwrap_or_default(),
            serial: r
                .try_get::<Option<String>, _>("done_serial")?
                .unwrap_or_default(),
        }),
        None => None,
    };
    Ok(SessionRow {
        id_hash: r.try_get("id_hash")?,
        user_id: UserId(r.try_get("user_id")?),
        csrf: r.try_get("csrf")?,
        cert_serial: r.try_get("cert_serial")?,
        last_seen: at(r.try_get("last_seen")?)?,
        pending,
        done,
    })
}

pub(crate) async fn get(pool: &SqlitePool, id_hash: &str) -> Result<Option<SessionRow>> {
    let sql = format!("SELECT {COLUMNS} FROM sessions WHERE id_hash = ?");
    let r = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id_hash)
        .fetch_optional(pool)
        .await?;
    r.as_ref().map(row_of).transpose()
}

pub(crate) async fn get_in(c: &mut SqliteConnection, id_hash: &str) -> Result<Option<SessionRow>> {
    let sql = format!("SELECT {COLUMNS} FROM sessions WHERE id_hash = ?");
    let r = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id_hash)
        .fetch_optional(c)
        .await?;
    r.as_ref().map(row_of).transpose()
}

pub(crate) async fn count(pool: &SqlitePool) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM sessions")
        .fetch_one(pool)
        .await?)
}

/// The user's sessions, oldest first.
pub(crate) async fn of_user(c: &mut SqliteConnection, user: UserId) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT id_hash FROM sessions WHERE user_id = ? ORDER BY last_seen, id_hash",
    )
    .bind(user.0)
    .fetch_all(c)
    .await?)
}

pub(crate) async fn count_in(c: &mut SqliteConnection) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM sessions")
        .fetch_one(c)
        .await?)
}

pub(crate) async fn insert(c: &mut SqliteConnection, s: &SessionRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO sessions (id_hash, user_id, csrf, cert_serial, last_seen) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(&s.id_hash)
    .bind(s.user_id.0)
    .bind(&s.csrf)
    .bind(&s.cert_serial)
    .bind(s.last_seen.unix_timestamp())
    .execute(c)
    .await?;
    Ok(())
}

pub(crate) async fn delete(c: &mut SqliteConnection, id_hash: &str) -> Result<bool> {
    Ok(sqlx::query("DELETE FROM sessions WHERE id_hash = ?")
        .bind(id_hash)
        .execute(c)
        .await?
        .rows_affected()
        == 1)
}

pub(crate) async fn touch(
    c: &mut SqliteConnection,
    id_hash: &str,
    at: OffsetDateTime,
) -> Result<()> {
    sqlx::query("UPDATE sessions SET last_seen = ? WHERE id_hash = ? AND last_seen < ?")
        .bind(at.unix_timestamp())
        .bind(id_hash)
        .bind(at.unix_timestamp())
        .execute(c)
        .await?;
    Ok(())
}

pub(crate) async fn set_pending(
    c: &mut SqliteConnection,
    id_hash: &str,
    p: Option<&PendingRow>,
) -> Result<()> {
    sqlx::query(
        "UPDATE sessions SET pending_token = ?, pending_user_id = ?, pending_login_id = ?, \
         pending_name = ?, pending_state = ?, pending_expiry = ?, pending_serial = ?, \
         done_login_id = CASE WHEN ? THEN NULL ELSE done_login_id END \
         WHERE id_hash = ?",
    )
    .bind(p.map(|p| p.token.as_str()))
    .bind(p.map(|p| p.user_id))
    .bind(p.map(|p| p.login_id.as_str()))
    .bind(p.map(|p| p.name.as_str()))
    .bind(p.map(|p| p.state.as_str()))
    .bind(p.and_then(|p| p.expiry))
    .bind(p.map(|p| p.serial.as_str()))
    .bind(p.is_some())
    .bind(id_hash)
    .execute(c)
    .await?;
    Ok(())
}

pub(crate) async fn set_done(
    c: &mut SqliteConnection,
    id_hash: &str,
    d: Option<&DoneRow>,
) -> Result<()> {
    sqlx::query(
        "UPDATE sessions SET done_login_id = ?, done_name = ?, done_state = ?, done_serial = ? \
         WHERE id_hash = ?",
    )
    .bind(d.map(|d| d.login_id.as_str()))
    .bind(d.map(|d| d.name.as_str()))
    .bind(d.map(|d| d.state.as_str()))
    .bind(d.map(|d| d.serial.as_str()))
    .bind(id_hash)
    .execute(c)
    .await?;
    Ok(())
}

/// Deletes the sessions idle since before `before`; their users.
pub(crate) async fn expire(
    c: &mut SqliteConnection,
    before: OffsetDateTime,
) -> Result<Vec<UserId>> {
    let users: Vec<i64> =
        sqlx::query_scalar("DELETE FROM sessions WHERE last_seen < ? RETURNING user_id")
            .bind(before.unix_timestamp())
            .fetch_all(c)
            .await?;
    Ok(users.into_iter().map(UserId).collect())
}
