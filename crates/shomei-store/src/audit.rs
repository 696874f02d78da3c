//! 操作履歴: one row per operation, success or failure, hash-chained per company.

use std::sync::LazyLock;

use aws_lc_rs::digest;
use shomei_core::{Actor, CompanyId, Operation, Outcome, UserId};
use time::OffsetDateTime;

use crate::Result;
use crate::db::{Conn, Db, Get, Pool, Value, on, query_with};
use crate::{AuditRow, Backend, Store, Tx};

/// What a use case records. Built with `AuditEntry::new` and the
/// methods below, so that every row names its operation from one table
/// (`Operation`) and fills its fields the same way.
#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    /// When the operation happened (whole seconds are stored).
    pub at: OffsetDateTime,
    /// Whose chain the row joins and whose 操作履歴照会 shows it; `None`:
    /// the bank's own chain (operators, the shell, unknown login IDs).
    pub company_id: Option<CompanyId>,
    /// The acting user, when a company user acted (their own rows filter).
    pub actor_user_id: Option<UserId>,
    /// Who acted as shown: a login ID, `銀行:<name>`, or the login ID typed
    /// at a refused login.
    pub actor_login_id: &'a str,
    /// What was done; stored as its Japanese label.
    pub operation: Operation,
    /// Whom it was done to (a login ID); the actor's own by default.
    pub target_login_id: &'a str,
    /// 成功 or 失敗.
    pub result: Outcome,
    /// Free text shown with the row (a serial, a reason, what changed).
    pub detail: &'a str,
    /// The client's IP address, or the tool's name for the shell.
    pub client_addr: &'a str,
}

impl<'a> AuditEntry<'a> {
    /// `operation` at `at`, succeeded, in the bank's own chain, with no
    /// actor, target, detail or client until they are given.
    pub fn new(operation: Operation, at: OffsetDateTime) -> Self {
        AuditEntry {
            at,
            company_id: None,
            actor_user_id: None,
            actor_login_id: "",
            operation,
            target_login_id: "",
            result: Outcome::Succeeded,
            detail: "",
            client_addr: "",
        }
    }

    /// Done by a user of a company.
    pub fn by(mut self, company: CompanyId, user: UserId, login_id: &'a str) -> Self {
        self.company_id = Some(company);
        self.actor_user_id = Some(user);
        self.actor_login_id = login_id;
        self
    }

    /// Done by the acting user.
    pub fn by_actor(self, a: &'a Actor) -> Self {
        self.by(a.company_id, a.user_id, a.login_id.as_str())
    }

    /// Done by the user of this row.
    pub fn by_user(self, u: &'a crate::UserRow) -> Self {
        self.by(u.company_id, u.id, u.login_id.as_str())
    }

    /// Done by someone who is no user: the bank (`銀行:…`), or a login ID
    /// typed at a refused login. In `company`'s chain, or the bank's.
    pub fn by_name(mut self, company: Option<CompanyId>, who: &'a str) -> Self {
        self.company_id = company;
        self.actor_user_id = None;
        self.actor_login_id = who;
        self
    }

    /// The login ID acted upon.
    pub fn target(mut self, login_id: &'a str) -> Self {
        self.target_login_id = login_id;
        self
    }

    /// With this detail text.
    pub fn detail(mut self, detail: &'a str) -> Self {
        self.detail = detail;
        self
    }

    /// It did not happen (a refusal, a failed check).
    pub fn failed(self) -> Self {
        self.outcome(Outcome::Failed)
    }

    /// With this outcome (`failed` is the usual spelling of a failure).
    pub fn outcome(mut self, result: Outcome) -> Self {
        self.result = result;
        self
    }

    /// The address the request came from (or the tool, `operator-cli`).
    pub fn client(mut self, client: &'a str) -> Self {
        self.client_addr = client;
        self
    }
}

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

