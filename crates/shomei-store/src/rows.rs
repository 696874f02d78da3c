//! Rows and the queries that read and write them.

use shomei_core::{
    CertRecord, CompanyId, LoginId, Role, SecurityCounters, Serial, Service, UserId,
};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection, SqlitePool};
use time::OffsetDateTime;

use crate::{Result, StoreError};

#[derive(Debug, Clone)]
pub struct CompanyRow {
    pub id: CompanyId,
    pub name: String,
    pub service: Service,
}

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: UserId,
    pub company_id: CompanyId,
    pub login_id: LoginId,
    pub name: String,
    pub role: Role,
    pub email: String,
    pub login_hash: String,
    pub confirm_hash: String,
    pub counters: SecurityCounters,
    pub last_login_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone)]
pub struct CertRow {
    pub id: i64,
    pub user_id: UserId,
    pub serial: Serial,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
    pub reason: Option<u8>,
    pub der: Vec<u8>,
}

impl CertRow {
    /// What state derivation needs.
    pub fn record(&self) -> CertRecord {
        CertRecord {
            serial: self.serial.clone(),
            not_before: self.not_before,
            not_after: self.not_after,
            revoked_at: self.revoked_at,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RevokedRow {
    pub serial: Serial,
    pub revoked_at: OffsetDateTime,
    pub reason: Option<u8>,
}

pub struct NewUser<'a> {
    pub company_id: CompanyId,
    pub login_id: &'a LoginId,
    pub name: &'a str,
    pub role: Role,
    pub email: &'a str,
    pub login_hash: &'a str,
    pub confirm_hash: &'a str,
}

pub struct NewCert<'a> {
    pub user_id: UserId,
    pub serial: &'a Serial,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub der: &'a [u8],
    pub issued_at: OffsetDateTime,
}

fn ts(t: i64, table: &'static str, column: &'static str) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(t).map_err(|_| StoreError::Corrupt {
        table,
        column,
        value: t.to_string(),
    })
}

fn opt_ts(
    t: Option<i64>,
    table: &'static str,
    column: &'static str,
) -> Result<Option<OffsetDateTime>> {
    t.map(|t| ts(t, table, column)).transpose()
}

const USER_COLUMNS: &str = "u.id, u.company_id, u.login_id, u.name, u.role, u.email, u.login_hash, u.confirm_hash, \
     u.login_failures, u.login_locked_until, u.login_stopped, u.confirm_failures, u.confirm_stopped, \
     u.admin_stopped, u.last_login_at";

const CERT_COLUMNS: &str = "c.id AS c_id, c.user_id AS c_user_id, c.serial AS c_serial, c.not_before AS c_not_before, \
     c.not_after AS c_not_after, c.revoked_at AS c_revoked_at, c.revocation_reason AS c_reason, c.der AS c_der";

fn user(r: &SqliteRow) -> Result<UserRow> {
    let login_id: String = r.try_get("login_id")?;
    let role: String = r.try_get("role")?;
    Ok(UserRow {
        id: UserId(r.try_get("id")?),
        company_id: CompanyId(r.try_get("company_id")?),
        login_id: LoginId::parse(&login_id).ok_or(StoreError::Corrupt {
            table: "users",
            column: "login_id",
            value: login_id.clone(),
        })?,
        name: r.try_get("name")?,
        role: Role::from_code(&role).ok_or(StoreError::Corrupt {
            table: "users",
            column: "role",
            value: role.clone(),
        })?,
        email: r.try_get("email")?,
        login_hash: r.try_get("login_hash")?,
        confirm_hash: r.try_get("confirm_hash")?,
        counters: SecurityCounters {
            login_failures: r.try_get::<i64, _>("login_failures")? as u32,
            login_locked_until: opt_ts(
                r.try_get("login_locked_until")?,
                "users",
                "login_locked_until",
            )?,
            login_stopped: r.try_get("login_stopped")?,
            confirm_failures: r.try_get::<i64, _>("confirm_failures")? as u32,
            confirm_stopped: r.try_get("confirm_stopped")?,
            admin_stopped: r.try_get("admin_stopped")?,
        },
        last_login_at: opt_ts(r.try_get("last_login_at")?, "users", "last_login_at")?,
    })
}

fn cert(r: &SqliteRow) -> Result<Option<CertRow>> {
    let Some(id) = r.try_get::<Option<i64>, _>("c_id")? else {
        return Ok(None);
    };
    let serial: String = r.try_get("c_serial")?;
    Ok(Some(CertRow {
        id,
        user_id: UserId(r.try_get("c_user_id")?),
        serial: Serial::from_hex(&serial).ok_or(StoreError::Corrupt {
            table: "certificates",
            column: "serial",
            value: serial.clone(),
        })?,
        not_before: ts(r.try_get("c_not_before")?, "certificates", "not_before")?,
        not_after: ts(r.try_get("c_not_after")?, "certificates", "not_after")?,
        revoked_at: opt_ts(r.try_get("c_revoked_at")?, "certificates", "revoked_at")?,
        reason: r.try_get::<Option<i64>, _>("c_reason")?.map(|x| x as u8),
        der: r.try_get("c_der")?,
    }))
}

pub(crate) async fn user_by_login_id(
    c: &mut SqliteConnection,
    login_id: &LoginId,
) -> Result<Option<UserRow>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.login_id = ?");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(login_id.as_str())
        .fetch_optional(c)
        .await?;
    row.as_ref().map(user).transpose()
}

