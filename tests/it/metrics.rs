//! The metrics listener: what an operator's Prometheus scrapes after a
//! morning of logins, an issuance, a revocation, a refused handshake and
//! OCSP traffic.

use crate::issuance::enrolled;
use crate::testkit::{CONFIRM_PW, Kit, LOGIN_PW};

/// The value of one sample line (`name{labels} value`).
pub fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
        .parse()
        .unwrap()
}

pub async fn scrape(kit: &Kit) -> String {
    let r = reqwest::get(format!("{}/metrics", kit.metrics_base))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    r.text().await.unwrap()
}

#[tokio::test]
async fn metrics_count_what_happened() {
    let kit = Kit::start().await;
    let before = scrape(&kit).await;
    assert_eq!(
        sample(&before, "shomei_revoked_certificates"),
        1.0,
        "sachikodt"
    );
    assert_eq!(
        sample(
            &before,
            "shomei_certificates_issued_total{operation=\"simpleenroll\"}"
        ),
        0.0
    );

    // A failed and a successful password login.
    assert_eq!(
        kit.browser().login("ichirodt", "Wrong#1234").await.path(),
        "/login"
    );
    let admin = kit.browser();
    assert_eq!(admin.login("hanakodt", LOGIN_PW).await.path(), "/top");
    // ichirodt enrolls and shows the certificate to the certificate listener.
    let (cert, key) = enrolled(&kit, "ichirodt").await;
    crate::issuance::gets_in(&kit, &cert, &key).await;
    // hanakodt revokes it; the next handshake with it is refused.
    admin.get("/brsk018").await;
    let id = kit.user_id("ichirodt").await.to_string();
    admin.post("/brsk018", &[("user", &id)]).await;
    assert_eq!(admin.execute(CONFIRM_PW).await.path(), "/brsk020");
    crate::issuance::assert_refused(
        &crate::issuance::cert_login(&kit, Some((&cert, &key))).await,
        rustls::AlertDescription::CertificateRevoked,
        "the revoked certificate",
    );
    // A malformed OCSP request.
    let r = kit
        .browser()
        .client
        .post(format!("{}/pki/ocsp", kit.base))
        .header("content-type", "application/ocsp-request")
        .body("not der")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    kit.crl_caught_up().await;

    let after = scrape(&kit).await;
    for (series, want) in [
        (
            "shomei_logins_total{method=\"password\",result=\"refused\"}",
            1.0,
        ),
        (
            "shomei_logins_total{method=\"password\",result=\"ok\"}",
            1.0,
        ),
        (
            "shomei_certificates_issued_total{operation=\"simpleenroll\"}",
            1.0,
        ),
        ("shomei_revocations_total", 1.0),
        ("shomei_revoked_certificates", 2.0),
        ("shomei_revoked_certificates_refused_total", 1.0),
        ("shomei_ocsp_responses_total{status=\"error\"}", 1.0),
    ] {
        assert_eq!(sample(&after, series), want, "{series}");
    }
    assert!(
        sample(
            &after,
            "shomei_tls_handshakes_total{listener=\"cert\",result=\"ok\"}"
        ) >= 1.0
    );
    assert!(
        sample(
            &after,
            "shomei_tls_handshakes_total{listener=\"cert\",result=\"failed\"}"
        ) >= 1.0
    );
    assert!(
        sample(
            &after,
            "shomei_tls_handshakes_total{listener=\"portal\",result=\"ok\"}"
        ) >= 1.0
    );
    // Per partition: the numbers moved up, and the entries of all of them
    // are the two revoked certificates.
    let per_partition = |text: &str, name: &str| -> Vec<f64> {
        text.lines()
            .filter_map(|l| l.strip_prefix(name)?.strip_prefix("{partition=\""))
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect()
    };
    let numbers = |t: &str| per_partition(t, "shomei_crl_number");
    assert_eq!(numbers(&after).len(), 64, "the default: 64 partitions");
    assert_eq!(sample(&after, "shomei_crl_partitions"), 64.0);
    let highest = |v: Vec<f64>| v.into_iter().fold(0.0, f64::max);
    assert!(highest(numbers(&after)) > highest(numbers(&before)));
    assert_eq!(
        per_partition(&after, "shomei_crl_entries")
            .iter()
            .sum::<f64>(),
        2.0
    );
    assert!(
        per_partition(&after, "shomei_crl_bytes")
            .iter()
            .all(|b| *b > 200.0),
        "every partition's CRL is published and signed"
    );
    assert!(
        sample(
            &after,
            "shomei_http_request_duration_seconds_count{listener=\"portal\"}"
        ) >= 5.0
    );
    assert!(sample(&after, "shomei_sessions") >= 1.0);
    // Nothing but /metrics there.
    let r = reqwest::get(format!("{}/brsk018", kit.metrics_base))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    kit.stop().await;
}
