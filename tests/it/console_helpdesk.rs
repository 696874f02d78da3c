//! The help desk's screens in the operator console: search across
//! companies (prefix match, paged), a user's state, certificates and
//! 操作履歴, lifting a stop and revoking on a phone request — each change
//! after the operator's own password, through the CLI's use cases; and the
//! roles × operations matrix, each refusal by its message beside the help
//! desk's success.

use shomei_core::{CompanyId, LoginId, Service};
use shomei_service::{
    ApprovalChange, CALLER_MISSING, INVALIDITY_IN_FUTURE, NOT_HELPDESK, OPERATOR_PASSWORD_WRONG,
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
    let p2 = get(&kit, &b, "/opr010?q=pgus&page=2").await;
    assert_eq!(listed(&p2.body), ["pguser21", "pguser22"]);
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
