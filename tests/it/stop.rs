//! 利用者停止・解除 (BRSK021 → BRSK022 → BRSK023): who may change whom, the
//! 確認パスワード, all-or-nothing, and what a stopped user can no longer do.

use crate::testkit::{Browser, CONFIRM_PW, Kit, LOGIN_PW};

async fn select(b: &Browser, kit: &Kit, users: &[&str], state: &str) -> crate::testkit::Page {
    b.get("/brsk021").await;
    let mut ids = Vec::new();
    for u in users {
        ids.push(kit.user_id(u).await.to_string());
    }
    let mut fields: Vec<(&str, &str)> = ids.iter().map(|i| ("user", i.as_str())).collect();
    fields.push(("state", state));
    b.post("/brsk021", &fields).await
}

async fn execute(
    b: &Browser,
    kit: &Kit,
    users: &[&str],
    state: &str,
    pw: &str,
) -> crate::testkit::Page {
    let mut ids = Vec::new();
    for u in users {
        ids.push(kit.user_id(u).await.to_string());
    }
    let mut fields: Vec<(&str, &str)> = ids.iter().map(|i| ("user", i.as_str())).collect();
    fields.push(("state", state));
    fields.push(("confirm_password", pw));
    b.post("/brsk022", &fields).await
}

#[tokio::test]
async fn an_administrator_stops_and_releases_users_of_the_company() {
    let kit = Kit::start().await;
    let victim = kit.browser();
    assert_eq!(victim.login("ichirodt", LOGIN_PW).await.path(), "/top");

    let b = kit.browser();
    b.login("hanakodt", LOGIN_PW).await;
    let list = b.get("/brsk021").await;
    for s in [
        "<h1>利用者管理 利用者停止・解除</h1>",
        "BRSK021",
        "id=\"s-ichirodt\"",
        "id=\"s-tarodt\"",
    ] {
        assert!(list.has(s), "{s}");
    }
    assert!(
        !list.has("id=\"s-jirodt\""),
        "a 管理者 cannot select the マスター"
    );
    assert!(!list.has("id=\"s-hanakodt\""), "nor herself");

    let none = select(&b, &kit, &[], "stopped").await;
    assert_eq!(none.error().as_deref(), Some("利用者を選択してください。"));
    assert_eq!(none.status, 400);
    let no_state = select(&b, &kit, &["ichirodt"], "").await;
    assert_eq!(
        no_state.error().as_deref(),
        Some("変更後のサービス状態を選択してください。")
    );
    assert_eq!(no_state.status, 400);
    // A forged selection of the マスター, with an allowed user: nothing at all.
    let master = Some("管理者ユーザはマスターユーザに対してこの操作を行うことはできません。");
    let forged = select(&b, &kit, &["ichirodt", "jirodt"], "stopped").await;
    assert_eq!(forged.error().as_deref(), master);
    assert_eq!(forged.status, 400);
    let forged = execute(&b, &kit, &["ichirodt", "jirodt"], "stopped", CONFIRM_PW).await;
    assert_eq!(forged.error().as_deref(), master, "{}", forged.body);
    assert_eq!(forged.status, 400);
    assert!(
        !kit.counters("ichirodt").await.admin_stopped,
        "all or nothing"
    );
    // Another company's user.
    let other = kit.user_id("hottojr02").await.to_string();
    b.get("/brsk021").await;
    let p = b
        .post(
            "/brsk022",
            &[
                ("user", other.as_str()),
                ("state", "stopped"),
                ("confirm_password", CONFIRM_PW),
            ],
        )
        .await;
    assert_eq!(
        p.error().as_deref(),
        Some("指定された利用者は存在しません。")
    );
    assert_eq!(p.status, 400, "refused like every other refusal");
    assert!(!kit.counters("hottojr02").await.admin_stopped);

    let confirm = select(&b, &kit, &["ichirodt", "sachikodt"], "stopped").await;
    assert!(
        confirm.has("BRSK022") && confirm.has("ichirodt") && confirm.has("sachikodt"),
        "{}",
        confirm.body
    );
    assert_eq!(confirm.status, 200);
    let wrong = execute(
        &b,
        &kit,
        &["ichirodt", "sachikodt"],
        "stopped",
        "Wrong#1234",
    )
    .await;
    assert!(wrong.has("BRSK022"), "{}", wrong.body);
    assert_eq!(wrong.status, 400);
    assert_eq!(
        wrong.error().as_deref(),
        Some(
            "確認パスワードが正しくありません。連続して誤ると確認用パスワードの利用が停止されます。"
        )
    );
    assert!(!kit.counters("ichirodt").await.admin_stopped);
    assert_eq!(kit.counters("hanakodt").await.confirm_failures, 1);

    let done = execute(&b, &kit, &["ichirodt", "sachikodt"], "stopped", CONFIRM_PW).await;
    assert!(
        done.has("BRSK023") && done.has("サービス状態を変更しました。"),
        "{}",
        done.body
    );
    assert_eq!(done.status, 200);
    assert!(
        kit.counters("ichirodt").await.admin_stopped
            && kit.counters("sachikodt").await.admin_stopped
    );
    assert_eq!(kit.counters("hanakodt").await.confirm_failures, 0);
    assert!(
        kit.history()
            .await
            .contains(&"hanakodt/利用者停止・解除/成功/ichirodt".to_string())
    );

    // The stopped user's session ends; she cannot log in again.
    assert_eq!(victim.get("/bssk001").await.path(), "/login");
    let again = kit.browser().login("ichirodt", LOGIN_PW).await;
    assert_eq!(
        (again.path(), again.error().as_deref()),
        (
            "/login",
            Some(shomei_core::Problem::LoginFailed.message_ja())
        )
    );
    assert!(
        kit.history()
            .await
            .contains(&"ichirodt/ログイン/失敗/ichirodt".to_string()),
        "refused as stopped, with its row"
    );

    // 利用可能 again, which also clears password locks.
    for _ in 0..3 {
        kit.browser().login("sachikodt", "Wrong#1234").await;
    }
    let done = execute(
        &b,
        &kit,
        &["ichirodt", "sachikodt"],
        "available",
        CONFIRM_PW,
    )
    .await;
    assert!(done.has("BRSK023"), "{}", done.body);
    let c = kit.counters("sachikodt").await;
    assert!(!c.admin_stopped && c.login_failures == 0 && c.login_locked_until.is_none());
    assert_eq!(
        kit.browser().login("ichirodt", LOGIN_PW).await.path(),
        "/top"
    );
    kit.stop().await;
}

