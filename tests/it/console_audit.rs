//! The 監査's screens in the operator console (every company's and the
//! operators' 操作履歴, searched and paged; its CSV in UTF-8 and Shift_JIS
//! with formulas defused, as the CLI's export now does too; the chain check
//! with its result), the roles × operations rows of the 監査 role (may read,
//! may not change), and the help desk's password reset (one password, a
//! one-time initial password the portal makes the user change; a マスター's
//! refused until four-eyes approval exists).

use shomei_core::{CompanyId, LoginId, Problem, Service};
use shomei_service::{
    BAD_COMPANY_ID, BAD_PERIOD, MASTER_NEEDS_APPROVAL, NOT_AUDITOR, NOT_HELPDESK,
    OPERATOR_PASSWORD_WRONG,
};

use crate::console::{Seen, get, logged_in, one_time_password, post};
use crate::readiness::sql;
use shomei_service::test_support::records;

use crate::testkit::{Kit, LOGIN_PW, StoreOf, on, operator};

/// A company whose name a spreadsheet would run as a formula.
const FORMULA: &str = "=HYPERLINK(\"http://evil.example/\",\"株式会社\")";

/// The rows of OPR030's table, cell by cell.
fn table(body: &str) -> Vec<Vec<String>> {
    let Some(start) = body.find("<table class=\"list\" id=\"history\">") else {
        return vec![];
    };
    let rest = &body[start..];
    let tbody = &rest[rest.find("<tbody>").unwrap()..rest.find("</tbody>").unwrap()];
    tbody
        .split("<tr>")
        .skip(1)
        .map(|tr| {
            tr.split("<td")
                .skip(1)
                .map(|td| {
                    let inner = &td[td.find('>').map_or(0, |i| i + 1)..];
                    inner.split("</td>").next().unwrap_or("").to_owned()
                })
                .collect()
        })
        .collect()
}

/// The total OPR030 says it found.
fn count_of(body: &str) -> i64 {
    let s = body.split("<p id=\"count\">").nth(1).expect("a count");
    s[..s.find('件').unwrap()].parse().unwrap()
}

/// The first `div.error`'s text.
fn error_of(body: &str) -> Option<&str> {
    let s = body.find("<div class=\"error\" role=\"alert\"")?;
    let rest = &body[s..];
    let rest = &rest[rest.find('>')? + 1..];
    Some(&rest[..rest.find("</div>")?])
}

