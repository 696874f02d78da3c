//! The store's conformance suite: every test runs on SQLite and, when
//! `SHOMEI_TEST_DATABASE_URL` names a PostgreSQL server (scripts/postgres
//! starts one), on Postgres too, each on a fresh database (with `CI` set,
//! on Postgres or fail). The tests of concurrency race two transactions,
//! the second started while the first holds its locks (see `Race`), and
//! expect the serialised result.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use shomei_core::{
    CompanyId, CrlScope, LoginId, Operation, Outcome, Role, SecurityCounters, Serial, Service,
    UserId,
};
use time::macros::datetime;

use super::*;

/// A fresh database of one backend, which a test can open again.
enum Place {
    Sqlite(tempfile::TempDir),
    Pg(DatabaseUrl),
}

impl Place {
    async fn open(&self) -> Result<Store> {
        match self {
            Place::Sqlite(d) => Store::open(&d.path().join("shomei.db")).await,
            Place::Pg(url) => Store::open_postgres(url).await,
        }
    }
}

/// A new empty Postgres database on the test server.
async fn fresh_pg(admin: &str) -> DatabaseUrl {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "shomei_store_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        rand_suffix()
    );
    DatabaseUrl::parse(admin)
        .unwrap()
        .create_database(&name)
        .await
        .unwrap()
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
}

/// Runs `test` on a fresh database of each backend available.
async fn on_each<F, Fut>(test: F)
where
    F: Fn(Place) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    // The store's log (migrations, retries, the listener) into the test's
    // captured output, shown beside a failure. Set once per process.
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .try_init();
    test(Place::Sqlite(tempfile::tempdir().unwrap())).await;
    match std::env::var("SHOMEI_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => test(Place::Pg(fresh_pg(&url).await)).await,
        // In CI a missing server is a failure, not a skip: else a broken
        // scripts/postgres would turn the PostgreSQL half of the suite off.
        _ if std::env::var_os("CI").is_some() => panic!(
            "CI is set but SHOMEI_TEST_DATABASE_URL is not: the store suite must run on PostgreSQL too (scripts/postgres)"
        ),
        _ => eprintln!("SHOMEI_TEST_DATABASE_URL unset: PostgreSQL not tested (scripts/postgres)"),
    }
}

/// Declares each `async fn name(place: Place)` a test on both backends.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod on_each_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::on_each(super::$name).await;
                }
            )*
        }
    };
}

conformance!(
    sessions_are_bounded_per_user_and_in_all_and_a_pending_screen_is_taken_once,
    a_lease_has_one_holder_until_it_expires_then_the_next_takes_it_with_a_new_epoch,
    a_crl_number_is_published_only_upward_and_only_with_every_revocation_seen,
    scheduled_crls_move_their_scope_horizon_and_scopes_in_use_follow_certificates,
    a_rolled_back_transaction_leaves_neither_change_nor_history,
    revoking_twice_revokes_once_and_login_ids_are_unique,
    the_revocation_set_loads_every_row_across_chunks_and_halves,
    crl_numbers_increase,
    raising_the_crl_number_moves_it_up_and_never_down,
    the_audit_chain_detects_edits_deletions_and_reordering,
    every_way_of_writing_a_history_row_chains_it_as_verify_does,
    every_history_filter_reads_its_own_rows_only,
    a_database_newer_than_the_program_is_refused,
    two_servers_opening_an_empty_database_migrate_it_once,
    counters_changed_by_two_transactions_at_once_lose_no_change,
    two_checks_at_once_never_both_take_the_last_claim,
    attempts_from_one_address_at_once_are_all_counted,
    two_transactions_never_take_the_same_crl_number,
    revocation_log_ids_become_visible_in_their_order,
    appends_at_once_keep_one_chain,
    a_notice_is_claimed_once,
    queries_behave_the_same_on_both,
    a_renewal_writes_certificate_revocation_and_history_together_or_not_at_all,
    a_renewal_that_read_before_a_revocation_committed_writes_nothing,
    a_failure_after_the_history_row_is_still_refused_at_commit,
    a_server_is_not_woken_by_its_own_revocation_notices,
    the_revocation_listener_keeps_its_connection_out_of_the_pool,
);

/// Runs raw SQL (the backend's own text) on the store, outside any
/// transaction: for tests that write rows directly or tamper with them.
async fn raw(s: &Store, sqlite: &str, pg: &str) {
    match &s.backend {
        Backend::Sqlite { write, .. } => {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sqlite.to_owned()))
                .execute(write)
                .await
                .unwrap();
        }
        Backend::Pg(p) => {
            sqlx::raw_sql(sqlx::AssertSqlSafe(pg.to_owned()))
                .execute(p)
                .await
                .unwrap();
        }
    }
}

/// The same statement on either backend.
async fn raw_both(s: &Store, sql: &str) {
    raw(s, sql, sql).await
}

fn entry(company: CompanyId, op: Operation) -> AuditEntry<'static> {
    AuditEntry::new(op, datetime!(2026-01-01 00:00 UTC))
        .by_name(Some(company), "hanakodt")
        .client("127.0.0.1")
}

/// A 管理者 user of company `c` (password hashes are placeholders).
fn hanako<'a>(c: CompanyId, login: &'a LoginId) -> NewUser<'a> {
    NewUser {
        company_id: c,
        login_id: login,
        name: "北銀 花子",
        role: Role::Admin,
        email: "",
        login_hash: "x",
        confirm_hash: "y",
    }
}

async fn a_rolled_back_transaction_leaves_neither_change_nor_history(place: Place) {
    let s = place.open().await.unwrap();
    let now = datetime!(2026-01-01 00:00 UTC);
    let mut tx = s.begin().await.unwrap();
    let c = tx
        .insert_company("株式会社テスト", Service::BusinessIb, now)
        .await
        .unwrap();
    tx.audit(&entry(c, Operation::CompanyCreate)).await.unwrap();
    drop(tx);
    assert_eq!(s.company_count().await.unwrap(), 0);
    assert!(s.audit_for_company(c, 10, 0).await.unwrap().is_empty());
}

async fn revoking_twice_revokes_once_and_login_ids_are_unique(place: Place) {
    let s = place.open().await.unwrap();
    let now = datetime!(2026-01-01 00:00 UTC);
    let (c, u) = company_and_hanako(&s).await;
    let login = LoginId::parse("hanakodt").unwrap();
    let nu = hanako(c, &login);
    let mut tx = s.begin().await.unwrap();
    assert!(
        tx.insert_user(&nu, now).await.is_err(),
        "duplicate login ID refused"
    );
    if matches!(place, Place::Pg(_)) {
        // Postgres aborts the transaction: committing it is refused.
        assert!(tx.commit().await.is_err());
    } else {
        tx.commit().await.unwrap();
    }
    let mut tx = s.begin().await.unwrap();
    let serial = Serial::from_hex("4102").unwrap();
    tx.insert_cert(&new_cert(u, &serial)).await.unwrap();
    assert!(tx.revoke_cert(&serial, now, 5).await.unwrap());
    assert!(!tx.revoke_cert(&serial, now, 5).await.unwrap());
    tx.commit().await.unwrap();
    let mut revoked = Vec::new();
    let n = s
        .for_each_revoked(|serial, e| revoked.push((serial.to_vec(), e)))
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        revoked,
        vec![(
            vec![0x41, 0x02],
            RevokedEntry {
                at: now.unix_timestamp(),
                reason: 5,
                not_after: datetime!(2026-01-01 00:00 UTC).unix_timestamp(),
                scope: CrlScope::Partition(7),
            }
        )]
    );
}