pub(crate) async fn user_by_id(c: &mut SqliteConnection, id: UserId) -> Result<Option<UserRow>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id.0)
        .fetch_optional(c)
        .await?;
    row.as_ref().map(user).transpose()
}

pub(crate) async fn company(c: &mut SqliteConnection, id: CompanyId) -> Result<Option<CompanyRow>> {
    let row = sqlx::query("SELECT id, name, service FROM companies WHERE id = ?")
        .bind(id.0)
        .fetch_optional(c)
        .await?;
    row.map(|r| {
        let service: String = r.try_get("service")?;
        Ok(CompanyRow {
            id: CompanyId(r.try_get("id")?),
            name: r.try_get("name")?,
            service: Service::from_code(&service).ok_or(StoreError::Corrupt {
                table: "companies",
                column: "service",
                value: service.clone(),
            })?,
        })
    })
    .transpose()
}

pub(crate) async fn users_with_latest_cert(
    c: &mut SqliteConnection,
    company: CompanyId,
) -> Result<Vec<(UserRow, Option<CertRow>)>> {
    let sql = format!(
        "SELECT {USER_COLUMNS}, {CERT_COLUMNS} FROM users u \
         LEFT JOIN certificates c ON c.id = (SELECT MAX(id) FROM certificates WHERE user_id = u.id) \
         WHERE u.company_id = ? ORDER BY u.login_id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(company.0)
        .fetch_all(c)
        .await?;
    rows.iter().map(|r| Ok((user(r)?, cert(r)?))).collect()
}

pub(crate) async fn latest_cert(c: &mut SqliteConnection, user: UserId) -> Result<Option<CertRow>> {
    let sql = format!(
        "SELECT {CERT_COLUMNS} FROM certificates c WHERE c.user_id = ? ORDER BY c.id DESC LIMIT 1"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(user.0)
        .fetch_optional(c)
        .await?;
    Ok(match row {
        Some(r) => cert(&r)?,
        None => None,
    })
}

pub(crate) async fn cert_by_serial(
    c: &mut SqliteConnection,
    serial: &Serial,
) -> Result<Option<CertRow>> {
    let sql = format!("SELECT {CERT_COLUMNS} FROM certificates c WHERE c.serial = ?");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(serial.to_string())
        .fetch_optional(c)
        .await?;
    Ok(match row {
        Some(r) => cert(&r)?,
        None => None,
    })
}

pub(crate) async fn revoked(pool: &SqlitePool) -> Result<Vec<RevokedRow>> {
    let rows = sqlx::query(
        "SELECT serial, revoked_at, revocation_reason FROM certificates WHERE revoked_at IS NOT NULL ORDER BY revoked_at, id",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let serial: String = r.try_get("serial")?;
            Ok(RevokedRow {
                serial: Serial::from_hex(&serial).ok_or(StoreError::Corrupt {
                    table: "certificates",
                    column: "serial",
                    value: serial.clone(),
                })?,
                revoked_at: ts(r.try_get("revoked_at")?, "certificates", "revoked_at")?,
                reason: r
                    .try_get::<Option<i64>, _>("revocation_reason")?
                    .map(|x| x as u8),
            })
        })
        .collect()
}

pub(crate) async fn insert_company(
    c: &mut SqliteConnection,
    name: &str,
    service: Service,
    now: OffsetDateTime,
) -> Result<CompanyId> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO companies (name, service, created_at) VALUES (?, ?, ?) RETURNING id",
    )
    .bind(name)
    .bind(service.code())
    .bind(now.unix_timestamp())
    .fetch_one(c)
    .await?;
    Ok(CompanyId(id))
}

pub(crate) async fn insert_user(
    c: &mut SqliteConnection,
    u: &NewUser<'_>,
    now: OffsetDateTime,
) -> Result<UserId> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO users (company_id, login_id, name, role, email, login_hash, confirm_hash, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(u.company_id.0)
    .bind(u.login_id.as_str())
    .bind(u.name)
    .bind(u.role.code())
    .bind(u.email)
    .bind(u.login_hash)
    .bind(u.confirm_hash)
    .bind(now.unix_timestamp())
    .fetch_one(c)
    .await?;
    Ok(UserId(id))
}

pub(crate) async fn insert_cert(c: &mut SqliteConnection, n: &NewCert<'_>) -> Result<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO certificates (user_id, serial, not_before, not_after, der, issued_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(n.user_id.0)
    .bind(n.serial.to_hex())
    .bind(n.not_before.unix_timestamp())
    .bind(n.not_after.unix_timestamp())
    .bind(n.der)
    .bind(n.issued_at.unix_timestamp())
    .fetch_one(c)
    .await?;
    Ok(id)
}

pub(crate) async fn save_counters(
    c: &mut SqliteConnection,
    user: UserId,
    s: &SecurityCounters,
) -> Result<()> {
    sqlx::query(
        "UPDATE users SET login_failures = ?, login_locked_until = ?, login_stopped = ?, \
         confirm_failures = ?, confirm_stopped = ?, admin_stopped = ? WHERE id = ?",
    )
    .bind(i64::from(s.login_failures))
    .bind(s.login_locked_until.map(|t| t.unix_timestamp()))
    .bind(s.login_stopped)
    .bind(i64::from(s.confirm_failures))
    .bind(s.confirm_stopped)
    .bind(s.admin_stopped)
    .bind(user.0)
    .execute(c)
    .await?;
    Ok(())
}
