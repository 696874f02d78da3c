//! The two backends side by side: SQLite and PostgreSQL.
//!
//! Every query is written once. A value of [`Db`] holds either backend's
//! pool, connection or transaction, and [`on!`] runs the same body for
//! whichever it holds: the body is compiled twice, once with the SQLite
//! types and once with the Postgres ones (so `bind`, `try_get` and
//! `query_as` tuples need no `Any` driver and lose no types). Inside the
//! body, a dialect module ([`sqlite`] or [`pg`]) gives the SQL text:
//! `d::sql("… WHERE id = ?")` is the text as written for SQLite and with
//! `?` numbered `$1, $2, …` for Postgres, numbered once per statement (the
//! numbered text is kept, see [`numbered_once`]).
//!
//! The few statements whose text differs per backend (row locks,
//! `string_agg`, a plan Postgres needs) are an [`Sql`] constant each, in
//! their aggregate's file, both texts side by side; `d::of(&STATEMENT)`
//! takes the one for the backend that runs. Where the backends differ in
//! more than the text (one statement on Postgres, several on SQLite: the
//! renewal, a revocation, a CRL publication, the 操作履歴 append), the
//! function matches on [`Db`] and each arm holds its backend's statements.
//!
//! Adding a query: write it as a function taking a [`Conn`] (inside a
//! transaction, or a connection from the read pool) or a [`Pool`] (a read
//! that may use several connections), with `on!(conn, c, d => …)` around
//! the sqlx call, and use only SQL both databases accept (`coalesce` rather
//! than `ifnull`, `ON CONFLICT … DO UPDATE` rather than `INSERT OR REPLACE`,
//! `count(*) FILTER (WHERE …)` rather than `sum(condition)`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{LazyLock, RwLock};

use sqlx::pool::PoolConnection;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{PgConnection, PgPool, Postgres, Row, Sqlite, SqliteConnection, SqlitePool};

use crate::Result;

/// One of the two backends' values.
#[derive(Clone, Copy)]
pub(crate) enum Db<S, P> {
    Sqlite(S),
    Pg(P),
}

/// A connection: inside a transaction, or taken from the read pool.
pub(crate) type Conn<'a> = Db<&'a mut SqliteConnection, &'a mut PgConnection>;

/// A pool to read from.
pub(crate) type Pool<'a> = Db<&'a SqlitePool, &'a PgPool>;

/// A connection taken from a pool (given back when dropped).
pub(crate) type Pooled = Db<PoolConnection<Sqlite>, PoolConnection<Postgres>>;

impl Pooled {
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            Db::Sqlite(c) => Db::Sqlite(&mut **c),
            Db::Pg(c) => Db::Pg(&mut **c),
        }
    }
}

impl Conn<'_> {
    /// The same connection, for one more call.
    pub(crate) fn reborrow(&mut self) -> Conn<'_> {
        match self {
            Db::Sqlite(c) => Db::Sqlite(&mut **c),
            Db::Pg(c) => Db::Pg(&mut **c),
        }
    }
}

impl Pool<'_> {
    pub(crate) async fn acquire(&self) -> Result<Pooled> {
        Ok(match self {
            Db::Sqlite(p) => Db::Sqlite(p.acquire().await?),
            Db::Pg(p) => Db::Pg(p.acquire().await?),
        })
    }
}

/// Runs `$body` with `$c` bound to the SQLite or the Postgres value in
/// `$db`, and `$d` naming the matching dialect module.
macro_rules! on {
    ($db:expr, $c:ident, $d:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($c) => {
                #[allow(unused_imports)]
                use $crate::db::sqlite as $d;
                $body
            }
            $crate::db::Db::Pg($c) => {
                #[allow(unused_imports)]
                use $crate::db::pg as $d;
                $body
            }
        }
    };
}
pub(crate) use on;

/// A value bound to a `?` of a statement built at run time, in order.
pub(crate) enum Value {
    /// An integer.
    Int(i64),
    /// A text.
    Text(String),
}

/// `sqlx::query(sql)` with `values` (a `&[Value]`) bound in order, for
/// either backend (inside `on!`, where `$d` is the dialect).
macro_rules! query_with {
    ($d:ident, $sql:expr, $values:expr) => {{
        let mut q = sqlx::query($d::sql($sql));
        for v in $values {
            q = match v {
                $crate::db::Value::Int(i) => q.bind(*i),
                $crate::db::Value::Text(t) => q.bind(t.as_str()),
            };
        }
        q
    }};
}
pub(crate) use query_with;

/// A statement whose text differs per backend: both texts, side by side.
pub(crate) struct Sql {
    pub(crate) sqlite: &'static str,
    pub(crate) postgres: &'static str,
}

impl Sql {
    /// A statement both backends run as written.
    pub(crate) const fn both(text: &'static str) -> Sql {
        Sql {
            sqlite: text,
            postgres: text,
        }
    }
}

/// SQL text as written.
pub(crate) mod sqlite {
    use super::*;

    pub(crate) fn sql(
        text: impl Into<Cow<'static, str>>,
    ) -> sqlx::AssertSqlSafe<Cow<'static, str>> {
        sqlx::AssertSqlSafe(text.into())
    }

    /// The SQLite text of `statement`.
    pub(crate) fn of(statement: &Sql) -> sqlx::AssertSqlSafe<Cow<'static, str>> {
        sql(statement.sqlite)
    }
}

/// SQL text with its parameters numbered for Postgres.
pub(crate) mod pg {
    use super::*;

    pub(crate) fn sql(
        text: impl Into<Cow<'static, str>>,
    ) -> sqlx::AssertSqlSafe<Cow<'static, str>> {
        sqlx::AssertSqlSafe(numbered_once(text.into()))
    }

    /// The Postgres text of `statement`.
    pub(crate) fn of(statement: &Sql) -> sqlx::AssertSqlSafe<Cow<'static, str>> {
        sql(statement.postgres)
    }
}

