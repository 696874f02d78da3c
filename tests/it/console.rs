//! The operator console's door: an operator certificate opens it and
//! nothing else; a customer's never opens it; a revoked operator is refused
//! on an open connection at once and from the next handshake; the
//! operators' lifecycle and its 操作履歴 rows.

use std::sync::Arc;

use reqwest::cookie::Jar;
use shomei_service::{
    NewOperator, OPERATOR_PASSWORD_STOPPED, OPERATOR_PASSWORD_WRONG, OperatorAdminError,
};

use crate::handshake::cache_hits;
use crate::issuance::{assert_refused, cert_login, client, enrolled, gets_in, identity};
use crate::testkit::{Kit, csrf_of, eventually, operator};

/// The console's message for a certificate that no longer opens it.
const NOT_IN_FORCE: &str = "このオペレーター証明書は使用できません。運用管理者に連絡してください。";

/// The operator's key and certificate from their PKCS#12, as a client
/// identity (what the operator imports into their browser).
fn operator_identity(op: &NewOperator) -> reqwest::Identity {
    let c = shomei_pki::pkcs12::read(&op.p12, &op.p12_password).expect("the PKCS#12 opens");
    let pem = shomei_pki::to_pem("CERTIFICATE", &c.cert)
        + &shomei_pki::to_pem("PRIVATE KEY", &c.key_pkcs8);
    reqwest::Identity::from_pem(pem.as_bytes()).unwrap()
}

/// GET OPR000, the console's door (the certificate says who; no session
/// yet).
async fn console(
    kit: &Kit,
    id: Option<reqwest::Identity>,
) -> Result<reqwest::Response, reqwest::Error> {
    client(kit, id)
        .get(format!("{}/opr000", kit.operator_base))
        .send()
        .await
}

