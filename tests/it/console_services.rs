//! A company's contracted service and its limits changed from the operator
//! console (OPR025 → OPR026) by a 業務管理者 after their own password: one
//! 契約サービス変更 row in the company's 操作履歴, committed with the change;
//! a wrong password, the service it has already and a service whose user
//! limit the company exceeds refused by their messages; every other role
//! refused by its message beside the 業務管理者 (the positive control).

use shomei_core::{CompanyId, Service};
use shomei_service::{NOT_BUSINESS_ADMIN, OPERATOR_PASSWORD_WRONG, SAME_SERVICE, Settings};

use crate::console::{Seen, get, logged_in, post};
use crate::testkit::{Kit, operator};

/// The demo companies: 株式会社ほくぎん商事 (ビジネスIB, five users) and
/// 有限会社ほっと物産 (ほっと君WebJr., two users).
const HOKUGIN: i64 = 1;
const HOTTO: i64 = 2;

async fn service_of(kit: &Kit, company: i64) -> Service {
    kit.svc
        .operator_company(CompanyId(company))
        .await
        .unwrap()
        .0
        .service
}

async fn change(
    kit: &Kit,
    b: &reqwest::Client,
    csrf: &str,
    company: i64,
    service: &str,
    password: &str,
) -> Seen {
    let company = company.to_string();
    post(
        kit,
        b,
        "/opr025",
        &[
            ("csrf", csrf),
            ("company_id", &company),
            ("service", service),
            ("password", password),
        ],
    )
    .await
}

/// The company's 契約サービス変更 rows, newest first.
async fn service_rows(kit: &Kit, company: i64) -> Vec<String> {
    kit.history_of(company)
        .await
        .into_iter()
        .filter(|r| r.contains("/契約サービス変更/"))
        .collect()
}

#[tokio::test]
async fn a_business_admin_changes_a_companys_service_and_its_limit_after_their_password() {
    let kit = Kit::start_with(Settings {
        business_ib_max_users: 100,
        hottokun_webjr_max_users: 4,
        ..Settings::default()
    })
    .await;
    let tanaka = operator(&kit, "tanaka", "business-admin").await;
    let (b, csrf) = logged_in(&kit, &tanaka).await;

    // OPR020 leads to OPR025, which shows the service, the users and every
    // service's limit.
    let list = get(&kit, &b, "/opr020").await;
    assert!(
        list.body
            .contains(&format!("href=\"/opr025?company={HOTTO}\""))
    );
    let form = get(&kit, &b, &format!("/opr025?company={HOTTO}")).await;
    assert_eq!(form.status, 200, "{}", form.body);
    for s in [
        "OPR025",
        "有限会社ほっと物産",
        "<td id=\"current\">ほっと君WebJr.</td>",
        "2人（上限 4人）",
        "<td>100人</td>",
        "現在の契約",
    ] {
        assert!(form.body.contains(s), "{s}: {}", form.body);
    }

    // A wrong password, then the service it has already: refused by their
    // messages, nothing changed.
    let r = change(&kit, &b, &csrf, HOTTO, "business_ib", "wrong-password-1").await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains(OPERATOR_PASSWORD_WRONG), "{}", r.body);
    let r = change(
        &kit,
        &b,
        &csrf,
        HOTTO,
        "hottokun_webjr",
        &tanaka.confirm_password,
    )
    .await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains(SAME_SERVICE), "{}", r.body);
    assert_eq!(service_of(&kit, HOTTO).await, Service::HottokunWebJr);
    assert!(service_rows(&kit, HOTTO).await.is_empty());

    // The change: OPR026, the service and its limit in force, one row.
    let r = change(
        &kit,
        &b,
        &csrf,
        HOTTO,
        "business_ib",
        &tanaka.confirm_password,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    for s in [
        "OPR026",
        "契約サービスを変更しました。",
        "ほっと君WebJr.（利用者数の上限 4人）",
        "ビジネスIB（利用者数の上限 100人）",
    ] {
        assert!(r.body.contains(s), "{s}: {}", r.body);
    }
    assert_eq!(service_of(&kit, HOTTO).await, Service::BusinessIb);
    assert_eq!(
        service_rows(&kit, HOTTO).await,
        ["銀行:tanaka/契約サービス変更/成功/"]
    );
    let form = get(&kit, &b, &format!("/opr025?company={HOTTO}")).await;
    assert!(form.body.contains("2人（上限 100人）"), "{}", form.body);

    // 株式会社ほくぎん商事 has five users: ほっと君WebJr. (four at most) is
    // refused by its message, with a 失敗 row, and nothing changed.
    let r = change(
        &kit,
        &b,
        &csrf,
        HOKUGIN,
        "hottokun_webjr",
        &tanaka.confirm_password,
    )
    .await;
    assert_eq!(r.status, 403);
    let over = "ほっと君WebJr.で登録できる利用者は4人までです。この企業の利用者（5人）を4人以下にしてから変更してください。";
    assert!(r.body.contains(over), "{}", r.body);
    assert_eq!(service_of(&kit, HOKUGIN).await, Service::BusinessIb);
    assert_eq!(
        service_rows(&kit, HOKUGIN).await,
        ["銀行:tanaka/契約サービス変更/失敗/"]
    );

    // An unknown company: refused by its message.
    let r = get(&kit, &b, "/opr025?company=999").await;
    assert_eq!(r.status, 403);
    assert!(
        r.body.contains("指定された企業は見つかりません。"),
        "{}",
        r.body
    );
    kit.stop().await;
}

#[tokio::test]
async fn only_the_business_admin_role_changes_a_companys_service() {
    let kit = Kit::start().await;
    // Every other role: the screen and the change refused by the role's
    // message; the service stays.
    for (name, role) in [
        ("sato", "helpdesk"),
        ("suzuki", "audit"),
        ("ito", "operations-admin"),
    ] {
        let op = operator(&kit, name, role).await;
        let (b, csrf) = logged_in(&kit, &op).await;
        assert!(
            !get(&kit, &b, "/opr001").await.body.contains("/opr020"),
            "{role}: no menu entry"
        );
        let r = get(&kit, &b, &format!("/opr025?company={HOTTO}")).await;
        assert_eq!(r.status, 403, "{role}");
        assert!(r.body.contains(NOT_BUSINESS_ADMIN), "{role}: {}", r.body);
        let r = change(&kit, &b, &csrf, HOTTO, "business_ib", &op.confirm_password).await;
        assert_eq!(r.status, 403, "{role}");
        assert!(r.body.contains(NOT_BUSINESS_ADMIN), "{role}: {}", r.body);
        assert_eq!(service_of(&kit, HOTTO).await, Service::HottokunWebJr);
    }
    assert!(service_rows(&kit, HOTTO).await.is_empty());
    // The 業務管理者 (the positive control): the same two requests go
    // through.
    let tanaka = operator(&kit, "tanaka", "business-admin").await;
    let (b, csrf) = logged_in(&kit, &tanaka).await;
    let r = get(&kit, &b, &format!("/opr025?company={HOTTO}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = change(
        &kit,
        &b,
        &csrf,
        HOTTO,
        "business_ib",
        &tanaka.confirm_password,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(service_of(&kit, HOTTO).await, Service::BusinessIb);
    // Each refusal is one row of the bank's own.
    let refused = kit
        .bank_rows()
        .await
        .into_iter()
        .filter(|r| r.operation == "契約サービス変更" && r.result == "失敗")
        .count();
    assert_eq!(refused, 6);
    kit.stop().await;
}
