//! The help desk's screens in the operator console: search across
//! companies (prefix match, paged), a user's state, certificates and
//! 操作履歴, lifting a stop and revoking on a phone request — each change
//! after the operator's own password, through the CLI's use cases; and the
//! roles × operations matrix, each refusal by its message beside the help
//! desk's success.

use shomei_core::{CompanyId, LoginId, Service};
use shomei_service::{
    ApprovalChange, CALLER_MISSING, INVALIDITY_IN_FUTURE, NOT_HELPDESK, OPERATOR_PASSWORD_WRONG,
    SEARCH_PAGE_INVALID, Settings,
};

use crate::console::{Seen, get, logged_in, post};
use crate::issuance::{assert_refused, cert_login, enrolled, gets_in};
use crate::testkit::{Kit, StoreOf, on, operator};

/// The login IDs a result page lists, in order.
fn listed(body: &str) -> Vec<String> {
    body.split("id=\"u-")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_owned)
        .collect()
}

/// Where the page's 次へ (`next`) or 前へ (`prev`) link goes, if it has one.
fn link(body: &str, id: &str) -> Option<String> {
    let at = body.find(&format!("\" id=\"{id}\""))?;
    let start = body[..at].rfind("href=\"")? + "href=\"".len();
    Some(body[start..at].replace("&amp;", "&"))
}

/// Every page of a search from `first`: by 次へ to the end, then by 前へ
/// back to the start; each walk's login IDs in the order listed (the way
/// back's pages put in order again) and each page's pager text.
async fn walk(
    kit: &Kit,
    b: &reqwest::Client,
    first: &str,
) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut forward = Vec::new();
    let mut pagers = Vec::new();
    let mut path = first.to_owned();
    let last = loop {
        let r = get(kit, b, &path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        forward.extend(listed(&r.body));
        let pager = r.body.split("id=\"pager\">").nth(1).unwrap_or_default();
        pagers.push(pager.split('\n').next().unwrap_or_default().to_owned());
        match link(&r.body, "next") {
            Some(next) => path = next,
            None => break r,
        }
    };
    let mut back: Vec<Vec<String>> = vec![listed(&last.body)];
    let mut page = last;
    while let Some(prev) = link(&page.body, "prev") {
        page = get(kit, b, &prev).await;
        back.push(listed(&page.body));
    }
    let backward = back.into_iter().rev().flatten().collect();
    (forward, backward, pagers)
}

/// The company's 操作履歴 rows, newest first, as actor/operation/result/target/detail.
async fn company_rows(kit: &Kit, company: i64) -> Vec<String> {
    kit.svc
        .store()
        .audit_for_company(CompanyId(company), 100, 0)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}/{}/{}/{}/{}",
                r.actor_login_id, r.operation, r.result, r.target_login_id, r.detail
            )
        })
        .collect()
}