async fn the_revocation_set_loads_every_row_across_chunks_and_halves(place: Place) {
    let s = place.open().await.unwrap();
    // 2.5 chunks of revoked rows and some unrevoked ones, written directly.
    let n = 250_003i64;
    let total = n + 1000;
    let owner = "INSERT INTO companies(id, name, service, created_at) VALUES (1, 'c', 'business_ib', 0);
         INSERT INTO users(id, company_id, login_id, name, role, email, login_hash, confirm_hash, created_at)
             VALUES (1, 1, 'benchuser', 'b', 'general', '', 'x', 'x', 0);";
    raw(
        &s,
        &format!(
            "{owner}
             WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < {total})
             INSERT INTO certificates(user_id, serial, not_before, not_after, der, issued_at, revoked_at, revocation_reason, crl_partition)
             SELECT 1, printf('%032x', i * 7919 + 1048576), 0, 1800000000 + i, x'', 0,
                    CASE WHEN i <= {n} THEN 1700000000 + i END,
                    CASE WHEN i <= {n} THEN i % 3 END,
                    CASE WHEN i % 2 = 0 THEN i % 64 END
             FROM k;"
        ),
        &format!(
            "{owner}
             INSERT INTO certificates(user_id, serial, not_before, not_after, der, issued_at, revoked_at, revocation_reason, crl_partition)
             SELECT 1, lpad(to_hex(i * 7919 + 1048576), 32, '0'), 0, 1800000000 + i, '\\x', 0,
                    CASE WHEN i <= {n} THEN 1700000000 + i END,
                    CASE WHEN i <= {n} THEN i % 3 END,
                    CASE WHEN i % 2 = 0 THEN i % 64 END
             FROM generate_series(1::bigint, {total}::bigint) AS k(i);"
        ),
    )
    .await;
    let mut seen = std::collections::HashMap::new();
    let total = s
        .for_each_revoked(|serial, e| {
            assert!(seen.insert(serial.to_vec(), e).is_none(), "twice");
        })
        .await
        .unwrap();
    assert_eq!(total, n as usize);
    assert_eq!(seen.len(), n as usize);
    for i in [1i64, 2, 100_000, 100_001, 125_002, 200_000, n] {
        let serial = hex::decode(format!("{:032x}", i * 7919 + 1_048_576)).unwrap();
        let scope = if i % 2 == 0 {
            CrlScope::Partition((i % 64) as u16)
        } else {
            CrlScope::Undivided
        };
        assert_eq!(
            seen[&serial],
            RevokedEntry {
                at: 1_700_000_000 + i,
                reason: (i % 3) as u8,
                not_after: 1_800_000_000 + i,
                scope,
            },
            "row {i}"
        );
    }
}

async fn crl_numbers_increase(place: Place) {
    let s = place.open().await.unwrap();
    let mut tx = s.begin().await.unwrap();
    let a = tx.next_crl_number().await.unwrap();
    let b = tx.next_crl_number().await.unwrap();
    tx.commit().await.unwrap();
    assert!(b > a);
}

/// What a restore's CRL check relies on: the number last taken reads back,
/// and raising it above a CRL found published moves it there, never down.
async fn raising_the_crl_number_moves_it_up_and_never_down(place: Place) {
    let s = place.open().await.unwrap();
    let mut tx = s.begin().await.unwrap();
    assert_eq!(tx.crl_number().await.unwrap(), 0, "none taken yet");
    assert_eq!(tx.next_crl_numbers(2).await.unwrap(), 2);
    assert_eq!(tx.crl_number().await.unwrap(), 2, "the last taken");
    tx.raise_crl_number(40).await.unwrap();
    assert_eq!(tx.crl_number().await.unwrap(), 40, "raised");
    tx.raise_crl_number(7).await.unwrap();
    assert_eq!(tx.crl_number().await.unwrap(), 40, "never lowered");
    tx.raise_crl_number(40).await.unwrap();
    assert_eq!(tx.crl_number().await.unwrap(), 40);
    tx.commit().await.unwrap();
    let mut tx = s.begin().await.unwrap();
    assert_eq!(tx.crl_number().await.unwrap(), 40, "committed");
    assert_eq!(
        tx.next_crl_number().await.unwrap(),
        41,
        "numbering goes on above the raised number"
    );
    tx.raise_crl_number(41).await.unwrap();
    assert_eq!(tx.next_crl_number().await.unwrap(), 42);
    drop(tx);
    let mut tx = s.begin().await.unwrap();
    assert_eq!(
        tx.crl_number().await.unwrap(),
        40,
        "a rolled-back raise is gone"
    );
}

