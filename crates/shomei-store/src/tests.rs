use shomei_core::{Role, Service};
use time::macros::datetime;

use super::*;

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("shomei.db")).await.unwrap();
    (dir, s)
}

fn entry<'a>(company: CompanyId, op: &'a str) -> AuditEntry<'a> {
    AuditEntry {
        at: datetime!(2026-01-01 00:00 UTC),
        company_id: Some(company),
        actor_user_id: None,
        actor_login_id: "hanakodt",
        operation: op,
        target_login_id: "",
        result: "成功",
        detail: "",
        client_addr: "127.0.0.1",
    }
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

#[tokio::test]
async fn a_rolled_back_transaction_leaves_neither_change_nor_history() {
    let (_d, s) = store().await;
    let now = datetime!(2026-01-01 00:00 UTC);
    let mut tx = s.begin().await.unwrap();
    let c = tx
        .insert_company("株式会社テスト", Service::BusinessIb, now)
        .await
        .unwrap();
    tx.audit(&entry(c, "企業登録")).await.unwrap();
    drop(tx);
    assert_eq!(s.company_count().await.unwrap(), 0);
    assert!(s.audit_for_company(c, 10, 0).await.unwrap().is_empty());
}

#[tokio::test]
async fn revoking_twice_revokes_once_and_login_ids_are_unique() {
    let (_d, s) = store().await;
    let now = datetime!(2026-01-01 00:00 UTC);
    let mut tx = s.begin().await.unwrap();
    let c = tx
        .insert_company("株式会社テスト", Service::BusinessIb, now)
        .await
        .unwrap();
    let login = LoginId::parse("hanakodt").unwrap();
    let nu = hanako(c, &login);
    let u = tx.insert_user(&nu, now).await.unwrap();
    assert!(
        tx.insert_user(&nu, now).await.is_err(),
        "duplicate login ID refused"
    );
    tx.commit().await.unwrap();
    let mut tx = s.begin().await.unwrap();
    let serial = Serial::from_hex("4102").unwrap();
    tx.insert_cert(&NewCert {
        user_id: u,
        serial: &serial,
        not_before: now,
        not_after: now,
        der: b"d",
        issued_at: now,
    })
    .await
    .unwrap();
    assert!(tx.revoke_cert(&serial, now, 5).await.unwrap());
    assert!(!tx.revoke_cert(&serial, now, 5).await.unwrap());
    tx.commit().await.unwrap();
    let mut revoked = Vec::new();
    let n = s
        .for_each_revoked(|serial, at, reason| revoked.push((serial.to_vec(), at, reason)))
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(revoked, vec![(vec![0x41, 0x02], now.unix_timestamp(), 5)]);
}

#[tokio::test]
async fn the_revocation_set_loads_every_row_across_chunks_and_halves() {
    let (_d, s) = store().await;
    // 2.5 chunks of revoked rows and some unrevoked ones, written directly.
    let n = 250_003i64;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO companies(id, name, service, created_at) VALUES (1, 'c', 'business_ib', 0);
         INSERT INTO users(id, company_id, login_id, name, role, email, login_hash, confirm_hash, created_at)
             VALUES (1, 1, 'benchuser', 'b', 'general', '', 'x', 'x', 0);
         WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < {total})
         INSERT INTO certificates(user_id, serial, not_before, not_after, der, issued_at, revoked_at, revocation_reason)
         SELECT 1, printf('%032x', i * 7919 + 1048576), 0, 0, x'', 0,
                CASE WHEN i <= {n} THEN 1700000000 + i END,
                CASE WHEN i <= {n} THEN i % 3 END
         FROM k;",
        total = n + 1000
    )))
    .execute(&s.write)
    .await
    .unwrap();
    let mut seen = std::collections::HashMap::new();
    let total = s
        .for_each_revoked(|serial, at, reason| {
            assert!(
                seen.insert(serial.to_vec(), (at, reason)).is_none(),
                "twice"
            );
        })
        .await
        .unwrap();
    assert_eq!(total, n as usize);
    assert_eq!(seen.len(), n as usize);
    for i in [1i64, 2, 100_000, 100_001, 125_002, 200_000, n] {
        let serial = hex::decode(format!("{:032x}", i * 7919 + 1_048_576)).unwrap();
        assert_eq!(seen[&serial], (1_700_000_000 + i, (i % 3) as u8), "row {i}");
    }
}

#[tokio::test]
async fn crl_numbers_increase() {
    let (_d, s) = store().await;
    let mut tx = s.begin().await.unwrap();
    let a = tx.next_crl_number().await.unwrap();
    let b = tx.next_crl_number().await.unwrap();
    tx.commit().await.unwrap();
    assert!(b > a);
}

