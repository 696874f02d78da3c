//! Shomei's storage: sqlx repositories over SQLite (WAL, the embedded
//! default) or PostgreSQL (several nodes on one database), the migrations,
//! and the 操作履歴 with its hash chain.
//!
//! The store keeps what the service decided; it makes no decisions. Every
//! change goes through a [`Tx`], whose `commit` writes the change and its
//! 操作履歴 row together or not at all. Both backends answer every method
//! the same way; how they share their queries is in `db.rs`.
#![forbid(unsafe_code)]

mod attempts;
mod audit;
mod db;
mod migrate;
mod rows;
mod sessions;

use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use aws_lc_rs::rand::SecureRandom;

use shomei_core::{CompanyId, CrlScope, LoginId, SecurityCounters, Serial, UserId};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Row, Sqlite, SqlitePool, Transaction};
use time::OffsetDateTime;

use db::{Conn, Db, Pool, on};
use rows::Lock;

pub use attempts::{AddressAttempts, ClaimKind};
pub use audit::{AuditEntry, AuditFilter, AuditRow};
pub use rows::{
    CertRow, CompanyRow, CompanySummary, LoggedRevocation, NewCert, NewUser, Renewal, RevokedEntry,
    UserRow, UserSummary,
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
    #[error("{0}")]
    BadUrl(String),
    #[error("{0}")]
    Unsupported(&'static str),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// How long the revocation watch's first read of a pass waits for a
/// PostgreSQL connection (see `Store::revocation_log_tail`).
const WATCH_ACQUIRE: Duration = Duration::from_millis(500);

/// A revocation on Postgres, as common table expressions of one statement
/// (`$1` revoked_at, `$2` reason, `$3` invalidity date, `$4` serial): the
/// UPDATE (its WHERE clause extended by `$cond`), and only if it changed
/// the row, the log entry `l` under the head's lock (see
/// `rows::log_revocation`).
macro_rules! pg_revoke {
    ($cond:literal) => {
        concat!(
            "u AS (UPDATE certificates SET revoked_at = $1, revocation_reason = $2, \
           invalidity_date = $3 WHERE serial = $4 AND revoked_at IS NULL",
            $cond,
            " RETURNING serial), \
         h AS (UPDATE revocation_head SET seq = seq + 1 WHERE EXISTS (SELECT 1 FROM u) \
           RETURNING seq), \
         l AS (INSERT INTO revocation_log (id, serial) SELECT h.seq, u.serial FROM h, u \
           RETURNING id)"
        )
    };
}

/// Handle to the database.
///
/// SQLite: a pool of readers and one writer. SQLite allows one writer at a
/// time; funnelling writes through a single connection (and `BEGIN
/// IMMEDIATE`) means a read-modify-write inside a transaction never races
/// another one in this process, and another process (the operator CLI)
/// waits for the lock instead of failing.
///
/// Postgres: one pool, transactions in READ COMMITTED. Several processes
/// (nodes) write at once, so each read-modify-write takes a row lock
/// before it reads (see `Lock`, `attempts::address`, `audit::append`,
/// `rows::log_revocation`); every rule is written once, for both.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    /// This server's name in the revocation notices it sends (random, one
    /// per opened store): its own listener skips them, since the server
    /// that commits a revocation puts it in force itself.
    node: Arc<str>,
    /// Wakes the task that sends the notices of renewals (PostgreSQL; see
    /// `send_notices`). Dropped with the last clone, which ends the task.
    notices: Option<tokio::sync::mpsc::Sender<()>>,
}

/// The PostgreSQL pool's size when none is set: twice the CPU cores, at
/// least 4 (the usual rule for a database pool: statements here are short,
/// and no connection is held during Argon2id or while signing). More
/// connections than the node can keep busy only cost the database: every
/// extra backend takes its turn, each with its caches cold.
pub fn auto_pool_size() -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    u32::try_from(cores * 2).unwrap_or(u32::MAX).max(4)
}

/// How long the notice of a renewal's revocation waits for others to share
/// it: renewals come hundreds a second, and each notice wakes every
/// node's listener (the sender's own too). A few milliseconds on a
/// revocation's way to the other nodes, against a bound of a second.
const NOTICE_BATCH: Duration = Duration::from_millis(10);

/// Sends one revocation notice per wake-up, after `NOTICE_BATCH`, for every
/// renewal committed by then: one in flight, one more pending at most.
/// A notice that fails is only logged (the other nodes also poll), and one
/// still pending when the server stops is lost the same way.
async fn send_notices(pool: PgPool, node: Arc<str>, mut wake: tokio::sync::mpsc::Receiver<()>) {
    while wake.recv().await.is_some() {
        tokio::time::sleep(NOTICE_BATCH).await;
        if pool.is_closed() {
            return;
        }
        if let Err(e) = sqlx::query("SELECT pg_notify('shomei_revocations', $1)")
            .bind(&*node)
            .execute(&pool)
            .await
        {
            tracing::warn!(error = %e, "could not send a revocation notice (the other nodes' poll finds the revocation)");
        }
    }
}

/// A fresh random name for a store's revocation notices.
fn node_tag() -> Arc<str> {
    let mut b = [0u8; 8];
    // A failed draw leaves zeros: notices are then only less often
    // skipped by their sender, never lost.
    let _ = aws_lc_rs::rand::SystemRandom::new().fill(&mut b);
    Arc::from(hex::encode(b))
}

#[derive(Clone)]
enum Backend {
    Sqlite { read: SqlitePool, write: SqlitePool },
    Pg(PgPool),
}