async fn the_audit_chain_detects_edits_deletions_and_reordering(place: Place) {
    let s = place.open().await.unwrap();
    let now = datetime!(2026-01-01 00:00 UTC);
    let mut tx = s.begin().await.unwrap();
    let c = tx
        .insert_company("株式会社テスト", Service::BusinessIb, now)
        .await
        .unwrap();
    for op in [
        Operation::Login,
        Operation::CertificateRevocation,
        Operation::Logout,
        Operation::Login,
    ] {
        tx.audit(&entry(c, op)).await.unwrap();
    }
    // A row of the bank's own, in its chain (0).
    tx.audit(
        &AuditEntry::new(Operation::Login, now)
            .by_name(None, "operator1")
            .client("127.0.0.1"),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(s.verify_audit().await.unwrap(), None);
    // Every row counted, in two chains (the bank's and the company's).
    let whole = ChainCheck {
        rows: 5,
        chains: 2,
        broken_at: None,
    };
    assert_eq!(s.check_audit_chains().await.unwrap(), whole);

    let ids: Vec<i64> = s
        .audit_for_company(c, 10, 0)
        .await
        .unwrap()
        .iter()
        .rev()
        .map(|r| r.id)
        .collect();
    let set = |sql: String| {
        let s = &s;
        async move { raw_both(s, &sql).await }
    };
    set(format!(
        "UPDATE audit_log SET result = '失敗' WHERE id = {}",
        ids[1]
    ))
    .await;
    assert_eq!(s.verify_audit().await.unwrap(), Some(ids[1]), "edit");
    // The bank's row and the company's first held; the walk stops there.
    assert_eq!(
        s.check_audit_chains().await.unwrap(),
        ChainCheck {
            rows: 2,
            chains: 2,
            broken_at: Some(ids[1]),
        }
    );
    set(format!(
        "UPDATE audit_log SET result = '成功' WHERE id = {}",
        ids[1]
    ))
    .await;
    assert_eq!(s.verify_audit().await.unwrap(), None);
    assert_eq!(s.check_audit_chains().await.unwrap(), whole);
    set(format!(
        "UPDATE audit_log SET id = 1000 WHERE id = {}",
        ids[0]
    ))
    .await;
    assert_eq!(s.verify_audit().await.unwrap(), Some(ids[1]), "reorder");
    set(format!(
        "UPDATE audit_log SET id = {} WHERE id = 1000",
        ids[0]
    ))
    .await;
    set(format!("DELETE FROM audit_log WHERE id = {}", ids[2])).await;
    assert_eq!(s.verify_audit().await.unwrap(), Some(ids[3]), "deletion");
}

/// A company with the test 管理者 user, committed.
/// On Postgres the row's hash is computed in the statement that writes it
/// (see `audit::pg_append`); `verify_audit` recomputes it in Rust.
async fn every_way_of_writing_a_history_row_chains_it_as_verify_does(place: Place) {
    let s = place.open().await.unwrap();
    let (c, u) = company_and_hanako(&s).await;
    // The bank's own chain, every field filled, multibyte text.
    let bank = AuditEntry {
        company_id: None,
        actor_user_id: Some(u),
        target_login_id: "tarodt",
        detail: "シリアル番号 0a → 0b (RSA 2048)",
        client_addr: "::1",
        ..entry(c, Operation::CertificateRenewal)
    };
    s.audit(&bank).await.unwrap();
    s.audit(&bank).await.unwrap();
    let mut tx = s.begin().await.unwrap();
    tx.audit(&entry(c, Operation::Login)).await.unwrap();
    tx.audit(&entry(c, Operation::Logout)).await.unwrap();
    tx.commit().await.unwrap();
    // A chain whose last hash was not kept (rows written before it was):
    // on SQLite the next row follows the chain's newest row; PostgreSQL's
    // migration 0022 fills it from there, and requires it from then on.
    raw(
        &s,
        "UPDATE audit_counts SET last_hash = NULL",
        concat!(
            "ALTER TABLE audit_counts ALTER COLUMN last_hash DROP NOT NULL; \
             UPDATE audit_counts SET last_hash = NULL;\n",
            include_str!("../migrations/postgres/0022_audit_last_hash_kept.sql")
        ),
    )
    .await;
    if let Backend::Pg(p) = &s.backend {
        let refused = sqlx::query("UPDATE audit_counts SET last_hash = NULL")
            .execute(p)
            .await;
        assert!(refused.is_err(), "PostgreSQL requires the last hash");
    }
    s.audit(&entry(c, Operation::Login)).await.unwrap();
    s.audit(&bank).await.unwrap();
    assert_eq!(s.audit_count(c, &AuditFilter::default()).await.unwrap(), 3);
    assert_eq!(s.verify_audit().await.unwrap(), None);
    // Positive control: verify does recompute every row.
    raw_both(
        &s,
        "UPDATE audit_log SET detail = 'x' WHERE id = (SELECT max(id) FROM audit_log)",
    )
    .await;
    assert!(s.verify_audit().await.unwrap().is_some());
}

/// 操作履歴照会 and 監査, however narrowed, count and page the rows of the
/// company (or the bank) asked for and no other's: the queries name it by
/// its chain or by `company_id`, whichever index the filter reads (see
/// `audit::rows_of`).
async fn every_history_filter_reads_its_own_rows_only(place: Place) {
    let s = place.open().await.unwrap();
    let (c, u) = company_and_hanako(&s).await;
    let mut tx = s.begin().await.unwrap();
    let other = tx
        .insert_company(
            "株式会社ほか",
            Service::BusinessIb,
            datetime!(2026-01-01 00:00 UTC),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // Each of the three: two logins (one failed) and a logout; the other
    // company and the bank one row more, so that no count fits another's.
    let extra = [(Some(other), 1), (None, 2), (Some(c), 0)];
    for (company, more) in extra {
        let rows = [
            (Operation::Login, Outcome::Succeeded),
            (Operation::Login, Outcome::Failed),
            (Operation::Logout, Outcome::Succeeded),
        ];
        let logouts = std::iter::repeat_n((Operation::Logout, Outcome::Succeeded), more);
        for (op, result) in rows.into_iter().chain(logouts) {
            let e = AuditEntry {
                company_id: company,
                actor_user_id: Some(u),
                result,
                ..entry(c, op)
            };
            s.audit(&e).await.unwrap();
        }
    }
    let login = Operation::Login.label().to_owned();
    let failed = Outcome::Failed.label().to_owned();
    let filters: [(AuditFilter, i64); 6] = [
        (AuditFilter::default(), 3),
        (
            AuditFilter {
                result: Some(failed.clone()),
                ..AuditFilter::default()
            },
            1,
        ),
        (
            AuditFilter {
                operation: Some(login.clone()),
                ..AuditFilter::default()
            },
            2,
        ),
        (
            AuditFilter {
                actor_login_id: Some("hanakodt".into()),
                ..AuditFilter::default()
            },
            3,
        ),
        (
            AuditFilter {
                actor_user_id: Some(u),
                ..AuditFilter::default()
            },
            3,
        ),
        (
            AuditFilter {
                from: Some(datetime!(2025-12-31 00:00 UTC)),
                until: Some(datetime!(2026-01-02 00:00 UTC)),
                ..AuditFilter::default()
            },
            3,
        ),
    ];
    for (f, n) in &filters {
        assert_eq!(s.audit_count(c, f).await.unwrap(), *n, "{f:?}");
        let page = s.audit_page(c, f, 10, 0, *n).await.unwrap();
        assert_eq!(page.len() as i64, *n, "{f:?}");
        assert!(page.iter().all(|r| r.company_id == Some(c)), "{f:?}");
        let others = s.audit_page(other, f, 10, 0, 10).await.unwrap();
        assert!(others.iter().all(|r| r.company_id == Some(other)), "{f:?}");
    }
    assert_eq!(s.audit_for_company(other, 10, 0).await.unwrap().len(), 4);
    let review = |scope, operation: Option<&str>, result: Option<&str>| ReviewFilter {
        scope,
        operation: operation.map(str::to_owned),
        result: result.map(str::to_owned),
        ..ReviewFilter::default()
    };
    let cases = [
        (review(AuditScope::Bank, None, None), 5),
        (review(AuditScope::Bank, None, Some(&failed)), 1),
        (review(AuditScope::Bank, Some(&login), None), 2),
        (review(AuditScope::Company(other), None, None), 4),
        (
            review(AuditScope::Company(other), Some(&login), Some(&failed)),
            1,
        ),
        (review(AuditScope::All, None, None), 12),
    ];
    for (f, n) in &cases {
        assert_eq!(s.review_count(f).await.unwrap(), *n, "{f:?}");
        let page = s.review_page(f, 20, 0).await.unwrap();
        assert_eq!(page.len() as i64, *n, "{f:?}");
        let want = match f.scope {
            AuditScope::Bank => Some(None),
            AuditScope::Company(c) => Some(Some(c)),
            AuditScope::All => None,
        };
        if let Some(want) = want {
            assert!(page.iter().all(|r| r.row.company_id == want), "{f:?}");
        }
    }
}

async fn company_and_hanako(s: &Store) -> (CompanyId, UserId) {
    let now = datetime!(2026-01-01 00:00 UTC);
    let mut tx = s.begin().await.unwrap();
    let c = tx
        .insert_company("株式会社テスト", Service::BusinessIb, now)
        .await
        .unwrap();
    let id = LoginId::parse("hanakodt").unwrap();
    let u = tx.insert_user(&hanako(c, &id), now).await.unwrap();
    tx.commit().await.unwrap();
    (c, u)
}

/// A certificate record of `user` (its body a placeholder).
fn new_cert(user: UserId, serial: &Serial) -> NewCert<'_> {
    let now = datetime!(2026-01-01 00:00 UTC);
    NewCert {
        user_id: user,
        serial,
        not_before: now,
        not_after: now,
        der: b"d",
        issued_at: now,
        crl_scope: CrlScope::Partition(7),
    }
}

/// SQLite: how long the first transaction of a race holds on after the
/// second has called `begin` (which queues it for the one writer the moment
/// it is polled), before it writes.
const HOLD: Duration = Duration::from_millis(300);

/// The longest a test waits for an event of a race before it fails.
const RACE_CEILING: Duration = Duration::from_secs(30);

/// The events of a race between a first transaction, which holds its locks,
/// and a second one started meanwhile, which must wait for them: so a race
/// test never passes because the second started late, and says whether the
/// second really waited.
#[derive(Default)]
struct Race {
    started: std::sync::atomic::AtomicBool,
    finished: std::sync::atomic::AtomicBool,
    committing: std::sync::atomic::AtomicBool,
}

impl Race {
    /// The second transaction is about to begin (and then to wait).
    fn start(&self) {
        self.started.store(true, Ordering::SeqCst);
    }

    /// The second transaction is over.
    fn finish(&self) {
        self.finished.store(true, Ordering::SeqCst);
    }

    /// Read by the second right after its waiting step returns: had the
    /// first committed by then? (Set before the first's commit, which must
    /// come before any waiter is let go.)
    fn first_committed(&self) -> bool {
        self.committing.load(Ordering::SeqCst)
    }

    /// Waits until the second transaction has started and waits on the
    /// first's locks (Postgres: a session of this database waiting on a
    /// lock; SQLite: queued for the one writer), or has finished without
    /// waiting (the test's assertions then catch what it got wrong).
    async fn until_second_waits(&self, s: &Store) {
        let deadline = tokio::time::Instant::now() + RACE_CEILING;
        while !self.started.load(Ordering::SeqCst) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the second transaction never started"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        match &s.backend {
            Backend::Sqlite { .. } => tokio::time::sleep(HOLD).await,
            Backend::Pg(p) => loop {
                let waiting: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM pg_stat_activity \
                     WHERE datname = current_database() AND wait_event_type = 'Lock'",
                )
                .fetch_one(p)
                .await
                .unwrap();
                if waiting > 0 || self.finished.load(Ordering::SeqCst) {
                    return;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the second transaction neither waited nor finished"
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            },
        }
    }

    /// Commits the first transaction, marking it first.
    async fn commit_first(&self, tx: Tx) {
        self.committing.store(true, Ordering::SeqCst);
        tx.commit().await.unwrap();
    }
}

