//! Shomei's storage: sqlx repositories over SQLite (WAL, the embedded
//! default) or PostgreSQL (several nodes on one database), the migrations,
//! and the 操作履歴 with its hash chain.
//!
//! The store keeps what the service decided; it makes no decisions. Every
//! change goes through a [`Tx`], whose `commit` writes the change and its
//! 操作履歴 row together or not at all. Both backends answer every method
//! the same way; how they share their queries is in `db.rs`.

mod approvals;
mod attempts;
mod audit;
mod audit_review;
mod certificates;
mod companies;
mod crl;
mod crl_published;
mod db;
mod helpdesk;
mod leases;
mod migrate;
mod notices;
mod operator_mail;
mod operators;
mod password_reset;
mod rows;
mod sessions;
mod snapshot;
mod turns;
mod users;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::rand::SecureRandom;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

use db::{Conn, Db, Pool, on};

pub use approvals::{ApprovalRequestRow, ApprovalRuleRow, CompanyCert, NewApprovalRequest};
pub use attempts::{AddressAttempts, ClaimKind};
pub use audit::{AuditEntry, AuditFilter};
pub use audit_review::ReviewFilter;
pub use certificates::{CertRow, ExpiringCert, NewCert, Renewal};
pub use crl::{LoggedRevocation, RevocationListener, RevokedEntry};
pub use helpdesk::{SearchFrom, UserHit, UserHits};
pub use notices::PendingNotice;
pub use operator_mail::OperatorAddress;
pub use operators::{NewOperatorCert, OperatorRow, RevokedOperatorCert};
pub use sessions::{DoneRow, PendingRow, SessionRow};
pub(crate) use shomei_core::records::{
    ApprovalVoteRow, AuditRow, AuditScope, ChainCheck, CompanyContact, CompanyRow, CompanySummary,
    OperatorCertRow, ReviewRow,
};
pub use snapshot::LogPosition;
pub use users::{NewUser, UserRow, UserSummary};

/// Storage errors: for logs, never shown to customers as-is.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed a statement (connection lost, a
    /// constraint such as a duplicate login ID, a busy timeout). The
    /// change was not made; the caller reports a server error.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A row holds a value this program cannot read (a hand edit, or a
    /// bug): the data must be looked at, retrying will not help. (Also a
    /// backup path that is not UTF-8, with table and column `-`.)
    #[error("database holds an invalid value in {table}.{column}: {value}")]
    Corrupt {
        /// The table read.
        table: &'static str,
        /// The column whose value is invalid.
        column: &'static str,
        /// The value found (or why it was refused).
        value: String,
    },
    /// The database was migrated by a newer version of Shomei: this one
    /// refuses to open it rather than misread it.
    #[error("database schema version {found} is newer than this program ({supported})")]
    TooNew {
        /// The schema version recorded in the database.
        found: i64,
        /// The newest version this program's migrations reach.
        supported: i64,
    },
    /// The PostgreSQL URL is malformed or the server cannot be reached;
    /// the message names the URL without its password.
    #[error("{0}")]
    BadUrl(String),
    /// The operation exists for one backend only (backup and the integrity
    /// check are SQLite's); the message says what to use instead.
    #[error("{0}")]
    Unsupported(&'static str),
}

/// The store's result: every operation can fail with a [`StoreError`].
pub type Result<T> = std::result::Result<T, StoreError>;

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
    /// Turns at SQLite's one writer (see `turns`).
    turns: Arc<turns::Turns>,
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