/// Where the database is: a SQLite file in the data directory (the
/// default), or a PostgreSQL server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation<'a> {
    Sqlite(&'a Path),
    Postgres(&'a DatabaseUrl),
}

/// Woken when a revocation commits on any server (PostgreSQL only).
pub struct RevocationListener {
    listener: sqlx::postgres::PgListener,
    node: Arc<str>,
}

impl RevocationListener {
    /// Waits for the next notice of a revocation another server (or an
    /// operator command) committed; this store's own are skipped, and
    /// their number returned. After an error the caller connects again
    /// (notices sent meanwhile are lost; the poll finds them).
    pub async fn next(&mut self) -> Result<u64> {
        let mut own = 0;
        loop {
            let n = self.listener.recv().await?;
            if n.payload() != &*self.node {
                return Ok(own);
            }
            own += 1;
        }
    }
}

/// A PostgreSQL URL, `postgres://USER:PASSWORD@HOST:PORT/DB`, checked when
/// it is parsed. Shown (`Debug`, `Display`) without its password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The URL itself, password included: for tools that connect on their
    /// own (tests, `pg_dump`); never for logs or screens.
    pub fn with_password(&self) -> &str {
        &self.0
    }

    /// Checks the URL's form (the server is not asked).
    pub fn parse(url: &str) -> Result<Self> {
        let url = url.trim();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(StoreError::BadUrl(format!(
                "the database URL must start with postgres:// (as postgres://USER:PASSWORD@HOST:PORT/DB), not {}",
                Self(url.to_owned())
            )));
        }
        PgConnectOptions::from_str(url).map_err(|e| {
            StoreError::BadUrl(format!(
                "invalid database URL {}: {}",
                Self(url.to_owned()),
                // sqlx's message names the part it could not read, never the password.
                e.to_string().replace(url, "(the URL)")
            ))
        })?;
        Ok(Self(url.to_owned()))
    }

    /// Creates the empty database `name` on this URL's server (the URL's
    /// user must be allowed to) and returns its URL: for test suites, which
    /// take a fresh database per test.
    pub async fn create_database(&self, name: &str) -> Result<DatabaseUrl> {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(StoreError::BadUrl(format!(
                "invalid database name {name:?}"
            )));
        }
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(self.options()?)
            .await?;
        let made = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&pool)
            .await;
        pool.close().await;
        made?;
        let start = self.0.find("://").map(|i| i + 3).unwrap_or(0);
        let path = self.0[start..]
            .find('/')
            .map(|i| start + i)
            .unwrap_or(self.0.len());
        let query = self.0[path..]
            .find('?')
            .map(|i| &self.0[path + i..])
            .unwrap_or("");
        Self::parse(&format!("{}/{name}{query}", &self.0[..path]))
    }

    fn options(&self) -> Result<PgConnectOptions> {
        PgConnectOptions::from_str(&self.0).map_err(|e| StoreError::BadUrl(e.to_string()))
    }
}

impl FromStr for DatabaseUrl {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl std::fmt::Display for DatabaseUrl {
    /// The URL with its password (in the user part, or a `password=`
    /// parameter) replaced by `***`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = &self.0;
        let start = url.find("://").map(|i| i + 3).unwrap_or(0);
        let authority_end = url[start..]
            .find(['/', '?'])
            .map(|i| start + i)
            .unwrap_or(url.len());
        let rest = match url[start..authority_end].rfind('@') {
            Some(at) => {
                let userinfo = &url[start..start + at];
                let user = userinfo.split(':').next().unwrap_or("");
                let hidden = if userinfo.contains(':') { ":***" } else { "" };
                write!(f, "{}{user}{hidden}", &url[..start])?;
                &url[start + at..]
            }
            None => url.as_str(),
        };
        let Some(q) = rest.find('?') else {
            return f.write_str(rest);
        };
        f.write_str(&rest[..=q])?;
        for (i, pair) in rest[q + 1..].split('&').enumerate() {
            if i > 0 {
                f.write_str("&")?;
            }
            match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => write!(f, "{k}=***")?,
                _ => f.write_str(pair)?,
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
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

    /// Opens the database where `at` says. `durability` is SQLite's; a
    /// Postgres server's is its own configuration (`synchronous_commit`).
    /// `pool_size` is Postgres's (see `open_postgres_with`).
    pub async fn open_at(
        at: StoreLocation<'_>,
        durability: Durability,
        pool_size: u32,
    ) -> Result<Self> {
        match at {
            StoreLocation::Sqlite(path) => Self::open_with(path, durability).await,
            StoreLocation::Postgres(url) => Self::open_postgres_with(url, pool_size).await,
        }
    }

    /// `open_postgres_with` the automatic pool size.
    pub async fn open_postgres(url: &DatabaseUrl) -> Result<Self> {
        Self::open_postgres_with(url, 0).await
    }

    /// Connects to a PostgreSQL database and brings its schema up to date
    /// (the first node on an empty database creates every table), with at
    /// most `pool_size` connections for its work (0: `auto_pool_size`), and
    /// one more of its own for the revocation listener.
    pub async fn open_postgres_with(url: &DatabaseUrl, pool_size: u32) -> Result<Self> {
        let opts = url.options()?;
        // One connection first: its error says why (refused, no such
        // database, wrong password) where the pool's would only time out.
        let probe = <sqlx::PgConnection as sqlx::Connection>::connect_with(&opts)
            .await
            .map_err(|e: sqlx::Error| match e {
                sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
                    StoreError::BadUrl(format!("cannot reach the database at {url}: {e}"))
                }
                e => StoreError::Db(e),
            })?;
        sqlx::Connection::close(probe).await?;
        let pool: PgPool = PgPoolOptions::new()
            .max_connections(if pool_size == 0 {
                auto_pool_size()
            } else {
                pool_size
            })
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await?;
        migrate::postgres(&pool).await?;
        let node = node_tag();
        let (notices, wake) = tokio::sync::mpsc::channel(1);
        tokio::spawn(send_notices(pool.clone(), node.clone(), wake));
        Ok(Self {
            backend: Backend::Pg(pool),
            node,
            notices: Some(notices),
        })
    }