struct Hashed<'a> {
    chain: i64,
    at: i64,
    company_id: Option<i64>,
    actor_user_id: Option<i64>,
    actor_login_id: &'a str,
    operation: &'a str,
    target_login_id: &'a str,
    result: &'a str,
    detail: &'a str,
    client_addr: &'a str,
}

/// SHA-256 over the previous hash and every field, unambiguously framed:
/// each field is its length (8 bytes, big-endian), then its UTF-8 bytes.
fn row_hash(prev: &str, h: &Hashed<'_>) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(&frame(prev));
    ctx.update(&payload(h));
    hex::encode(ctx.finish().as_ref())
}

fn frame(s: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(8 + s.len());
    b.extend_from_slice(&(s.len() as u64).to_be_bytes());
    b.extend_from_slice(s.as_bytes());
    b
}

/// What `row_hash` hashes after the previous hash: every field, framed.
/// PostgreSQL hashes the framed previous hash and this in the statement
/// that writes the row (see `pg_append`), the one part of the hash written
/// in SQL.
fn payload(h: &Hashed<'_>) -> Vec<u8> {
    [
        &h.chain.to_string(),
        &h.at.to_string(),
        &h.company_id.map(|c| c.to_string()).unwrap_or_default(),
        &h.actor_user_id.map(|c| c.to_string()).unwrap_or_default(),
        h.actor_login_id,
        h.operation,
        h.target_login_id,
        h.result,
        h.detail,
        h.client_addr,
    ]
    .iter()
    .flat_map(|f| frame(f))
    .collect()
}

/// Binds a row's fields, `chain` to `client_addr`, in the order both
/// backends' statements list them.
macro_rules! bind_fields {
    ($q:expr, $h:expr) => {
        $q.bind($h.chain)
            .bind($h.at)
            .bind($h.company_id)
            .bind($h.actor_user_id)
            .bind($h.actor_login_id)
            .bind($h.operation)
            .bind($h.target_login_id)
            .bind($h.result)
            .bind($h.detail)
            .bind($h.client_addr)
    };
}

impl<'a> Hashed<'a> {
    fn of(e: &AuditEntry<'a>) -> Self {
        Hashed {
            chain: chain_of(e),
            at: e.at.unix_timestamp(),
            company_id: e.company_id.map(|c| c.0),
            actor_user_id: e.actor_user_id.map(|u| u.0),
            actor_login_id: e.actor_login_id,
            operation: e.operation.label(),
            target_login_id: e.target_login_id,
            result: e.result.label(),
            detail: e.detail,
            client_addr: e.client_addr,
        }
    }
}

/// The 操作履歴 row as two common table expressions of one PostgreSQL
/// statement, its parameters numbered from `$p` (bound by `pg_bind`):
/// `k` bumps the chain's count and locks it (as `LOCK_CHAIN`), computing
/// the row's hash from the chain's last hash as the locked row's newest
/// version holds it, and keeps both hashes there (RETURNING sees only the
/// new values, so the previous one is kept in `prev_hash`); `a` writes the
/// row. `from` gates it (`" FROM l"`: only if `l` has a row).
pub(crate) fn pg_append(p: usize, from: &str) -> String {
    let payload = p + 10;
    let hash = |prev: &str| {
        format!(
            "encode(sha256(int8send(octet_length({prev})::int8) || convert_to({prev}, 'UTF8') \
             || ${payload}::bytea), 'hex')"
        )
    };
    // The last hash, always kept on PostgreSQL (NOT NULL since 0022): no
    // fallback to the chain's newest row, whose subqueries every append
    // would set up for nothing.
    let last = "audit_counts.last_hash";
    format!(
        "k AS (INSERT INTO audit_counts (chain, n, prev_hash, last_hash) \
           SELECT ${p}, 1, '{GENESIS}', {first}{from} \
           ON CONFLICT (chain) DO UPDATE SET n = audit_counts.n + 1, prev_hash = {last}, \
             last_hash = {next} \
           RETURNING prev_hash, last_hash), \
         a AS (INSERT INTO audit_log (chain, at, company_id, actor_user_id, actor_login_id, \
             operation, target_login_id, result, detail, client_addr, prev_hash, hash) \
           SELECT ${p}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, k.prev_hash, k.last_hash \
           FROM k RETURNING 1)",
        p + 1,
        p + 2,
        p + 3,
        p + 4,
        p + 5,
        p + 6,
        p + 7,
        p + 8,
        p + 9,
        first = hash(&format!("'{GENESIS}'")),
        next = hash(last),
    )
}

