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
    pub user: UserRow,
    pub company: String,
    pub cert: Option<CertRow>,
}

/// `s` as a LIKE prefix pattern (escape `\`), lower-cased.
fn prefix_pattern(s: &str) -> String {
    let mut p = String::with_capacity(s.len() + 1);
    for ch in s.to_lowercase().chars() {
        if matches!(ch, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(ch);
    }
    p.push('%');
    p
}

const MATCHES: &str = "u.deleted_at IS NULL AND (lower(u.login_id) LIKE ? ESCAPE '\\' \
     OR lower(u.name) LIKE ? ESCAPE '\\' OR lower(co.name) LIKE ? ESCAPE '\\' \
     OR EXISTS (SELECT 1 FROM certificates s WHERE s.user_id = u.id AND s.serial LIKE ? ESCAPE '\\'))";

impl Store {
    /// Users whose login ID, name or company name starts with `prefix`
    /// (letter case aside), or one of whose certificate serials (hex)
    /// starts with `serial_prefix`; by login ID, `limit` from `offset`,
    /// with how many match in all.
    pub async fn search_users(
        &self,
        prefix: &str,
        serial_prefix: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<UserHit>, i64)> {
        let p = prefix_pattern(prefix);
        // No serial prefix: a pattern no serial (lower-case hex) matches
        // (not a NUL, which PostgreSQL's text refuses).
        let s = serial_prefix.map_or_else(|| "-".to_owned(), prefix_pattern);
        let total: i64 = on!(self.reader(), c, d => {
            sqlx::query_scalar(d::sql(format!(
                "SELECT count(*) FROM users u JOIN companies co ON co.id = u.company_id WHERE {MATCHES}"
            )))
            .bind(&p)
            .bind(&p)
            .bind(&p)
            .bind(&s)
            .fetch_one(c)
            .await?
        });
        let hits = on!(self.reader(), c, d => {
            let rows = sqlx::query(d::sql(format!(
                "SELECT {USER_COLUMNS}, co.name AS company_name, {CERT_COLUMNS} FROM users u \
                 JOIN companies co ON co.id = u.company_id \
                 LEFT JOIN certificates c ON c.id = (SELECT MAX(id) FROM certificates WHERE user_id = u.id) \
                 WHERE {MATCHES} ORDER BY u.login_id LIMIT ? OFFSET ?"
            )))
            .bind(&p)
            .bind(&p)
            .bind(&p)
            .bind(&s)
            .bind(limit)
            .bind(offset)
            .fetch_all(c)
            .await?;
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
    use super::prefix_pattern;

    #[test]
    fn a_prefix_matches_itself_only_at_the_start_and_its_wildcards_literally() {
        assert_eq!(prefix_pattern("JiroDT"), "jirodt%");
        assert_eq!(prefix_pattern("a%b_c\\"), "a\\%b\\_c\\\\%");
        assert_eq!(prefix_pattern("株式会社"), "株式会社%");
    }
}
