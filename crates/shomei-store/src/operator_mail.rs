//! Operators' e-mail addresses and the notices addressed to operators (a
//! break-glass change is told to every 運用管理者), beside the users'
//! notices in the same table, sent by the same round.

use shomei_core::{OperatorName, OperatorRole, OperatorRoles};
use time::OffsetDateTime;

use crate::db::{Conn, on};
use crate::{Result, Store, StoreError, Tx};

/// An active operator holding a role, with their address ('' when none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorAddress {
    /// The operator's id (a notice to them names it).
    pub id: i64,
    /// The operator's name.
    pub name: OperatorName,
    /// Their e-mail address; '' when none is set (no notice can be sent).
    pub email: String,
}

fn addresses(
    rows: Vec<(i64, String, String, String)>,
    role: OperatorRole,
) -> Result<Vec<OperatorAddress>> {
    let corrupt = |column: &'static str, value: &str| StoreError::Corrupt {
        table: "operators",
        column,
        value: value.to_owned(),
    };
    let mut out = Vec::new();
    for (id, name, roles, email) in rows {
        let roles = OperatorRoles::parse(&roles).ok_or_else(|| corrupt("roles", &roles))?;
        if roles.has(role) {
            out.push(OperatorAddress {
                id,
                name: OperatorName::parse(&name).ok_or_else(|| corrupt("name", &name))?,
                email,
            });
        }
    }
    Ok(out)
}

const ACTIVE: &str =
    "SELECT id, name, roles, email FROM operators WHERE state = 'active' ORDER BY name";

impl Store {
    /// How many operators there are (revoked ones too): none means the
    /// first one is still to be made on the server's shell.
    pub async fn operator_count(&self) -> Result<i64> {
        Ok(on!(self.reader(), p, d => {
            sqlx::query_scalar(d::sql("SELECT count(*) FROM operators"))
                .fetch_one(p)
                .await?
        }))
    }

    /// The active operators holding `role`, by name, with their addresses.
    pub async fn operators_with_role(&self, role: OperatorRole) -> Result<Vec<OperatorAddress>> {
        let rows = on!(self.reader(), p, d => {
            sqlx::query_as(d::sql(ACTIVE)).fetch_all(p).await?
        });
        addresses(rows, role)
    }

    /// Every operator's address by name ('' when none).
    pub async fn operator_emails(&self) -> Result<Vec<(String, String)>> {
        Ok(on!(self.reader(), p, d => {
            sqlx::query_as(d::sql("SELECT name, email FROM operators ORDER BY name"))
                .fetch_all(p)
                .await?
        }))
    }
}

impl Tx {
    /// How many operators there are, as this transaction sees it.
    pub async fn operator_count(&mut self) -> Result<i64> {
        Ok(on!(self.conn(), c, d => {
            sqlx::query_scalar(d::sql("SELECT count(*) FROM operators"))
                .fetch_one(c)
                .await?
        }))
    }

    /// How many operators there are, every other writer of operators kept
    /// out until this transaction ends: two first-operator bootstraps at
    /// once add one. PostgreSQL: the table locked SHARE ROW EXCLUSIVE (it
    /// conflicts with itself and with every INSERT, not with reads);
    /// SQLite: the write transaction holds the database's one write lock
    /// from its BEGIN.
    pub async fn operator_count_locked(&mut self) -> Result<i64> {
        if let Conn::Pg(c) = self.conn() {
            sqlx::query("LOCK TABLE operators IN SHARE ROW EXCLUSIVE MODE")
                .execute(c)
                .await?;
        }
        self.operator_count().await
    }

    /// Sets an operator's e-mail address.
    pub async fn set_operator_email(&mut self, operator: i64, email: &str) -> Result<()> {
        on!(self.conn(), c, d => {
            sqlx::query(d::sql("UPDATE operators SET email = ? WHERE id = ?"))
                .bind(email)
                .bind(operator)
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// The active operators holding `role`, as this transaction sees them.
    pub async fn operators_with_role(
        &mut self,
        role: OperatorRole,
    ) -> Result<Vec<OperatorAddress>> {
        let rows = on!(self.conn(), c, d => {
            sqlx::query_as(d::sql(ACTIVE)).fetch_all(c).await?
        });
        addresses(rows, role)
    }

    /// Records a notice to an operator unless the same (operator, kind,
    /// key) exists; true if new.
    pub async fn add_operator_notice(
        &mut self,
        operator: i64,
        kind: &str,
        key: &str,
        subject: &str,
        body: &str,
        at: OffsetDateTime,
    ) -> Result<bool> {
        let n = on!(self.conn(), c, d => {
            sqlx::query(d::sql(
                "INSERT INTO notices (operator_id, kind, key, subject, body, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (operator_id, kind, key) WHERE operator_id IS NOT NULL DO NOTHING",
            ))
            .bind(operator)
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
