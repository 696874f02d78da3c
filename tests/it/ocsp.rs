//! The OCSP responder at the address in every certificate's AIA, checked
//! with `openssl ocsp` as a relying party would: good, then revoked after
//! 実行 in the portal, unknown for serials we never issued; on a server with
//! its PKI listener, the AIA is plain HTTP there and answers are signed by
//! the delegated signer, and the CA certificates are served there.

use std::process::Command;

use rcgen::PKCS_ECDSA_P256_SHA256;

use crate::issuance::{key_and_csr, simpleenroll};
use crate::testkit::{CONFIRM_PW, Kit, LOGIN_PW};

fn openssl_ocsp(dir: &std::path::Path, url: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "ocsp",
        "-issuer",
        "issuing.pem",
        "-CAfile",
        "chain.pem",
        "-url",
        url,
        "-resp_text",
    ];
    args.extend_from_slice(extra);
    let out = Command::new("openssl")
        .args(&args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "openssl ocsp failed: {text}");
    text
}

/// jirodt's new certificate, and a directory with it (cert.pem), the issuing
/// CA (issuing.pem) and the chain (chain.pem), as openssl wants them.
async fn jirodt_enrolled(kit: &Kit) -> (Vec<u8>, tempfile::TempDir) {
    let (_, csr) = key_and_csr(&PKCS_ECDSA_P256_SHA256);
    let cert = simpleenroll(kit, "jirodt", LOGIN_PW, &csr)
        .await
        .certs()
        .remove(0);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = kit.svc.ca();
    std::fs::write(d.join("issuing.pem"), ca.issuing_pem()).unwrap();
    std::fs::write(d.join("chain.pem"), ca.root_pem() + &ca.issuing_pem()).unwrap();
    std::fs::write(d.join("cert.pem"), shomei_pki::to_pem("CERTIFICATE", &cert)).unwrap();
    (cert, dir)
}

// openssl blocks: the server needs threads of its own meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_ocsp_says_good_then_revoked_then_unknown_for_strangers() {
    let kit = Kit::start().await;
    let (cert, dir) = jirodt_enrolled(&kit).await;
    let d = dir.path();
    let ca = kit.svc.ca();
    let (_, parsed) = x509_parser::parse_x509_certificate(&cert).unwrap();
    let aia = parsed
        .iter_extensions()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::AuthorityInfoAccess(a) => {
                Some(a.accessdescs.clone())
            }
            _ => None,
        })
        .unwrap();
    let url = match &aia[0].access_location {
        x509_parser::extensions::GeneralName::URI(u) => u.to_string(),
        other => panic!("{other:?}"),
    };
    assert_eq!(url, format!("{}/pki/ocsp", kit.base));

    let good = openssl_ocsp(d, &url, &["-cert", "cert.pem"]);
    assert!(good.contains("Response verify OK"), "{good}");
    assert!(good.contains("cert.pem: good"), "{good}");
    assert!(good.contains("OCSP Nonce"), "the nonce is echoed: {good}");

    let admin = kit.browser();
    admin.to_brsk019(&kit, "jirodt", "jirodt").await;
    assert_eq!(admin.execute(CONFIRM_PW).await.path(), "/brsk020");

    let revoked = openssl_ocsp(d, &url, &["-cert", "cert.pem"]);
    assert!(revoked.contains("cert.pem: revoked"), "{revoked}");
    assert!(
        revoked.contains("Reason: cessationOfOperation"),
        "{revoked}"
    );
    assert!(revoked.contains("Response verify OK"), "{revoked}");

    let unknown = openssl_ocsp(d, &url, &["-serial", "0x0123456789abcdef"]);
    assert!(unknown.contains(": unknown"), "{unknown}");

    // Without a nonce (the cacheable kind), before and after a revocation.
    let (_, csr) = key_and_csr(&PKCS_ECDSA_P256_SHA256);
    let cert2 = simpleenroll(&kit, "sachikodt", LOGIN_PW, &csr)
        .await
        .certs()
        .remove(0);
    std::fs::write(
        d.join("cert2.pem"),
        shomei_pki::to_pem("CERTIFICATE", &cert2),
    )
    .unwrap();
    let first = openssl_ocsp(d, &url, &["-cert", "cert2.pem", "-no_nonce"]);
    assert!(first.contains("cert2.pem: good"), "{first}");
    // The same serial asked with a SHA-256 CertID gets an answer naming that
    // CertID, not the cached SHA-1 one (openssl matches them up).
    let sha256 = openssl_ocsp(d, &url, &["-sha256", "-cert", "cert2.pem", "-no_nonce"]);
    assert!(
        sha256.contains("Response verify OK") && sha256.contains("cert2.pem: good"),
        "{sha256}"
    );
    // ...and named under another issuer (the root), the serial is unknown.
    std::fs::write(d.join("root.pem"), ca.root_pem()).unwrap();
    let serial2 = {
        let (_, c) = x509_parser::parse_x509_certificate(&cert2).unwrap();
        format!("0x{}", c.raw_serial_as_string().replace(':', ""))
    };
    let foreign = Command::new("openssl")
        .args([
            "ocsp",
            "-issuer",
            "root.pem",
            "-no_nonce",
            "-noverify",
            "-url",
            &url,
        ])
        .args(["-serial", &serial2])
        .current_dir(d)
        .output()
        .unwrap();
    let foreign = String::from_utf8_lossy(&foreign.stdout).to_string();
    assert!(foreign.contains(": unknown"), "{foreign}");
    admin.to_brsk019(&kit, "hanakodt", "sachikodt").await;
    assert_eq!(admin.execute(CONFIRM_PW).await.path(), "/brsk020");
    let after = openssl_ocsp(d, &url, &["-cert", "cert2.pem", "-no_nonce"]);
    assert!(
        after.contains("cert2.pem: revoked"),
        "a cached good answer is dropped at revocation: {after}"
    );
    let after = openssl_ocsp(d, &url, &["-sha256", "-cert", "cert2.pem", "-no_nonce"]);
    assert!(after.contains("cert2.pem: revoked"), "{after}");
    kit.stop().await;
}