/// How long a PostgreSQL connection may have sat in the pool and still be
/// used without a ping first (see `open_postgres_with`).
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

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
    /// The SQLite database file (created, owner-only, if missing).
    Sqlite(&'a Path),
    /// The PostgreSQL server and database.
    Postgres(&'a DatabaseUrl),
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

/// How far a commit has gone when it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Flushed to disk (fsync of the WAL): survives a power loss.
    Full,
    /// Written to the WAL: survives a crash of the process, not a power
    /// loss of the machine (the last commits before it may be lost).
    Normal,
}

/// How long a SQLite connection waits for another's lock.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A pool on `opts`, its first connection made. Two processes opening a new
/// database at the same moment both switch it to WAL, and SQLite refuses one
/// of them at once with SQLITE_BUSY, without waiting (both hold a shared
/// lock and want the exclusive one: waiting could deadlock). That one is
/// tried again, within the busy timeout: by then the database is in WAL.
async fn connect_sqlite(
    pool: SqlitePoolOptions,
    opts: &SqliteConnectOptions,
) -> Result<SqlitePool> {
    let until = std::time::Instant::now() + SQLITE_BUSY_TIMEOUT;
    loop {
        match pool.clone().connect_with(opts.clone()).await {
            Err(sqlx::Error::Database(e))
                if is_busy(e.code().as_deref()) && std::time::Instant::now() < until =>
            {
                tracing::debug!(
                    "database busy while connecting (another process opening it): trying again"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            connected => return Ok(connected?),
        }
    }
}

/// SQLITE_BUSY, or one of its extended codes (the low octet is the primary
/// code).
fn is_busy(code: Option<&str>) -> bool {
    code.and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|c| c & 0xff == 5)
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
            // A connection used a moment ago is not pinged again before
            // its next use: the pool already pings every connection given
            // back, so that one more round trip per statement only found
            // what the statement itself finds. One idle longer (the
            // server or the network may have dropped it meanwhile) still
            // is, and one that fails is replaced.
            .test_before_acquire(false)
            .before_acquire(|c, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_AFTER_IDLE {
                        sqlx::Connection::ping(c).await?;
                    }
                    Ok(true)
                })
            })
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
            turns: Arc::default(),
        })
    }

    /// The most connections the PostgreSQL pool opens for the node's work
    /// (`pool_size`, or `auto_pool_size` for 0); `None` on SQLite, which
    /// has no such pool. What an operator sizes `max_connections` by.
    pub fn pool_size(&self) -> Option<u32> {
        match &self.backend {
            Backend::Sqlite { .. } => None,
            Backend::Pg(p) => Some(p.options().get_max_connections()),
        }
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
            .busy_timeout(SQLITE_BUSY_TIMEOUT);
        let write = connect_sqlite(SqlitePoolOptions::new().max_connections(1), &opts).await?;
        migrate::sqlite(&write).await?;
        let read = connect_sqlite(
            SqlitePoolOptions::new().max_connections(4),
            &opts.read_only(true),
        )
        .await?;
        Ok(Self {
            backend: Backend::Sqlite { read, write },
            node: node_tag(),
            notices: None,
            turns: Arc::default(),
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

    /// Starts a write transaction (SQLite: `BEGIN IMMEDIATE`, holding the
    /// write lock from the start; Postgres: READ COMMITTED, with row locks
    /// taken by the reads that need them).
    pub async fn begin(&self) -> Result<Tx> {
        self.begin_in_turn(false).await
    }

    /// Write transactions waiting for SQLite's writer, and how many turns
    /// a returning customer's took ahead of others waiting (0, 0 on
    /// PostgreSQL).
    pub fn writer_turns(&self) -> (usize, u64) {
        self.turns.figures()
    }

    /// As `begin`, for a returning customer's login: on SQLite it takes the
    /// writer's next turn, ahead of the transactions waiting.
    pub async fn begin_first(&self) -> Result<Tx> {
        self.begin_in_turn(true).await
    }

    async fn begin_in_turn(&self, first: bool) -> Result<Tx> {
        let (tx, turn) = match &self.backend {
            Backend::Sqlite { write, .. } => {
                let turn = self.turns.take(first).await;
                (
                    Db::Sqlite(write.begin_with("BEGIN IMMEDIATE").await?),
                    Some(turn),
                )
            }
            Backend::Pg(p) => (Db::Pg(p.begin().await?), None),
        };
        Ok(Tx {
            node: self.node.clone(),
            last_ok: false,
            tx,
            _turn: turn,
        })
    }

    /// Is the database reachable (a trivial read)?
    pub async fn ping(&self) -> Result<()> {
        on!(self.reader(), p, d => {
            sqlx::query(d::sql("SELECT 1")).execute(p).await?;
        });
        Ok(())
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
    /// SQLite's writer turn, given up after the transaction (declared after
    /// it, so dropped after it).
    _turn: Option<turns::Turn>,
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
}

#[cfg(test)]
mod tests;