/// Binds `pg_append`'s parameters for `e`, after those already bound.
pub(crate) fn pg_bind<'q>(
    q: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    e: &AuditEntry<'_>,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let h = Hashed::of(e);
    let payload = payload(&h);
    bind_fields!(q, h).bind(payload)
}

/// Appends a row to its chain.
///
/// The chain's row count is bumped first, and that upsert locks the chain's
/// `audit_counts` row until the transaction ends (on Postgres; SQLite's one
/// writer needs no lock) and returns the chain's last hash as the row's
/// newest version holds it (an upsert that waited for the lock sees the
/// other transaction's update, where a read would see its own snapshot).
/// Two nodes appending to one chain at once take turns, each chaining to
/// the other's row, and ids grow along the chain (the second row's id is
/// taken after the first committed), as `verify_all` walks it. The new
/// row and the chain's new last hash are written together: on Postgres
/// all of it is one statement (`pg_append`), on SQLite three.
pub(crate) async fn append(c: Conn<'_>, e: &AuditEntry<'_>) -> Result<()> {
    match c {
        Db::Pg(c) => {
            static SQL: LazyLock<String> =
                LazyLock::new(|| format!("WITH {} SELECT count(*) FROM a", pg_append(1, "")));
            pg_bind(sqlx::query(SQL.as_str()), e).execute(c).await?;
        }
        Db::Sqlite(c) => {
            let h = Hashed::of(e);
            let (n, last): (i64, Option<String>) = sqlx::query_as(LOCK_CHAIN)
                .bind(h.chain)
                .fetch_one(&mut *c)
                .await?;
            let prev = match last {
                Some(h) => h,
                None if n == 1 => GENESIS.to_string(),
                // Only if a row was written without its hash being kept.
                None => sqlx::query_scalar::<_, String>(
                    "SELECT hash FROM audit_log WHERE chain = ? ORDER BY id DESC LIMIT 1",
                )
                .bind(h.chain)
                .fetch_optional(&mut *c)
                .await?
                .unwrap_or_else(|| GENESIS.to_string()),
            };
            let hash = row_hash(&prev, &h);
            let insert = sqlx::query(
                "INSERT INTO audit_log (chain, at, company_id, actor_user_id, actor_login_id, \
                 operation, target_login_id, result, detail, client_addr, prev_hash, hash) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            );
            bind_fields!(insert, h)
                .bind(&prev)
                .bind(&hash)
                .execute(&mut *c)
                .await?;
            sqlx::query("UPDATE audit_counts SET last_hash = ? WHERE chain = ?")
                .bind(&hash)
                .bind(h.chain)
                .execute(&mut *c)
                .await?;
        }
    }
    Ok(())
}

/// The chain a row belongs to: its company's, 0 for the bank's own.
/// The condition selecting one company's rows (`None`: the bank's own,
/// of no company) in a query on `audit_log` (columns prefixed `t`), and its
/// value: by the chain (see `chain_of`), whose index holds them in id
/// order, unless `by_index`: the query also filters on what an index
/// leading with `company_id` holds (an operation or an actor; for a count,
/// a result). Naming both would leave the planner guessing how many rows
/// match both, and picking neither index.
pub(crate) fn rows_of(
    t: &str,
    company: Option<CompanyId>,
    by_index: bool,
) -> (String, Option<Value>) {
    match (company, by_index) {
        (Some(c), false) => (format!("{t}chain = ?"), Some(Value::Int(c.0))),
        (Some(c), true) => (format!("{t}company_id = ?"), Some(Value::Int(c.0))),
        (None, false) => (format!("{t}chain = 0"), None),
        (None, true) => (format!("{t}company_id IS NULL"), None),
    }
}

/// A company's rows are its chain, the rows of no company chain 0 (ids
/// start at 1): `chain = c` selects company `c`'s rows, by the chain's
/// index (there is no index on `company_id` alone: it was the same one).
fn chain_of(e: &AuditEntry<'_>) -> i64 {
    e.company_id.map(|c| c.0).unwrap_or(0)
}

/// The upsert that bumps a chain's count and locks it (see `append`).
const LOCK_CHAIN: &str = "INSERT INTO audit_counts (chain, n) VALUES (?, 1) \
     ON CONFLICT (chain) DO UPDATE SET n = audit_counts.n + 1 RETURNING n, last_hash";

/// 操作履歴照会's conditions: one company, optionally narrowed.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only rows this user did (a 一般 user sees only their own).
    pub actor_user_id: Option<UserId>,
    /// Only rows whose actor is recorded as exactly this.
    pub actor_login_id: Option<String>,
    /// Only this operation, by its label (exact match).
    pub operation: Option<String>,
    /// Only 成功 or only 失敗.
    pub result: Option<String>,
    /// From this time on (inclusive).
    pub from: Option<OffsetDateTime>,
    /// Before this time (exclusive).
    pub until: Option<OffsetDateTime>,
}

