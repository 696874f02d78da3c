//! What the bank's help desk reads across companies: users found by a
//! prefix of their login ID, name, company name or a certificate serial
//! (paged), a user's certificates, and the 操作履歴 rows about a user.

use shomei_core::{CompanyId, LoginId, UserId};

use crate::audit::row as audit_row;
use crate::certificates::{CERT_COLUMNS, cert};
use crate::db::{Get, Value, on, query_with};
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

/// Where a page of the search starts, by login ID (the order of the list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchFrom<'a> {
    /// The first page.
    First,
    /// The users after this login ID: the page after one that ends there.
    After(&'a str),
    /// The users before this login ID: the page before one that starts
    /// there.
    Before(&'a str),
}

/// One page of users found, by login ID.
#[derive(Debug, Clone)]
pub struct UserHits {
    /// The page's users, by login ID.
    pub hits: Vec<UserHit>,
    /// How many match in all; `None`: more than the count's cap (counting
    /// stops there).
    pub total: Option<i64>,
    /// Someone matching comes before the page's first user.
    pub more_before: bool,
    /// Someone matching comes after the page's last user.
    pub more_after: bool,
}

/// The page's side of its key: the users after (`>`) or before (`<`) it.
struct Key<'a> {
    login: &'a str,
    cmp: &'static str,
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

/// One way of matching: `expr` (of a user `u`) starts with `start`.
struct Range {
    way: Way,
    start: String,
    end: Option<String>,
}

#[derive(Clone, Copy)]
enum Way {
    LoginId,
    Name,
    Company,
    Serial,
}

/// The search's ways of matching (none: everyone, an empty text), each a
/// range over one index (migration 0016).
struct Search {
    pg: bool,
    ranges: Vec<Range>,
}

impl Search {
    fn new(pg: bool, prefix: &str, serial_prefix: Option<&str>) -> Search {
        let mut ranges = Vec::new();
        if !prefix.is_empty() || serial_prefix.is_some() {
            // As the index has it: lower() on SQLite folds ASCII letters
            // only, on PostgreSQL every letter.
            let key = if pg {
                prefix.to_lowercase()
            } else {
                prefix.to_ascii_lowercase()
            };
            for way in [Way::LoginId, Way::Name, Way::Company] {
                ranges.push(Range {
                    way,
                    end: prefix_end(&key),
                    start: key.clone(),
                });
            }
            if let Some(s) = serial_prefix {
                ranges.push(Range {
                    way: Way::Serial,
                    start: s.to_owned(),
                    end: prefix_end(s),
                });
            }
        }
        Search { pg, ranges }
    }

    /// `expr` within the range, its values pushed.
    fn cond(&self, expr: &str, r: &Range, values: &mut Vec<Value>) -> String {
        // The byte order of "C" on PostgreSQL, as the index has it.
        let collate = if self.pg { " COLLATE \"C\"" } else { "" };
        values.push(Value::Text(r.start.clone()));
        let mut cond = format!("{expr}{collate} >= ?");
        if let Some(end) = &r.end {
            cond.push_str(&format!(" AND {expr}{collate} < ?"));
            values.push(Value::Text(end.clone()));
        }
        cond
    }

    /// The ids of the users matching (not deleted) as one set, each way
    /// read at most `each` from its index: exact while no way has more
    /// than `each - 1`, which holds whenever the set has fewer than `each`.
    fn capped_ids(&self, each: i64, key: Option<&Key<'_>>, values: &mut Vec<Value>) -> String {
        let branches: Vec<String> = self
            .ranges
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let inner = match r.way {
                    Way::LoginId => format!(
                        "SELECT id FROM users WHERE {} AND deleted_at IS NULL",
                        self.cond("lower(login_id)", r, values)
                    ),
                    Way::Name => format!(
                        "SELECT id FROM users WHERE {} AND deleted_at IS NULL",
                        self.cond("lower(name)", r, values)
                    ),
                    Way::Company => format!(
                        "SELECT u.id FROM companies co JOIN users u ON u.company_id = co.id \
                         WHERE {} AND u.deleted_at IS NULL",
                        self.cond("lower(co.name)", r, values)
                    ),
                    // DISTINCT: a user with several certificates in the
                    // range counts once toward `each`.
                    Way::Serial => format!(
                        "SELECT DISTINCT c.user_id AS id FROM certificates c \
                         JOIN users u ON u.id = c.user_id WHERE {} AND u.deleted_at IS NULL",
                        self.cond("c.serial", r, values)
                    ),
                };
                let login = match r.way {
                    Way::LoginId | Way::Name => "login_id",
                    Way::Company | Way::Serial => "u.login_id",
                };
                let keyed = key.map_or(String::new(), |k| {
                    values.push(Value::Text(k.login.to_owned()));
                    format!(" AND {login} {} ?", k.cmp)
                });
                values.push(Value::Int(each));
                format!("SELECT id FROM ({inner}{keyed} LIMIT ?) AS w{i}")
            })
            .collect();
        branches.join(" UNION ")
    }

    /// Whether the user `u` (of the company `co`) matches, tested on that
    /// one row: for reading the users in login-ID order and keeping those
    /// that match.
    fn row_matches(&self, values: &mut Vec<Value>) -> String {
        let tests: Vec<String> = self
            .ranges
            .iter()
            .map(|r| match r.way {
                Way::LoginId => format!("({})", self.cond("lower(u.login_id)", r, values)),
                Way::Name => format!("({})", self.cond("lower(u.name)", r, values)),
                // The user's company is joined (`co`): a test of that one
                // row, where PostgreSQL would read every company into a hash
                // for an EXISTS.
                Way::Company => format!("({})", self.cond("lower(co.name)", r, values)),
                Way::Serial => format!(
                    "EXISTS (SELECT 1 FROM certificates c WHERE c.user_id = u.id AND {})",
                    self.cond("c.serial", r, values)
                ),
            })
            .collect();
        if tests.is_empty() {
            String::new()
        } else {
            format!(" AND ({})", tests.join(" OR "))
        }
    }
}

