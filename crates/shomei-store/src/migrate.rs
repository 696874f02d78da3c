//! Schema migrations, embedded in the binary and tracked by `PRAGMA user_version`.

use sqlx::SqlitePool;

use crate::{Result, StoreError};

const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/sqlite/0001_init.sql"),
    include_str!("../migrations/sqlite/0002_revocation_at_scale.sql"),
    include_str!("../migrations/sqlite/0003_operator_and_contacts.sql"),
    include_str!("../migrations/sqlite/0004_notices.sql"),
    include_str!("../migrations/sqlite/0005_session_handover.sql"),
    include_str!("../migrations/sqlite/0006_attempts.sql"),
    include_str!("../migrations/sqlite/0007_sessions.sql"),
    include_str!("../migrations/sqlite/0008_reimported_revocations.sql"),
    include_str!("../migrations/sqlite/0009_leases.sql"),
    include_str!("../migrations/sqlite/0010_crl_published.sql"),
];

pub(crate) async fn run(pool: &SqlitePool) -> Result<()> {
    let mut conn = pool.acquire().await?;
    let current: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut *conn)
        .await?;
    let supported = MIGRATIONS.len() as i64;
    if current > supported {
        return Err(StoreError::TooNew {
            found: current,
            supported,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
            .execute(&mut *tx)
            .await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "PRAGMA user_version = {}",
            i + 1
        )))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(version = i + 1, "database schema migrated");
    }
    Ok(())
}
