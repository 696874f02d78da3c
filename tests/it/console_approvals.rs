//! Four-eyes approval in the operator console: a company opened by one
//! 業務管理者 and approved by another, whose マスター then logs in; the
//! requester's own approval, a second vote and a role outside the rule
//! refused by their messages beside the approval that commits; rejection;
//! expiry by the test clock; a company closed (its users stopped, its
//! certificates revoked); a マスター registered only when none is left; the
//! rules changed through their own approval; and two nodes approving the
//! same request at the same moment committing it once.

use shomei_core::{CompanyId, Operation, Service};
use shomei_service::{
    ALREADY_VOTED, Applied, ApprovalChange, ApprovalError, ApprovalRefusal, Approved,
    ConsoleOperator, EXPIRED, MASTER_LEFT, NOT_BUSINESS_ADMIN, NewOperator, OWN_REQUEST, Shomei,
    already_committed,
};

use crate::console::{get, logged_in, one_time_password, operator, post};
use crate::issuance::{assert_refused, cert_login, enrolled, gets_in};
use crate::testkit::{Kit, StoreOf, side_by_side};

/// The operator as the console's service sees them.
async fn on(svc: &Shomei, op: &NewOperator) -> ConsoleOperator {
    svc.console_operator(&op.serial).await.unwrap().unwrap()
}

fn open_company(company: &str, login_id: &str) -> ApprovalChange {
    ApprovalChange::OpenCompany {
        company: company.into(),
        service: "business_ib".into(),
        login_id: login_id.into(),
        name: "開設 太郎".into(),
        email: "kaisetsu@example.jp".into(),
    }
}

/// The bank's own 操作履歴 rows (no company), oldest first, as
/// actor/operation/result/target.
async fn bank_rows(kit: &Kit) -> Vec<String> {
    let mut rows = vec![];
    kit.svc
        .store()
        .audit_for_each(None, |r| {
            if r.company_id.is_none() {
                rows.push(format!(
                    "{}/{}/{}/{}",
                    r.actor_login_id, r.operation, r.result, r.target_login_id
                ));
            }
        })
        .await
        .unwrap();
    rows
}

fn count(rows: &[String], s: &str) -> usize {
    rows.iter().filter(|r| r.as_str() == s).count()
}

async fn company_named(kit: &Kit, name: &str) -> Option<CompanyId> {
    kit.svc
        .store()
        .companies()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name == name)
        .map(|c| c.id)
}

/// The request number OPR024 shows.
pub(crate) fn request_id(body: &str) -> i64 {
    let at = body
        .find("申請番号</th><td>")
        .expect("OPR024 names the request")
        + "申請番号</th><td>".len();
    body[at..].split('<').next().unwrap().parse().unwrap()
}