impl Store {
    /// Users whose login ID, name or company name starts with `prefix`
    /// (letter case aside), or one of whose certificate serials (hex)
    /// starts with `serial_prefix`; by login ID, `limit` from `from`, with
    /// how many match in all counted up to `count_max`.
    ///
    /// The cost follows the page and the cap, not the users there are: the
    /// count reads each way of matching from its own index, at most
    /// `count_max + 1` each. Up to the cap that set is exact and the page
    /// is picked from it; beyond it the users are read in login-ID order
    /// (its UNIQUE index) from the key on, each tested on its row, at most
    /// `count_max` rows; a page not full by then is picked from those
    /// matching beyond the key, counted the same way (the whole walk only
    /// when they too are more than the cap). Only the page's users get
    /// their company and newest certificate read.
    pub async fn search_users(
        &self,
        prefix: &str,
        serial_prefix: Option<&str>,
        count_max: i64,
        limit: i64,
        from: SearchFrom<'_>,
    ) -> Result<UserHits> {
        let search = Search::new(
            matches!(self.reader(), crate::db::Db::Pg(_)),
            prefix,
            serial_prefix,
        );
        let each = count_max.saturating_add(1);
        let mut values = Vec::new();
        let counted = if search.ranges.is_empty() {
            values.push(Value::Int(each));
            "SELECT count(*) FROM (SELECT 1 FROM users WHERE deleted_at IS NULL LIMIT ?) AS m"
                .to_owned()
        } else {
            format!(
                "SELECT count(*) FROM ({}) AS m",
                search.capped_ids(each, None, &mut values)
            )
        };
        let n: i64 = on!(self.reader(), c, d => {
            let row = query_with!(d, counted, &values).fetch_one(c).await?;
            sqlx::Row::try_get(&row, 0)?
        });
        let total = (n <= count_max).then_some(n);

        // The page's ids, one more than `limit` to know if more follow.
        let (key, order) = match from {
            SearchFrom::First => (None, "ASC"),
            SearchFrom::After(login) => (Some(Key { login, cmp: ">" }), "ASC"),
            SearchFrom::Before(login) => (Some(Key { login, cmp: "<" }), "DESC"),
        };
        let want = limit.saturating_add(1);
        let keyed = |values: &mut Vec<Value>| {
            key.as_ref().map_or(String::new(), |k| {
                values.push(Value::Text(k.login.to_owned()));
                format!(" AND u.login_id {} ?", k.cmp)
            })
        };
        // From the exact set of those matching (beyond the key, when
        // `beyond`): fewer than `each` of them.
        let exact = |beyond: bool| {
            let mut values = Vec::new();
            let ids = search.capped_ids(each, key.as_ref().filter(|_| beyond), &mut values);
            let k = keyed(&mut values);
            values.push(Value::Int(want));
            (
                format!(
                    "SELECT u.id FROM users u WHERE u.id IN ({ids}){k} \
                     ORDER BY u.login_id {order} LIMIT ?"
                ),
                values,
            )
        };
        // In login-ID order from the key, each row tested; at most `budget`
        // rows read when given.
        let walk = |budget: Option<i64>| {
            let mut values = Vec::new();
            let sql = match budget {
                Some(budget) => {
                    let k = keyed(&mut values);
                    values.push(Value::Int(budget));
                    let tests = search.row_matches(&mut values);
                    format!(
                        "SELECT u.id FROM (SELECT u.id, u.login_id, u.name, u.company_id \
                         FROM users u WHERE u.deleted_at IS NULL{k} \
                         ORDER BY u.login_id {order} LIMIT ?) AS u \
                         JOIN companies co ON co.id = u.company_id WHERE 1 = 1{tests} \
                         ORDER BY u.login_id {order} LIMIT ?"
                    )
                }
                None => {
                    let tests = search.row_matches(&mut values);
                    let k = keyed(&mut values);
                    format!(
                        "SELECT u.id FROM users u JOIN companies co ON co.id = u.company_id \
                         WHERE u.deleted_at IS NULL{tests}{k} ORDER BY u.login_id {order} LIMIT ?"
                    )
                }
            };
            values.push(Value::Int(want));
            (sql, values)
        };
        let full = |hits: &Vec<UserHit>| usize::try_from(want).is_ok_and(|w| hits.len() >= w);
        let mut hits = if search.ranges.is_empty() {
            // Everyone: every row read is on the page.
            self.search_page(walk(None)).await?
        } else if total.is_some() {
            self.search_page(exact(false)).await?
        } else {
            // Over the cap: the login-ID index from the key, at most as many
            // rows as the cap; a page not full by then is read from the set
            // of those matching beyond the key when that is under the cap
            // (e.g. the page after a search's last user, whose users all
            // come early in login-ID order), else by the whole walk.
            let first = self.search_page(walk(Some(count_max))).await?;
            if full(&first) {
                first
            } else {
                let mut values = Vec::new();
                let counted = format!(
                    "SELECT count(*) FROM ({}) AS m",
                    search.capped_ids(each, key.as_ref(), &mut values)
                );
                let beyond: i64 = on!(self.reader(), c, d => {
                    let row = query_with!(d, counted, &values).fetch_one(c).await?;
                    sqlx::Row::try_get(&row, 0)?
                });
                if beyond <= count_max {
                    self.search_page(exact(true)).await?
                } else {
                    self.search_page(walk(None)).await?
                }
            }
        };
        let over = usize::try_from(limit).is_ok_and(|l| hits.len() > l);
        let (more_before, more_after) = match from {
            SearchFrom::First => (false, over),
            SearchFrom::After(_) => (true, over),
            SearchFrom::Before(_) => (over, true),
        };
        if over {
            match from {
                SearchFrom::Before(_) => {
                    hits.remove(0);
                }
                _ => {
                    hits.pop();
                }
            }
        }
        Ok(UserHits {
            hits,
            total,
            more_before,
            more_after,
        })
    }

    /// The users `picked` (their ids, by a statement and its values), by
    /// login ID, each with their company's name and newest certificate.
    async fn search_page(&self, (picked, values): (String, Vec<Value>)) -> Result<Vec<UserHit>> {
        let page = format!(
            "SELECT {USER_COLUMNS}, co.name AS company_name, {CERT_COLUMNS} FROM users u \
             JOIN companies co ON co.id = u.company_id \
             LEFT JOIN certificates c ON c.id = (SELECT MAX(id) FROM certificates WHERE user_id = u.id) \
             WHERE u.id IN ({picked}) ORDER BY u.login_id"
        );
        on!(self.reader(), c, d => {
            query_with!(d, page, &values)
                .fetch_all(c)
                .await?
                .iter()
                .map(|r| {
                    Ok(UserHit {
                        user: user(r)?,
                        company: r.text("company_name")?,
                        cert: cert(r)?,
                    })
                })
                .collect::<Result<Vec<_>>>()
        })
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
                "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE chain = ? \
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
