//! 利用者情報の管理 (BRSK011 → BRSK012 / BRSK014 / BRSK015 → BRSK013):
//! create, edit, delete, with every refusal the rules name.

use crate::testkit::{Browser, CONFIRM_PW, Kit, LOGIN_PW, StoreOf};

async fn create(b: &Browser, login_id: &str, role: &str, pw: &str) -> crate::testkit::Page {
    b.get("/brsk012").await;
    b.post(
        "/brsk012",
        &[
            ("login_id", login_id),
            ("name", "新規 一郎"),
            ("role", role),
            ("email", "new@example.jp"),
            ("login_password", "Shoki#Pass1"),
            ("confirm_password_new", "Shoki#Kaku2"),
            ("confirm_password", pw),
        ],
    )
    .await
}

#[tokio::test]
async fn an_administrator_creates_edits_and_deletes_users() {
    let kit = Kit::start().await;
    let b = kit.browser();
    b.login("hanakodt", LOGIN_PW).await;
    let list = b.get("/brsk011").await;
    for s in [
        "<h1>利用者管理 利用者一覧</h1>",
        "BRSK011",
        "id=\"edit-tarodt\"",
        "id=\"new\"",
    ] {
        assert!(list.has(s), "{s}");
    }
    assert!(
        !list.has("id=\"edit-jirodt\"") && !list.has("id=\"delete-hanakodt\""),
        "not the マスター, not herself"
    );

    // Bad input: a message, nothing created.
    for (login_id, role, message) in [
        ("ab", "general", "ログインID"),
        ("ｎｅｗｕｓｅｒ", "general", "ログインID"),
        ("tarodt", "general", "既に使用されています"),
        ("hottojr01", "general", "既に使用されています"),
        ("newuser01", "master", "利用者区分"),
    ] {
        let p = create(&b, login_id, role, CONFIRM_PW).await;
        let e = p.error().unwrap_or_default();
        assert!(e.contains(message), "{login_id}: {e}");
    }
    let wrong = create(&b, "newuser01", "general", "Wrong#1234").await;
    assert_eq!(
        wrong.error().as_deref(),
        Some(shomei_core::Problem::ConfirmPasswordWrong.message_ja())
    );
    assert!(!kit.has_user("newuser01").await);

    let done = create(&b, "newuser01", "general", CONFIRM_PW).await;
    assert!(
        done.has("BRSK013") && done.has("newuser01"),
        "{}",
        done.body
    );
    let n = kit.browser();
    n.login("newuser01", "Shoki#Pass1").await;
    assert_eq!(
        n.get("/bssk001").await.path(),
        "/brsk002",
        "the new user changes the initial passwords first"
    );

    // Edit: 一般 → 管理者.
    let id = kit.user_id("newuser01").await.to_string();
    let form = b.get(&format!("/brsk014?user={id}")).await;
    assert!(form.has("BRSK014") && form.has("newuser01"));
    let p = b
        .post(
            "/brsk014",
            &[
                ("user", id.as_str()),
                ("name", "新規 一郎"),
                ("role", "admin"),
                ("email", "new@example.jp"),
                ("confirm_password", CONFIRM_PW),
            ],
        )
        .await;
    assert!(p.has("BRSK013"), "{}", p.body);
    assert_eq!(
        kit.svc
            .store()
            .user(shomei_core::UserId(id.parse().unwrap()))
            .await
            .unwrap()
            .unwrap()
            .role,
        shomei_core::Role::Admin
    );

    // Forged: the マスター, another company's user (with a good CSRF token:
    // the refusal is the authority's, by its message).
    for (who, message) in [
        (
            "jirodt",
            "管理者ユーザはマスターユーザに対してこの操作を行うことはできません。",
        ),
        ("hottojr01", "指定された利用者は存在しません。"),
    ] {
        let other = kit.user_id(who).await.to_string();
        b.get(&format!("/brsk014?user={other}"))
            .await
            .assert_refused(message, who);
        b.get("/brsk011").await;
        b.post(
            "/brsk015",
            &[("user", other.as_str()), ("confirm_password", CONFIRM_PW)],
        )
        .await
        .assert_refused(message, who);
    }
    assert!(kit.has_user("jirodt").await);

    // Delete tarodt: the user goes, the certificate is revoked at once.
    let taro = kit.user_id("tarodt").await;
    let serial = kit
        .svc
        .store()
        .latest_cert(shomei_core::UserId(taro))
        .await
        .unwrap()
        .unwrap()
        .serial;
    let confirm = b.get(&format!("/brsk015?user={taro}")).await;
    assert!(confirm.has("BRSK015") && confirm.has("tarodt"));
    let t = taro.to_string();
    let p = b
        .post(
            "/brsk015",
            &[("user", t.as_str()), ("confirm_password", CONFIRM_PW)],
        )
        .await;
    assert!(
        p.has("BRSK013") && p.has("電子証明書は失効しました"),
        "{}",
        p.body
    );
    assert!(kit.svc.is_revoked(serial.as_bytes()));
    let gone = kit.browser().login("tarodt", LOGIN_PW).await;
    assert_eq!(
        (gone.path(), gone.error().as_deref()),
        (
            "/login",
            Some(shomei_core::Problem::LoginFailed.message_ja())
        ),
        "a deleted user cannot log in"
    );
    assert!(!kit.has_user("tarodt").await);
    assert!(!b.get("/brsk011").await.has(">tarodt<"));
    kit.crl_caught_up().await;
    let history = kit.history().await;
    for row in [
        "hanakodt/利用者登録/成功/newuser01",
        "hanakodt/利用者変更/成功/newuser01",
        "hanakodt/利用者削除/成功/tarodt",
    ] {
        assert!(history.contains(&row.to_string()), "{row}");
    }
    // A deleted user's login ID stays taken.
    assert!(
        create(&b, "tarodt", "general", CONFIRM_PW)
            .await
            .error()
            .unwrap()
            .contains("既に使用されています")
    );
    kit.stop().await;
}