fn refused(e: ApprovalError) -> ApprovalRefusal {
    match e {
        ApprovalError::Refused(r) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_company_opened_by_one_operator_and_approved_by_another_lets_its_master_log_in() {
    let kit = Kit::start().await;
    let kato = operator(&kit, "kato", "business-admin").await;
    let mori = operator(&kit, "mori", "business-admin").await;
    let (a, a_csrf) = logged_in(&kit, &kato).await;
    let (b, b_csrf) = logged_in(&kit, &mori).await;

    // OPR023: a wrong field is refused by its message, nothing waits.
    let form = |company: &'static str, login: &'static str, pw: &str| -> Vec<(&str, String)> {
        vec![
            ("company", company.into()),
            ("service", "business_ib".into()),
            ("login_id", login.into()),
            ("name", "開設 太郎".into()),
            ("email", String::new()),
            ("password", pw.into()),
            ("csrf", a_csrf.clone()),
        ]
    };
    let send = async |f: Vec<(&str, String)>| {
        let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        post(&kit, &a, "/opr023", &f).await
    };
    let r = send(form("株式会社承認テスト", "x", "")).await;
    assert_eq!(r.status, 403);
    assert!(
        r.body.contains("ログインIDは") && r.body.contains("桁の半角英数字で入力してください。"),
        "{}",
        r.body
    );
    let r = send(form("株式会社承認テスト", "shonin01", "wrong-password-1")).await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains(shomei_service::OPERATOR_PASSWORD_WRONG));
    assert!(
        kit.svc
            .approval_list(false, 1)
            .await
            .unwrap()
            .requests
            .is_empty()
    );

    // Submitted: OPR024; the company does not exist yet.
    let r = send(form(
        "株式会社承認テスト",
        "shonin01",
        &kato.confirm_password,
    ))
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("OPR024") && r.body.contains("申請を受け付けました。"));
    let id = request_id(&r.body);
    assert_eq!(company_named(&kit, "株式会社承認テスト").await, None);

    // In both operators' OPR050.
    for b in [&a, &b] {
        let l = get(&kit, b, "/opr050").await;
        assert!(l.body.contains(&format!("id=\"r-{id}\"")), "{}", l.body);
        assert!(
            l.body
                .contains("企業開設: 株式会社承認テスト（マスター shonin01）")
        );
    }
    let d = get(&kit, &a, &format!("/opr051?id={id}")).await;
    assert!(d.body.contains("承認待ち") && d.body.contains("shonin01"));
    let version = kit
        .svc
        .approval_detail(id)
        .await
        .unwrap()
        .version
        .to_string();
    let decide = |csrf: &str, decision: &'static str, pw: &str| {
        vec![
            ("csrf", csrf.to_owned()),
            ("id", id.to_string()),
            ("version", version.clone()),
            ("decision", decision.to_owned()),
            ("password", pw.to_owned()),
        ]
    };

    // The requester's own approval: refused by its message, still waiting.
    let f = decide(&a_csrf, "approve", &kato.confirm_password);
    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = post(&kit, &a, "/opr051/decide", &f).await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains(OWN_REQUEST), "{}", r.body);
    assert_eq!(company_named(&kit, "株式会社承認テスト").await, None);

    // Another 業務管理者's approval commits it: the temporary passwords
    // shown once, on the approver's OPR052.
    let f = decide(&b_csrf, "approve", &mori.confirm_password);
    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = post(&kit, &b, "/opr051/decide", &f).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("OPR052") && r.body.contains("申請された変更を実行しました。"));
    let login_pw = one_time_password(&r.body, "初期ログインパスワード");
    assert_eq!(login_pw.len(), 12);
    let company = company_named(&kit, "株式会社承認テスト")
        .await
        .expect("opened");

    // Again: refused, it is done; the company was opened once.
    let r = post(&kit, &b, "/opr051/decide", &f).await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains(&already_committed("mori")), "{}", r.body);

    // The マスター logs in with the temporary password (and must change it).
    let portal = kit.browser();
    let p = portal.login("shonin01", &login_pw).await;
    assert!(p.error().is_none(), "{:?}", p.error());
    assert_ne!(p.path(), "/login", "{}", p.body);

    // One row per step, on the bank's chain; the change's own rows on the
    // company's.
    let rows = bank_rows(&kit).await;
    let t = format!("申請{id}");
    assert_eq!(count(&rows, &format!("銀行:kato/承認申請/成功/{t}")), 1);
    assert_eq!(count(&rows, &format!("銀行:kato/承認/失敗/{t}")), 1);
    assert_eq!(count(&rows, &format!("銀行:mori/承認/成功/{t}")), 1);
    assert_eq!(
        count(&rows, &format!("銀行:mori/承認済み変更の実行/成功/{t}")),
        1
    );
    let c_rows: Vec<String> = kit
        .svc
        .store()
        .audit_for_company(company, 10, 0)
        .await
        .unwrap()
        .iter()
        .map(|r| format!("{}/{}/{}", r.actor_login_id, r.operation, r.target_login_id))
        .collect();
    assert!(
        c_rows.contains(&"銀行:mori/企業登録/".to_owned()),
        "{c_rows:?}"
    );
    assert!(
        c_rows.contains(&"銀行:mori/利用者登録/shonin01".to_owned()),
        "{c_rows:?}"
    );
    kit.stop().await;
}

