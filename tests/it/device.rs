//! Returning customers' device cookies: a browser that logged in gets one;
//! a login bringing it for the same login ID takes a reserved hashing place
//! and is not counted against its address, so a login flood does not keep it
//! out. A forged, expired or other user's cookie earns nothing, a stolen one
//! never logs in without the password, and a closed password costs the same
//! dummy hash with it.

use shomei_service::Settings;
use tokio::task::JoinSet;

use crate::testkit::{Browser, Kit, LOGIN_PW, StoreOf};

const THROTTLED: &str = "接続元からのログインの失敗が続いた";
const LOGIN_FAILED: &str = "ログインできませんでした。ログインIDとログインパスワードをご確認ください。連続して誤るとログインパスワードの利用が停止されます。停止の解除はマスターユーザまたは管理者ユーザにご依頼ください。";

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

async fn accepted(kit: &Kit) -> f64 {
    metric(kit, "shomei_device_cookies_total{result=\"accepted\"}").await
}

async fn refused(kit: &Kit) -> f64 {
    metric(kit, "shomei_device_cookies_total{result=\"refused\"}").await
}

/// The device cookie's value in a browser's jar, if it has one.
fn device_cookie(kit: &Kit, b: &Browser) -> Option<String> {
    use reqwest::cookie::CookieStore;
    let url: reqwest::Url = kit.base.parse().unwrap();
    let all = b.jar.cookies(&url)?;
    all.to_str()
        .unwrap()
        .split("; ")
        .find_map(|kv| kv.strip_prefix("__Host-shomei-device="))
        .map(str::to_owned)
}

/// A new browser (no session) holding this device cookie value.
fn browser_with(kit: &Kit, value: &str) -> Browser {
    let b = kit.browser();
    let url: reqwest::Url = kit.base.parse().unwrap();
    b.jar.add_cookie_str(
        &format!("__Host-shomei-device={value}; Path=/; Secure; HttpOnly; SameSite=Strict"),
        &url,
    );
    b
}

/// The device cookie a browser gets when `login_id` logs in.
async fn cookie_of(kit: &Kit, login_id: &str) -> String {
    let b = kit.browser();
    let p = b.login(login_id, LOGIN_PW).await;
    assert_eq!(p.path(), "/top", "{login_id} logs in");
    device_cookie(kit, &b).expect("a device cookie after a successful login")
}

/// Fails logins from 127.0.0.1 until the address is refused (at most
/// `limit` failures: those already counted in the window make it sooner).
async fn fill_address(kit: &Kit, limit: u32) {
    for i in 0..limit {
        let p = kit
            .browser()
            .login(&format!("spray{i:03}"), "Spray#2026")
            .await;
        if p.error().is_some_and(|e| e.contains(THROTTLED)) {
            break;
        }
        assert_eq!(p.error().as_deref(), Some(LOGIN_FAILED), "spray {i}");
    }
    let p = kit.browser().login("hottojr01", LOGIN_PW).await;
    assert!(
        p.error().is_some_and(|e| e.contains(THROTTLED)),
        "the address is refused now, a right password included: {:?}",
        p.error()
    );
}

#[tokio::test]
async fn a_returning_customer_is_let_in_past_the_address_limit_and_no_other_cookie_is() {
    let kit = Kit::start_with(Settings {
        address_failure_limit: 3,
        device_cookie_days: 2,
        ..Default::default()
    })
    .await;
    // A failed login earns no cookie; a successful one does.
    let b = kit.browser();
    b.login("hanakodt", "Wrong#Guess1").await;
    assert_eq!(device_cookie(&kit, &b), None);
    let hanako = cookie_of(&kit, "hanakodt").await;
    let taro = cookie_of(&kit, "tarodt").await;
    fill_address(&kit, 3).await;

    // The control: hanakodt's own cookie gets her in from the refused address.
    let (a0, r0) = (accepted(&kit).await, refused(&kit).await);
    let p = browser_with(&kit, &hanako)
        .login("hanakodt", LOGIN_PW)
        .await;
    assert_eq!(p.path(), "/top", "{:?}", p.error());
    assert_eq!(accepted(&kit).await, a0 + 1.0);

    // Someone else's cookie (tarodt's, for hanakodt) and a forged one earn
    // nothing: refused with the address, counted as refused cookies.
    let mut forged = hanako.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'0' { b'1' } else { b'0' };
    let forged = String::from_utf8(forged).unwrap();
    for (what, value) in [("tarodt's", &taro), ("forged", &forged)] {
        let p = browser_with(&kit, value).login("hanakodt", LOGIN_PW).await;
        assert!(
            p.error().is_some_and(|e| e.contains(THROTTLED)),
            "{what} cookie: {:?}",
            p.error()
        );
    }
    assert_eq!(refused(&kit).await, r0 + 2.0);

    // A stolen cookie alone never logs in: the password is checked, and the
    // failure counts toward her lockout as any other.
    let before = kit.counters("hanakodt").await.login_failures;
    let p = browser_with(&kit, &hanako)
        .login("hanakodt", "Wrong#Guess1")
        .await;
    assert_eq!(p.error().as_deref(), Some(LOGIN_FAILED));
    assert_eq!(kit.counters("hanakodt").await.login_failures, before + 1);

    // Expired: two days and a second later the cookie earns nothing (the
    // address window is over by then, so the address is filled again).
    kit.clock
        .advance(time::Duration::days(2) + time::Duration::seconds(1));
    fill_address(&kit, 3).await;
    let r1 = refused(&kit).await;
    let p = browser_with(&kit, &hanako)
        .login("hanakodt", LOGIN_PW)
        .await;
    assert!(
        p.error().is_some_and(|e| e.contains(THROTTLED)),
        "expired: {:?}",
        p.error()
    );
    assert_eq!(refused(&kit).await, r1 + 1.0);
    kit.stop().await;
}