async fn a_database_newer_than_the_program_is_refused(place: Place) {
    let s = place.open().await.unwrap();
    raw(
        &s,
        "PRAGMA user_version = 99",
        "UPDATE shomei_schema SET version = 99",
    )
    .await;
    s.close().await;
    match place.open().await {
        Err(StoreError::TooNew {
            found: 99,
            supported,
        }) => assert_eq!(supported, migrate_steps()),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a newer database was opened"),
    }
}

fn migrate_steps() -> i64 {
    std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .unwrap()
        .count() as i64
}

#[test]
fn busy_is_told_by_its_primary_code() {
    assert!(crate::is_busy(Some("5")));
    assert!(crate::is_busy(Some("261")), "SQLITE_BUSY_RECOVERY");
    assert!(crate::is_busy(Some("517")), "SQLITE_BUSY_SNAPSHOT");
    assert!(!crate::is_busy(Some("6")), "SQLITE_LOCKED");
    assert!(!crate::is_busy(Some("2067")), "SQLITE_CONSTRAINT_UNIQUE");
    assert!(!crate::is_busy(None));
}

async fn two_servers_opening_an_empty_database_migrate_it_once(place: Place) {
    let (a, b) = tokio::join!(place.open(), place.open());
    let (a, b) = (a.unwrap(), b.unwrap());
    company_and_hanako(&a).await;
    assert_eq!(b.company_count().await.unwrap(), 1);
    // Opening again changes nothing.
    let c = place.open().await.unwrap();
    assert_eq!(c.company_count().await.unwrap(), 1);
}

async fn counters_changed_by_two_transactions_at_once_lose_no_change(place: Place) {
    let s = place.open().await.unwrap();
    let (_, u) = company_and_hanako(&s).await;
    let race = std::sync::Arc::new(Race::default());
    // The first reads and holds; the second starts meanwhile.
    let mut first = s.begin().await.unwrap();
    let mut me = first.user(u).await.unwrap().unwrap();
    let second = tokio::spawn({
        let (s, race) = (s.clone(), race.clone());
        async move {
            race.start();
            let mut tx = s.begin().await.unwrap();
            let mut me = tx.user(u).await.unwrap().unwrap();
            let waited = race.first_committed();
            me.counters.login_failures += 1;
            tx.save_counters(u, &me.counters).await.unwrap();
            tx.commit().await.unwrap();
            race.finish();
            waited
        }
    });
    race.until_second_waits(&s).await;
    me.counters.login_failures += 1;
    first.save_counters(u, &me.counters).await.unwrap();
    race.commit_first(first).await;
    assert!(
        second.await.unwrap(),
        "the second read after the first's commit"
    );
    // Both counted: the second read what the first wrote.
    let me = s.user(u).await.unwrap().unwrap();
    assert_eq!(me.counters.login_failures, 2);
}

async fn two_checks_at_once_never_both_take_the_last_claim(place: Place) {
    let s = place.open().await.unwrap();
    let (_, u) = company_and_hanako(&s).await;
    let now = datetime!(2026-01-01 00:00 UTC);
    let until = now + Duration::from_secs(60);
    // One place left: a claim is taken only when none is live. The first
    // counts and holds; the second starts meanwhile.
    let race = std::sync::Arc::new(Race::default());
    let mut first = s.begin().await.unwrap();
    let live = first.live_claims(u, ClaimKind::Login, now).await.unwrap();
    assert_eq!(live, 0);
    let second = tokio::spawn({
        let (s, race) = (s.clone(), race.clone());
        async move {
            race.start();
            let mut tx = s.begin().await.unwrap();
            let live = tx.live_claims(u, ClaimKind::Login, now).await.unwrap();
            let waited = race.first_committed();
            if live == 0 {
                tx.insert_claim(u, ClaimKind::Login, until).await.unwrap();
            }
            tx.commit().await.unwrap();
            race.finish();
            (live == 0, waited)
        }
    });
    race.until_second_waits(&s).await;
    first
        .insert_claim(u, ClaimKind::Login, until)
        .await
        .unwrap();
    race.commit_first(first).await;
    let (took, waited) = second.await.unwrap();
    assert!(waited, "the second counted after the first's commit");
    assert!(!took, "exactly one check takes the place");
    let mut tx = s.begin().await.unwrap();
    assert_eq!(tx.live_claims(u, ClaimKind::Login, now).await.unwrap(), 1);
}

