//! Certificates: the rows, issuing, renewal's read and writes, revoking one
//! certificate, and the certificates about to expire.

use std::sync::LazyLock;

use shomei_core::{CertRecord, CrlScope, Serial, UserId};
use sqlx::Row;
use time::OffsetDateTime;

use crate::crl::partition_column;
use crate::db::{Conn, Db, Get, on};
use crate::rows::{Lock, opt_ts, ts};
use crate::users::{USER_COLUMNS, lock_user, user};
use crate::{AuditEntry, Backend, Result, Store, StoreError, Tx, UserRow, audit};

/// One row of `certificates`: a client certificate the bank's CA issued to
/// a user, kept whole (DER) with its validity and revocation.
#[derive(Debug, Clone)]
pub struct CertRow {
    /// The row's id; a user's newest certificate has the highest.
    pub id: i64,
    /// Whom it was issued to.
    pub user_id: UserId,
    /// The serial number, unique across every certificate the CA issued.
    pub serial: Serial,
    /// Start of validity, as written in the certificate (whole seconds).
    pub not_before: OffsetDateTime,
    /// End of validity, as written in the certificate (whole seconds).
    pub not_after: OffsetDateTime,
    /// When it was revoked; `None` while it has not been. A revoked
    /// certificate is listed in the CRL until it expires.
    pub revoked_at: Option<OffsetDateTime>,
    /// The CRL reason code (RFC 5280 `CRLReason`, e.g. 1 keyCompromise,
    /// 4 superseded, 0 unspecified); `None` while not revoked.
    pub reason: Option<u8>,
    /// The certificate as issued, DER.
    pub der: Vec<u8>,
    /// The CRL its distribution point names.
    pub crl_scope: CrlScope,
}

impl CertRow {
    /// What state derivation needs.
    pub fn record(&self) -> CertRecord {
        CertRecord {
            serial: self.serial.clone(),
            not_before: self.not_before,
            not_after: self.not_after,
            revoked_at: self.revoked_at,
        }
    }
}

/// A certificate just signed, to be recorded; its fields must be those
/// written in `der`.
pub struct NewCert<'a> {
    /// Whom it was issued to.
    pub user_id: UserId,
    /// Its serial; one already recorded fails on the unique index.
    pub serial: &'a Serial,
    /// Start of validity, as in the certificate.
    pub not_before: OffsetDateTime,
    /// End of validity, as in the certificate.
    pub not_after: OffsetDateTime,
    /// The signed certificate, DER.
    pub der: &'a [u8],
    /// When the portal recorded the issuance.
    pub issued_at: OffsetDateTime,
    /// The CRL its distribution point names.
    pub crl_scope: CrlScope,
}

pub(crate) const CERT_COLUMNS: &str = "c.id AS c_id, c.user_id AS c_user_id, c.serial AS c_serial, c.not_before AS c_not_before, \
     c.not_after AS c_not_after, c.revoked_at AS c_revoked_at, c.revocation_reason AS c_reason, c.der AS c_der, \
     c.crl_partition AS c_crl_partition";

pub(crate) fn cert(r: &impl Get) -> Result<Option<CertRow>> {
    let Some(id) = r.opt_int("c_id")? else {
        return Ok(None);
    };
    let serial = r.text("c_serial")?;
    Ok(Some(CertRow {
        id,
        user_id: UserId(r.int("c_user_id")?),
        serial: Serial::from_hex(&serial).ok_or(StoreError::Corrupt {
            table: "certificates",
            column: "serial",
            value: serial.clone(),
        })?,
        not_before: ts(r.int("c_not_before")?, "certificates", "not_before")?,
        not_after: ts(r.int("c_not_after")?, "certificates", "not_after")?,
        revoked_at: opt_ts(r.opt_int("c_revoked_at")?, "certificates", "revoked_at")?,
        reason: r.opt_int("c_reason")?.map(|x| x as u8),
        der: r.bytes("c_der")?,
        crl_scope: match r.opt_int("c_crl_partition")? {
            None => CrlScope::Undivided,
            Some(p) => CrlScope::from_key(p)
                .filter(|s| *s != CrlScope::Undivided)
                .ok_or(StoreError::Corrupt {
                    table: "certificates",
                    column: "crl_partition",
                    value: p.to_string(),
                })?,
        },
    }))
}

