//! Authority is checked on the server for every request: a 一般 user is
//! refused on every screen and every direct POST, and nobody reaches the users
//! of another company, whatever id they put in a form.

use crate::testkit::{CONFIRM_PW, Kit, LOGIN_PW};

const NO_AUTHORITY: &str =
    "この操作を行う権限がありません。マスターユーザまたは管理者ユーザに依頼してください。";

#[tokio::test]
async fn a_general_user_is_refused_on_every_revocation_screen_and_post() {
    let kit = Kit::start().await;
    let b = kit.browser();
    // ichirodt is 一般 in the demo company; tarodt's certificate is revocable.
    assert_eq!(b.login("ichirodt", LOGIN_PW).await.path(), "/top");
    for path in [
        "/brsk018",
        "/brsk019",
        "/brsk020",
        "/brsk018?sort=name&order=desc",
    ] {
        b.get(path).await.assert_refused(NO_AUTHORITY, path);
    }
    let tarodt = kit.user_id("tarodt").await.to_string();
    b.get("/top").await; // a fresh CSRF token
    let p = b.post("/brsk018", &[("user", &tarodt)]).await;
    p.assert_refused(NO_AUTHORITY, "direct POST to BRSK018");
    let p = b
        .post(
            "/brsk019",
            &[
                ("action", "execute"),
                ("token", "0000"),
                ("confirm_password", CONFIRM_PW),
            ],
        )
        .await;
    p.assert_refused(NO_AUTHORITY, "direct POST to BRSK019");
    assert!(!kit.revoked("tarodt").await, "nothing was revoked");
    let history = kit.history().await;
    assert!(
        history
            .iter()
            .any(|h| h.starts_with("ichirodt/証明書失効/失敗")),
        "the refusal is in 操作履歴: {history:?}"
    );
    kit.stop().await;
}

#[tokio::test]
async fn a_general_user_sees_only_their_own_items_on_brsk001() {
    let kit = Kit::start().await;
    let b = kit.browser();
    b.login("ichirodt", LOGIN_PW).await;
    let p = b.get("/brsk001").await;
    assert_eq!(p.status, 200);
    assert!(p.has("パスワード変更") && p.has("利用者情報の照会"));
    assert!(
        !p.has("href=\"/brsk018\""),
        "no way to 証明書失効 is offered"
    );
    for path in ["/brsk001/users", "/brsk001/stop"] {
        b.get(path).await.assert_refused(NO_AUTHORITY, path);
    }
    kit.stop().await;
}

#[tokio::test]
async fn another_companys_master_cannot_reach_this_companys_users_by_forging_an_id() {
    let kit = Kit::start().await;
    let b = kit.browser();
    // hottojr01 is マスター of 有限会社ほっと物産, a different company.
    assert_eq!(b.login("hottojr01", LOGIN_PW).await.path(), "/top");
    let list = b.get("/brsk018").await;
    assert_eq!(list.status, 200);
    assert!(
        list.has("hottojr02") && !list.has("hanakodt") && !list.has("tarodt"),
        "its own company's users are listed, other tenants' are not: {}",
        list.body
    );
    let tarodt = kit.user_id("tarodt").await.to_string();
    let p = b.post("/brsk018", &[("user", &tarodt)]).await;
    assert_eq!(p.path(), "/brsk018");
    assert_eq!(p.status, 400);
    assert_eq!(
        p.error().as_deref(),
        Some("指定された利用者は存在しません。")
    );
    assert!(
        !p.has("tarodt"),
        "the error does not reveal the other company's user"
    );
    assert!(!kit.revoked("tarodt").await);
    kit.stop().await;
}

#[tokio::test]
async fn a_forged_or_malformed_user_id_is_an_error_on_brsk018() {
    let kit = Kit::start().await;
    let b = kit.browser();
    b.login("hanakodt", LOGIN_PW).await;
    let not_a_number = "利用者を選択してください。";
    for (forged, message) in [
        ("999999", NO_SUCH_USER),
        ("-1", NO_SUCH_USER),
        ("abc", not_a_number),
        ("", not_a_number),
        ("1 OR 1=1", not_a_number),
        (&"9".repeat(40), not_a_number),
    ] {
        b.get("/brsk018").await;
        let p = b.post("/brsk018", &[("user", forged)]).await;
        assert_eq!(
            (p.status, p.error().as_deref()),
            (400, Some(message)),
            "user={forged:?}"
        );
    }
    // The control: the same form with a real user of the company.
    b.get("/brsk018").await;
    let tarodt = kit.user_id("tarodt").await.to_string();
    assert_eq!(
        b.post("/brsk018", &[("user", &tarodt)]).await.path(),
        "/brsk019"
    );
    for who in ["hanakodt", "tarodt", "sachikodt", "ichirodt"] {
        assert_eq!(
            kit.revoked(who).await,
            who == "sachikodt",
            "{who} unchanged"
        );
    }
    kit.stop().await;
}

const NO_SUCH_USER: &str = "指定された利用者は存在しません。";
const MASTER_ONLY: &str = "企業情報の変更はマスターユーザのみ行うことができます。";

