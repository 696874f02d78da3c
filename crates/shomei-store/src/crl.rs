//! The revoked serials, the revocation log the other nodes read, the
//! re-imported revocations, and the CRL numbers and publications.

use std::sync::Arc;
use std::time::Duration;

use shomei_core::{CrlScope, Serial};
use sqlx::postgres::PgPoolOptions;
use time::OffsetDateTime;

use crate::db::{self, Conn, Db, Pool, Sql, on};
use crate::rows::ts;
use crate::{Backend, Result, Store, StoreError, Tx};

/// Rows of the revocation set read per query: bounds the size of one
/// aggregated chunk (about 50 bytes a row).
pub(crate) const REVOKED_CHUNK: i64 = 100_000;

/// One chunk of the revocation set after `?1` up to `?2`, `?3` rows at
/// most, aggregated into one text value (SQLite's group_concat is
/// Postgres's string_agg).
const REVOKED_CHUNK_SQL: Sql = {
    macro_rules! chunk {
        ($aggregate:literal) => {
            concat!(
                "SELECT count(*), max(serial), ",
                $aggregate,
                "(serial || ',' || revoked_at || ',' || coalesce(revocation_reason, 0) \
                  || ',' || not_after || ',' || coalesce(crl_partition, -1), ';') \
                 FROM (SELECT serial, revoked_at, revocation_reason, not_after, crl_partition \
                       FROM certificates \
                       WHERE revoked_at IS NOT NULL AND serial > ?1 AND serial <= ?2 \
                       ORDER BY serial LIMIT ?3) AS chunk"
            )
        };
    }
    Sql {
        sqlite: chunk!("group_concat"),
        postgres: chunk!("string_agg"),
    }
};

/// One chunk of the revocation set after the serial `after`: its size, its
/// highest serial, and the rows aggregated by SQLite into one text value
/// `serial,at,reason,not_after,partition;…` (partition -1: the undivided
/// CRL), all read from the covering index.
pub(crate) async fn revoked_chunk(
    pool: Pool<'_>,
    after: &str,
    upto: &str,
) -> Result<(i64, Option<String>, Option<String>)> {
    Ok(on!(pool, p, d => {
        sqlx::query_as(d::of(&REVOKED_CHUNK_SQL))
            .bind(after)
            .bind(upto)
            .bind(REVOKED_CHUNK)
            .fetch_one(p)
            .await?
    }))
}

pub(crate) fn corrupt_revoked(value: &str) -> StoreError {
    StoreError::Corrupt {
        table: "certificates",
        column: "serial, revoked_at, revocation_reason, not_after, crl_partition",
        value: value.to_owned(),
    }
}

