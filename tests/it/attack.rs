//! Holding under attack, with small numbers: floods of anonymous requests
//! evict no session, concurrent guesses get no more checks than the lockout
//! allows (login, 確認用パスワード, EST), a burst from one address gets at
//! most its limit checked, the hashing pool answers busy beyond its queue,
//! and every listener caps its connections and closes slow ones.

use std::net::IpAddr;
use std::time::Duration as StdDuration;

use shomei_core::CompanyId;
use shomei_service::Settings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

use crate::testkit::{CONFIRM_PW, Kit, LOGIN_PW, StoreOf, wait_for};

/// A series' value in the metrics text.
async fn metric(kit: &Kit, series: &str) -> f64 {
    let text = reqwest::get(format!("{}/metrics", kit.metrics_base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

/// Users' passwords checked so far: the hashes computed less the dummies
/// (spent on guesses that check no user's password).
async fn user_checks(kit: &Kit) -> f64 {
    metric(kit, "shomei_password_hashes_total").await
        - metric(kit, "shomei_password_dummy_hashes_total").await
}

/// The company's 操作履歴 rows as `actor/operation/result/detail`.
async fn rows(kit: &Kit, company: i64) -> Vec<String> {
    kit.svc
        .store()
        .audit_for_company(CompanyId(company), 10_000, 0)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}/{}/{}/{}",
                r.actor_login_id, r.operation, r.result, r.detail
            )
        })
        .collect()
}

fn count(rows: &[String], needle: &str) -> usize {
    rows.iter().filter(|r| r.contains(needle)).count()
}