impl AuditFilter {
    fn is_empty(&self) -> bool {
        self.actor_user_id.is_none()
            && self.actor_login_id.is_none()
            && self.operation.is_none()
            && self.result.is_none()
            && self.from.is_none()
            && self.until.is_none()
    }

    /// The WHERE clause naming only the conditions given (so that SQLite
    /// picks the index that fits them), and its values in order. For a
    /// count (not `ordered`), a result alone is also counted from the
    /// operation's index, which holds it, rather than from the rows.
    fn clause(&self, company: CompanyId, ordered: bool) -> (String, Vec<Value>) {
        let by_index = self.actor_user_id.is_some()
            || self.actor_login_id.is_some()
            || self.operation.is_some()
            || (self.result.is_some() && !ordered);
        let (mut sql, value) = rows_of("", Some(company), by_index);
        let mut values: Vec<Value> = value.into_iter().collect();
        let mut add = |cond: &str, v: Value| {
            sql.push_str(" AND ");
            sql.push_str(cond);
            values.push(v);
        };
        if let Some(u) = self.actor_user_id {
            add("actor_user_id = ?", Value::Int(u.0));
        }
        if let Some(a) = &self.actor_login_id {
            add("actor_login_id = ?", Value::Text(a.clone()));
        }
        if let Some(o) = &self.operation {
            add("operation = ?", Value::Text(o.clone()));
        }
        if let Some(r) = &self.result {
            add("result = ?", Value::Text(r.clone()));
        }
        if let Some(t) = self.from {
            add("at >= ?", Value::Int(t.unix_timestamp()));
        }
        if let Some(t) = self.until {
            add("at < ?", Value::Int(t.unix_timestamp()));
        }
        (sql, values)
    }
}

/// How many of a company's 操作履歴 rows match: from the per-company count
/// when nothing narrows it, else through the index that fits the filter.
pub(crate) async fn count(pool: Pool<'_>, company: CompanyId, f: &AuditFilter) -> Result<i64> {
    if f.is_empty() {
        let n: Option<i64> = on!(pool, p, d => {
            sqlx::query_scalar(d::sql("SELECT n FROM audit_counts WHERE chain = ?"))
                .bind(company.0)
                .fetch_optional(p)
                .await?
        });
        return Ok(n.unwrap_or(0));
    }
    let (clause, values) = f.clause(company, false);
    let sql = format!("SELECT count(*) AS n FROM audit_log WHERE {clause}");
    on!(pool, p, d => query_with!(d, sql, &values).fetch_one(p).await?.int("n"))
}

