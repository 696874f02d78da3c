//! The CRL number last published for each scope, for a start that serves
//! its kept CRL copies again: a copy is served only when no server
//! published a later CRL of its scope.

use shomei_core::CrlScope;

use crate::db::on;
use crate::{Result, Tx};

impl Tx {
    /// Every scope's highest published CRL number.
    pub async fn crl_published(&mut self) -> Result<Vec<(CrlScope, u64)>> {
        let rows: Vec<(i64, i64)> = on!(self.conn(), c, d => {
            sqlx::query_as(d::sql("SELECT scope, published FROM crl_scopes"))
                .fetch_all(c)
                .await?
        });
        Ok(rows
            .into_iter()
            .filter_map(|(s, n)| Some((CrlScope::from_key(s)?, u64::try_from(n).ok()?)))
            .collect())
    }
}