/// GET a CSV: status, content type, bytes.
async fn download(kit: &Kit, b: &reqwest::Client, path: &str) -> (u16, String, Vec<u8>) {
    let r = b
        .get(format!("{}{path}", kit.operator_base))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, ct, r.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn the_auditor_reads_every_companys_and_the_operators_history_a_page_at_a_time() {
    let kit = Kit::start().await;
    let suzuki = operator(&kit, "suzuki", "audit").await;
    let sato = operator(&kit, "sato", "helpdesk").await;
    logged_in(&kit, &sato).await; // a row of the bank's own: 銀行:sato's login
    // 60 more companies: 60 rows in 60 chains, more than a page.
    for i in 0..60 {
        kit.svc
            .operator_create_company(&format!("株式会社監査{i:02}"), Service::BusinessIb, "root")
            .await
            .unwrap();
    }
    let (b, _) = logged_in(&kit, &suzuki).await;
    let top = get(&kit, &b, "/opr001").await;
    assert!(top.body.contains("/opr030") && top.body.contains("/opr032"));
    assert!(!top.body.contains("/opr010"), "no help desk for the 監査");

    // Everything, newest first, 50 a page.
    let all = get(&kit, &b, "/opr030").await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert!(all.body.contains("OPR030"));
    let rows = table(&all.body);
    assert_eq!(rows.len(), 50);
    assert_eq!(rows[0][2], "銀行:suzuki", "the newest: this login");
    assert_eq!(rows[0][1], "銀行");
    assert!(all.body.contains("id=\"next\"") && !all.body.contains("id=\"prev\""));
    let total = count_of(&all.body);
    assert!(total > 60, "{total}");
    let pages = (total + 49) / 50;
    let last = get(&kit, &b, &format!("/opr030?page={pages}")).await;
    assert_eq!(table(&last.body).len() as i64, total - (pages - 1) * 50);
    assert!(last.body.contains("id=\"prev\"") && !last.body.contains("id=\"next\""));
    // Both demo companies' rows are there, with their names.
    let everyone = kit
        .svc
        .store()
        .review_count(&Default::default())
        .await
        .unwrap();
    assert_eq!(everyone, total);

    // The bank's own rows only: the operators'.
    let bank = table(&get(&kit, &b, "/opr030?scope=bank").await.body);
    assert!(!bank.is_empty());
    assert!(bank.iter().all(|r| r[1] == "銀行"), "{bank:?}");
    assert!(
        bank.iter()
            .any(|r| r[2] == "銀行:sato" && r[3] == "コンソールログイン")
    );
    // One company's.
    let one = table(
        &get(&kit, &b, "/opr030?scope=company&company_id=2")
            .await
            .body,
    );
    assert!(!one.is_empty());
    assert!(
        one.iter().all(|r| r[1] == "有限会社ほっと物産（2）"),
        "{one:?}"
    );
    // By operation and actor (an operator with or without 銀行:).
    for actor in ["sato", "%E9%8A%80%E8%A1%8C%3Asato"] {
        let r = table(
            &get(
                &kit,
                &b,
                &format!("/opr030?actor={actor}&op=%E3%82%B3%E3%83%B3%E3%82%BD%E3%83%BC%E3%83%AB%E3%83%AD%E3%82%B0%E3%82%A4%E3%83%B3"),
            )
            .await
            .body,
        );
        assert_eq!(r.len(), 1, "{actor}: {r:?}");
        assert_eq!(
            (r[0][2].as_str(), r[0][3].as_str()),
            ("銀行:sato", "コンソールログイン")
        );
    }
    // By dates: today's rows (JST), and none in a year to come.
    let today = (kit.svc.now() + time::Duration::hours(9)).date();
    let r = get(&kit, &b, &format!("/opr030?from={today}&to={today}")).await;
    assert!(count_of(&r.body) > 60, "{}", r.body);
    let r = get(&kit, &b, "/opr030?from=2999-01-01").await;
    assert!(table(&r.body).is_empty());
    assert!(r.body.contains("条件に該当する操作履歴はありません。"));

    // Bad conditions: their message, beside the good ones above.
    for (q, message) in [
        ("scope=company&company_id=abc", BAD_COMPANY_ID),
        ("scope=company&company_id=", BAD_COMPANY_ID),
        ("from=2026-11-25&to=2026-11-01", BAD_PERIOD),
    ] {
        let r = get(&kit, &b, &format!("/opr030?{q}")).await;
        assert_eq!(error_of(&r.body), Some(message), "{q}");
        assert!(table(&r.body).is_empty(), "{q}");
    }
    kit.stop().await;
}

#[tokio::test]
async fn the_auditors_csv_defuses_formulas_in_utf8_and_in_shift_jis() {
    let kit = Kit::start().await;
    let company = kit
        .svc
        .operator_create_company(FORMULA, Service::BusinessIb, "root")
        .await
        .unwrap();
    kit.svc
        .operator_create_master(company, "formula01", "数式 太郎", "", "root")
        .await
        .unwrap();
    let suzuki = operator(&kit, "suzuki", "audit").await;
    let (b, _) = logged_in(&kit, &suzuki).await;
    let q = format!("scope=company&company_id={}", company.0);
    let (status, ct, utf8) = download(&kit, &b, &format!("/opr031?{q}")).await;
    assert_eq!((status, ct.as_str()), (200, "text/csv; charset=UTF-8"));
    assert_eq!(&utf8[..3], [0xef, 0xbb, 0xbf], "a BOM for Excel");
    let text = String::from_utf8(utf8[3..].to_vec()).unwrap();
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines[0],
        "日時,企業ID,企業名,操作者,操作,対象利用者,結果,詳細,接続元"
    );
    assert_eq!(lines.len(), 3, "{text}");
    // Every value that a spreadsheet would run starts with ' instead.
    let defused = "\"'=HYPERLINK(\"\"http://evil.example/\"\",\"\"株式会社\"\")\"";
    // The company's name and the detail that begins with it (the rows
    // are newest first: the company's opening is the second).
    assert!(lines[2].contains(&format!(",{defused},")), "{}", lines[2]);
    let detail = "\"'=HYPERLINK(\"\"http://evil.example/\"\",\"\"株式会社\"\")（ビジネスIB）\"";
    assert!(lines[2].contains(detail), "{}", lines[2]);
    for l in &lines[1..] {
        for bad in [",=", ",\"=", ",+", ",-", ",@", ",\"@"] {
            assert!(!l.contains(bad), "{bad} in {l}");
        }
    }
    // Shift_JIS: the same text.
    let (status, ct, sjis) = download(&kit, &b, &format!("/opr031?{q}&enc=sjis")).await;
    assert_eq!((status, ct.as_str()), (200, "text/csv; charset=Shift_JIS"));
    let (decoded, _, bad) = encoding_rs::SHIFT_JIS.decode(&sjis);
    assert!(!bad);
    assert_eq!(decoded, text);
    // Each download is a row of the bank's own, with its conditions.
    let rows = kit.bank_details().await;
    let n = company.0;
    assert!(
        rows.contains(&format!(
            "銀行:suzuki/操作履歴ダウンロード/成功/企業ID {n} 2件（UTF-8）"
        )),
        "{rows:?}"
    );
    assert!(rows.contains(&format!(
        "銀行:suzuki/操作履歴ダウンロード/成功/企業ID {n} 2件（Shift_JIS）"
    )));
    // A bad condition: its message, and no file.
    let (status, ct, body) = download(&kit, &b, "/opr031?scope=company&company_id=x").await;
    assert_eq!(status, 400);
    assert!(ct.starts_with("text/html"));
    assert!(String::from_utf8(body).unwrap().contains(BAD_COMPANY_ID));
    kit.stop().await;
}

