//! パスワード変更 (BRSK002 → BRSK003): the current password, the policy, the
//! other password, the lockout counters, and the 操作履歴.

use crate::testkit::{CONFIRM_PW, Kit, LOGIN_PW};

async fn change(
    b: &crate::testkit::Browser,
    kind: &str,
    current: &str,
    new: &str,
    again: &str,
) -> crate::testkit::Page {
    b.get("/brsk002").await;
    b.post(
        "/brsk002",
        &[
            ("kind", kind),
            ("current", current),
            ("new", new),
            ("again", again),
        ],
    )
    .await
}

#[tokio::test]
async fn a_user_changes_their_login_password_under_the_policy() {
    let kit = Kit::start().await;
    let b = kit.browser();
    b.login("hanakodt", LOGIN_PW).await;
    let form = b.get("/brsk002").await;
    for s in [
        "<h1>利用者管理 パスワード変更</h1>",
        "BRSK002",
        "8文字以上32文字以内",
        "パスワードの条件",
    ] {
        assert!(form.has(s), "{s}");
    }
    let refused = [
        (LOGIN_PW, "Shomei#New1", "Shomei#New2", "一致しません"),
        (LOGIN_PW, "short1", "short1", "8文字以上32文字以内"),
        (LOGIN_PW, "onlyletters", "onlyletters", "英字と数字"),
        (LOGIN_PW, "hanakodt", "hanakodt", "英字と数字"),
        (LOGIN_PW, "パスワード1234", "パスワード1234", "半角英数字"),
        (LOGIN_PW, LOGIN_PW, LOGIN_PW, "現在と同じ"),
        (LOGIN_PW, CONFIRM_PW, CONFIRM_PW, "異なるパスワード"),
        (
            "",
            "Shomei#New1",
            "Shomei#New1",
            "現在のログインパスワードを入力",
        ),
    ];
    for (current, new, again, message) in refused {
        let p = change(&b, "login", current, new, again).await;
        assert_eq!(p.path(), "/brsk002");
        let e = p.error().unwrap_or_default();
        assert!(e.contains(message), "{new}: {e}");
    }
    assert_eq!(
        kit.counters("hanakodt").await.login_failures,
        0,
        "policy refusals are not password failures"
    );

    let wrong = change(&b, "login", "Wrong#Pass1", "Shomei#New1", "Shomei#New1").await;
    assert!(
        wrong
            .error()
            .unwrap()
            .contains("現在のログインパスワードが正しくありません")
    );
    assert_eq!(kit.counters("hanakodt").await.login_failures, 1);

    let done = change(&b, "login", LOGIN_PW, "Shomei#New1", "Shomei#New1").await;
    assert!(
        done.has("BRSK003") && done.has("ログインパスワードを変更しました。"),
        "{}",
        done.body
    );
    assert_eq!(
        kit.counters("hanakodt").await.login_failures,
        0,
        "a success resets its counter"
    );
    let history = kit.history().await;
    assert!(history.contains(&"hanakodt/パスワード変更/成功/hanakodt".to_string()));
    assert!(history.contains(&"hanakodt/パスワード変更/失敗/hanakodt".to_string()));

    let old = kit.browser();
    assert!(
        old.login("hanakodt", LOGIN_PW).await.error().is_some(),
        "the old password no longer logs in"
    );
    let new = kit.browser();
    assert_eq!(new.login("hanakodt", "Shomei#New1").await.path(), "/top");
    kit.stop().await;
}

#[tokio::test]
async fn the_confirmation_password_changes_and_wrong_current_ones_lock_it() {
    let kit = Kit::start().await;
    let b = kit.browser();
    b.login("tarodt", LOGIN_PW).await;
    let done = change(&b, "confirm", CONFIRM_PW, "Kakunin#New2", "Kakunin#New2").await;
    assert!(
        done.has("確認用パスワードを変更しました。"),
        "{}",
        done.body
    );
    // The new one confirms a revocation.
    let r = kit.browser();
    r.to_brsk019(&kit, "tarodt", "hanakodt").await;
    let result = r.execute("Kakunin#New2").await;
    assert!(result.has("BRSK020"), "{}", result.body);
    // Six wrong current confirmation passwords stop it.
    for _ in 0..6 {
        change(&b, "confirm", "Wrong#Pass1", "Kakunin#New3", "Kakunin#New3").await;
    }
    assert!(kit.counters("tarodt").await.confirm_stopped);
    let p = change(
        &b,
        "confirm",
        "Kakunin#New2",
        "Kakunin#New3",
        "Kakunin#New3",
    )
    .await;
    assert!(p.error().unwrap().contains("利用停止"), "{}", p.body);
    assert!(
        kit.history()
            .await
            .contains(&"tarodt/確認用パスワード利用停止/成功/tarodt".to_string())
    );
    kit.stop().await;
}

#[tokio::test]
async fn a_password_equal_to_the_login_id_is_refused_when_it_passes_every_other_rule() {
    let kit = Kit::start().await;
    let b = kit.browser();
    assert_eq!(b.login("hottojr01", LOGIN_PW).await.path(), "/top");
    // hottojr01: 9 half-width characters, letters and digits.
    for same in ["hottojr01", "HOTTOJR01"] {
        let p = change(&b, "login", LOGIN_PW, same, same).await;
        assert_eq!(
            p.error().as_deref(),
            Some("ログインIDと同じパスワードは設定できません。"),
            "{same}"
        );
    }
    // The control: one character more passes.
    let done = change(&b, "login", LOGIN_PW, "hottojr01#", "hottojr01#").await;
    assert!(
        done.has("ログインパスワードを変更しました。"),
        "{}",
        done.body
    );
    kit.stop().await;
}
