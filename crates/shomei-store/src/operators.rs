//! The bank's operators and their certificates (the operator console). An
//! operator's certificate is revoked like a customer's: the revocation goes
//! into `revocation_log` in the same transaction, so every running server
//! puts it in force (see `rows::revocations_after`, which reads both kinds).

use shomei_core::{CrlScope, OperatorName, OperatorRoles, Serial};
use time::OffsetDateTime;

use crate::crl::partition_column;
use crate::db::{Pool, Sql, on};
use crate::{OperatorCertRow, Result, Store, StoreError, Tx};

/// One operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorRow {
    /// The row's id; certificates, votes and requests refer to it.
    pub id: i64,
    /// The operator's name, unique; what the console and the 操作履歴 show.
    pub name: OperatorName,
    /// What the operator may do (ヘルプデスク, 業務管理者, 監査, 運用管理者).
    pub roles: OperatorRoles,
    /// `false` once revoked: no certificate of theirs opens the console.
    pub active: bool,
    /// The Argon2id hash of the operator's password, asked at the console's
    /// login and again before every change.
    pub confirm_hash: String,
    /// Wrong passwords in a row since the last right one; at the customers'
    /// `confirm_stop_after` the password is stopped until
    /// `shomei operator unlock`.
    pub password_failures: u32,
    /// When the operator was added.
    pub created_at: OffsetDateTime,
    /// Who added them (`銀行:<name>` of the CLI user or operator).
    pub created_by: String,
}

/// A new operator certificate, as the CA signed it.
#[derive(Debug, Clone)]
pub struct NewOperatorCert<'a> {
    /// Whom it was issued to.
    pub operator_id: i64,
    /// Its serial; one already recorded fails on the unique index.
    pub serial: &'a Serial,
    /// Start of validity, as in the certificate.
    pub not_before: OffsetDateTime,
    /// End of validity, as in the certificate.
    pub not_after: OffsetDateTime,
    /// The signed certificate, DER.
    pub der: &'a [u8],
    /// The CRL its distribution point names.
    pub crl_scope: CrlScope,
}

/// An operator certificate this transaction revoked.
#[derive(Debug, Clone)]
pub struct RevokedOperatorCert {
    /// Its serial, now in `revocation_log`.
    pub serial: Serial,
    /// Its end of validity: the CRL lists it until then.
    pub not_after: OffsetDateTime,
    /// The CRL that must list it.
    pub crl_scope: CrlScope,
}

type OperatorTuple = (i64, String, String, String, String, i64, i64, String);
macro_rules! operator_columns {
    () => {
        "id, name, roles, state, confirm_hash, password_failures, created_at, created_by"
    };
}
const OPERATOR_COLUMNS: &str = operator_columns!();

/// An operator by name, the row locked on Postgres until the transaction ends.
const OPERATOR_BY_NAME_FOR_UPDATE: Sql = Sql {
    sqlite: concat!(
        "SELECT ",
        operator_columns!(),
        " FROM operators WHERE name = ?"
    ),
    postgres: concat!(
        "SELECT ",
        operator_columns!(),
        " FROM operators WHERE name = ? FOR UPDATE"
    ),
};

/// An operator by id, the row locked on Postgres until the transaction ends.
const OPERATOR_BY_ID_FOR_UPDATE: Sql = Sql {
    sqlite: concat!(
        "SELECT ",
        operator_columns!(),
        " FROM operators WHERE id = ?"
    ),
    postgres: concat!(
        "SELECT ",
        operator_columns!(),
        " FROM operators WHERE id = ? FOR UPDATE"
    ),
};

type CertTuple = (i64, String, i64, i64, Option<i64>, i64);
/// A `CertTuple` and the revocation reason.
type RevokedTuple = (i64, String, i64, i64, Option<i64>, i64, Option<i64>);
const CERT_COLUMNS: &str =
    "operator_id, serial, not_before, not_after, revoked_at, coalesce(crl_partition, -1)";

fn corrupt(table: &'static str, column: &'static str, value: impl ToString) -> StoreError {
    StoreError::Corrupt {
        table,
        column,
        value: value.to_string(),
    }
}

fn at(t: i64, table: &'static str, column: &'static str) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(t).map_err(|_| corrupt(table, column, t))
}

fn operator_row(t: OperatorTuple) -> Result<OperatorRow> {
    let (id, name, roles, state, confirm_hash, failures, created_at, created_by) = t;
    Ok(OperatorRow {
        id,
        name: OperatorName::parse(&name).ok_or_else(|| corrupt("operators", "name", &name))?,
        roles: OperatorRoles::parse(&roles).ok_or_else(|| corrupt("operators", "roles", &roles))?,
        active: match state.as_str() {
            "active" => true,
            "revoked" => false,
            _ => return Err(corrupt("operators", "state", state)),
        },
        confirm_hash,
        password_failures: u32::try_from(failures)
            .map_err(|_| corrupt("operators", "password_failures", failures))?,
        created_at: at(created_at, "operators", "created_at")?,
        created_by,
    })
}