#[tokio::test]
async fn the_cli_export_defuses_formulas_as_the_portals_does() {
    let kit = Kit::start().await;
    let company = kit
        .svc
        .operator_create_company(FORMULA, Service::BusinessIb, "root")
        .await
        .unwrap();
    let mut out = Vec::new();
    let n = records(&kit.svc)
        .export_audit(
            Some(company),
            shomei_service::AuditExportFormat::Csv,
            &mut out,
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    let text = String::from_utf8(out).unwrap();
    let line = text.lines().nth(1).unwrap();
    assert!(
        line.contains(
            ",\"'=HYPERLINK(\"\"http://evil.example/\"\",\"\"株式会社\"\")（ビジネスIB）\","
        ),
        "{line}"
    );
    assert!(!line.contains(",\"=") && !line.contains(",="), "{line}");
    // JSON lines stay as recorded: no spreadsheet reads them.
    let mut out = Vec::new();
    records(&kit.svc)
        .export_audit(
            Some(company),
            shomei_service::AuditExportFormat::JsonLines,
            &mut out,
        )
        .await
        .unwrap();
    let row: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert!(row["detail"].as_str().unwrap().starts_with('='));
    kit.stop().await;
}

#[tokio::test]
async fn the_auditor_checks_the_chains_and_sees_the_row_that_was_edited() {
    let kit = Kit::start().await;
    let suzuki = operator(&kit, "suzuki", "audit").await;
    let (b, csrf) = logged_in(&kit, &suzuki).await;
    let form = get(&kit, &b, "/opr032").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("id=\"verify\""));

    let ok = post(&kit, &b, "/opr032", &[("csrf", &csrf)]).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.body.contains("OPR033"));
    assert!(
        ok.body.contains("操作履歴の改ざんは検出されませんでした。"),
        "{}",
        ok.body
    );
    assert!(!ok.body.contains("id=\"broken\""));

    // Someone edits a row of company 2 in the database.
    let victim = kit
        .svc
        .store()
        .audit_for_company(CompanyId(2), 1000, 0)
        .await
        .unwrap()
        .last()
        .unwrap()
        .id;
    sql(
        &kit,
        &format!("UPDATE audit_log SET detail = 'nothing happened' WHERE id = {victim}"),
    )
    .await;
    let broken = post(&kit, &b, "/opr032", &[("csrf", &csrf)]).await;
    assert_eq!(broken.status, 200);
    assert!(
        broken.body.contains(&format!(
            "操作履歴の連鎖が ID {victim} の行で一致しません。"
        )),
        "{}",
        broken.body
    );
    // The CLI's `audit verify` walks the same way and says the same row.
    let cli = records(&kit.svc).verify_audit_chains().await.unwrap();
    assert_eq!(cli.broken_at, Some(victim));
    // Both checks are rows of the bank's own.
    let rows = kit.bank_details().await;
    let checks: Vec<_> = rows
        .iter()
        .filter(|r| r.contains("/操作履歴検証/"))
        .collect();
    assert_eq!(checks.len(), 2, "{rows:?}");
    assert!(checks[0].starts_with("銀行:suzuki/操作履歴検証/成功/改ざんなし（"));
    assert_eq!(
        checks[1],
        &format!("銀行:suzuki/操作履歴検証/失敗/ID {victim} の行で連鎖が一致しません")
    );
    kit.stop().await;
}

