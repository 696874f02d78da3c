//! 企業管理 (BSSK002 → BSSK003 → BSSK004): everyone sees the company's
//! information; only the マスター changes the contact, with the 確認パスワード.

use crate::testkit::{CONFIRM_PW, Kit, LOGIN_PW};

#[tokio::test]
async fn the_master_keeps_the_contact_and_others_only_look() {
    let kit = Kit::start().await;
    let m = kit.browser();
    m.login("jirodt", LOGIN_PW).await;
    let p = m.get("/bssk002").await;
    for s in [
        "<h1>管理業務 企業管理</h1>",
        "BSSK002",
        "株式会社ほくぎん商事",
        "ビジネスIB",
        "5人",
        "id=\"edit\"",
    ] {
        assert!(p.has(s), "{s}: {}", p.body);
    }
    m.get("/bssk003").await;
    let bad = m
        .post(
            "/bssk003",
            &[
                ("contact_name", "総務部 北銀"),
                ("contact_phone", "abc"),
                ("contact_email", "soumu@example.jp"),
                ("confirm_password", CONFIRM_PW),
            ],
        )
        .await;
    assert!(bad.error().unwrap().contains("電話番号"));
    let wrong = m
        .post(
            "/bssk003",
            &[
                ("contact_name", "総務部 北銀"),
                ("contact_phone", "076-000-0000"),
                ("contact_email", "soumu@example.jp"),
                ("confirm_password", "Wrong#1234"),
            ],
        )
        .await;
    assert!(wrong.error().is_some());
    assert_eq!(kit.counters("jirodt").await.confirm_failures, 1);
    assert!(m.get("/bssk002").await.has("（未登録）"), "nothing changed");
    let done = m
        .post(
            "/bssk003",
            &[
                ("contact_name", "総務部 北銀"),
                ("contact_phone", "076-000-0000"),
                ("contact_email", "soumu@example.jp"),
                ("confirm_password", CONFIRM_PW),
            ],
        )
        .await;
    assert!(
        done.has("BSSK004") && done.has("連絡先を変更しました。"),
        "{}",
        done.body
    );
    assert!(
        kit.history()
            .await
            .contains(&"jirodt/企業情報変更/成功/".to_string())
    );

    // A 管理者 and a 一般 user see it, change nothing.
    for who in ["hanakodt", "ichirodt"] {
        let b = kit.browser();
        b.login(who, LOGIN_PW).await;
        let p = b.get("/bssk002").await;
        assert!(p.has("076-000-0000") && !p.has("id=\"edit\""), "{who}");
        let master_only = "企業情報の変更はマスターユーザのみ行うことができます。";
        b.get("/bssk003").await.assert_refused(master_only, who);
        b.get("/bssk002").await;
        let p = b
            .post(
                "/bssk003",
                &[
                    ("contact_name", "乗っ取り"),
                    ("contact_phone", "090-0000-0000"),
                    ("contact_email", "x@example.jp"),
                    ("confirm_password", CONFIRM_PW),
                ],
            )
            .await;
        p.assert_refused(master_only, who);
    }
    let m = kit.browser();
    m.login("jirodt", LOGIN_PW).await;
    let p = m.get("/bssk002").await;
    assert!(
        p.has("076-000-0000") && !p.has("乗っ取り"),
        "nothing changed"
    );
    // Another company sees its own information only.
    let o = kit.browser();
    o.login("hottojr01", LOGIN_PW).await;
    let p = o.get("/bssk002").await;
    assert!(p.has("有限会社ほっと物産") && !p.has("076-000-0000"));
    kit.stop().await;
}
