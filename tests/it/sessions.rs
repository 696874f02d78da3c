//! Server-side sessions: cookie attributes, a new id at login, the CSRF token
//! on every POST, ログアウト and the idle timeout.

use time::Duration;

use crate::testkit::{CONFIRM_PW, Kit, LOGIN_PW};

fn session_cookie(p: &crate::testkit::Page) -> Option<String> {
    p.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("__Host-shomei="))
        .map(str::to_owned)
}

/// The login page's form cookie, as its Set-Cookie header gives it.
fn form_cookie(login_page: &crate::testkit::Page) -> String {
    login_page
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("__Host-shomei-form="))
        .expect("the login page sets its form cookie")
        .to_owned()
}

fn cookie_id(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("__Host-shomei=")
        .to_string()
}

#[tokio::test]
async fn the_session_cookie_is_secure_httponly_strict_and_renewed_at_login() {
    let kit = Kit::start().await;
    let b = kit.browser();
    let login_page = b.get("/login").await;
    // The login page keeps no session: its CSRF token is bound to a signed
    // form cookie instead, so anonymous visitors hold no server state.
    assert_eq!(session_cookie(&login_page), None);
    let form = form_cookie(&login_page);
    for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(form.contains(attr), "{attr} in {form}");
    }
    // A session id planted before login (fixation) is not the one after.
    let planted = format!("__Host-shomei={}", "ab".repeat(32));
    let before = planted.clone();
    // Log in without following the redirect, to see the new cookie.
    let client = no_redirects(&kit);
    let csrf = {
        let i = login_page.body.find("name=\"csrf\" value=\"").unwrap() + 19;
        login_page.body[i..i + 64].to_string()
    };
    let r = client
        .post(format!("{}/login", kit.base))
        .header(
            "cookie",
            format!("{planted}; {}", form.split(';').next().unwrap()),
        )
        .form(&[
            ("csrf", csrf.as_str()),
            ("login_id", "hanakodt"),
            ("password", LOGIN_PW),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let after = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("__Host-shomei="))
        .expect("login sets a new session cookie")
        .to_owned();
    assert_ne!(
        cookie_id(&before),
        cookie_id(&after),
        "a new session id at login"
    );
    // The pre-login id is dead: it does not carry the login.
    let r = client
        .get(format!("{}/top", kit.base))
        .header("cookie", before.split(';').next().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("/login")
    );
    let r = client
        .get(format!("{}/top", kit.base))
        .header("cookie", after.split(';').next().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    kit.stop().await;
}

#[tokio::test]
async fn a_post_without_the_right_csrf_token_is_refused_and_changes_nothing() {
    let kit = Kit::start().await;
    let b = kit.browser();
    let confirm = b.to_brsk019(&kit, "hanakodt", "tarodt").await;
    let token = crate::revocation::token(&confirm.body);
    let execute = [
        ("action", "execute"),
        ("token", token.as_str()),
        ("confirm_password", CONFIRM_PW),
    ];
    let bad_form = shomei_core::Problem::BadForm.message_ja();
    let p = b.post_raw("/brsk019", &execute).await;
    p.assert_refused(bad_form, "no CSRF token");
    let mut forged = vec![("csrf", "0".repeat(64))];
    forged.extend(execute.iter().map(|(k, v)| (*k, v.to_string())));
    let forged: Vec<(&str, &str)> = forged.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let p = b.post_raw("/brsk019", &forged).await;
    p.assert_refused(bad_form, "a wrong CSRF token");
    assert!(!kit.revoked("tarodt").await, "nothing was revoked");
    // The page with the right token still works afterwards.
    b.get("/brsk019").await;
    let p = b.post("/brsk019", &execute).await;
    assert_eq!(p.path(), "/brsk020");
    assert!(kit.revoked("tarodt").await);
    kit.stop().await;
}

#[tokio::test]
async fn oversized_and_non_utf8_forms_get_a_clear_error() {
    let kit = Kit::start().await;
    let b = kit.browser();
    b.login("hanakodt", LOGIN_PW).await;
    b.get("/brsk018").await;
    let big = "x".repeat(100 * 1024);
    let p = b.post("/brsk018", &[("user", &big)]).await;
    assert_eq!(p.status, 413);
    assert!(p.has("もう一度操作してください"));
    // Bytes that are not UTF-8, percent-encoded, in the login ID.
    let login = kit.browser();
    let page = login.get("/login").await;
    let i = page.body.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = &page.body[i..i + 64];
    let r = login
        .client
        .post(format!("{}/login", kit.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}&login_id=%FF%FEabc&password=%C3%28"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body = r.text().await.unwrap();
    assert!(body.contains("ログインできませんでした。"));
    kit.stop().await;
}

#[tokio::test]
async fn logout_ends_the_session_and_is_recorded() {
    let kit = Kit::start().await;
    let b = kit.browser();
    b.login("hanakodt", LOGIN_PW).await;
    let sessions = kit.sessions().await;
    let top = b.get("/top").await;
    assert!(top.has("ログアウト"));
    // The cookie and the CSRF token of the logged-in session, as an
    // attacker who copied them would replay them.
    use reqwest::cookie::CookieStore;
    let cookie = b
        .jar
        .cookies(&kit.base.parse().unwrap())
        .expect("a session cookie");
    let csrf = crate::testkit::csrf_of(&top.body).unwrap();
    let replay = |path: &str| {
        let root = reqwest::Certificate::from_pem(kit.svc.ca().root_pem().as_bytes()).unwrap();
        let c = reqwest::Client::builder()
            .tls_certs_only([root])
            .build()
            .unwrap();
        (c, format!("{}{path}", kit.base), cookie.clone())
    };
    // The control: before ログアウト the copied cookie opens the screens.
    let (c, url, cookie_v) = replay("/brsk018");
    let r = c.get(&url).header("cookie", cookie_v).send().await.unwrap();
    assert_eq!(r.url().path(), "/brsk018");
    let p = b.post("/logout", &[]).await;
    assert_eq!(p.path(), "/login");
    assert!(p.has("ログアウトしました。"));
    assert_eq!(
        kit.sessions().await,
        sessions - 1,
        "the logged-in session is gone"
    );
    let p = b.get("/brsk018").await;
    assert_eq!(
        p.path(),
        "/login",
        "after ログアウト the screens need a new login"
    );
    // The old cookie replayed: no screen, no change.
    let (c, url, cookie_v) = replay("/brsk018");
    let r = c.get(&url).header("cookie", cookie_v).send().await.unwrap();
    assert_eq!(r.url().path(), "/login", "the old cookie after ログアウト");
    let (c, url, cookie_v) = replay("/brsk012");
    let r = c
        .post(&url)
        .header("cookie", cookie_v)
        .form(&[
            ("csrf", csrf.as_str()),
            ("login_id", "replay01"),
            ("name", "再送 一郎"),
            ("role", "general"),
            ("email", "r@example.jp"),
            ("login_password", "Shoki#Pass1"),
            ("confirm_password_new", "Shoki#Kaku2"),
            ("confirm_password", CONFIRM_PW),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.url().path(),
        "/login",
        "a form posted with the old cookie"
    );
    assert!(!kit.has_user("replay01").await);
    let history = kit.history().await;
    assert!(
        history
            .iter()
            .any(|h| h.starts_with("hanakodt/ログアウト/成功")),
        "{history:?}"
    );
    kit.stop().await;
}

#[tokio::test]
async fn an_idle_session_times_out_and_the_timeout_is_recorded() {
    let kit = Kit::start().await;
    let b = kit.browser();
    b.to_brsk019(&kit, "hanakodt", "tarodt").await;
    kit.clock.advance(Duration::minutes(9));
    assert_eq!(
        b.get("/brsk019").await.path(),
        "/brsk019",
        "9 minutes idle is fine"
    );
    kit.clock.advance(Duration::minutes(11));
    let p = b.get("/brsk019").await;
    assert_eq!(p.path(), "/login");
    assert!(p.has("一定時間操作がなかったため、ログアウトしました。"));
    // A form left open past the timeout cannot revoke.
    let p = b
        .post(
            "/brsk019",
            &[
                ("action", "execute"),
                ("token", "x"),
                ("confirm_password", CONFIRM_PW),
            ],
        )
        .await;
    assert_eq!(p.path(), "/login");
    assert!(!kit.revoked("tarodt").await);
    let history = kit.history().await;
    assert!(
        history
            .iter()
            .any(|h| h.starts_with("hanakodt/セッションタイムアウト/成功")),
        "{history:?}"
    );
    kit.stop().await;
}

#[tokio::test]
async fn the_idle_timeout_is_configurable() {
    let settings = shomei_service::Settings {
        session_idle_minutes: 2,
        ..Default::default()
    };
    let kit = Kit::start_with(settings).await;
    let b = kit.browser();
    assert_eq!(b.login("hanakodt", LOGIN_PW).await.path(), "/top");
    // Alive while idle less than the setting (each request starts the
    // idle time again)...
    kit.clock.advance(Duration::seconds(110));
    assert_eq!(b.get("/top").await.path(), "/top", "110 s idle of 2 min");
    kit.clock.advance(Duration::seconds(110));
    assert_eq!(b.get("/top").await.path(), "/top", "again 110 s idle");
    // ...and ended past it, though the default of 10 minutes is far off.
    kit.clock.advance(Duration::minutes(3));
    let p = b.get("/top").await;
    assert_eq!(p.path(), "/login");
    assert!(p.has("一定時間操作がなかったため、ログアウトしました。"));
    kit.stop().await;
}

#[tokio::test]
async fn pages_carry_security_headers() {
    let kit = Kit::start().await;
    let b = kit.browser();
    let login = b.get("/login").await;
    b.login("ichirodt", LOGIN_PW).await;
    let top = b.get("/top").await;
    let refused = b.get("/brsk011").await;
    assert_eq!(refused.status, 403);
    for p in [&login, &top, &refused] {
        let h = |name: &str| {
            p.headers
                .get(name)
                .unwrap_or_else(|| panic!("{name} on {}", p.url))
                .to_str()
                .unwrap()
                .to_string()
        };
        let mut csp: Vec<String> = h("content-security-policy")
            .split(';')
            .map(|d| d.trim().to_string())
            .collect();
        csp.sort();
        assert_eq!(
            csp,
            [
                "base-uri 'none'",
                "default-src 'self'",
                "form-action 'self'",
                "frame-ancestors 'none'",
                "img-src 'self' data:",
                "script-src 'self'",
                "style-src 'self'",
            ],
            "no inline script, no frames, forms only to us: {}",
            p.url
        );
        // A year, the least browsers' preload lists accept.
        let hsts = h("strict-transport-security");
        let max_age: u64 = hsts
            .strip_prefix("max-age=")
            .and_then(|v| v.split(';').next())
            .unwrap()
            .parse()
            .unwrap();
        assert!(max_age >= 31_536_000, "{hsts}");
        assert_eq!(h("x-frame-options"), "DENY");
        assert_eq!(h("x-content-type-options"), "nosniff");
        assert_eq!(h("referrer-policy"), "no-referrer");
        assert_eq!(h("cache-control"), "no-store");
    }
    kit.stop().await;
}

/// Sessions live in the database: a second server on it serves the same
/// session (no stickiness), a BRSK019 started on one server completes on
/// the other, and a ログアウト on one is a ログアウト on both.
#[tokio::test]
async fn any_server_on_the_database_serves_any_session() {
    let kit = Kit::start().await;
    let b_svc = std::sync::Arc::new(kit.another_server().await);
    let listener = shomei_web::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let b_addr = listener.local_addr().unwrap();
    let b = shomei_web::start_on(
        b_svc,
        listener,
        shomei_web::ServerOptions {
            listen: b_addr,
            extra_names: vec![],
            cert_public_url: None,
        },
    )
    .await
    .unwrap();
    let b_base = format!("https://localhost:{}", b_addr.port());

    let mut browser = kit.browser();
    let confirm = browser.to_brsk019(&kit, "hanakodt", "tarodt").await;
    assert!(confirm.has("BRSK019"), "pending on A");
    // The same browser now reaches server B (a load balancer's choice).
    browser.base = b_base.clone();
    let on_b = browser.get("/brsk019").await;
    assert!(on_b.has("BRSK019") && on_b.has("tarodt"), "{}", on_b.body);
    let done = browser.execute(CONFIRM_PW).await;
    assert!(done.has("BRSK020"), "completed on B: {}", done.body);
    assert!(kit.revoked("tarodt").await);
    // ログアウト on B ends the session on A too.
    browser.post("/logout", &[]).await;
    browser.base = kit.base.clone();
    assert_eq!(browser.get("/top").await.path(), "/login");
    b.shutdown().await;
    kit.stop().await;
}

/// A client of this kit's portal that shows redirects instead of following
/// them.
fn no_redirects(kit: &Kit) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([
            reqwest::Certificate::from_pem(kit.svc.ca().root_pem().as_bytes()).unwrap(),
        ])
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The login form's token is signed with a key of the database's own: a
/// form (cookie and token) made by the servers of another database does not
/// log in here. The control: on its own database the same form logs in.
#[tokio::test]
async fn a_login_form_signed_on_another_database_is_refused() {
    let a = Kit::start().await;
    let b = Kit::start().await;
    let page = a.browser().get("/login").await;
    let form = form_cookie(&page).split(';').next().unwrap().to_owned();
    let csrf = crate::testkit::csrf_of(&page.body).unwrap();
    for (kit, expected) in [(&b, "/login?e=form"), (&a, "/top")] {
        let r = no_redirects(kit)
            .post(format!("{}/login", kit.base))
            .header("cookie", &form)
            .form(&[
                ("csrf", csrf.as_str()),
                ("login_id", "hanakodt"),
                ("password", LOGIN_PW),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 303);
        assert_eq!(
            location(&r),
            expected,
            "the form of database A on {}",
            kit.base
        );
    }
    a.stop().await;
    b.stop().await;
}

/// The `shomei_sessions` gauge follows the logged-in sessions up and down.
#[tokio::test]
async fn the_sessions_gauge_counts_the_open_sessions() {
    use crate::metrics::{sample, scrape};
    let kit = Kit::start().await;
    let gauge = async || sample(&scrape(&kit).await, "shomei_sessions");
    assert_eq!(gauge().await, 0.0);
    let hanako = kit.browser();
    assert_eq!(hanako.login("hanakodt", LOGIN_PW).await.path(), "/top");
    assert_eq!(gauge().await, 1.0);
    let taro = kit.browser();
    assert_eq!(taro.login("tarodt", LOGIN_PW).await.path(), "/top");
    assert_eq!(gauge().await, 2.0);
    assert_eq!(hanako.post("/logout", &[]).await.path(), "/login");
    assert_eq!(gauge().await, 1.0);
    kit.stop().await;
}

/// The idle clock is written when a request comes 15 seconds or more after
/// the last write, not on every request.
#[tokio::test]
async fn the_idle_clock_is_written_at_most_every_15_seconds() {
    let kit = Kit::start().await;
    let user = shomei_core::UserId(kit.user_id("hanakodt").await);
    let sessions = kit.svc.sessions();
    let t0 = kit.svc.now();
    let (id, data) = sessions.create(user, t0, None, false).await.unwrap();
    let seen = async || {
        sessions
            .get(&id)
            .await
            .unwrap()
            .expect("the session is open")
            .last_seen
            .unix_timestamp()
    };
    assert_eq!(seen().await, t0.unix_timestamp());
    sessions
        .touch(&id, data.last_seen, t0 + Duration::seconds(14))
        .await
        .unwrap();
    assert_eq!(seen().await, t0.unix_timestamp(), "14 s later: not written");
    let t15 = t0 + Duration::seconds(15);
    sessions.touch(&id, data.last_seen, t15).await.unwrap();
    assert_eq!(seen().await, t15.unix_timestamp(), "15 s later: written");
    kit.stop().await;
}

/// The upkeep loop ends the sessions idle past the setting, records a
/// セッションタイムアウト for each, and leaves the sessions in use alone.
#[tokio::test]
async fn the_upkeep_ends_idle_sessions_records_each_and_leaves_the_rest() {
    let kit = Kit::start_with_upkeep(shomei_service::Settings {
        upkeep_interval_seconds: 1,
        session_idle_minutes: 2,
        ..Default::default()
    })
    .await;
    let hanako = kit.browser();
    assert_eq!(hanako.login("hanakodt", LOGIN_PW).await.path(), "/top");
    let taro = kit.browser();
    assert_eq!(taro.login("tarodt", LOGIN_PW).await.path(), "/top");
    kit.clock.advance(Duration::seconds(110));
    assert_eq!(taro.get("/top").await.path(), "/top", "taro is at work");
    kit.clock.advance(Duration::seconds(20));
    // hanako is 130 s idle of 2 min, taro 20 s: the next rounds end hanako's.
    let timeout = |who: &str| format!("{who}/セッションタイムアウト/成功");
    crate::testkit::wait_for(
        "hanakodt's セッションタイムアウト recorded",
        async || {
            kit.history()
                .await
                .iter()
                .any(|h| h.starts_with(&timeout("hanakodt")))
        },
    )
    .await;
    assert_eq!(kit.sessions().await, 1, "taro's session is left");
    assert_eq!(taro.get("/top").await.path(), "/top");
    let history = kit.history().await;
    assert!(
        !history.iter().any(|h| h.starts_with(&timeout("tarodt"))),
        "{history:?}"
    );
    let p = hanako.get("/top").await;
    assert_eq!(p.path(), "/login");
    kit.stop().await;
}
