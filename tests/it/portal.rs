//! The portal's screens as the guide shows them.

use crate::testkit::{Kit, LOGIN_PW, StoreOf};

#[tokio::test]
async fn the_login_page_has_both_columns_of_the_guide() {
    let kit = Kit::start().await;
    let b = kit.browser();
    let p = b.get("/").await;
    assert_eq!(p.path(), "/login");
    for label in [
        "電子証明書方式のお客さま",
        "ID・パスワード方式のお客さま",
        "ログインID",
        "ログインパスワード",
        "電子証明書発行",
    ] {
        assert!(p.has(label), "{label}");
    }
    // The certificate method's 「ログイン」 leads to the certificate listener,
    // where the TLS handshake asks for the certificate.
    let no_redirect = reqwest::Client::builder()
        .tls_certs_only([
            reqwest::Certificate::from_pem(kit.svc.ca().root_pem().as_bytes()).unwrap(),
        ])
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirect
        .get(format!("{}/cert-login", kit.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        format!("{}/cert-login", kit.cert_base)
    );
    kit.stop().await;
}

#[tokio::test]
async fn the_guides_screens_come_in_order_with_their_titles_and_ids() {
    let kit = Kit::start().await;
    let b = kit.browser();
    let top = b.login("hanakodt", LOGIN_PW).await;
    assert_eq!(top.path(), "/top");
    let menu = [
        "一括データ伝送サービス",
        "一般ファイル伝送",
        "残高・明細照会",
        "振込振替",
        "税金各種料金ペイジー払込",
        "承認",
        "管理業務",
        "その他サービス",
    ];
    let positions: Vec<usize> = menu
        .iter()
        .map(|m| {
            top.body
                .find(&format!(">{m}</a>"))
                .unwrap_or_else(|| panic!("{m}"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "global menu in the guide's order"
    );

    let bssk = b.get("/bssk001").await;
    assert!(
        bssk.has("<h1>管理業務 業務選択</h1>")
            && bssk.has("<span class=\"screen-id\">BSSK001</span>")
    );
    for item in ["企業管理", "利用者管理", "操作履歴照会"] {
        assert!(bssk.has(&format!(">{item}</a>")), "{item}");
    }
    let brsk001 = b.get("/brsk001").await;
    assert!(brsk001.has("<h1>利用者管理 作業内容選択</h1>") && brsk001.has("BRSK001"));
    for item in [
        "自身の情報の変更・照会",
        "パスワード変更",
        "利用者情報の照会",
        "利用者情報の管理",
        "利用者停止・解除",
        "証明書失効",
    ] {
        assert!(brsk001.has(item), "{item}");
    }
    let list = b.get("/brsk018").await;
    assert!(list.has("<h1>利用者管理 利用者一覧</h1>") && list.has("BRSK018"));
    for s in [
        "利用者を選択",
        "証明書失効",
        "失効完了",
        "再表示",
        "&lt; 利用者管理メニューへ",
        "失効 &gt;",
    ] {
        assert!(list.has(s), "{s}");
    }
    let cols = [
        "選択",
        "ログインID",
        "利用者名",
        "利用者区分",
        "証明書状態",
        "証明書有効期限",
    ]
    .map(|c| format!("<th>{c}</th>"))
    .concat();
    assert!(list.has(&cols), "table columns in order");
    kit.stop().await;
}

/// The rows of BRSK018 as (login ID, 利用者区分, 証明書状態, 証明書有効期限).
pub fn rows(body: &str) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for tr in body.split("<tr>").skip(2) {
        let cells: Vec<String> = tr
            .split("<td>")
            .skip(1)
            .map(|c| c.split("</td>").next().unwrap_or("").trim().to_string())
            .collect();
        if cells.len() == 5 {
            out.push((
                cells[0].clone(),
                cells[2].clone(),
                cells[3].clone(),
                cells[4].clone(),
            ));
        }
    }
    out
}

#[tokio::test]
async fn brsk018_shows_the_guides_users_states_and_dates_and_sorts_by_every_column() {
    let kit = Kit::start().await;
    let b = kit.browser();
    b.login("hanakodt", LOGIN_PW).await;
    let list = rows(&b.get("/brsk018").await.body);
    let want = [
        ("hanakodt", "管理者ユーザ", "発行済"),
        ("ichirodt", "一般ユーザ", "有効期限切れ"),
        ("jirodt", "マスターユーザ", "未発行"),
        ("sachikodt", "一般ユーザ", "失効済"),
        ("tarodt", "管理者ユーザ", "更新可"),
    ];
    assert_eq!(list.len(), 5, "only the company's own users: {list:?}");
    for ((id, role, state), row) in want.iter().zip(&list) {
        assert_eq!(
            (row.0.as_str(), row.1.as_str(), row.2.as_str()),
            (*id, *role, *state)
        );
        let dated = matches!(*state, "発行済" | "更新可");
        let is_date = row.3.len() > 10
            && row.3.contains('年')
            && row.3.contains('月')
            && row.3.contains("日 ")
            && row.3.ends_with('秒');
        assert_eq!(is_date, dated, "{id}: {}", row.3);
        if !dated {
            assert_eq!(row.3, "-");
        }
    }
    let order = |q: String| {
        let b = &b;
        async move {
            rows(&b.get(&format!("/brsk018?{q}")).await.body)
                .into_iter()
                .map(|r| r.0)
                .collect::<Vec<_>>()
        }
    };
    // Every column, both directions, the whole order: ties (same 区分,
    // no date) by ログインID; 降順 is 昇順 reversed.
    for (key, ascending) in [
        (
            "login_id",
            ["hanakodt", "ichirodt", "jirodt", "sachikodt", "tarodt"],
        ),
        // データ二郎 < データ太郎 < データ幸子 < データ朗 < 北銀 花子
        (
            "name",
            ["jirodt", "tarodt", "sachikodt", "ichirodt", "hanakodt"],
        ),
        (
            "role",
            ["jirodt", "hanakodt", "tarodt", "ichirodt", "sachikodt"],
        ),
        // 未発行, 発行済, 更新可, 有効期限切れ, 失効済
        (
            "state",
            ["jirodt", "hanakodt", "tarodt", "ichirodt", "sachikodt"],
        ),
        // 20 days, 335 days, then the rows that show no date ("-").
        (
            "expiry",
            ["tarodt", "hanakodt", "ichirodt", "jirodt", "sachikodt"],
        ),
    ] {
        let asc = format!("sort={key}&order=asc");
        let desc = format!("sort={key}&order=desc");
        assert_eq!(order(asc).await, ascending, "{key} 昇順");
        let mut descending = ascending;
        descending.reverse();
        assert_eq!(order(desc).await, descending, "{key} 降順");
    }
    // An unknown sort key falls back to ログインID 昇順 rather than failing.
    assert_eq!(order("sort=%27;drop&order=x".into()).await[0], "hanakodt");
    kit.stop().await;
}

#[tokio::test]
async fn a_second_start_reuses_the_ca_and_the_data() {
    let kit = Kit::start().await;
    let root = kit.svc.ca().root_pem();
    let again = kit.another_server().await;
    assert_eq!(again.ca().root_pem(), root);
    again.seed_demo().await.unwrap();
    assert_eq!(
        again.store().company_count().await.unwrap(),
        2,
        "demo data is created once"
    );
    kit.stop().await;
}
