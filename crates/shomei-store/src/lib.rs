//! Shomei's storage: sqlx repositories over SQLite (WAL), the migrations, and
//! the 操作履歴 with its hash chain.
//!
//! The store keeps what the service decided; it makes no decisions. Every
//! change goes through a [`Tx`], whose `commit` writes the change and its
//! 操作履歴 row together or not at all.
#![forbid(unsafe_code)]

mod attempts;
mod audit;
mod migrate;
mod rows;
mod sessions;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use shomei_core::{CompanyId, LoginId, SecurityCounters, Serial, UserId};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqliteConnection, SqlitePool, Transaction};
use time::OffsetDateTime;

pub use attempts::{AddressAttempts, ClaimKind};
pub use audit::{AuditEntry, AuditFilter, AuditRow};
pub use rows::{
    CertRow, CompanyRow, CompanySummary, LoggedRevocation, NewCert, NewUser, UserRow, UserSummary,
};
pub use sessions::{DoneRow, PendingRow, SessionRow};

/// Storage errors: for logs, never shown to customers as-is.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database holds an invalid value in {table}.{column}: {value}")]
    Corrupt {
        table: &'static str,
        column: &'static str,
        value: String,
    },
    #[error("database schema version {found} is newer than this program ({supported})")]
    TooNew { found: i64, supported: i64 },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Handle to the database: a pool of readers and one writer.
///
/// SQLite allows one writer at a time; funnelling writes through a single
/// connection (and `BEGIN IMMEDIATE`) means a read-modify-write inside a
/// transaction never races another one in this process, and another process
/// (the operator CLI) waits for the lock instead of failing.
#[derive(Clone)]
pub struct Store {
    read: SqlitePool,
    write: SqlitePool,
}

/// Creates the empty file `path` readable by its owner only (SQLite takes
/// an empty file as a new database).
fn create_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(sqlx::Error::Io)?;
    Ok(())
}

/// A company's contact person (企業管理).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompanyContact {
    pub name: String,
    pub phone: String,
    pub email: String,
}

/// A notice waiting to be sent, with its addressee.
#[derive(Debug, Clone)]
pub struct PendingNotice {
    pub id: i64,
    pub email: String,
    pub login_id: String,
    pub name: String,
    pub subject: String,
    pub body: String,
    pub created_at: OffsetDateTime,
}

/// A user whose certificate in force expires soon (for notices).
#[derive(Debug, Clone)]
pub struct ExpiringCert {
    pub user_id: UserId,
    pub serial: String,
    pub not_after: OffsetDateTime,
}

/// How far a commit has gone when it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Flushed to disk (fsync of the WAL): survives a power loss.
    Full,
    /// Written to the WAL: survives a crash of the process, not a power
    /// loss of the machine (the last commits before it may be lost).
    Normal,
}

