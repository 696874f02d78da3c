//! Rows and the queries that read and write them.

use shomei_core::{
    CertRecord, CompanyId, CrlScope, LoginId, Role, SecurityCounters, Serial, Service, UserId,
};
use time::OffsetDateTime;

use crate::db::{Conn, Get, Pool, on};
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
    /// The CRL its distribution point names.
    pub crl_scope: CrlScope,
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
    /// The CRL its distribution point names.
    pub crl_scope: CrlScope,
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
     c.not_after AS c_not_after, c.revoked_at AS c_revoked_at, c.revocation_reason AS c_reason, c.der AS c_der, \
     c.crl_partition AS c_crl_partition";

fn user(r: &impl Get) -> Result<UserRow> {
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

fn cert(r: &impl Get) -> Result<Option<CertRow>> {
    let Some(id) = r.opt_int("c_id")? else {
        return Ok(None);
    };
    let serial = r.text("c_serial")?;
    Ok(Some(CertRow {
        id,
        user_id: UserId(r.int("c_user_id")?),
        serial: Serial::from_hex(&serial).ok_or(StoreError::Corrupt {
            table: "certificates",
            column: "serial",
            value: serial.clone(),
        })?,
        not_before: ts(r.int("c_not_before")?, "certificates", "not_before")?,
        not_after: ts(r.int("c_not_after")?, "certificates", "not_after")?,
        revoked_at: opt_ts(r.opt_int("c_revoked_at")?, "certificates", "revoked_at")?,
        reason: r.opt_int("c_reason")?.map(|x| x as u8),
        der: r.bytes("c_der")?,
        crl_scope: match r.opt_int("c_crl_partition")? {
            None => CrlScope::Undivided,
            Some(p) => CrlScope::from_key(p)
                .filter(|s| *s != CrlScope::Undivided)
                .ok_or(StoreError::Corrupt {
                    table: "certificates",
                    column: "crl_partition",
                    value: p.to_string(),
                })?,
        },
    }))
}

/// Whether a read inside a transaction locks what it reads.
///
/// SQLite needs no row locks: a write transaction (`BEGIN IMMEDIATE`) holds
/// the one write lock of the database from its start. On Postgres, a read
/// that a write in the same transaction depends on (a user's counters, a
/// certificate about to be revoked or renewed) locks the user's row with
/// `FOR UPDATE`, so that another node's transaction on the same user waits
/// for this one to commit and then reads what it wrote. Reads outside a
/// transaction (`Store`'s) never lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lock {
    None,
    ForUpdate,
}

impl Lock {
    /// The clause that locks the users row `alias` read, on Postgres only.
    fn user_clause(self, pg: bool) -> &'static str {
        match (self, pg) {
            (Lock::ForUpdate, true) => " FOR UPDATE OF u",
            _ => "",
        }
    }
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
    on!(c, c, d => {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE u.login_id = ? AND u.deleted_at IS NULL{}",
            lock.user_clause(d::PG)
        );
        let row = sqlx::query(d::sql(sql))
            .bind(login_id.as_str())
            .fetch_optional(c)
            .await?;
        row.as_ref().map(user).transpose()
    })
}

pub(crate) async fn user_by_id(c: Conn<'_>, id: UserId, lock: Lock) -> Result<Option<UserRow>> {
    on!(c, c, d => {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE u.id = ? AND u.deleted_at IS NULL{}",
            lock.user_clause(d::PG)
        );
        let row = sqlx::query(d::sql(sql))
            .bind(id.0)
            .fetch_optional(c)
            .await?;
        row.as_ref().map(user).transpose()
    })
}