/// The 監査's operations, each as one request of an operator's session.
#[derive(Debug, Clone, Copy)]
enum AuditOp {
    History,
    Csv,
    VerifyForm,
    Verify,
}

async fn run(kit: &Kit, b: &reqwest::Client, csrf: &str, op: AuditOp) -> Seen {
    match op {
        AuditOp::History => get(kit, b, "/opr030?scope=all").await,
        AuditOp::Csv => {
            let (status, _, body) = download(kit, b, "/opr031").await;
            Seen {
                status,
                location: String::new(),
                body: String::from_utf8_lossy(&body).into_owned(),
            }
        }
        AuditOp::VerifyForm => get(kit, b, "/opr032").await,
        AuditOp::Verify => post(kit, b, "/opr032", &[("csrf", csrf)]).await,
    }
}

#[tokio::test]
async fn only_the_audit_role_reads_the_history_and_it_changes_nothing() {
    let kit = Kit::start().await;
    let ops = [
        AuditOp::History,
        AuditOp::Csv,
        AuditOp::VerifyForm,
        AuditOp::Verify,
    ];
    // Every other role: refused with the role's message on every operation.
    for (name, role) in [
        ("sato", "helpdesk"),
        ("tanaka", "business-admin"),
        ("kato", "operations-admin"),
    ] {
        let op = operator(&kit, name, role).await;
        let (b, csrf) = logged_in(&kit, &op).await;
        assert!(
            !get(&kit, &b, "/opr001").await.body.contains("/opr030"),
            "{role}: no menu entry"
        );
        for o in ops {
            let r = run(&kit, &b, &csrf, o).await;
            assert_eq!(r.status, 403, "{role} {o:?}");
            assert!(r.body.contains(NOT_AUDITOR), "{role} {o:?}: {}", r.body);
        }
    }
    // The 監査: every read goes through (the positive control)…
    let suzuki = operator(&kit, "suzuki", "audit").await;
    let (b, csrf) = logged_in(&kit, &suzuki).await;
    for (o, seen) in ops
        .into_iter()
        .zip(["OPR030", "日時,企業ID,企業名", "OPR032", "OPR033"])
    {
        let r = run(&kit, &b, &csrf, o).await;
        assert_eq!(r.status, 200, "{o:?}: {}", r.body);
        assert!(r.body.contains(seen), "{o:?}");
    }
    // …and no change: the help desk's are refused with their message, the
    // user untouched (the help desk's own success is the control, in
    // console_helpdesk's matrix).
    let jiro = LoginId::parse("jirodt").unwrap();
    {
        let mut tx = kit.svc.store().begin().await.unwrap();
        let mut u = tx.user_by_login_id(&jiro).await.unwrap().unwrap();
        u.counters.admin_stopped = true;
        tx.save_counters(u.id, &u.counters).await.unwrap();
        tx.commit().await.unwrap();
    }
    let pw = suzuki.confirm_password.as_str();
    for (path, form) in [
        ("/opr011/lift", vec![("id", "jirodt"), ("password", pw)]),
        (
            "/opr011/revoke",
            vec![
                ("id", "hanakodt"),
                ("reason", "1"),
                ("caller", "山田様"),
                ("invalidity", ""),
                ("password", pw),
            ],
        ),
        (
            "/opr011/reset",
            vec![("id", "hanakodt"), ("kind", "login"), ("password", pw)],
        ),
    ] {
        let mut form = form;
        form.push(("csrf", &csrf));
        let r = post(&kit, &b, path, &form).await;
        assert_eq!(r.status, 403, "{path}");
        assert!(r.body.contains(NOT_HELPDESK), "{path}: {}", r.body);
    }
    assert!(kit.counters("jirodt").await.admin_stopped, "not lifted");
    assert!(!kit.revoked("hanakodt").await, "not revoked");
    let b2 = kit.browser();
    assert_eq!(
        b2.login("hanakodt", LOGIN_PW).await.path(),
        "/top",
        "the password not reset"
    );
    // Each refusal is one row of the bank's own.
    let rows = kit.bank_details().await;
    let refused = rows
        .iter()
        .filter(|r| r.contains("/監査業務/失敗/権限なし"))
        .count();
    assert_eq!(refused, 12, "{rows:?}");
    kit.stop().await;
}