#[tokio::test]
async fn the_audit_chain_detects_edits_deletions_and_reordering() {
    let (d, s) = store().await;
    let now = datetime!(2026-01-01 00:00 UTC);
    let mut tx = s.begin().await.unwrap();
    let c = tx
        .insert_company("株式会社テスト", Service::BusinessIb, now)
        .await
        .unwrap();
    for op in ["ログイン", "証明書失効", "ログアウト", "ログイン"] {
        tx.audit(&entry(c, op)).await.unwrap();
    }
    tx.commit().await.unwrap();
    assert_eq!(s.verify_audit().await.unwrap(), None);

    let raw =
        sqlx::SqlitePool::connect(&format!("sqlite:{}", d.path().join("shomei.db").display()))
            .await
            .unwrap();
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM audit_log ORDER BY id")
        .fetch_all(&raw)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET result = '失敗' WHERE id = ?")
        .bind(ids[1])
        .execute(&raw)
        .await
        .unwrap();
    assert_eq!(s.verify_audit().await.unwrap(), Some(ids[1]), "edit");
    sqlx::query("UPDATE audit_log SET result = '成功' WHERE id = ?")
        .bind(ids[1])
        .execute(&raw)
        .await
        .unwrap();
    assert_eq!(s.verify_audit().await.unwrap(), None);
    sqlx::query("UPDATE audit_log SET id = 1000 WHERE id = ?")
        .bind(ids[0])
        .execute(&raw)
        .await
        .unwrap();
    assert_eq!(s.verify_audit().await.unwrap(), Some(ids[1]), "reorder");
    sqlx::query("UPDATE audit_log SET id = ? WHERE id = 1000")
        .bind(ids[0])
        .execute(&raw)
        .await
        .unwrap();
    sqlx::query("DELETE FROM audit_log WHERE id = ?")
        .bind(ids[2])
        .execute(&raw)
        .await
        .unwrap();
    assert_eq!(s.verify_audit().await.unwrap(), Some(ids[3]), "deletion");
}

#[tokio::test]
async fn sessions_are_bounded_per_user_and_in_all_and_a_pending_screen_is_taken_once() {
    let (_d, s) = store().await;
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
    // A user who is deleted takes their sessions along.
    let mut tx = s.begin().await.unwrap();
    let c3 = tx
        .insert_company("有限会社ほっと物産", Service::HottokunWebJr, now)
        .await
        .unwrap();
    let x = LoginId::parse("hottojr01").unwrap();
    let ux = tx.insert_user(&hanako(c3, &x), now).await.unwrap();
    tx.commit().await.unwrap();
    // A third user while a3's place is free again.
    assert!(
        s.create_session(&session("x1", ux, 200), 2, 3)
            .await
            .unwrap()
    );
    assert!(s.session("a2").await.unwrap().is_some());
}

#[tokio::test]
async fn a_lease_has_one_holder_until_it_expires_then_the_next_takes_it_with_a_new_epoch() {
    let (_d, s) = store().await;
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

#[tokio::test]
async fn a_crl_number_is_published_only_upward_and_only_with_every_revocation_seen() {
    let (_d, s) = store().await;
    let mut tx = s.begin().await.unwrap();
    let a = tx.next_crl_number().await.unwrap();
    let b = tx.next_crl_number().await.unwrap();
    assert!(b > a, "numbers are taken in order");
    // B (the higher) publishes first; A, slower, must not publish after it.
    assert!(tx.publish_crl_number(b, 0).await.unwrap());
    assert!(
        !tx.publish_crl_number(a, 0).await.unwrap(),
        "never a lower one"
    );
    assert!(
        !tx.publish_crl_number(b, 0).await.unwrap(),
        "never the same one twice"
    );
    tx.commit().await.unwrap();
    // A revocation committed after what a server has seen keeps that
    // server's CRL from being published, whatever its number.
    let mut tx = s.begin().await.unwrap();
    let c = tx.next_crl_number().await.unwrap();
    sqlx::query("INSERT INTO revocation_log (serial) VALUES ('0a')")
        .execute(tx.conn())
        .await
        .unwrap();
    let head = s_head(&mut tx).await;
    assert!(!tx.publish_crl_number(c, head - 1).await.unwrap());
    assert!(tx.publish_crl_number(c, head).await.unwrap());
    tx.commit().await.unwrap();
}

async fn s_head(tx: &mut Tx) -> i64 {
    sqlx::query_scalar("SELECT max(id) FROM revocation_log")
        .fetch_one(tx.conn())
        .await
        .unwrap()
}