#[tokio::test]
async fn the_help_desk_finds_users_across_companies_by_prefix_a_page_at_a_time() {
    let kit = Kit::start().await;
    let sato = operator(&kit, "sato", "helpdesk").await;
    let (b, _) = logged_in(&kit, &sato).await;

    // Login ID prefix, across both demo companies, by login ID.
    let r = get(&kit, &b, "/opr010?q=h").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(listed(&r.body), ["hanakodt", "hottojr01", "hottojr02"]);
    for s in [
        "株式会社ほくぎん商事",
        "有限会社ほっと物産",
        "3人中 1 / 1ページ",
    ] {
        assert!(r.body.contains(s), "{s}");
    }
    // Name and company name prefixes; letter case aside.
    let r = get(&kit, &b, "/opr010?q=%E3%83%87%E3%83%BC%E3%82%BF").await; // データ
    assert_eq!(
        listed(&r.body),
        ["ichirodt", "jirodt", "sachikodt", "tarodt"]
    );
    let r = get(&kit, &b, "/opr010?q=%E6%9C%89%E9%99%90").await; // 有限
    assert_eq!(listed(&r.body), ["hottojr01", "hottojr02"]);
    assert_eq!(
        listed(&get(&kit, &b, "/opr010?q=HOTTOJR0").await.body).len(),
        2
    );
    // A prefix, not a part: the middle of a company name finds nobody.
    let r = get(&kit, &b, "/opr010?q=%E3%81%BB%E3%81%A3%E3%81%A8").await; // ほっと
    assert!(listed(&r.body).is_empty());
    assert!(r.body.contains("該当する利用者はいません。"));
    // A certificate serial's first digits (as printed, with colons or not).
    let serial = kit.serial_of("hanakodt").await.to_hex();
    let r = get(&kit, &b, &format!("/opr010?q={}", &serial[..10])).await;
    assert_eq!(listed(&r.body), ["hanakodt"]);

    // Paged: 22 more users starting "pguser" in two companies, 20 a page.
    let other = kit
        .svc
        .operator_create_company("株式会社ページ", Service::BusinessIb, "root")
        .await
        .unwrap();
    for i in 1..=22 {
        let company = if i % 2 == 0 { CompanyId(1) } else { other };
        kit.svc
            .operator_create_master(company, &format!("pguser{i:02}"), "頁 太郎", "", "root")
            .await
            .unwrap();
    }
    let p1 = get(&kit, &b, "/opr010?q=pgus").await;
    assert_eq!(listed(&p1.body).len(), 20);
    assert_eq!(listed(&p1.body)[0], "pguser01");
    assert!(p1.body.contains("22人中 1 / 2ページ"));
    assert!(p1.body.contains("id=\"next\""));
    let next = link(&p1.body, "next").unwrap();
    assert_eq!(next, "/opr010?q=pgus&after=pguser20&page=2");
    let p2 = get(&kit, &b, &next).await;
    assert_eq!(listed(&p2.body), ["pguser21", "pguser22"]);
    assert!(p2.body.contains("22人中 2 / 2ページ"));
    assert!(p2.body.contains("id=\"prev\"") && !p2.body.contains("id=\"next\""));
    // A LIKE wildcard is a plain character: nobody's name starts with it.
    let r = get(&kit, &b, "/opr010?q=%25").await;
    assert!(r.body.contains("該当する利用者はいません。"), "{}", r.body);
    // Too long a text: its message.
    let r = get(&kit, &b, &format!("/opr010?q={}", "a".repeat(65))).await;
    assert!(
        r.body.contains(shomei_service::QUERY_TOO_LONG),
        "{}",
        r.body
    );
    kit.stop().await;
}

/// Fills in OPR011's phone revocation form.
async fn revoke(
    kit: &Kit,
    b: &reqwest::Client,
    csrf: &str,
    who: &str,
    caller: &str,
    password: &str,
) -> Seen {
    post(
        kit,
        b,
        "/opr011/revoke",
        &[
            ("csrf", csrf),
            ("id", who),
            ("reason", "1"),
            ("caller", caller),
            ("invalidity", ""),
            ("password", password),
        ],
    )
    .await
}

#[tokio::test]
async fn a_phone_revocation_refuses_the_customers_next_certificate_login() {
    let kit = Kit::start().await;
    let sato = operator(&kit, "sato", "helpdesk").await;
    let (cert, key) = enrolled(&kit, "jirodt").await;
    gets_in(&kit, &cert, &key).await;
    let (b, csrf) = logged_in(&kit, &sato).await;

    let d = get(&kit, &b, "/opr011?id=jirodt").await;
    assert_eq!(d.status, 200, "{}", d.body);
    for s in [
        "OPR011",
        "データ二郎",
        "株式会社ほくぎん商事",
        "発行済",
        "id=\"revoke\"",
    ] {
        assert!(d.body.contains(s), "{s}");
    }
    // Refused without the caller, and with a wrong password: the
    // certificate still gets in after each.
    let r = revoke(&kit, &b, &csrf, "jirodt", " ", &sato.confirm_password).await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains(CALLER_MISSING), "{}", r.body);
    let r = revoke(
        &kit,
        &b,
        &csrf,
        "jirodt",
        "経理部 山田様",
        "wrong-password-1",
    )
    .await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains(OPERATOR_PASSWORD_WRONG), "{}", r.body);
    // An invalidity date after now, or not a date: refused by its message.
    for (invalidity, message) in [
        ("2999-01-01T00:00", INVALIDITY_IN_FUTURE),
        (
            "2026/12/01 10:00",
            "無効日時は「年-月-日 時:分」の形で入力してください。",
        ),
    ] {
        let r = post(
            &kit,
            &b,
            "/opr011/revoke",
            &[
                ("csrf", csrf.as_str()),
                ("id", "jirodt"),
                ("reason", "1"),
                ("caller", "経理部 山田様"),
                ("invalidity", invalidity),
                ("password", sato.confirm_password.as_str()),
            ],
        )
        .await;
        assert_eq!(r.status, 403, "{invalidity}");
        assert!(r.body.contains(message), "{invalidity}: {}", r.body);
    }
    gets_in(&kit, &cert, &key).await;

    // With both: OPR013, and the customer's next certificate login is refused.
    let r = revoke(
        &kit,
        &b,
        &csrf,
        "jirodt",
        "経理部 山田様",
        &sato.confirm_password,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    for s in [
        "OPR013",
        "電子証明書を失効しました。",
        "経理部 山田様",
        &kit.serial_of("jirodt").await.to_string(),
    ] {
        assert!(r.body.contains(s), "{s}: {}", r.body);
    }
    assert_refused(
        &cert_login(&kit, Some((&cert, &key))).await,
        rustls::AlertDescription::CertificateRevoked,
        "a certificate revoked on a phone request",
    );
    // Now 失効済, without the form; a second revocation is refused.
    let d = get(&kit, &b, "/opr011?id=jirodt").await;
    assert!(d.body.contains("失効済") && !d.body.contains("id=\"revoke\""));
    let r = revoke(
        &kit,
        &b,
        &csrf,
        "jirodt",
        "経理部 山田様",
        &sato.confirm_password,
    )
    .await;
    assert!(
        r.body
            .contains("有効な電子証明書がないため失効できません（証明書状態: 失効済）。"),
        "{}",
        r.body
    );
    let rows = company_rows(&kit, 1).await;
    let serial = kit.serial_of("jirodt").await;
    assert_eq!(
        rows[..2],
        [
            "銀行:sato/証明書失効/失敗/jirodt/電話受付による失効: 証明書が有効ではありません（失効済） 依頼者: 経理部 山田様".to_string(),
            format!("銀行:sato/証明書失効/成功/jirodt/電話受付による失効: シリアル番号 {serial}（理由 1） 依頼者: 経理部 山田様"),
        ]
    );
    // The detail shows it among the user's 操作履歴.
    assert!(d.body.contains("依頼者: 経理部 山田様"));
    kit.stop().await;
}

