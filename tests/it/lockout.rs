//! The two failure counters of PRODUCT.md §5 through the real login form and
//! BRSK019, with the clock moved instead of waiting.

use time::Duration;

use crate::testkit::{CONFIRM_PW, Kit, LOGIN_PW, StoreOf};

const LOGIN_FAILED: &str = "ログインできませんでした。";

#[tokio::test]
async fn three_wrong_passwords_lock_login_for_thirty_minutes_with_the_same_message_as_an_unknown_id()
 {
    let kit = Kit::start().await;
    let b = kit.browser();
    let unknown = b.login("nosuchuser", "whatever").await;
    assert_eq!(unknown.path(), "/login");
    let unknown_error = unknown.error().expect("an error for an unknown login ID");
    assert!(unknown_error.contains(LOGIN_FAILED));

    for i in 1..=3 {
        let p = b.login("hanakodt", "wrong-password").await;
        assert_eq!(
            p.error().as_deref(),
            Some(unknown_error.as_str()),
            "failure {i}: same message as an unknown ID"
        );
    }
    let c = kit.counters("hanakodt").await;
    assert_eq!(c.login_failures, 3);
    assert!(c.login_locked_until.is_some(), "一時停止 after 3 failures");

    // Locked: even the right password is refused, with the very same message.
    let p = b.login("hanakodt", LOGIN_PW).await;
    assert_eq!(p.path(), "/login");
    assert_eq!(p.error().as_deref(), Some(unknown_error.as_str()));

    kit.clock.advance(Duration::minutes(31));
    let p = b.login("hanakodt", LOGIN_PW).await;
    assert_eq!(p.path(), "/top", "the temporary stop ends after 30 minutes");
    let c = kit.counters("hanakodt").await;
    assert_eq!(c.login_failures, 0, "a success resets the login counter");

    let history = kit.history().await;
    assert!(
        history
            .iter()
            .any(|h| h == "hanakodt/ログインパスワード利用一時停止/成功/hanakodt"),
        "{history:?}"
    );
    assert_eq!(
        history
            .iter()
            .filter(|h| h.starts_with("hanakodt/ログイン/失敗"))
            .count(),
        4,
        "3 wrong + 1 while locked"
    );
    kit.stop().await;
}

#[tokio::test]
async fn six_wrong_passwords_stop_login_until_it_is_released() {
    let kit = Kit::start().await;
    let b = kit.browser();
    for _ in 0..3 {
        b.login("tarodt", "wrong").await;
    }
    kit.clock.advance(Duration::minutes(31));
    for _ in 0..3 {
        b.login("tarodt", "wrong").await;
    }
    let c = kit.counters("tarodt").await;
    assert!(c.login_stopped, "利用停止 after 6 consecutive failures");
    kit.clock.advance(Duration::days(2));
    let p = b.login("tarodt", LOGIN_PW).await;
    assert_eq!(p.path(), "/login", "a stop does not end by itself");
    assert!(p.error().is_some_and(|e| e.contains(LOGIN_FAILED)));
    let history = kit.history().await;
    assert!(
        history
            .iter()
            .any(|h| h == "tarodt/ログインパスワード利用停止/成功/tarodt"),
        "{history:?}"
    );
    kit.stop().await;
}

#[tokio::test]
async fn the_lockout_numbers_are_configurable() {
    let settings = shomei_service::Settings {
        login_temp_lock_after: 2,
        login_temp_lock_minutes: 5,
        ..Default::default()
    };
    let kit = Kit::start_with(settings).await;
    let b = kit.browser();
    b.login("hanakodt", "wrong").await;
    b.login("hanakodt", "wrong").await;
    assert_eq!(
        b.login("hanakodt", LOGIN_PW).await.path(),
        "/login",
        "locked after 2"
    );
    kit.clock.advance(Duration::minutes(6));
    assert_eq!(
        b.login("hanakodt", LOGIN_PW).await.path(),
        "/top",
        "free after 5 minutes"
    );
    kit.stop().await;
}

