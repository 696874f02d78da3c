//! Issuance over EST (simpleenroll with login ID + login password,
//! simplereenroll with the certificate), and the certificate method of
//! login on the certificate listener — through the real TLS stack.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rcgen::{
    CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ED25519,
    SignatureAlgorithm,
};
use shomei_core::Serial;
use x509_parser::prelude::*;

use crate::testkit::{CONFIRM_PW, Kit, LOGIN_PW, StoreOf};

/// A key made "on the user's PC" and a CSR for it. The CSR asks for things
/// we must not grant (CA:TRUE, another name).
pub fn key_and_csr(alg: &'static SignatureAlgorithm) -> (KeyPair, Vec<u8>) {
    let key = KeyPair::generate_for(alg).unwrap();
    let mut p = CertificateParams::new(vec!["evil.example".into()]).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "somebody-else");
    let csr = p.serialize_request(&key).unwrap().der().to_vec();
    (key, csr)
}

pub struct EstAnswer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl EstAnswer {
    /// The certificates of a successful answer.
    pub fn certs(&self) -> Vec<Vec<u8>> {
        assert_eq!(self.status, 200, "{}", self.body);
        let clean: String = self.body.chars().filter(|c| !c.is_whitespace()).collect();
        shomei_pki::pkcs7::parse_certs_only(&STANDARD.decode(clean).unwrap()).unwrap()
    }
}

pub fn client(kit: &Kit, identity: Option<reqwest::Identity>) -> reqwest::Client {
    let root = reqwest::Certificate::from_pem(kit.svc.ca().root_pem().as_bytes()).unwrap();
    let mut b = reqwest::Client::builder()
        .tls_certs_only([root])
        .cookie_store(true);
    if let Some(id) = identity {
        b = b.identity(id);
    }
    b.build().unwrap()
}

/// GET /cert-login on the certificate listener with this certificate (or none).
pub async fn cert_login(
    kit: &Kit,
    cert: Option<(&[u8], &KeyPair)>,
) -> Result<reqwest::Response, reqwest::Error> {
    client(kit, cert.map(|(c, k)| identity(c, k)))
        .get(format!("{}/cert-login", kit.cert_base))
        .send()
        .await
}

/// The positive control beside a refusal: this certificate gets in.
pub async fn gets_in(kit: &Kit, cert: &[u8], key: &KeyPair) {
    let r = cert_login(kit, Some((cert, key))).await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "a good certificate gets in");
}

/// The TLS alert the server refused a request with: a handshake that the
/// certificate listener ends says why, and a dead listener or a timeout is
/// no refusal at all.
pub fn tls_alert(
    r: &Result<reqwest::Response, reqwest::Error>,
) -> Option<rustls::AlertDescription> {
    let mut e: Option<&(dyn std::error::Error + 'static)> = Some(r.as_ref().err()?);
    while let Some(err) = e {
        let inner = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|i| i.downcast_ref::<rustls::Error>());
        if let Some(rustls::Error::AlertReceived(a)) = err.downcast_ref::<rustls::Error>().or(inner)
        {
            return Some(*a);
        }
        e = err.source();
    }
    None
}

/// Asserts that `r` was refused in the handshake with `alert`.
pub fn assert_refused(
    r: &Result<reqwest::Response, reqwest::Error>,
    alert: rustls::AlertDescription,
    what: &str,
) {
    assert_eq!(
        tls_alert(r),
        Some(alert),
        "{what}: {:?}",
        r.as_ref().map(|r| r.status())
    );
}

pub async fn simpleenroll(kit: &Kit, login_id: &str, password: &str, csr: &[u8]) -> EstAnswer {
    let r = client(kit, None)
        .post(format!("{}/.well-known/est/simpleenroll", kit.base))
        .basic_auth(login_id, Some(password))
        .header("content-type", "application/pkcs10")
        .header("content-transfer-encoding", "base64")
        .body(STANDARD.encode(csr))
        .send()
        .await
        .unwrap();
    answer(r).await
}

async fn answer(r: reqwest::Response) -> EstAnswer {
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    EstAnswer {
        status,
        content_type,
        body: r.text().await.unwrap(),
    }
}

/// A client presenting `cert` with `key`, as the user's browser or app does.
pub fn identity(cert_der: &[u8], key: &KeyPair) -> reqwest::Identity {
    let pem = shomei_pki::to_pem("CERTIFICATE", cert_der) + &key.serialize_pem();
    reqwest::Identity::from_pem(pem.as_bytes()).unwrap()
}

