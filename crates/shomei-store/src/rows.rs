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
    /// Set by the bank (new user, reset): change at the next login.
    pub must_change_login: bool,
    pub must_change_confirm: bool,
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
     u.admin_stopped, u.last_login_at, u.must_change";

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
        must_change_login: r.try_get::<i64, _>("must_change")? & 1 != 0,
        must_change_confirm: r.try_get::<i64, _>("must_change")? & 2 != 0,
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
    let sql =
        format!("SELECT {USER_COLUMNS} FROM users u WHERE u.login_id = ? AND u.deleted_at IS NULL");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(login_id.as_str())
        .fetch_optional(c)
        .await?;
    row.as_ref().map(user).transpose()
}

pub(crate) async fn user_by_id(c: &mut SqliteConnection, id: UserId) -> Result<Option<UserRow>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = ? AND u.deleted_at IS NULL");
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

/// A company with how many users it has (the operator's `company list`).
#[derive(Debug, Clone)]
pub struct CompanySummary {
    pub id: CompanyId,
    pub name: String,
    pub service: Service,
    pub users: i64,
    pub created_at: OffsetDateTime,
}

pub(crate) async fn companies(pool: &SqlitePool) -> Result<Vec<CompanySummary>> {
    let rows: Vec<(i64, String, String, i64, i64)> = sqlx::query_as(
        "SELECT c.id, c.name, c.service, c.created_at, \
                (SELECT count(*) FROM users u WHERE u.company_id = c.id AND u.deleted_at IS NULL) \
         FROM companies c ORDER BY c.id",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(id, name, service, created_at, users)| {
            Ok(CompanySummary {
                id: CompanyId(id),
                name,
                service: Service::from_code(&service).ok_or(StoreError::Corrupt {
                    table: "companies",
                    column: "service",
                    value: service.clone(),
                })?,
                users,
                created_at: ts(created_at, "companies", "created_at")?,
            })
        })
        .collect()
}

/// A company user as lists show them: who, and their latest certificate's
/// record — without hashes, counters or certificate bodies, so that a
/// company of ten thousand users lists quickly.
#[derive(Debug, Clone)]
pub struct UserSummary {
    pub id: UserId,
    pub login_id: LoginId,
    pub name: String,
    pub role: Role,
    pub cert: Option<CertRecord>,
}