#[tokio::test]
async fn malformed_requests_get_malformed_request_over_post_and_get() {
    let kit = Kit::start().await;
    let root = reqwest::Certificate::from_pem(kit.svc.ca().root_pem().as_bytes()).unwrap();
    let c = reqwest::Client::builder()
        .tls_certs_only([root])
        .build()
        .unwrap();
    for body in [
        &b""[..],
        b"not der",
        &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
        &[0x30; 5000],
    ] {
        let r = c
            .post(format!("{}/pki/ocsp", kit.base))
            .header("content-type", "application/ocsp-request")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["content-type"], "application/ocsp-response");
        assert_eq!(
            r.bytes().await.unwrap().as_ref(),
            [0x30, 0x03, 0x0a, 0x01, 0x01],
            "malformedRequest"
        );
    }
    let r = c
        .get(format!("{}/pki/ocsp/%%%not-base64", kit.base))
        .send()
        .await
        .unwrap();
    let b = r.bytes().await.unwrap();
    assert_eq!(b.as_ref(), [0x30, 0x03, 0x0a, 0x01, 0x01]);
    kit.stop().await;
}

/// RFC 6960 §A.1: GET {url}/{url-encoded base64 of the DER request}.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_request_over_get_is_answered_good_then_revoked() {
    let kit = Kit::start().await;
    let (_, dir) = jirodt_enrolled(&kit).await;
    let d = dir.path();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(d)
            .output()
            .expect("openssl is installed");
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {text}");
        text
    };
    // The request as a relying party makes it (without a nonce: the GET kind).
    openssl(&[
        "ocsp",
        "-issuer",
        "issuing.pem",
        "-cert",
        "cert.pem",
        "-no_nonce",
        "-reqout",
        "req.der",
    ]);
    use base64::Engine;
    let b64 =
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(d.join("req.der")).unwrap());
    let path: String = b64
        .chars()
        .map(|c| match c {
            '+' => "%2B".to_string(),
            '/' => "%2F".to_string(),
            '=' => "%3D".to_string(),
            c => c.to_string(),
        })
        .collect();
    let c = kit.browser().client;
    let ask = |c: reqwest::Client, url: String| async move {
        let r = c.get(url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/ocsp-response");
        r.bytes().await.unwrap().to_vec()
    };
    let url = format!("{}/pki/ocsp/{path}", kit.base);
    std::fs::write(d.join("good.der"), ask(c.clone(), url.clone()).await).unwrap();
    let read = |resp: &str| {
        openssl(&[
            "ocsp",
            "-respin",
            resp,
            "-issuer",
            "issuing.pem",
            "-CAfile",
            "chain.pem",
            "-cert",
            "cert.pem",
            "-no_nonce",
        ])
    };
    let good = read("good.der");
    assert!(
        good.contains("Response verify OK") && good.contains("cert.pem: good"),
        "{good}"
    );

    let admin = kit.browser();
    admin.to_brsk019(&kit, "jirodt", "jirodt").await;
    assert_eq!(admin.execute(CONFIRM_PW).await.path(), "/brsk020");
    std::fs::write(d.join("revoked.der"), ask(c, url).await).unwrap();
    let revoked = read("revoked.der");
    assert!(
        revoked.contains("Response verify OK") && revoked.contains("cert.pem: revoked"),
        "{revoked}"
    );
    kit.stop().await;
}

