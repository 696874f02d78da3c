//! 操作履歴照会 (BSSK011): filters, paging, newest first, 一般 sees only their
//! own rows, never another company's, and the CSV in UTF-8 with BOM or
//! Shift_JIS.

use shomei_core::{CompanyId, Operation, Outcome};
use shomei_store::AuditEntry;

use crate::testkit::{Kit, LOGIN_PW, StoreOf};

/// The seeded rows' operations: ones neither the demo data nor these tests
/// write otherwise, so that filtering by them finds the seeded rows alone.
const TEST_OP: Operation = Operation::CompanyServiceChange;
const OTHER_OP: Operation = Operation::Unlock;

/// 120 rows for the demo company by hanakodt (alternating results) and one
/// for the other company, written as use cases write them.
async fn seed(kit: &Kit) {
    let mut tx = kit.svc.store().begin().await.unwrap();
    let at = kit.svc.now() - time::Duration::days(3);
    for i in 0..120 {
        // One name with 髙 (Windows' Shift_JIS has it, JIS X 0208 does not)
        // and 𠮷 (outside every Shift_JIS).
        let detail = if i == 116 {
            format!("行{i:03} 𠮷田 髙橋")
        } else {
            format!("行{i:03}")
        };
        let e = AuditEntry::new(TEST_OP, at + time::Duration::seconds(i))
            .by_name(Some(CompanyId(1)), "hanakodt")
            .target("tarodt")
            .outcome(if i % 2 == 0 {
                Outcome::Succeeded
            } else {
                Outcome::Failed
            })
            .detail(&detail)
            .client("127.0.0.1");
        tx.audit(&e).await.unwrap();
    }
    let e = AuditEntry::new(OTHER_OP, at)
        .by_name(Some(CompanyId(2)), "hottojr01")
        .detail("他社の行")
        .client("127.0.0.1");
    tx.audit(&e).await.unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn an_administrator_filters_and_pages_the_companys_history() {
    let kit = Kit::start().await;
    seed(&kit).await;
    let b = kit.browser();
    b.login("hanakodt", LOGIN_PW).await;
    let bssk001 = b.get("/bssk001").await;
    assert!(bssk001.has("href=\"/bssk011\""));

    let p = b.get("/bssk011?op=契約サービス変更").await;
    assert_eq!(p.status, 200);
    for s in [
        "<h1>管理業務 操作履歴照会</h1>",
        "BSSK011",
        "照会条件",
        "操作履歴一覧",
        "120件中 1〜50件目を表示（1 / 3ページ）",
    ] {
        assert!(p.has(s), "{s}");
    }
    // Newest first.
    let first = p.body.find("行119").unwrap();
    let second = p.body.find("行118").unwrap();
    assert!(first < second);
    // Never another company's rows: not when asked for by name, not on the
    // unfiltered list's last page (where its date puts it), not in the CSV
    // of everything. The other company's master gets it at the same URLs
    // (the control: the row is there to be leaked).
    for (who, theirs) in [("hanakodt", false), ("hottojr01", true)] {
        let b = kit.browser();
        assert_eq!(b.login(who, LOGIN_PW).await.path(), "/top", "{who}");
        let named = b.get("/bssk011?op=ロック解除").await;
        assert_eq!(named.status, 200, "{who}");
        assert_eq!(named.has("他社の行"), theirs, "{who}: {}", named.body);
        assert_eq!(
            named.has("条件に該当する操作履歴はありません。"),
            !theirs,
            "{who}"
        );
        let last = b.get("/bssk011?page=99").await;
        assert_eq!(last.has("他社の行"), theirs, "{who}: {}", last.body);
        let csv = b
            .client
            .get(format!("{}/bssk011/csv", kit.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(csv.contains("他社の行"), theirs, "{who}: {csv}");
        assert_eq!(csv.contains("行119"), !theirs, "{who}: {csv}");
    }

    let last = b.get("/bssk011?op=契約サービス変更&page=3").await;
    assert!(
        last.has("120件中 101〜120件目を表示（3 / 3ページ）"),
        "{}",
        last.body
    );
    assert!(last.has("行000") && last.has("id=\"prev\"") && !last.has("id=\"next\""));
    let past = b.get("/bssk011?op=契約サービス変更&page=99").await;
    assert!(
        past.has("（3 / 3ページ）"),
        "a page past the end shows the last"
    );

    let failed = b.get("/bssk011?op=契約サービス変更&result=失敗").await;
    assert!(failed.has("60件中"));
    assert!(failed.has("行119") && !failed.has("行118"));

    let by_actor = b.get("/bssk011?op=契約サービス変更&actor=tarodt").await;
    assert!(
        by_actor.has("<h1>管理業務 操作履歴照会</h1>")
            && by_actor.has("条件に該当する操作履歴はありません。")
            && !by_actor.has("行119"),
        "{}",
        by_actor.body
    );
    let by_actor = b.get("/bssk011?op=契約サービス変更&actor=hanakodt").await;
    assert!(by_actor.has("120件中 1〜50件目を表示") && by_actor.has("行119"));

    // Bad input: a message, the unfiltered list, nothing else.
    let bad = b.get("/bssk011?from=2026-13-01").await;
    assert_eq!(bad.status, 200);
    assert!(bad.error().unwrap().contains("期間（開始日）"));
    let bad = b.get("/bssk011?from=2026-11-25&to=2026-11-01").await;
    assert!(bad.error().unwrap().contains("開始日は終了日以前"));

    // Period: the seeded rows are three days old.
    let today = kit
        .svc
        .now()
        .to_offset(time::UtcOffset::from_hms(9, 0, 0).unwrap())
        .date();
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let p = b
        .get(&format!(
            "/bssk011?op=契約サービス変更&from={}",
            today.format(fmt).unwrap()
        ))
        .await;
    assert!(p.has("条件に該当する操作履歴はありません。"));

    // CSV, UTF-8 with BOM; Shift_JIS on request.
    let csv = b
        .client
        .get(format!(
            "{}/bssk011/csv?op=契約サービス変更&result=成功",
            kit.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=UTF-8");
    let bytes = csv.bytes().await.unwrap();
    assert_eq!(&bytes[..3], &[0xef, 0xbb, 0xbf]);
    let text = std::str::from_utf8(&bytes[3..]).unwrap();
    assert!(text.starts_with("日時,操作者,操作,対象利用者,結果,詳細,接続元\r\n"));
    assert_eq!(text.lines().count(), 61);
    assert!(text.contains(",hanakodt,契約サービス変更,tarodt,成功,行118,127.0.0.1"));
    let sjis = b
        .client
        .get(format!(
            "{}/bssk011/csv?op=契約サービス変更&enc=sjis",
            kit.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        sjis.headers()["content-type"],
        "text/csv; charset=Shift_JIS"
    );
    let bytes = sjis.bytes().await.unwrap();
    // 日時 in Shift_JIS.
    assert_eq!(&bytes[..4], &[0x93, 0xfa, 0x8e, 0x9e]);
    // The whole file decodes, and says what the UTF-8 file says, row for
    // row — but for 𠮷, which Shift_JIS cannot write: it becomes its
    // numeric character reference, so the name is still readable and no
    // field shifts. 髙 (in Windows' Shift_JIS) stays itself.
    let (decoded, _, had_errors) = encoding_rs::SHIFT_JIS.decode(&bytes);
    assert!(!had_errors);
    let utf8 = b
        .client
        .get(format!("{}/bssk011/csv?op=契約サービス変更", kit.base))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let utf8 = std::str::from_utf8(&utf8[3..]).unwrap();
    assert_eq!(decoded, utf8.replace('𠮷', "&#134071;"));
    let rows: Vec<Vec<&str>> = decoded
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 120);
    assert!(
        rows.iter()
            .all(|r| r.len() == 7 && r[1] == "hanakodt" && r[2] == "契約サービス変更")
    );
    for result in ["成功", "失敗"] {
        assert_eq!(
            rows.iter().filter(|r| r[4] == result).count(),
            60,
            "{result}"
        );
    }
    assert!(
        rows.iter()
            .any(|r| r[4] == "成功" && r[5] == "行116 &#134071;田 髙橋"),
        "{decoded}"
    );
    kit.stop().await;
}

#[tokio::test]
async fn a_general_user_sees_only_their_own_operations() {
    let kit = Kit::start().await;
    seed(&kit).await;
    let b = kit.browser();
    b.login("ichirodt", LOGIN_PW).await;
    let p = b.get("/bssk011?actor=hanakodt").await;
    assert_eq!(p.status, 200);
    assert!(p.has("ご自身の操作の履歴が表示されます。"));
    assert!(!p.has("行119"), "not the administrator's rows");
    assert!(p.has("ichirodt") && p.has("ログイン"), "{}", p.body);
    let csv = b
        .client
        .get(format!("{}/bssk011/csv?actor=hanakodt", kit.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut lines = csv.trim_start_matches('\u{feff}').lines();
    assert_eq!(
        lines.next(),
        Some("日時,操作者,操作,対象利用者,結果,詳細,接続元")
    );
    let actors: Vec<&str> = lines.map(|l| l.split(',').nth(1).unwrap()).collect();
    assert!(
        !actors.is_empty() && actors.iter().all(|a| *a == "ichirodt"),
        "{csv}"
    );
    kit.stop().await;
}
