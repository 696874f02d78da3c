//! The bank operator's tasks: a company and its マスター with temporary
//! passwords that must be changed first, unlocking, resetting, and the
//! 操作履歴 rows they write.

use shomei_core::{CompanyId, LoginId, Service};
use shomei_service::OperatorError;

use crate::testkit::{Kit, LOGIN_PW, StoreOf};

/// 株式会社テスト商会 and its マスター testmst01, as the bank's operator sato
/// creates them: the company's id and the temporary passwords.
async fn new_company_and_master(kit: &Kit) -> (CompanyId, shomei_service::TemporaryPasswords) {
    let company = kit
        .svc
        .operator_create_company("株式会社テスト商会", Service::BusinessIb, "sato")
        .await
        .unwrap();
    let t = kit
        .svc
        .operator_create_master(company, "testmst01", "試験 太郎", "t@example.jp", "sato")
        .await
        .unwrap();
    (company, t)
}

#[tokio::test]
async fn a_new_master_must_change_both_temporary_passwords_first() {
    let kit = Kit::start().await;
    let (company, t) = new_company_and_master(&kit).await;
    assert!(matches!(
        kit.svc
            .operator_create_master(company, "hanakodt", "重複", "", "sato")
            .await,
        Err(OperatorError::LoginIdTaken(_))
    ));
    assert!(matches!(
        kit.svc
            .operator_create_master(CompanyId(999), "nobody01", "x", "", "sato")
            .await,
        Err(OperatorError::NoSuchCompany(999))
    ));
    assert!(matches!(
        kit.svc
            .operator_create_master(company, "bad id", "x", "", "sato")
            .await,
        Err(OperatorError::Invalid(_))
    ));

    let b = kit.browser();
    b.login("testmst01", &t.login).await;
    let p = b.get("/bssk001").await;
    assert_eq!(p.path(), "/brsk002", "anything else waits for the change");
    assert!(
        p.has("ログインパスワードと確認用パスワードを変更してください"),
        "{}",
        p.body
    );
    let p = b
        .post(
            "/brsk002",
            &[
                ("kind", "login"),
                ("current", &t.login),
                ("new", "Tesuto#2026a"),
                ("again", "Tesuto#2026a"),
            ],
        )
        .await;
    assert!(p.has("BRSK003"), "{}", p.body);
    assert_eq!(
        b.get("/bssk001").await.path(),
        "/brsk002",
        "the confirmation password still"
    );
    let p = b
        .post(
            "/brsk002",
            &[
                ("kind", "confirm"),
                ("current", &t.confirm),
                ("new", "Kakunin#2026b"),
                ("again", "Kakunin#2026b"),
            ],
        )
        .await;
    assert!(p.has("BRSK003"), "{}", p.body);
    assert_eq!(b.get("/bssk001").await.path(), "/bssk001");

    // The company's 操作履歴 records the bank's work.
    let rows = kit
        .svc
        .store()
        .audit_for_company(company, 100, 0)
        .await
        .unwrap();
    let ops: Vec<_> = rows
        .iter()
        .map(|r| format!("{}/{}", r.actor_login_id, r.operation))
        .collect();
    assert!(ops.contains(&"銀行:sato/企業登録".to_string()), "{ops:?}");
    assert!(ops.contains(&"銀行:sato/利用者登録".to_string()), "{ops:?}");
    kit.stop().await;
}

