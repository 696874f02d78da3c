//! Schema migrations, embedded in the binary: the same numbered steps for
//! each backend (`migrations/sqlite`, `migrations/postgres`). SQLite keeps
//! the version in `PRAGMA user_version`; Postgres in the one-row table
//! `shomei_schema`. A database newer than this program is refused.

use sqlx::{PgPool, SqlitePool};

use crate::{Result, StoreError};

const SQLITE: &[&str] = &[
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
    include_str!("../migrations/sqlite/0011_crl_partitions.sql"),
    include_str!("../migrations/sqlite/0012_audit_last_hash.sql"),
    include_str!("../migrations/sqlite/0013_audit_prev_hash.sql"),
    include_str!("../migrations/sqlite/0014_operators.sql"),
    include_str!("../migrations/sqlite/0015_operator_password_failures.sql"),
    include_str!("../migrations/sqlite/0016_user_search.sql"),
    include_str!("../migrations/sqlite/0017_approvals.sql"),
    include_str!("../migrations/sqlite/0018_operator_mail.sql"),
    include_str!("../migrations/sqlite/0019_crl_scopes_in_use.sql"),
    include_str!("../migrations/sqlite/0020_shell_requests.sql"),
    include_str!("../migrations/sqlite/0021_one_serial_index.sql"),
    include_str!("../migrations/sqlite/0022_audit_last_hash_kept.sql"),
    include_str!("../migrations/sqlite/0023_audit_chain_index.sql"),
];

const POSTGRES: &[&str] = &[
    include_str!("../migrations/postgres/0001_init.sql"),
    include_str!("../migrations/postgres/0002_revocation_at_scale.sql"),
    include_str!("../migrations/postgres/0003_operator_and_contacts.sql"),
    include_str!("../migrations/postgres/0004_notices.sql"),
    include_str!("../migrations/postgres/0005_session_handover.sql"),
    include_str!("../migrations/postgres/0006_attempts.sql"),
    include_str!("../migrations/postgres/0007_sessions.sql"),
    include_str!("../migrations/postgres/0008_reimported_revocations.sql"),
    include_str!("../migrations/postgres/0009_leases.sql"),
    include_str!("../migrations/postgres/0010_crl_published.sql"),
    include_str!("../migrations/postgres/0011_crl_partitions.sql"),
    include_str!("../migrations/postgres/0012_audit_last_hash.sql"),
    include_str!("../migrations/postgres/0013_audit_prev_hash.sql"),
    include_str!("../migrations/postgres/0014_operators.sql"),
    include_str!("../migrations/postgres/0015_operator_password_failures.sql"),
    include_str!("../migrations/postgres/0016_user_search.sql"),
    include_str!("../migrations/postgres/0017_approvals.sql"),
    include_str!("../migrations/postgres/0018_operator_mail.sql"),
    include_str!("../migrations/postgres/0019_crl_scopes_in_use.sql"),
    include_str!("../migrations/postgres/0020_shell_requests.sql"),
    include_str!("../migrations/postgres/0021_one_serial_index.sql"),
    include_str!("../migrations/postgres/0022_audit_last_hash_kept.sql"),
    include_str!("../migrations/postgres/0023_audit_chain_index.sql"),
];

fn check(current: i64, steps: &[&str]) -> Result<()> {
    let supported = steps.len() as i64;
    if current > supported {
        return Err(StoreError::TooNew {
            found: current,
            supported,
        });
    }
    Ok(())
}

/// Brings a SQLite database up to date, one step per transaction. Each
/// transaction takes the write lock first (`BEGIN IMMEDIATE`) and reads the
/// version under it, so two processes opening a new database at once
/// migrate it once.
pub(crate) async fn sqlite(pool: &SqlitePool) -> Result<()> {
    let mut conn = pool.acquire().await?;
    loop {
        let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
        let current: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut *tx)
            .await?;
        check(current, SQLITE)?;
        let Some(sql) = SQLITE.get(current as usize) else {
            return Ok(());
        };
        sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
            .execute(&mut *tx)
            .await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "PRAGMA user_version = {}",
            current + 1
        )))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(version = current + 1, "database schema migrated");
    }
}

/// The key of the transaction-scoped advisory lock that migrations hold:
/// "SHOMEI" in ASCII.
const MIGRATION_LOCK: i64 = 0x5348_4f4d_4549;

/// Brings a Postgres database up to date. Every step runs in one
/// transaction with its version bump (Postgres's DDL is transactional: a
/// step is there entirely or not at all), under an advisory lock held until
/// that transaction ends, so that two nodes starting at once on an empty
/// database migrate it once: the second waits, then reads the new version.
pub(crate) async fn postgres(pool: &PgPool) -> Result<()> {
    let mut conn = pool.acquire().await?;
    loop {
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
        sqlx::raw_sql(
            "SET LOCAL client_min_messages = warning;
             CREATE TABLE IF NOT EXISTS shomei_schema (
                 id       BIGINT PRIMARY KEY CHECK (id = 1),
                 version  BIGINT NOT NULL
             );
             INSERT INTO shomei_schema (id, version) VALUES (1, 0) ON CONFLICT DO NOTHING;",
        )
        .execute(&mut *tx)
        .await?;
        let current: i64 = sqlx::query_scalar("SELECT version FROM shomei_schema WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        check(current, POSTGRES)?;
        let Some(sql) = POSTGRES.get(current as usize) else {
            tx.commit().await?;
            return Ok(());
        };
        sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE shomei_schema SET version = $1 WHERE id = 1")
            .bind(current + 1)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version = current + 1, "database schema migrated");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn both_backends_have_the_same_numbered_steps() {
        let names = |dir: &str| {
            let mut v: Vec<String> = std::fs::read_dir(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("migrations")
                    .join(dir),
            )
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
            v.sort();
            v
        };
        assert_eq!(names("sqlite"), names("postgres"));
        assert_eq!(names("sqlite").len(), super::SQLITE.len());
        assert_eq!(super::SQLITE.len(), super::POSTGRES.len());
    }
}