async fn attempts_from_one_address_at_once_are_all_counted(place: Place) {
    let s = place.open().await.unwrap();
    let now = datetime!(2026-01-01 00:00 UTC);
    // The address has no row yet: nothing to lock with FOR UPDATE.
    let read = async move |tx: &mut Tx| {
        let mut a = tx
            .address_attempts("192.0.2.7")
            .await
            .unwrap()
            .unwrap_or(AddressAttempts {
                window_start: now,
                attempts: 0,
                blocked_until: None,
                refused_unrecorded: 0,
                last_row_at: None,
            });
        a.attempts += 1;
        a
    };
    let race = std::sync::Arc::new(Race::default());
    let mut first = s.begin().await.unwrap();
    let a = read(&mut first).await;
    let second = tokio::spawn({
        let (s, race) = (s.clone(), race.clone());
        async move {
            race.start();
            let mut tx = s.begin().await.unwrap();
            let a = read(&mut tx).await;
            let waited = race.first_committed();
            tx.save_address_attempts("192.0.2.7", &a).await.unwrap();
            tx.commit().await.unwrap();
            race.finish();
            waited
        }
    });
    race.until_second_waits(&s).await;
    first.save_address_attempts("192.0.2.7", &a).await.unwrap();
    race.commit_first(first).await;
    assert!(
        second.await.unwrap(),
        "the second read after the first's commit"
    );
    let mut tx = s.begin().await.unwrap();
    let a = tx.address_attempts("192.0.2.7").await.unwrap().unwrap();
    assert_eq!(a.attempts, 2);
}

async fn two_transactions_never_take_the_same_crl_number(place: Place) {
    let s = place.open().await.unwrap();
    let race = std::sync::Arc::new(Race::default());
    let mut first = s.begin().await.unwrap();
    assert_eq!(first.next_crl_number().await.unwrap(), 1);
    let second = tokio::spawn({
        let (s, race) = (s.clone(), race.clone());
        async move {
            race.start();
            let mut tx = s.begin().await.unwrap();
            let n = tx.next_crl_number().await.unwrap();
            let waited = race.first_committed();
            tx.commit().await.unwrap();
            race.finish();
            (n, waited)
        }
    });
    race.until_second_waits(&s).await;
    race.commit_first(first).await;
    let (n, waited) = second.await.unwrap();
    assert!(
        waited,
        "the second took its number after the first's commit"
    );
    assert_eq!(n, 2);
    // A rolled-back transaction gives its number back.
    let mut tx = s.begin().await.unwrap();
    assert_eq!(tx.next_crl_number().await.unwrap(), 3);
    drop(tx);
    let mut tx = s.begin().await.unwrap();
    assert_eq!(tx.next_crl_number().await.unwrap(), 3);
}

async fn revocation_log_ids_become_visible_in_their_order(place: Place) {
    let s = place.open().await.unwrap();
    let (_, u) = company_and_hanako(&s).await;
    let now = datetime!(2026-01-01 00:00 UTC);
    let (x, y) = (
        Serial::from_hex("0a01").unwrap(),
        Serial::from_hex("0a02").unwrap(),
    );
    let mut tx = s.begin().await.unwrap();
    for serial in [&x, &y] {
        tx.insert_cert(&new_cert(u, serial)).await.unwrap();
    }
    tx.commit().await.unwrap();
    // A revokes X and stays open; B revokes Y meanwhile.
    let race = std::sync::Arc::new(Race::default());
    let mut a = s.begin().await.unwrap();
    assert!(a.revoke_cert(&x, now, 1).await.unwrap());
    let b = tokio::spawn({
        let (s, race) = (s.clone(), race.clone());
        let y = y.clone();
        async move {
            race.start();
            let mut b = s.begin().await.unwrap();
            assert!(b.revoke_cert(&y, now, 1).await.unwrap());
            b.commit().await.unwrap();
            race.finish();
        }
    });
    // B has committed, or waits for A.
    race.until_second_waits(&s).await;
    // A watcher now must not see Y ahead of X: it would go past X's id.
    assert!(
        s.revocations_after(0).await.unwrap().is_empty(),
        "B committed before A, with a later id"
    );
    race.commit_first(a).await;
    b.await.unwrap();
    let seen: Vec<(i64, Serial)> = s
        .revocations_after(0)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.log_id, r.serial))
        .collect();
    assert_eq!(seen, vec![(1, x), (2, y)]);
    assert_eq!(s.revocation_log_head().await.unwrap(), 2);
}

async fn appends_at_once_keep_one_chain(place: Place) {
    let s = place.open().await.unwrap();
    let (c, _) = company_and_hanako(&s).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut tx = s.begin().await.unwrap();
            let op = Operation::ALL[i];
            tx.audit(&entry(c, op)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            tx.audit(&entry(c, op)).await.unwrap();
            tx.commit().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(s.verify_audit().await.unwrap(), None);
    assert_eq!(s.audit_count(c, &AuditFilter::default()).await.unwrap(), 16);
}

async fn a_notice_is_claimed_once(place: Place) {
    let s = place.open().await.unwrap();
    let (_, u) = company_and_hanako(&s).await;
    let now = datetime!(2026-01-01 00:00 UTC);
    let mut tx = s.begin().await.unwrap();
    assert!(
        tx.add_notice(u, "k", "1", "件名", "本文", now)
            .await
            .unwrap()
    );
    assert!(
        !tx.add_notice(u, "k", "1", "件名", "本文", now)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    let id = s.pending_notices(10).await.unwrap()[0].id;
    let claims: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.claim_notice(id, now).await.unwrap() })
        })
        .collect();
    let mut won = 0;
    for c in claims {
        won += usize::from(c.await.unwrap());
    }
    assert_eq!(won, 1);
    assert!(s.pending_notices(10).await.unwrap().is_empty());
    s.release_notice(id).await.unwrap();
    assert_eq!(s.pending_notices(10).await.unwrap().len(), 1);
}