pub(crate) async fn user_summaries(
    pool: &SqlitePool,
    company: CompanyId,
) -> Result<Vec<UserSummary>> {
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
    let rows: Vec<Raw> = sqlx::query_as(
        "SELECT u.id, u.login_id, u.name, u.role, c.serial, c.not_before, c.not_after, c.revoked_at \
         FROM users u LEFT JOIN certificates c ON c.id = (SELECT MAX(id) FROM certificates WHERE user_id = u.id) \
         WHERE u.company_id = ? AND u.deleted_at IS NULL ORDER BY u.login_id",
    )
    .bind(company.0)
    .fetch_all(pool)
    .await?;
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
    c: &mut SqliteConnection,
    company: CompanyId,
) -> Result<Vec<(UserRow, Option<CertRow>)>> {
    let sql = format!(
        "SELECT {USER_COLUMNS}, {CERT_COLUMNS} FROM users u \
         LEFT JOIN certificates c ON c.id = (SELECT MAX(id) FROM certificates WHERE user_id = u.id) \
         WHERE u.company_id = ? AND u.deleted_at IS NULL ORDER BY u.login_id"
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

/// Rows of the revocation set read per query: bounds the size of one
/// aggregated chunk (about 50 bytes a row).
const REVOKED_CHUNK: i64 = 100_000;

/// One chunk of the revocation set after the serial `after`: its size, its
/// highest serial, and the rows aggregated by SQLite into one text value
/// `serial,at,reason;…`, all read from the covering index.
async fn revoked_chunk(
    pool: &SqlitePool,
    after: &str,
    upto: &str,
) -> Result<(i64, Option<String>, Option<String>)> {
    Ok(sqlx::query_as(
        "SELECT count(*), max(serial), group_concat(serial || ',' || revoked_at || ',' || ifnull(revocation_reason, 0), ';') \
         FROM (SELECT serial, revoked_at, revocation_reason FROM certificates \
               WHERE revoked_at IS NOT NULL AND serial > ?1 AND serial <= ?2 ORDER BY serial LIMIT ?3)",
    )
    .bind(after)
    .bind(upto)
    .bind(REVOKED_CHUNK)
    .fetch_one(pool)
    .await?)
}

fn corrupt_revoked(value: &str) -> StoreError {
    StoreError::Corrupt {
        table: "certificates",
        column: "serial, revoked_at, revocation_reason",
        value: value.to_owned(),
    }
}

/// `serial,at,reason` → (serial octets into `buf`, at, reason).
fn parse_revoked<'b>(item: &str, buf: &'b mut [u8; 20]) -> Result<(&'b [u8], i64, u8)> {
    let mut parts = item.split(',');
    let (Some(hex), Some(at), Some(reason), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(corrupt_revoked(item));
    };
    let hex = hex.as_bytes();
    if hex.is_empty() || hex.len() % 2 != 0 || hex.len() > 40 {
        return Err(corrupt_revoked(item));
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let n = hex.len() / 2;
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        let (Some(h), Some(l)) = (nibble(pair[0]), nibble(pair[1])) else {
            return Err(corrupt_revoked(item));
        };
        buf[i] = h << 4 | l;
    }
    let at: i64 = at.parse().map_err(|_| corrupt_revoked(item))?;
    let reason: u8 = reason.parse().map_err(|_| corrupt_revoked(item))?;
    Ok((&buf[..n], at, reason))
}

/// Above every serial as stored (lower-case hex).
const SERIAL_MAX: &str = "~";

/// Calls `f(serial, revoked_at, reason)` with every revoked certificate
/// (Unix seconds; reason 0 when none was given). Each chunk is one query
/// and one text value rather than a hundred thousand row round trips; the
/// serials are split in two halves read by two connections at once, and
/// each half reads its next chunk while this one is parsed: a million rows
/// load in about half a second. Chunks follow the index by key (keyset),
/// never by offset.
pub(crate) async fn for_each_revoked(
    pool: &SqlitePool,
    f: impl FnMut(&[u8], i64, u8) + Send,
) -> Result<usize> {
    let n = revoked_count(pool).await?;
    // A mutex, not a RefCell, so that a reload can run in a spawned task; it
    // is never contended (see below).
    let f = std::sync::Mutex::new(f);
    if n <= 2 * REVOKED_CHUNK as usize {
        return revoked_range(pool, String::new(), SERIAL_MAX, &f).await;
    }
    let mid: String = sqlx::query_scalar(
        "SELECT serial FROM certificates WHERE revoked_at IS NOT NULL ORDER BY serial LIMIT 1 OFFSET ?",
    )
    .bind((n / 2) as i64)
    .fetch_one(pool)
    .await?;
    let (a, b) = tokio::join!(
        revoked_range(pool, String::new(), &mid, &f),
        revoked_range(pool, mid.clone(), SERIAL_MAX, &f),
    );
    Ok(a? + b?)
}

/// The revoked serials in (`after`, `upto`], chunk by chunk.
async fn revoked_range(
    pool: &SqlitePool,
    after: String,
    upto: &str,
    f: &std::sync::Mutex<impl FnMut(&[u8], i64, u8) + Send>,
) -> Result<usize> {
    let mut total = 0usize;
    let mut current = revoked_chunk(pool, &after, upto).await?;
    let mut buf = [0u8; 20];
    while let (n, Some(last), Some(text)) = current {
        total += n as usize;
        // Synchronous from start to end: the borrow of `f` never spans an
        // await, so the other half's parse cannot overlap it.
        let parse = async {
            let mut f = f.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for item in text.split(';') {
                let (serial, at, reason) = parse_revoked(item, &mut buf)?;
                f(serial, at, reason);
            }
            Ok::<_, StoreError>(())
        };
        if n < REVOKED_CHUNK {
            parse.await?;
            break;
        }
        // The query is polled first (handing it to SQLite's thread), then
        // the parse runs while SQLite reads the next chunk.
        let (next, parsed) = tokio::join!(biased; revoked_chunk(pool, &last, upto), parse);
        parsed?;
        current = next?;
    }
    Ok(total)
}

/// A revocation as the log gives it to other processes.
#[derive(Debug, Clone)]
pub struct LoggedRevocation {
    pub log_id: i64,
    pub serial: Serial,
    pub revoked_at: OffsetDateTime,
    pub reason: Option<u8>,
    pub invalidity: Option<OffsetDateTime>,
}

pub(crate) async fn invalidity_dates(pool: &SqlitePool) -> Result<Vec<(Serial, OffsetDateTime)>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT serial, invalidity_date FROM certificates WHERE invalidity_date IS NOT NULL AND revoked_at IS NOT NULL",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(s, t)| {
            Ok((
                Serial::from_hex(&s).ok_or_else(|| corrupt_revoked(&s))?,
                ts(t, "certificates", "invalidity_date")?,
            ))
        })
        .collect()
}

pub(crate) async fn revocation_log_head(pool: &SqlitePool) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT ifnull(max(id), 0) FROM revocation_log")
            .fetch_one(pool)
            .await?,
    )
}

pub(crate) async fn revocations_after(
    pool: &SqlitePool,
    after: i64,
) -> Result<Vec<LoggedRevocation>> {
    /// log id, serial, revoked_at, reason, invalidity_date
    type Logged = (i64, String, Option<i64>, Option<i64>, Option<i64>);
    let rows: Vec<Logged> = sqlx::query_as(
        "SELECT l.id, l.serial, COALESCE(c.revoked_at, r.revoked_at), \
         COALESCE(c.revocation_reason, r.reason), c.invalidity_date \
         FROM revocation_log l LEFT JOIN certificates c ON c.serial = l.serial \
         LEFT JOIN reimported_revocations r ON r.serial = l.serial \
         WHERE l.id > ? ORDER BY l.id LIMIT 10000",
    )
    .bind(after)
    .fetch_all(pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for (log_id, serial, at, reason, invalidity) in rows {
        let Some(at) = at else { continue };
        out.push(LoggedRevocation {
            log_id,
            serial: Serial::from_hex(&serial).ok_or_else(|| corrupt_revoked(&serial))?,
            revoked_at: ts(at, "certificates", "revoked_at")?,
            reason: reason.map(|r| r as u8).filter(|r| *r != 0),
            invalidity: invalidity
                .map(|t| ts(t, "certificates", "invalidity_date"))
                .transpose()?,
        });
    }
    Ok(out)
}

/// How many certificates are revoked (to size the revocation set).
pub(crate) async fn revoked_count(pool: &SqlitePool) -> Result<usize> {
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM certificates WHERE revoked_at IS NOT NULL")
            .fetch_one(pool)
            .await?;
    Ok(n as usize)
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