/// thisUpdate of a single good or revoked answer (GeneralizedTime after the
/// certStatus), as "YYYYMMDDHHMMSSZ".
fn this_update(response: &[u8]) -> String {
    let good = response
        .windows(4)
        .position(|w| w == [0x80, 0x00, 0x18, 0x0f])
        .map(|i| i + 4);
    // revoked: [1] { revocationTime (0x18 0x0f …) [reason] } then thisUpdate.
    let revoked = || {
        let i = response
            .windows(3)
            .position(|w| w[0] == 0xa1 && w[2] == 0x18)?;
        let after = i + 2 + response[i + 1] as usize;
        (response.get(after..after + 2) == Some(&[0x18, 0x0f])).then_some(after + 2)
    };
    let at = good.or_else(revoked).expect("a good or revoked answer");
    String::from_utf8(response[at..at + 15].to_vec()).unwrap()
}

fn generalized(t: ::time::OffsetDateTime) -> String {
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The signature value `openssl ocsp -resp_text` prints of a response.
fn signature_of(text: &str) -> String {
    let at = text
        .find("Signature Value:")
        .unwrap_or_else(|| panic!("no signature in {text}"));
    let hex: String = text[at..]
        .lines()
        .skip(1)
        .map(str::trim)
        .take_while(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_hexdigit() || c == ':'))
        .collect();
    assert!(hex.len() > 100, "a signature in {text}");
    hex
}

/// The user's certificate revoked by the bank (key compromise).
async fn revoke(kit: &Kit, login_id: &str) {
    kit.svc
        .revoke_by_operator(
            &shomei_core::LoginId::parse(login_id).unwrap(),
            shomei_core::RevocationReason::KeyCompromise,
            None,
            "yamada",
        )
        .await
        .unwrap();
}

fn ocsp_hits(kit: &Kit) -> f64 {
    crate::metrics::sample(&kit.svc.metrics_text(None), "shomei_ocsp_cache_hits_total")
}