fn serial_of(der: &[u8]) -> Serial {
    let (_, c) = parse_x509_certificate(der).unwrap();
    Serial::from_bytes(c.raw_serial()).unwrap()
}

#[tokio::test]
async fn simpleenroll_issues_our_profile_for_a_user_without_a_certificate() {
    let kit = Kit::start().await;
    let (_, csr) = key_and_csr(&PKCS_ECDSA_P256_SHA256);
    let a = simpleenroll(&kit, "jirodt", LOGIN_PW, &csr).await;
    assert!(
        a.content_type.starts_with("application/pkcs7-mime"),
        "{}",
        a.content_type
    );
    let certs = a.certs();
    assert_eq!(certs.len(), 1);
    let (_, c) = parse_x509_certificate(&certs[0]).unwrap();
    let cn: Vec<_> = c
        .subject()
        .iter_common_name()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(cn, ["jirodt"], "the subject is ours, not the CSR's");
    assert!(
        c.subject()
            .iter_organization()
            .any(|o| o.as_str().unwrap() == "株式会社ほくぎん商事")
    );
    assert!(!c.is_ca(), "CA:TRUE in the CSR is ignored");
    assert!(c.extended_key_usage().unwrap().unwrap().value.client_auth);
    assert!(
        c.subject_alternative_name().unwrap().is_none(),
        "no names from the CSR"
    );
    assert_eq!(c.raw_serial().len(), 16, "a random 16-byte serial");
    for (oid, what) in [
        ("2.5.29.31", "CRL distribution point"),
        ("2.5.29.46", "Freshest CRL (delta)"),
        ("1.3.6.1.5.5.7.1.1", "OCSP in AIA"),
        ("2.5.29.35", "AKI"),
        ("2.5.29.14", "SKI"),
    ] {
        assert!(
            c.extensions().iter().any(|e| e.oid.to_id_string() == oid),
            "{what}"
        );
    }
    c.verify_signature(Some(
        parse_x509_certificate(kit.svc.ca().issuing_der())
            .unwrap()
            .1
            .public_key(),
    ))
    .unwrap();

    let id = shomei_core::UserId(kit.user_id("jirodt").await);
    let stored = kit.svc.store().latest_cert(id).await.unwrap().unwrap();
    assert_eq!(stored.serial, serial_of(&certs[0]));
    let h = kit.history().await;
    assert!(
        h.iter().any(|r| r == "jirodt/証明書発行/成功/jirodt"),
        "{h:?}"
    );
    kit.stop().await;
}

/// (case, login ID, password, CSR, status, words in the message)
type Refusal<'a> = (&'a str, &'a str, &'a str, &'a [u8], u16, &'a str);

#[tokio::test]
async fn simpleenroll_refusals() {
    let kit = Kit::start().await;
    let (_, p256) = key_and_csr(&PKCS_ECDSA_P256_SHA256);
    let (_, ed25519) = key_and_csr(&PKCS_ED25519);
    let cases: &[Refusal] = &[
        (
            "発行済: revoke first",
            "hanakodt",
            LOGIN_PW,
            &p256,
            403,
            "revoke it first",
        ),
        (
            "更新可: renew instead",
            "tarodt",
            LOGIN_PW,
            &p256,
            403,
            "renew",
        ),
        (
            "wrong password",
            "ichirodt",
            "wrong",
            &p256,
            401,
            "login ID or login password is wrong",
        ),
        (
            "unknown ID",
            "nosuchuser",
            LOGIN_PW,
            &p256,
            401,
            "login ID or login password is wrong",
        ),
        (
            "not a CSR",
            "sachikodt",
            LOGIN_PW,
            b"garbage",
            400,
            "PKCS#10",
        ),
        (
            "Ed25519 key",
            "sachikodt",
            LOGIN_PW,
            &ed25519,
            400,
            "unsupported key",
        ),
    ];
    for (case, login_id, pw, csr, status, words) in cases {
        let a = simpleenroll(&kit, login_id, pw, csr).await;
        assert_eq!(a.status, *status, "{case}: {}", a.body);
        assert!(a.body.contains(words), "{case}: {}", a.body);
        assert!(a.content_type.starts_with("text/plain"), "{case}");
    }
    let wrong = simpleenroll(&kit, "ichirodt", "wrong", &p256).await.body;
    let unknown = simpleenroll(&kit, "nosuchuser", "x", &p256).await.body;
    assert_eq!(
        wrong, unknown,
        "the answer does not reveal whether the ID exists"
    );
    // Nothing was issued by any of the refused requests.
    let h = kit.history().await;
    assert!(!h.iter().any(|r| r.contains("/証明書発行/成功/")), "{h:?}");
    // Every refusal of a known user is in the company's 操作履歴 (the unknown
    // IDs belong to no company).
    assert_eq!(
        h.iter().filter(|r| r.contains("/証明書発行/失敗/")).count(),
        6,
        "{h:?}"
    );
    kit.stop().await;
}