fn cert_row(t: CertTuple) -> Result<OperatorCertRow> {
    let (operator_id, serial, not_before, not_after, revoked_at, scope) = t;
    const T: &str = "operator_certificates";
    Ok(OperatorCertRow {
        operator_id,
        serial: Serial::from_hex(&serial).ok_or_else(|| corrupt(T, "serial", &serial))?,
        not_before: at(not_before, T, "not_before")?,
        not_after: at(not_after, T, "not_after")?,
        revoked_at: revoked_at.map(|t| at(t, T, "revoked_at")).transpose()?,
        crl_scope: CrlScope::from_key(scope).ok_or_else(|| corrupt(T, "crl_partition", scope))?,
    })
}

async fn operator_by_name(c: Pool<'_>, name: &OperatorName) -> Result<Option<OperatorRow>> {
    let row: Option<OperatorTuple> = on!(c, p, d => {
        sqlx::query_as(d::sql(format!("SELECT {OPERATOR_COLUMNS} FROM operators WHERE name = ?")))
            .bind(name.as_str())
            .fetch_optional(p)
            .await?
    });
    row.map(operator_row).transpose()
}

impl Store {
    /// Every operator, by name.
    pub async fn operators(&self) -> Result<Vec<OperatorRow>> {
        let rows: Vec<OperatorTuple> = on!(self.reader(), p, d => {
            sqlx::query_as(d::sql(format!("SELECT {OPERATOR_COLUMNS} FROM operators ORDER BY name")))
                .fetch_all(p)
                .await?
        });
        rows.into_iter().map(operator_row).collect()
    }

    /// The operator with this name (active or revoked), or `None`.
    pub async fn operator_by_name(&self, name: &OperatorName) -> Result<Option<OperatorRow>> {
        operator_by_name(self.reader(), name).await
    }

    /// The operator a certificate belongs to, with the certificate.
    pub async fn operator_by_certificate(
        &self,
        serial: &Serial,
    ) -> Result<Option<(OperatorRow, OperatorCertRow)>> {
        let cert: Option<CertTuple> = on!(self.reader(), p, d => {
            sqlx::query_as(d::sql(format!(
                "SELECT {CERT_COLUMNS} FROM operator_certificates WHERE serial = ?"
            )))
            .bind(serial.to_hex())
            .fetch_optional(p)
            .await?
        });
        let Some(cert) = cert.map(cert_row).transpose()? else {
            return Ok(None);
        };
        let op: Option<OperatorTuple> = on!(self.reader(), p, d => {
            sqlx::query_as(d::sql(format!("SELECT {OPERATOR_COLUMNS} FROM operators WHERE id = ?")))
                .bind(cert.operator_id)
                .fetch_optional(p)
                .await?
        });
        let op =
            op.ok_or_else(|| corrupt("operator_certificates", "operator_id", cert.operator_id))?;
        Ok(Some((operator_row(op)?, cert)))
    }

    /// An operator's certificates, newest first.
    pub async fn operator_certificates(&self, operator: i64) -> Result<Vec<OperatorCertRow>> {
        let rows: Vec<CertTuple> = on!(self.reader(), p, d => {
            sqlx::query_as(d::sql(format!(
                "SELECT {CERT_COLUMNS} FROM operator_certificates WHERE operator_id = ? ORDER BY id DESC"
            )))
            .bind(operator)
            .fetch_all(p)
            .await?
        });
        rows.into_iter().map(cert_row).collect()
    }

    /// Every revoked operator certificate (few): loaded into the revocation
    /// set at start beside the customers'.
    pub async fn revoked_operator_certificates(&self) -> Result<Vec<(OperatorCertRow, u8)>> {
        let rows: Vec<RevokedTuple> = on!(self.reader(), p, d => {
            sqlx::query_as(d::sql(format!(
                "SELECT {CERT_COLUMNS}, revocation_reason FROM operator_certificates \
                 WHERE revoked_at IS NOT NULL"
            )))
            .fetch_all(p)
            .await?
        });
        rows.into_iter()
            .map(|(a, b, c, d, e, f, reason)| {
                Ok((
                    cert_row((a, b, c, d, e, f))?,
                    reason.and_then(|r| u8::try_from(r).ok()).unwrap_or(0),
                ))
            })
            .collect()
    }
}

