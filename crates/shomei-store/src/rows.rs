//! What the row modules share: reading timestamps and the row locks of
//! a read-modify-write.

use time::OffsetDateTime;

use crate::{Result, StoreError};

pub(crate) fn ts(t: i64, table: &'static str, column: &'static str) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(t).map_err(|_| StoreError::Corrupt {
        table,
        column,
        value: t.to_string(),
    })
}

pub(crate) fn opt_ts(
    t: Option<i64>,
    table: &'static str,
    column: &'static str,
) -> Result<Option<OffsetDateTime>> {
    t.map(|t| ts(t, table, column)).transpose()
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