/// The user's newest certificate. Locked (`Lock::ForUpdate`, on Postgres):
/// the user's row first, so that issuing, renewing and revoking for one
/// user happen one transaction after the other.
pub(crate) async fn latest_cert(
    mut c: Conn<'_>,
    user: UserId,
    lock: Lock,
) -> Result<Option<CertRow>> {
    if lock == Lock::ForUpdate {
        lock_user(c.reborrow(), user).await?;
    }
    let sql = format!(
        "SELECT {CERT_COLUMNS} FROM certificates c WHERE c.user_id = ? ORDER BY c.id DESC LIMIT 1"
    );
    on!(c, c, d => {
        let row = sqlx::query(d::sql(sql)).bind(user.0).fetch_optional(c).await?;
        row.as_ref().map(cert).transpose().map(Option::flatten)
    })
}

/// The certificate with this serial. Locked (on Postgres): its user's row
/// first, then the certificate is read (so it is read as the transaction
/// that held the lock left it).
pub(crate) async fn cert_by_serial(
    mut c: Conn<'_>,
    serial: &Serial,
    lock: Lock,
) -> Result<Option<CertRow>> {
    if lock == Lock::ForUpdate {
        lock_user_of_cert(c.reborrow(), serial).await?;
    }
    let sql = format!("SELECT {CERT_COLUMNS} FROM certificates c WHERE c.serial = ?");
    on!(c, c, d => {
        let row = sqlx::query(d::sql(sql))
            .bind(serial.to_string())
            .fetch_optional(c)
            .await?;
        row.as_ref().map(cert).transpose().map(Option::flatten)
    })
}

/// What renewing a certificate reads: the certificate, its user (not
/// deleted), whether it is the user's newest certificate, and the
/// company's name.
#[derive(Debug, Clone)]
pub struct Renewal {
    /// The certificate being renewed.
    pub cert: CertRow,
    /// Its user (a deleted user gives no `Renewal`).
    pub user: UserRow,
    /// Whether it is the user's newest certificate; only the newest may be
    /// renewed, an older one has already been superseded.
    pub is_latest: bool,
    /// The user's company's name, for the new certificate's subject.
    pub company_name: String,
}

/// The renewal of the certificate with this serial, read in one statement
/// (the certificate, its user, whether it is the user's newest, the
/// company's name), nothing locked: `Store::supersede` revokes only an
/// unrevoked certificate, which decides.
pub(crate) async fn renewal(c: Conn<'_>, serial: &Serial) -> Result<Option<Renewal>> {
    on!(c, c, d => {
        let sql = format!(
            "SELECT {USER_COLUMNS}, {CERT_COLUMNS}, co.name AS company_name, \
                    (SELECT max(l.id) FROM certificates l WHERE l.user_id = u.id) AS latest_id \
             FROM certificates c JOIN users u ON u.id = c.user_id \
             JOIN companies co ON co.id = u.company_id \
             WHERE c.serial = ? AND u.deleted_at IS NULL"
        );
        let Some(r) = sqlx::query(d::sql(sql))
            .bind(serial.to_hex())
            .fetch_optional(c)
            .await?
        else {
            return Ok(None);
        };
        let Some(cert) = cert(&r)? else {
            return Ok(None);
        };
        Ok(Some(Renewal {
            is_latest: r.opt_int("latest_id")? == Some(cert.id),
            user: user(&r)?,
            company_name: r.text("company_name")?,
            cert,
        }))
    })
}

/// On Postgres, locks the row of the user the certificate belongs to.
pub(crate) async fn lock_user_of_cert(c: Conn<'_>, serial: &Serial) -> Result<()> {
    if let Conn::Pg(c) = c {
        sqlx::query(
            "SELECT id FROM users WHERE id = (SELECT user_id FROM certificates WHERE serial = $1) \
             FOR UPDATE",
        )
        .bind(serial.to_hex())
        .fetch_optional(c)
        .await?;
    }
    Ok(())
}