#[tokio::test]
async fn a_locked_id_with_its_device_cookie_costs_the_same_dummy_hash() {
    let kit = Kit::start_with(Settings {
        address_failure_limit: 0,
        ..Default::default()
    })
    .await;
    let hanako = cookie_of(&kit, "hanakodt").await;
    for _ in 0..3 {
        browser_with(&kit, &hanako)
            .login("hanakodt", "Wrong#Guess1")
            .await;
    }
    assert!(kit.counters("hanakodt").await.login_locked_until.is_some());
    let hashes = metric(&kit, "shomei_password_hashes_total").await;
    let dummies = metric(&kit, "shomei_password_dummy_hashes_total").await;
    // The right password with her cookie: refused as locked, unchecked, at
    // the cost of one hash (the dummy), as without the cookie.
    let p = browser_with(&kit, &hanako)
        .login("hanakodt", LOGIN_PW)
        .await;
    assert_eq!(p.error().as_deref(), Some(LOGIN_FAILED));
    assert_eq!(
        metric(&kit, "shomei_password_hashes_total").await - hashes,
        1.0
    );
    assert_eq!(
        metric(&kit, "shomei_password_dummy_hashes_total").await - dummies,
        1.0
    );
    // The control: another user's right password with their own cookie.
    let taro = cookie_of(&kit, "tarodt").await;
    let p = browser_with(&kit, &taro).login("tarodt", LOGIN_PW).await;
    assert_eq!(p.path(), "/top");
    kit.stop().await;
}

#[tokio::test]
async fn while_the_hashing_places_are_full_a_returning_customer_gets_the_reserved_one() {
    let kit = Kit::start_with(Settings {
        hash_workers: 1,
        hash_queue: 1,
        hash_reserved_places: 1,
        address_failure_limit: 0,
        ..Default::default()
    })
    .await;
    assert_eq!(
        metric(&kit, "shomei_password_hashing_reserved_places").await,
        1.0
    );
    let hanako = cookie_of(&kit, "hanakodt").await;
    // Rounds of 15 logins without a cookie and one with hanakodt's, at once
    // on two places and the reserved one, until the others have been busy:
    // the returning customer never is.
    let mut others_busy = 0;
    for round in 0..20 {
        if others_busy > 0 {
            break;
        }
        let mut browsers = Vec::new();
        for _ in 0..15 {
            let b = kit.browser();
            b.get("/login").await;
            browsers.push((false, b));
        }
        let mine = browser_with(&kit, &hanako);
        mine.get("/login").await;
        browsers.push((true, mine));
        let mut logins = JoinSet::new();
        for (returning, b) in browsers {
            logins.spawn(async move {
                let who = if returning { "hanakodt" } else { "tarodt" };
                (
                    returning,
                    b.post("/login", &[("login_id", who), ("password", LOGIN_PW)])
                        .await,
                )
            });
        }
        while let Some(r) = logins.join_next().await {
            let (returning, p) = r.unwrap();
            if returning {
                assert_eq!(p.path(), "/top", "round {round}: {} {}", p.status, p.body);
            } else if p.status == 503 {
                assert!(p.has("ただいま混雑しています。しばらくしてから再度お試しください。"));
                others_busy += 1;
            } else {
                assert_eq!(p.path(), "/top", "round {round}");
            }
        }
    }
    assert!(others_busy >= 1, "two places for fifteen: some were busy");
    kit.stop().await;
}

/// With SQLite's writer held and three write transactions waiting, a login
/// from `b` as `who`; returns how many writer turns went ahead meanwhile.
async fn login_behind_waiting_writes(kit: &Kit, b: Browser, who: &'static str) -> f64 {
    let store = kit.svc.store().clone();
    let before = metric(kit, "shomei_db_writer_turns_ahead_total").await;
    let held = store.begin().await.unwrap();
    let mut others = JoinSet::new();
    for _ in 0..3 {
        let store = store.clone();
        others.spawn(async move { store.begin().await.unwrap().commit().await.unwrap() });
    }
    crate::testkit::wait_for("three writes waiting", async || {
        metric(kit, "shomei_db_writer_waiting").await == 3.0
    })
    .await;
    let login = tokio::spawn(async move {
        b.post("/login", &[("login_id", who), ("password", LOGIN_PW)])
            .await
    });
    crate::testkit::wait_for("the login's claim waiting too", async || {
        metric(kit, "shomei_db_writer_waiting").await == 4.0
    })
    .await;
    held.commit().await.unwrap();
    let p = login.await.unwrap();
    assert_eq!(p.path(), "/top", "{who} logs in: {}", p.body);
    while others.join_next().await.is_some() {}
    metric(kit, "shomei_db_writer_turns_ahead_total").await - before
}

#[tokio::test]
async fn a_returning_customers_login_takes_the_writers_next_turn_ahead_of_waiting_writes() {
    let kit = Kit::start().await;
    if kit.svc.store().backend_name() != "SQLite" {
        // PostgreSQL: a pool of connections and row locks, no one writer.
        return;
    }
    let hanako = cookie_of(&kit, "hanakodt").await;
    // The control: a login without a cookie waits its turn behind the three.
    let plain = kit.browser();
    plain.get("/login").await;
    assert_eq!(
        login_behind_waiting_writes(&kit, plain, "tarodt").await,
        0.0,
        "no turn ahead without a device cookie"
    );
    // With hanakodt's cookie, its claim goes before the three waiting.
    let mine = browser_with(&kit, &hanako);
    mine.get("/login").await;
    assert!(
        login_behind_waiting_writes(&kit, mine, "hanakodt").await >= 1.0,
        "the returning customer's transaction went ahead"
    );
    kit.stop().await;
}