/// Fills in OPR011's reset form.
async fn reset(
    kit: &Kit,
    b: &reqwest::Client,
    csrf: &str,
    who: &str,
    kind: &str,
    pw: &str,
) -> Seen {
    post(
        kit,
        b,
        "/opr011/reset",
        &[
            ("csrf", csrf),
            ("id", who),
            ("kind", kind),
            ("password", pw),
        ],
    )
    .await
}

/// The initial password OPR014 shows.
fn initial_of(body: &str) -> String {
    let s = body
        .find("id=\"initial-password\">")
        .expect("OPR014 shows it")
        + 22;
    body[s..s + body[s..].find('<').unwrap()].to_owned()
}

#[tokio::test]
async fn the_help_desk_resets_one_password_to_an_initial_one_the_user_must_change() {
    let kit = Kit::start().await;
    let sato = operator(&kit, "sato", "helpdesk").await;
    let (b, csrf) = logged_in(&kit, &sato).await;
    // The control: hanakodt's own passwords work before.
    assert_eq!(
        kit.browser().login("hanakodt", LOGIN_PW).await.path(),
        "/top"
    );
    let d = get(&kit, &b, "/opr011?id=hanakodt").await;
    assert!(d.body.contains("id=\"reset\""));

    // A wrong operator password: refused, nothing changed.
    let r = reset(&kit, &b, &csrf, "hanakodt", "login", "wrong-password-1").await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains(OPERATOR_PASSWORD_WRONG), "{}", r.body);
    let r = reset(&kit, &b, &csrf, "hanakodt", "both", &sato.confirm_password).await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("初期化するパスワードを選択してください。"));
    assert_eq!(
        kit.browser().login("hanakodt", LOGIN_PW).await.path(),
        "/top"
    );

    // The login password, locked too: reset and released.
    {
        let mut tx = kit.svc.store().begin().await.unwrap();
        let id = LoginId::parse("hanakodt").unwrap();
        let mut u = tx.user_by_login_id(&id).await.unwrap().unwrap();
        u.counters.login_stopped = true;
        u.counters.login_failures = 6;
        tx.save_counters(u.id, &u.counters).await.unwrap();
        tx.commit().await.unwrap();
    }
    let r = reset(&kit, &b, &csrf, "hanakodt", "login", &sato.confirm_password).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("OPR014"));
    assert!(r.body.contains("ログインパスワードを初期化しました。"));
    let initial = initial_of(&r.body);
    assert_eq!(initial.len(), 12);
    let c = kit.counters("hanakodt").await;
    assert!(!c.login_stopped && c.login_failures == 0);
    // Shown once: the detail screen does not show it again.
    assert!(
        !get(&kit, &b, "/opr011?id=hanakodt")
            .await
            .body
            .contains(&initial)
    );

    // The old password no longer logs in; the initial one leads to BRSK002
    // and nothing else until it is changed.
    let old = kit.browser().login("hanakodt", LOGIN_PW).await;
    assert_eq!(
        old.error().as_deref(),
        Some(Problem::LoginFailed.message_ja())
    );
    let u = kit.browser();
    u.login("hanakodt", &initial).await;
    let p = u.get("/bssk001").await;
    assert_eq!(p.path(), "/brsk002");
    assert!(
        p.has(
            "銀行が設定した仮のパスワードです。ご利用の前にログインパスワードを変更してください。"
        ),
        "{}",
        p.body
    );
    let p = u
        .post(
            "/brsk002",
            &[
                ("kind", "login"),
                ("current", &initial),
                ("new", "Hanako#2026x"),
                ("again", "Hanako#2026x"),
            ],
        )
        .await;
    assert!(p.has("BRSK003"), "{}", p.body);
    assert_eq!(u.get("/bssk001").await.path(), "/bssk001");

    // The 確認用パスワード alone: the login password stays, the portal asks
    // for the 確認用パスワード's change.
    let r = reset(
        &kit,
        &b,
        &csrf,
        "hanakodt",
        "confirm",
        &sato.confirm_password,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("確認用パスワードを初期化しました。"));
    let initial_confirm = initial_of(&r.body);
    let u = kit.browser();
    u.login("hanakodt", "Hanako#2026x").await;
    let p = u.get("/bssk001").await;
    assert_eq!(p.path(), "/brsk002");
    assert!(
        p.has("ご利用の前に確認用パスワードを変更してください。"),
        "{}",
        p.body
    );
    let p = u
        .post(
            "/brsk002",
            &[
                ("kind", "confirm"),
                ("current", &initial_confirm),
                ("new", "Kakunin#2026y"),
                ("again", "Kakunin#2026y"),
            ],
        )
        .await;
    assert!(p.has("BRSK003"), "{}", p.body);

    // One row each, in the company's chain, with the change.
    let rows: Vec<String> = kit
        .svc
        .store()
        .audit_for_company(CompanyId(1), 100, 0)
        .await
        .unwrap()
        .iter()
        .filter(|r| r.operation == "パスワード初期化")
        .map(|r| {
            format!(
                "{}/{}/{}/{}",
                r.actor_login_id, r.result, r.target_login_id, r.detail
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            "銀行:sato/成功/hanakodt/確認用パスワード（ヘルプデスク）",
            "銀行:sato/成功/hanakodt/ログインパスワード（ヘルプデスク）",
        ]
    );
    kit.stop().await;
}

