//! Several servers on one database: they must share one CA (a server that
//! brings another CA refuses to start and says why; with a copy of the first
//! server's ca/ folder it starts), and they share the lockout and the login
//! form's key.

use crate::testkit::{Kit, LOGIN_PW, StoreOf};

fn copy_file(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap();
}

#[tokio::test]
async fn a_server_with_another_ca_refuses_to_start_and_one_with_a_copy_of_ca_starts() {
    let kit = Kit::start().await;
    // A second data directory on the same PostgreSQL database, or on a copy
    // of the embedded one (SQLite keeps the database in the data directory).
    let other = tempfile::tempdir().unwrap();
    let url = kit.svc.settings().database_url.clone();
    if url.is_none() {
        let backup = other.path().join("shomei.db");
        kit.svc.store().backup_into(&backup).await.unwrap();
    }
    let open = || {
        shomei_service::Shomei::open(
            other.path(),
            &kit.base,
            shomei_service::Settings {
                database_url: url.clone(),
                ..Default::default()
            },
            kit.clock.clone(),
        )
    };
    let err = match open().await {
        Ok(_) => panic!("a server with a CA of its own started"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("is not the one in the database")
            && err.contains("copy that server's ca/ folder"),
        "{err}"
    );
    // The positive control: the first server's ca/ folder copied over.
    std::fs::remove_dir_all(other.path().join("ca")).unwrap();
    for f in [
        "root-ca.crt",
        "root-ca.key",
        "issuing-ca.crt",
        "issuing-ca.key",
    ] {
        let from = kit.dir.path().join("ca").join(f);
        if from.exists() {
            copy_file(&from, &other.path().join("ca").join(f));
        }
    }
    let second = open().await.expect("the same CA starts");
    assert_eq!(second.ca().issuing_der(), kit.svc.ca().issuing_der());
    kit.stop().await;
}

/// A second portal serving the kit's database (a second node behind the
/// load balancer), and its base URL.
async fn second_portal(kit: &Kit) -> (String, shomei_web::RunningServer) {
    let svc = std::sync::Arc::new(kit.another_server().await);
    let listener = shomei_web::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let server = shomei_web::start_on(
        svc,
        listener,
        shomei_web::ServerOptions {
            listen: addr,
            extra_names: vec![],
            cert_public_url: None,
        },
    )
    .await
    .unwrap();
    (format!("https://localhost:{}", addr.port()), server)
}

/// A browser of the kit's on another base URL (another node).
fn browser_on(kit: &Kit, base: &str) -> crate::testkit::Browser {
    let mut b = kit.browser();
    b.base = base.to_owned();
    b
}

const LOGIN_FAILED: &str = "ログインできませんでした。ログインIDとログインパスワードをご確認ください。連続して誤るとログインパスワードの利用が停止されます。停止の解除はマスターユーザまたは管理者ユーザにご依頼ください。";

/// The README: the lockout "holds with several servers on one database".
/// Wrong passwords spread over two servers add up to one lock (3), which
/// then refuses the right password on both; another user logs in on each
/// (the control: both serve).
#[tokio::test]
async fn the_lockout_holds_across_two_servers_on_one_database() {
    let kit = Kit::start().await;
    let (b_base, b) = second_portal(&kit).await;
    for (i, base) in [&kit.base, &b_base, &kit.base].into_iter().enumerate() {
        let p = browser_on(&kit, base)
            .login("hanakodt", "Wrong#Guess1")
            .await;
        assert_eq!(p.error().as_deref(), Some(LOGIN_FAILED), "guess {i}");
        assert_eq!(kit.counters("hanakodt").await.login_failures, i as u32 + 1);
    }
    assert!(kit.counters("hanakodt").await.login_locked_until.is_some());
    for base in [&kit.base, &b_base] {
        let p = browser_on(&kit, base).login("hanakodt", LOGIN_PW).await;
        assert_eq!(
            (p.path(), p.error().as_deref()),
            ("/login", Some(LOGIN_FAILED)),
            "locked on {base}"
        );
        assert_eq!(
            browser_on(&kit, base)
                .login("tarodt", LOGIN_PW)
                .await
                .path(),
            "/top",
            "{base} serves"
        );
    }
    let rows = kit.history().await;
    assert_eq!(
        rows.iter()
            .filter(|r| r.starts_with("hanakodt/ログインパスワード利用一時停止/成功/"))
            .count(),
        1,
        "one lock: {rows:#?}"
    );
    b.shutdown().await;
    kit.stop().await;
}

/// The login form's cookie value and CSRF token as a server handed them out.
async fn login_form(b: &crate::testkit::Browser) -> (String, String) {
    use reqwest::cookie::CookieStore;
    let page = b.get("/login").await;
    let token = crate::testkit::csrf_of(&page.body).expect("a CSRF token on the login form");
    let url: reqwest::Url = b.base.parse().unwrap();
    let cookies = b.jar.cookies(&url).expect("the form cookie");
    let cookie = cookies
        .to_str()
        .unwrap()
        .split("; ")
        .find(|kv| kv.starts_with("__Host-shomei-form="))
        .expect("the form cookie")
        .to_owned();
    (cookie, token)
}

/// The README: the login form's cookie is signed "with a key every server on
/// the database shares". A form got on server A logs in on server B; the
/// same form from a server on another database (another key) is refused on
/// B as a stale or forged form.
#[tokio::test]
async fn a_login_form_got_on_one_server_is_accepted_by_another_on_the_database() {
    let kit = Kit::start().await;
    let (b_base, b) = second_portal(&kit).await;
    let elsewhere = Kit::start().await;
    let submit = async |(cookie, token): (String, String)| {
        let browser = browser_on(&kit, &b_base);
        let url: reqwest::Url = b_base.parse().unwrap();
        browser.jar.add_cookie_str(
            &format!("{cookie}; Path=/; Secure; HttpOnly; SameSite=Strict"),
            &url,
        );
        browser
            .post_raw(
                "/login",
                &[
                    ("csrf", &token),
                    ("login_id", "tarodt"),
                    ("password", LOGIN_PW),
                ],
            )
            .await
    };
    let from_a = login_form(&kit.browser()).await;
    let p = submit(from_a).await;
    assert_eq!(p.path(), "/top", "A's form logs in on B: {:?}", p.error());
    let from_elsewhere = login_form(&elsewhere.browser()).await;
    let p = submit(from_elsewhere).await;
    assert_eq!(
        (p.path(), p.error().as_deref()),
        (
            "/login",
            Some("画面の有効期限が切れたか、不正な操作が行われました。もう一度操作してください。")
        ),
        "another database's form"
    );
    elsewhere.stop().await;
    b.shutdown().await;
    kit.stop().await;
}

/// Backends connected to this kit's PostgreSQL database, this query's own
/// left out.
async fn backends(url: &shomei_service::DatabaseUrl) -> i64 {
    backends_where(url, "true").await
}

/// As `backends`, those that also match the SQL condition `cond`.
async fn backends_where(url: &shomei_service::DatabaseUrl, cond: &str) -> i64 {
    use sqlx::Connection as _;
    let mut c = sqlx::PgConnection::connect(url.with_password())
        .await
        .unwrap();
    let n = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND ({cond})"
    )))
    .fetch_one(&mut c)
    .await
    .unwrap();
    c.close().await.unwrap();
    n
}

