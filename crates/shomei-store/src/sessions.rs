//! Logged-in portal sessions, shared by every server on the database: keyed
//! by the SHA-256 of the session id, with the screen state of the
//! revocation flow (BRSK019 pending, BRSK020 done).

use shomei_core::UserId;
use time::OffsetDateTime;

use crate::Store;
use crate::db::{Conn, Get, Pool, Sql, on};
use crate::users::lock_user;
use crate::{Result, StoreError};

/// A pending BRSK019: what it shows and the token its 実行 must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRow {
    /// The one-time token the 実行 form must send back; a resubmitted or
    /// stale form does not match it.
    pub token: String,
    /// The user whose certificate is to be revoked.
    pub user_id: i64,
    /// That user's login ID, as shown.
    pub login_id: String,
    /// That user's name, as shown.
    pub name: String,
    /// The certificate's state label as shown (発行済, 更新可, …).
    pub state: String,
    /// The certificate's end of validity, Unix seconds; `None` when there
    /// is none to show.
    pub expiry: Option<i64>,
    /// The certificate's serial, hex.
    pub serial: String,
}

/// What BRSK020 shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoneRow {
    /// The revoked certificate's holder's login ID.
    pub login_id: String,
    /// The holder's name.
    pub name: String,
    /// The certificate's state label after the revocation (失効済).
    pub state: String,
    /// The revoked certificate's serial, hex.
    pub serial: String,
}

/// One session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// SHA-256 (hex) of the session id in the cookie; the id itself is
    /// never stored, so a copy of the database opens no session.
    pub id_hash: String,
    /// The logged-in user.
    pub user_id: UserId,
    /// The CSRF token every form of the session must carry.
    pub csrf: String,
    /// For a 電子証明書方式 login, the serial (hex) of the certificate it
    /// was opened with: revoking that certificate ends the session.
    pub cert_serial: Option<String>,
    /// The last request's time: the idle timeout counts from it.
    pub last_seen: OffsetDateTime,
    /// BRSK019 waiting for 実行.
    pub pending: Option<PendingRow>,
    /// BRSK020's content after a revocation.
    pub done: Option<DoneRow>,
}

fn at(secs: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(secs).map_err(|_| StoreError::Corrupt {
        table: "sessions",
        column: "last_seen",
        value: secs.to_string(),
    })
}

macro_rules! columns {
    () => {
        "id_hash, user_id, csrf, cert_serial, last_seen, pending_token, \
         pending_user_id, pending_login_id, pending_name, pending_state, pending_expiry, \
         pending_serial, done_login_id, done_name, done_state, done_serial"
    };
}
const COLUMNS: &str = columns!();

/// A session by its id's hash, the row locked on Postgres until the
/// transaction ends.
const SESSION_FOR_UPDATE: Sql = Sql {
    sqlite: concat!("SELECT ", columns!(), " FROM sessions WHERE id_hash = ?"),
    postgres: concat!(
        "SELECT ",
        columns!(),
        " FROM sessions WHERE id_hash = ? FOR UPDATE"
    ),
};

fn opt_text(r: &impl Get, col: &str) -> Result<Option<String>> {
    r.opt_text(col)
}

fn row_of(r: &impl Get) -> Result<SessionRow> {
    let pending = match opt_text(r, "pending_token")? {
        Some(token) => Some(PendingRow {
            token,
            user_id: r.opt_int("pending_user_id")?.unwrap_or(0),
            login_id: opt_text(r, "pending_login_id")?.unwrap_or_default(),
            name: opt_text(r, "pending_name")?.unwrap_or_default(),
            state: opt_text(r, "pending_state")?.unwrap_or_default(),
            expiry: r.opt_int("pending_expiry")?,
            serial: opt_text(r, "pending_serial")?.unwrap_or_default(),
        }),
        None => None,
    };
    let done = match opt_text(r, "done_login_id")? {
        Some(login_id) => Some(DoneRow {
            login_id,
            name: opt_text(r, "done_name")?.unwrap_or_default(),
            state: opt_text(r, "done_state")?.unwrap_or_default(),
            serial: opt_text(r, "done_serial")?.unwrap_or_default(),
        }),
        None => None,
    };
    Ok(SessionRow {
        id_hash: r.text("id_hash")?,
        user_id: UserId(r.int("user_id")?),
        csrf: r.text("csrf")?,
        cert_serial: opt_text(r, "cert_serial")?,
        last_seen: at(r.int("last_seen")?)?,
        pending,
        done,
    })
}