pub(crate) async fn insert_cert(c: Conn<'_>, n: &NewCert<'_>) -> Result<i64> {
    Ok(on!(c, c, d => {
        sqlx::query_scalar(d::sql(
            "INSERT INTO certificates (user_id, serial, not_before, not_after, der, issued_at, crl_partition) \
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        ))
        .bind(n.user_id.0)
        .bind(n.serial.to_hex())
        .bind(n.not_before.unix_timestamp())
        .bind(n.not_after.unix_timestamp())
        .bind(n.der)
        .bind(n.issued_at.unix_timestamp())
        .bind(partition_column(n.crl_scope))
        .fetch_one(c)
        .await?
    }))
}

/// A revocation on Postgres, as common table expressions of one statement
/// (`$1` revoked_at, `$2` reason, `$3` invalidity date, `$4` serial): the
/// UPDATE (its WHERE clause extended by `$cond`), and only if it changed
/// the row, the log entry `l` under the head's lock (see
/// `crate::crl::log_revocation`). With `$between`, more expressions
/// between the two, and the head's lock waits for the expression `$gate`
/// to give a row (by default `u`, the UPDATE): what runs before the lock
/// is not done while every other revocation waits for it.
macro_rules! pg_revoke {
    ($cond:literal) => {
        pg_revoke!($cond, "", "u")
    };
    ($cond:literal, $between:literal, $gate:literal) => {
        concat!(
            "u AS (UPDATE certificates SET revoked_at = $1, revocation_reason = $2, \
           invalidity_date = $3 WHERE serial = $4 AND revoked_at IS NULL",
            $cond,
            " RETURNING serial), ",
            $between,
            "h AS (UPDATE revocation_head SET seq = seq + 1 WHERE EXISTS (SELECT 1 FROM ",
            $gate,
            ") RETURNING seq), \
         l AS (INSERT INTO revocation_log (id, serial) SELECT h.seq, u.serial FROM h, u \
           RETURNING id)"
        )
    };
}

/// A user whose certificate in force expires soon (for notices).
#[derive(Debug, Clone)]
pub struct ExpiringCert {
    /// The user to notify.
    pub user_id: UserId,
    /// The certificate's serial in hex, as the database keeps it.
    pub serial: String,
    /// When it expires.
    pub not_after: OffsetDateTime,
}

impl Store {
    /// What renewing the certificate reads (see `renewal`), nothing
    /// locked: `supersede` decides. `None` if the certificate is unknown or
    /// its user deleted.
    pub async fn renewal(&self, serial: &Serial) -> Result<Option<Renewal>> {
        renewal(self.reader().acquire().await?.conn(), serial).await
    }

    /// Renewal's writes, all or nothing: revokes the old certificate,
    /// inserts the new one and appends the 操作履歴 row `audit` (as
    /// `revoke_cert`, `insert_cert` and `audit` in one transaction).
    /// `false`, and nothing written, if the old certificate was already
    /// revoked, even by a transaction that committed after `renewal` read
    /// it: the revocation decides, and nothing else read there can have
    /// changed unseen, since no newer certificate is issued for a user
    /// while the current one is valid without revoking it.
    ///
    /// On Postgres one statement, committed alone: it locks the user, then
    /// the certificate, the revocation log's head and the 操作履歴 chain
    /// (the order every revoking transaction takes them in), and no lock is
    /// held across a round trip. The new certificate is inserted before the
    /// head is locked: every renewal and revocation of every node waits for
    /// that lock, so the less done under it, the less they wait (and wake).
    /// Its notice to the other nodes goes after the commit, shared with the
    /// renewals of the next few milliseconds (see `send_notices`).
    pub async fn supersede(
        &self,
        new: &NewCert<'_>,
        old: &Serial,
        at: OffsetDateTime,
        reason: u8,
        audit: &AuditEntry<'_>,
    ) -> Result<bool> {
        let Backend::Pg(p) = &self.backend else {
            let mut tx = self.begin().await?;
            if !tx.revoke_cert(old, at, reason).await? {
                return Ok(false);
            }
            tx.insert_cert(new).await?;
            tx.audit(audit).await?;
            tx.commit().await?;
            return Ok(true);
        };
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                concat!(
                    "WITH lk AS (SELECT id FROM users WHERE id = $5 FOR UPDATE), ",
                    pg_revoke!(
                        " AND user_id = $5 AND EXISTS (SELECT 1 FROM lk)",
                        "nc AS (INSERT INTO certificates (user_id, serial, not_before, not_after, \
                           der, issued_at, crl_partition) \
                         SELECT $5, $6, $7, $8, $9, $10, $11 WHERE EXISTS (SELECT 1 FROM u) \
                         RETURNING 1), ",
                        "nc"
                    ),
                    ", {} SELECT count(*) FROM l"
                ),
                audit::pg_append(12, " FROM l")
            )
        });
        let q = sqlx::query(SQL.as_str())
            .bind(at.unix_timestamp())
            .bind(i64::from(reason))
            .bind(None::<i64>)
            .bind(old.to_hex())
            .bind(new.user_id.0)
            .bind(new.serial.to_hex())
            .bind(new.not_before.unix_timestamp())
            .bind(new.not_after.unix_timestamp())
            .bind(new.der)
            .bind(new.issued_at.unix_timestamp())
            .bind(crate::crl::partition_column(new.crl_scope));
        let revoked: i64 = audit::pg_bind(q, audit).fetch_one(p).await?.try_get(0)?;
        if revoked != 1 {
            return Ok(false);
        }
        // Committed: the other nodes are told, with the renewals committed
        // in the next few milliseconds (a full channel: already pending).
        if let Some(n) = &self.notices {
            let _ = n.try_send(());
        }
        Ok(true)
    }

    /// The user's newest certificate (highest id, whatever its state), or
    /// `None` if none was issued.
    pub async fn latest_cert(&self, user: UserId) -> Result<Option<CertRow>> {
        latest_cert(self.reader().acquire().await?.conn(), user, Lock::None).await
    }

    /// The certificate with this serial (serials are UNIQUE).
    pub async fn cert_by_serial(&self, serial: &Serial) -> Result<Option<CertRow>> {
        cert_by_serial(self.reader().acquire().await?.conn(), serial, Lock::None).await
    }

    /// Users (not deleted, with an e-mail address) whose latest certificate
    /// is in force and expires before `until`.
    pub async fn expiring_certs(
        &self,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Vec<ExpiringCert>> {
        let rows: Vec<(i64, String, i64)> = on!(self.reader(), p, d => {
            sqlx::query_as(d::sql(
                "SELECT u.id, c.serial, c.not_after FROM users u \
                 JOIN certificates c ON c.id = (SELECT MAX(id) FROM certificates WHERE user_id = u.id) \
                 WHERE u.deleted_at IS NULL AND u.email != '' AND c.revoked_at IS NULL \
                   AND c.not_after > ? AND c.not_after <= ?",
            ))
            .bind(now.unix_timestamp())
            .bind(until.unix_timestamp())
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .filter_map(|(id, serial, na)| {
                Some(ExpiringCert {
                    user_id: UserId(id),
                    serial,
                    not_after: OffsetDateTime::from_unix_timestamp(na).ok()?,
                })
            })
            .collect())
    }
}

impl Tx {
    /// The user's newest certificate, the user locked first.
    pub async fn latest_cert(&mut self, user: UserId) -> Result<Option<CertRow>> {
        latest_cert(self.conn(), user, Lock::ForUpdate).await
    }

    /// The certificate, its user locked first.
    pub async fn cert_by_serial(&mut self, serial: &Serial) -> Result<Option<CertRow>> {
        cert_by_serial(self.conn(), serial, Lock::ForUpdate).await
    }

    /// Records a newly issued certificate; returns its row id.
    pub async fn insert_cert(&mut self, c: &NewCert<'_>) -> Result<i64> {
        insert_cert(self.conn(), c).await
    }

    /// Marks the certificate revoked unless it already is. Returns whether this
    /// call revoked it, so that a repeated submit revokes once.
    pub async fn revoke_cert(
        &mut self,
        serial: &Serial,
        at: OffsetDateTime,
        reason: u8,
    ) -> Result<bool> {
        self.revoke_cert_with(serial, at, reason, None).await
    }

    /// As `revoke_cert`, with the invalidity date (RFC 5280 §5.3.2) when
    /// the key is known to have been compromised earlier. Logs the
    /// revocation for servers running in other processes.
    ///
    /// One UPDATE decides: on Postgres a second node revoking the same
    /// certificate waits for the first's commit, then finds it revoked and
    /// changes nothing (false). The log's id is commit-ordered: see
    /// `crate::crl::log_revocation`.
    pub async fn revoke_cert_with(
        &mut self,
        serial: &Serial,
        at: OffsetDateTime,
        reason: u8,
        invalidity: Option<OffsetDateTime>,
    ) -> Result<bool> {
        self.last_ok = false;
        if let Db::Pg(t) = &mut self.tx {
            // One round trip: the UPDATE, then (only if it changed the
            // row) the log entry and the notice, as `crate::crl::log_revocation`.
            let logged = sqlx::query(concat!(
                "WITH ",
                pg_revoke!(""),
                " SELECT l.id, pg_notify('shomei_revocations', $5) FROM l"
            ))
            .bind(at.unix_timestamp())
            .bind(i64::from(reason))
            .bind(invalidity.map(|t| t.unix_timestamp()))
            .bind(serial.to_hex())
            .bind(&*self.node)
            .fetch_optional(&mut **t)
            .await?;
            return Ok(logged.is_some());
        }
        let n = on!(self.conn(), c, d => {
            sqlx::query(d::sql(
                "UPDATE certificates SET revoked_at = ?, revocation_reason = ?, invalidity_date = ? \
                 WHERE serial = ? AND revoked_at IS NULL",
            ))
            .bind(at.unix_timestamp())
            .bind(i64::from(reason))
            .bind(invalidity.map(|t| t.unix_timestamp()))
            .bind(serial.to_hex())
            .execute(c)
            .await?
            .rows_affected()
        });
        if n != 1 {
            return Ok(false);
        }
        let node = self.node.clone();
        crate::crl::log_revocation(self.conn(), serial, &node).await?;
        Ok(true)
    }
}