#[tokio::test]
async fn answers_are_presigned_at_issuance_replaced_at_revocation_and_never_served_stale() {
    let kit = Kit::start().await;
    let presigned = |kit: &Kit| {
        crate::metrics::sample(
            &kit.svc.metrics_text(None),
            "shomei_ocsp_presigned_responses",
        )
    };
    let before = presigned(&kit);
    let (cert, _dir) = jirodt_enrolled(&kit).await;
    assert_eq!(presigned(&kit), before + 1.0, "signed at issuance");
    let (_, parsed) = x509_parser::parse_x509_certificate(&cert).unwrap();
    let serial = shomei_core::Serial::from_bytes(parsed.raw_serial()).unwrap();
    let issuer = shomei_pki::ocsp::IssuerHashes::of(kit.svc.ca().issuing_der()).unwrap();
    let request = issuer.request(serial.as_bytes());

    // The very first question is answered from the pre-signed answer.
    let hits = ocsp_hits(&kit);
    let first = kit.svc.ocsp(&request).await;
    assert!(first.windows(2).any(|w| w == [0x80, 0x00]), "good");
    assert_eq!(ocsp_hits(&kit), hits + 1.0, "served pre-signed");

    // Signed again before it is stale, and served as signed again.
    let t0 = this_update(&first);
    kit.clock.advance(::time::Duration::minutes(25));
    assert!(kit.svc.refresh_presigned_ocsp() >= 1);
    let hits = ocsp_hits(&kit);
    let refreshed = kit.svc.ocsp(&request).await;
    assert_eq!(ocsp_hits(&kit), hits + 1.0, "still served pre-signed");
    let t1 = this_update(&refreshed);
    assert!(t1 > t0, "signed again: {t0} then {t1}");
    // Without a refresh, an answer half-way to its nextUpdate is not served:
    // the question gets one signed now.
    kit.clock.advance(::time::Duration::minutes(31));
    let now = generalized(kit.svc.now());
    let fresh = this_update(&kit.svc.ocsp(&request).await);
    assert!(fresh > t1 && fresh <= now, "{t1} then {fresh} (now {now})");

    // A revocation replaces it before the revoking call returns: the very
    // next question is answered revoked, from the pre-signed answer.
    revoke(&kit, "jirodt").await;
    let hits = ocsp_hits(&kit);
    let revoked = kit.svc.ocsp(&request).await;
    assert_eq!(ocsp_hits(&kit), hits + 1.0, "served pre-signed");
    assert!(
        revoked
            .windows(4)
            .any(|w| w[0] == 0xa1 && w[2..] == [0x18, 0x0f]),
        "revoked"
    );
    assert!(
        !revoked.windows(4).any(|w| w == [0x80, 0x00, 0x18, 0x0f]),
        "no longer good"
    );
    kit.stop().await;
}

// openssl blocks: the server needs threads of its own meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_with_a_nonce_is_signed_afresh_and_a_presigned_answer_verifies() {
    let kit = Kit::start().await;
    let (_, dir) = jirodt_enrolled(&kit).await;
    let d = dir.path();
    let url = format!("{}/pki/ocsp", kit.base);
    // The pre-signed answer (no nonce) verifies as a relying party checks it.
    let hits = ocsp_hits(&kit);
    let plain = openssl_ocsp(d, &url, &["-cert", "cert.pem", "-no_nonce"]);
    assert!(plain.contains("Response verify OK"), "{plain}");
    assert!(plain.contains("cert.pem: good"), "{plain}");
    assert_eq!(ocsp_hits(&kit), hits + 1.0, "served pre-signed");
    // With a nonce: echoed, so signed for this request, twice over.
    // (openssl fails when the nonce it sent is not the one echoed.)
    let mut signatures = Vec::new();
    for _ in 0..2 {
        let nonced = openssl_ocsp(d, &url, &["-cert", "cert.pem"]);
        assert!(nonced.contains("Response verify OK"), "{nonced}");
        assert!(nonced.contains("OCSP Nonce"), "{nonced}");
        assert!(nonced.contains("cert.pem: good"), "{nonced}");
        signatures.push(signature_of(&nonced));
    }
    assert_ne!(signatures[0], signatures[1], "each signed for its request");
    assert_ne!(
        signatures[0],
        signature_of(&plain),
        "not the pre-signed one"
    );
    assert_eq!(
        ocsp_hits(&kit),
        hits + 1.0,
        "nonce requests are not served pre-signed"
    );
    kit.stop().await;
}