/// The authority matrix over HTTP against the real server, for every
/// operation of 管理業務: マスター / 管理者 / 一般 of this company, each on a
/// user of their own company and on one of another company. "allowed"
/// means the screen or the next step came; "refused" an error status with
/// the rule's own message, and nothing changed (checked after the table).
#[tokio::test]
async fn the_authority_matrix_over_http() {
    let kit = Kit::start().await;
    // Targets: a 一般 user of this company, and one of the other company.
    let own = kit.user_id("sachikodt").await.to_string();
    let other = kit.user_id("hottojr02").await.to_string();
    let revocable_own = kit.user_id("tarodt").await.to_string();
    let revocable_other = kit.user_id("hottojr01").await.to_string();

    #[derive(Clone, Copy)]
    enum Op {
        Get(&'static str),
        /// GET with ?user=<target>.
        GetUser(&'static str),
        /// POST with the target in "user" (and these fields).
        PostUser(&'static str, &'static [(&'static str, &'static str)]),
    }
    use Op::*;
    /// (operation, target is the revocable user?, [マスター, 管理者, 一般] on
    /// own, same on other)
    type Case = (&'static str, Op, bool, [bool; 3], [bool; 3]);
    let table: &[Case] = &[
        (
            "BRSK018 list",
            Get("/brsk018"),
            false,
            [true, true, false],
            [true, true, false],
        ),
        (
            "証明書失効 select",
            PostUser("/brsk018", &[]),
            true,
            [true, true, false],
            [false, false, false],
        ),
        (
            "利用者停止・解除 list",
            Get("/brsk021"),
            false,
            [true, true, false],
            [true, true, false],
        ),
        (
            "利用者停止・解除 select",
            PostUser("/brsk021", &[("state", "stopped")]),
            false,
            [true, true, false],
            [false, false, false],
        ),
        (
            "利用者一覧",
            Get("/brsk011"),
            false,
            [true, true, false],
            [true, true, false],
        ),
        (
            "利用者変更 form",
            GetUser("/brsk014"),
            false,
            [true, true, false],
            [false, false, false],
        ),
        (
            "利用者削除確認",
            GetUser("/brsk015"),
            false,
            [true, true, false],
            [false, false, false],
        ),
        (
            "利用者登録 form",
            Get("/brsk012"),
            false,
            [true, true, false],
            [true, true, false],
        ),
        (
            "企業情報変更 form",
            Get("/bssk003"),
            false,
            [true, false, false],
            [true, false, false],
        ),
        (
            "企業管理",
            Get("/bssk002"),
            false,
            [true, true, true],
            [true, true, true],
        ),
        (
            "操作履歴照会",
            Get("/bssk011"),
            false,
            [true, true, true],
            [true, true, true],
        ),
        (
            "パスワード変更",
            Get("/brsk002"),
            false,
            [true, true, true],
            [true, true, true],
        ),
        (
            "利用者情報照会",
            Get("/brsk005"),
            false,
            [true, true, true],
            [true, true, true],
        ),
    ];
    let actors = ["jirodt", "hanakodt", "ichirodt"];
    let mut failures = Vec::new();
    for (i, actor) in actors.iter().enumerate() {
        let b = kit.browser();
        assert_eq!(b.login(actor, LOGIN_PW).await.path(), "/top");
        for (name, op, revocable, own_expect, other_expect) in table {
            for (target_is_own, expect) in [(true, own_expect[i]), (false, other_expect[i])] {
                let target = match (revocable, target_is_own) {
                    (true, true) => &revocable_own,
                    (true, false) => &revocable_other,
                    (false, true) => &own,
                    (false, false) => &other,
                };
                let page = match op {
                    Get(path) => b.get(path).await,
                    GetUser(path) => b.get(&format!("{path}?user={target}")).await,
                    PostUser(path, extra) => {
                        // The form first, for its CSRF token.
                        b.get(path).await;
                        let mut fields: Vec<(&str, &str)> = vec![("user", target.as_str())];
                        fields.extend_from_slice(extra);
                        b.post(path, &fields).await
                    }
                };
                // A refusal is the rule's own message: a CSRF slip or a
                // broken form is a 403 or an error too, and proves nothing.
                let refusal = if *name == "企業情報変更 form" {
                    MASTER_ONLY
                } else if i == 2 {
                    NO_AUTHORITY
                } else {
                    NO_SUCH_USER
                };
                let ok = if expect {
                    page.status == 200 && page.error().is_none()
                } else {
                    page.error().as_deref() == Some(refusal)
                };
                if !ok {
                    failures.push(format!(
                        "{actor} {name} on {} user: expected {}, got {} {:?}",
                        if target_is_own {
                            "own"
                        } else {
                            "other company's"
                        },
                        if expect { "allowed" } else { refusal },
                        page.status,
                        page.error()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Nothing changed for the other company's users.
    assert!(!kit.counters("hottojr02").await.admin_stopped);
    assert!(!kit.revoked("hottojr01").await);
    kit.stop().await;
}