/// The queries whose SQL differs most between the backends, checked for
/// the same answers.
async fn queries_behave_the_same_on_both(place: Place) {
    let s = place.open().await.unwrap();
    let (c, u) = company_and_hanako(&s).await;
    let now = datetime!(2026-01-01 00:00 UTC);
    let mut tx = s.begin().await.unwrap();
    let master = LoginId::parse("tarodt01").unwrap();
    tx.insert_user(
        &NewUser {
            role: Role::Master,
            email: "taro@example.jp",
            ..hanako(c, &master)
        },
        now,
    )
    .await
    .unwrap();
    assert_eq!(tx.user_counts(c).await.unwrap(), (2, 1));
    assert!(tx.login_id_taken(&master).await.unwrap());
    tx.reset_passwords(u, "a", "b", true).await.unwrap();
    tx.set_password_hash(u, true, "c").await.unwrap();
    let counters = SecurityCounters {
        login_stopped: true,
        login_locked_until: Some(now),
        ..SecurityCounters::default()
    };
    tx.save_counters(u, &counters).await.unwrap();
    tx.set_company_contact(
        c,
        &CompanyContact {
            name: "担当".into(),
            phone: "011".into(),
            email: "c@example.jp".into(),
        },
    )
    .await
    .unwrap();
    tx.audit(&entry(c, Operation::Login)).await.unwrap();
    tx.audit(&AuditEntry {
        result: Outcome::Failed,
        ..entry(c, Operation::Login)
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let me = s.user(u).await.unwrap().unwrap();
    assert!(me.must_change_login && !me.must_change_confirm);
    assert_eq!(me.confirm_hash, "c");
    assert_eq!(me.counters, counters);
    assert_eq!(s.company_contact(c).await.unwrap().phone, "011");
    let failed = AuditFilter {
        result: Some("失敗".into()),
        ..AuditFilter::default()
    };
    assert_eq!(s.audit_count(c, &failed).await.unwrap(), 1);
    assert_eq!(s.audit_page(c, &failed, 10, 0, 1).await.unwrap().len(), 1);
    let mut n = 0;
    s.audit_for_each(Some(c), |_| n += 1).await.unwrap();
    assert_eq!(n, 2);
    let summaries = s.user_summaries(c).await.unwrap();
    let order: Vec<&str> = summaries.iter().map(|u| u.login_id.as_str()).collect();
    assert_eq!(order, ["hanakodt", "tarodt01"]);
    assert_eq!(s.companies().await.unwrap()[0].users, 2);
    assert_eq!(
        s.shared_secret("k", b"first").await.unwrap(),
        s.shared_secret("k", b"second").await.unwrap()
    );
    let counts = s.table_counts().await.unwrap();
    assert!(counts.contains(&("users", 2)));
}

#[test]
fn database_urls_are_checked_and_shown_without_their_password() {
    let url = DatabaseUrl::parse("postgres://shomei:s3cret@db.example:5432/shomei").unwrap();
    assert_eq!(
        url.to_string(),
        "postgres://shomei:***@db.example:5432/shomei"
    );
    assert!(!format!("{url:?}").contains("s3cret"));
    let url =
        DatabaseUrl::parse("postgresql://db.example/shomei?user=a&password=s3cret&sslmode=disable")
            .unwrap();
    assert_eq!(
        url.to_string(),
        "postgresql://db.example/shomei?user=a&password=***&sslmode=disable"
    );
    for bad in [
        "",
        "sqlite:shomei.db",
        "mysql://a:b@c/d",
        "postgres://a:b@c:notaport/d",
    ] {
        match DatabaseUrl::parse(bad) {
            Err(StoreError::BadUrl(m)) => assert!(!m.contains(":b@"), "{m}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
}

async fn sessions_are_bounded_per_user_and_in_all_and_a_pending_screen_is_taken_once(place: Place) {
    let s = place.open().await.unwrap();
    let now = datetime!(2026-01-01 00:00 UTC);
    let mut tx = s.begin().await.unwrap();
    let c = tx
        .insert_company("株式会社ほくぎん商事", Service::BusinessIb, now)
        .await
        .unwrap();
    let (a, b) = (
        LoginId::parse("hanakodt").unwrap(),
        LoginId::parse("tarodt").unwrap(),
    );
    let ua = tx.insert_user(&hanako(c, &a), now).await.unwrap();
    let ub = tx.insert_user(&hanako(c, &b), now).await.unwrap();
    tx.commit().await.unwrap();
    let session = |id: &str, user: UserId, secs: i64| SessionRow {
        id_hash: id.into(),
        user_id: user,
        csrf: "c".into(),
        cert_serial: None,
        last_seen: now + time::Duration::seconds(secs),
        pending: None,
        done: None,
    };
    assert!(s.create_session(&session("a1", ua, 1), 2, 3).await.unwrap());
    assert!(s.create_session(&session("a2", ua, 2), 2, 3).await.unwrap());
    // A third of hanakodt's makes room by ending her oldest only.
    assert!(s.create_session(&session("a3", ua, 3), 2, 3).await.unwrap());
    assert!(s.session("a1").await.unwrap().is_none());
    assert!(s.create_session(&session("b1", ub, 4), 2, 3).await.unwrap());
    assert_eq!(s.session_count().await.unwrap(), 3);
    // All places taken: one who holds a session makes room with their own
    // oldest; nobody else's ends.
    assert!(s.create_session(&session("b2", ub, 5), 2, 3).await.unwrap());
    assert!(s.session("b1").await.unwrap().is_none());
    assert_eq!(s.session_count().await.unwrap(), 3);
    let p = PendingRow {
        token: "t".into(),
        user_id: 9,
        login_id: "ichirodt".into(),
        name: "データ朗".into(),
        state: "発行済".into(),
        expiry: Some(1),
        serial: "0a".into(),
    };
    s.set_session_pending("a2", Some(&p)).await.unwrap();
    assert_eq!(
        s.session("a2").await.unwrap().unwrap().pending,
        Some(p.clone())
    );
    assert_eq!(
        s.take_session_pending("a2", |t| t == "wrong")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.take_session_pending("a2", |t| t == "t").await.unwrap(),
        Some(p)
    );
    assert_eq!(
        s.take_session_pending("a2", |t| t == "t").await.unwrap(),
        None,
        "once"
    );
    let d = DoneRow {
        login_id: "ichirodt".into(),
        name: "データ朗".into(),
        state: "失効済".into(),
        serial: "0a".into(),
    };
    s.set_session_done("a2", Some(&d)).await.unwrap();
    assert_eq!(s.session("a2").await.unwrap().unwrap().done, Some(d));
    s.touch_session("a2", now + time::Duration::seconds(100))
        .await
        .unwrap();
    let mut ended = s
        .expire_sessions(now + time::Duration::seconds(50))
        .await
        .unwrap();
    ended.sort();
    assert_eq!(ended, vec![ua, ub], "a3 and b2 were idle; a2 was touched");
    assert!(s.session("a2").await.unwrap().is_some());
}

async fn a_lease_has_one_holder_until_it_expires_then_the_next_takes_it_with_a_new_epoch(
    place: Place,
) {
    let s = place.open().await.unwrap();
    let t0 = datetime!(2026-01-01 00:00 UTC);
    let ttl = time::Duration::seconds(90);
    assert_eq!(s.take_lease("upkeep", "a", t0, ttl).await.unwrap(), Some(1));
    assert_eq!(s.take_lease("upkeep", "b", t0, ttl).await.unwrap(), None);
    let later = t0 + time::Duration::seconds(60);
    assert_eq!(
        s.take_lease("upkeep", "a", later, ttl).await.unwrap(),
        Some(1),
        "renewed"
    );
    assert_eq!(
        s.take_lease("upkeep", "b", later + ttl, ttl).await.unwrap(),
        Some(2)
    );
    assert_eq!(
        s.take_lease("upkeep", "a", later + ttl, ttl).await.unwrap(),
        None
    );
    assert_eq!(
        s.take_lease("other", "a", t0, ttl).await.unwrap(),
        Some(1),
        "per name"
    );
}

async fn a_crl_number_is_published_only_upward_and_only_with_every_revocation_seen(place: Place) {
    let s = place.open().await.unwrap();
    let p1 = CrlScope::Partition(1);
    let p2 = CrlScope::Partition(2);
    let mut tx = s.begin().await.unwrap();
    let a = tx.next_crl_number().await.unwrap();
    let b = tx.next_crl_number().await.unwrap();
    assert!(b > a, "numbers are taken in order");
    // B (the higher) publishes first; A, slower, must not publish after it.
    assert!(tx.publish_crl(p1, b, 0, None).await.unwrap());
    assert!(
        !tx.publish_crl(p1, a, 0, None).await.unwrap(),
        "never a lower one"
    );
    assert!(
        !tx.publish_crl(p1, b, 0, None).await.unwrap(),
        "never the same one twice"
    );
    assert!(
        tx.publish_crl(p2, a, 0, None).await.unwrap(),
        "numbers go up per scope: another partition may publish A"
    );
    tx.commit().await.unwrap();
    // A revocation committed after what a server has seen keeps that
    // server's CRL of the revoked certificate's scope from being published,
    // whatever its number; other scopes' CRLs are not held up.
    let (_, u) = company_and_hanako(&s).await;
    let serial = Serial::from_hex("0a").unwrap();
    let mut tx = s.begin().await.unwrap();
    let mut cert = new_cert(u, &serial);
    cert.crl_scope = p1;
    tx.insert_cert(&cert).await.unwrap();
    let last = tx.next_crl_numbers(3).await.unwrap();
    assert!(tx.revoke_cert(&serial, cert.not_before, 1).await.unwrap());
    tx.commit().await.unwrap();
    let head = s.revocation_log_head().await.unwrap();
    let mut tx = s.begin().await.unwrap();
    let p3 = CrlScope::Partition(3);
    assert!(tx.publish_crl(p3, last, head, None).await.unwrap());
    // Several scopes at once, each decided on its own: P1 has a revocation
    // after what was seen, P2 may publish, P3 already has this number.
    assert_eq!(
        tx.publish_crls(&[(p1, last), (p2, last - 1), (p3, last)], head - 1, None)
            .await
            .unwrap(),
        vec![false, true, false],
        "the revocation is not in partition 2"
    );
    assert!(tx.publish_crl(p1, last, head, None).await.unwrap());
    // An unknown serial's revocation (re-imported) is in the undivided CRL
    // unless it says otherwise.
    assert!(
        tx.insert_reimported(&Serial::from_hex("0b").unwrap(), cert.not_before, None, p2)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    let head2 = s.revocation_log_head().await.unwrap();
    let mut tx = s.begin().await.unwrap();
    let n = tx.next_crl_number().await.unwrap();
    assert!(
        tx.publish_crl(CrlScope::Undivided, n, head, None)
            .await
            .unwrap()
    );
    let n = tx.next_crl_number().await.unwrap();
    assert!(!tx.publish_crl(p2, n, head, None).await.unwrap());
    assert!(tx.publish_crl(p2, n, head2, None).await.unwrap());
    tx.commit().await.unwrap();
    assert_eq!(
        s.reimported_revocations().await.unwrap()[0].3,
        p2,
        "its partition is kept"
    );
}

async fn scheduled_crls_move_their_scope_horizon_and_scopes_in_use_follow_certificates(
    place: Place,
) {
    let s = place.open().await.unwrap();
    let t = datetime!(2026-06-01 00:00 UTC);
    let mut tx = s.begin().await.unwrap();
    assert!(
        tx.crl_horizons()
            .await
            .unwrap()
            .iter()
            .all(|(_, h)| *h == 0)
    );
    assert_eq!(tx.crl_scopes_in_use(t).await.unwrap(), (None, false));
    let n = tx.next_crl_numbers(2).await.unwrap();
    let p = CrlScope::Partition(5);
    assert!(tx.publish_crl(p, n - 1, 0, Some(t)).await.unwrap());
    assert!(
        tx.publish_crl(p, n, 0, None).await.unwrap(),
        "an unscheduled CRL"
    );
    let horizons: std::collections::HashMap<_, _> =
        tx.crl_horizons().await.unwrap().into_iter().collect();
    assert_eq!(
        horizons[&p],
        t.unix_timestamp(),
        "the scheduled CRL's thisUpdate, kept by the unscheduled one after it"
    );
    tx.commit().await.unwrap();
    let (_, u) = company_and_hanako(&s).await;
    let mut tx = s.begin().await.unwrap();
    for (hex, scope, until) in [
        ("01", CrlScope::Partition(9), t + time::Duration::days(1)),
        ("02", CrlScope::Partition(40), t - time::Duration::days(1)),
        ("03", CrlScope::Undivided, t + time::Duration::days(2)),
    ] {
        let serial = Serial::from_hex(hex).unwrap();
        let mut c = new_cert(u, &serial);
        c.crl_scope = scope;
        c.not_after = until;
        tx.insert_cert(&c).await.unwrap();
    }
    assert_eq!(
        tx.crl_scopes_in_use(t).await.unwrap(),
        (Some(9), true),
        "partition 40's only certificate has expired"
    );
    assert_eq!(
        tx.crl_scopes_in_use(t + time::Duration::days(3))
            .await
            .unwrap(),
        (None, false)
    );
    tx.commit().await.unwrap();
}

async fn a_renewal_writes_certificate_revocation_and_history_together_or_not_at_all(place: Place) {
    let s = place.open().await.unwrap();
    let (c, u) = company_and_hanako(&s).await;
    let now = datetime!(2026-01-01 00:00 UTC);
    let (old, new, again) = (
        Serial::from_hex("0b01").unwrap(),
        Serial::from_hex("0b02").unwrap(),
        Serial::from_hex("0b03").unwrap(),
    );
    let mut tx = s.begin().await.unwrap();
    tx.insert_cert(&new_cert(u, &old)).await.unwrap();
    tx.audit(&entry(c, Operation::CertificateIssue))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let r = s.renewal(&old).await.unwrap().expect("the renewal's read");
    assert!(r.is_latest);
    assert_eq!(r.company_name, "株式会社テスト");
    assert_eq!(r.user.id, u);
    assert!(
        s.supersede(
            &new_cert(u, &new),
            &old,
            now,
            4,
            &entry(c, Operation::CertificateRenewal)
        )
        .await
        .unwrap()
    );
    assert!(s.cert_by_serial(&new).await.unwrap().is_some());
    let logged: Vec<Serial> = s
        .revocations_after(0)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.serial)
        .collect();
    assert_eq!(logged, vec![old.clone()]);
    assert!(!s.renewal(&old).await.unwrap().unwrap().is_latest);
    assert_eq!(s.audit_count(c, &AuditFilter::default()).await.unwrap(), 2);
    assert_eq!(s.verify_audit().await.unwrap(), None);

    // The old certificate is already revoked: refused, and nothing written.
    assert!(
        !s.supersede(
            &new_cert(u, &again),
            &old,
            now,
            4,
            &entry(c, Operation::CertificateRenewal)
        )
        .await
        .unwrap()
    );
    assert!(s.cert_by_serial(&again).await.unwrap().is_none());
    assert_eq!(s.revocations_after(0).await.unwrap().len(), 1);
    assert_eq!(s.audit_count(c, &AuditFilter::default()).await.unwrap(), 2);
    // The chain goes on from the renewal's row.
    let mut tx = s.begin().await.unwrap();
    tx.audit(&entry(c, Operation::Login)).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(s.verify_audit().await.unwrap(), None);
    assert_eq!(s.audit_count(c, &AuditFilter::default()).await.unwrap(), 3);
}

async fn a_failure_after_the_history_row_is_still_refused_at_commit(place: Place) {
    let s = place.open().await.unwrap();
    let (c, _) = company_and_hanako(&s).await;
    let now = datetime!(2026-01-01 00:00 UTC);
    let login = LoginId::parse("hanakodt").unwrap();
    // Positive control: a transaction ending with its 操作履歴 row commits.
    let mut tx = s.begin().await.unwrap();
    tx.audit(&entry(c, Operation::UserCreate)).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(s.audit_count(c, &AuditFilter::default()).await.unwrap(), 1);
    // The row succeeded, then a statement failed (a duplicate login ID).
    let mut tx = s.begin().await.unwrap();
    tx.audit(&entry(c, Operation::UserUpdate)).await.unwrap();
    assert!(tx.insert_user(&hanako(c, &login), now).await.is_err());
    if matches!(place, Place::Pg(_)) {
        // Postgres aborted the transaction: refused, never reported done.
        assert!(tx.commit().await.is_err());
        assert_eq!(s.audit_count(c, &AuditFilter::default()).await.unwrap(), 1);
    } else {
        // SQLite undid the failed statement alone.
        tx.commit().await.unwrap();
        assert_eq!(s.audit_count(c, &AuditFilter::default()).await.unwrap(), 2);
    }
    assert_eq!(s.verify_audit().await.unwrap(), None);
}

async fn a_server_is_not_woken_by_its_own_revocation_notices(place: Place) {
    let a = place.open().await.unwrap();
    let Some(mut listener) = a.revocation_listener().await.unwrap() else {
        // SQLite: no notices, the watch polls.
        assert!(matches!(place, Place::Sqlite(_)));
        return;
    };
    let b = place.open().await.unwrap();
    let (c, u) = company_and_hanako(&a).await;
    let now = datetime!(2026-01-01 00:00 UTC);
    let [x, y, z, renewed] = ["0c01", "0c02", "0c03", "0c04"].map(|h| Serial::from_hex(h).unwrap());
    let mut tx = a.begin().await.unwrap();
    for serial in [&x, &y, &z] {
        tx.insert_cert(&new_cert(u, serial)).await.unwrap();
    }
    tx.commit().await.unwrap();
    // A revokes X, then B revokes Y: A's listener skips A's own notice
    // and wakes for B's (notices arrive in commit order).
    for (store, serial) in [(&a, &x), (&b, &y)] {
        let mut tx = store.begin().await.unwrap();
        assert!(tx.revoke_cert(serial, now, 1).await.unwrap());
        tx.commit().await.unwrap();
    }
    let wait = Duration::from_secs(30);
    let first = tokio::time::timeout(wait, listener.next()).await;
    assert_eq!(
        first.expect("A is told of B's revocation").unwrap(),
        1,
        "one own notice skipped"
    );

    // A renewal's notice is sent after its commit (see `send_notices`):
    // B's listener wakes for it; A's skips it, and wakes for B's next.
    let mut b_listener = b.revocation_listener().await.unwrap().unwrap();
    assert!(
        a.supersede(
            &new_cert(u, &renewed),
            &z,
            now,
            4,
            &entry(c, Operation::CertificateRenewal)
        )
        .await
        .unwrap()
    );
    let told = tokio::time::timeout(wait, b_listener.next()).await;
    assert_eq!(told.expect("B is told of A's renewal").unwrap(), 0);
    let mut tx = b.begin().await.unwrap();
    assert!(tx.revoke_cert(&renewed, now, 1).await.unwrap());
    tx.commit().await.unwrap();
    let woken = tokio::time::timeout(wait, listener.next()).await;
    assert_eq!(woken.expect("A is told of B's revocation").unwrap(), 1);
}

async fn the_revocation_listener_keeps_its_connection_out_of_the_pool(place: Place) {
    let Place::Pg(url) = &place else {
        return; // SQLite: no listener.
    };
    // A pool of one: with the listener open, the work still gets it.
    let s = Store::open_postgres_with(url, 1).await.unwrap();
    let wait = Duration::from_secs(10);
    let _listener = s.revocation_listener().await.unwrap().unwrap();
    let read = tokio::time::timeout(wait, s.company_count()).await;
    assert_eq!(read.expect("the pool's connection is free").unwrap(), 0);
    // Positive control: the pool's one connection held, a read waits.
    let mut tx = s.begin().await.unwrap();
    tx.insert_company(
        "株式会社テスト",
        Service::BusinessIb,
        datetime!(2026-01-01 00:00 UTC),
    )
    .await
    .unwrap();
    let blocked = tokio::time::timeout(Duration::from_millis(200), s.company_count()).await;
    assert!(blocked.is_err(), "the one connection is the transaction's");
    tx.commit().await.unwrap();
    let read = tokio::time::timeout(wait, s.company_count()).await;
    assert_eq!(read.expect("given back at commit").unwrap(), 1);
}

async fn a_renewal_that_read_before_a_revocation_committed_writes_nothing(place: Place) {
    let s = place.open().await.unwrap();
    let (c, u) = company_and_hanako(&s).await;
    let now = datetime!(2026-01-01 00:00 UTC);
    let (other, old, new) = (
        Serial::from_hex("0d00").unwrap(),
        Serial::from_hex("0d01").unwrap(),
        Serial::from_hex("0d02").unwrap(),
    );
    let mut tx = s.begin().await.unwrap();
    tx.insert_cert(&new_cert(u, &other)).await.unwrap();
    tx.insert_cert(&new_cert(u, &old)).await.unwrap();
    tx.commit().await.unwrap();
    // A's renewal read the certificate unrevoked.
    assert!(
        s.renewal(&old)
            .await
            .unwrap()
            .unwrap()
            .cert
            .revoked_at
            .is_none()
    );
    // B, as a user's deletion does, locks the user and revokes the user's
    // certificates one by one, holding the revocation log's head after the
    // first; A's write starts meanwhile (on Postgres it must wait for the
    // user's lock, not take the certificate's and then wait for the head:
    // B would wait for A, a deadlock; SQLite's A waits to begin).
    let race = std::sync::Arc::new(Race::default());
    let mut b = s.begin().await.unwrap();
    assert!(b.user(u).await.unwrap().is_some());
    assert!(b.revoke_cert(&other, now, 1).await.unwrap());
    let a = tokio::spawn({
        let (s, race) = (s.clone(), race.clone());
        let (old, new) = (old.clone(), new.clone());
        async move {
            race.start();
            let renewed = s
                .supersede(
                    &new_cert(u, &new),
                    &old,
                    now,
                    4,
                    &entry(c, Operation::CertificateRenewal),
                )
                .await
                .unwrap();
            race.finish();
            (renewed, race.first_committed())
        }
    });
    race.until_second_waits(&s).await;
    assert!(b.revoke_cert(&old, now, 1).await.unwrap());
    race.commit_first(b).await;
    let (renewed, waited) = a.await.unwrap();
    assert!(waited, "the renewal's write waited for B");
    assert!(!renewed, "the renewal must not go through");
    assert!(s.cert_by_serial(&new).await.unwrap().is_none());
    assert_eq!(s.revocations_after(0).await.unwrap().len(), 2);
    assert_eq!(s.audit_count(c, &AuditFilter::default()).await.unwrap(), 0);
}

/// README: the SQLite database is in WAL mode. The mode is kept in the
/// file, so a connection of its own, opened with no options, finds it.
#[tokio::test]
async fn the_sqlite_database_is_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shomei.db");
    let _s = Store::open(&path).await.unwrap();
    let mut own = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
        "sqlite:{}",
        path.display()
    ))
    .await
    .unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut own)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}
