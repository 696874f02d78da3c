//! Users: the rows, their counters and passwords, created, changed and
//! deleted by their company's administrators.

use shomei_core::{CertRecord, CompanyId, LoginId, Role, SecurityCounters, Serial, UserId};
use time::OffsetDateTime;

use crate::certificates::{CERT_COLUMNS, cert};
use crate::db::{Conn, Db, Get, Pool, Sql, on};
use crate::rows::{Lock, opt_ts, ts};
use crate::{CertRow, Result, Store, StoreError, Tx};

/// One row of `users`: a person of a client company who logs in to the
/// portal, with both password hashes and the lock counters — what login,
/// password changes and the company administrator's screens need.
#[derive(Debug, Clone)]
pub struct UserRow {
    /// The row's id; certificates, sessions and 操作履歴 rows refer to it.
    pub id: UserId,
    /// The client company the user belongs to; never changes.
    pub company_id: CompanyId,
    /// The login ID typed on the login screen, unique across all companies.
    pub login_id: LoginId,
    /// The person's name as the company administrator entered it (shown on
    /// screens, not put in certificates).
    pub name: String,
    /// マスター / 管理者 / 一般: what the user may do for their company.
    pub role: Role,
    /// Where e-mail notices go (the certificate soon to expire; for
    /// administrators, a user of theirs locked out); empty: none is sent.
    pub email: String,
    /// The login password's Argon2id hash (PHC string), never the password.
    pub login_hash: String,
    /// The confirmation password's (確認用パスワード) hash, asked before
    /// issuing, renewing or revoking.
    pub confirm_hash: String,
    /// Failure counts, time locks and stops for both passwords and the
    /// administrator's stop.
    pub counters: SecurityCounters,
    /// When the user last logged in; `None` until the first login.
    pub last_login_at: Option<OffsetDateTime>,
    /// Set by the bank (new user, reset): change at the next login.
    pub must_change_login: bool,
    /// The same for the confirmation password.
    pub must_change_confirm: bool,
}

/// What is needed to insert a user; the password hashes are made by the
/// caller. The row starts with clean counters and no change demanded
/// (`must_change` is set afterwards, by a reset).
pub struct NewUser<'a> {
    /// The company the user is added to.
    pub company_id: CompanyId,
    /// Must be unused in every company; a duplicate fails on the unique
    /// index (a `StoreError::Db` the caller should have prevented).
    pub login_id: &'a LoginId,
    /// The person's name.
    pub name: &'a str,
    /// The user's role in the company.
    pub role: Role,
    /// Address for notices; may be empty.
    pub email: &'a str,
    /// Argon2id hash of the initial login password.
    pub login_hash: &'a str,
    /// Argon2id hash of the initial confirmation password.
    pub confirm_hash: &'a str,
}

macro_rules! user_columns {
    () => {
        "u.id, u.company_id, u.login_id, u.name, u.role, u.email, u.login_hash, u.confirm_hash, \
         u.login_failures, u.login_locked_until, u.login_stopped, u.confirm_failures, u.confirm_stopped, \
         u.admin_stopped, u.last_login_at, u.must_change"
    };
}
pub(crate) const USER_COLUMNS: &str = user_columns!();

/// A user (not deleted) where `$cond`: read as it is, or (`locked`) its row
/// locked on Postgres until the transaction ends (`Lock::ForUpdate`).
macro_rules! user_where {
    ($cond:literal) => {
        concat!(
            "SELECT ",
            user_columns!(),
            " FROM users u WHERE ",
            $cond,
            " AND u.deleted_at IS NULL"
        )
    };
    ($cond:literal, locked) => {
        Sql {
            sqlite: user_where!($cond),
            postgres: concat!(user_where!($cond), " FOR UPDATE OF u"),
        }
    };
}
const USER_BY_LOGIN_ID: Sql = Sql::both(user_where!("u.login_id = ?"));
const USER_BY_LOGIN_ID_FOR_UPDATE: Sql = user_where!("u.login_id = ?", locked);
const USER_BY_ID: Sql = Sql::both(user_where!("u.id = ?"));
const USER_BY_ID_FOR_UPDATE: Sql = user_where!("u.id = ?", locked);