    /// "SQLite" or "PostgreSQL", for messages.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite { .. } => "SQLite",
            Backend::Pg(_) => "PostgreSQL",
        }
    }

    /// Where reads go.
    fn reader(&self) -> Pool<'_> {
        match &self.backend {
            Backend::Sqlite { read, .. } => Db::Sqlite(read),
            Backend::Pg(p) => Db::Pg(p),
        }
    }

    /// Where single-statement writes go.
    fn writer(&self) -> Pool<'_> {
        match &self.backend {
            Backend::Sqlite { write, .. } => Db::Sqlite(write),
            Backend::Pg(p) => Db::Pg(p),
        }
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
        migrate::sqlite(&write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts.read_only(true))
            .await?;
        Ok(Self {
            backend: Backend::Sqlite { read, write },
            node: node_tag(),
            notices: None,
        })
    }

    /// Writes a consistent copy of the whole database to `path` (a new
    /// file) while the server keeps serving: SQLite's `VACUUM INTO` reads
    /// one snapshot, so every change is in the copy with its 操作履歴 row or
    /// neither is.
    pub async fn backup_into(&self, path: &Path) -> Result<()> {
        let Backend::Sqlite { read, .. } = &self.backend else {
            return Err(StoreError::Unsupported(
                "`shomei backup` copies a SQLite database; back a PostgreSQL database up with pg_dump or the server's point-in-time recovery (see the README)",
            ));
        };
        let target = path.to_str().ok_or_else(|| StoreError::Corrupt {
            table: "-",
            column: "-",
            value: format!("backup path is not UTF-8: {}", path.display()),
        })?;
        // Owner-only from the start, as the database it copies.
        create_private(path)?;
        sqlx::query("VACUUM INTO ?")
            .bind(target)
            .execute(read)
            .await?;
        Ok(())
    }

    /// Closes every connection (SQLite: the last one checkpoints the WAL
    /// into the database file and removes it).
    pub async fn close(self) {
        match self.backend {
            Backend::Sqlite { read, write } => {
                read.close().await;
                write.close().await;
            }
            Backend::Pg(p) => p.close().await,
        }
    }

    /// `PRAGMA integrity_check`: `None` when the database is sound, else
    /// SQLite's first complaint. PostgreSQL has no such check built in
    /// (its `amcheck` extension, `pg_amcheck`, is the server operator's).
    pub async fn integrity_problem(&self) -> Result<Option<String>> {
        let Backend::Sqlite { read, .. } = &self.backend else {
            return Err(StoreError::Unsupported(
                "the integrity check is SQLite's PRAGMA integrity_check; check a PostgreSQL database with pg_amcheck",
            ));
        };
        let first: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(read)
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
            let n: i64 = on!(self.reader(), p, d => {
                sqlx::query_scalar(d::sql(sql)).fetch_one(p).await?
            });
            out.push((table, n));
        }
        Ok(out)
    }

    /// The session whose id hashes to `id_hash`.
    pub async fn session(&self, id_hash: &str) -> Result<Option<SessionRow>> {
        sessions::get(self.reader(), id_hash).await
    }

    /// Logged-in sessions in all.
    pub async fn session_count(&self) -> Result<i64> {
        sessions::count(self.reader()).await
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
        let own = sessions::of_user(tx.conn(), s.user_id).await?;
        let all = usize::try_from(sessions::count_in(tx.conn()).await?).unwrap_or(usize::MAX);
        let surplus = if own.len() >= per_user {
            own.len() + 1 - per_user
        } else {
            usize::from(all >= max && !own.is_empty())
        };
        for id in own.iter().take(surplus) {
            sessions::delete(tx.conn(), id).await?;
        }
        if all - surplus.min(all) >= max {
            return Ok(false);
        }
        sessions::insert(tx.conn(), s).await?;
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
    /// transaction holding the session's row: of two submits of the same
    /// form, on one server or two, one finds it.
    pub async fn take_session_pending(
        &self,
        id_hash: &str,
        matches: impl FnOnce(&str) -> bool,
    ) -> Result<Option<PendingRow>> {
        let mut tx = self.begin().await?;
        let Some(p) = sessions::get_for_update(tx.conn(), id_hash)
            .await?
            .and_then(|s| s.pending)
        else {
            return Ok(None);
        };
        if !matches(&p.token) {
            return Ok(None);
        }
        sessions::set_pending(tx.conn(), id_hash, None).await?;
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

    /// What renewing the certificate reads (see `rows::renewal`), nothing
    /// locked: `supersede` decides. `None` if the certificate is unknown or
    /// its user deleted.
    pub async fn renewal(&self, serial: &Serial) -> Result<Option<Renewal>> {
        rows::renewal(self.reader().acquire().await?.conn(), serial).await
    }

    /// Renewal's writes, all or nothing: revokes the old certificate,
    /// inserts the new one and appends the 操作履歴 row `audit` (as
    /// `revoke_cert`, `insert_cert` and `audit` in one transaction).
    /// `false`, and nothing written, if the old certificate was already
    /// revoked, even by a transaction that committed after `renewal` read
    /// it: the revocation decides, and nothing else read there can have
    /// changed unseen, since no newer certificate is issued for a user
    /// while the current one is valid without revoking it.
    ///
    /// On Postgres one statement, committed alone: it locks the user, then
    /// the certificate, the revocation log's head and the 操作履歴 chain
    /// (the order every revoking transaction takes them in), and no lock is
    /// held across a round trip. Its notice to the other nodes goes after
    /// the commit, shared with the renewals of the next few milliseconds
    /// (see `send_notices`).
    pub async fn supersede(
        &self,
        new: &NewCert<'_>,
        old: &Serial,
        at: OffsetDateTime,
        reason: u8,
        audit: &AuditEntry<'_>,
    ) -> Result<bool> {
        let Backend::Pg(p) = &self.backend else {
            let mut tx = self.begin().await?;
            if !tx.revoke_cert(old, at, reason).await? {
                return Ok(false);
            }
            tx.insert_cert(new).await?;
            tx.audit(audit).await?;
            tx.commit().await?;
            return Ok(true);
        };
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                concat!(
                    "WITH lk AS (SELECT id FROM users WHERE id = $5 FOR UPDATE), ",
                    pg_revoke!(" AND user_id = $5 AND EXISTS (SELECT 1 FROM lk)"),
                    ", nc AS (INSERT INTO certificates (user_id, serial, not_before, not_after, \
                       der, issued_at, crl_partition) \
                     SELECT $5, $6, $7, $8, $9, $10, $11 WHERE EXISTS (SELECT 1 FROM u)), {} \
                     SELECT count(*) FROM l"
                ),
                audit::pg_append(12, " FROM l")
            )
        });
        let q = sqlx::query(SQL.as_str())
            .bind(at.unix_timestamp())
            .bind(i64::from(reason))
            .bind(None::<i64>)
            .bind(old.to_hex())
            .bind(new.user_id.0)
            .bind(new.serial.to_hex())
            .bind(new.not_before.unix_timestamp())
            .bind(new.not_after.unix_timestamp())
            .bind(new.der)
            .bind(new.issued_at.unix_timestamp())
            .bind(rows::partition_column(new.crl_scope));
        let revoked: i64 = audit::pg_bind(q, audit).fetch_one(p).await?.try_get(0)?;
        if revoked != 1 {
            return Ok(false);
        }
        // Committed: the other nodes are told, with the renewals committed
        // in the next few milliseconds (a full channel: already pending).
        if let Some(n) = &self.notices {
            let _ = n.try_send(());
        }
        Ok(true)
    }

    /// Appends one 操作履歴 row on its own (as `Tx::audit`, committed).
    pub async fn audit(&self, e: &AuditEntry<'_>) -> Result<()> {
        if let Backend::Pg(p) = &self.backend {
            return audit::append(Db::Pg(&mut *p.acquire().await?), e).await;
        }
        let mut tx = self.begin().await?;
        tx.audit(e).await?;
        tx.commit().await
    }

    /// Starts a write transaction (SQLite: `BEGIN IMMEDIATE`, holding the
    /// write lock from the start; Postgres: READ COMMITTED, with row locks
    /// taken by the reads that need them).
    pub async fn begin(&self) -> Result<Tx> {
        Ok(Tx {
            node: self.node.clone(),
            last_ok: false,
            tx: match &self.backend {
                Backend::Sqlite { write, .. } => {
                    Db::Sqlite(write.begin_with("BEGIN IMMEDIATE").await?)
                }
                Backend::Pg(p) => Db::Pg(p.begin().await?),
            },
        })
    }

    pub async fn user_by_login_id(&self, login_id: &LoginId) -> Result<Option<UserRow>> {
        rows::user_by_login_id(self.reader().acquire().await?.conn(), login_id, Lock::None).await
    }

    pub async fn user(&self, id: UserId) -> Result<Option<UserRow>> {
        rows::user_by_id(self.reader().acquire().await?.conn(), id, Lock::None).await
    }

    pub async fn company(&self, id: CompanyId) -> Result<Option<CompanyRow>> {
        rows::company(self.reader().acquire().await?.conn(), id).await
    }

    pub async fn company_count(&self) -> Result<i64> {
        Ok(on!(self.reader(), p, d => {
            sqlx::query_scalar(d::sql("SELECT COUNT(*) FROM companies")).fetch_one(p).await?
        }))
    }

    /// The company's users with their latest certificate's record, lean.
    pub async fn user_summaries(&self, company: CompanyId) -> Result<Vec<UserSummary>> {
        rows::user_summaries(self.reader(), company).await
    }

    /// The company's users, each with their most recent certificate.
    pub async fn users_with_latest_cert(
        &self,
        company: CompanyId,
    ) -> Result<Vec<(UserRow, Option<CertRow>)>> {
        rows::users_with_latest_cert(self.reader().acquire().await?.conn(), company).await
    }

    pub async fn latest_cert(&self, user: UserId) -> Result<Option<CertRow>> {
        rows::latest_cert(self.reader().acquire().await?.conn(), user, Lock::None).await
    }

    /// The certificate with this serial (serials are UNIQUE).
    pub async fn cert_by_serial(&self, serial: &Serial) -> Result<Option<CertRow>> {
        rows::cert_by_serial(self.reader().acquire().await?.conn(), serial, Lock::None).await
    }

    /// Calls `f(serial, entry)` with every revoked certificate, in serial
    /// order; returns how many there were. Fast at a million rows.
    pub async fn for_each_revoked(
        &self,
        f: impl FnMut(&[u8], RevokedEntry) + Send,
    ) -> Result<usize> {
        rows::for_each_revoked(self.reader(), f).await
    }

    /// How many certificates are revoked.
    pub async fn revoked_count(&self) -> Result<usize> {
        rows::revoked_count(self.reader()).await
    }

    /// The revoked certificates that carry an invalidity date (few).
    pub async fn invalidity_dates(&self) -> Result<Vec<(Serial, OffsetDateTime)>> {
        rows::invalidity_dates(self.reader()).await
    }

    /// The newest entry of the revocation log (0 when empty).
    pub async fn revocation_log_head(&self) -> Result<i64> {
        rows::revocation_log_head(self.reader()).await
    }

    /// The oldest entry still in the revocation log (0 when empty). A server
    /// that has seen less than the entry before it missed pruned entries.
    ///
    /// The revocation watch's first read of every pass. On PostgreSQL it
    /// waits at most `WATCH_ACQUIRE` for a connection: the pool's own wait
    /// retries a refused connect with a back-off that doubles up to a fifth
    /// of its 30 s timeout, so a server whose database came back would
    /// catch up only seconds later; the watch tries again 250 ms after a
    /// failed pass, with a new wait whose back-off starts at 10 ms.
    pub async fn revocation_log_tail(&self) -> Result<i64> {
        const SQL: &str = "SELECT coalesce(min(id), 0) FROM revocation_log";
        match &self.backend {
            Backend::Pg(p) => {
                let mut c = tokio::time::timeout(WATCH_ACQUIRE, p.acquire())
                    .await
                    .map_err(|_| sqlx::Error::PoolTimedOut)??;
                Ok(sqlx::query_scalar(SQL).fetch_one(&mut *c).await?)
            }
            Backend::Sqlite { .. } => Ok(on!(self.reader(), p, d => {
                sqlx::query_scalar(d::sql(SQL)).fetch_one(p).await?
            })),
        }
    }

    /// Drops the revocation log's entries for revocations made before
    /// `before`, except the newest entry (it keeps the ids growing, so an
    /// id is never used twice). Returns how many went.
    pub async fn prune_revocation_log(&self, before: OffsetDateTime) -> Result<u64> {
        let r = on!(self.writer(), p, d => {
            sqlx::query(d::sql(
                "DELETE FROM revocation_log \
                 WHERE id < (SELECT max(id) FROM revocation_log) \
                   AND id <= (SELECT coalesce(max(l.id), 0) FROM revocation_log l \
                              JOIN certificates c ON c.serial = l.serial \
                              WHERE c.revoked_at < ?)",
            ))
            .bind(before.unix_timestamp())
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(r)
    }

    /// Revocations logged after `after`, oldest first, with the log id.
    pub async fn revocations_after(&self, after: i64) -> Result<Vec<LoggedRevocation>> {
        rows::revocations_after(self.reader(), after).await
    }

    /// 操作履歴 of one company, newest first.
    pub async fn audit_for_company(
        &self,
        company: CompanyId,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<AuditRow>> {
        audit::for_company(self.reader(), company, limit, offset).await
    }

    /// 操作履歴照会: how many of the company's rows match `f`.
    pub async fn audit_count(&self, company: CompanyId, f: &AuditFilter) -> Result<i64> {
        audit::count(self.reader(), company, f).await
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
        audit::page(self.reader(), company, f, limit, offset, total).await
    }

    /// Every 操作履歴 row of one company (or all), oldest first.
    pub async fn audit_for_each(
        &self,
        company: Option<CompanyId>,
        f: impl FnMut(&AuditRow),
    ) -> Result<usize> {
        audit::for_each(self.reader(), company, f).await
    }

    /// A company's contact (企業管理).
    pub async fn company_contact(&self, company: CompanyId) -> Result<CompanyContact> {
        let (name, phone, email): (String, String, String) = on!(self.reader(), p, d => {
            sqlx::query_as(d::sql(
                "SELECT contact_name, contact_phone, contact_email FROM companies WHERE id = ?",
            ))
            .bind(company.0)
            .fetch_optional(p)
            .await?
            .unwrap_or_default()
        });
        Ok(CompanyContact { name, phone, email })
    }

    /// Users (not deleted, with an e-mail address) whose latest certificate
    /// is in force and expires before `until`.
    pub async fn expiring_certs(
        &self,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Vec<ExpiringCert>> {
        let rows: Vec<(i64, String, i64)> = on!(self.reader(), p, d => {
            sqlx::query_as(d::sql(
                "SELECT u.id, c.serial, c.not_after FROM users u \
                 JOIN certificates c ON c.id = (SELECT MAX(id) FROM certificates WHERE user_id = u.id) \
                 WHERE u.deleted_at IS NULL AND u.email != '' AND c.revoked_at IS NULL \
                   AND c.not_after > ? AND c.not_after <= ?",
            ))
            .bind(now.unix_timestamp())
            .bind(until.unix_timestamp())
            .fetch_all(p)
            .await?
        });
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
        type Raw = (i64, String, String, String, String, String, i64);
        let rows: Vec<Raw> = on!(self.reader(), p, d => {
            sqlx::query_as(d::sql(
                "SELECT n.id, u.email, u.login_id, u.name, n.subject, n.body, n.created_at \
                 FROM notices n JOIN users u ON u.id = n.user_id WHERE n.sent_at IS NULL ORDER BY n.id LIMIT ?",
            ))
            .bind(limit)
            .fetch_all(p)
            .await?
        });
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
        on!(self.writer(), p, d => {
            sqlx::query(d::sql("UPDATE notices SET sent_at = NULL WHERE id = ?"))
                .bind(id)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Claims a notice for sending; false if another server already did.
    /// One statement: on Postgres, a second node's UPDATE of the same row
    /// waits for the first to commit, finds `sent_at` set and changes
    /// nothing, so a notice is claimed (and sent) once.
    pub async fn claim_notice(&self, id: i64, at: OffsetDateTime) -> Result<bool> {
        let n = on!(self.writer(), p, d => {
            sqlx::query(d::sql("UPDATE notices SET sent_at = ? WHERE id = ? AND sent_at IS NULL"))
                .bind(at.unix_timestamp())
                .bind(id)
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// Every company with its number of users.
    pub async fn companies(&self) -> Result<Vec<CompanySummary>> {
        rows::companies(self.reader()).await
    }

    /// Checks every chain; returns the id of the first row that breaks one.
    pub async fn verify_audit(&self) -> Result<Option<i64>> {
        audit::verify_all(self.reader()).await
    }

    /// Re-imported revocations of certificates this database does not know.
    pub async fn reimported_revocations(
        &self,
    ) -> Result<Vec<(Serial, OffsetDateTime, Option<u8>, CrlScope)>> {
        let rows: Vec<(String, i64, Option<i64>, i64)> = on!(self.reader(), p, d => {
            sqlx::query_as(d::sql(
                "SELECT serial, revoked_at, reason, coalesce(crl_partition, -1) FROM reimported_revocations",
            ))
            .fetch_all(p)
            .await?
        });
        rows.into_iter()
            .map(|(s, at, reason, scope)| {
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
                    CrlScope::from_key(scope)
                        .ok_or_else(|| corrupt("crl_partition", scope.to_string()))?,
                ))
            })
            .collect()
    }

    /// Takes or renews the lease `name` for `holder` until `now + ttl`: its
    /// epoch when held (the same while renewed, one more when taken over
    /// after it expired), `None` while another holder's lease runs. The
    /// row is created empty first and then locked (Postgres: `FOR UPDATE`),
    /// so two servers asking at once take turns and one gets it.
    pub async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: OffsetDateTime,
        ttl: time::Duration,
    ) -> Result<Option<i64>> {
        let mut tx = self.begin().await?;
        let row: (String, i64, i64) = on!(tx.conn(), c, d => {
            sqlx::query(d::sql(
                "INSERT INTO leases (name, holder, epoch, expires_at) VALUES (?, '', 0, 0) \
                 ON CONFLICT (name) DO NOTHING",
            ))
            .bind(name)
            .execute(&mut *c)
            .await?;
            let lock = if d::PG { " FOR UPDATE" } else { "" };
            sqlx::query_as(d::sql(format!(
                "SELECT holder, epoch, expires_at FROM leases WHERE name = ?{lock}"
            )))
            .bind(name)
            .fetch_one(&mut *c)
            .await?
        });
        let epoch = match row {
            (h, epoch, expires) if h == holder && expires > now.unix_timestamp() => epoch,
            (_, epoch, expires) if expires <= now.unix_timestamp() => epoch + 1,
            _ => return Ok(None),
        };
        let until = (now + ttl).unix_timestamp();
        on!(tx.conn(), c, d => {
            sqlx::query(d::sql(
                "UPDATE leases SET holder = ?, epoch = ?, expires_at = ? WHERE name = ?",
            ))
            .bind(holder)
            .bind(epoch)
            .bind(until)
            .bind(name)
            .execute(c)
            .await?;
        });
        tx.commit().await?;
        Ok(Some(epoch))
    }

    /// On PostgreSQL, a listener woken at the commit of every revocation
    /// (`LISTEN shomei_revocations`, on a connection of its own: it does not
    /// work through a pooler in transaction mode); `None` on SQLite.
    pub async fn revocation_listener(&self) -> Result<Option<RevocationListener>> {
        match &self.backend {
            Backend::Sqlite { .. } => Ok(None),
            Backend::Pg(p) => {
                // Its own pool of one: a listener keeps its connection, which
                // would otherwise be one fewer for the work.
                let own = PgPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_lazy_with((*p.connect_options()).clone());
                let mut listener = sqlx::postgres::PgListener::connect_with(&own).await?;
                listener.listen("shomei_revocations").await?;
                Ok(Some(RevocationListener {
                    listener,
                    node: self.node.clone(),
                }))
            }
        }
    }

    /// Is the database reachable (a trivial read)?
    pub async fn ping(&self) -> Result<()> {
        on!(self.reader(), p, d => {
            sqlx::query(d::sql("SELECT 1")).execute(p).await?;
        });
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
    /// The store's name in revocation notices (see `Store::node`).
    node: Arc<str>,
    /// Did the last statement succeed? Cleared by `conn` before each
    /// statement, set by the methods that usually end a transaction (the
    /// 操作履歴 row) once theirs succeeded (see `commit`).
    last_ok: bool,
    tx: Db<Transaction<'static, Sqlite>, Transaction<'static, Postgres>>,
}

impl Tx {
    /// The connection, for one more statement (which may fail: see
    /// `commit`).
    fn conn(&mut self) -> Conn<'_> {
        self.last_ok = false;
        match &mut self.tx {
            Db::Sqlite(t) => Db::Sqlite(&mut **t),
            Db::Pg(t) => Db::Pg(&mut **t),
        }
    }

    /// Commits. On Postgres a statement that failed aborts the whole
    /// transaction and a later COMMIT quietly rolls it back; so the
    /// transaction is asked first, and one that failed is refused here (as
    /// an error, never a silent loss). The question is skipped when the
    /// last statement is known to have succeeded (`last_ok`): in an
    /// aborted transaction every statement fails, so none before it
    /// failed. SQLite undoes just the failed statement, and commits the
    /// rest.
    pub async fn commit(mut self) -> Result<()> {
        if let (Db::Pg(t), false) = (&mut self.tx, self.last_ok) {
            sqlx::query("SELECT 1").execute(&mut **t).await?;
        }
        on!(self.tx, t, _d => t.commit().await?);
        Ok(())
    }

    /// Claims on `user`'s password of `kind` still live at `now` (locks the
    /// user first: see `attempts::live_claims`).
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

    /// The address's attempts, locked until the transaction ends (see
    /// `attempts::address`).
    pub async fn address_attempts(&mut self, addr: &str) -> Result<Option<AddressAttempts>> {
        attempts::address(self.conn(), addr).await
    }

    /// Locks the address's attempts until the transaction ends, before
    /// any user is locked (the order of locks: address, user, 操作履歴
    /// chain; see `attempts::lock_address`). Nothing to do on SQLite.
    pub async fn lock_address(&mut self, addr: &str) -> Result<()> {
        attempts::lock_address(self.conn(), addr).await
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

    /// The user, locked until the transaction ends (Postgres; see `Lock`).
    pub async fn user(&mut self, id: UserId) -> Result<Option<UserRow>> {
        rows::user_by_id(self.conn(), id, Lock::ForUpdate).await
    }

    /// The user, locked until the transaction ends (Postgres; see `Lock`).
    pub async fn user_by_login_id(&mut self, login_id: &LoginId) -> Result<Option<UserRow>> {
        rows::user_by_login_id(self.conn(), login_id, Lock::ForUpdate).await
    }

    /// The user's newest certificate, the user locked first.
    pub async fn latest_cert(&mut self, user: UserId) -> Result<Option<CertRow>> {
        rows::latest_cert(self.conn(), user, Lock::ForUpdate).await
    }

    /// The certificate, its user locked first.
    pub async fn cert_by_serial(&mut self, serial: &Serial) -> Result<Option<CertRow>> {
        rows::cert_by_serial(self.conn(), serial, Lock::ForUpdate).await
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

    /// Replaces a company's contact.
    pub async fn set_company_contact(
        &mut self,
        company: CompanyId,
        c: &CompanyContact,
    ) -> Result<()> {
        on!(self.conn(), conn, d => {
            sqlx::query(d::sql(
                "UPDATE companies SET contact_name = ?, contact_phone = ?, contact_email = ? WHERE id = ?",
            ))
            .bind(&c.name)
            .bind(&c.phone)
            .bind(&c.email)
            .bind(company.0)
            .execute(conn)
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

    /// Records a notice unless the same (user, kind, key) exists; true if
    /// new (the UNIQUE key decides, on either backend, however many nodes
    /// record it at once).
    pub async fn add_notice(
        &mut self,
        user: UserId,
        kind: &str,
        key: &str,
        subject: &str,
        body: &str,
        at: OffsetDateTime,
    ) -> Result<bool> {
        let n = on!(self.conn(), c, d => {
            sqlx::query(d::sql(
                "INSERT INTO notices (user_id, kind, key, subject, body, created_at) VALUES (?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (user_id, kind, key) DO NOTHING",
            ))
            .bind(user.0)
            .bind(kind)
            .bind(key)
            .bind(subject)
            .bind(body)
            .bind(at.unix_timestamp())
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Changes a company's contracted service.
    pub async fn set_company_service(
        &mut self,
        company: CompanyId,
        service: shomei_core::Service,
    ) -> Result<bool> {
        let n = on!(self.conn(), c, d => {
            sqlx::query(d::sql("UPDATE companies SET service = ? WHERE id = ?"))
                .bind(service.code())
                .bind(company.0)
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

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
    ///
    /// One UPDATE decides: on Postgres a second node revoking the same
    /// certificate waits for the first's commit, then finds it revoked and
    /// changes nothing (false). The log's id is commit-ordered: see
    /// `rows::log_revocation`.
    pub async fn revoke_cert_with(
        &mut self,
        serial: &Serial,
        at: OffsetDateTime,
        reason: u8,
        invalidity: Option<OffsetDateTime>,
    ) -> Result<bool> {
        self.last_ok = false;
        if let Db::Pg(t) = &mut self.tx {
            // One round trip: the UPDATE, then (only if it changed the
            // row) the log entry and the notice, as `rows::log_revocation`.
            let logged = sqlx::query(concat!(
                "WITH ",
                pg_revoke!(""),
                " SELECT l.id, pg_notify('shomei_revocations', $5) FROM l"
            ))
            .bind(at.unix_timestamp())
            .bind(i64::from(reason))
            .bind(invalidity.map(|t| t.unix_timestamp()))
            .bind(serial.to_hex())
            .bind(&*self.node)
            .fetch_optional(&mut **t)
            .await?;
            return Ok(logged.is_some());
        }
        let n = on!(self.conn(), c, d => {
            sqlx::query(d::sql(
                "UPDATE certificates SET revoked_at = ?, revocation_reason = ?, invalidity_date = ? \
                 WHERE serial = ? AND revoked_at IS NULL",
            ))
            .bind(at.unix_timestamp())
            .bind(i64::from(reason))
            .bind(invalidity.map(|t| t.unix_timestamp()))
            .bind(serial.to_hex())
            .execute(c)
            .await?
            .rows_affected()
        });
        if n != 1 {
            return Ok(false);
        }
        let node = self.node.clone();
        rows::log_revocation(self.conn(), serial, &node).await?;
        Ok(true)
    }

    /// The CRL number last taken.
    pub async fn crl_number(&mut self) -> Result<u64> {
        let n: i64 = on!(self.conn(), c, d => {
            sqlx::query_scalar(d::sql("SELECT crl_number FROM crl_state WHERE id = 1"))
                .fetch_one(c)
                .await?
        });
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Moves the CRL number up to `n` (never down), so that numbering goes
    /// on above a CRL published before a restore.
    pub async fn raise_crl_number(&mut self, n: u64) -> Result<()> {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        on!(self.conn(), c, d => {
            sqlx::query(d::sql(
                "UPDATE crl_state SET crl_number = ? WHERE id = 1 AND crl_number < ?",
            ))
            .bind(n)
            .bind(n)
            .execute(c)
            .await?;
        });
        Ok(())
    }

    /// Records a re-imported revocation of a certificate this database does
    /// not know (nothing when already recorded); puts it in the log.
    pub async fn insert_reimported(
        &mut self,
        serial: &Serial,
        at: OffsetDateTime,
        reason: Option<u8>,
        scope: CrlScope,
    ) -> Result<bool> {
        let n = on!(self.conn(), c, d => {
            sqlx::query(d::sql(
                "INSERT INTO reimported_revocations (serial, revoked_at, reason, crl_partition) \
                 VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            ))
            .bind(serial.to_hex())
            .bind(at.unix_timestamp())
            .bind(reason.map(i64::from))
            .bind(rows::partition_column(scope))
            .execute(c)
            .await?
            .rows_affected()
        });
        if n != 1 {
            return Ok(false);
        }
        let node = self.node.clone();
        rows::log_revocation(self.conn(), serial, &node).await?;
        Ok(true)
    }

    /// Publishes CRL number `n` of `scope`, made from every revocation up
    /// to log entry `seen`: `true` when `n` is above every number published
    /// for that scope so far and no revocation of a certificate in it was
    /// committed after `seen` (so a higher number never lists less),
    /// `false` otherwise — this CRL must not be served. On Postgres the
    /// log's ids are commit-ordered (see `log_revocation`), so entries after
    /// `seen` are exactly what was committed since. `scheduled`: the
    /// thisUpdate of a regularly scheduled CRL, which moves the scope's
    /// expiry horizon up (see `crl_horizons`).
    pub async fn publish_crl(
        &mut self,
        scope: CrlScope,
        n: u64,
        seen: i64,
        scheduled: Option<OffsetDateTime>,
    ) -> Result<bool> {
        let won = self.publish_crls(&[(scope, n)], seen, scheduled).await?;
        Ok(won.first() == Some(&true))
    }

    /// `publish_crl` for several scopes (each at most once) made from the
    /// same `seen`: whether each was published, in their order. On
    /// Postgres one statement for all.
    ///
    /// Each is one upsert: the row is proposed only if no revocation in
    /// the scope came after `seen`, and replaces the scope's row only with
    /// a higher number. The log's few entries after `seen` are each looked
    /// up by serial: the bounded range and the scalar subqueries keep
    /// Postgres on the indexes without statistics and as a generic plan.
    pub async fn publish_crls(
        &mut self,
        crls: &[(CrlScope, u64)],
        seen: i64,
        scheduled: Option<OffsetDateTime>,
    ) -> Result<Vec<bool>> {
        let number = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let horizon = scheduled.map_or(0, |t| t.unix_timestamp());
        // ?1 number, ?2 horizon, ?3 scope, ?4 seen.
        macro_rules! upsert {
            ($rows:literal, $scope:literal, $number:literal, $greatest:literal) => {
                concat!(
                    "INSERT INTO crl_scopes (scope, published, horizon) SELECT ",
                    $scope, ", ", $number, ", ?2 ", $rows,
                    " WHERE NOT EXISTS ( \
                       SELECT 1 FROM revocation_log l \
                       WHERE l.id > ?4 AND l.id <= (SELECT max(id) FROM revocation_log) \
                       AND coalesce( \
                         (SELECT c.crl_partition FROM certificates c WHERE c.serial = l.serial), \
                         (SELECT r.crl_partition FROM reimported_revocations r \
                          WHERE r.serial = l.serial), \
                         -1) = ", $scope, ") \
                     ON CONFLICT (scope) DO UPDATE SET published = excluded.published, \
                       horizon = ", $greatest, "(crl_scopes.horizon, excluded.horizon) \
                     WHERE crl_scopes.published < excluded.published RETURNING scope"
                )
            };
        }
        self.last_ok = false;
        let won: Vec<i64> = match &mut self.tx {
            Db::Pg(t) => {
                let scopes: Vec<i64> = crls.iter().map(|(s, _)| s.key()).collect();
                let numbers: Vec<i64> = crls.iter().map(|(_, n)| number(*n)).collect();
                sqlx::query_scalar(db::pg::sql(upsert!(
                    "FROM unnest(?1::bigint[], ?3::bigint[]) AS t(n, s)",
                    "t.s",
                    "t.n",
                    "greatest"
                )))
                .bind(numbers)
                .bind(horizon)
                .bind(scopes)
                .bind(seen)
                .fetch_all(&mut **t)
                .await?
            }
            Db::Sqlite(t) => {
                let mut won = Vec::new();
                for (scope, n) in crls {
                    let r: Option<i64> =
                        sqlx::query_scalar(db::sqlite::sql(upsert!("", "?3", "?1", "max")))
                            .bind(number(*n))
                            .bind(horizon)
                            .bind(scope.key())
                            .bind(seen)
                            .fetch_optional(&mut **t)
                            .await?;
                    won.extend(r);
                }
                won
            }
        };
        Ok(crls.iter().map(|(s, _)| won.contains(&s.key())).collect())
    }

    /// Every scope's expiry horizon: the thisUpdate of the newest regularly
    /// scheduled CRL published for it (Unix seconds). A revoked certificate
    /// that had expired and was revoked before its scope's horizon has been
    /// listed on that CRL, after its notAfter: it may leave the later ones
    /// (RFC 5280 §3.3). Scopes never published have no row (horizon 0).
    pub async fn crl_horizons(&mut self) -> Result<Vec<(CrlScope, i64)>> {
        let rows: Vec<(i64, i64)> = on!(self.conn(), c, d => {
            sqlx::query_as(d::sql("SELECT scope, horizon FROM crl_scopes"))
                .fetch_all(c)
                .await?
        });
        Ok(rows
            .into_iter()
            .filter_map(|(s, h)| CrlScope::from_key(s).map(|s| (s, h)))
            .collect())
    }

    /// The partitions (and whether the undivided CRL) that some certificate
    /// not yet expired at `at` names: the CRLs that must be published.
    /// Returns the highest partition (if any) and whether the undivided CRL
    /// is still named.
    pub async fn crl_scopes_in_use(&mut self, at: OffsetDateTime) -> Result<(Option<u16>, bool)> {
        let (highest, undivided): (Option<i64>, bool) = on!(self.conn(), c, d => {
            sqlx::query_as(d::sql(
                "SELECT (SELECT max(crl_partition) FROM certificates WHERE not_after >= ?1), \
                        EXISTS (SELECT 1 FROM certificates WHERE crl_partition IS NULL AND not_after >= ?1)",
            ))
            .bind(at.unix_timestamp())
            .fetch_one(c)
            .await?
        });
        Ok((highest.and_then(|h| u16::try_from(h).ok()), undivided))
    }

    /// Takes the next `count` CRL numbers at once; returns the last of them.
    pub async fn next_crl_numbers(&mut self, count: u64) -> Result<u64> {
        let count = i64::try_from(count.max(1)).unwrap_or(i64::MAX);
        let n: i64 = on!(self.conn(), c, d => {
            sqlx::query_scalar(d::sql(
                "UPDATE crl_state SET crl_number = crl_number + ? WHERE id = 1 RETURNING crl_number",
            ))
            .bind(count)
            .fetch_one(c)
            .await?
        });
        Ok(n as u64)
    }

    /// Takes the next CRL number.
    pub async fn next_crl_number(&mut self) -> Result<u64> {
        self.next_crl_numbers(1).await
    }

    /// Appends one 操作履歴 row, chained to the previous row of its company
    /// (the chain locked first: see `audit::append`).
    pub async fn audit(&mut self, e: &AuditEntry<'_>) -> Result<()> {
        audit::append(self.conn(), e).await?;
        self.last_ok = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