pub(crate) async fn company(c: Conn<'_>, id: CompanyId) -> Result<Option<CompanyRow>> {
    let row: Option<(i64, String, String)> = on!(c, c, d => {
        sqlx::query_as(d::sql("SELECT id, name, service FROM companies WHERE id = ?"))
            .bind(id.0)
            .fetch_optional(c)
            .await?
    });
    row.map(|(id, name, service)| {
        Ok(CompanyRow {
            id: CompanyId(id),
            name,
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

pub(crate) async fn companies(pool: Pool<'_>) -> Result<Vec<CompanySummary>> {
    let rows: Vec<(i64, String, String, i64, i64)> = on!(pool, p, d => {
        sqlx::query_as(d::sql(
            "SELECT c.id, c.name, c.service, c.created_at, \
                    (SELECT count(*) FROM users u WHERE u.company_id = c.id AND u.deleted_at IS NULL) \
             FROM companies c ORDER BY c.id",
        ))
        .fetch_all(p)
        .await?
    });
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

/// The user's newest certificate. Locked (`Lock::ForUpdate`, on Postgres):
/// the user's row first, so that issuing, renewing and revoking for one
/// user happen one transaction after the other.
pub(crate) async fn latest_cert(
    mut c: Conn<'_>,
    user: UserId,
    lock: Lock,
) -> Result<Option<CertRow>> {
    if lock == Lock::ForUpdate {
        lock_user(c.reborrow(), user).await?;
    }
    let sql = format!(
        "SELECT {CERT_COLUMNS} FROM certificates c WHERE c.user_id = ? ORDER BY c.id DESC LIMIT 1"
    );
    on!(c, c, d => {
        let row = sqlx::query(d::sql(sql)).bind(user.0).fetch_optional(c).await?;
        row.as_ref().map(cert).transpose().map(Option::flatten)
    })
}

/// The certificate with this serial. Locked (on Postgres): its user's row
/// first, then the certificate is read (so it is read as the transaction
/// that held the lock left it).
pub(crate) async fn cert_by_serial(
    mut c: Conn<'_>,
    serial: &Serial,
    lock: Lock,
) -> Result<Option<CertRow>> {
    if lock == Lock::ForUpdate {
        lock_user_of_cert(c.reborrow(), serial).await?;
    }
    let sql = format!("SELECT {CERT_COLUMNS} FROM certificates c WHERE c.serial = ?");
    on!(c, c, d => {
        let row = sqlx::query(d::sql(sql))
            .bind(serial.to_string())
            .fetch_optional(c)
            .await?;
        row.as_ref().map(cert).transpose().map(Option::flatten)
    })
}

/// What renewing a certificate reads: the certificate, its user (not
/// deleted), whether it is the user's newest certificate, and the
/// company's name.
#[derive(Debug, Clone)]
pub struct Renewal {
    pub cert: CertRow,
    pub user: UserRow,
    pub is_latest: bool,
    pub company_name: String,
}

/// The renewal of the certificate with this serial, read in one statement
/// (the certificate, its user, whether it is the user's newest, the
/// company's name), nothing locked: `Store::supersede` revokes only an
/// unrevoked certificate, which decides.
pub(crate) async fn renewal(c: Conn<'_>, serial: &Serial) -> Result<Option<Renewal>> {
    on!(c, c, d => {
        let sql = format!(
            "SELECT {USER_COLUMNS}, {CERT_COLUMNS}, co.name AS company_name, \
                    (SELECT max(l.id) FROM certificates l WHERE l.user_id = u.id) AS latest_id \
             FROM certificates c JOIN users u ON u.id = c.user_id \
             JOIN companies co ON co.id = u.company_id \
             WHERE c.serial = ? AND u.deleted_at IS NULL"
        );
        let Some(r) = sqlx::query(d::sql(sql))
            .bind(serial.to_hex())
            .fetch_optional(c)
            .await?
        else {
            return Ok(None);
        };
        let Some(cert) = cert(&r)? else {
            return Ok(None);
        };
        Ok(Some(Renewal {
            is_latest: r.opt_int("latest_id")? == Some(cert.id),
            user: user(&r)?,
            company_name: r.text("company_name")?,
            cert,
        }))
    })
}

/// On Postgres, locks the row of the user the certificate belongs to.
async fn lock_user_of_cert(c: Conn<'_>, serial: &Serial) -> Result<()> {
    if let Conn::Pg(c) = c {
        sqlx::query(
            "SELECT id FROM users WHERE id = (SELECT user_id FROM certificates WHERE serial = $1) \
             FOR UPDATE",
        )
        .bind(serial.to_hex())
        .fetch_optional(c)
        .await?;
    }
    Ok(())
}

/// Rows of the revocation set read per query: bounds the size of one
/// aggregated chunk (about 50 bytes a row).
const REVOKED_CHUNK: i64 = 100_000;

/// One chunk of the revocation set after the serial `after`: its size, its
/// highest serial, and the rows aggregated by SQLite into one text value
/// `serial,at,reason,not_after,partition;…` (partition -1: the undivided
/// CRL), all read from the covering index.
async fn revoked_chunk(
    pool: Pool<'_>,
    after: &str,
    upto: &str,
) -> Result<(i64, Option<String>, Option<String>)> {
    Ok(on!(pool, p, d => {
        // SQLite's group_concat is Postgres's string_agg.
        let concat = if d::PG { "string_agg" } else { "group_concat" };
        sqlx::query_as(d::sql(format!(
            "SELECT count(*), max(serial), \
                    {concat}(serial || ',' || revoked_at || ',' || coalesce(revocation_reason, 0) \
                             || ',' || not_after || ',' || coalesce(crl_partition, -1), ';') \
             FROM (SELECT serial, revoked_at, revocation_reason, not_after, crl_partition FROM certificates \
                   WHERE revoked_at IS NOT NULL AND serial > ?1 AND serial <= ?2 \
                   ORDER BY serial LIMIT ?3) AS chunk",
        )))
        .bind(after)
        .bind(upto)
        .bind(REVOKED_CHUNK)
        .fetch_one(p)
        .await?
    }))
}

fn corrupt_revoked(value: &str) -> StoreError {
    StoreError::Corrupt {
        table: "certificates",
        column: "serial, revoked_at, revocation_reason, not_after, crl_partition",
        value: value.to_owned(),
    }
}

/// `serial,at,reason,not_after,partition` → (serial octets into `buf`, the rest).
fn parse_revoked<'b>(item: &str, buf: &'b mut [u8; 20]) -> Result<(&'b [u8], RevokedEntry)> {
    let mut parts = item.split(',');
    let (Some(hex), Some(at), Some(reason), Some(not_after), Some(partition), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
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
    let not_after: i64 = not_after.parse().map_err(|_| corrupt_revoked(item))?;
    let scope = partition
        .parse()
        .ok()
        .and_then(CrlScope::from_key)
        .ok_or_else(|| corrupt_revoked(item))?;
    Ok((
        &buf[..n],
        RevokedEntry {
            at,
            reason,
            not_after,
            scope,
        },
    ))
}

/// A revoked certificate as the revocation set loads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevokedEntry {
    /// Revocation time, Unix seconds.
    pub at: i64,
    /// CRLReason, 0 when none was given.
    pub reason: u8,
    /// The certificate's notAfter, Unix seconds (`i64::MAX` when unknown).
    pub not_after: i64,
    pub scope: CrlScope,
}

/// The `crl_partition` column for a scope (NULL: the undivided CRL).
pub(crate) fn partition_column(scope: CrlScope) -> Option<i64> {
    match scope {
        CrlScope::Undivided => None,
        CrlScope::Partition(p) => Some(i64::from(p)),
    }
}

/// Above every serial as stored (lower-case hex).
const SERIAL_MAX: &str = "~";

/// Calls `f(serial, entry)` with every revoked certificate. Each chunk is one query
/// and one text value rather than a hundred thousand row round trips; the
/// serials are split in two halves read by two connections at once, and
/// each half reads its next chunk while this one is parsed: a million rows
/// load in about half a second. Chunks follow the index by key (keyset),
/// never by offset.
pub(crate) async fn for_each_revoked(
    pool: Pool<'_>,
    f: impl FnMut(&[u8], RevokedEntry) + Send,
) -> Result<usize> {
    let n = revoked_count(pool).await?;
    // A mutex, not a RefCell, so that a reload can run in a spawned task; it
    // is never contended (see below).
    let f = std::sync::Mutex::new(f);
    if n <= 2 * REVOKED_CHUNK as usize {
        return revoked_range(pool, String::new(), SERIAL_MAX, &f).await;
    }
    let mid: String = on!(pool, p, d => {
        sqlx::query_scalar(d::sql(
            "SELECT serial FROM certificates WHERE revoked_at IS NOT NULL ORDER BY serial LIMIT 1 OFFSET ?",
        ))
        .bind((n / 2) as i64)
        .fetch_one(p)
        .await?
    });
    let (a, b) = tokio::join!(
        revoked_range(pool, String::new(), &mid, &f),
        revoked_range(pool, mid.clone(), SERIAL_MAX, &f),
    );
    Ok(a? + b?)
}

/// The revoked serials in (`after`, `upto`], chunk by chunk.
async fn revoked_range(
    pool: Pool<'_>,
    after: String,
    upto: &str,
    f: &std::sync::Mutex<impl FnMut(&[u8], RevokedEntry) + Send>,
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
                let (serial, entry) = parse_revoked(item, &mut buf)?;
                f(serial, entry);
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
    /// The certificate's notAfter (`None`: a re-imported revocation of a
    /// certificate this database does not know).
    pub not_after: Option<OffsetDateTime>,
    pub scope: CrlScope,
}

pub(crate) async fn invalidity_dates(pool: Pool<'_>) -> Result<Vec<(Serial, OffsetDateTime)>> {
    let rows: Vec<(String, i64)> = on!(pool, p, d => {
        sqlx::query_as(d::sql(
            "SELECT serial, invalidity_date FROM certificates WHERE invalidity_date IS NOT NULL AND revoked_at IS NOT NULL",
        ))
        .fetch_all(p)
        .await?
    });
    rows.into_iter()
        .map(|(s, t)| {
            Ok((
                Serial::from_hex(&s).ok_or_else(|| corrupt_revoked(&s))?,
                ts(t, "certificates", "invalidity_date")?,
            ))
        })
        .collect()
}

pub(crate) async fn revocation_log_head(pool: Pool<'_>) -> Result<i64> {
    Ok(on!(pool, p, d => {
        sqlx::query_scalar(d::sql("SELECT coalesce(max(id), 0) FROM revocation_log"))
            .fetch_one(p)
            .await?
    }))
}

/// Appends a revocation to the log, in the revoking transaction.
///
/// The log is read by `id > last seen`, so ids must become visible in
/// their order. SQLite's one writer commits them in order by itself. On
/// Postgres, a sequence would not: a transaction that took id 7 can commit
/// after one that took 8, and a reader that saw 8 would skip 7 for ever.
/// So the id is taken from the one `revocation_head` row with an `UPDATE`,
/// which locks that row until the revoking transaction ends: the next
/// revoking transaction waits there, so ids commit one after the other, and
/// a transaction that rolls back gives its id back.
/// The notice names the sending store (`node`), whose own listener skips it.
pub(crate) async fn log_revocation(c: Conn<'_>, serial: &Serial, node: &str) -> Result<()> {
    match c {
        Conn::Sqlite(c) => {
            sqlx::query("INSERT INTO revocation_log (serial) VALUES (?)")
                .bind(serial.to_hex())
                .execute(c)
                .await?;
        }
        Conn::Pg(c) => {
            sqlx::query(
                "WITH h AS (UPDATE revocation_head SET seq = seq + 1 RETURNING seq) \
                 INSERT INTO revocation_log (id, serial) SELECT seq, $1 FROM h",
            )
            .bind(serial.to_hex())
            .execute(&mut *c)
            .await?;
            // Wakes every other node's watch at commit (the payload names
            // only the sender; the log says what). A notice sent while a
            // node is disconnected is lost; its 250 ms poll still finds
            // the entry.
            sqlx::query("SELECT pg_notify('shomei_revocations', $1)")
                .bind(node)
                .execute(c)
                .await?;
        }
    }
    Ok(())
}

pub(crate) async fn revocations_after(pool: Pool<'_>, after: i64) -> Result<Vec<LoggedRevocation>> {
    /// log id, serial, revoked_at, reason, invalidity_date, not_after, scope
    type Logged = (
        i64,
        String,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        i64,
    );
    let rows: Vec<Logged> = on!(pool, p, d => {
        // The few newest entries, each looked up by its serial: on
        // Postgres, the bounded range and the fenced lateral lookups keep
        // that plan without statistics (a fresh database) and as a generic
        // plan, where a hash join would read every certificate.
        let from = if d::PG {
            "(SELECT id, serial FROM revocation_log WHERE id > ? \
               AND id <= (SELECT max(id) FROM revocation_log) ORDER BY id LIMIT 10000) l \
             LEFT JOIN LATERAL (SELECT * FROM certificates c WHERE c.serial = l.serial OFFSET 0) c ON true \
             LEFT JOIN LATERAL (SELECT * FROM reimported_revocations r WHERE r.serial = l.serial OFFSET 0) r \
             ON true"
        } else {
            "(SELECT id, serial FROM revocation_log WHERE id > ? ORDER BY id LIMIT 10000) l \
             LEFT JOIN certificates c ON c.serial = l.serial \
             LEFT JOIN reimported_revocations r ON r.serial = l.serial"
        };
        sqlx::query_as(d::sql(format!(
            "SELECT l.id, l.serial, coalesce(c.revoked_at, r.revoked_at), \
             coalesce(c.revocation_reason, r.reason), c.invalidity_date, c.not_after, \
             coalesce(c.crl_partition, r.crl_partition, -1) FROM {from} ORDER BY l.id",
        )))
        .bind(after)
        .fetch_all(p)
        .await?
    });
    let mut out = Vec::with_capacity(rows.len());
    for (log_id, serial, at, reason, invalidity, not_after, scope) in rows {
        let Some(at) = at else { continue };
        let scope = CrlScope::from_key(scope).ok_or_else(|| StoreError::Corrupt {
            table: "certificates",
            column: "crl_partition",
            value: scope.to_string(),
        })?;
        out.push(LoggedRevocation {
            log_id,
            serial: Serial::from_hex(&serial).ok_or_else(|| corrupt_revoked(&serial))?,
            revoked_at: ts(at, "certificates", "revoked_at")?,
            reason: reason.map(|r| r as u8).filter(|r| *r != 0),
            invalidity: invalidity
                .map(|t| ts(t, "certificates", "invalidity_date"))
                .transpose()?,
            not_after: not_after
                .map(|t| ts(t, "certificates", "not_after"))
                .transpose()?,
            scope,
        });
    }
    Ok(out)
}

/// How many certificates are revoked (to size the revocation set).
pub(crate) async fn revoked_count(pool: Pool<'_>) -> Result<usize> {
    let n: i64 = on!(pool, p, d => {
        sqlx::query_scalar(d::sql(
            "SELECT count(*) FROM certificates WHERE revoked_at IS NOT NULL",
        ))
        .fetch_one(p)
        .await?
    });
    Ok(n as usize)
}

pub(crate) async fn insert_company(
    c: Conn<'_>,
    name: &str,
    service: Service,
    now: OffsetDateTime,
) -> Result<CompanyId> {
    let id: i64 = on!(c, c, d => {
        sqlx::query_scalar(d::sql(
            "INSERT INTO companies (name, service, created_at) VALUES (?, ?, ?) RETURNING id",
        ))
        .bind(name)
        .bind(service.code())
        .bind(now.unix_timestamp())
        .fetch_one(c)
        .await?
    });
    Ok(CompanyId(id))
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

pub(crate) async fn insert_cert(c: Conn<'_>, n: &NewCert<'_>) -> Result<i64> {
    Ok(on!(c, c, d => {
        sqlx::query_scalar(d::sql(
            "INSERT INTO certificates (user_id, serial, not_before, not_after, der, issued_at, crl_partition) \
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        ))
        .bind(n.user_id.0)
        .bind(n.serial.to_hex())
        .bind(n.not_before.unix_timestamp())
        .bind(n.not_after.unix_timestamp())
        .bind(n.der)
        .bind(n.issued_at.unix_timestamp())
        .bind(partition_column(n.crl_scope))
        .fetch_one(c)
        .await?
    }))
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