pub(crate) fn user(r: &impl Get) -> Result<UserRow> {
    let login_id = r.text("login_id")?;
    let role = r.text("role")?;
    let must_change = r.int("must_change")?;
    Ok(UserRow {
        id: UserId(r.int("id")?),
        company_id: CompanyId(r.int("company_id")?),
        login_id: LoginId::parse(&login_id).ok_or(StoreError::Corrupt {
            table: "users",
            column: "login_id",
            value: login_id.clone(),
        })?,
        name: r.text("name")?,
        role: Role::from_code(&role).ok_or(StoreError::Corrupt {
            table: "users",
            column: "role",
            value: role.clone(),
        })?,
        email: r.text("email")?,
        login_hash: r.text("login_hash")?,
        confirm_hash: r.text("confirm_hash")?,
        counters: SecurityCounters {
            login_failures: r.int("login_failures")? as u32,
            login_locked_until: opt_ts(
                r.opt_int("login_locked_until")?,
                "users",
                "login_locked_until",
            )?,
            login_stopped: r.flag("login_stopped")?,
            confirm_failures: r.int("confirm_failures")? as u32,
            confirm_stopped: r.flag("confirm_stopped")?,
            admin_stopped: r.flag("admin_stopped")?,
        },
        last_login_at: opt_ts(r.opt_int("last_login_at")?, "users", "last_login_at")?,
        must_change_login: must_change & 1 != 0,
        must_change_confirm: must_change & 2 != 0,
    })
}

/// On Postgres, locks the user's row until the transaction ends (every
/// transaction that reads a user to change what belongs to them takes this
/// lock first: one order, so they queue rather than deadlock).
pub(crate) async fn lock_user(c: Conn<'_>, user: UserId) -> Result<()> {
    if let Conn::Pg(c) = c {
        sqlx::query("SELECT id FROM users WHERE id = $1 FOR UPDATE")
            .bind(user.0)
            .fetch_optional(c)
            .await?;
    }
    Ok(())
}

pub(crate) async fn user_by_login_id(
    c: Conn<'_>,
    login_id: &LoginId,
    lock: Lock,
) -> Result<Option<UserRow>> {
    let sql = match lock {
        Lock::None => &USER_BY_LOGIN_ID,
        Lock::ForUpdate => &USER_BY_LOGIN_ID_FOR_UPDATE,
    };
    on!(c, c, d => {
        let row = sqlx::query(d::of(sql))
            .bind(login_id.as_str())
            .fetch_optional(c)
            .await?;
        row.as_ref().map(user).transpose()
    })
}

pub(crate) async fn user_by_id(c: Conn<'_>, id: UserId, lock: Lock) -> Result<Option<UserRow>> {
    let sql = match lock {
        Lock::None => &USER_BY_ID,
        Lock::ForUpdate => &USER_BY_ID_FOR_UPDATE,
    };
    on!(c, c, d => {
        let row = sqlx::query(d::of(sql))
            .bind(id.0)
            .fetch_optional(c)
            .await?;
        row.as_ref().map(user).transpose()
    })
}

/// A company user as lists show them: who, and their latest certificate's
/// record — without hashes, counters or certificate bodies, so that a
/// company of ten thousand users lists quickly.
#[derive(Debug, Clone)]
pub struct UserSummary {
    /// The user's row id.
    pub id: UserId,
    /// The user's login ID.
    pub login_id: LoginId,
    /// The person's name.
    pub name: String,
    /// The user's role in the company.
    pub role: Role,
    /// The newest certificate issued to the user (whatever its state), or
    /// `None` if none was ever issued.
    pub cert: Option<CertRecord>,
}

pub(crate) async fn user_summaries(pool: Pool<'_>, company: CompanyId) -> Result<Vec<UserSummary>> {
    type Raw = (
        i64,
        String,
        String,
        String,
        Option<String>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
    );
    let rows: Vec<Raw> = on!(pool, p, d => {
        sqlx::query_as(d::sql(
            "SELECT u.id, u.login_id, u.name, u.role, c.serial, c.not_before, c.not_after, c.revoked_at \
             FROM users u LEFT JOIN certificates c ON c.id = (SELECT MAX(id) FROM certificates WHERE user_id = u.id) \
             WHERE u.company_id = ? AND u.deleted_at IS NULL ORDER BY u.login_id",
        ))
        .bind(company.0)
        .fetch_all(p)
        .await?
    });
    rows.into_iter()
        .map(|(id, login_id, name, role, serial, nb, na, revoked)| {
            let corrupt = |column: &'static str, value: String| StoreError::Corrupt {
                table: "users",
                column,
                value,
            };
            let cert = match (serial, nb, na) {
                (Some(serial), Some(nb), Some(na)) => Some(CertRecord {
                    serial: Serial::from_hex(&serial)
                        .ok_or_else(|| corrupt("serial", serial.clone()))?,
                    not_before: ts(nb, "certificates", "not_before")?,
                    not_after: ts(na, "certificates", "not_after")?,
                    revoked_at: opt_ts(revoked, "certificates", "revoked_at")?,
                }),
                _ => None,
            };
            Ok(UserSummary {
                id: UserId(id),
                login_id: LoginId::parse(&login_id)
                    .ok_or_else(|| corrupt("login_id", login_id.clone()))?,
                name,
                role: Role::from_code(&role).ok_or_else(|| corrupt("role", role.clone()))?,
                cert,
            })
        })
        .collect()
}