#[tokio::test]
async fn once_the_bank_raised_the_revocation_rule_opr013_submits_the_revocation_for_approval() {
    let kit = Kit::start().await;
    let sato = operator(&kit, "sato", "helpdesk").await;
    let ito = operator(&kit, "ito", "helpdesk").await;
    kit.svc
        .break_glass(
            ApprovalChange::ChangeApprovalRule {
                rule: "revoke-for-company".into(),
                required: 1,
                roles: "helpdesk".into(),
            },
            "root",
            "承認ルールの設定",
        )
        .await
        .unwrap();
    let (b, csrf) = logged_in(&kit, &sato).await;
    let r = revoke(
        &kit,
        &b,
        &csrf,
        "hottojr02",
        "総務部 北陸様",
        &sato.confirm_password,
    )
    .await;
    // Not revoked: a request (OPR024), with the rule's message beside the
    // control above, where the same form revokes at once (OPR013).
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("OPR024")
            && r.body
                .contains("企業に代わる証明書失効: 有限会社ほっと物産（hottojr02"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("電子証明書を失効しました。"));
    assert!(!kit.revoked("hottojr02").await);
    let rows = company_rows(&kit, 2).await;
    assert!(
        rows[0].starts_with("銀行:sato/証明書失効/失敗/hottojr02/電話受付による失効: 承認が必要です（必要な承認 1名）"),
        "{rows:?}"
    );
    // Another ヘルプデスク's approval revokes it.
    let p = kit.svc.approval_list(false, 1).await.unwrap();
    let v = &p.requests[0];
    assert_eq!(v.requester, "sato");
    let me = on(&kit.svc, &ito).await;
    kit.svc
        .approve_request(&me, v.id, v.version, &ito.confirm_password, "test")
        .await
        .unwrap();
    assert!(kit.revoked("hottojr02").await);
    let rows = company_rows(&kit, 2).await;
    assert!(
        rows[0].starts_with("銀行:ito/証明書失効/成功/hottojr02/電話受付による失効: シリアル番号")
            && rows[0].ends_with("依頼者: 総務部 北陸様"),
        "{rows:?}"
    );
    kit.stop().await;
}