/// The README: OCSP (and the CRLs) are served over plain HTTP on the PKI
/// listener, and those URLs are the ones written into every certificate;
/// answers are signed by a delegated OCSP signing certificate. The AIA's
/// OCSP URL is http:// on the PKI listener (not the portal's https://) and
/// `openssl ocsp` asks it there (the control: the listener answers); the
/// answer carries the signer's certificate (ca/ocsp-signer.crt), not the
/// issuing CA's, and names it as the responder; that certificate has
/// id-kp-OCSPSigning, is issued and signed by the issuing CA, and its key is
/// not the CA's.
// openssl blocks: the server needs threads of its own meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aia_names_plain_http_and_answers_are_signed_by_the_delegated_signer() {
    use x509_parser::extensions::{GeneralName, ParsedExtension};
    let kit = Kit::start_with_pki().await;
    let pki_base = kit.pki_base.clone().unwrap();
    assert!(pki_base.starts_with("http://"), "{pki_base}");
    let (cert, dir) = jirodt_enrolled(&kit).await;
    let d = dir.path();
    let (_, parsed) = x509_parser::parse_x509_certificate(&cert).unwrap();
    let uris = |want_aia: bool| -> Vec<String> {
        parsed
            .iter_extensions()
            .flat_map(|e| match e.parsed_extension() {
                ParsedExtension::AuthorityInfoAccess(a) if want_aia => a
                    .accessdescs
                    .iter()
                    .map(|d| d.access_location.clone())
                    .collect(),
                ParsedExtension::CRLDistributionPoints(p) if !want_aia => p
                    .points
                    .iter()
                    .flat_map(|p| match &p.distribution_point {
                        Some(x509_parser::extensions::DistributionPointName::FullName(n)) => {
                            n.clone()
                        }
                        _ => vec![],
                    })
                    .collect(),
                _ => vec![],
            })
            .filter_map(|n| match n {
                GeneralName::URI(u) => Some(u.to_string()),
                _ => None,
            })
            .collect()
    };
    let aia = uris(true);
    assert_eq!(aia, vec![format!("{pki_base}/pki/ocsp")]);
    let url = &aia[0];
    let crl = uris(false);
    assert!(
        crl.len() == 1 && crl[0].starts_with(&format!("{pki_base}/pki/crl/")),
        "{crl:?}"
    );
    let fetched = reqwest::get(&crl[0]).await.unwrap();
    assert_eq!(fetched.status(), 200, "the CRL over plain HTTP");
    assert!(
        x509_parser::parse_x509_crl(&fetched.bytes().await.unwrap()).is_ok(),
        "a CRL"
    );

    let text = openssl_ocsp(
        d,
        url,
        &["-cert", "cert.pem", "-no_nonce", "-respout", "resp.der"],
    );
    assert!(
        text.contains("Response verify OK") && text.contains("cert.pem: good"),
        "{text}"
    );
    let resp = std::fs::read(d.join("resp.der")).unwrap();
    let contains = |der: &[u8]| resp.windows(der.len()).any(|w| w == der);
    let signer_pem = std::fs::read(kit.dir.path().join("ca/ocsp-signer.crt")).unwrap();
    let (_, signer_pem) = x509_parser::pem::parse_x509_pem(&signer_pem).unwrap();
    let signer_der = signer_pem.contents.clone();
    let ca = kit.svc.ca();
    assert!(
        contains(&signer_der),
        "the signer's certificate is in the answer"
    );
    assert!(!contains(ca.issuing_der()), "the issuing CA's is not");
    let (_, signer) = x509_parser::parse_x509_certificate(&signer_der).unwrap();
    let (_, issuing) = x509_parser::parse_x509_certificate(ca.issuing_der()).unwrap();
    let eku = signer.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.ocsp_signing, "id-kp-OCSPSigning");
    assert!(!eku.client_auth && !eku.server_auth, "{eku:?}");
    assert_eq!(signer.issuer(), issuing.subject());
    assert!(
        signer.verify_signature(Some(issuing.public_key())).is_ok(),
        "signed by the issuing CA"
    );
    assert_ne!(
        signer.public_key().raw,
        issuing.public_key().raw,
        "the signer has a key of its own"
    );
    // The responder named in the answer is the signer (by the SHA-1 of its
    // key, as openssl computes it for a CertID naming it), not the CA.
    std::fs::write(
        d.join("signer.pem"),
        shomei_pki::to_pem("CERTIFICATE", &signer_der),
    )
    .unwrap();
    let key_hash = |issuer: &str| {
        let out = Command::new("openssl")
            .args(["ocsp", "-issuer", issuer, "-serial", "0x01", "-no_nonce"])
            .args(["-req_text", "-reqout", "/dev/null"])
            .current_dir(d)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("Issuer Key Hash: ")
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| panic!("{text}"))
    };
    let responder = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Responder Id: "))
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(responder, key_hash("signer.pem"), "{text}");
    assert_ne!(responder, key_hash("issuing.pem"));
    kit.stop().await;
}