pub(crate) async fn users_with_latest_cert(
    c: Conn<'_>,
    company: CompanyId,
) -> Result<Vec<(UserRow, Option<CertRow>)>> {
    let sql = format!(
        "SELECT {USER_COLUMNS}, {CERT_COLUMNS} FROM users u \
         LEFT JOIN certificates c ON c.id = (SELECT MAX(id) FROM certificates WHERE user_id = u.id) \
         WHERE u.company_id = ? AND u.deleted_at IS NULL ORDER BY u.login_id"
    );
    on!(c, c, d => {
        let rows = sqlx::query(d::sql(sql)).bind(company.0).fetch_all(c).await?;
        rows.iter().map(|r| Ok((user(r)?, cert(r)?))).collect()
    })
}

pub(crate) async fn insert_user(
    c: Conn<'_>,
    u: &NewUser<'_>,
    now: OffsetDateTime,
) -> Result<UserId> {
    let id: i64 = on!(c, c, d => {
        sqlx::query_scalar(d::sql(
            "INSERT INTO users (company_id, login_id, name, role, email, login_hash, confirm_hash, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        ))
        .bind(u.company_id.0)
        .bind(u.login_id.as_str())
        .bind(u.name)
        .bind(u.role.code())
        .bind(u.email)
        .bind(u.login_hash)
        .bind(u.confirm_hash)
        .bind(now.unix_timestamp())
        .fetch_one(c)
        .await?
    });
    Ok(UserId(id))
}

pub(crate) async fn save_counters(c: Conn<'_>, user: UserId, s: &SecurityCounters) -> Result<()> {
    on!(c, c, d => {
        sqlx::query(d::sql(
            "UPDATE users SET login_failures = ?, login_locked_until = ?, login_stopped = ?, \
             confirm_failures = ?, confirm_stopped = ?, admin_stopped = ? WHERE id = ?",
        ))
        .bind(i64::from(s.login_failures))
        .bind(s.login_locked_until.map(|t| t.unix_timestamp()))
        .bind(s.login_stopped)
        .bind(i64::from(s.confirm_failures))
        .bind(s.confirm_stopped)
        .bind(s.admin_stopped)
        .bind(user.0)
        .execute(c)
        .await?;
    });
    Ok(())
}

impl Store {
    /// The user with this login ID (any company), or `None`; not locked.
    pub async fn user_by_login_id(&self, login_id: &LoginId) -> Result<Option<UserRow>> {
        user_by_login_id(self.reader().acquire().await?.conn(), login_id, Lock::None).await
    }

    /// The user with this id, or `None` (deleted or never existed); not
    /// locked.
    pub async fn user(&self, id: UserId) -> Result<Option<UserRow>> {
        user_by_id(self.reader().acquire().await?.conn(), id, Lock::None).await
    }

    /// The company's users with their latest certificate's record, lean.
    pub async fn user_summaries(&self, company: CompanyId) -> Result<Vec<UserSummary>> {
        user_summaries(self.reader(), company).await
    }

    /// The company's users, each with their most recent certificate.
    pub async fn users_with_latest_cert(
        &self,
        company: CompanyId,
    ) -> Result<Vec<(UserRow, Option<CertRow>)>> {
        users_with_latest_cert(self.reader().acquire().await?.conn(), company).await
    }
}

impl Tx {
    /// The user, locked until the transaction ends (Postgres; see `Lock`).
    pub async fn user(&mut self, id: UserId) -> Result<Option<UserRow>> {
        user_by_id(self.conn(), id, Lock::ForUpdate).await
    }

    /// The user, locked until the transaction ends (Postgres; see `Lock`).
    pub async fn user_by_login_id(&mut self, login_id: &LoginId) -> Result<Option<UserRow>> {
        user_by_login_id(self.conn(), login_id, Lock::ForUpdate).await
    }

    /// Adds the user and returns its new id. A login ID already in use
    /// fails on the unique index.
    pub async fn insert_user(&mut self, u: &NewUser<'_>, now: OffsetDateTime) -> Result<UserId> {
        insert_user(self.conn(), u, now).await
    }

    /// Writes the user's failure counts, locks and stops as they are after a
    /// login or confirmation attempt (or an unlock).
    pub async fn save_counters(&mut self, user: UserId, c: &SecurityCounters) -> Result<()> {
        save_counters(self.conn(), user, c).await
    }

    /// Replaces the login password's hash (`confirm`: the confirmation
    /// password's).
    pub async fn set_password_hash(
        &mut self,
        user: UserId,
        confirm: bool,
        hash: &str,
    ) -> Result<()> {
        let sql = if confirm {
            "UPDATE users SET confirm_hash = ?, must_change = must_change & ~2 WHERE id = ?"
        } else {
            "UPDATE users SET login_hash = ?, must_change = must_change & ~1 WHERE id = ?"
        };
        on!(self.conn(), c, d => {
            sqlx::query(d::sql(sql)).bind(hash).bind(user.0).execute(c).await?;
        });
        Ok(())
    }

    /// Sets both password hashes (the bank's reset) and whether they must
    /// be changed at the next login.
    pub async fn reset_passwords(
        &mut self,
        user: UserId,
        login_hash: &str,
        confirm_hash: &str,
        must_change: bool,
    ) -> Result<()> {
        on!(self.conn(), c, d => {
            sqlx::query(d::sql(
                "UPDATE users SET login_hash = ?, confirm_hash = ?, must_change = ? WHERE id = ?",
            ))
            .bind(login_hash)
            .bind(confirm_hash)
            .bind(if must_change { 3i64 } else { 0 })
            .bind(user.0)
            .execute(c)
            .await?;
        });
        Ok(())
    }

    /// Is the login ID taken, by any user ever (deleted ones too)? (Two
    /// nodes adding the same ID at once: the UNIQUE constraint refuses the
    /// second insert.)
    pub async fn login_id_taken(&mut self, login_id: &LoginId) -> Result<bool> {
        let n: i64 = on!(self.conn(), c, d => {
            sqlx::query_scalar(d::sql("SELECT count(*) FROM users WHERE login_id = ?"))
                .bind(login_id.as_str())
                .fetch_one(c)
                .await?
        });
        Ok(n > 0)
    }

    /// How many (not deleted) users a company has, and how many マスター.
    ///
    /// The caller adds, removes or demotes a user by what this counts (the
    /// company's limit, its last マスター). On Postgres the company's row is
    /// locked first, so that two such changes in one company take turns and
    /// the second counts after the first has committed.
    pub async fn user_counts(&mut self, company: CompanyId) -> Result<(i64, i64)> {
        if let Db::Pg(c) = self.conn() {
            sqlx::query("SELECT id FROM companies WHERE id = $1 FOR UPDATE")
                .bind(company.0)
                .fetch_optional(c)
                .await?;
        }
        Ok(on!(self.conn(), c, d => {
            sqlx::query_as(d::sql(
                "SELECT count(*), count(*) FILTER (WHERE role = 'master') FROM users \
                 WHERE company_id = ? AND deleted_at IS NULL",
            ))
            .bind(company.0)
            .fetch_one(c)
            .await?
        }))
    }

    /// Name, 利用者区分 and e-mail of a user.
    pub async fn update_user(
        &mut self,
        user: UserId,
        name: &str,
        role: shomei_core::Role,
        email: &str,
    ) -> Result<()> {
        on!(self.conn(), c, d => {
            sqlx::query(d::sql("UPDATE users SET name = ?, role = ?, email = ? WHERE id = ?"))
                .bind(name)
                .bind(role.code())
                .bind(email)
                .bind(user.0)
                .execute(c)
                .await?;
        });
        Ok(())
    }

    /// Deletes a user (kept as a row: certificates and login ID stay).
    pub async fn delete_user(&mut self, user: UserId, at: OffsetDateTime) -> Result<()> {
        on!(self.conn(), c, d => {
            sqlx::query(d::sql(
                "UPDATE users SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL",
            ))
            .bind(at.unix_timestamp())
            .bind(user.0)
            .execute(c)
            .await?;
        });
        Ok(())
    }

    /// The マスター and 管理者 users of a company who have an e-mail address.
    pub async fn company_admins(&mut self, company: CompanyId) -> Result<Vec<UserId>> {
        let ids: Vec<i64> = on!(self.conn(), c, d => {
            sqlx::query_scalar(d::sql(
                "SELECT id FROM users WHERE company_id = ? AND role IN ('master', 'admin') \
                 AND deleted_at IS NULL AND email != '' ORDER BY id",
            ))
            .bind(company.0)
            .fetch_all(c)
            .await?
        });
        Ok(ids.into_iter().map(UserId).collect())
    }

    /// Records a successful login's time (shown to the user at the next one).
    pub async fn set_last_login(&mut self, user: UserId, at: OffsetDateTime) -> Result<()> {
        on!(self.conn(), c, d => {
            sqlx::query(d::sql("UPDATE users SET last_login_at = ? WHERE id = ?"))
                .bind(at.unix_timestamp())
                .bind(user.0)
                .execute(c)
                .await?;
        });
        Ok(())
    }
}