/// Settings with the address limit off, so that only the rule under test acts.
fn no_address_limit() -> Settings {
    Settings {
        address_failure_limit: 0,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_flood_of_anonymous_requests_ends_no_session_and_no_pending_screen() {
    let kit = Kit::start_with(Settings {
        max_sessions: 2,
        ..no_address_limit()
    })
    .await;
    let admin = kit.browser();
    let p = admin.to_brsk019(&kit, "hanakodt", "tarodt").await;
    assert!(p.has("BRSK019"), "the revocation is pending");
    // 600 cookieless visitors, 16 at a time: far more than the session pool.
    let mut flood = JoinSet::new();
    for _ in 0..16 {
        let b = kit.browser();
        flood.spawn(async move {
            for _ in 0..(600 / 16) {
                let r = b
                    .client
                    .get(format!("{}/login", b.base))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
        });
    }
    while let Some(r) = flood.join_next().await {
        r.unwrap();
    }
    assert_eq!(kit.sessions().await, 1, "visitors hold no session");
    // The pending BRSK019 is still there and completes.
    let done = admin.execute(CONFIRM_PW).await;
    assert!(done.has("BRSK020"), "{}", done.body);
    assert!(kit.revoked("tarodt").await);
    // And a visitor logs in as ever.
    let other = kit.browser();
    assert_eq!(other.login("hottojr01", LOGIN_PW).await.path(), "/top");
    kit.stop().await;
}

#[tokio::test]
async fn at_the_session_bound_a_new_login_is_busy_and_nobody_else_is_logged_out() {
    let kit = Kit::start_with(Settings {
        max_sessions: 2,
        max_sessions_per_user: 2,
        ..no_address_limit()
    })
    .await;
    let a = kit.browser();
    let b = kit.browser();
    assert_eq!(a.login("hanakodt", LOGIN_PW).await.path(), "/top");
    assert_eq!(b.login("tarodt", LOGIN_PW).await.path(), "/top");
    let c = kit.browser();
    let p = c.login("hottojr01", LOGIN_PW).await;
    assert_eq!(p.status, 503);
    assert!(p.has("ただいま混雑しています。しばらくしてから再度お試しください。"));
    // Both sessions carry on.
    assert_eq!(a.get("/top").await.path(), "/top");
    assert_eq!(b.get("/top").await.path(), "/top");
    // At the bound, one more login of a user who has a session replaces
    // their own oldest only.
    let a2 = kit.browser();
    assert_eq!(a2.login("hanakodt", LOGIN_PW).await.path(), "/top");
    assert_eq!(kit.sessions().await, 2);
    assert_eq!(b.get("/top").await.path(), "/top", "tarodt is untouched");
    assert_eq!(a2.get("/top").await.path(), "/top");
    kit.stop().await;
}

#[tokio::test]
async fn forty_concurrent_guesses_get_at_most_three_checks_and_one_lock() {
    let kit = Kit::start_with(Settings {
        login_temp_lock_after: 3,
        login_stop_after: 6,
        hash_workers: 1,
        hash_queue: 64,
        ..no_address_limit()
    })
    .await;
    // Every browser has its login form before the burst.
    let mut browsers = Vec::new();
    for i in 0..40 {
        let b = kit.browser();
        b.get("/login").await;
        browsers.push((i, b));
    }
    let checks_before = user_checks(&kit).await;
    let mut burst = JoinSet::new();
    for (i, b) in browsers {
        // The right password is the 20th of 40.
        let pw = if i == 19 { LOGIN_PW } else { "Wrong#Guess1" };
        burst.spawn(async move {
            let p = b
                .post("/login", &[("login_id", "jirodt"), ("password", pw)])
                .await;
            (i, p.path() == "/top")
        });
    }
    let mut logged_in = Vec::new();
    while let Some(r) = burst.join_next().await {
        let (i, ok) = r.unwrap();
        if ok {
            logged_in.push(i);
        }
    }
    let checks = user_checks(&kit).await - checks_before;
    assert!(
        checks <= 3.0,
        "{checks} passwords checked; the lockout allows 3"
    );
    let h = rows(&kit, 1).await;
    let wrong = count(&h, "jirodt/ログイン/失敗/ログインパスワード誤り");
    let locks = count(&h, "jirodt/ログインパスワード利用一時停止/成功/");
    assert!(logged_in.iter().all(|i| *i == 19), "{logged_in:?}");
    if logged_in.is_empty() {
        assert_eq!(wrong, 3, "{h:#?}");
        assert_eq!(locks, 1, "exactly one lock row");
        assert!(kit.counters("jirodt").await.login_locked_until.is_some());
    } else {
        // The right one was checked among the three: fewer than three
        // failures, so no lock, and its success reset the count.
        assert!(wrong <= 2, "{h:#?}");
        assert_eq!(locks, 0);
        assert_eq!(kit.counters("jirodt").await.login_failures, 0);
    }
    let at_once = count(
        &h,
        "jirodt/ログイン/失敗/同時に照合中の試行が上限に達したため照合せず",
    );
    assert!(
        at_once >= 1,
        "the guesses overlapped: some were refused while three were being checked"
    );
    assert_eq!(
        at_once
            + count(&h, "jirodt/ログイン/失敗/ログインパスワード利用一時停止中")
            + wrong
            + logged_in.len(),
        40,
        "every attempt has its row: {h:#?}"
    );
    kit.stop().await;
}

#[tokio::test]
async fn concurrent_wrong_confirmation_passwords_get_at_most_the_limit_and_one_stop() {
    let kit = Kit::start_with(Settings {
        confirm_stop_after: 3,
        ..no_address_limit()
    })
    .await;
    let id = kit.user_id("jirodt").await;
    let me = kit
        .svc
        .session(shomei_core::UserId(id))
        .await
        .unwrap()
        .unwrap()
        .actor;
    let contact = shomei_service::CompanyContact {
        name: "総務部 北銀".into(),
        phone: "076-000-0000".into(),
        email: "soumu@example.jp".into(),
    };
    let hashes_before = metric(&kit, "shomei_password_hashes_total").await;
    let mut burst = JoinSet::new();
    for _ in 0..20 {
        let (svc, me, contact) = (kit.svc.clone(), me.clone(), contact.clone());
        burst.spawn(async move {
            svc.master(&me)
                .unwrap()
                .update_company_contact(&contact, "Wrong#Kakunin1", "192.0.2.7")
                .await
                .unwrap_err()
                .to_string()
        });
    }
    let mut messages = Vec::new();
    while let Some(r) = burst.join_next().await {
        messages.push(r.unwrap());
    }
    let checks = metric(&kit, "shomei_password_hashes_total").await - hashes_before;
    assert_eq!(checks, 3.0, "three checks, however many at once");
    let h = rows(&kit, 1).await;
    assert_eq!(
        count(&h, "jirodt/企業情報変更/失敗/確認用パスワード誤り"),
        3
    );
    assert_eq!(
        count(&h, "jirodt/確認用パスワード利用停止/成功/"),
        1,
        "{h:#?}"
    );
    assert!(kit.counters("jirodt").await.confirm_stopped);
    assert!(
        messages
            .iter()
            .all(|m| m.contains("確認パスワードが正しくありません")
                || m.contains("確認用パスワードの利用が停止されている")
                || m.contains("同時に多数行われた")),
        "{messages:?}"
    );
    // Stopped, even the right password changes nothing now.
    let r = kit
        .svc
        .master(&me)
        .unwrap()
        .update_company_contact(&contact, CONFIRM_PW, "192.0.2.7")
        .await
        .unwrap_err();
    assert!(
        r.to_string()
            .contains("確認用パスワードの利用が停止されている")
    );
    kit.stop().await;
}

#[tokio::test]
async fn concurrent_enrollments_with_a_wrong_password_get_at_most_three_checks() {
    let kit = Kit::start_with(Settings {
        login_temp_lock_after: 3,
        ..no_address_limit()
    })
    .await;
    let (_, csr) = crate::issuance::key_and_csr(&rcgen::PKCS_ECDSA_P256_SHA256);
    let checks_before = user_checks(&kit).await;
    let mut burst = JoinSet::new();
    for _ in 0..20 {
        let (base, root, csr) = (kit.base.clone(), kit.svc.ca().root_pem(), csr.clone());
        burst.spawn(async move {
            let root = reqwest::Certificate::from_pem(root.as_bytes()).unwrap();
            let client = reqwest::Client::builder()
                .tls_certs_only([root])
                .build()
                .unwrap();
            use base64::Engine as _;
            client
                .post(format!("{base}/.well-known/est/simpleenroll"))
                .basic_auth("jirodt", Some("Wrong#Guess1"))
                .header("Content-Type", "application/pkcs10")
                .body(base64::engine::general_purpose::STANDARD.encode(&csr))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    while let Some(r) = burst.join_next().await {
        assert_eq!(r.unwrap(), 401);
    }
    let checks = user_checks(&kit).await - checks_before;
    assert_eq!(checks, 3.0);
    let h = rows(&kit, 1).await;
    assert_eq!(
        count(&h, "jirodt/証明書発行/失敗/ログインパスワード誤り"),
        3
    );
    assert_eq!(count(&h, "jirodt/ログインパスワード利用一時停止/成功/"), 1);
    // The positive control: a correct enrollment works for another user.
    let ok = crate::issuance::simpleenroll(&kit, "ichirodt", LOGIN_PW, &csr).await;
    assert_eq!(ok.status, 200);
    kit.stop().await;
}

#[tokio::test]
async fn a_burst_from_one_address_gets_at_most_its_limit_checked() {
    let kit = Kit::start_with(Settings {
        address_failure_limit: 5,
        ..Default::default()
    })
    .await;
    let mut browsers = Vec::new();
    for _ in 0..60 {
        let b = kit.browser();
        b.get("/login").await;
        browsers.push(b);
    }
    let hashes_before = metric(&kit, "shomei_password_hashes_total").await;
    let mut burst = JoinSet::new();
    for (i, b) in browsers.into_iter().enumerate() {
        burst.spawn(async move {
            let id = format!("spray{i:03}");
            b.post("/login", &[("login_id", &id), ("password", "Spray#2026")])
                .await
                .error()
                .unwrap_or_default()
        });
    }
    let mut throttled = 0;
    while let Some(r) = burst.join_next().await {
        let e = r.unwrap();
        if e.contains("接続元からのログインの失敗が続いた") {
            throttled += 1;
        } else {
            assert!(e.contains("ログインできませんでした"), "{e}");
        }
    }
    let checks = metric(&kit, "shomei_password_hashes_total").await - hashes_before;
    assert!(checks <= 5.0, "{checks} checks; the address limit is 5");
    assert!(throttled >= 55, "{throttled} refused");
    // Refusals are not a way to flood 操作履歴: one row, then a count.
    let bank = {
        let mut v = Vec::new();
        kit.svc
            .store()
            .audit_for_each(None, |r| {
                if r.company_id.is_none() {
                    v.push(r.detail.clone());
                }
            })
            .await
            .unwrap();
        v
    };
    assert_eq!(
        count(&bank, "接続元からの失敗が多いため受け付け停止中"),
        1,
        "{bank:#?}"
    );
    assert!(count(&bank, "ログインIDまたはログインパスワード誤り") <= 5);
    // The positive control: another address logs in at once.
    let other = browser_from(&kit, "127.0.0.2".parse().unwrap());
    assert_eq!(other.login("tarodt", LOGIN_PW).await.path(), "/top");
    kit.stop().await;
}

/// A browser whose connections come from `local` (another loopback address).
fn browser_from(kit: &Kit, local: IpAddr) -> crate::testkit::Browser {
    let mut b = kit.browser();
    let root = reqwest::Certificate::from_pem(kit.svc.ca().root_pem().as_bytes()).unwrap();
    b.client = reqwest::Client::builder()
        .tls_certs_only([root])
        .cookie_store(true)
        .local_address(local)
        .build()
        .unwrap();
    b
}

/// An EST client whose connection is open already (so that a burst arrives
/// at once).
async fn est_client(kit: &Kit) -> reqwest::Client {
    let c = crate::issuance::client(kit, None);
    let r = c
        .get(format!("{}/.well-known/est/cacerts", kit.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    c
}

#[tokio::test]
async fn beyond_the_hashing_queue_logins_and_enrollments_are_answered_busy() {
    let kit = Kit::start_with(Settings {
        hash_workers: 1,
        hash_queue: 1,
        ..no_address_limit()
    })
    .await;
    let (_, csr) = crate::issuance::key_and_csr(&rcgen::PKCS_ECDSA_P256_SHA256);
    // Rounds of 15 logins and 15 enrollments at once on two places, until
    // both doors have answered busy (the first round does, but for a
    // machine so slow that the burst trickles in).
    let (mut ok, mut busy, mut refused, mut est_busy) = (0, 0, 0, 0);
    for _round in 0..20 {
        if busy > 0 && est_busy > 0 {
            break;
        }
        let busy_before = metric(&kit, "shomei_password_checks_busy_total").await;
        let mut browsers = Vec::new();
        let mut ests = Vec::new();
        for _ in 0..15 {
            let b = kit.browser();
            b.get("/login").await;
            browsers.push(b);
            ests.push(est_client(&kit).await);
        }
        let mut logins = JoinSet::new();
        let mut enrollments = JoinSet::new();
        for (b, c) in browsers.into_iter().zip(ests) {
            logins.spawn(async move {
                let p = b
                    .post("/login", &[("login_id", "tarodt"), ("password", LOGIN_PW)])
                    .await;
                (p.path() == "/top", p)
            });
            let (url, csr) = (
                format!("{}/.well-known/est/simpleenroll", kit.base),
                csr.clone(),
            );
            enrollments.spawn(async move {
                let r = c
                    .post(url)
                    .basic_auth("nosuchuser1", Some("Wrong#Guess1"))
                    .header("content-type", "application/pkcs10")
                    .body(base64::Engine::encode(
                        &base64::engine::general_purpose::STANDARD,
                        &csr,
                    ))
                    .send()
                    .await
                    .unwrap();
                let retry = r.headers().get("retry-after").cloned();
                (r.status().as_u16(), retry, r.text().await.unwrap())
            });
        }
        let mut round_busy = 0;
        while let Some(r) = logins.join_next().await {
            let (logged_in, p) = r.unwrap();
            if logged_in {
                ok += 1;
            } else {
                assert_eq!(p.status, 503, "{}", p.body);
                assert_eq!(p.headers["retry-after"], "5");
                assert!(p.has("ただいま混雑しています。しばらくしてから再度お試しください。"));
                busy += 1;
                round_busy += 1;
            }
        }
        while let Some(r) = enrollments.join_next().await {
            match r.unwrap() {
                (401, None, body) => {
                    assert_eq!(
                        body,
                        "login ID or login password is wrong, or the login password is locked\n"
                    );
                    refused += 1;
                }
                (503, Some(retry), body) => {
                    assert_eq!(retry, "5");
                    assert_eq!(body, "server busy; please try again later\n");
                    est_busy += 1;
                    round_busy += 1;
                }
                other => panic!("{other:?}"),
            }
        }
        // Each busy answer is the pool's refusal (not a stale view's).
        let busy_now = metric(&kit, "shomei_password_checks_busy_total").await;
        assert_eq!(busy_now - busy_before, f64::from(round_busy));
    }
    assert!(busy >= 1 && est_busy >= 1, "two places: some are busy");
    assert!(ok >= 1, "the pool serves logins what it can");
    assert!(refused >= 1, "and enrollments: an unknown ID is refused");
    assert_eq!(metric(&kit, "shomei_password_hashing_places").await, 2.0);
    // Busy refusals count against nobody.
    assert_eq!(kit.counters("tarodt").await.login_failures, 0);
    kit.stop().await;
}

/// Which door a guess comes through.
#[derive(Debug, Clone, Copy)]
enum Door {
    LoginPage,
    Est,
}

impl Door {
    /// One guess; the answer as the client sees it (status, and the
    /// screen's message or EST's body).
    async fn guess(self, kit: &Kit, login_id: &str, password: &str) -> String {
        match self {
            Door::LoginPage => {
                let p = kit.browser().login(login_id, password).await;
                format!("{} {} {:?}", p.status, p.path(), p.error())
            }
            Door::Est => {
                let (_, csr) = crate::issuance::key_and_csr(&rcgen::PKCS_ECDSA_P256_SHA256);
                let a = crate::issuance::simpleenroll(kit, login_id, password, &csr).await;
                format!(
                    "{} {}",
                    a.status,
                    if a.status == 200 { "issued" } else { &a.body }
                )
            }
        }
    }
}

/// What one guess cost: hashes, of which dummies, and attempts counted
/// against the client's address.
async fn cost_of(kit: &Kit, door: Door, login_id: &str, password: &str) -> (String, [f64; 3]) {
    let figures = async || {
        let attempts = kit
            .svc
            .store()
            .begin()
            .await
            .unwrap()
            .address_attempts("127.0.0.1")
            .await
            .unwrap()
            .map_or(0, |a| a.attempts);
        [
            metric(kit, "shomei_password_hashes_total").await,
            metric(kit, "shomei_password_dummy_hashes_total").await,
            f64::from(attempts),
        ]
    };
    let before = figures().await;
    let answer = door.guess(kit, login_id, password).await;
    let after = figures().await;
    (answer, [0, 1, 2].map(|i| after[i] - before[i]))
}

/// A locked or stopped login ID, or one with as many checks in flight as
/// its lockout allows, is refused with the answer an unknown ID gets and at
/// the same cost: one hash on the same pool (the dummy), one attempt in the
/// address's count. When the lock answered without hashing, in a tenth of the
/// time, four wrong guesses told whether an ID exists (an unknown one never
/// locks). Through the login page and EST alike; the right password of an
/// open ID is the control.
#[tokio::test]
async fn a_locked_id_costs_one_hash_like_an_unknown_one_and_a_wrong_password() {
    for door in [Door::LoginPage, Door::Est] {
        let kit = Kit::start().await;
        let (unknown, cost) = cost_of(&kit, door, "nosuchuser1", "Wrong#Guess1").await;
        assert_eq!(cost, [1.0, 1.0, 1.0], "{door:?}: an unknown ID, {unknown}");
        match door {
            Door::LoginPage => assert_eq!(
                unknown,
                "200 /login Some(\"ログインできませんでした。ログインIDとログインパスワードをご確認ください。連続して誤るとログインパスワードの利用が停止されます。停止の解除はマスターユーザまたは管理者ユーザにご依頼ください。\")",
            ),
            Door::Est => assert_eq!(
                unknown,
                "401 login ID or login password is wrong, or the login password is locked\n"
            ),
        }
        // Three wrong passwords lock hanakodt: each one checked for real.
        for i in 1..=3 {
            let (answer, cost) = cost_of(&kit, door, "hanakodt", "Wrong#Guess1").await;
            assert_eq!(answer, unknown, "{door:?}: wrong password {i}");
            assert_eq!(cost, [1.0, 0.0, 1.0], "{door:?}: wrong password {i}");
        }
        assert!(kit.counters("hanakodt").await.login_locked_until.is_some());
        // A stop, an administrator's stop, and three checks of tarodt's
        // password under way on other servers.
        let mut tx = kit.svc.store().begin().await.unwrap();
        for (who, stop) in [("ichirodt", false), ("sachikodt", true)] {
            let mut c = kit.counters(who).await;
            c.login_stopped = !stop;
            c.admin_stopped = stop;
            let id = shomei_core::UserId(kit.user_id(who).await);
            tx.save_counters(id, &c).await.unwrap();
        }
        let tarodt = shomei_core::UserId(kit.user_id("tarodt").await);
        for _ in 0..3 {
            let until = kit.svc.now() + time::Duration::minutes(5);
            tx.insert_claim(tarodt, shomei_store::ClaimKind::Login, until)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        let op = match door {
            Door::LoginPage => "ログイン",
            Door::Est => "証明書発行",
        };
        for (who, why) in [
            ("hanakodt", "ログインパスワード利用一時停止中"),
            ("ichirodt", "ログインパスワード利用停止中"),
            ("sachikodt", "利用停止中"),
            ("tarodt", "同時に照合中の試行が上限に達したため照合せず"),
        ] {
            let before = count(&rows(&kit, 1).await, &format!("{who}/{op}/失敗/{why}"));
            // The right password: refused all the same, unchecked.
            let (answer, cost) = cost_of(&kit, door, who, LOGIN_PW).await;
            assert_eq!(answer, unknown, "{door:?}: {who} ({why})");
            assert_eq!(cost, [1.0, 1.0, 1.0], "{door:?}: {who} ({why})");
            let after = count(&rows(&kit, 1).await, &format!("{who}/{op}/失敗/{why}"));
            assert_eq!(after, before + 1, "{door:?}: {who} refused as {why}");
        }
        // The control: the right password of an open ID, checked for real
        // (a success gives its address attempt back).
        let (answer, cost) = cost_of(&kit, door, "jirodt", LOGIN_PW).await;
        match door {
            Door::LoginPage => assert_eq!(answer, "200 /top None"),
            Door::Est => assert_eq!(answer, "200 issued"),
        }
        assert_eq!(cost, [1.0, 0.0, 0.0], "{door:?}: the control");
        kit.stop().await;
    }
}

/// Reads until the server closes the connection (with a generous ceiling);
/// what it sent before closing.
async fn until_closed(s: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(StdDuration::from_secs(60), read)
        .await
        .expect("the server never closed the connection");
    got
}

fn addr_of(url: &str) -> String {
    url.split("://")
        .nth(1)
        .unwrap()
        .replace("localhost", "127.0.0.1")
}

#[tokio::test]
async fn half_sent_headers_and_silent_handshakes_are_closed_and_others_served() {
    // Timeouts long enough for the controls' own handshakes on a loaded
    // machine; the two stalled connections wait out theirs side by side.
    let kit = Kit::start_with(Settings {
        header_timeout_seconds: 5,
        tls_handshake_timeout_seconds: 5,
        ..Default::default()
    })
    .await;
    // Half a request header on the metrics listener (plain HTTP), and a TCP
    // connection that never starts TLS on the portal.
    let mut slow = tokio::net::TcpStream::connect(addr_of(&kit.metrics_base))
        .await
        .unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut silent = tokio::net::TcpStream::connect(addr_of(&kit.base))
        .await
        .unwrap();
    // The positive controls, meanwhile: whole requests are answered.
    assert!(metric(&kit, "shomei_sessions").await >= 0.0);
    assert_eq!(kit.browser().get("/login").await.status, 200);
    let (answered, nothing) = tokio::join!(until_closed(&mut slow), until_closed(&mut silent));
    let text = String::from_utf8_lossy(&answered);
    assert!(
        text.starts_with("HTTP/1.1 408") || answered.is_empty(),
        "closed without serving it: {text}"
    );
    assert!(nothing.is_empty());
    assert_eq!(
        metric(
            &kit,
            "shomei_connections_refused_total{listener=\"portal\",reason=\"handshake_timeout\"}"
        )
        .await,
        1.0
    );
    assert_eq!(kit.browser().get("/login").await.status, 200);
    kit.stop().await;
}

#[tokio::test]
async fn one_address_holding_its_cap_of_connections_leaves_others_served() {
    let kit = Kit::start_with(Settings {
        max_connections_per_address: 3,
        ..Default::default()
    })
    .await;
    let portal = addr_of(&kit.base);
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(tokio::net::TcpStream::connect(&portal).await.unwrap());
    }
    let open = async || metric(&kit, "shomei_connections_open{listener=\"portal\"}").await;
    wait_for("the server counts all three as open", async || {
        open().await >= 3.0
    })
    .await;
    // The fourth from the same address is closed at once, unserved …
    let mut fourth = tokio::net::TcpStream::connect(&portal).await.unwrap();
    assert!(until_closed(&mut fourth).await.is_empty());
    assert!(
        metric(
            &kit,
            "shomei_connections_refused_total{listener=\"portal\",reason=\"address_full\"}"
        )
        .await
            >= 1.0
    );
    // … while another address logs in.
    let other = browser_from(&kit, "127.0.0.2".parse().unwrap());
    assert_eq!(other.login("tarodt", LOGIN_PW).await.path(), "/top");
    // Once the idle ones go, the first address is served again.
    drop(held);
    wait_for("the held connections are counted closed", async || {
        open().await < 3.0
    })
    .await;
    assert_eq!(kit.browser().get("/login").await.status, 200);
    kit.stop().await;
}

/// An EST simpleenroll from `local` (another loopback address): status and body.
async fn enroll_from(
    kit: &Kit,
    local: IpAddr,
    login_id: &str,
    password: &str,
    csr: &[u8],
) -> (u16, String) {
    let root = reqwest::Certificate::from_pem(kit.svc.ca().root_pem().as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([root])
        .local_address(local)
        .build()
        .unwrap();
    let r = client
        .post(format!("{}/.well-known/est/simpleenroll", kit.base))
        .basic_auth(login_id, Some(password))
        .header("content-type", "application/pkcs10")
        .body(base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            csr,
        ))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

const EST_REFUSED: &str = "login ID or login password is wrong, or the login password is locked\n";
const THROTTLED: &str = "接続元からのログインの失敗が続いた";

/// The README: "failed logins or enrollments from one client address"
/// share one limit. Logins fill an address's limit and an enrollment from it
/// with a right password is refused unchecked (no hash, no certificate,
/// counted as throttled), while the same enrollment from another address is
/// issued; enrollments fill another address and a login from it with a
/// right password gets the address's message, while a fourth address logs in.
#[tokio::test]
async fn enrollments_and_logins_count_toward_one_address_limit() {
    let kit = Kit::start_with(Settings {
        address_failure_limit: 3,
        ..Default::default()
    })
    .await;
    let (_, csr) = crate::issuance::key_and_csr(&rcgen::PKCS_ECDSA_P256_SHA256);
    let (a, b, c, d): (IpAddr, IpAddr, IpAddr, IpAddr) = (
        "127.0.0.1".parse().unwrap(),
        "127.0.0.2".parse().unwrap(),
        "127.0.0.3".parse().unwrap(),
        "127.0.0.4".parse().unwrap(),
    );
    // Three failed logins from a.
    for i in 0..3 {
        let p = browser_from(&kit, a)
            .login(&format!("spray{i:03}"), "Spray#2026")
            .await;
        assert!(
            p.error()
                .is_some_and(|e| e.contains("ログインできませんでした")),
            "login {i}: {:?}",
            p.error()
        );
    }
    let throttled = async || metric(&kit, "shomei_address_throttled_total").await;
    let (hashes, refused) = (
        metric(&kit, "shomei_password_hashes_total").await,
        throttled().await,
    );
    // jirodt (未発行) enrolls from a with the right password: refused unchecked.
    assert_eq!(
        enroll_from(&kit, a, "jirodt", LOGIN_PW, &csr).await,
        (401, EST_REFUSED.to_string())
    );
    assert_eq!(
        throttled().await,
        refused + 1.0,
        "refused by the address limit"
    );
    assert_eq!(
        metric(&kit, "shomei_password_hashes_total").await,
        hashes,
        "no password checked"
    );
    let jirodt = shomei_core::UserId(kit.user_id("jirodt").await);
    assert!(kit.svc.store().latest_cert(jirodt).await.unwrap().is_none());
    // The control: the same enrollment from b is issued.
    let (status, body) = enroll_from(&kit, b, "jirodt", LOGIN_PW, &csr).await;
    assert_eq!(status, 200, "{body}");
    assert!(kit.svc.store().latest_cert(jirodt).await.unwrap().is_some());

    // Three failed enrollments from c, then a right login from there.
    for i in 0..3 {
        assert_eq!(
            enroll_from(&kit, c, &format!("spray{i:03}"), "Spray#2026", &csr).await,
            (401, EST_REFUSED.to_string()),
            "enrollment {i}"
        );
    }
    let refused = throttled().await;
    let p = browser_from(&kit, c).login("tarodt", LOGIN_PW).await;
    assert_eq!(p.path(), "/login");
    assert!(
        p.error().is_some_and(|e| e.contains(THROTTLED)),
        "{:?}",
        p.error()
    );
    assert_eq!(throttled().await, refused + 1.0);
    // The control: d logs in.
    assert_eq!(
        browser_from(&kit, d).login("tarodt", LOGIN_PW).await.path(),
        "/top"
    );
    kit.stop().await;
}

/// The README: every listener has "a cap on connections per listener …
/// (closed at once, counted in shomei_connections_refused_total)". Three
/// connections from three addresses fill a portal capped at three; a fourth,
/// from a fourth address (under its own per-address cap), is closed unserved
/// and counted, while the metrics listener (its own cap) answers; once one
/// goes, the portal serves again.
#[tokio::test]
async fn a_listener_at_its_cap_closes_the_next_connection_and_serves_once_one_goes() {
    let kit = Kit::start_with(Settings {
        max_connections: 3,
        // The held connections never start TLS: they must outlast the test.
        tls_handshake_timeout_seconds: 600,
        ..Default::default()
    })
    .await;
    let portal = addr_of(&kit.base);
    let mut held = Vec::new();
    for i in 1..=3 {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        s.bind(format!("127.0.0.{i}:0").parse().unwrap()).unwrap();
        held.push(s.connect(portal.parse().unwrap()).await.unwrap());
    }
    let open = async || metric(&kit, "shomei_connections_open{listener=\"portal\"}").await;
    wait_for("the server counts all three as open", async || {
        open().await >= 3.0
    })
    .await;
    let full = async || {
        metric(
            &kit,
            "shomei_connections_refused_total{listener=\"portal\",reason=\"listener_full\"}",
        )
        .await
    };
    assert_eq!(full().await, 0.0);
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.bind("127.0.0.4:0".parse().unwrap()).unwrap();
    let mut fourth = s.connect(portal.parse().unwrap()).await.unwrap();
    fourth.write_all(b"\x16\x03\x01").await.unwrap_or(());
    assert!(
        until_closed(&mut fourth).await.is_empty(),
        "closed unserved"
    );
    assert_eq!(full().await, 1.0, "counted as the listener's cap");
    assert_eq!(
        metric(
            &kit,
            "shomei_connections_refused_total{listener=\"portal\",reason=\"address_full\"}"
        )
        .await,
        0.0,
        "not the address's cap"
    );
    // One goes; the portal serves again.
    held.pop();
    wait_for("the dropped connection is counted closed", async || {
        open().await < 3.0
    })
    .await;
    assert_eq!(
        browser_from(&kit, "127.0.0.5".parse().unwrap())
            .get("/login")
            .await
            .status,
        200
    );
    kit.stop().await;
}

/// Sends a request on a kept-alive plain-HTTP connection and reads its
/// whole answer (a small one: /healthz).
async fn healthz_on(s: &mut tokio::net::TcpStream) -> String {
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let read = async {
        loop {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before answering: {got:?}");
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")?
                            .parse()
                            .ok()
                    })
                    .expect("a content-length");
                if body.len() >= len {
                    return text.into_owned();
                }
            }
        }
    };
    tokio::time::timeout(StdDuration::from_secs(60), read)
        .await
        .expect("no answer")
}

/// The README: every listener has "an idle timeout". A kept-alive
/// connection that says nothing after its answer is closed once the timeout
/// has passed (not sooner), while one that keeps asking meanwhile is still
/// served after it (the control), and a new connection too.
#[tokio::test]
async fn an_idle_connection_is_closed_after_the_idle_timeout_and_a_busy_one_is_served() {
    let kit = Kit::start_with(Settings {
        idle_timeout_seconds: 3,
        // Not the header timeout: it is far longer.
        header_timeout_seconds: 600,
        ..Default::default()
    })
    .await;
    let metrics = addr_of(&kit.metrics_base);
    let mut idle = tokio::net::TcpStream::connect(&metrics).await.unwrap();
    let mut busy = tokio::net::TcpStream::connect(&metrics).await.unwrap();
    assert!(healthz_on(&mut idle).await.starts_with("HTTP/1.1 200"));
    let since = std::time::Instant::now();
    let closed = async {
        let rest = until_closed(&mut idle).await;
        (since.elapsed(), rest)
    };
    let keep_asking = async {
        let mut answers = 0;
        loop {
            assert!(healthz_on(&mut busy).await.starts_with("HTTP/1.1 200"));
            answers += 1;
            tokio::time::sleep(StdDuration::from_millis(250)).await;
            if since.elapsed() > StdDuration::from_secs(4) {
                return answers;
            }
        }
    };
    let ((after, rest), answers) = tokio::join!(closed, keep_asking);
    assert!(rest.is_empty(), "nothing more was sent on the idle one");
    assert!(
        after >= StdDuration::from_secs(3),
        "closed after {after:?}, before the idle timeout"
    );
    assert!(answers >= 2, "the busy connection was served meanwhile");
    // The busy one outlived the idle one's timeout and is still served.
    assert!(healthz_on(&mut busy).await.starts_with("HTTP/1.1 200"));
    let mut fresh = tokio::net::TcpStream::connect(&metrics).await.unwrap();
    assert!(healthz_on(&mut fresh).await.starts_with("HTTP/1.1 200"));
    kit.stop().await;
}