#[tokio::test]
async fn wrong_enrollment_passwords_count_toward_the_login_lockout() {
    let kit = Kit::start().await;
    let (_, csr) = key_and_csr(&PKCS_ECDSA_P256_SHA256);
    let refused = "401 login ID or login password is wrong, or the login password is locked\n";
    let answer = async |pw: &str| {
        let a = simpleenroll(&kit, "jirodt", pw, &csr).await;
        format!("{} {}", a.status, a.body)
    };
    for i in 1..=3 {
        assert_eq!(answer("wrong").await, refused, "wrong password {i}");
        assert_eq!(kit.counters("jirodt").await.login_failures, i);
    }
    assert!(kit.counters("jirodt").await.login_locked_until.is_some());
    assert_eq!(
        answer(LOGIN_PW).await,
        refused,
        "locked: even the right password"
    );
    let b = kit.browser();
    let p = b.login("jirodt", LOGIN_PW).await;
    assert_eq!(
        (p.path(), p.error()),
        (
            "/login",
            Some(shomei_core::Problem::LoginFailed.message_ja().to_owned())
        ),
        "the same lock applies to ログイン"
    );
    let locked_rows = kit
        .history()
        .await
        .iter()
        .filter(|h| {
            h.starts_with("jirodt/証明書発行/失敗/") || h.starts_with("jirodt/ログイン/失敗/")
        })
        .count();
    assert_eq!(
        locked_rows, 5,
        "3 wrong, and the locked enrollment and login"
    );
    // The control: the lock over, the same password and CSR are certified,
    // and the login goes through.
    kit.clock.advance(::time::Duration::minutes(31));
    let a = simpleenroll(&kit, "jirodt", LOGIN_PW, &csr).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(b.login("jirodt", LOGIN_PW).await.path(), "/top");
    kit.stop().await;
}

#[tokio::test]
async fn a_p384_key_is_certified_too() {
    let kit = Kit::start().await;
    let (_, csr) = key_and_csr(&PKCS_ECDSA_P384_SHA384);
    let certs = simpleenroll(&kit, "sachikodt", LOGIN_PW, &csr)
        .await
        .certs();
    let (_, c) = parse_x509_certificate(&certs[0]).unwrap();
    assert_eq!(c.public_key().parsed().unwrap().key_size(), 384);
    kit.stop().await;
}