/// The README's `/pki/root-ca.crt` and `/pki/issuing-ca.crt`: on the PKI
/// listener (plain HTTP) and the portal, the CA certificates as the data
/// directory holds them (PEM): the root self-signed, the issuing CA issued
/// and signed by it. A path the listener does not serve is a 404 that says
/// what it serves (the control: the answers are the routes', not a
/// catch-all's).
#[tokio::test]
async fn the_ca_certificates_are_served_as_the_data_directory_holds_them() {
    let kit = Kit::start_with_pki().await;
    let pki = kit.pki_base.clone().unwrap();
    let portal = kit.browser().client;
    let get = async |url: String| {
        let r = if url.starts_with("https://") {
            portal.get(&url).send().await.unwrap()
        } else {
            reqwest::get(&url).await.unwrap()
        };
        let status = r.status().as_u16();
        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
        (status, ct, r.text().await.unwrap())
    };
    for base in [pki.clone(), kit.base.clone()] {
        let mut certs = Vec::new();
        for name in ["root-ca.crt", "issuing-ca.crt"] {
            let (status, ct, pem) = get(format!("{base}/pki/{name}")).await;
            assert_eq!(
                (status, ct.as_str()),
                (200, "application/x-pem-file"),
                "{base} {name}"
            );
            let file = std::fs::read(kit.dir.path().join("ca").join(name)).unwrap();
            let (_, file) = x509_parser::pem::parse_x509_pem(&file).unwrap();
            let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
            assert_eq!(p.contents, file.contents, "{base} {name}");
            certs.push(p.contents);
        }
        let (_, root) = x509_parser::parse_x509_certificate(&certs[0]).unwrap();
        let (_, issuing) = x509_parser::parse_x509_certificate(&certs[1]).unwrap();
        assert_eq!(root.issuer(), root.subject());
        assert!(root.verify_signature(None).is_ok(), "self-signed");
        assert_eq!(issuing.issuer(), root.subject());
        assert!(issuing.verify_signature(Some(root.public_key())).is_ok());
        assert_eq!(
            certs[1].as_slice(),
            kit.svc.ca().issuing_der().as_ref(),
            "the CA the server signs with"
        );
    }
    let (status, _, body) = get(format!("{pki}/pki/ca.crt")).await;
    assert_eq!(status, 404);
    assert!(body.contains("/pki/ocsp and the CA certificates"), "{body}");
    kit.stop().await;
}

/// `ocsp_presigned_max` bounds the pre-signed answers kept: at the cap, a
/// certificate issued is not kept (counted as refused), its questions are
/// signed for each request and still answer good, and its revocation is
/// answered revoked on the very next question; the one kept below the cap
/// is served pre-signed beside it (the control).
#[tokio::test]
async fn the_presigned_answers_stop_at_their_cap_and_answers_stay_right() {
    let kit = Kit::start_with(shomei_service::Settings {
        ocsp_presigned_max: 1,
        ..Default::default()
    })
    .await;
    let sample = |kit: &Kit, name| crate::metrics::sample(&kit.svc.metrics_text(None), name);
    let issuer = shomei_pki::ocsp::IssuerHashes::of(kit.svc.ca().issuing_der()).unwrap();
    let request_for = |cert: &[u8]| {
        let (_, parsed) = x509_parser::parse_x509_certificate(cert).unwrap();
        let serial = shomei_core::Serial::from_bytes(parsed.raw_serial()).unwrap();
        issuer.request(serial.as_bytes())
    };
    assert_eq!(sample(&kit, "shomei_ocsp_presigned_responses"), 0.0);
    let refused = sample(&kit, "shomei_ocsp_presigned_refused_total");

    // Below the cap: kept.
    let (_, csr) = key_and_csr(&PKCS_ECDSA_P256_SHA256);
    let jirodt = simpleenroll(&kit, "jirodt", LOGIN_PW, &csr)
        .await
        .certs()
        .remove(0);
    assert_eq!(sample(&kit, "shomei_ocsp_presigned_responses"), 1.0);
    // At the cap: not kept, counted.
    let (_, csr) = key_and_csr(&PKCS_ECDSA_P256_SHA256);
    let sachikodt = simpleenroll(&kit, "sachikodt", LOGIN_PW, &csr)
        .await
        .certs()
        .remove(0);
    assert_eq!(sample(&kit, "shomei_ocsp_presigned_responses"), 1.0);
    assert_eq!(
        sample(&kit, "shomei_ocsp_presigned_refused_total"),
        refused + 1.0,
        "the second certificate's answer is not kept"
    );

    let kept = request_for(&jirodt);
    let beyond = request_for(&sachikodt);
    let hits = ocsp_hits(&kit);
    for _ in 0..2 {
        let good = kit.svc.ocsp(&beyond).await;
        assert!(
            good.windows(4).any(|w| w == [0x80, 0x00, 0x18, 0x0f]),
            "good"
        );
    }
    assert_eq!(ocsp_hits(&kit), hits, "signed for each request");
    let good = kit.svc.ocsp(&kept).await;
    assert!(
        good.windows(4).any(|w| w == [0x80, 0x00, 0x18, 0x0f]),
        "good"
    );
    assert_eq!(
        ocsp_hits(&kit),
        hits + 1.0,
        "the kept one served pre-signed"
    );
    assert_eq!(sample(&kit, "shomei_ocsp_presigned_responses"), 1.0);

    revoke(&kit, "sachikodt").await;
    let revoked = kit.svc.ocsp(&beyond).await;
    assert!(
        revoked
            .windows(4)
            .any(|w| w[0] == 0xa1 && w[2..] == [0x18, 0x0f]),
        "revoked on the very next question"
    );
    assert!(
        !revoked.windows(4).any(|w| w == [0x80, 0x00, 0x18, 0x0f]),
        "no longer good"
    );
    assert_eq!(sample(&kit, "shomei_ocsp_presigned_responses"), 1.0);
    kit.stop().await;
}