#[tokio::test]
async fn the_help_desk_lifts_a_stop_after_the_operators_password() {
    let kit = Kit::start().await;
    let sato = operator(&kit, "sato", "helpdesk").await;
    let jiro = LoginId::parse("jirodt").unwrap();
    {
        let mut tx = kit.svc.store().begin().await.unwrap();
        let mut u = tx.user_by_login_id(&jiro).await.unwrap().unwrap();
        u.counters.admin_stopped = true;
        u.counters.confirm_stopped = true;
        tx.save_counters(u.id, &u.counters).await.unwrap();
        tx.commit().await.unwrap();
    }
    let (b, csrf) = logged_in(&kit, &sato).await;
    let d = get(&kit, &b, "/opr011?id=jirodt").await;
    assert!(
        d.body.contains("利用停止、確認用パスワード利用停止"),
        "{}",
        d.body
    );
    assert!(d.body.contains("id=\"lift\""));

    let r = run(&kit, &b, &csrf, "wrong-password-1", HelpDeskOp::Lift).await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains(OPERATOR_PASSWORD_WRONG));
    assert!(kit.counters("jirodt").await.admin_stopped, "nothing lifted");
    let r = run(&kit, &b, &csrf, &sato.confirm_password, HelpDeskOp::Lift).await;
    assert_eq!(r.status, 200, "{}", r.body);
    for s in [
        "OPR012",
        "一時停止・利用停止を解除しました。",
        "利用停止、確認用パスワード利用停止",
    ] {
        assert!(r.body.contains(s), "{s}");
    }
    let c = kit.counters("jirodt").await;
    assert!(!c.admin_stopped && !c.confirm_stopped);
    assert!(
        company_rows(&kit, 1).await[0].starts_with("銀行:sato/ロック解除/成功/jirodt/"),
        "{:?}",
        company_rows(&kit, 1).await
    );
    // Nothing stopped now: no lift form.
    assert!(
        !get(&kit, &b, "/opr011?id=jirodt")
            .await
            .body
            .contains("id=\"lift\"")
    );
    kit.stop().await;
}

/// The console's help desk operations, each as one request of an
/// operator's session.
#[derive(Debug, Clone, Copy)]
enum HelpDeskOp {
    Search,
    Detail,
    Lift,
    Revoke,
    Reset,
}

async fn run(kit: &Kit, b: &reqwest::Client, csrf: &str, password: &str, op: HelpDeskOp) -> Seen {
    match op {
        HelpDeskOp::Search => get(kit, b, "/opr010?q=j").await,
        HelpDeskOp::Detail => get(kit, b, "/opr011?id=jirodt").await,
        HelpDeskOp::Lift => {
            post(
                kit,
                b,
                "/opr011/lift",
                &[("csrf", csrf), ("id", "jirodt"), ("password", password)],
            )
            .await
        }
        HelpDeskOp::Revoke => revoke(kit, b, csrf, "jirodt", "山田様", password).await,
        HelpDeskOp::Reset => {
            post(
                kit,
                b,
                "/opr011/reset",
                &[
                    ("csrf", csrf),
                    ("id", "hanakodt"),
                    ("kind", "confirm"),
                    ("password", password),
                ],
            )
            .await
        }
    }
}

#[tokio::test]
async fn only_the_help_desk_role_opens_the_help_desk_screens() {
    let kit = Kit::start().await;
    let (cert, key) = enrolled(&kit, "jirodt").await;
    let ops = [
        HelpDeskOp::Search,
        HelpDeskOp::Detail,
        HelpDeskOp::Lift,
        HelpDeskOp::Revoke,
        HelpDeskOp::Reset,
    ];
    // Every other role: refused with the role's message on every operation,
    // and nothing changed (the certificate still gets in).
    for (name, role) in [
        ("suzuki", "audit"),
        ("tanaka", "business-admin"),
        ("kato", "operations-admin"),
    ] {
        let op = operator(&kit, name, role).await;
        let (b, csrf) = logged_in(&kit, &op).await;
        assert!(
            !get(&kit, &b, "/opr001").await.body.contains("/opr010"),
            "{role}: no menu entry"
        );
        for o in ops {
            let r = run(&kit, &b, &csrf, &op.confirm_password, o).await;
            assert_eq!(r.status, 403, "{role} {o:?}");
            assert!(r.body.contains(NOT_HELPDESK), "{role} {o:?}: {}", r.body);
        }
    }
    gets_in(&kit, &cert, &key).await;
    // The help desk: every operation goes through (the positive control).
    let sato = operator(&kit, "sato", "helpdesk,audit").await;
    let (b, csrf) = logged_in(&kit, &sato).await;
    assert!(get(&kit, &b, "/opr001").await.body.contains("/opr010"));
    for (o, screen) in ops
        .into_iter()
        .zip(["OPR010", "OPR011", "OPR012", "OPR013", "OPR014"])
    {
        let r = run(&kit, &b, &csrf, &sato.confirm_password, o).await;
        assert_eq!(r.status, 200, "{o:?}: {}", r.body);
        assert!(r.body.contains(screen), "{o:?}");
    }
    assert!(kit.revoked("jirodt").await);
    // Each refusal is one row of the bank's own.
    let mut refused = 0;
    kit.svc
        .store()
        .audit_for_each(None, |r| {
            if r.operation == "ヘルプデスク業務" && r.result == "失敗" {
                refused += 1;
            }
        })
        .await
        .unwrap();
    assert_eq!(refused, 15);
    kit.stop().await;
}