/// The README: "a node uses at most `database_pool_size` connections
/// (default twice its CPU cores, at least 4) plus one for its revocation
/// listener". With the default, the pool's size is that; that many
/// transactions open side by side, each on a backend of its own, which
/// with the listener is every connection the node holds; a set size is
/// taken as it is. On SQLite there is no such pool ("SQLite: not used").
#[tokio::test]
async fn a_node_holds_at_most_its_pool_size_and_the_default_is_twice_the_cores() {
    let kit = Kit::start().await;
    let Some(url) = kit.svc.settings().database_url.clone() else {
        assert_eq!(kit.svc.store().pool_size(), None);
        kit.stop().await;
        return;
    };
    let cores = std::thread::available_parallelism().unwrap().get() as u32;
    let default = (2 * cores).max(4);
    assert_eq!(kit.svc.store().pool_size(), Some(default));
    // The revocation listener connects in the background after the start,
    // on a connection of its own: counted before it has, it is missing.
    crate::testkit::wait_for("the revocation listener's connection", async || {
        backends_where(&url, "query LIKE 'LISTEN%'").await == 1
    })
    .await;
    let mut open = Vec::new();
    for _ in 0..default {
        open.push(kit.svc.store().begin().await.unwrap());
    }
    assert_eq!(
        backends(&url).await,
        i64::from(default) + 1,
        "the pool's connections and the listener's"
    );
    drop(open);
    kit.stop().await;
    let set = Kit::start_with(shomei_service::Settings {
        database_pool_size: 6,
        ..Default::default()
    })
    .await;
    assert_eq!(set.svc.store().pool_size(), Some(6));
    set.stop().await;
}