#[tokio::test]
async fn the_bank_unlocks_and_resets_a_locked_out_master() {
    let kit = Kit::start().await;
    for i in 0..6 {
        if i == 3 {
            // Past the 一時停止 that the third failure began.
            kit.clock.advance(::time::Duration::minutes(31));
        }
        kit.browser().login("jirodt", "Wrong#1234").await;
    }
    assert!(kit.counters("jirodt").await.login_stopped);
    let jiro = LoginId::parse("jirodt").unwrap();
    kit.svc.operator_unlock(&jiro, "sato").await.unwrap();
    let c = kit.counters("jirodt").await;
    assert!(!c.login_stopped && c.login_failures == 0);
    assert_eq!(kit.browser().login("jirodt", LOGIN_PW).await.path(), "/top");

    // jirodt is a マスター: a reset at once is refused (it needs approval);
    // as break-glass it commits, the passwords for the shell user.
    assert!(matches!(
        kit.svc.operator_reset_passwords(&jiro, "sato").await,
        Err(OperatorError::MasterNeedsApproval(_))
    ));
    let change = kit.svc.master_reset_change(&jiro).await.unwrap().unwrap();
    let done = kit
        .svc
        .break_glass(change, "sato", "ご本人からの電話、至急")
        .await
        .unwrap();
    let shomei_service::Applied::MasterPasswordsReset { done: d, .. } = done.applied else {
        panic!("{:?}", done.applied)
    };
    let t = shomei_service::TemporaryPasswords {
        login: d.login.unwrap(),
        confirm: d.confirm.unwrap(),
    };
    assert!(
        kit.browser()
            .login("jirodt", LOGIN_PW)
            .await
            .error()
            .is_some(),
        "the old password is gone"
    );
    let b = kit.browser();
    b.login("jirodt", &t.login).await;
    assert_eq!(b.get("/brsk001").await.path(), "/brsk002");
    assert!(matches!(
        kit.svc
            .operator_unlock(&LoginId::parse("nosuch01").unwrap(), "sato")
            .await,
        Err(OperatorError::NoSuchUser(_))
    ));
    let history = kit.history().await;
    assert!(
        history.contains(&"銀行:sato/ロック解除/成功/jirodt".to_string()),
        "{history:?}"
    );
    assert!(history.contains(&"cli:sato/パスワード初期化/成功/jirodt".to_string()));
    kit.stop().await;
}

/// "Every other page leads to BRSK002 until both are changed": forms posted
/// with a good CSRF token, and EST with the temporary password, too.
#[tokio::test]
async fn while_the_first_change_is_pending_posts_and_est_are_held_back() {
    let kit = Kit::start().await;
    let (_, t) = new_company_and_master(&kit).await;
    let b = kit.browser();
    assert_eq!(b.login("testmst01", &t.login).await.path(), "/brsk002");
    let p = b
        .post(
            "/bssk003",
            &[
                ("contact_name", "先走り"),
                ("contact_phone", "090-0000-0000"),
                ("contact_email", "x@example.jp"),
                ("confirm_password", &t.confirm),
            ],
        )
        .await;
    assert_eq!(p.path(), "/brsk002", "a form waits for the change too");
    assert!(
        !kit.history()
            .await
            .iter()
            .any(|r| r.contains("企業情報変更")),
        "nothing changed"
    );
    let (_, csr) = crate::issuance::key_and_csr(&rcgen::PKCS_ECDSA_P256_SHA256);
    let a = crate::issuance::simpleenroll(&kit, "testmst01", &t.login, &csr).await;
    assert_eq!(a.status, 403, "EST with the temporary password");
    assert!(
        kit.svc
            .store()
            .latest_cert(shomei_core::UserId(kit.user_id("testmst01").await))
            .await
            .unwrap()
            .is_none(),
        "no certificate issued"
    );
    assert!(a.body.contains("must be changed first"), "{}", a.body);
    // The control: with both changed, the same request issues.
    for (kind, current, new) in [
        ("login", t.login.as_str(), "Tesuto#2026a"),
        ("confirm", t.confirm.as_str(), "Kakunin#2026b"),
    ] {
        b.get("/brsk002").await;
        let p = b
            .post(
                "/brsk002",
                &[
                    ("kind", kind),
                    ("current", current),
                    ("new", new),
                    ("again", new),
                ],
            )
            .await;
        assert!(p.has("BRSK003"), "{}", p.body);
    }
    let a = crate::issuance::simpleenroll(&kit, "testmst01", "Tesuto#2026a", &csr).await;
    assert_eq!(a.status, 200, "{}", a.body);
    kit.stop().await;
}