/// An operator's browser: their certificate, cookies in `jar`, redirects
/// not followed (so each answer is seen as it is).
pub(crate) fn browser(kit: &Kit, op: &NewOperator, jar: &Arc<Jar>) -> reqwest::Client {
    let root = reqwest::Certificate::from_pem(kit.svc.ca().root_pem().as_bytes()).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([root])
        .identity(operator_identity(op))
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// An answer as seen: status, where it sends to, body.
pub(crate) struct Seen {
    pub status: u16,
    pub location: String,
    pub body: String,
}

async fn seen(r: reqwest::Response) -> Seen {
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    Seen {
        status,
        location,
        body: r.text().await.unwrap(),
    }
}

pub(crate) async fn get(kit: &Kit, b: &reqwest::Client, path: &str) -> Seen {
    seen(
        b.get(format!("{}{path}", kit.operator_base))
            .send()
            .await
            .unwrap(),
    )
    .await
}

pub(crate) async fn post(
    kit: &Kit,
    b: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> Seen {
    seen(
        b.post(format!("{}{path}", kit.operator_base))
            .form(form)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// A one-time password on a result screen (OPR052), set apart from the
/// other rows.
pub(crate) fn one_time_password(body: &str, label: &str) -> String {
    let row = &body[body
        .find(&format!("<th>{label}</th>"))
        .unwrap_or_else(|| panic!("{label} on the screen: {body}"))..];
    let at = row.find("<code class=\"secret\"").expect("shown set apart");
    let value = row[at..].split('>').nth(1).unwrap();
    value.split('<').next().unwrap().to_owned()
}

/// Fills in OPR000 with `password`.
async fn try_login(kit: &Kit, b: &reqwest::Client, password: &str) -> Seen {
    let page = get(kit, b, "/opr000").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = csrf_of(&page.body).expect("OPR000 carries its form's token");
    post(
        kit,
        b,
        "/opr000",
        &[("csrf", &csrf), ("password", password)],
    )
    .await
}

/// A console session of `op`: their browser, logged in, and the session's
/// CSRF token (from OPR001).
pub(crate) async fn logged_in(kit: &Kit, op: &NewOperator) -> (reqwest::Client, String) {
    let b = browser(kit, op, &Arc::new(Jar::default()));
    let r = try_login(kit, &b, &op.confirm_password).await;
    assert_eq!(
        (r.status, r.location.as_str()),
        (303, "/opr001"),
        "{}",
        r.body
    );
    let top = get(kit, &b, "/opr001").await;
    assert_eq!(top.status, 200, "{}", top.body);
    let csrf = csrf_of(&top.body).expect("the session's token is on every screen");
    (b, csrf)
}

#[tokio::test]
async fn an_operator_certificate_opens_the_console_and_a_customer_certificate_does_not() {
    let kit = Kit::start().await;
    let op = operator(&kit, "sato", "helpdesk,audit").await;
    assert_eq!(op.roles.codes(), "helpdesk,audit");
    assert_ne!(op.p12_password, op.confirm_password);

    // The operator's certificate opens OPR000, which says who they are.
    let r = console(&kit, Some(operator_identity(&op))).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body = r.text().await.unwrap();
    for s in [
        "OPR000",
        "sato（ヘルプデスク、監査）",
        &op.serial.to_string(),
    ] {
        assert!(body.contains(s), "{s}: {body}");
    }

    // A customer's certificate from the same CA: refused in the handshake,
    // while it still opens the customers' certificate listener (control).
    let (cert, key) = enrolled(&kit, "jirodt").await;
    gets_in(&kit, &cert, &key).await;
    assert_refused(
        &console(&kit, Some(identity(&cert, &key))).await,
        rustls::AlertDescription::UnsupportedCertificate,
        "a customer's certificate must not open the console",
    );
    assert_refused(
        &console(&kit, None).await,
        rustls::AlertDescription::CertificateRequired,
        "no certificate, no console",
    );

    // The operator's certificate never opens the customers' certificate
    // login, though it opens the console (above).
    assert_refused(
        &client(&kit, Some(operator_identity(&op)))
            .get(format!("{}/cert-login", kit.cert_base))
            .send()
            .await,
        rustls::AlertDescription::UnsupportedCertificate,
        "an operator's certificate must not open the portal's certificate login",
    );
    assert!(cert_login(&kit, Some((&cert, &key))).await.is_ok());

    assert_eq!(
        kit.bank_history().await,
        ["銀行:root/オペレーター登録/成功/sato"]
    );
    kit.stop().await;
}

/// A handshake whose chain validation came from the listener's cache still
/// meets the listener's profile: an operator's certificate, refused at the
/// certificate listener, is refused again from the cache right after a
/// customer's cached success there; a customer's, likewise at the console
/// right after an operator's cached success.
#[tokio::test]
async fn the_profile_is_checked_on_a_chain_cache_hit_on_both_listeners() {
    let kit = Kit::start().await;
    let op = operator(&kit, "sato", "helpdesk").await;
    let (cert, key) = enrolled(&kit, "jirodt").await;
    let at_cert_listener = || async {
        client(&kit, Some(operator_identity(&op)))
            .get(format!("{}/cert-login", kit.cert_base))
            .send()
            .await
    };

    // The certificate listener: the customer in full, then from the cache.
    gets_in(&kit, &cert, &key).await;
    let before = cache_hits(&kit).await;
    gets_in(&kit, &cert, &key).await;
    assert!(
        cache_hits(&kit).await > before,
        "the customer's chain came from the cache"
    );
    // The operator's certificate: refused when validated in full, and
    // again when its validation comes from the cache.
    for round in ["in full", "from the cache"] {
        let before = cache_hits(&kit).await;
        assert_refused(
            &at_cert_listener().await,
            rustls::AlertDescription::UnsupportedCertificate,
            &format!("an operator's certificate at the certificate listener ({round})"),
        );
        let hit = cache_hits(&kit).await > before;
        assert_eq!(hit, round == "from the cache", "{round}");
    }
    gets_in(&kit, &cert, &key).await;

    // The console: the operator in full, then from the cache; the
    // customer's certificate refused both ways.
    for _ in 0..2 {
        let r = console(&kit, Some(operator_identity(&op))).await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    for round in ["in full", "from the cache"] {
        let before = cache_hits(&kit).await;
        assert_refused(
            &console(&kit, Some(identity(&cert, &key))).await,
            rustls::AlertDescription::UnsupportedCertificate,
            &format!("a customer's certificate at the console ({round})"),
        );
        let hit = cache_hits(&kit).await > before;
        assert_eq!(hit, round == "from the cache", "{round}");
    }
    let r = console(&kit, Some(operator_identity(&op))).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    kit.stop().await;
}

#[tokio::test]
async fn a_revoked_operator_is_refused_on_an_open_connection_and_from_the_next_handshake() {
    let kit = Kit::start().await;
    let op = operator(&kit, "kimura", "helpdesk").await;
    let other = operator(&kit, "tanaka", "audit").await;
    let (open, _) = logged_in(&kit, &op).await;

    // `shomei operator revoke` runs in another process: the server learns
    // of it from the database.
    let cli = kit.operator().await;
    let revoked = cli.revoke_operator("kimura", "root").await.unwrap();
    assert_eq!(revoked, std::slice::from_ref(&op.serial));

    // The session opened before gets no further...
    let r = get(&kit, &open, "/opr001").await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains(NOT_IN_FORCE), "the refusal says why");
    // ...and, once the revocation log has reached this server, a new
    // handshake is refused as revoked.
    let svc = kit.svc.clone();
    let serial = op.serial.clone();
    assert!(eventually(|| svc.is_revoked(serial.as_bytes())).await);
    assert_refused(
        &console(&kit, Some(operator_identity(&op))).await,
        rustls::AlertDescription::CertificateRevoked,
        "a revoked operator certificate must not complete a handshake",
    );
    // The other operator still gets in (control).
    let r = console(&kit, Some(operator_identity(&other)))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // Refused twice, or for nobody; the list says who is revoked.
    assert!(matches!(
        cli.revoke_operator("kimura", "root").await,
        Err(OperatorAdminError::AlreadyRevoked(n)) if n == "kimura"
    ));
    assert!(matches!(
        cli.revoke_operator("nobody", "root").await,
        Err(OperatorAdminError::NoSuchOperator(n)) if n == "nobody"
    ));
    let list = cli.operator_list().await.unwrap();
    let states: Vec<(String, bool)> = list
        .iter()
        .map(|r| (r.operator.name.to_string(), r.operator.active))
        .collect();
    assert_eq!(
        states,
        [("kimura".to_string(), false), ("tanaka".to_string(), true)]
    );
    // A server started later loads it with the customers' revocations.
    assert!(kit.another_server().await.is_revoked(op.serial.as_bytes()));
    assert!(
        !kit.another_server()
            .await
            .is_revoked(other.serial.as_bytes())
    );
    assert_eq!(
        kit.bank_history().await,
        [
            "銀行:root/オペレーター登録/成功/kimura",
            "銀行:root/オペレーター登録/成功/tanaka",
            "銀行:kimura/コンソールログイン/成功/kimura",
            "銀行:root/オペレーター失効/成功/kimura",
        ]
    );
    kit.stop().await;
}

#[tokio::test]
async fn operator_names_and_roles_are_checked_and_names_are_unique() {
    let kit = Kit::start().await;
    operator(&kit, "sato", "helpdesk").await;
    assert!(matches!(
        kit.svc.add_operator("sato", "audit", "root").await,
        Err(OperatorAdminError::NameTaken(n)) if n == "sato"
    ));
    assert!(matches!(
        kit.svc.add_operator("佐藤", "audit", "root").await,
        Err(OperatorAdminError::BadName(_))
    ));
    assert!(matches!(
        kit.svc
            .add_operator("suzuki", "helpdesk,root", "root")
            .await,
        Err(OperatorAdminError::BadRoles(_))
    ));
    assert_eq!(kit.svc.operator_list().await.unwrap().len(), 1);
    kit.stop().await;
}

/// What OPR000 says after an idle session ended.
const IDLE_ENDED: &str = "一定時間操作がなかったため、ログアウトしました。";

#[tokio::test]
async fn a_console_session_opens_with_the_operators_password_is_bound_to_the_certificate_and_ends_when_idle()
 {
    let kit = Kit::start().await;
    let op = operator(&kit, "sato", "helpdesk").await;
    let other = operator(&kit, "tanaka", "audit").await;
    let jar = Arc::new(Jar::default());
    let b = browser(&kit, &op, &jar);

    // The certificate alone opens no screen but OPR000.
    let r = get(&kit, &b, "/opr001").await;
    assert_eq!((r.status, r.location.as_str()), (303, "/opr000?e=expired"));
    // A wrong password: refused with its message; the right one opens OPR001.
    let r = try_login(&kit, &b, "wrong-password-1").await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains(OPERATOR_PASSWORD_WRONG), "{}", r.body);
    let r = try_login(&kit, &b, &op.confirm_password).await;
    assert_eq!((r.status, r.location.as_str()), (303, "/opr001"));
    let top = get(&kit, &b, "/opr001").await;
    assert_eq!(top.status, 200);
    assert!(top.body.contains("OPR001"));
    let csrf = csrf_of(&top.body).unwrap();

    // A login form's token is checked too: none, and OPR000 starts over.
    let r = post(&kit, &b, "/opr000", &[("password", &op.confirm_password)]).await;
    assert_eq!((r.status, r.location.as_str()), (303, "/opr000?e=form"));

    // A POST without the session's token is refused with its message; with
    // it, the same POST goes through (logout, below).
    let r = post(&kit, &b, "/logout", &[("csrf", "0123")]).await;
    assert_eq!(r.status, 403);
    assert!(
        r.body.contains(shomei_core::Problem::BadForm.message_ja()),
        "{}",
        r.body
    );

    // Bound to the certificate: the same cookies with another operator's
    // certificate open nothing, while they still do with sato's.
    let theirs = browser(&kit, &other, &jar);
    let r = get(&kit, &theirs, "/opr001").await;
    assert_eq!((r.status, r.location.as_str()), (303, "/opr000?e=expired"));
    assert_eq!(get(&kit, &b, "/opr001").await.status, 200);

    // The idle clock: each request moves it on, so two waits of nearly the
    // idle time in a row keep the session...
    let idle = kit.svc.settings().operator_session_idle();
    let nearly = idle - ::time::Duration::seconds(30);
    kit.clock.advance(nearly);
    assert_eq!(get(&kit, &b, "/opr001").await.status, 200);
    kit.clock.advance(nearly);
    assert_eq!(get(&kit, &b, "/opr001").await.status, 200);
    // ...and one wait past it ends the session.
    kit.clock.advance(idle + ::time::Duration::seconds(30));
    let r = get(&kit, &b, "/opr001").await;
    assert_eq!((r.status, r.location.as_str()), (303, "/opr000?e=expired"));
    let r = get(&kit, &b, &r.location).await;
    assert!(r.body.contains(IDLE_ENDED), "{}", r.body);

    // Logged in again, logging out with the token ends the session.
    let r = try_login(&kit, &b, &op.confirm_password).await;
    assert_eq!(r.location, "/opr001");
    let csrf2 = csrf_of(&get(&kit, &b, "/opr001").await.body).unwrap();
    assert_ne!(csrf, csrf2, "a new session, a new token");
    let r = post(&kit, &b, "/logout", &[("csrf", &csrf2)]).await;
    assert_eq!((r.status, r.location.as_str()), (303, "/opr000?e=logout"));
    let r = get(&kit, &b, "/opr001").await;
    assert_eq!((r.status, r.location.as_str()), (303, "/opr000?e=expired"));

    assert_eq!(
        kit.bank_history().await[2..],
        [
            "銀行:sato/コンソールログイン/失敗/sato",
            "銀行:sato/コンソールログイン/成功/sato",
            "銀行:sato/コンソールログイン/成功/sato",
        ]
    );
    kit.stop().await;
}

#[tokio::test]
async fn wrong_operator_passwords_in_a_row_stop_the_password_until_unlocked() {
    let kit = Kit::start().await;
    let op = operator(&kit, "sato", "helpdesk").await;
    let b = browser(&kit, &op, &Arc::new(Jar::default()));
    let limit = kit.svc.settings().confirm_stop_after;
    for i in 1..=limit {
        let r = try_login(&kit, &b, "wrong-password-1").await;
        let want = if i < limit {
            OPERATOR_PASSWORD_WRONG
        } else {
            OPERATOR_PASSWORD_STOPPED
        };
        assert!(r.body.contains(want), "attempt {i}: {}", r.body);
    }
    // Stopped: the right password does not open a session now...
    let r = try_login(&kit, &b, &op.confirm_password).await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains(OPERATOR_PASSWORD_STOPPED), "{}", r.body);
    // ...until `shomei operator unlock` lifts it.
    kit.operator()
        .await
        .unlock_operator("sato", "root")
        .await
        .unwrap();
    let r = try_login(&kit, &b, &op.confirm_password).await;
    assert_eq!((r.status, r.location.as_str()), (303, "/opr001"));
    let rows = kit.bank_history().await;
    assert_eq!(
        rows[rows.len() - 4..],
        [
            "銀行:sato/コンソールログイン/失敗/sato",
            "銀行:sato/コンソールログイン/失敗/sato",
            "銀行:root/オペレーターパスワード停止解除/成功/sato",
            "銀行:sato/コンソールログイン/成功/sato",
        ]
    );
    kit.stop().await;
}
