//! /healthz and /readyz for load balancers, and failing closed: a server
//! that cannot read its revocation log (here: the table taken away under
//! it) stops vouching for certificates within the bound — /readyz 503,
//! OCSP tryLater, certificate-method login and renewal refused — and serves
//! again by itself once the log is back.

use std::time::Duration as StdDuration;

use shomei_pki::ocsp::IssuerHashes;
use shomei_service::Settings;

use crate::issuance::{client, enrolled, identity, key_and_csr};
use crate::testkit::{Kit, LOGIN_PW};

async fn get(kit: &Kit, url: String) -> (u16, String) {
    let r = client(kit, None).get(url).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Runs one statement on the kit's database (either backend) from outside
/// the server.
pub async fn sql(kit: &Kit, statement: &str) {
    use sqlx::Connection as _;
    let statement = sqlx::AssertSqlSafe(statement.to_owned());
    match &kit.svc.settings().database_url {
        Some(url) => {
            let mut c = sqlx::PgConnection::connect(url.with_password())
                .await
                .unwrap();
            sqlx::raw_sql(statement).execute(&mut c).await.unwrap();
        }
        None => {
            let url = format!("sqlite:{}", kit.dir.path().join("shomei.db").display());
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::raw_sql(statement).execute(&mut c).await.unwrap();
        }
    }
}

/// The OCSPResponseStatus of the service's answer for `serial`.
async fn ocsp_status(kit: &Kit, serial: &[u8]) -> u8 {
    let issuer = IssuerHashes::of(kit.svc.ca().issuing_der()).unwrap();
    let answer = kit.svc.ocsp(&issuer.request(serial)).await;
    // OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, … }
    let i = if answer[1] & 0x80 != 0 {
        2 + (answer[1] & 0x7f) as usize
    } else {
        2
    };
    assert_eq!(answer[i], 0x0a, "an ENUMERATED status");
    answer[i + 2]
}

/// Polls `f` every 100 ms until it holds, for at most a minute.
async fn eventually<F: std::future::Future<Output = bool>>(mut f: impl FnMut() -> F, what: &str) {
    for _ in 0..600 {
        if f().await {
            return;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    panic!("never: {what}");
}

/// A certificate-method login in a fresh browser: `None` when it logs in,
/// else the page's message.
async fn cert_login_error(kit: &Kit, cert: &[u8], key: &rcgen::KeyPair) -> Option<String> {
    let user = client(kit, Some(identity(cert, key)));
    let page = user
        .get(format!("{}/cert-login", kit.cert_base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = crate::testkit::csrf_of(&page).unwrap();
    let r = user
        .post(format!("{}/cert-login", kit.cert_base))
        .form(&[("csrf", csrf.as_str()), ("password", LOGIN_PW)])
        .send()
        .await
        .unwrap();
    let path = r.url().path().to_owned();
    let body = r.text().await.unwrap();
    if path == "/top" {
        return None;
    }
    let start = body.find("role=\"alert\">")? + 13;
    Some(body[start..start + body[start..].find('<')?].to_owned())
}

#[tokio::test]
async fn a_server_that_cannot_read_its_revocation_log_fails_closed_and_recovers() {
    let kit = Kit::start_with(Settings {
        revocation_view_max_lag_seconds: 5,
        ..Default::default()
    })
    .await;
    let (cert, key) = enrolled(&kit, "jirodt").await;
    let serial = x509_parser::parse_x509_certificate(&cert)
        .unwrap()
        .1
        .raw_serial()
        .to_vec();
    // Ready, on the portal and the metrics listener; OCSP answers; login works.
    assert_eq!(
        get(&kit, format!("{}/healthz", kit.base)).await,
        (200, "ok\n".into())
    );
    assert_eq!(
        get(&kit, format!("{}/readyz", kit.base)).await,
        (200, "ready\n".into())
    );
    assert_eq!(
        get(&kit, format!("{}/readyz", kit.metrics_base)).await.0,
        200
    );
    assert_eq!(ocsp_status(&kit, &serial).await, 0, "successful");
    assert_eq!(cert_login_error(&kit, &cert, &key).await, None);

    // The revocation log goes away under the running server.
    sql(
        &kit,
        "ALTER TABLE revocation_log RENAME TO revocation_log_away",
    )
    .await;
    eventually(
        || async { get(&kit, format!("{}/readyz", kit.base)).await.0 == 503 },
        "/readyz fails",
    )
    .await;
    let (_, why) = get(&kit, format!("{}/readyz", kit.metrics_base)).await;
    assert!(
        why.starts_with("not ready: revocation view last confirmed"),
        "{why}"
    );
    assert_eq!(
        get(&kit, format!("{}/healthz", kit.base)).await.0,
        200,
        "alive all the same"
    );
    assert_eq!(ocsp_status(&kit, &serial).await, 3, "tryLater");
    let refused = cert_login_error(&kit, &cert, &key).await;
    let refused = format!("{refused:?}");
    assert!(
        refused.contains("電子証明書の失効情報を確認できない"),
        "{refused}"
    );
    // Renewal (EST simplereenroll with the certificate) too: 503 with
    // Retry-After as RFC 7030 says, nothing issued, the old certificate
    // not superseded.
    let (_, csr) = key_and_csr(&rcgen::PKCS_ECDSA_P256_SHA256);
    let renew = async || {
        let r = client(&kit, Some(identity(&cert, &key)))
            .post(format!("{}/.well-known/est/simplereenroll", kit.cert_base))
            .header("content-type", "application/pkcs10")
            .header("content-transfer-encoding", "base64")
            .body(base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                &csr,
            ))
            .send()
            .await
            .unwrap();
        let retry = r.headers().get("retry-after").cloned();
        (r.status().as_u16(), retry, r.text().await.unwrap())
    };
    let (status, retry, body) = renew().await;
    assert_eq!(
        (status, body.as_str()),
        (503, "server busy; please try again later\n")
    );
    assert_eq!(retry.unwrap(), "5");
    assert!(!kit.svc.is_revoked(&serial), "the old certificate stays");
    // The password method does not depend on the revocation view.
    assert_eq!(kit.browser().login("tarodt", LOGIN_PW).await.path(), "/top");

    // Back: the server serves again without a restart.
    sql(
        &kit,
        "ALTER TABLE revocation_log_away RENAME TO revocation_log",
    )
    .await;
    eventually(
        || async { get(&kit, format!("{}/readyz", kit.base)).await.0 == 200 },
        "/readyz recovers",
    )
    .await;
    assert_eq!(ocsp_status(&kit, &serial).await, 0);
    assert_eq!(cert_login_error(&kit, &cert, &key).await, None);
    // The control: the same renewal goes through now, superseding the old.
    let (status, _, body) = renew().await;
    assert_eq!(status, 200, "{body}");
    assert!(kit.svc.is_revoked(&serial), "superseded by the renewal");
    kit.stop().await;
}