#[tokio::test]
async fn a_wrong_confirmation_password_is_counted_and_six_stop_it_but_not_login() {
    let kit = Kit::start().await;
    let b = kit.browser();
    let p = b.to_brsk019(&kit, "hanakodt", "tarodt").await;
    assert_eq!(p.path(), "/brsk019");
    for i in 1..=5 {
        let p = b.execute("wrong").await;
        assert_eq!(p.path(), "/brsk019", "failure {i} stays on BRSK019");
        assert_eq!(p.status, 400);
        assert!(
            p.error()
                .is_some_and(|e| e.contains("確認パスワードが正しくありません")),
            "{:?}",
            p.error()
        );
    }
    assert_eq!(kit.counters("hanakodt").await.confirm_failures, 5);
    assert!(!kit.revoked("tarodt").await);

    // A success resets the counter... (checked on another user below); the
    // sixth failure stops the confirmation password.
    let p = b.execute("wrong").await;
    assert!(
        p.error()
            .is_some_and(|e| e.contains("確認用パスワードの利用が停止されている")),
        "{:?}",
        p.error()
    );
    assert!(kit.counters("hanakodt").await.confirm_stopped);

    // Now even the right confirmation password is refused...
    let p = b.execute(CONFIRM_PW).await;
    assert!(
        p.error()
            .is_some_and(|e| e.contains("確認用パスワードの利用が停止されている"))
    );
    assert!(!kit.revoked("tarodt").await, "nothing was revoked");

    // ...but the user can still log in.
    let other = kit.browser();
    assert_eq!(other.login("hanakodt", LOGIN_PW).await.path(), "/top");

    let history = kit.history().await;
    assert_eq!(
        history
            .iter()
            .filter(|h| h.starts_with("hanakodt/証明書失効/失敗/tarodt"))
            .count(),
        7,
        "{history:?}"
    );
    assert!(
        history
            .iter()
            .any(|h| h == "hanakodt/確認用パスワード利用停止/成功/hanakodt"),
        "{history:?}"
    );
    kit.stop().await;
}

#[tokio::test]
async fn a_correct_confirmation_password_resets_its_counter() {
    let kit = Kit::start().await;
    let b = kit.browser();
    b.to_brsk019(&kit, "hanakodt", "tarodt").await;
    for _ in 0..2 {
        b.execute("wrong").await;
    }
    assert_eq!(kit.counters("hanakodt").await.confirm_failures, 2);
    let p = b.execute(CONFIRM_PW).await;
    assert_eq!(p.path(), "/brsk020");
    assert_eq!(kit.counters("hanakodt").await.confirm_failures, 0);
    kit.stop().await;
}

/// Password spraying: failures from one address, spread over login IDs that
/// each stay under their own lockout, shut that address out for a window —
/// without checking passwords or counting against the users — and every
/// attempt is in 操作履歴.
#[tokio::test]
async fn an_address_failing_too_often_is_refused_for_a_while() {
    let settings = shomei_service::Settings {
        address_failure_limit: 5,
        address_window_minutes: 10,
        ..Default::default()
    };
    let kit = Kit::start_with(settings).await;
    let b = kit.browser();
    for who in ["nobody01", "nobody02", "ichirodt", "tarodt", "hanakodt"] {
        let p = b.login(who, "Spray#2026").await;
        assert!(
            p.error()
                .is_some_and(|e| e.contains("ログインできませんでした")),
            "{who}: {:?}",
            p.error()
        );
    }
    // The right password now gets the address message, and counts nothing.
    let before = kit.counters("jirodt").await;
    let p = b.login("jirodt", LOGIN_PW).await;
    assert_eq!(p.path(), "/login");
    assert!(
        p.error()
            .is_some_and(|e| e.contains("接続元からのログインの失敗が続いた")),
        "{:?}",
        p.error()
    );
    assert_eq!(kit.counters("jirodt").await, before);
    assert_eq!(kit.counters("hanakodt").await.login_failures, 1);
    // Enrollment from there too.
    let (_, csr) = crate::issuance::key_and_csr(&rcgen::PKCS_ECDSA_P256_SHA256);
    assert_eq!(
        crate::issuance::simpleenroll(&kit, "jirodt", LOGIN_PW, &csr)
            .await
            .status,
        401
    );
    let mut rows = Vec::new();
    kit.svc
        .store()
        .audit_for_each(None, |r| {
            if r.company_id.is_none() {
                rows.push(format!("{}/{}/{}", r.actor_login_id, r.operation, r.detail));
            }
        })
        .await
        .unwrap();
    assert!(
        rows.iter()
            .any(|r| r
                == "/ログイン/接続元からの失敗が10分間に5回に達したため、10分間受け付けを停止"),
        "{rows:?}"
    );
    assert!(rows.contains(&"jirodt/ログイン/接続元からの失敗が多いため受け付け停止中".to_string()));
    // Refusals within a minute of that row are counted, not written one by
    // one (refusing must be no way to flood 操作履歴) …
    assert!(
        !rows.iter().any(|r| r.contains("/証明書発行/")),
        "the enrollment refusal waits to be coalesced: {rows:?}"
    );
    // … and the upkeep writes them as one row with their number a minute on.
    kit.clock.advance(Duration::minutes(1));
    assert_eq!(kit.svc.record_address_refusals().await.unwrap(), 1);
    let mut rows = Vec::new();
    kit.svc
        .store()
        .audit_for_each(None, |r| {
            if r.company_id.is_none() {
                rows.push(format!("{}/{}/{}", r.actor_login_id, r.operation, r.detail));
            }
        })
        .await
        .unwrap();
    assert_eq!(
        rows.last().map(String::as_str),
        Some("/ログイン/接続元からの受け付けを停止中（前回の記録以降 1 件）"),
        "{rows:?}"
    );
    kit.clock.advance(Duration::minutes(9));
    // The window over, the address is welcome again.
    assert_eq!(b.login("jirodt", LOGIN_PW).await.path(), "/top");
    kit.stop().await;
}