/// `bytes` sent to the listener at `base` (http://host:port) in one write,
/// and everything it answers until it closes the connection.
async fn exchange(base: &str, bytes: &[u8]) -> Vec<u8> {
    let addr = base
        .trim_start_matches("http://")
        .replace("localhost", "127.0.0.1");
    send_and_read(tokio::net::TcpStream::connect(addr).await.unwrap(), bytes).await
}

/// `bytes` sent on `s` in one write, and everything answered until the
/// listener closes the connection.
async fn send_and_read(mut s: tokio::net::TcpStream, bytes: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    out
}

fn ocsp_post(request: &[u8], connection: &str) -> Vec<u8> {
    let mut r = format!(
        "POST /pki/ocsp HTTP/1.1\r\nHost: pki\r\nContent-Type: application/ocsp-request\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n",
        request.len()
    )
    .into_bytes();
    r.extend_from_slice(request);
    r
}

/// The answers in `bytes`, one after the other: each one's status line,
/// its headers (names lowercased, sorted, without `date` and `connection`)
/// and its body.
fn answers(mut bytes: &[u8]) -> Vec<(String, Vec<String>, Vec<u8>)> {
    let mut all = Vec::new();
    while !bytes.is_empty() {
        let end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a whole head");
        let head = String::from_utf8(bytes[..end].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().to_owned();
        let mut headers: Vec<String> = lines
            .map(|l| {
                let (k, v) = l.split_once(':').unwrap();
                format!("{}: {}", k.to_ascii_lowercase(), v.trim())
            })
            .filter(|h| !h.starts_with("date: ") && !h.starts_with("connection: "))
            .collect();
        headers.sort();
        let len: usize = headers
            .iter()
            .find_map(|h| h.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        all.push((status, headers, bytes[end + 4..end + 4 + len].to_vec()));
        bytes = &bytes[end + 4 + len..];
    }
    all
}

#[tokio::test]
async fn a_one_shot_post_is_answered_in_the_accept_loop_as_the_http_server_answers_it() {
    let kit = Kit::start_with_pki().await;
    let pki = kit.pki_base.clone().unwrap();
    let (cert, _dir) = jirodt_enrolled(&kit).await;
    let (_, parsed) = x509_parser::parse_x509_certificate(&cert).unwrap();
    let serial = shomei_core::Serial::from_bytes(parsed.raw_serial()).unwrap();
    let issuer = shomei_pki::ocsp::IssuerHashes::of(kit.svc.ca().issuing_der()).unwrap();
    let request = issuer.request(serial.as_bytes());
    let quick = |kit: &Kit| {
        crate::metrics::sample(
            &kit.svc.metrics_text(None),
            "shomei_pki_quick_answers_total",
        )
    };

    // Connect, POST, close: answered by the accept loop.
    let q0 = quick(&kit);
    let one = exchange(&pki, &ocsp_post(&request, "close")).await;
    assert_eq!(quick(&kit), q0 + 1.0, "a quick answer");
    assert!(
        String::from_utf8_lossy(&one).contains("\r\nconnection: close\r\n"),
        "{}",
        String::from_utf8_lossy(&one)
    );
    let one = answers(&one);
    assert_eq!(one.len(), 1);
    let (status, headers, good) = &one[0];
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        good.windows(4).any(|w| w == [0x80, 0x00, 0x18, 0x0f]),
        "good"
    );
    assert_eq!(
        good,
        &kit.svc.ocsp(&request).await.to_vec(),
        "the pre-signed answer"
    );

    // The control: two requests on one connection (keep-alive, then close)
    // go to the HTTP server, which gives both the same answer, headers and
    // all.
    let both = [
        ocsp_post(&request, "keep-alive"),
        ocsp_post(&request, "close"),
    ]
    .concat();
    let served = answers(&exchange(&pki, &both).await);
    assert_eq!(quick(&kit), q0 + 1.0, "the HTTP server answered these");
    assert_eq!(served.len(), 2);
    for (s, h, b) in &served {
        assert_eq!((s, h, b), (status, headers, good));
    }

    // A request whose body comes after its head (two segments): answered
    // the same, whichever way.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = pki
            .trim_start_matches("http://")
            .replace("localhost", "127.0.0.1");
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.set_nodelay(true).unwrap();
        let whole = ocsp_post(&request, "close");
        let (head, body) = whole.split_at(whole.len() - request.len());
        s.write_all(head).await.unwrap();
        s.flush().await.unwrap();
        tokio::task::yield_now().await;
        s.write_all(body).await.unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        assert_eq!(answers(&out), one);
    }

    // A request that comes a while after its connection: the kernel holds
    // the connection back from the accept thread until it comes
    // (TCP_DEFER_ACCEPT), so it is still a quick answer, the same one.
    let addr = pki
        .trim_start_matches("http://")
        .replace("localhost", "127.0.0.1");
    let open = |kit: &Kit| {
        crate::metrics::sample(
            &kit.svc.metrics_text(None),
            "shomei_connections_open{listener=\"pki\"}",
        )
    };
    for wait in [0, 120] {
        let s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
        let q = quick(&kit);
        let out = send_and_read(s, &ocsp_post(&request, "close")).await;
        assert_eq!(answers(&out), one, "after {wait} ms");
        assert_eq!(quick(&kit), q + 1.0, "after {wait} ms: a quick answer");
    }
    // A client silent past the deferral (a second): handed over all the
    // same, to the HTTP server's task, which still gives the quick answer
    // once the request comes.
    {
        let s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        assert_eq!(open(&kit), 0.0, "held back while the client is silent");
        assert!(
            crate::testkit::eventually(|| open(&kit) == 1.0).await,
            "the silent connection handed over"
        );
        let q = quick(&kit);
        let out = send_and_read(s, &ocsp_post(&request, "close")).await;
        assert_eq!(answers(&out), one, "after the deferral");
        assert_eq!(quick(&kit), q + 1.0, "after the deferral: a quick answer");
    }

    // A revocation: the very next quick answer says revoked.
    revoke(&kit, "jirodt").await;
    let q1 = quick(&kit);
    let after = answers(&exchange(&pki, &ocsp_post(&request, "close")).await);
    assert_eq!(quick(&kit), q1 + 1.0, "a quick answer");
    let revoked = &after[0].2;
    assert!(
        revoked
            .windows(4)
            .any(|w| w[0] == 0xa1 && w[2..] == [0x18, 0x0f]),
        "revoked"
    );
    // certStatus good ([0] NULL) followed by thisUpdate, not two octets
    // that a signature may hold by chance.
    assert!(
        !revoked.windows(4).any(|w| w == [0x80, 0x00, 0x18, 0x0f]),
        "no longer good"
    );

    // Junk where a request should be: the HTTP server's 400, no quick answer.
    let junk = exchange(&pki, b"\x16\x03\x01\x00\xa5junk\r\n\r\n").await;
    assert!(
        String::from_utf8_lossy(&junk).starts_with("HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&junk)
    );
    assert_eq!(quick(&kit), q1 + 1.0);
    kit.stop().await;
}