/// One page of a company's 操作履歴, newest first: `limit` rows after the
/// newest `offset`, of `total` matching rows. Pages in the older half are
/// read from the oldest end, so the last page costs what the first does.
pub(crate) async fn page(
    pool: Pool<'_>,
    company: CompanyId,
    f: &AuditFilter,
    limit: i64,
    offset: i64,
    total: i64,
) -> Result<Vec<AuditRow>> {
    let (clause, mut values) = f.clause(company, true);
    let columns = "id, at, company_id, actor_login_id, operation, target_login_id, result, detail, client_addr";
    let from_oldest = offset > total / 2;
    let (order, limit, offset) = if from_oldest {
        let limit = limit.min(total - offset).max(0);
        ("ASC", limit, (total - offset - limit).max(0))
    } else {
        ("DESC", limit, offset)
    };
    values.push(Value::Int(limit));
    values.push(Value::Int(offset));
    let sql = format!(
        "SELECT {columns} FROM audit_log WHERE {clause} ORDER BY id {order} LIMIT ? OFFSET ?"
    );
    let mut rows = on!(pool, p, d => {
        query_with!(d, sql, &values)
            .fetch_all(p)
            .await?
            .iter()
            .map(row)
            .collect::<Result<Vec<_>>>()?
    });
    if from_oldest {
        rows.reverse();
    }
    Ok(rows)
}

/// Every row (of one company, or all), oldest first, in pages by id.
pub(crate) async fn for_each(
    pool: Pool<'_>,
    company: Option<CompanyId>,
    mut f: impl FnMut(&AuditRow),
) -> Result<usize> {
    let mut after = 0i64;
    let mut n = 0usize;
    loop {
        let rows = on!(pool, p, d => {
            sqlx::query(d::sql(
                "SELECT id, at, company_id, actor_login_id, operation, target_login_id, result, detail, client_addr \
                 FROM audit_log WHERE id > ?1 AND (?2 IS NULL OR chain = ?2) ORDER BY id LIMIT 10000",
            ))
            .bind(after)
            .bind(company.map(|c| c.0))
            .fetch_all(p)
            .await?
            .iter()
            .map(row)
            .collect::<Result<Vec<_>>>()?
        });
        if rows.is_empty() {
            return Ok(n);
        }
        for r in rows {
            after = r.id;
            n += 1;
            f(&r);
        }
    }
}

pub(crate) fn row(r: &impl Get) -> Result<AuditRow> {
    Ok(AuditRow {
        id: r.int("id")?,
        at: OffsetDateTime::from_unix_timestamp(r.int("at")?).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        company_id: r.opt_int("company_id")?.map(CompanyId),
        actor_login_id: r.text("actor_login_id")?,
        operation: r.text("operation")?,
        target_login_id: r.text("target_login_id")?,
        result: r.text("result")?,
        detail: r.text("detail")?,
        client_addr: r.text("client_addr")?,
    })
}

pub(crate) async fn for_company(
    pool: Pool<'_>,
    company: CompanyId,
    limit: i64,
    offset: i64,
) -> Result<Vec<AuditRow>> {
    on!(pool, p, d => {
        sqlx::query(d::sql(
            "SELECT id, at, company_id, actor_login_id, operation, target_login_id, result, detail, client_addr \
             FROM audit_log WHERE chain = ? ORDER BY id DESC LIMIT ? OFFSET ?",
        ))
        .bind(company.0)
        .bind(limit)
        .bind(offset)
        .fetch_all(p)
        .await?
        .iter()
        .map(row)
        .collect()
    })
}