/// Statement texts built at run time that `numbered_once` keeps, at most:
/// they are built from a few optional filters (a handful of shapes each),
/// never from values, so the bound is not reached; past it, a text is
/// numbered on each use rather than kept.
const KEPT_BUILT: usize = 1024;

/// Numbered Postgres texts, by the text as written: each statement is
/// numbered once, at its first use, and kept for the life of the process.
static NUMBERED: LazyLock<RwLock<Numbered>> = LazyLock::new(Default::default);

#[derive(Default)]
struct Numbered {
    /// Statements written in the source.
    written: HashMap<&'static str, &'static str>,
    /// Statements built at run time (`format!`), of which `KEPT_BUILT`.
    built: HashMap<Box<str>, &'static str>,
}

/// `numbered(text)`, computed once per statement text.
pub(crate) fn numbered_once(text: Cow<'static, str>) -> Cow<'static, str> {
    let kept = {
        let n = NUMBERED.read().unwrap_or_else(|e| e.into_inner());
        match &text {
            Cow::Borrowed(t) => n.written.get(t).copied(),
            Cow::Owned(t) => n.built.get(t.as_str()).copied(),
        }
    };
    if let Some(kept) = kept {
        return Cow::Borrowed(kept);
    }
    let mut n = NUMBERED.write().unwrap_or_else(|e| e.into_inner());
    match text {
        Cow::Borrowed(t) => {
            let kept = *n
                .written
                .entry(t)
                .or_insert_with(|| Box::leak(numbered(t).into_boxed_str()));
            Cow::Borrowed(kept)
        }
        Cow::Owned(t) => {
            if let Some(kept) = n.built.get(t.as_str()) {
                return Cow::Borrowed(kept);
            }
            let pg = numbered(&t);
            if n.built.len() >= KEPT_BUILT {
                return Cow::Owned(pg);
            }
            let kept: &'static str = Box::leak(pg.into_boxed_str());
            n.built.insert(t.into_boxed_str(), kept);
            Cow::Borrowed(kept)
        }
    }
}

/// `?` → `$1, $2, …` in order, and `?N` → `$N`, outside quoted text.
pub(crate) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(ch) = chars.next() {
        match (quote, ch) {
            (Some(q), _) if ch == q => {
                quote = None;
                out.push(ch);
            }
            (Some(_), _) => out.push(ch),
            (None, '\'' | '"') => {
                quote = Some(ch);
                out.push(ch);
            }
            (None, '?') => {
                out.push('$');
                if chars.peek().is_some_and(char::is_ascii_digit) {
                    while let Some(d) = chars.next_if(char::is_ascii_digit) {
                        out.push(d);
                    }
                } else {
                    n += 1;
                    out.push_str(&n.to_string());
                }
            }
            (None, _) => out.push(ch),
        }
    }
    out
}

/// Reading a column the same way from either backend's row.
pub(crate) trait Get {
    fn int(&self, col: &str) -> Result<i64>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>>;
    fn text(&self, col: &str) -> Result<String>;
    fn opt_text(&self, col: &str) -> Result<Option<String>>;
    fn flag(&self, col: &str) -> Result<bool>;
    fn bytes(&self, col: &str) -> Result<Vec<u8>>;
}

macro_rules! impl_get {
    ($row:ty) => {
        impl Get for $row {
            fn int(&self, col: &str) -> Result<i64> {
                Ok(self.try_get(col)?)
            }
            fn opt_int(&self, col: &str) -> Result<Option<i64>> {
                Ok(self.try_get(col)?)
            }
            fn text(&self, col: &str) -> Result<String> {
                Ok(self.try_get(col)?)
            }
            fn opt_text(&self, col: &str) -> Result<Option<String>> {
                Ok(self.try_get(col)?)
            }
            fn flag(&self, col: &str) -> Result<bool> {
                Ok(self.try_get(col)?)
            }
            fn bytes(&self, col: &str) -> Result<Vec<u8>> {
                Ok(self.try_get(col)?)
            }
        }
    };
}
impl_get!(SqliteRow);
impl_get!(PgRow);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_numbered_outside_quotes() {
        assert_eq!(
            numbered("SELECT a FROM t WHERE b = ? AND c = '?' AND d IN (?, ?)"),
            "SELECT a FROM t WHERE b = $1 AND c = '?' AND d IN ($2, $3)"
        );
        assert_eq!(
            numbered("WHERE id > ?1 AND (?2 IS NULL OR c = ?2) LIMIT ?3"),
            "WHERE id > $1 AND ($2 IS NULL OR c = $2) LIMIT $3"
        );
    }

    #[test]
    fn a_statement_is_numbered_once_and_kept() {
        let written: &'static str = "SELECT a FROM once_t WHERE b = ? AND c = ?";
        let first = numbered_once(Cow::Borrowed(written));
        assert_eq!(first, "SELECT a FROM once_t WHERE b = $1 AND c = $2");
        let again = numbered_once(Cow::Borrowed(written));
        assert!(
            std::ptr::eq(first.as_ref(), again.as_ref()),
            "the kept text is reused"
        );

        let built = format!("SELECT a FROM {} WHERE b = ?", "once_u");
        let first = numbered_once(Cow::Owned(built.clone()));
        assert!(matches!(first, Cow::Borrowed(_)));
        let again = numbered_once(Cow::Owned(built));
        assert!(std::ptr::eq(first.as_ref(), again.as_ref()));
        assert_eq!(again, "SELECT a FROM once_u WHERE b = $1");
    }
}
