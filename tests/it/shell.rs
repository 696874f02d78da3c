//! The dangerous changes on the server's shell go through the console's
//! approvals: `shomei company close` submits a request (by cli:<user>) that
//! an operator's approval in the console commits; `--break-glass --reason`
//! commits at once with its 緊急実行（承認省略） row and a mail queued for
//! every 運用管理者 with an address (the one without is listed as not
//! notified); a break-glass without its reason is refused by its message;
//! the first operator is made directly, the next one is a request, and two
//! first-operator bootstraps at once on two nodes add one. The
//! `shomei` binary itself runs, against the kit's data directory and
//! database, on both backends.

use shomei_core::Operation;
use shomei_service::{Applied, Approved, FirstOperatorError};

use crate::console::operator;
use crate::testkit::{Kit, StoreOf, side_by_side};

/// What a `shomei` command did.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `shomei ARGS --data-dir <kit> [--database-url …] --operator tanaka`.
async fn shomei(kit: &Kit, args: &[&str]) -> Ran {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_shomei"));
    cmd.args(args)
        .arg("--data-dir")
        .arg(kit.dir.path())
        .env_remove("SHOMEI_CONFIG")
        .env_remove("SHOMEI_DATABASE_URL");
    if let Some(url) = &kit.svc.settings().database_url {
        cmd.arg("--database-url").arg(url.with_password());
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The bank's own 操作履歴 rows as actor/operation/result/target/detail.
async fn bank_rows(kit: &Kit) -> Vec<String> {
    let mut rows = vec![];
    kit.svc
        .store()
        .audit_for_each(None, |r| {
            if r.company_id.is_none() {
                rows.push(format!(
                    "{}/{}/{}/{}/{}",
                    r.actor_login_id, r.operation, r.result, r.target_login_id, r.detail
                ));
            }
        })
        .await
        .unwrap();
    rows
}

#[tokio::test]
async fn a_company_closed_from_the_shell_waits_for_an_operators_approval_in_the_console() {
    let kit = Kit::start().await;
    let kato = operator(&kit, "kato", "business-admin").await;
    let r = shomei(
        &kit,
        &["company", "close", "--id", "1", "--operator", "tanaka"],
    )
    .await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let id: i64 = r
        .stdout
        .strip_prefix("request ")
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(r.stdout.contains("operator console"), "{}", r.stdout);
    // Nothing closed yet: the users still work.
    assert!(!kit.counters("tarodt").await.admin_stopped);
    let rows = bank_rows(&kit).await;
    assert!(
        rows.iter()
            .any(|r| r.starts_with(&format!("cli:tanaka/承認申請/成功/申請{id}/"))),
        "{rows:?}"
    );
    // The queue, in English, from the shell.
    let l = shomei(&kit, &["approval", "list"]).await;
    assert_eq!(l.code, 0, "{}", l.stderr);
    assert!(
        l.stdout.contains("pending")
            && l.stdout.contains("close-company")
            && l.stdout.contains("cli:tanaka"),
        "{}",
        l.stdout
    );
    let s = shomei(&kit, &["approval", "show", "--id", &id.to_string()]).await;
    assert_eq!(s.code, 0, "{}", s.stderr);
    assert!(s.stdout.contains("\"company_id\":1"), "{}", s.stdout);
    let n = shomei(&kit, &["approval", "show", "--id", "999"]).await;
    assert_eq!(n.code, 1);
    assert!(
        n.stderr.contains("no approval request number 999"),
        "{}",
        n.stderr
    );

    // A 業務管理者's approval in the console commits it (any operator may:
    // the shell user is no operator).
    let op = kit
        .svc
        .console_operator(&kato.serial)
        .await
        .unwrap()
        .unwrap();
    let v = kit.svc.approval_detail(id).await.unwrap().version;
    let done = kit
        .svc
        .approve_request(&op, id, v, &kato.confirm_password, "test")
        .await
        .unwrap();
    assert!(
        matches!(
            done,
            Approved::Committed {
                applied: Applied::CompanyClosed { .. },
                ..
            }
        ),
        "{done:?}"
    );
    assert!(kit.counters("tarodt").await.admin_stopped);
    kit.stop().await;
}

#[tokio::test]
async fn a_break_glass_commits_at_once_with_its_row_and_a_mail_to_every_operations_admin() {
    let kit = Kit::start().await;
    kit.svc
        .add_operator_with(
            "ueda",
            "operations-admin",
            "ueda@example.jp",
            "銀行:root",
            "test",
        )
        .await
        .unwrap();
    operator(&kit, "noda", "operations-admin").await;
    let sato = operator(&kit, "sato", "helpdesk").await;
    let roles = async || {
        kit.svc
            .console_operator(&sato.serial)
            .await
            .unwrap()
            .unwrap()
            .operator
            .roles
            .codes()
    };

    // Without its reason: refused by its message, nothing changed.
    let args = [
        "operator",
        "role",
        "--name",
        "sato",
        "--role",
        "helpdesk,audit",
    ];
    let mut without = args.to_vec();
    without.extend(["--break-glass", "--operator", "tanaka"]);
    let r = shomei(&kit, &without).await;
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stderr.contains("a break-glass change needs --reason"),
        "{}",
        r.stderr
    );
    assert_eq!(roles().await, "helpdesk");
    assert!(
        kit.svc
            .store()
            .pending_notices(10)
            .await
            .unwrap()
            .is_empty()
    );

    // With it: committed at once, its row with the reason, a mail for ueda,
    // noda listed as not notified.
    let mut with = args.to_vec();
    with.extend([
        "--break-glass",
        "--reason",
        "監査対応のため本日中に必要",
        "--operator",
        "tanaka",
    ]);
    let r = shomei(&kit, &with).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("BREAK-GLASS"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("notified 運用管理者 ueda <ueda@example.jp>"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("NOT notified 運用管理者 noda: no e-mail address"),
        "{}",
        r.stderr
    );
    assert_eq!(roles().await, "helpdesk,audit");
    let rows = bank_rows(&kit).await;
    let glass: Vec<_> = rows
        .iter()
        .filter(|r| r.starts_with("cli:tanaka/緊急実行（承認省略）/"))
        .collect();
    assert_eq!(glass.len(), 2, "the refusal and the commit: {rows:?}");
    assert!(
        glass[0].contains("/失敗/") && glass[1].contains("/成功/"),
        "{glass:?}"
    );
    assert!(
        glass[1].contains("理由: 監査対応のため本日中に必要") && glass[1].contains("noda"),
        "{glass:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r.starts_with("cli:tanaka/オペレーター役割変更/成功/sato/")),
        "{rows:?}"
    );
    let mails = kit.svc.store().pending_notices(10).await.unwrap();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(
        (mails[0].email.as_str(), mails[0].name.as_str()),
        ("ueda@example.jp", "ueda")
    );
    assert!(mails[0].subject.contains("緊急実行（承認省略）"));
    assert!(mails[0].body.contains("監査対応のため本日中に必要"));
    kit.stop().await;
}

#[tokio::test]
async fn the_first_operator_is_made_on_the_shell_and_the_next_one_is_a_request() {
    let kit = Kit::start().await;
    let out = kit.dir.path().join("first.p12");
    let out = out.to_str().unwrap();
    let r = shomei(
        &kit,
        &[
            "operator",
            "add",
            "--name",
            "root1",
            "--role",
            "operations-admin",
            "--out",
            out,
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("operator root1 added"), "{}", r.stdout);
    assert!(std::fs::metadata(out).unwrap().len() > 0);
    // The next one waits for approval; no file is written.
    let next = kit.dir.path().join("next.p12");
    let r = shomei(
        &kit,
        &[
            "operator",
            "add",
            "--name",
            "second",
            "--role",
            "helpdesk",
            "--email",
            "s@example.jp",
            "--operator",
            "tanaka",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.starts_with("request "), "{}", r.stdout);
    assert!(!next.exists());
    let p = kit.svc.approval_list(false, 1).await.unwrap();
    assert_eq!(p.requests.len(), 1);
    assert_eq!(p.requests[0].requester, "cli:tanaka");
    assert!(
        r.stdout.contains("オペレーター登録: second"),
        "{}",
        r.stdout
    );
    kit.stop().await;
}

/// Runs `shomei ARGS` with these SHOMEI_* variables only (the test
/// environment's own are removed), and no option added.
async fn shomei_env(args: &[&str], env: &[(&str, &str)]) -> Ran {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_shomei"));
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("SHOMEI_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The README: the database is chosen by `--database-url`, the config
/// file's `database_url` "or the environment variable SHOMEI_DATABASE_URL".
/// With the variable naming a PostgreSQL server that is not there,
/// `company list` on a data directory that has the SQLite database is
/// refused, naming that server (the password hidden); without it, the same
/// command lists the SQLite database's companies (the control). On
/// PostgreSQL, the variable naming the kit's database lists its companies
/// from an empty data directory.
#[tokio::test]
async fn shomei_database_url_selects_the_database() {
    let kit = Kit::start().await;
    let dir = kit.dir.path().to_str().unwrap().to_owned();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nowhere = format!("postgres://shomei:s3cret@127.0.0.1:{port}/shomei");
    let list = ["company", "list", "--data-dir", &dir];
    let r = shomei_env(&list, &[("SHOMEI_DATABASE_URL", &nowhere)]).await;
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "cannot reach the database at postgres://shomei:***@127.0.0.1:{port}/shomei"
        )) && !r.stderr.contains("s3cret"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    match &kit.svc.settings().database_url {
        None => {
            let r = shomei_env(&list, &[]).await;
            assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
            assert!(r.stdout.contains("株式会社ほくぎん商事"), "{}", r.stdout);
        }
        Some(url) => {
            let empty = tempfile::tempdir().unwrap();
            let empty = empty.path().to_str().unwrap();
            let r = shomei_env(
                &["company", "list", "--data-dir", empty],
                &[("SHOMEI_DATABASE_URL", url.with_password())],
            )
            .await;
            assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
            assert!(r.stdout.contains("株式会社ほくぎん商事"), "{}", r.stdout);
        }
    }
    kit.stop().await;
}

/// `shomei company set-service` (README, Command line): the change and its
/// 契約サービス変更 row by 銀行:<operator>; a company with more users than
/// the new service allows is refused by its message, unchanged and with no
/// row, beside the control.
#[tokio::test]
async fn company_set_service_changes_the_service_and_refuses_one_over_its_user_limit() {
    let kit = Kit::start().await;
    let config = kit.dir.path().join("small.toml");
    std::fs::write(&config, "[settings]\nhottokun_webjr_max_users = 3\n").unwrap();
    let config = config.to_str().unwrap();
    let service_of = async |id: i64| {
        let r = shomei(&kit, &["company", "list", "--json"]).await;
        assert_eq!(r.code, 0, "{}", r.stderr);
        r.stdout
            .lines()
            .find(|l| l.contains(&format!("\"id\":{id},")))
            .and_then(|l| l.split("\"service\":\"").nth(1))
            .and_then(|s| s.split('"').next())
            .unwrap_or_else(|| panic!("{}", r.stdout))
            .to_owned()
    };
    let rows = async |company: i64| {
        kit.history_of(company)
            .await
            .into_iter()
            .filter(|r| r.contains("/契約サービス変更/"))
            .collect::<Vec<_>>()
    };
    assert_eq!(service_of(1).await, "business_ib");
    // Company 1 has five users: over the three allowed.
    let r = shomei(
        &kit,
        &[
            "company",
            "set-service",
            "--id",
            "1",
            "--service",
            "hottokun-webjr",
            "--operator",
            "tanaka",
            "--config",
            config,
        ],
    )
    .await;
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("company 1 has 5 users; hottokun_webjr allows at most 3"),
        "{}",
        r.stderr
    );
    assert_eq!(service_of(1).await, "business_ib", "unchanged");
    assert_eq!(rows(1).await, Vec::<String>::new(), "no row");
    // The control: company 2 (two users) moves to ビジネスIB.
    assert_eq!(service_of(2).await, "hottokun_webjr");
    let r = shomei(
        &kit,
        &[
            "company",
            "set-service",
            "--id",
            "2",
            "--service",
            "business-ib",
            "--operator",
            "tanaka",
            "--config",
            config,
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.stdout, "company 2 now contracts ビジネスIB\n");
    assert_eq!(service_of(2).await, "business_ib");
    assert_eq!(rows(2).await, ["銀行:tanaka/契約サービス変更/成功/"]);
    kit.stop().await;
}

#[tokio::test]
async fn two_first_operator_bootstraps_at_once_add_exactly_one_operator() {
    let kit = Kit::start().await;
    let node_b = kit.another_server().await;
    assert_eq!(kit.svc.operator_count().await.unwrap(), 0);
    // Node a's bootstrap counts no operator in its transaction and stays
    // open until node b's has begun: on PostgreSQL b's waits for a's lock on
    // the operators (without it b would count none too), on SQLite for the
    // write lock at its BEGIN.
    side_by_side(&kit, &kit.svc, &node_b, Operation::OperatorAdd);
    let (a, b) = tokio::join!(
        kit.svc
            .add_first_operator("first-a", "operations-admin", "", "tanaka"),
        node_b.add_first_operator("first-b", "operations-admin", "", "suzuki")
    );
    let added = a.expect("node a's bootstrap adds the first operator");
    assert_eq!(added.name.as_str(), "first-a");
    // Node b is told an operator exists and to use the console.
    let e = match b {
        Ok(n) => panic!("node b's bootstrap added {} too", n.name),
        Err(e) => e,
    };
    assert!(matches!(e, FirstOperatorError::NotFirst), "{e:?}");
    assert_eq!(
        e.to_string(),
        "an operator exists already (the first one is made only while there is none): use the operator console, where a new operator is submitted and approved (or --break-glass)"
    );
    assert_eq!(kit.svc.operator_count().await.unwrap(), 1);
    let rows: Vec<String> = kit
        .bank_rows()
        .await
        .iter()
        .filter(|r| r.operation == "オペレーター登録")
        .map(|r| format!("{}/{}/{}", r.actor_login_id, r.result, r.target_login_id))
        .collect();
    assert_eq!(rows, ["cli:tanaka/成功/first-a"]);
    kit.stop().await;
}