/// The count stops at `helpdesk_search_count_max`: beyond it the screen
/// says 「N件以上」 and pages by login ID; 次へ to the end and 前へ back list
/// every user found exactly once, in login-ID order, over the cap and under
/// it, with users of both companies as they are; a page key that is no
/// login ID is refused with its message beside the same page by a good key.
#[tokio::test]
async fn the_search_counts_up_to_its_cap_and_pages_by_login_id() {
    let kit = Kit::start_with(Settings {
        helpdesk_search_count_max: 21,
        ..Settings::default()
    })
    .await;
    let sato = operator(&kit, "sato", "helpdesk").await;
    let (b, _) = logged_in(&kit, &sato).await;
    // 22 users "kyuser01".. in two companies: 21 named 鍵 (the cap), one 錠.
    let other = kit
        .svc
        .operator_create_company("株式会社キー", Service::BusinessIb, "root")
        .await
        .unwrap();
    let mut all = Vec::new();
    for i in 1..=22 {
        let company = if i % 2 == 0 { CompanyId(1) } else { other };
        let name = if i == 22 { "錠 次郎" } else { "鍵 一郎" };
        let login = format!("kyuser{i:02}");
        kit.svc
            .operator_create_master(company, &login, name, "", "root")
            .await
            .unwrap();
        all.push(login);
    }

    // Over the cap (22 > 21): not counted further, pages by login ID.
    let p1 = get(&kit, &b, "/opr010?q=kyus").await;
    assert!(p1.body.contains("21件以上 1ページ目"), "{}", p1.body);
    assert!(!p1.body.contains("人中"));
    // Both companies' users, each with their own company.
    for s in ["株式会社キー", "株式会社ほくぎん商事"] {
        assert!(p1.body.contains(s), "{s}");
    }
    let (forward, backward, pagers) = walk(&kit, &b, "/opr010?q=kyus").await;
    assert_eq!(forward, all);
    assert_eq!(backward, all);
    assert_eq!(pagers, ["21件以上 1ページ目", "21件以上 2ページ目"]);

    // At the cap (21): counted, the same paging by key.
    let (forward, backward, pagers) = walk(&kit, &b, "/opr010?q=%E9%8D%B5").await; // 鍵
    assert_eq!(forward, all[..21]);
    assert_eq!(backward, all[..21]);
    assert_eq!(pagers, ["21人中 1 / 2ページ", "21人中 2 / 2ページ"]);

    // Everyone (the demo's users too), over the cap: each once, in order.
    let (forward, backward, _) = walk(&kit, &b, "/opr010?q=").await;
    let mut everyone: Vec<String> = kit
        .svc
        .store()
        .search_users("", None, 1000, 1000, shomei_store::SearchFrom::First)
        .await
        .unwrap()
        .hits
        .into_iter()
        .map(|h| h.user.login_id.as_str().to_owned())
        .collect();
    assert!(everyone.len() > 21 + 5, "{everyone:?}");
    assert_eq!(forward, everyone);
    assert_eq!(backward, everyone);
    everyone.sort();
    everyone.dedup();
    assert_eq!(forward, everyone);

    // A key the links never make: its message, no list; the same page by
    // a good key lists its users.
    let good = get(&kit, &b, "/opr010?q=kyus&after=kyuser20&page=2").await;
    assert_eq!(listed(&good.body), ["kyuser21", "kyuser22"]);
    assert!(!good.body.contains(SEARCH_PAGE_INVALID));
    for bad in [
        "after=kyuser20%27%20OR%201%3D1",
        "after=",
        "before=%E9%8D%B5",
        &format!("after={}", "a".repeat(65)),
        "after=kyuser05&before=kyuser10",
        "after=kyuser20&page=two",
        "after=kyuser20&page=0",
        "after=kyuser20&page=-1",
    ] {
        let r = get(&kit, &b, &format!("/opr010?q=kyus&{bad}")).await;
        assert_eq!(r.status, 200, "{bad}");
        assert!(r.body.contains(SEARCH_PAGE_INVALID), "{bad}: {}", r.body);
        assert!(listed(&r.body).is_empty(), "{bad}");
    }
    kit.stop().await;
}