/// `serial,at,reason,not_after,partition` → (serial octets into `buf`, the rest).
pub(crate) fn parse_revoked<'b>(
    item: &str,
    buf: &'b mut [u8; 20],
) -> Result<(&'b [u8], RevokedEntry)> {
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
    /// The CRL that lists it (a partition, or the undivided CRL).
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
pub(crate) const SERIAL_MAX: &str = "~";

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
pub(crate) async fn revoked_range(
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
    /// Its id in `revocation_log`, increasing: a process asks for the
    /// revocations after the last id it has applied.
    pub log_id: i64,
    /// The revoked certificate's serial (a customer's or an operator's).
    pub serial: Serial,
    /// When it was revoked.
    pub revoked_at: OffsetDateTime,
    /// The CRLReason code; `None` when none was given.
    pub reason: Option<u8>,
    /// The CRL entry's invalidity date (when the key is known or suspected
    /// to have been compromised, earlier than the revocation); `None`
    /// for most revocations.
    pub invalidity: Option<OffsetDateTime>,
    /// The certificate's notAfter (`None`: a re-imported revocation of a
    /// certificate this database does not know).
    pub not_after: Option<OffsetDateTime>,
    /// The CRL that must list it.
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

/// The revocation log's entries after `?`, 10,000 at most, each with what
/// its certificate (a customer's or an operator's) or its re-imported row
/// says. The few newest entries, each looked up by its serial: on
/// Postgres, the bounded range and the fenced lateral lookups keep that
/// plan without statistics (a fresh database) and as a generic plan, where
/// a hash join would read every certificate.
const REVOCATIONS_AFTER_SQL: Sql = {
    macro_rules! logged_from {
        ($from:literal) => {
            concat!(
                "SELECT l.id, l.serial, coalesce(c.revoked_at, o.revoked_at, r.revoked_at), \
                 coalesce(c.revocation_reason, o.revocation_reason, r.reason), c.invalidity_date, \
                 coalesce(c.not_after, o.not_after), \
                 coalesce(c.crl_partition, o.crl_partition, r.crl_partition, -1) FROM ",
                $from,
                " ORDER BY l.id"
            )
        };
    }
    Sql {
        sqlite: logged_from!(
            "(SELECT id, serial FROM revocation_log WHERE id > ? ORDER BY id LIMIT 10000) l \
             LEFT JOIN certificates c ON c.serial = l.serial \
             LEFT JOIN reimported_revocations r ON r.serial = l.serial \
             LEFT JOIN operator_certificates o ON o.serial = l.serial"
        ),
        postgres: logged_from!(
            "(SELECT id, serial FROM revocation_log WHERE id > ? \
               AND id <= (SELECT max(id) FROM revocation_log) ORDER BY id LIMIT 10000) l \
             LEFT JOIN LATERAL (SELECT * FROM certificates c WHERE c.serial = l.serial OFFSET 0) c ON true \
             LEFT JOIN LATERAL (SELECT * FROM reimported_revocations r WHERE r.serial = l.serial OFFSET 0) r \
             ON true \
             LEFT JOIN LATERAL (SELECT * FROM operator_certificates o WHERE o.serial = l.serial OFFSET 0) o \
             ON true"
        ),
    }
};

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
        sqlx::query_as(d::of(&REVOCATIONS_AFTER_SQL))
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

/// How long the revocation watch's first read of a pass waits for a
/// PostgreSQL connection (see `Store::revocation_log_tail`).
pub(crate) const WATCH_ACQUIRE: Duration = Duration::from_millis(500);

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

impl Store {
    /// Calls `f(serial, entry)` with every revoked certificate, in serial
    /// order; returns how many there were. Fast at a million rows.
    pub async fn for_each_revoked(
        &self,
        f: impl FnMut(&[u8], RevokedEntry) + Send,
    ) -> Result<usize> {
        for_each_revoked(self.reader(), f).await
    }

    /// How many certificates are revoked.
    pub async fn revoked_count(&self) -> Result<usize> {
        revoked_count(self.reader()).await
    }

    /// The revoked certificates that carry an invalidity date (few).
    pub async fn invalidity_dates(&self) -> Result<Vec<(Serial, OffsetDateTime)>> {
        invalidity_dates(self.reader()).await
    }

    /// The newest entry of the revocation log (0 when empty).
    pub async fn revocation_log_head(&self) -> Result<i64> {
        revocation_log_head(self.reader()).await
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
        revocations_after(self.reader(), after).await
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
}

/// A CRL publication's upsert (see `Tx::publish_crls`): on Postgres one
/// statement for every scope (`unnest` of the numbers and the scopes), on
/// SQLite one per scope.
const PUBLISH_CRLS_SQL: Sql = {
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
    Sql {
        sqlite: upsert!("", "?3", "?1", "max"),
        postgres: upsert!(
            "FROM unnest(?1::bigint[], ?3::bigint[]) AS t(n, s)",
            "t.s",
            "t.n",
            "greatest"
        ),
    }
};

impl Tx {
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
            .bind(partition_column(scope))
            .execute(c)
            .await?
            .rows_affected()
        });
        if n != 1 {
            return Ok(false);
        }
        let node = self.node.clone();
        log_revocation(self.conn(), serial, &node).await?;
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
        self.last_ok = false;
        let won: Vec<i64> = match &mut self.tx {
            Db::Pg(t) => {
                let scopes: Vec<i64> = crls.iter().map(|(s, _)| s.key()).collect();
                let numbers: Vec<i64> = crls.iter().map(|(_, n)| number(*n)).collect();
                sqlx::query_scalar(db::pg::of(&PUBLISH_CRLS_SQL))
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
                    let r: Option<i64> = sqlx::query_scalar(db::sqlite::of(&PUBLISH_CRLS_SQL))
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
}
