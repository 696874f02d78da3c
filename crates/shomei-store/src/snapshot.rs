//! Where the revocation log stands, for the revocation set's snapshot in
//! the data directory: a server writes the set beside the log position it
//! holds, and at start takes the snapshot only when the log shows that
//! nothing was committed that it cannot read after that position.

use crate::db::on;
use crate::{Result, Store, StoreError};

/// The revocation log and the revoked certificates, read in one statement
/// (one consistent view of the database on either backend).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPosition {
    /// The newest log entry (0 when the log is empty).
    pub head: i64,
    /// The oldest log entry still kept (0 when the log is empty).
    pub tail: i64,
    /// The entry the question named (or the head), and its serial in
    /// lower-case hex; `None` when there is no such entry.
    pub entry: Option<(i64, String)>,
    /// Revoked certificates (customers'), counted.
    pub revoked: i64,
    /// Of them, those whose log entry comes after the entry asked about.
    pub revoked_after: i64,
}

impl Store {
    /// Where the log stands: at `at` (its serial, and how many revoked
    /// certificates were logged after it), or at the head when `at` is
    /// `None`. Everything comes from one statement, so the counts and the
    /// log agree even while other servers revoke.
    pub async fn revocation_log_position(&self, at: Option<i64>) -> Result<LogPosition> {
        let row: (i64, i64, Option<i64>, Option<String>, i64, i64) = on!(self.reader(), p, d => {
            sqlx::query_as(d::sql(
                "WITH h AS (SELECT coalesce(max(id), 0) AS head, coalesce(min(id), 0) AS tail \
                            FROM revocation_log), \
                      a AS (SELECT coalesce(?1, (SELECT head FROM h)) AS at) \
                 SELECT h.head, h.tail, e.id, e.serial, \
                   (SELECT count(*) FROM certificates WHERE revoked_at IS NOT NULL), \
                   (SELECT count(*) FROM revocation_log l JOIN certificates c ON c.serial = l.serial \
                    WHERE l.id > (SELECT at FROM a) AND c.revoked_at IS NOT NULL) \
                 FROM h LEFT JOIN revocation_log e ON e.id = (SELECT at FROM a)",
            ))
            .bind(at)
            .fetch_one(p)
            .await?
        });
        let (head, tail, id, serial, revoked, revoked_after) = row;
        let entry = match (id, serial) {
            (Some(id), Some(s)) => Some((id, s)),
            (None, None) => None,
            (id, s) => {
                return Err(StoreError::Corrupt {
                    table: "revocation_log",
                    column: "serial",
                    value: format!("{id:?} {s:?}"),
                });
            }
        };
        Ok(LogPosition {
            head,
            tail,
            entry,
            revoked,
            revoked_after,
        })
    }
}