impl Store {
    /// Opens (creating if needed) the database file and brings its schema up
    /// to date, with every commit flushed to disk (fsync) before it returns.
    pub async fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, Durability::Full).await
    }

    /// `open` with a chosen durability.
    pub async fn open_with(path: &Path, durability: Durability) -> Result<Self> {
        // A new database is created readable by its owner only (it holds
        // password hashes and personal data); SQLite gives its -wal and
        // -shm files the same mode.
        if !path.exists() {
            create_private(path)?;
        } else if let Ok(meta) = std::fs::metadata(path) {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    mode = format!("{:o}", meta.permissions().mode() & 0o777),
                    "the database is readable by other users; chmod 600 it (and its -wal and -shm files)"
                );
            }
        }
        let sync = match durability {
            Durability::Full => SqliteSynchronous::Full,
            Durability::Normal => SqliteSynchronous::Normal,
        };
        let opts = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(sync)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts.clone())
            .await?;
        migrate::run(&write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts.read_only(true))
            .await?;
        Ok(Self { read, write })
    }

    /// Writes a consistent copy of the whole database to `path` (a new
    /// file) while the server keeps serving: SQLite's `VACUUM INTO` reads
    /// one snapshot, so every change is in the copy with its 操作履歴 row or
    /// neither is.
    pub async fn backup_into(&self, path: &Path) -> Result<()> {
        let target = path.to_str().ok_or_else(|| StoreError::Corrupt {
            table: "-",
            column: "-",
            value: format!("backup path is not UTF-8: {}", path.display()),
        })?;
        // Owner-only from the start, as the database it copies.
        create_private(path)?;
        sqlx::query("VACUUM INTO ?")
            .bind(target)
            .execute(&self.read)
            .await?;
        Ok(())
    }

    /// Closes every connection (the last one checkpoints the WAL into the
    /// database file and removes it).
    pub async fn close(self) {
        self.read.close().await;
        self.write.close().await;
    }

    /// `PRAGMA integrity_check`: `None` when the database is sound, else
    /// SQLite's first complaint.
    pub async fn integrity_problem(&self) -> Result<Option<String>> {
        let first: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&self.read)
            .await?;
        Ok((first != "ok").then_some(first))
    }

    /// Rows in each table a backup should be checked by.
    pub async fn table_counts(&self) -> Result<Vec<(&'static str, i64)>> {
        let mut out = Vec::new();
        for (table, sql) in [
            ("companies", "SELECT count(*) FROM companies"),
            ("users", "SELECT count(*) FROM users"),
            ("certificates", "SELECT count(*) FROM certificates"),
            (
                "revoked certificates",
                "SELECT count(*) FROM certificates WHERE revoked_at IS NOT NULL",
            ),
            ("audit_log", "SELECT count(*) FROM audit_log"),
            ("notices", "SELECT count(*) FROM notices"),
        ] {
            let n: i64 = sqlx::query_scalar(sql).fetch_one(&self.read).await?;
            out.push((table, n));
        }
        Ok(out)
    }

    /// The session whose id hashes to `id_hash`.
    pub async fn session(&self, id_hash: &str) -> Result<Option<SessionRow>> {
        sessions::get(&self.read, id_hash).await
    }

    /// Logged-in sessions in all.
    pub async fn session_count(&self) -> Result<i64> {
        sessions::count(&self.read).await
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
        let mut tx = self.begin().await?;
        let c = tx.conn();
        let own = sessions::of_user(c, s.user_id).await?;
        let all = usize::try_from(sessions::count_in(c).await?).unwrap_or(usize::MAX);
        let surplus = if own.len() >= per_user {
            own.len() + 1 - per_user
        } else {
            usize::from(all >= max && !own.is_empty())
        };
        for id in own.iter().take(surplus) {
            sessions::delete(c, id).await?;
        }
        if all - surplus.min(all) >= max {
            return Ok(false);
        }
        sessions::insert(c, s).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<bool> {
        let mut tx = self.begin().await?;
        let gone = sessions::delete(tx.conn(), id_hash).await?;
        tx.commit().await?;
        Ok(gone)
    }

    /// Moves the session's idle clock to `at` (never back).
    pub async fn touch_session(&self, id_hash: &str, at: OffsetDateTime) -> Result<()> {
        let mut tx = self.begin().await?;
        sessions::touch(tx.conn(), id_hash, at).await?;
        tx.commit().await
    }

    /// Sets (or clears) the pending BRSK019; setting it clears BRSK020's content.
    pub async fn set_session_pending(&self, id_hash: &str, p: Option<&PendingRow>) -> Result<()> {
        let mut tx = self.begin().await?;
        sessions::set_pending(tx.conn(), id_hash, p).await?;
        tx.commit().await
    }

    /// Takes the pending BRSK019 if `matches` accepts its token, in one
    /// transaction: of two submits of the same form, one finds it.
    pub async fn take_session_pending(
        &self,
        id_hash: &str,
        matches: impl FnOnce(&str) -> bool,
    ) -> Result<Option<PendingRow>> {
        let mut tx = self.begin().await?;
        let c = tx.conn();
        let Some(p) = sessions::get_in(c, id_hash).await?.and_then(|s| s.pending) else {
            return Ok(None);
        };
        if !matches(&p.token) {
            return Ok(None);
        }
        sessions::set_pending(c, id_hash, None).await?;
        tx.commit().await?;
        Ok(Some(p))
    }

    pub async fn set_session_done(&self, id_hash: &str, d: Option<&DoneRow>) -> Result<()> {
        let mut tx = self.begin().await?;
        sessions::set_done(tx.conn(), id_hash, d).await?;
        tx.commit().await
    }

    /// Ends the sessions idle since before `before`; the users whose
    /// sessions ended.
    pub async fn expire_sessions(&self, before: OffsetDateTime) -> Result<Vec<UserId>> {
        let mut tx = self.begin().await?;
        let users = sessions::expire(tx.conn(), before).await?;
        tx.commit().await?;
        Ok(users)
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> Result<Tx> {
        Ok(Tx {
            tx: self.write.begin_with("BEGIN IMMEDIATE").await?,
        })
    }

    pub async fn user_by_login_id(&self, login_id: &LoginId) -> Result<Option<UserRow>> {
        rows::user_by_login_id(&mut *self.read.acquire().await?, login_id).await
    }

    pub async fn user(&self, id: UserId) -> Result<Option<UserRow>> {
        rows::user_by_id(&mut *self.read.acquire().await?, id).await
    }

    pub async fn company(&self, id: CompanyId) -> Result<Option<CompanyRow>> {
        rows::company(&mut *self.read.acquire().await?, id).await
    }

    pub async fn company_count(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM companies")
            .fetch_one(&self.read)
            .await?)
    }

    /// The company's users, each with their most recent certificate.
    /// The company's users with their latest certificate's record, lean.
    pub async fn user_summaries(&self, company: CompanyId) -> Result<Vec<UserSummary>> {
        rows::user_summaries(&self.read, company).await
    }

    pub async fn users_with_latest_cert(
        &self,
        company: CompanyId,
    ) -> Result<Vec<(UserRow, Option<CertRow>)>> {
        rows::users_with_latest_cert(&mut *self.read.acquire().await?, company).await
    }

    pub async fn latest_cert(&self, user: UserId) -> Result<Option<CertRow>> {
        rows::latest_cert(&mut *self.read.acquire().await?, user).await
    }

    /// The certificate with this serial (serials are UNIQUE).
    pub async fn cert_by_serial(&self, serial: &Serial) -> Result<Option<CertRow>> {
        rows::cert_by_serial(&mut *self.read.acquire().await?, serial).await
    }

    /// Every revoked certificate, oldest revocation first: the CRL's content.
    /// Calls `f(serial, revoked_at as Unix seconds, reason or 0)` with every
    /// revoked certificate, in serial order; returns how many there
    /// were. Fast at a million rows.
    pub async fn for_each_revoked(&self, f: impl FnMut(&[u8], i64, u8) + Send) -> Result<usize> {
        rows::for_each_revoked(&self.read, f).await
    }

    /// How many certificates are revoked.
    pub async fn revoked_count(&self) -> Result<usize> {
        rows::revoked_count(&self.read).await
    }

    /// The revoked certificates that carry an invalidity date (few).
    pub async fn invalidity_dates(&self) -> Result<Vec<(Serial, OffsetDateTime)>> {
        rows::invalidity_dates(&self.read).await
    }

    /// The newest entry of the revocation log (0 when empty).
    pub async fn revocation_log_head(&self) -> Result<i64> {
        rows::revocation_log_head(&self.read).await
    }

    /// The oldest entry still in the revocation log (0 when empty). A server
    /// that has seen less than the entry before it missed pruned entries.
    pub async fn revocation_log_tail(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT ifnull(min(id), 0) FROM revocation_log")
                .fetch_one(&self.read)
                .await?,
        )
    }

    /// Drops the revocation log's entries for revocations made before
    /// `before`, except the newest entry (it keeps the ids growing, so an
    /// id is never used twice). Returns how many went.
    pub async fn prune_revocation_log(&self, before: OffsetDateTime) -> Result<u64> {
        let r = sqlx::query(
            "DELETE FROM revocation_log \
             WHERE id < (SELECT max(id) FROM revocation_log) \
               AND id <= (SELECT ifnull(max(l.id), 0) FROM revocation_log l \
                          JOIN certificates c ON c.serial = l.serial \
                          WHERE c.revoked_at < ?)",
        )
        .bind(before.unix_timestamp())
        .execute(&self.write)
        .await?;
        Ok(r.rows_affected())
    }

    /// Revocations logged after `after`, oldest first, with the log id.
    pub async fn revocations_after(&self, after: i64) -> Result<Vec<LoggedRevocation>> {
        rows::revocations_after(&self.read, after).await
    }

    /// 操作履歴 of one company, newest first.
    pub async fn audit_for_company(
        &self,
        company: CompanyId,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<AuditRow>> {
        audit::for_company(&self.read, company, limit, offset).await
    }

    /// 操作履歴照会: how many of the company's rows match `f`.
    pub async fn audit_count(&self, company: CompanyId, f: &AuditFilter) -> Result<i64> {
        audit::count(&self.read, company, f).await
    }

    /// 操作履歴照会: a page of the company's rows matching `f`, newest
    /// first; `total` is what `audit_count` said.
    pub async fn audit_page(
        &self,
        company: CompanyId,
        f: &AuditFilter,
        limit: i64,
        offset: i64,
        total: i64,
    ) -> Result<Vec<AuditRow>> {
        audit::page(&self.read, company, f, limit, offset, total).await
    }

    /// Every 操作履歴 row of one company (or all), oldest first.
    pub async fn audit_for_each(
        &self,
        company: Option<CompanyId>,
        f: impl FnMut(&AuditRow),
    ) -> Result<usize> {
        audit::for_each(&self.read, company, f).await
    }

    /// A company's contact (企業管理).
    pub async fn company_contact(&self, company: CompanyId) -> Result<CompanyContact> {
        let (name, phone, email): (String, String, String) = sqlx::query_as(
            "SELECT contact_name, contact_phone, contact_email FROM companies WHERE id = ?",
        )
        .bind(company.0)
        .fetch_optional(&self.read)
        .await?
        .unwrap_or_default();
        Ok(CompanyContact { name, phone, email })
    }

    /// Users (not deleted, with an e-mail address) whose latest certificate
    /// is in force and expires before `until`.
    pub async fn expiring_certs(
        &self,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Vec<ExpiringCert>> {
        let rows: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT u.id, c.serial, c.not_after FROM users u \
             JOIN certificates c ON c.id = (SELECT MAX(id) FROM certificates WHERE user_id = u.id) \
             WHERE u.deleted_at IS NULL AND u.email != '' AND c.revoked_at IS NULL \
               AND c.not_after > ? AND c.not_after <= ?",
        )
        .bind(now.unix_timestamp())
        .bind(until.unix_timestamp())
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, serial, na)| {
                Some(ExpiringCert {
                    user_id: UserId(id),
                    serial,
                    not_after: OffsetDateTime::from_unix_timestamp(na).ok()?,
                })
            })
            .collect())
    }

    /// Notices not yet sent, oldest first.
    pub async fn pending_notices(&self, limit: i64) -> Result<Vec<PendingNotice>> {
        let rows: Vec<(i64, String, String, String, String, String, i64)> = sqlx::query_as(
            "SELECT n.id, u.email, u.login_id, u.name, n.subject, n.body, n.created_at \
             FROM notices n JOIN users u ON u.id = n.user_id WHERE n.sent_at IS NULL ORDER BY n.id LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, email, login_id, name, subject, body, at)| PendingNotice {
                    id,
                    email,
                    login_id,
                    name,
                    subject,
                    body,
                    created_at: OffsetDateTime::from_unix_timestamp(at)
                        .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                },
            )
            .collect())
    }

    /// Gives a claimed notice back (its sending failed).
    pub async fn release_notice(&self, id: i64) -> Result<()> {
        sqlx::query("UPDATE notices SET sent_at = NULL WHERE id = ?")
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Claims a notice for sending; false if another server already did.
    pub async fn claim_notice(&self, id: i64, at: OffsetDateTime) -> Result<bool> {
        let r = sqlx::query("UPDATE notices SET sent_at = ? WHERE id = ? AND sent_at IS NULL")
            .bind(at.unix_timestamp())
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Every company with its number of users.
    pub async fn companies(&self) -> Result<Vec<CompanySummary>> {
        rows::companies(&self.read).await
    }

    /// Checks every chain; returns the id of the first row that breaks one.
    pub async fn verify_audit(&self) -> Result<Option<i64>> {
        audit::verify_all(&self.read).await
    }

    /// Re-imported revocations of certificates this database does not know.
    pub async fn reimported_revocations(
        &self,
    ) -> Result<Vec<(Serial, OffsetDateTime, Option<u8>)>> {
        let rows: Vec<(String, i64, Option<i64>)> =
            sqlx::query_as("SELECT serial, revoked_at, reason FROM reimported_revocations")
                .fetch_all(&self.read)
                .await?;
        rows.into_iter()
            .map(|(s, at, reason)| {
                let corrupt = |column: &'static str, value: String| StoreError::Corrupt {
                    table: "reimported_revocations",
                    column,
                    value,
                };
                Ok((
                    Serial::from_hex(&s).ok_or_else(|| corrupt("serial", s.clone()))?,
                    OffsetDateTime::from_unix_timestamp(at)
                        .map_err(|_| corrupt("revoked_at", at.to_string()))?,
                    reason.and_then(|r| u8::try_from(r).ok()),
                ))
            })
            .collect()
    }

    /// Takes or renews the lease `name` for `holder` until `now + ttl`: its
    /// epoch when held (the same while renewed, one more when taken over
    /// after it expired), `None` while another holder's lease runs.
    pub async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: OffsetDateTime,
        ttl: time::Duration,
    ) -> Result<Option<i64>> {
        let mut tx = self.begin().await?;
        let row: Option<(String, i64, i64)> =
            sqlx::query_as("SELECT holder, epoch, expires_at FROM leases WHERE name = ?")
                .bind(name)
                .fetch_optional(tx.conn())
                .await?;
        let until = (now + ttl).unix_timestamp();
        let epoch = match row {
            Some((h, epoch, _)) if h == holder => epoch,
            Some((_, epoch, expires)) if expires <= now.unix_timestamp() => epoch + 1,
            Some(_) => return Ok(None),
            None => 1,
        };
        sqlx::query(
            "INSERT INTO leases (name, holder, epoch, expires_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
             epoch = excluded.epoch, expires_at = excluded.expires_at",
        )
        .bind(name)
        .bind(holder)
        .bind(epoch)
        .bind(until)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(Some(epoch))
    }

    /// Is the database reachable (a trivial read)?
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    /// The secret `name` shared by every server on this database, created
    /// from `fresh` if none has it yet.
    pub async fn shared_secret(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>> {
        let mut tx = self.begin().await?;
        let v = attempts::secret(tx.conn(), name, fresh).await?;
        tx.commit().await?;
        Ok(v)
    }

    /// Forgets address windows that began before `window_start_before` and
    /// are over, and lapsed claims.
    pub async fn prune_attempts(
        &self,
        window_start_before: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<u64> {
        let mut tx = self.begin().await?;
        let n = attempts::prune(tx.conn(), window_start_before, now).await?;
        tx.commit().await?;
        Ok(n)
    }
}

/// A write transaction. Dropped without `commit`, it rolls back.
pub struct Tx {
    tx: Transaction<'static, Sqlite>,
}

impl Tx {
    fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }

    pub async fn commit(self) -> Result<()> {
        Ok(self.tx.commit().await?)
    }

    /// Claims on `user`'s password of `kind` still live at `now`.
    pub async fn live_claims(
        &mut self,
        user: UserId,
        kind: ClaimKind,
        now: OffsetDateTime,
    ) -> Result<u32> {
        attempts::live_claims(self.conn(), user, kind, now).await
    }

    pub async fn insert_claim(
        &mut self,
        user: UserId,
        kind: ClaimKind,
        expires_at: OffsetDateTime,
    ) -> Result<i64> {
        attempts::insert_claim(self.conn(), user, kind, expires_at).await
    }

    pub async fn delete_claim(&mut self, id: i64) -> Result<()> {
        attempts::delete_claim(self.conn(), id).await
    }

    pub async fn address_attempts(&mut self, addr: &str) -> Result<Option<AddressAttempts>> {
        attempts::address(self.conn(), addr).await
    }

    pub async fn save_address_attempts(&mut self, addr: &str, a: &AddressAttempts) -> Result<()> {
        attempts::save_address(self.conn(), addr, a).await
    }

    /// Addresses whose refusals wait to be written, last written before `before`.
    pub async fn addresses_with_unrecorded(
        &mut self,
        before: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<(String, AddressAttempts)>> {
        attempts::addresses_with_unrecorded(self.conn(), before, limit).await
    }

    pub async fn user(&mut self, id: UserId) -> Result<Option<UserRow>> {
        rows::user_by_id(self.conn(), id).await
    }

    pub async fn user_by_login_id(&mut self, login_id: &LoginId) -> Result<Option<UserRow>> {
        rows::user_by_login_id(self.conn(), login_id).await
    }

    pub async fn latest_cert(&mut self, user: UserId) -> Result<Option<CertRow>> {
        rows::latest_cert(self.conn(), user).await
    }

    pub async fn cert_by_serial(&mut self, serial: &Serial) -> Result<Option<CertRow>> {
        rows::cert_by_serial(self.conn(), serial).await
    }

    pub async fn company(&mut self, id: CompanyId) -> Result<Option<CompanyRow>> {
        rows::company(self.conn(), id).await
    }

    pub async fn insert_company(
        &mut self,
        name: &str,
        service: shomei_core::Service,
        now: OffsetDateTime,
    ) -> Result<CompanyId> {
        rows::insert_company(self.conn(), name, service, now).await
    }

    pub async fn insert_user(&mut self, u: &NewUser<'_>, now: OffsetDateTime) -> Result<UserId> {
        rows::insert_user(self.conn(), u, now).await
    }

    pub async fn insert_cert(&mut self, c: &NewCert<'_>) -> Result<i64> {
        rows::insert_cert(self.conn(), c).await
    }

    pub async fn save_counters(&mut self, user: UserId, c: &SecurityCounters) -> Result<()> {
        rows::save_counters(self.conn(), user, c).await
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
        sqlx::query(sql)
            .bind(hash)
            .bind(user.0)
            .execute(self.conn())
            .await?;
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
        sqlx::query(
            "UPDATE users SET login_hash = ?, confirm_hash = ?, must_change = ? WHERE id = ?",
        )
        .bind(login_hash)
        .bind(confirm_hash)
        .bind(if must_change { 3i64 } else { 0 })
        .bind(user.0)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Replaces a company's contact.
    pub async fn set_company_contact(
        &mut self,
        company: CompanyId,
        c: &CompanyContact,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE companies SET contact_name = ?, contact_phone = ?, contact_email = ? WHERE id = ?",
        )
        .bind(&c.name)
        .bind(&c.phone)
        .bind(&c.email)
        .bind(company.0)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Is the login ID taken, by any user ever (deleted ones too)?
    pub async fn login_id_taken(&mut self, login_id: &LoginId) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE login_id = ?")
            .bind(login_id.as_str())
            .fetch_one(self.conn())
            .await?;
        Ok(n > 0)
    }

    /// How many (not deleted) users a company has, and how many マスター.
    pub async fn user_counts(&mut self, company: CompanyId) -> Result<(i64, i64)> {
        Ok(sqlx::query_as(
            "SELECT count(*), ifnull(sum(role = 'master'), 0) FROM users WHERE company_id = ? AND deleted_at IS NULL",
        )
        .bind(company.0)
        .fetch_one(self.conn())
        .await?)
    }

    /// Name, 利用者区分 and e-mail of a user.
    pub async fn update_user(
        &mut self,
        user: UserId,
        name: &str,
        role: shomei_core::Role,
        email: &str,
    ) -> Result<()> {
        sqlx::query("UPDATE users SET name = ?, role = ?, email = ? WHERE id = ?")
            .bind(name)
            .bind(role.code())
            .bind(email)
            .bind(user.0)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Deletes a user (kept as a row: certificates and login ID stay).
    pub async fn delete_user(&mut self, user: UserId, at: OffsetDateTime) -> Result<()> {
        sqlx::query("UPDATE users SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL")
            .bind(at.unix_timestamp())
            .bind(user.0)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// The マスター and 管理者 users of a company who have an e-mail address.
    pub async fn company_admins(&mut self, company: CompanyId) -> Result<Vec<UserId>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM users WHERE company_id = ? AND role IN ('master', 'admin') \
             AND deleted_at IS NULL AND email != '' ORDER BY id",
        )
        .bind(company.0)
        .fetch_all(self.conn())
        .await?;
        Ok(ids.into_iter().map(UserId).collect())
    }

    /// Records a notice unless the same (user, kind, key) exists; true if new.
    pub async fn add_notice(
        &mut self,
        user: UserId,
        kind: &str,
        key: &str,
        subject: &str,
        body: &str,
        at: OffsetDateTime,
    ) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO notices (user_id, kind, key, subject, body, created_at) VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (user_id, kind, key) DO NOTHING",
        )
        .bind(user.0)
        .bind(kind)
        .bind(key)
        .bind(subject)
        .bind(body)
        .bind(at.unix_timestamp())
        .execute(self.conn())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Changes a company's contracted service.
    pub async fn set_company_service(
        &mut self,
        company: CompanyId,
        service: shomei_core::Service,
    ) -> Result<bool> {
        let r = sqlx::query("UPDATE companies SET service = ? WHERE id = ?")
            .bind(service.code())
            .bind(company.0)
            .execute(self.conn())
            .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn set_last_login(&mut self, user: UserId, at: OffsetDateTime) -> Result<()> {
        sqlx::query("UPDATE users SET last_login_at = ? WHERE id = ?")
            .bind(at.unix_timestamp())
            .bind(user.0)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Marks the certificate revoked unless it already is. Returns whether this
    /// call revoked it, so that a repeated submit revokes once.
    pub async fn revoke_cert(
        &mut self,
        serial: &Serial,
        at: OffsetDateTime,
        reason: u8,
    ) -> Result<bool> {
        self.revoke_cert_with(serial, at, reason, None).await
    }

    /// As `revoke_cert`, with the invalidity date (RFC 5280 §5.3.2) when
    /// the key is known to have been compromised earlier. Logs the
    /// revocation for servers running in other processes.
    pub async fn revoke_cert_with(
        &mut self,
        serial: &Serial,
        at: OffsetDateTime,
        reason: u8,
        invalidity: Option<OffsetDateTime>,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE certificates SET revoked_at = ?, revocation_reason = ?, invalidity_date = ? WHERE serial = ? AND revoked_at IS NULL",
        )
        .bind(at.unix_timestamp())
        .bind(i64::from(reason))
        .bind(invalidity.map(|t| t.unix_timestamp()))
        .bind(serial.to_hex())
        .execute(self.conn())
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query("INSERT INTO revocation_log (serial) VALUES (?)")
            .bind(serial.to_hex())
            .execute(self.conn())
            .await?;
        Ok(true)
    }

    /// The CRL number last taken.
    pub async fn crl_number(&mut self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT crl_number FROM crl_state WHERE id = 1")
            .fetch_one(self.conn())
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Moves the CRL number up to `n` (never down), so that numbering goes
    /// on above a CRL published before a restore.
    pub async fn raise_crl_number(&mut self, n: u64) -> Result<()> {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        sqlx::query("UPDATE crl_state SET crl_number = ? WHERE id = 1 AND crl_number < ?")
            .bind(n)
            .bind(n)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Records a re-imported revocation of a certificate this database does
    /// not know (nothing when already recorded); puts it in the log.
    pub async fn insert_reimported(
        &mut self,
        serial: &Serial,
        at: OffsetDateTime,
        reason: Option<u8>,
    ) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO reimported_revocations (serial, revoked_at, reason) VALUES (?, ?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .bind(serial.to_hex())
        .bind(at.unix_timestamp())
        .bind(reason.map(i64::from))
        .execute(self.conn())
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query("INSERT INTO revocation_log (serial) VALUES (?)")
            .bind(serial.to_hex())
            .execute(self.conn())
            .await?;
        Ok(true)
    }

    /// Publishes CRL number `n` of a CRL made from every revocation up to
    /// log entry `seen`: `true` when `n` is above every number published so
    /// far and no revocation was committed after `seen` (so a higher number
    /// never lists less), `false` otherwise — this CRL must not be served.
    pub async fn publish_crl_number(&mut self, n: u64, seen: i64) -> Result<bool> {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        let r = sqlx::query(
            "UPDATE crl_state SET published = ? WHERE id = 1 AND published < ? \
             AND (SELECT ifnull(max(id), 0) FROM revocation_log) <= ?",
        )
        .bind(n)
        .bind(n)
        .bind(seen)
        .execute(self.conn())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Takes the next CRL number.
    pub async fn next_crl_number(&mut self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar(
            "UPDATE crl_state SET crl_number = crl_number + 1 WHERE id = 1 RETURNING crl_number",
        )
        .fetch_one(self.conn())
        .await?;
        Ok(n as u64)
    }

    /// Appends one 操作履歴 row, chained to the previous row of its company.
    pub async fn audit(&mut self, e: &AuditEntry<'_>) -> Result<()> {
        audit::append(self.conn(), e).await
    }
}

#[cfg(test)]
mod tests;