/// Walks every chain in id order; stops at the first row whose stored
/// previous hash or own hash does not match (an edited, deleted or reordered row).
pub(crate) async fn verify_all(pool: Pool<'_>) -> Result<crate::ChainCheck> {
    let rows = on!(pool, p, d => {
        sqlx::query(d::sql(
            "SELECT id, chain, at, company_id, actor_user_id, actor_login_id, operation, target_login_id, \
             result, detail, client_addr, prev_hash, hash FROM audit_log ORDER BY chain, id",
        ))
        .fetch_all(p)
        .await?
        .iter()
        .map(Stored::read)
        .collect::<Result<Vec<_>>>()?
    });
    let mut expected_prev = GENESIS.to_string();
    let mut current_chain = None;
    let mut check = crate::ChainCheck::default();
    for r in &rows {
        if current_chain != Some(r.chain) {
            current_chain = Some(r.chain);
            expected_prev = GENESIS.to_string();
            check.chains += 1;
        }
        let h = Hashed {
            chain: r.chain,
            at: r.row.at.unix_timestamp(),
            company_id: r.row.company_id.map(|c| c.0),
            actor_user_id: r.actor_user_id,
            actor_login_id: &r.row.actor_login_id,
            operation: &r.row.operation,
            target_login_id: &r.row.target_login_id,
            result: &r.row.result,
            detail: &r.row.detail,
            client_addr: &r.row.client_addr,
        };
        if r.prev_hash != expected_prev || row_hash(&r.prev_hash, &h) != r.hash {
            check.broken_at = Some(r.row.id);
            return Ok(check);
        }
        check.rows += 1;
        expected_prev = r.hash.clone();
    }
    Ok(check)
}

/// A row as stored, with what its hash covers beyond what screens show.
struct Stored {
    row: AuditRow,
    chain: i64,
    actor_user_id: Option<i64>,
    prev_hash: String,
    hash: String,
}

impl Stored {
    fn read(r: &impl Get) -> Result<Self> {
        Ok(Self {
            row: row(r)?,
            chain: r.int("chain")?,
            actor_user_id: r.opt_int("actor_user_id")?,
            prev_hash: r.text("prev_hash")?,
            hash: r.text("hash")?,
        })
    }
}

impl Store {
    /// Appends one 操作履歴 row on its own (as `Tx::audit`, committed).
    pub async fn audit(&self, e: &AuditEntry<'_>) -> Result<()> {
        if let Backend::Pg(p) = &self.backend {
            return append(Db::Pg(&mut *p.acquire().await?), e).await;
        }
        let mut tx = self.begin().await?;
        tx.audit(e).await?;
        tx.commit().await
    }

    /// 操作履歴 of one company, newest first.
    pub async fn audit_for_company(
        &self,
        company: CompanyId,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<AuditRow>> {
        for_company(self.reader(), company, limit, offset).await
    }

    /// 操作履歴照会: how many of the company's rows match `f`.
    pub async fn audit_count(&self, company: CompanyId, f: &AuditFilter) -> Result<i64> {
        count(self.reader(), company, f).await
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
        page(self.reader(), company, f, limit, offset, total).await
    }

    /// Every 操作履歴 row of one company (or all), oldest first.
    pub async fn audit_for_each(
        &self,
        company: Option<CompanyId>,
        f: impl FnMut(&AuditRow),
    ) -> Result<usize> {
        for_each(self.reader(), company, f).await
    }

    /// Checks every chain; returns the id of the first row that breaks one.
    pub async fn verify_audit(&self) -> Result<Option<i64>> {
        Ok(verify_all(self.reader()).await?.broken_at)
    }

    /// Checks every chain: how many rows and chains held, and the first
    /// row that breaks one.
    pub async fn check_audit_chains(&self) -> Result<crate::ChainCheck> {
        verify_all(self.reader()).await
    }
}

impl Tx {
    /// Appends one 操作履歴 row, chained to the previous row of its company
    /// (the chain locked first: see `append`).
    pub async fn audit(&mut self, e: &AuditEntry<'_>) -> Result<()> {
        append(self.conn(), e).await?;
        self.last_ok = true;
        Ok(())
    }
}
