//! Notices by e-mail waiting to be sent, claimed once.

use shomei_core::UserId;
use time::OffsetDateTime;

use crate::db::on;
use crate::{Result, Store, Tx};

/// A notice waiting to be sent, with its addressee.
#[derive(Debug, Clone)]
pub struct PendingNotice {
    /// The notice's id, to mark it sent.
    pub id: i64,
    /// The addressee's current address (the user's or operator's), read
    /// when the notice is taken, not when it was queued.
    pub email: String,
    /// The user's login ID, or the operator's name.
    pub login_id: String,
    /// The user's or operator's name, for the greeting.
    pub name: String,
    /// The mail's subject (Japanese).
    pub subject: String,
    /// The mail's text.
    pub body: String,
    /// When it was queued.
    pub created_at: OffsetDateTime,
}

impl Store {
    /// Notices not yet sent, oldest first.
    pub async fn pending_notices(&self, limit: i64) -> Result<Vec<PendingNotice>> {
        type Raw = (i64, String, String, String, String, String, i64);
        let rows: Vec<Raw> = on!(self.reader(), p, d => {
            sqlx::query_as(d::sql(
                "SELECT n.id, coalesce(u.email, o.email), coalesce(u.login_id, o.name), \
                 coalesce(u.name, o.name), n.subject, n.body, n.created_at \
                 FROM notices n LEFT JOIN users u ON u.id = n.user_id \
                 LEFT JOIN operators o ON o.id = n.operator_id \
                 WHERE n.sent_at IS NULL ORDER BY n.id LIMIT ?",
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
}

impl Tx {
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
}