#[tokio::test]
async fn a_masters_password_reset_is_approved_by_another_operator_who_alone_sees_the_password() {
    let kit = Kit::start().await;
    let sato = operator(&kit, "sato", "helpdesk").await;
    let kudo = operator(&kit, "kudo", "helpdesk").await;
    let (b, csrf) = logged_in(&kit, &sato).await;
    // The screen says a マスター's reset is a request (jirodt is a マスター;
    // hanakodt, a 管理者, is reset at once: the control).
    let d = get(&kit, &b, "/opr011?id=jirodt").await;
    assert!(d.body.contains("id=\"reset-master\"") && d.body.contains("id=\"reset-request\""));
    assert!(d.body.contains(MASTER_NEEDS_APPROVAL) && !d.body.contains("id=\"reset\""));
    assert!(
        get(&kit, &b, "/opr011?id=hanakodt")
            .await
            .body
            .contains("id=\"reset\"")
    );
    let r = reset(&kit, &b, &csrf, "jirodt", "login", &sato.confirm_password).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("OPR024") && r.body.contains("申請を受け付けました。"));
    assert!(
        !r.body.contains("初期ログインパスワード") && !r.body.contains("initial-password"),
        "the requester holds no credential: {}",
        r.body
    );
    let id = crate::console_approvals::request_id(&r.body);
    // Nothing changed yet: the マスター still logs in with their own.
    assert_eq!(kit.browser().login("jirodt", LOGIN_PW).await.path(), "/top");

    // The requester cannot approve it; another ヘルプデスク can, and sees
    // the one-time password once, on OPR052.
    let version = kit
        .svc
        .approval_detail(id)
        .await
        .unwrap()
        .version
        .to_string();
    let decide = |csrf: &str, pw: &str| {
        vec![
            ("csrf", csrf.to_owned()),
            ("id", id.to_string()),
            ("version", version.clone()),
            ("decision", "approve".to_owned()),
            ("password", pw.to_owned()),
        ]
    };
    let f = decide(&csrf, &sato.confirm_password);
    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = post(&kit, &b, "/opr051/decide", &f).await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains(shomei_service::OWN_REQUEST), "{}", r.body);
    assert_eq!(kit.browser().login("jirodt", LOGIN_PW).await.path(), "/top");
    let (k, k_csrf) = logged_in(&kit, &kudo).await;
    let f = decide(&k_csrf, &kudo.confirm_password);
    let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = post(&kit, &k, "/opr051/decide", &f).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("OPR052") && r.body.contains("一度だけ表示されます"));
    let initial = one_time_password(&r.body, "初期ログインパスワード");
    assert_eq!(initial.len(), 12);
    assert!(
        !r.body.contains("初期確認用パスワード"),
        "only the login password"
    );
    // The request's data never held it.
    let v = kit.svc.approval_detail(id).await.unwrap();
    assert!(!format!("{:?}", v.change).contains(&initial));

    // The old password is gone; the new one must be changed first.
    assert!(
        kit.browser()
            .login("jirodt", LOGIN_PW)
            .await
            .error()
            .is_some()
    );
    let portal = kit.browser();
    assert_eq!(portal.login("jirodt", &initial).await.path(), "/brsk002");
    let rows: Vec<String> = kit
        .svc
        .store()
        .audit_for_company(CompanyId(1), 100, 0)
        .await
        .unwrap()
        .iter()
        .filter(|r| r.operation == "パスワード初期化")
        .map(|r| {
            format!(
                "{}/{}/{}/{}",
                r.actor_login_id, r.result, r.target_login_id, r.detail
            )
        })
        .collect();
    assert_eq!(
        rows,
        ["銀行:kudo/成功/jirodt/ログインパスワード（マスター、承認済み）"]
    );

    // A request for a user who is not a マスター is refused by its message.
    let op = on(&kit.svc, &sato).await;
    let change = |login: &str| shomei_service::ApprovalChange::ResetMasterPasswords {
        company_id: 1,
        company: "株式会社ほくぎん商事".into(),
        login_id: login.into(),
        passwords: "confirm".into(),
    };
    let e = kit
        .svc
        .submit_approval(&op, change("hanakodt"), &sato.confirm_password, "test")
        .await
        .unwrap_err();
    assert_eq!(
        shomei_service::ActionError::from(e).to_string(),
        "この利用者はこの企業のマスターではありません。"
    );
    assert!(
        kit.svc
            .submit_approval(&op, change("jirodt"), &sato.confirm_password, "test")
            .await
            .is_ok()
    );
    kit.stop().await;
}

#[tokio::test]
async fn a_browsers_icon_request_leaves_the_open_login_form_alone() {
    let kit = Kit::start().await;
    let sato = operator(&kit, "sato", "helpdesk").await;
    let b = crate::console::browser(&kit, &sato, &std::sync::Arc::new(Default::default()));
    let form = get(&kit, &b, "/opr000").await;
    let csrf = crate::testkit::csrf_of(&form.body).unwrap();
    // A browser asks for its icon by itself: a plain 404, not a redirect
    // to OPR000 (whose new form cookie would spoil the open form).
    let icon = get(&kit, &b, "/favicon.ico").await;
    assert_eq!((icon.status, icon.location.as_str()), (404, ""));
    let r = post(
        &kit,
        &b,
        "/opr000",
        &[("csrf", &csrf), ("password", &sato.confirm_password)],
    )
    .await;
    assert_eq!((r.status, r.location.as_str()), (303, "/opr001"));
    // Any other page without a session still goes to OPR000 (the control).
    let b2 = crate::console::browser(&kit, &sato, &std::sync::Arc::new(Default::default()));
    let r = get(&kit, &b2, "/opr010").await;
    assert_eq!((r.status, r.location.as_str()), (303, "/opr000?e=expired"));
    kit.stop().await;
}
