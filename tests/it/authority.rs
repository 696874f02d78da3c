//! Authority is checked on the server for every request: a 一般 user is
//! refused on every screen and every direct POST, and nobody reaches the users
//! of another company, whatever id they put in a form.

use crate::testkit::{CONFIRM_PW, Kit, LOGIN_PW};

const NO_AUTHORITY: &str = "この操作を行う権限がありません。";

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
        let p = b.get(path).await;
        assert_eq!(p.status, 403, "GET {path}");
        assert!(p.has(NO_AUTHORITY), "GET {path} explains the refusal");
    }
    let tarodt = kit.user_id("tarodt").await.to_string();
    b.get("/top").await; // a fresh CSRF token
    let p = b.post("/brsk018", &[("user", &tarodt)]).await;
    assert_eq!(p.status, 403, "direct POST to BRSK018");
    assert!(p.has(NO_AUTHORITY));
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
    assert_eq!(p.status, 403, "direct POST to BRSK019");
    assert!(p.has(NO_AUTHORITY));
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
        assert_eq!(b.get(path).await.status, 403, "GET {path}");
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
        !list.has("hanakodt") && !list.has("tarodt"),
        "other tenants' users are not listed"
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
    for forged in ["999999", "-1", "abc", "", "1 OR 1=1", &"9".repeat(40)] {
        b.get("/brsk018").await;
        let p = b.post("/brsk018", &[("user", forged)]).await;
        assert_eq!(p.status, 400, "user={forged:?}");
        assert!(p.error().is_some(), "user={forged:?} gets a message");
    }
    for who in ["hanakodt", "tarodt", "sachikodt", "ichirodt"] {
        assert_eq!(
            kit.revoked(who).await,
            who == "sachikodt",
            "{who} unchanged"
        );
    }
    kit.stop().await;
}
