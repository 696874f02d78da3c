//! 利用者情報の照会 (BRSK005): the user's own information, for every role.

use crate::testkit::{Kit, LOGIN_PW};

#[tokio::test]
async fn each_user_sees_their_own_information() {
    let kit = Kit::start().await;
    let b = kit.browser();
    b.login("tarodt", LOGIN_PW).await;
    let menu = b.get("/brsk001").await;
    assert!(menu.has("href=\"/brsk005\""));
    let p = b.get("/brsk005").await;
    assert_eq!(p.status, 200);
    for s in [
        "<h1>利用者管理 利用者情報照会</h1>",
        "BRSK005",
        "<td>tarodt</td>",
        "<td>データ太郎</td>",
        "<td>管理者ユーザ</td>",
        "証明書失効",
        "<td>利用可能</td>",
        "<td>更新可</td>",
    ] {
        assert!(p.has(s), "{s}: {}", p.body);
    }
    assert!(
        p.body.contains("年") && !p.has("<td>－</td>"),
        "expiry and last login shown"
    );

    let g = kit.browser();
    g.login("ichirodt", LOGIN_PW).await;
    let p = g.get("/brsk005").await;
    for s in [
        "<td>ichirodt</td>",
        "<td>一般ユーザ</td>",
        "<td>有効期限切れ</td>",
        "<td>－</td>",
        "操作履歴照会（自身の操作）",
    ] {
        assert!(p.has(s), "{s}: {}", p.body);
    }
    assert!(
        !p.has("利用者停止・解除"),
        "a 一般 user holds no management authority"
    );
    // Only one's own: no parameter selects another user.
    let p = g.get("/brsk005?user=1").await;
    assert!(p.has("<td>ichirodt</td>") && !p.has("tarodt"));
    kit.stop().await;
}