#[tokio::test]
async fn cacerts_and_csrattrs_follow_rfc7030() {
    let kit = Kit::start().await;
    let c = client(&kit, None);
    let r = c
        .get(format!("{}/.well-known/est/cacerts", kit.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/pkcs7-mime");
    assert_eq!(r.headers()["content-transfer-encoding"], "base64");
    let a = answer(r).await;
    let certs = a.certs();
    assert_eq!(
        certs,
        vec![
            kit.svc.ca().issuing_der().to_vec(),
            kit.svc.ca().root_der().to_vec()
        ]
    );
    let r = c
        .get(format!("{}/.well-known/est/csrattrs", kit.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/csrattrs");
    kit.stop().await;
}

/// Enrolls `who` and returns the certificate with its key.
pub async fn enrolled(kit: &Kit, who: &str) -> (Vec<u8>, KeyPair) {
    let (key, csr) = key_and_csr(&PKCS_ECDSA_P256_SHA256);
    let certs = simpleenroll(kit, who, LOGIN_PW, &csr).await.certs();
    (certs[0].clone(), key)
}

#[tokio::test]
async fn the_certificate_method_logs_in_and_revocation_shuts_it_out_at_once() {
    let kit = Kit::start().await;
    let (cert, key) = enrolled(&kit, "jirodt").await;
    let user = client(&kit, Some(identity(&cert, &key)));

    // The login page's 電子証明書方式 「ログイン」 leads to the certificate listener.
    let r = user
        .get(format!("{}/cert-login", kit.base))
        .send()
        .await
        .unwrap();
    assert!(r.url().as_str().starts_with(&kit.cert_base), "{}", r.url());
    let page = r.text().await.unwrap();
    assert!(
        page.contains(r#"<td id="cert-login-id">jirodt</td>"#),
        "the certificate names the user"
    );
    let csrf = crate::testkit::csrf_of(&page).unwrap();
    // Two factors: a wrong password is refused even with the certificate.
    let r = user
        .post(format!("{}/cert-login", kit.cert_base))
        .form(&[("csrf", csrf.as_str()), ("password", "wrong")])
        .send()
        .await
        .unwrap();
    let page = r.text().await.unwrap();
    assert!(page.contains("ログインできませんでした。"));
    let csrf = crate::testkit::csrf_of(&page).unwrap();
    let r = user
        .post(format!("{}/cert-login", kit.cert_base))
        .form(&[("csrf", csrf.as_str()), ("password", LOGIN_PW)])
        .send()
        .await
        .unwrap();
    assert!(r.url().path().ends_with("/top"), "{}", r.url());
    assert!(r.text().await.unwrap().contains("データ二郎"));
    let h = kit.history().await;
    assert!(
        h.iter().any(|r| r == "jirodt/ログイン/成功/jirodt"),
        "{h:?}"
    );

    // jirodt (マスター) revokes his own certificate in the portal, from
    // another browser: the guide's way for a マスター replacing a PC.
    let admin = kit.browser();
    admin.to_brsk019(&kit, "jirodt", "jirodt").await;
    let done = admin.execute(CONFIRM_PW).await;
    assert_eq!(done.path(), "/brsk020");

    // The open keep-alive connection gets no further: back to the portal's login.
    let r = user
        .get(format!("{}/top", kit.cert_base))
        .send()
        .await
        .expect("the open connection answers");
    assert!(
        r.url().as_str().starts_with(&format!("{}/login", kit.base)),
        "{}",
        r.url()
    );
    assert!(r.text().await.unwrap().contains("失効しています"));
    // ...a new handshake is refused...
    assert_refused(
        &cert_login(&kit, Some((&cert, &key))).await,
        rustls::AlertDescription::CertificateRevoked,
        "a revoked certificate must not complete a handshake",
    );
    // ...and the session opened with it has ended, on the portal listener too.
    let r = user.get(format!("{}/top", kit.base)).send().await.unwrap();
    assert_eq!(r.url().path(), "/login", "{}", r.url());
    let h = kit.history().await;
    assert!(
        h.iter().any(|r| r == "jirodt/セッション終了/成功/"),
        "{h:?}"
    );

    // 失効済 → issue again succeeds, and the new certificate logs in.
    let (cert2, key2) = enrolled(&kit, "jirodt").await;
    gets_in(&kit, &cert2, &key2).await;
    kit.stop().await;
}

#[tokio::test]
async fn the_certificate_listener_refuses_clients_without_a_certificate_or_with_a_foreign_one() {
    let kit = Kit::start().await;
    // The control: our own certificate gets in on the same listener.
    let (cert, key) = enrolled(&kit, "jirodt").await;
    gets_in(&kit, &cert, &key).await;
    assert_refused(
        &cert_login(&kit, None).await,
        rustls::AlertDescription::CertificateRequired,
        "no certificate, no handshake",
    );
    // A certificate from another CA (self-signed, clientAuth) is refused.
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = CertificateParams::new(vec![]).unwrap();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "hanakodt");
    p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let foreign = p.self_signed(&key).unwrap();
    assert_refused(
        &cert_login(&kit, Some((foreign.der(), &key))).await,
        rustls::AlertDescription::UnknownCA,
        "a foreign CA's certificate",
    );
    kit.stop().await;
}

#[tokio::test]
async fn an_expired_client_certificate_is_refused_at_the_certificate_listener() {
    let kit = Kit::start().await;
    // The control: a current certificate gets in.
    let (good, good_key) = enrolled(&kit, "ichirodt").await;
    gets_in(&kit, &good, &good_key).await;
    // One issued a validity and ten days ago (the test clock moved back):
    // it expired ten days ago, by the real clock the handshake reads.
    let back = kit.svc.settings().cert_validity() + ::time::Duration::days(10);
    kit.clock.advance(-back);
    let (old, old_key) = enrolled(&kit, "jirodt").await;
    kit.clock.advance(back);
    let (_, c) = parse_x509_certificate(&old).unwrap();
    assert!(
        c.validity().not_after.timestamp() < ::time::OffsetDateTime::now_utc().unix_timestamp()
    );
    assert_refused(
        &cert_login(&kit, Some((&old, &old_key))).await,
        rustls::AlertDescription::CertificateExpired,
        "an expired certificate",
    );
    kit.stop().await;
}

#[tokio::test]
async fn simplereenroll_renews_with_the_certificate_and_supersedes_the_old_one() {
    let kit = Kit::start().await;
    let (old, key) = enrolled(&kit, "jirodt").await;
    let (new_key, csr) = key_and_csr(&PKCS_ECDSA_P256_SHA256);
    // Without the certificate (portal listener), renewal is refused.
    let r = client(&kit, None)
        .post(format!("{}/.well-known/est/simplereenroll", kit.base))
        .header("content-type", "application/pkcs10")
        .body(STANDARD.encode(&csr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let why = r.text().await.unwrap();
    assert!(
        why.starts_with("renewal needs the current certificate"),
        "{why}"
    );
    let r = client(&kit, Some(identity(&old, &key)))
        .post(format!("{}/.well-known/est/simplereenroll", kit.cert_base))
        .header("content-type", "application/pkcs10")
        .header("content-transfer-encoding", "base64")
        .body(STANDARD.encode(&csr))
        .send()
        .await
        .unwrap();
    let certs = answer(r).await.certs();
    let new = &certs[0];
    let (_, c) = parse_x509_certificate(new).unwrap();
    assert_eq!(
        c.public_key().raw,
        parse_x509_certificate(
            &rcgen::CertificateParams::new(vec![])
                .unwrap()
                .self_signed(&new_key)
                .unwrap()
                .der()[..]
        )
        .unwrap()
        .1
        .public_key()
        .raw
    );
    let old_serial = serial_of(&old);
    assert!(
        kit.svc.is_revoked(old_serial.as_bytes()),
        "the old certificate is superseded"
    );
    kit.crl_caught_up().await;
    let crl = kit
        .svc
        .crl_naming(&old_serial)
        .await
        .unwrap()
        .expect("the old certificate's partition is published");
    let (_, parsed) = x509_parser::parse_x509_crl(&crl.der).unwrap();
    let entry = parsed
        .iter_revoked_certificates()
        .find(|r| Serial::from_bytes(r.raw_serial()).as_ref() == Some(&old_serial))
        .unwrap();
    assert_eq!(
        entry.reason_code().map(|r| r.1.0),
        Some(4),
        "reason superseded"
    );
    let h = kit.history().await;
    assert!(
        h.iter().any(|r| r == "jirodt/証明書更新/成功/jirodt"),
        "{h:?}"
    );
    // The old certificate cannot renew again; the new one gets in.
    let again = client(&kit, Some(identity(&old, &key)))
        .post(format!("{}/.well-known/est/simplereenroll", kit.cert_base))
        .body(STANDARD.encode(&csr))
        .send()
        .await;
    assert_refused(
        &again,
        rustls::AlertDescription::CertificateRevoked,
        "superseded: no handshake",
    );
    gets_in(&kit, new, &new_key).await;
    kit.stop().await;
}

// curl and openssl block: the server needs threads of its own meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_and_curl_enroll_as_a_standard_est_client_would() {
    use std::process::Command;
    let kit = Kit::start().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |args: &[&str]| {
        let out = Command::new(args[0])
            .args(&args[1..])
            .current_dir(d)
            .output()
            .expect("openssl and curl are installed");
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    std::fs::write(d.join("root.pem"), kit.svc.ca().root_pem()).unwrap();
    run(&[
        "openssl",
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "key.pem",
        "-subj",
        "/CN=whatever",
        "-outform",
        "DER",
        "-out",
        "csr.der",
    ]);
    let b64 = STANDARD.encode(std::fs::read(d.join("csr.der")).unwrap());
    std::fs::write(d.join("csr.b64"), b64).unwrap();
    let url = format!("{}/.well-known/est/simpleenroll", kit.base);
    let user = format!("sachikodt:{LOGIN_PW}");
    run(&[
        "curl",
        "-sS",
        "--fail",
        "--cacert",
        "root.pem",
        "-u",
        &user,
        "-H",
        "Content-Type: application/pkcs10",
        "-H",
        "Content-Transfer-Encoding: base64",
        "--data-binary",
        "@csr.b64",
        "-o",
        "cert.p7.b64",
        &url,
    ]);
    run(&[
        "openssl",
        "base64",
        "-d",
        "-in",
        "cert.p7.b64",
        "-out",
        "cert.p7",
    ]);
    run(&[
        "openssl",
        "pkcs7",
        "-inform",
        "DER",
        "-in",
        "cert.p7",
        "-print_certs",
        "-out",
        "cert.pem",
    ]);
    let cacerts = format!("{}/.well-known/est/cacerts", kit.base);
    run(&[
        "curl",
        "-sS",
        "--fail",
        "--cacert",
        "root.pem",
        "-o",
        "ca.p7.b64",
        &cacerts,
    ]);
    run(&[
        "openssl",
        "base64",
        "-d",
        "-in",
        "ca.p7.b64",
        "-out",
        "ca.p7",
    ]);
    run(&[
        "openssl",
        "pkcs7",
        "-inform",
        "DER",
        "-in",
        "ca.p7",
        "-print_certs",
        "-out",
        "chain.pem",
    ]);
    let ok = run(&[
        "openssl",
        "verify",
        "-purpose",
        "sslclient",
        "-CAfile",
        "chain.pem",
        "cert.pem",
    ]);
    assert!(ok.contains("cert.pem: OK"), "{ok}");
    let subject = run(&["openssl", "x509", "-in", "cert.pem", "-noout", "-subject"]);
    assert!(
        subject.contains("CN = sachikodt") || subject.contains("CN=sachikodt"),
        "{subject}"
    );
    // curl logs in with it over the certificate listener.
    let page = run(&[
        "curl",
        "-sS",
        "--fail",
        "--cacert",
        "root.pem",
        "--cert",
        "cert.pem",
        "--key",
        "key.pem",
        &format!("{}/cert-login", kit.cert_base),
    ]);
    assert!(page.contains("sachikodt"), "{page}");
    // Without the certificate, curl does not get through the handshake:
    // the server's alert says a certificate is required (TLS 1.3), and curl
    // fails receiving (56), not connecting or verifying the server.
    let out = Command::new("curl")
        .args([
            "-sS",
            "--cacert",
            "root.pem",
            &format!("{}/cert-login", kit.cert_base),
        ])
        .current_dir(d)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(56), "{stderr}");
    assert!(stderr.contains("alert certificate required"), "{stderr}");
    kit.stop().await;
}

/// RSA keys of 2048 to 4096 bits are certified; RSA-1024 is refused by the
/// server (not only by the app), whatever the client sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_2048_to_4096_is_certified_and_rsa_1024_is_refused() {
    let kit = Kit::start().await;
    let dir = tempfile::tempdir().unwrap();
    let csr = |bits: u32| {
        let out = std::process::Command::new("openssl")
            .args(["req", "-new", "-newkey", &format!("rsa:{bits}"), "-nodes"])
            .args([
                "-keyout",
                "/dev/null",
                "-subj",
                "/CN=anyone",
                "-outform",
                "DER",
            ])
            .current_dir(dir.path())
            .output()
            .expect("openssl is installed");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let weak = simpleenroll(&kit, "jirodt", LOGIN_PW, &csr(1024)).await;
    assert_eq!(weak.status, 400, "{}", weak.body);
    assert!(
        weak.body.contains("unsupported key (RSA 1024)"),
        "{}",
        weak.body
    );
    for (who, bits) in [("jirodt", 2048), ("ichirodt", 3072), ("sachikodt", 4096)] {
        let a = simpleenroll(&kit, who, LOGIN_PW, &csr(bits)).await;
        assert_eq!(a.status, 200, "RSA {bits}: {}", a.body);
        let der = a.certs().remove(0);
        let (_, c) = parse_x509_certificate(&der).unwrap();
        match c.public_key().parsed().unwrap() {
            x509_parser::public_key::PublicKey::RSA(k) => assert_eq!(k.key_size(), bits as usize),
            other => panic!("{other:?}"),
        }
    }
    kit.stop().await;
}