#[tokio::test]
async fn a_general_user_is_refused_and_the_master_may_stop_an_administrator() {
    let kit = Kit::start().await;
    let g = kit.browser();
    g.login("ichirodt", LOGIN_PW).await;
    let no_authority =
        "この操作を行う権限がありません。マスターユーザまたは管理者ユーザに依頼してください。";
    g.get("/brsk021")
        .await
        .assert_refused(no_authority, "BRSK021");
    g.get("/top").await;
    let id = kit.user_id("tarodt").await.to_string();
    let p = g
        .post(
            "/brsk022",
            &[
                ("user", id.as_str()),
                ("state", "stopped"),
                ("confirm_password", CONFIRM_PW),
            ],
        )
        .await;
    p.assert_refused(no_authority, "BRSK022");
    assert!(!kit.counters("tarodt").await.admin_stopped);
    // The refused change is recorded once (the list shown to nobody is not).
    let refused: Vec<_> = kit
        .history()
        .await
        .into_iter()
        .filter(|r| r.starts_with("ichirodt/利用者停止・解除/"))
        .collect();
    assert_eq!(refused, ["ichirodt/利用者停止・解除/失敗/"]);

    let m = kit.browser();
    m.login("jirodt", LOGIN_PW).await;
    let list = m.get("/brsk021").await;
    assert!(list.has("id=\"s-hanakodt\""));
    let done = execute(&m, &kit, &["hanakodt"], "stopped", CONFIRM_PW).await;
    assert!(done.has("BRSK023"), "{}", done.body);
    assert!(kit.counters("hanakodt").await.admin_stopped);
    kit.stop().await;
}