#[tokio::test]
async fn roles_decide_who_requests_and_who_approves_each_refusal_by_its_message() {
    let kit = Kit::start().await;
    let kato = operator(&kit, "kato", "business-admin").await;
    let mori = operator(&kit, "mori", "business-admin").await;
    let sato = operator(&kit, "sato", "helpdesk").await;
    let ito = operator(&kit, "ito", "audit").await;
    let ueda = operator(&kit, "ueda", "operations-admin").await;
    let noda = operator(&kit, "noda", "operations-admin").await;

    // OPR020: the 業務管理者's screen only.
    let (hb, _) = logged_in(&kit, &sato).await;
    let r = get(&kit, &hb, "/opr020").await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains(NOT_BUSINESS_ADMIN));
    let (bb, _) = logged_in(&kit, &kato).await;
    let r = get(&kit, &bb, "/opr020").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("株式会社ほくぎん商事") && r.body.contains("id=\"close-1\""));

    // Who requests: each kind by its role, each refusal by its message.
    let svc = &kit.svc;
    let rule = ApprovalChange::ChangeApprovalRule {
        rule: "open-company".into(),
        required: 2,
        roles: "business-admin".into(),
    };
    let cases: Vec<(&NewOperator, ApprovalChange, Option<&str>)> = vec![
        (
            &sato,
            open_company("株式会社A", "aaaaaa01"),
            Some("業務管理者"),
        ),
        (
            &ito,
            open_company("株式会社A", "aaaaaa01"),
            Some("業務管理者"),
        ),
        (
            &ueda,
            open_company("株式会社A", "aaaaaa01"),
            Some("業務管理者"),
        ),
        (&kato, open_company("株式会社A", "aaaaaa01"), None),
        (&kato, rule.clone(), Some("運用管理者")),
        (&sato, rule.clone(), Some("運用管理者")),
        (&ueda, rule.clone(), None),
    ];
    let mut ids = vec![];
    for (who, change, refusal) in cases {
        let op = on(svc, who).await;
        let got = svc
            .submit_approval(&op, change, &who.confirm_password, "test")
            .await;
        match refusal {
            Some(role) => {
                let r = refused(got.unwrap_err());
                assert_eq!(
                    r.message_ja(),
                    format!("この申請は{role}の役割を持つオペレーターだけが行えます。")
                );
                assert!(
                    r.to_string()
                        .starts_with("submitting this change needs the"),
                    "{r}"
                );
            }
            None => ids.push(got.unwrap().id),
        }
    }
    let (open_id, rule_id) = (ids[0], ids[1]);

    // Who approves: the rule's roles, never the requester; the positive
    // control commits.
    let version = async |id| svc.approval_detail(id).await.unwrap().version;
    for (who, id) in [
        (&sato, open_id),
        (&ito, open_id),
        (&ueda, open_id),
        (&kato, rule_id),
    ] {
        let op = on(svc, who).await;
        let r = refused(
            svc.approve_request(&op, id, version(id).await, &who.confirm_password, "test")
                .await
                .unwrap_err(),
        );
        assert!(matches!(r, ApprovalRefusal::MayNotApprove(_)), "{r:?}");
        assert!(
            r.message_ja().starts_with("この申請を承認・否認できるのは"),
            "{}",
            r.message_ja()
        );
    }
    let r = refused(
        svc.approve_request(
            &on(svc, &kato).await,
            open_id,
            version(open_id).await,
            &kato.confirm_password,
            "test",
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(r, ApprovalRefusal::OwnRequest);
    assert_eq!(r.message_ja(), OWN_REQUEST);
    assert_eq!(
        r.to_string(),
        "you submitted this request; another operator must approve it"
    );
    let done = svc
        .approve_request(
            &on(svc, &mori).await,
            open_id,
            version(open_id).await,
            &mori.confirm_password,
            "test",
        )
        .await
        .unwrap();
    assert!(matches!(
        done,
        Approved::Committed {
            applied: Applied::CompanyOpened { .. },
            ..
        }
    ));
    let done = svc
        .approve_request(
            &on(svc, &noda).await,
            rule_id,
            version(rule_id).await,
            &noda.confirm_password,
            "test",
        )
        .await
        .unwrap();
    assert!(matches!(
        done,
        Approved::Committed {
            applied: Applied::RuleChanged(_),
            ..
        }
    ));

    // The new rule: two approvals for opening a company; nobody counts twice.
    let rules = svc.approval_rules().await.unwrap();
    assert_eq!(rules[0].required, 2);
    let third = operator(&kit, "hara", "business-admin").await;
    let s = svc
        .submit_approval(
            &on(svc, &kato).await,
            open_company("株式会社B", "bbbbbb01"),
            &kato.confirm_password,
            "test",
        )
        .await
        .unwrap();
    assert_eq!(s.required, 2);
    let first = svc
        .approve_request(
            &on(svc, &mori).await,
            s.id,
            version(s.id).await,
            &mori.confirm_password,
            "test",
        )
        .await
        .unwrap();
    assert!(matches!(
        first,
        Approved::Waiting {
            approvals: 1,
            required: 2,
            ..
        }
    ));
    let r = refused(
        svc.approve_request(
            &on(svc, &mori).await,
            s.id,
            version(s.id).await,
            &mori.confirm_password,
            "test",
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(r, ApprovalRefusal::AlreadyVoted);
    assert_eq!(r.message_ja(), ALREADY_VOTED);
    assert_eq!(company_named(&kit, "株式会社B").await, None);
    let last = svc
        .approve_request(
            &on(svc, &third).await,
            s.id,
            version(s.id).await,
            &third.confirm_password,
            "test",
        )
        .await
        .unwrap();
    assert!(matches!(last, Approved::Committed { .. }));
    assert!(company_named(&kit, "株式会社B").await.is_some());

    // A rule cannot turn four eyes off for a kind that needs them.
    let r = refused(
        svc.submit_approval(
            &on(svc, &ueda).await,
            ApprovalChange::ChangeApprovalRule {
                rule: "close-company".into(),
                required: 0,
                roles: "business-admin".into(),
            },
            &ueda.confirm_password,
            "test",
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(r.message_ja(), "必要な承認数は1～5名で指定してください。");
    kit.stop().await;
}

#[tokio::test]
async fn a_rejection_ends_a_request_and_an_unapproved_one_expires_after_24_hours() {
    let kit = Kit::start().await;
    let svc = &kit.svc;
    let kato = operator(&kit, "kato", "business-admin").await;
    let mori = operator(&kit, "mori", "business-admin").await;
    let hara = operator(&kit, "hara", "business-admin").await;
    let (k, m, h) = (
        on(svc, &kato).await,
        on(svc, &mori).await,
        on(svc, &hara).await,
    );

    // Rejected by mori: nothing changes, hara's approval comes too late.
    let s = svc
        .submit_approval(
            &k,
            open_company("株式会社否認", "hinin001"),
            &kato.confirm_password,
            "test",
        )
        .await
        .unwrap();
    let v = svc.approval_detail(s.id).await.unwrap().version;
    svc.reject_request(&m, s.id, v, &mori.confirm_password, "test")
        .await
        .unwrap();
    let r = refused(
        svc.approve_request(&h, s.id, v + 1, &hara.confirm_password, "test")
            .await
            .unwrap_err(),
    );
    assert_eq!(r, ApprovalRefusal::NotPending("否認"));
    assert_eq!(company_named(&kit, "株式会社否認").await, None);

    // Expiry: within 24 h it still commits (control on another request);
    // after them, refused as expired, with its row.
    let early = svc
        .submit_approval(
            &k,
            open_company("株式会社期限内", "kigen001"),
            &kato.confirm_password,
            "test",
        )
        .await
        .unwrap();
    let late = svc
        .submit_approval(
            &k,
            open_company("株式会社期限切れ", "kigen002"),
            &kato.confirm_password,
            "test",
        )
        .await
        .unwrap();
    kit.clock.advance(time::Duration::hours(23));
    let v = svc.approval_detail(early.id).await.unwrap().version;
    assert!(matches!(
        svc.approve_request(&m, early.id, v, &mori.confirm_password, "test")
            .await
            .unwrap(),
        Approved::Committed { .. }
    ));
    kit.clock.advance(time::Duration::hours(1));
    let v = svc.approval_detail(late.id).await.unwrap().version;
    let e = svc
        .approve_request(&m, late.id, v, &mori.confirm_password, "test")
        .await
        .unwrap_err();
    let r = refused(e);
    assert!(
        r == ApprovalRefusal::NotPending("期限切れ") || r == ApprovalRefusal::Expired,
        "{r:?}"
    );
    assert!(r.message_ja() == EXPIRED || r.message_ja().contains("期限切れ"));
    assert_eq!(
        svc.approval_detail(late.id).await.unwrap().state,
        "期限切れ"
    );
    assert_eq!(company_named(&kit, "株式会社期限切れ").await, None);
    let rows = bank_rows(&kit).await;
    assert_eq!(
        count(
            &rows,
            &format!("システム/承認期限切れ/成功/申請{}", late.id)
        ),
        1
    );
    assert_eq!(
        count(&rows, &format!("銀行:mori/否認/成功/申請{}", s.id)),
        1
    );
    // The list no longer offers either.
    let pending = svc.approval_list(false, 1).await.unwrap();
    assert!(pending.requests.is_empty(), "{:?}", pending.requests);
    kit.stop().await;
}

#[tokio::test]
async fn a_closed_company_has_its_users_stopped_and_its_certificates_revoked() {
    let kit = Kit::start().await;
    let kato = operator(&kit, "kato", "business-admin").await;
    let mori = operator(&kit, "mori", "business-admin").await;
    let (cert, key) = enrolled(&kit, "jirodt").await;
    gets_in(&kit, &cert, &key).await;
    let (a, csrf) = logged_in(&kit, &kato).await;
    let form = get(&kit, &a, "/opr021?company=1").await;
    assert!(
        form.body.contains("OPR021") && form.body.contains("株式会社ほくぎん商事"),
        "{}",
        form.body
    );
    let r = post(
        &kit,
        &a,
        "/opr021",
        &[
            ("csrf", &csrf),
            ("company_id", "1"),
            ("password", &kato.confirm_password),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = request_id(&r.body);
    // Waiting: the certificate still gets in.
    gets_in(&kit, &cert, &key).await;

    let svc = &kit.svc;
    let v = svc.approval_detail(id).await.unwrap().version;
    let done = svc
        .approve_request(&on(svc, &mori).await, id, v, &mori.confirm_password, "test")
        .await
        .unwrap();
    let Approved::Committed {
        applied:
            Applied::CompanyClosed {
                users_stopped,
                certificates_revoked,
                ..
            },
        ..
    } = done
    else {
        panic!("{done:?}")
    };
    assert!(users_stopped >= 4, "{users_stopped}");
    assert!(certificates_revoked >= 1);
    assert_refused(
        &cert_login(&kit, Some((&cert, &key))).await,
        rustls::AlertDescription::CertificateRevoked,
        "a closed company's certificate",
    );
    assert!(kit.counters("tarodt").await.admin_stopped);
    assert!(kit.counters("jirodt").await.admin_stopped);
    // The other demo company is untouched (control).
    assert!(!kit.counters("hottojr01").await.admin_stopped);
    // A closed company takes no more requests.
    let r = refused(
        svc.submit_approval(
            &on(svc, &kato).await,
            ApprovalChange::CloseCompany {
                company_id: 1,
                company: "x".into(),
            },
            &kato.confirm_password,
            "test",
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(r.message_ja(), "この企業はすでに解約されています。");
    let l = get(&kit, &a, "/opr020").await;
    assert!(l.body.contains("解約済み") && !l.body.contains("id=\"close-1\""));
    kit.stop().await;
}

#[tokio::test]
async fn a_master_is_registered_only_for_a_company_that_has_none_left() {
    let kit = Kit::start().await;
    let svc = &kit.svc;
    let kato = operator(&kit, "kato", "business-admin").await;
    let mori = operator(&kit, "mori", "business-admin").await;
    let k = on(svc, &kato).await;
    let master = |company_id: i64| ApprovalChange::RegisterMaster {
        company_id,
        company: "c".into(),
        login_id: "newmast01".into(),
        name: "新 マスター".into(),
        email: "".into(),
    };
    // Company 1 has its マスター: refused.
    let r = refused(
        svc.submit_approval(&k, master(1), &kato.confirm_password, "test")
            .await
            .unwrap_err(),
    );
    assert_eq!(r.message_ja(), MASTER_LEFT);
    // A company without one: registered on approval.
    let empty = svc
        .operator_create_company("株式会社マスター不在", Service::BusinessIb, "root")
        .await
        .unwrap();
    let s = svc
        .submit_approval(&k, master(empty.0), &kato.confirm_password, "test")
        .await
        .unwrap();
    let v = svc.approval_detail(s.id).await.unwrap().version;
    let done = svc
        .approve_request(
            &on(svc, &mori).await,
            s.id,
            v,
            &mori.confirm_password,
            "test",
        )
        .await
        .unwrap();
    assert!(matches!(
        done,
        Approved::Committed {
            applied: Applied::MasterRegistered { .. },
            ..
        }
    ));
    assert!(kit.has_user("newmast01").await);
    kit.stop().await;
}

#[tokio::test]
async fn opr020_offers_master_registration_only_for_a_company_without_a_master() {
    let kit = Kit::start().await;
    let kato = operator(&kit, "kato", "business-admin").await;
    let (b, _) = logged_in(&kit, &kato).await;
    let empty = kit
        .svc
        .operator_create_company("株式会社マスター不在", Service::BusinessIb, "root")
        .await
        .unwrap();
    let page = get(&kit, &b, "/opr020").await;
    assert_eq!(page.status, 200);
    let row = |id: i64| {
        let at = page
            .body
            .find(&format!("<tr id=\"c-{id}\">"))
            .unwrap_or_else(|| panic!("no company {id} in {}", page.body));
        let rest = &page.body[at..];
        rest[..rest.find("</tr>").unwrap()].to_owned()
    };
    // The company without a マスター: offered (the control).
    let e = row(empty.0);
    assert!(e.contains("株式会社マスター不在"), "{e}");
    assert!(
        e.contains(&format!("href=\"/opr022?company={}\"", empty.0)),
        "{e}"
    );
    // The demo company has its マスター: its other tasks, no マスター登録.
    let one = row(1);
    assert!(
        one.contains("/opr025?company=1") && one.contains("/opr021?company=1"),
        "{one}"
    );
    assert!(
        !one.contains("/opr022") && !one.contains("マスター登録"),
        "{one}"
    );
    kit.stop().await;
}

#[tokio::test]
async fn two_nodes_approving_one_request_at_the_same_moment_commit_it_once() {
    let kit = Kit::start().await;
    let kato = operator(&kit, "kato", "business-admin").await;
    let mori = operator(&kit, "mori", "business-admin").await;
    let hara = operator(&kit, "hara", "business-admin").await;
    let node_a = &kit.svc;
    let node_b = kit.another_server().await;
    let s = node_a
        .submit_approval(
            &on(node_a, &kato).await,
            open_company("株式会社同時承認", "doji0001"),
            &kato.confirm_password,
            "test",
        )
        .await
        .unwrap();
    let seen = node_a.approval_detail(s.id).await.unwrap().version;
    assert_eq!(node_b.approval_detail(s.id).await.unwrap().version, seen);
    // Node a's transaction reads the request pending and stays open until
    // node b's has begun too: on PostgreSQL b's reads it pending as well
    // before either writes; on SQLite b waits at its BEGIN for the write
    // lock a holds.
    side_by_side(&kit, node_a, &node_b, Operation::ApprovalApprove);
    let (m, h) = (on(node_a, &mori).await, on(&node_b, &hara).await);
    let (ra, rb) = tokio::join!(
        node_a.approve_request(&m, s.id, seen, &mori.confirm_password, "node-a"),
        node_b.approve_request(&h, s.id, seen, &hara.confirm_password, "node-b")
    );
    // Exactly one commits (on SQLite node a's, which held the write lock;
    // on PostgreSQL whichever UPDATE of the request came first); the other
    // is told the request was carried out, by whom.
    let (winner, loser, refusal) = match (ra, rb) {
        (Ok(Approved::Committed { .. }), Err(e)) => ("mori", "hara", refused(e)),
        (Err(e), Ok(Approved::Committed { .. })) => ("hara", "mori", refused(e)),
        other => panic!("not one commit and one refusal: {other:?}"),
    };
    if kit.svc.settings().database_url.is_none() {
        assert_eq!(winner, "mori", "SQLite: the write lock's holder commits");
    }
    assert_eq!(refusal, ApprovalRefusal::AlreadyCommitted(winner.into()));
    assert_eq!(refusal.message_ja(), already_committed(winner));
    // Once: one company, one マスター, one commit row; one approval counted,
    // and node b's refusal on the chain.
    let n = kit
        .svc
        .store()
        .companies()
        .await
        .unwrap()
        .iter()
        .filter(|c| c.name == "株式会社同時承認")
        .count();
    assert_eq!(n, 1);
    assert!(kit.has_user("doji0001").await);
    let v = kit.svc.approval_detail(s.id).await.unwrap();
    assert_eq!(
        (v.approvals, v.votes.len(), v.state_code),
        (1, 1, "committed")
    );
    let rows = bank_rows(&kit).await;
    let t = format!("申請{}", s.id);
    assert_eq!(
        count(&rows, &format!("銀行:{winner}/承認済み変更の実行/成功/{t}")),
        1,
        "{rows:?}"
    );
    assert_eq!(count(&rows, &format!("銀行:{winner}/承認/成功/{t}")), 1);
    assert_eq!(count(&rows, &format!("銀行:{loser}/承認/失敗/{t}")), 1);
    assert_eq!(
        rows.iter()
            .filter(|r| r.contains("/承認済み変更の実行/"))
            .count(),
        1,
        "{rows:?}"
    );
    let company = company_named(&kit, "株式会社同時承認").await.unwrap();
    let c_rows = kit.history_of(company.0).await;
    assert_eq!(
        c_rows.iter().filter(|r| r.contains("/企業登録/")).count(),
        1,
        "{c_rows:?}"
    );
    assert!(
        c_rows.contains(&format!("銀行:{winner}/企業登録/成功/")),
        "{c_rows:?}"
    );
    kit.stop().await;
}

#[tokio::test]
async fn an_operations_admin_changes_roles_and_rules_through_approval() {
    let kit = Kit::start().await;
    let ueda = operator(&kit, "ueda", "operations-admin").await;
    let noda = operator(&kit, "noda", "operations-admin").await;
    let sato = operator(&kit, "sato", "helpdesk").await;

    // OPR040: the 運用管理者's screen only.
    let (hb, _) = logged_in(&kit, &sato).await;
    let r = get(&kit, &hb, "/opr040").await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains(shomei_service::NOT_OPERATIONS_ADMIN));
    let (a, csrf) = logged_in(&kit, &ueda).await;
    let r = get(&kit, &a, "/opr040").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("id=\"roles-sato\"") && r.body.contains("ヘルプデスク"));

    // sato gets 業務管理者 too, on noda's approval.
    let r = post(
        &kit,
        &a,
        "/opr041",
        &[
            ("csrf", csrf.as_str()),
            ("name", "sato"),
            ("role", "helpdesk"),
            ("role", "business-admin"),
            ("password", ueda.confirm_password.as_str()),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = request_id(&r.body);
    let svc = &kit.svc;
    assert!(
        !on(svc, &sato)
            .await
            .operator
            .roles
            .has(shomei_core::OperatorRole::BusinessAdmin)
    );
    let v = svc.approval_detail(id).await.unwrap().version;
    let done = svc
        .approve_request(&on(svc, &noda).await, id, v, &noda.confirm_password, "test")
        .await
        .unwrap();
    assert!(matches!(
        done,
        Approved::Committed {
            applied: Applied::RolesChanged { .. },
            ..
        }
    ));
    assert_eq!(
        on(svc, &sato).await.operator.roles.codes(),
        "helpdesk,business-admin"
    );
    assert_eq!(get(&kit, &hb, "/opr020").await.status, 200);

    // OPR042: no role chosen is refused by its message; a rule change waits.
    let r = get(&kit, &a, "/opr042").await;
    assert!(r.body.contains("企業開設（マスター登録を含む）") && r.body.contains("初期設定"));
    let rule = |roles: &'static [&'static str]| {
        let mut f = vec![
            ("csrf", csrf.as_str()),
            ("rule", "revoke-for-company"),
            ("required", "1"),
            ("password", ueda.confirm_password.as_str()),
        ];
        f.extend(roles.iter().map(|r| ("role", *r)));
        f
    };
    let r = post(&kit, &a, "/opr042", &rule(&[])).await;
    assert_eq!(r.status, 403);
    assert!(
        r.body.contains("役割を1つ以上選択してください。"),
        "{}",
        r.body
    );
    let r = post(&kit, &a, "/opr042", &rule(&["helpdesk"])).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = request_id(&r.body);
    let v = svc.approval_detail(id).await.unwrap().version;
    svc.approve_request(&on(svc, &noda).await, id, v, &noda.confirm_password, "test")
        .await
        .unwrap();
    let rules = svc.approval_rules().await.unwrap();
    let r = rules
        .iter()
        .find(|r| r.kind == shomei_service::ApprovalKind::RevokeForCompany)
        .unwrap();
    assert_eq!(r.required, 1);
    kit.stop().await;
}

/// The text of the element with `id` on a screen.
fn by_id(body: &str, id: &str) -> String {
    let at = body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {body}"));
    let rest = &body[at..];
    let start = rest.find('>').unwrap() + 1;
    rest[start..].split('<').next().unwrap().to_owned()
}

#[tokio::test]
async fn an_operator_added_through_approval_opens_the_console_with_the_pkcs12_the_approver_got() {
    use base64::Engine;
    let kit = Kit::start().await;
    let ueda = operator(&kit, "ueda", "operations-admin").await;
    let noda = operator(&kit, "noda", "operations-admin").await;
    let (a, a_csrf) = logged_in(&kit, &ueda).await;
    let form = |name: &'static str| {
        vec![
            ("csrf", a_csrf.as_str()),
            ("name", name),
            ("role", "helpdesk"),
            ("role", "audit"),
            ("email", "fujii@example.jp"),
            ("password", ueda.confirm_password.as_str()),
        ]
    };
    // A name taken is refused by its message (the control below submits).
    let r = post(&kit, &a, "/opr043", &form("noda")).await;
    assert_eq!(r.status, 403);
    assert!(
        r.body
            .contains("このオペレーター名はすでに使われています。"),
        "{}",
        r.body
    );
    let r = post(&kit, &a, "/opr043", &form("fujii")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("OPR024") && r.body.contains("オペレーター登録: fujii"));
    let id = request_id(&r.body);
    assert!(
        kit.svc
            .store()
            .operator_by_name(&shomei_core::OperatorName::parse("fujii").unwrap())
            .await
            .unwrap()
            .is_none(),
        "nobody is added before the approval"
    );

    // noda's approval commits it: the PKCS#12 and its password on noda's
    // OPR052, once.
    let (b, b_csrf) = logged_in(&kit, &noda).await;
    let v = kit
        .svc
        .approval_detail(id)
        .await
        .unwrap()
        .version
        .to_string();
    let id_s = id.to_string();
    let r = post(
        &kit,
        &b,
        "/opr051/decide",
        &[
            ("csrf", b_csrf.as_str()),
            ("id", id_s.as_str()),
            ("version", v.as_str()),
            ("decision", "approve"),
            ("password", noda.confirm_password.as_str()),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("OPR052") && r.body.contains("一度だけ表示されます"));
    let href = {
        let at = r
            .body
            .find("href=\"data:application/x-pkcs12;base64,")
            .unwrap()
            + "href=\"data:application/x-pkcs12;base64,".len();
        r.body[at..].split('"').next().unwrap().to_owned()
    };
    let p12 = base64::engine::general_purpose::STANDARD
        .decode(&href)
        .unwrap();
    let added = NewOperator {
        name: shomei_core::OperatorName::parse("fujii").unwrap(),
        roles: shomei_core::OperatorRoles::parse("helpdesk,audit").unwrap(),
        serial: shomei_core::Serial::from_hex(&by_id(&r.body, "serial")).unwrap(),
        not_after: time::OffsetDateTime::now_utc(),
        p12: p12.clone(),
        p12_password: by_id(&r.body, "p12-password"),
        confirm_password: by_id(&r.body, "confirm-password"),
    };
    // The request's data never held the key: name, roles, e-mail only.
    let key = shomei_pki::pkcs12::read(&p12, &added.p12_password)
        .expect("the PKCS#12 opens with the password shown")
        .key_pkcs8;
    let row = kit.svc.store().approval_request(id).await.unwrap().unwrap();
    let data: serde_json::Value = serde_json::from_str(&row.data).unwrap();
    let mut keys: Vec<&str> = data
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort();
    assert_eq!(keys, ["email", "kind", "name", "roles"], "{}", row.data);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&key);
    assert!(!row.data.contains(&b64) && !row.data.contains(&href));
    assert!(!row.data.contains(&added.p12_password) && !row.data.contains(&added.confirm_password));

    // The new operator's PKCS#12 opens the console (TLS) and their password
    // its session; their roles are the requested ones.
    let (f, _) = logged_in(&kit, &added).await;
    let top = get(&kit, &f, "/opr001").await;
    assert!(top.body.contains("fujii"), "{}", top.body);
    let o = kit
        .svc
        .console_operator(&added.serial)
        .await
        .unwrap()
        .expect("the new certificate is in force");
    assert_eq!(o.operator.roles.codes(), "helpdesk,audit");
    let rows = bank_rows(&kit).await;
    assert_eq!(
        count(&rows, "銀行:noda/オペレーター登録/成功/fujii"),
        1,
        "{rows:?}"
    );
    assert_eq!(
        count(
            &rows,
            &format!("銀行:noda/承認済み変更の実行/成功/申請{id}")
        ),
        1
    );
    kit.stop().await;
}
