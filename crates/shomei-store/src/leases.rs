//! Leases (one node does a periodic task at a time) and the secrets the
//! nodes share.

use time::OffsetDateTime;

use crate::db::{Sql, on};
use crate::{Result, Store, attempts};

/// The lease's row, locked on Postgres until the transaction ends (SQLite's
/// write transaction holds the database already).
const LEASE_FOR_UPDATE: Sql = Sql {
    sqlite: "SELECT holder, epoch, expires_at FROM leases WHERE name = ?",
    postgres: "SELECT holder, epoch, expires_at FROM leases WHERE name = ? FOR UPDATE",
};

impl Store {
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
            sqlx::query_as(d::of(&LEASE_FOR_UPDATE))
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

    /// The secret `name` shared by every server on this database, created
    /// from `fresh` if none has it yet.
    pub async fn shared_secret(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>> {
        let mut tx = self.begin().await?;
        let v = attempts::secret(tx.conn(), name, fresh).await?;
        tx.commit().await?;
        Ok(v)
    }
}