impl Tx {
    /// The operator with this name, locked until the transaction ends
    /// (Postgres; see `Lock`), or `None`.
    pub async fn operator_by_name(&mut self, name: &OperatorName) -> Result<Option<OperatorRow>> {
        let row: Option<OperatorTuple> = on!(self.conn(), c, d => {
            sqlx::query_as(d::of(&OPERATOR_BY_NAME_FOR_UPDATE))
            .bind(name.as_str())
            .fetch_optional(c)
            .await?
        });
        row.map(operator_row).transpose()
    }

    /// The operator `id`, its row locked (Postgres) until the transaction
    /// ends: two checks of one operator's password settle in turn.
    pub async fn operator_for_update(&mut self, id: i64) -> Result<Option<OperatorRow>> {
        let row: Option<OperatorTuple> = on!(self.conn(), c, d => {
            sqlx::query_as(d::of(&OPERATOR_BY_ID_FOR_UPDATE))
            .bind(id)
            .fetch_optional(c)
            .await?
        });
        row.map(operator_row).transpose()
    }

    /// Sets the operator's count of wrong passwords in a row.
    pub async fn set_operator_failures(&mut self, id: i64, failures: u32) -> Result<()> {
        on!(self.conn(), c, d => {
            sqlx::query(d::sql("UPDATE operators SET password_failures = ? WHERE id = ?"))
                .bind(i64::from(failures))
                .bind(id)
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// Adds an operator (the caller has checked that the name is free; the
    /// UNIQUE constraint refuses a race).
    pub async fn insert_operator(
        &mut self,
        name: &OperatorName,
        roles: &OperatorRoles,
        confirm_hash: &str,
        created_by: &str,
        now: OffsetDateTime,
    ) -> Result<i64> {
        Ok(on!(self.conn(), c, d => {
            sqlx::query_scalar(d::sql(
                "INSERT INTO operators (name, roles, state, confirm_hash, created_at, created_by) \
                 VALUES (?, ?, 'active', ?, ?, ?) RETURNING id",
            ))
            .bind(name.as_str())
            .bind(roles.codes())
            .bind(confirm_hash)
            .bind(now.unix_timestamp())
            .bind(created_by)
            .fetch_one(c)
            .await?
        }))
    }

    /// Records an operator certificate just signed (issued at `now`).
    pub async fn insert_operator_cert(
        &mut self,
        n: &NewOperatorCert<'_>,
        now: OffsetDateTime,
    ) -> Result<()> {
        on!(self.conn(), c, d => {
            sqlx::query(d::sql(
                "INSERT INTO operator_certificates \
                 (operator_id, serial, not_before, not_after, der, crl_partition, issued_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            ))
            .bind(n.operator_id)
            .bind(n.serial.to_hex())
            .bind(n.not_before.unix_timestamp())
            .bind(n.not_after.unix_timestamp())
            .bind(n.der)
            .bind(partition_column(n.crl_scope))
            .bind(now.unix_timestamp())
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Revokes every certificate of the operator still in force and marks
    /// the operator revoked; each revocation is logged for the running
    /// servers (commit-ordered, as `revoke_cert_with`).
    pub async fn revoke_operator(
        &mut self,
        operator: i64,
        at: OffsetDateTime,
        reason: u8,
    ) -> Result<Vec<RevokedOperatorCert>> {
        let rows: Vec<(String, i64, i64)> = on!(self.conn(), c, d => {
            sqlx::query_as(d::sql(
                "UPDATE operator_certificates SET revoked_at = ?, revocation_reason = ? \
                 WHERE operator_id = ? AND revoked_at IS NULL \
                 RETURNING serial, not_after, coalesce(crl_partition, -1)",
            ))
            .bind(at.unix_timestamp())
            .bind(i64::from(reason))
            .bind(operator)
            .fetch_all(c)
            .await?
        });
        on!(self.conn(), c, d => {
            sqlx::query(d::sql("UPDATE operators SET state = 'revoked' WHERE id = ?"))
                .bind(operator)
                .execute(c)
                .await?
                .rows_affected()
        });
        let mut out = Vec::with_capacity(rows.len());
        for (serial, not_after, scope) in rows {
            const T: &str = "operator_certificates";
            let serial = Serial::from_hex(&serial).ok_or_else(|| corrupt(T, "serial", &serial))?;
            let node = self.node.clone();
            crate::crl::log_revocation(self.conn(), &serial, &node).await?;
            out.push(RevokedOperatorCert {
                serial,
                not_after: at_or(not_after)?,
                crl_scope: CrlScope::from_key(scope)
                    .ok_or_else(|| corrupt(T, "crl_partition", scope))?,
            });
        }
        Ok(out)
    }
}

fn at_or(t: i64) -> Result<OffsetDateTime> {
    at(t, "operator_certificates", "not_after")
}