#[tokio::test]
async fn the_master_cannot_be_deleted_and_general_users_are_refused() {
    let kit = Kit::start().await;
    let m = kit.browser();
    m.login("jirodt", LOGIN_PW).await;
    let me = kit.user_id("jirodt").await.to_string();
    m.get("/brsk011").await;
    let p = m
        .post(
            "/brsk015",
            &[("user", me.as_str()), ("confirm_password", CONFIRM_PW)],
        )
        .await;
    assert_eq!(
        p.error().as_deref(),
        Some("ご自身を削除することはできません。"),
        "the マスター deletes himself"
    );
    assert!(kit.has_user("jirodt").await);

    let g = kit.browser();
    g.login("ichirodt", LOGIN_PW).await;
    let no_authority =
        "この操作を行う権限がありません。マスターユーザまたは管理者ユーザに依頼してください。";
    g.get("/brsk011")
        .await
        .assert_refused(no_authority, "BRSK011");
    g.get("/brsk012")
        .await
        .assert_refused(no_authority, "BRSK012");
    g.get("/top").await;
    let p = g
        .post(
            "/brsk012",
            &[
                ("login_id", "newuser02"),
                ("name", "新規 二郎"),
                ("role", "general"),
                ("email", "new@example.jp"),
                ("login_password", "Shoki#Pass1"),
                ("confirm_password_new", "Shoki#Kaku2"),
                ("confirm_password", CONFIRM_PW),
            ],
        )
        .await;
    p.assert_refused(no_authority, "creating a user");
    assert!(!kit.has_user("newuser02").await);
    kit.stop().await;
}

/// A company of many users: BRSK018 pages its 利用者一覧, keeping the sort.
#[tokio::test]
async fn the_user_list_pages_a_large_company() {
    let kit = Kit::start().await;
    let mut tx = kit.svc.store().begin().await.unwrap();
    for i in 0..120 {
        let login = shomei_core::LoginId::parse(&format!("many{i:04}")).unwrap();
        tx.insert_user(
            &shomei_store::NewUser {
                company_id: shomei_core::CompanyId(1),
                login_id: &login,
                name: "多数",
                role: shomei_core::Role::General,
                email: "",
                login_hash: "x",
                confirm_hash: "x",
            },
            kit.svc.now(),
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let b = kit.browser();
    b.login("hanakodt", LOGIN_PW).await;
    let p = b.get("/brsk018").await;
    assert!(
        p.has("125人中 1 / 2ページ") && p.has("id=\"next\""),
        "{}",
        p.body
    );
    assert_eq!(p.body.matches("name=\"user\"").count(), 100);
    let p2 = b.get("/brsk018?sort=login_id&order=asc&page=2").await;
    assert_eq!(p2.body.matches("name=\"user\"").count(), 25);
    assert!(
        p2.has("id=\"prev\"") && p2.has("tarodt"),
        "the last logins by ID sort last"
    );
    kit.stop().await;
}

/// The login ID length is the bank's setting (6–12 by default).
#[tokio::test]
async fn new_login_ids_follow_the_configured_length() {
    let settings = shomei_service::Settings {
        login_id_min_length: 4,
        login_id_max_length: 16,
        ..Default::default()
    };
    let kit = Kit::start_with(settings).await;
    let b = kit.browser();
    b.login("hanakodt", LOGIN_PW).await;
    assert!(b.get("/brsk012").await.has("4〜16文字の半角英数字"));
    let short = create(&b, "abc", "general", CONFIRM_PW).await;
    assert!(short.error().unwrap().contains("4文字以上16文字以内"));
    let ok = create(&b, "abcd", "general", CONFIRM_PW).await;
    assert!(ok.has("BRSK013"), "{}", ok.body);
    let long = create(&b, "abcdefghijklmnop", "general", CONFIRM_PW).await;
    assert!(long.has("BRSK013"), "{}", long.body);
    let too_long = create(&b, "abcdefghijklmnopq", "general", CONFIRM_PW).await;
    assert!(too_long.error().unwrap().contains("4文字以上16文字以内"));
    // Such a user logs in like any other (and changes the initial passwords first).
    assert_eq!(
        kit.browser().login("abcd", "Shoki#Pass1").await.path(),
        "/brsk002"
    );
    kit.stop().await;
}

/// `business_ib_max_users` and `hottokun_webjr_max_users`: each company's
/// service has its own limit, and the user past it is refused by name.
#[tokio::test]
async fn each_service_has_its_own_most_users() {
    let settings = shomei_service::Settings {
        business_ib_max_users: 6,
        hottokun_webjr_max_users: 3,
        ..Default::default()
    };
    let kit = Kit::start_with(settings).await;
    // ほくぎん商事 (5 users) and ほっと物産 (2 users).
    for (who, first, second, max) in [
        ("hanakodt", "newuser01", "newuser02", 6),
        ("hottojr01", "hotnew01", "hotnew02", 3),
    ] {
        let b = kit.browser();
        b.login(who, LOGIN_PW).await;
        let p = create(&b, first, "general", CONFIRM_PW).await;
        assert!(p.has("BRSK013"), "{who}: {}", p.body);
        let p = create(&b, second, "general", CONFIRM_PW).await;
        let e = p.error().unwrap_or_default();
        assert!(
            e.ends_with(&format!("で登録できる利用者は{max}人までです。")),
            "{who}: {e}"
        );
        assert!(!kit.has_user(second).await);
    }
    kit.stop().await;
}
