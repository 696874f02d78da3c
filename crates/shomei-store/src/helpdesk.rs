//! What the bank's help desk reads across companies: users found by a
//! prefix of their login ID, name, company name or a certificate serial
//! (paged), a user's certificates, and the 操作履歴 rows about a user.

use shomei_core::{CompanyId, LoginId, UserId};

use crate::audit::row as audit_row;
use crate::certificates::{CERT_COLUMNS, cert};
use crate::db::{Get, on};
use crate::users::{USER_COLUMNS, user};
use crate::{AuditRow, CertRow, Result, Store, UserRow};

const AUDIT_COLUMNS: &str =
    "id, at, company_id, actor_login_id, operation, target_login_id, result, detail, client_addr";

/// One user found, with their company's name and newest certificate.
#[derive(Debug, Clone)]
pub struct UserHit {
    /// The user found (not deleted).
    pub user: UserRow,
    /// Their company's name, for the help desk to confirm with the caller.
    pub company: String,
    /// Their newest certificate, whatever its state; `None`: none issued.
    pub cert: Option<CertRow>,
}

/// The least string greater than every string that starts with `p`, in
/// code-point order (SQLite's BINARY and PostgreSQL's "C" collation): `p`
/// with its last character stepped up; `None` when nothing is greater.
fn prefix_end(p: &str) -> Option<String> {
    let mut chars: Vec<char> = p.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last as u32 + 1 {
            0xd800 => 0xe000,
            n => n,
        };
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The search as SQL: which users match, as a set of ids (`WITH m(id)`),
/// each branch a range over one index (migration 0016), and its values.
/// `None`: everyone (an empty text).
fn matching(pg: bool, prefix: &str, serial_prefix: Option<&str>) -> Option<(String, Vec<String>)> {
    if prefix.is_empty() && serial_prefix.is_none() {
        return None;
    }
    // As the index has it: lower() on SQLite folds ASCII letters only, on
    // PostgreSQL every letter; and the byte order of "C" on PostgreSQL.
    let (key, collate) = if pg {
        (prefix.to_lowercase(), " COLLATE \"C\"")
    } else {
        (prefix.to_ascii_lowercase(), "")
    };
    let mut branches = Vec::new();
    let mut values = Vec::new();
    let mut range = |from: &str, expr: &str, p: &str, values: &mut Vec<String>| {
        let end = prefix_end(p);
        let mut cond = format!("{expr}{collate} >= ?");
        values.push(p.to_owned());
        if let Some(end) = end {
            cond.push_str(&format!(" AND {expr}{collate} < ?"));
            values.push(end);
        }
        branches.push(format!("{from} WHERE {cond}"));
    };
    range("SELECT id FROM users", "lower(login_id)", &key, &mut values);
    range("SELECT id FROM users", "lower(name)", &key, &mut values);
    range(
        "SELECT u.id FROM companies co JOIN users u ON u.company_id = co.id",
        "lower(co.name)",
        &key,
        &mut values,
    );
    if let Some(s) = serial_prefix {
        range("SELECT user_id FROM certificates", "serial", s, &mut values);
    }
    Some((
        format!("WITH m(id) AS ({}) ", branches.join(" UNION ")),
        values,
    ))
}

impl Store {
    /// Users whose login ID, name or company name starts with `prefix`
    /// (letter case aside), or one of whose certificate serials (hex)
    /// starts with `serial_prefix`; by login ID, `limit` from `offset`,
    /// with how many match in all. Each way of matching is a range over
    /// its own index, so the cost follows the users found, not the users
    /// there are; the page's ids are picked first, and only their
    /// company and newest certificate are read.
    pub async fn search_users(
        &self,
        prefix: &str,
        serial_prefix: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<UserHit>, i64)> {
        let pg = matches!(self.reader(), crate::db::Db::Pg(_));
        let (with, filter, values) = match matching(pg, prefix, serial_prefix) {
            Some((with, values)) => (with, " AND u.id IN (SELECT id FROM m)", values),
            None => (String::new(), "", Vec::new()),
        };
        let total: i64 = on!(self.reader(), c, d => {
            let mut q = sqlx::query_scalar(d::sql(format!(
                "{with}SELECT count(*) FROM users u WHERE u.deleted_at IS NULL{filter}"
            )));
            for v in &values {
                q = q.bind(v);
            }
            q.fetch_one(c).await?
        });
        let hits = on!(self.reader(), c, d => {
            let mut q = sqlx::query(d::sql(format!(
                "{with}SELECT {USER_COLUMNS}, co.name AS company_name, {CERT_COLUMNS} FROM users u \
                 JOIN companies co ON co.id = u.company_id \
                 LEFT JOIN certificates c ON c.id = (SELECT MAX(id) FROM certificates WHERE user_id = u.id) \
                 WHERE u.id IN (SELECT u.id FROM users u WHERE u.deleted_at IS NULL{filter} \
                 ORDER BY u.login_id LIMIT ? OFFSET ?) ORDER BY u.login_id"
            )));
            for v in &values {
                q = q.bind(v);
            }
            let rows = q.bind(limit).bind(offset).fetch_all(c).await?;
            rows.iter()
                .map(|r| {
                    Ok(UserHit {
                        user: user(r)?,
                        company: r.text("company_name")?,
                        cert: cert(r)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?
        });
        Ok((hits, total))
    }

    /// The user with this login ID and their company's name.
    pub async fn user_with_company(&self, login_id: &LoginId) -> Result<Option<(UserRow, String)>> {
        on!(self.reader(), c, d => {
            let row = sqlx::query(d::sql(format!(
                "SELECT {USER_COLUMNS}, co.name AS company_name FROM users u \
                 JOIN companies co ON co.id = u.company_id \
                 WHERE u.login_id = ? AND u.deleted_at IS NULL"
            )))
            .bind(login_id.as_str())
            .fetch_optional(c)
            .await?;
            row.as_ref()
                .map(|r| Ok((user(r)?, r.text("company_name")?)))
                .transpose()
        })
    }

    /// Every certificate of the user, newest first.
    pub async fn user_certificates(&self, user: UserId) -> Result<Vec<CertRow>> {
        on!(self.reader(), c, d => {
            let rows = sqlx::query(d::sql(format!(
                "SELECT {CERT_COLUMNS} FROM certificates c WHERE c.user_id = ? ORDER BY c.id DESC"
            )))
            .bind(user.0)
            .fetch_all(c)
            .await?;
            Ok(rows
                .iter()
                .map(cert)
                .collect::<Result<Vec<_>>>()?
                .into_iter()
                .flatten()
                .collect())
        })
    }

    /// The company's 操作履歴 rows by or about `login_id` (as actor or
    /// target), newest first, at most `limit`.
    pub async fn audit_about_user(
        &self,
        company: CompanyId,
        login_id: &LoginId,
        limit: i64,
    ) -> Result<Vec<AuditRow>> {
        on!(self.reader(), c, d => {
            sqlx::query(d::sql(format!(
                "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE company_id = ? \
                 AND (target_login_id = ? OR actor_login_id = ?) ORDER BY id DESC LIMIT ?"
            )))
            .bind(company.0)
            .bind(login_id.as_str())
            .bind(login_id.as_str())
            .bind(limit)
            .fetch_all(c)
            .await?
            .iter()
            .map(audit_row)
            .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn a_prefix_ends_at_its_last_character_stepped_up() {
        assert_eq!(prefix_end("jirodt").as_deref(), Some("jirodu"));
        assert_eq!(prefix_end("株式").as_deref(), Some("株弐"));
        assert_eq!(prefix_end("a%_").as_deref(), Some("a%`"));
        assert_eq!(prefix_end("a\u{d7ff}").as_deref(), Some("a\u{e000}"));
        assert_eq!(prefix_end("a\u{10ffff}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{10ffff}"), None);
        assert_eq!(prefix_end(""), None);
    }
}