pub(crate) async fn get(pool: Pool<'_>, id_hash: &str) -> Result<Option<SessionRow>> {
    let sql = format!("SELECT {COLUMNS} FROM sessions WHERE id_hash = ?");
    on!(pool, p, d => {
        let r = sqlx::query(d::sql(sql)).bind(id_hash).fetch_optional(p).await?;
        r.as_ref().map(row_of).transpose()
    })
}

/// As `get`, inside a transaction, locking the row (Postgres) until it ends.
pub(crate) async fn get_for_update(c: Conn<'_>, id_hash: &str) -> Result<Option<SessionRow>> {
    on!(c, c, d => {
        let r = sqlx::query(d::of(&SESSION_FOR_UPDATE))
            .bind(id_hash)
            .fetch_optional(c)
            .await?;
        r.as_ref().map(row_of).transpose()
    })
}

pub(crate) async fn count(pool: Pool<'_>) -> Result<i64> {
    Ok(on!(pool, p, d => {
        sqlx::query_scalar(d::sql("SELECT count(*) FROM sessions")).fetch_one(p).await?
    }))
}

/// The user's sessions, oldest first; the user's row is locked (Postgres)
/// so that two logins of one user on two servers take turns.
pub(crate) async fn of_user(mut c: Conn<'_>, user: UserId) -> Result<Vec<String>> {
    lock_user(c.reborrow(), user).await?;
    Ok(on!(c, c, d => {
        sqlx::query_scalar(d::sql(
            "SELECT id_hash FROM sessions WHERE user_id = ? ORDER BY last_seen, id_hash",
        ))
        .bind(user.0)
        .fetch_all(c)
        .await?
    }))
}

pub(crate) async fn count_in(c: Conn<'_>) -> Result<i64> {
    Ok(on!(c, c, d => {
        sqlx::query_scalar(d::sql("SELECT count(*) FROM sessions")).fetch_one(c).await?
    }))
}

pub(crate) async fn insert(c: Conn<'_>, s: &SessionRow) -> Result<()> {
    on!(c, c, d => {
        sqlx::query(d::sql(
            "INSERT INTO sessions (id_hash, user_id, csrf, cert_serial, last_seen) VALUES (?, ?, ?, ?, ?)",
        ))
        .bind(&s.id_hash)
        .bind(s.user_id.0)
        .bind(&s.csrf)
        .bind(&s.cert_serial)
        .bind(s.last_seen.unix_timestamp())
        .execute(c)
        .await?;
    });
    Ok(())
}

pub(crate) async fn delete(c: Conn<'_>, id_hash: &str) -> Result<bool> {
    let n = on!(c, c, d => {
        sqlx::query(d::sql("DELETE FROM sessions WHERE id_hash = ?"))
            .bind(id_hash)
            .execute(c)
            .await?
            .rows_affected()
    });
    Ok(n == 1)
}

pub(crate) async fn touch(c: Conn<'_>, id_hash: &str, at: OffsetDateTime) -> Result<()> {
    on!(c, c, d => {
        sqlx::query(d::sql(
            "UPDATE sessions SET last_seen = ? WHERE id_hash = ? AND last_seen < ?",
        ))
        .bind(at.unix_timestamp())
        .bind(id_hash)
        .bind(at.unix_timestamp())
        .execute(c)
        .await?;
    });
    Ok(())
}

pub(crate) async fn set_pending(c: Conn<'_>, id_hash: &str, p: Option<&PendingRow>) -> Result<()> {
    on!(c, c, d => {
        sqlx::query(d::sql(
            "UPDATE sessions SET pending_token = ?, pending_user_id = ?, pending_login_id = ?, \
             pending_name = ?, pending_state = ?, pending_expiry = ?, pending_serial = ?, \
             done_login_id = CASE WHEN ? THEN NULL ELSE done_login_id END \
             WHERE id_hash = ?",
        ))
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
    });
    Ok(())
}

pub(crate) async fn set_done(c: Conn<'_>, id_hash: &str, d_: Option<&DoneRow>) -> Result<()> {
    on!(c, c, d => {
        sqlx::query(d::sql(
            "UPDATE sessions SET done_login_id = ?, done_name = ?, done_state = ?, done_serial = ? \
             WHERE id_hash = ?",
        ))
        .bind(d_.map(|x| x.login_id.as_str()))
        .bind(d_.map(|x| x.name.as_str()))
        .bind(d_.map(|x| x.state.as_str()))
        .bind(d_.map(|x| x.serial.as_str()))
        .bind(id_hash)
        .execute(c)
        .await?;
    });
    Ok(())
}

