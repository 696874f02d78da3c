//! The bank's reset of one of a user's passwords: a new hash that the user
//! must change at the next login (the portal sends them to BRSK002 first).

use shomei_core::UserId;

use crate::db::on;
use crate::{Result, Tx};

impl Tx {
    /// Replaces the login password's hash (`confirm`: the 確認用パスワード's)
    /// by one the bank set, and marks that password to be changed at the
    /// next login; the other password and its mark are left as they are.
    pub async fn set_initial_password(
        &mut self,
        user: UserId,
        confirm: bool,
        hash: &str,
    ) -> Result<()> {
        let sql = if confirm {
            "UPDATE users SET confirm_hash = ?, must_change = must_change | 2 WHERE id = ?"
        } else {
            "UPDATE users SET login_hash = ?, must_change = must_change | 1 WHERE id = ?"
        };
        on!(self.conn(), c, d => {
            sqlx::query(d::sql(sql)).bind(hash).bind(user.0).execute(c).await?;
        });
        Ok(())
    }
}