/// Deletes the sessions idle since before `before`; their users.
pub(crate) async fn expire(c: Conn<'_>, before: OffsetDateTime) -> Result<Vec<UserId>> {
    let users: Vec<i64> = on!(c, c, d => {
        sqlx::query_scalar(d::sql("DELETE FROM sessions WHERE last_seen < ? RETURNING user_id"))
            .bind(before.unix_timestamp())
            .fetch_all(c)
            .await?
    });
    Ok(users.into_iter().map(UserId).collect())
}

impl Store {
    /// The session whose id hashes to `id_hash`.
    pub async fn session(&self, id_hash: &str) -> Result<Option<SessionRow>> {
        get(self.reader(), id_hash).await
    }

    /// Logged-in sessions in all.
    pub async fn session_count(&self) -> Result<i64> {
        count(self.reader()).await
    }

    /// Adds a session in one transaction: the user's oldest sessions make
    /// room when they hold `per_user` already, or one when all `max` places
    /// are taken and they hold any; `false` (nothing written) when all
    /// places are taken by others.
    pub async fn create_session(
        &self,
        s: &SessionRow,
        per_user: usize,
        max: usize,
    ) -> Result<bool> {
        self.create_session_in_turn(s, per_user, max, false).await
    }

    /// As `create_session`, for a returning customer's login: SQLite's next
    /// writer turn (see `Store::begin_first`).
    pub async fn create_session_first(
        &self,
        s: &SessionRow,
        per_user: usize,
        max: usize,
    ) -> Result<bool> {
        self.create_session_in_turn(s, per_user, max, true).await
    }

    async fn create_session_in_turn(
        &self,
        s: &SessionRow,
        per_user: usize,
        max: usize,
        first: bool,
    ) -> Result<bool> {
        let mut tx = if first {
            self.begin_first().await?
        } else {
            self.begin().await?
        };
        let own = of_user(tx.conn(), s.user_id).await?;
        let all = usize::try_from(count_in(tx.conn()).await?).unwrap_or(usize::MAX);
        let surplus = if own.len() >= per_user {
            own.len() + 1 - per_user
        } else {
            usize::from(all >= max && !own.is_empty())
        };
        for id in own.iter().take(surplus) {
            delete(tx.conn(), id).await?;
        }
        if all - surplus.min(all) >= max {
            return Ok(false);
        }
        insert(tx.conn(), s).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Ends the session (logout, timeout); `false` if it was already gone.
    pub async fn delete_session(&self, id_hash: &str) -> Result<bool> {
        let mut tx = self.begin().await?;
        let gone = delete(tx.conn(), id_hash).await?;
        tx.commit().await?;
        Ok(gone)
    }

    /// Moves the session's idle clock to `at` (never back).
    pub async fn touch_session(&self, id_hash: &str, at: OffsetDateTime) -> Result<()> {
        let mut tx = self.begin().await?;
        touch(tx.conn(), id_hash, at).await?;
        tx.commit().await
    }

    /// Sets (or clears) the pending BRSK019; setting it clears BRSK020's content.
    pub async fn set_session_pending(&self, id_hash: &str, p: Option<&PendingRow>) -> Result<()> {
        let mut tx = self.begin().await?;
        set_pending(tx.conn(), id_hash, p).await?;
        tx.commit().await
    }

    /// Takes the pending BRSK019 if `matches` accepts its token, in one
    /// transaction holding the session's row: of two submits of the same
    /// form, on one server or two, one finds it.
    pub async fn take_session_pending(
        &self,
        id_hash: &str,
        matches: impl FnOnce(&str) -> bool,
    ) -> Result<Option<PendingRow>> {
        let mut tx = self.begin().await?;
        let Some(p) = get_for_update(tx.conn(), id_hash)
            .await?
            .and_then(|s| s.pending)
        else {
            return Ok(None);
        };
        if !matches(&p.token) {
            return Ok(None);
        }
        set_pending(tx.conn(), id_hash, None).await?;
        tx.commit().await?;
        Ok(Some(p))
    }

    /// Sets (or clears) BRSK020's content.
    pub async fn set_session_done(&self, id_hash: &str, d: Option<&DoneRow>) -> Result<()> {
        let mut tx = self.begin().await?;
        set_done(tx.conn(), id_hash, d).await?;
        tx.commit().await
    }

    /// Ends the sessions idle since before `before`; the users whose
    /// sessions ended.
    pub async fn expire_sessions(&self, before: OffsetDateTime) -> Result<Vec<UserId>> {
        let mut tx = self.begin().await?;
        let users = expire(tx.conn(), before).await?;
        tx.commit().await?;
        Ok(users)
    }
}
