//! The app's file formats checked with the real tools: OpenSSL reads our
//! PKCS#12 files, and every key type makes a request OpenSSL verifies; and
//! the command line and the window against the real server, one path.

use std::process::Command;

use super::*;
use crate::bank::Bank;
use crate::enroll::{csr, generate, pem};
use crate::fail::write_atomic;
use rcgen::{CertificateParams, DnType, KeyPair};

fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn self_signed(key: &KeyPair) -> Vec<u8> {
    let mut p = CertificateParams::new(vec![]).unwrap();
    p.distinguished_name.push(DnType::CommonName, "taro01");
    p.self_signed(key).unwrap().der().to_vec()
}

#[test]
fn openssl_reads_our_pkcs12_and_the_key_matches_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = generate(KeyType::P256).unwrap();
    let cert = self_signed(&key);
    let ca = self_signed(&generate(KeyType::P256).unwrap());
    // A low iteration count keeps the test fast; the format is the same.
    let bytes = shomei_pki::pkcs12::write_with(
        &key.serialize_der(),
        &cert,
        &[ca],
        "Shomei taro01",
        "pässword",
        1000,
    )
    .unwrap();
    std::fs::write(d.join("a.p12"), &bytes).unwrap();
    let (ok, info) = openssl(
        d,
        &[
            "pkcs12",
            "-in",
            "a.p12",
            "-info",
            "-noout",
            "-passin",
            "pass:pässword",
        ],
    );
    assert!(ok, "{info}");
    assert!(
        info.contains("PBES2") && info.contains("AES-256-CBC"),
        "{info}"
    );
    assert!(info.contains("sha256"), "MAC: {info}");
    let (ok, out) = openssl(
        d,
        &[
            "pkcs12",
            "-in",
            "a.p12",
            "-nodes",
            "-passin",
            "pass:pässword",
            "-out",
            "all.pem",
        ],
    );
    assert!(ok, "{out}");
    let (_, from_key) = openssl(d, &["pkey", "-in", "all.pem", "-pubout"]);
    let (_, from_cert) = openssl(d, &["x509", "-in", "all.pem", "-noout", "-pubkey"]);
    assert_eq!(from_key, from_cert);
    let (ok, out) = openssl(
        d,
        &[
            "pkcs12",
            "-in",
            "a.p12",
            "-info",
            "-noout",
            "-passin",
            "pass:wrong",
        ],
    );
    assert!(
        !ok && out.contains("Mac verify error: invalid password?"),
        "a wrong password is refused by the MAC: {out}"
    );

    let back = shomei_pki::pkcs12::read(&bytes, "pässword").unwrap();
    assert_eq!(back.key_pkcs8, key.serialize_der());
    assert!(!back.legacy);
    assert_eq!(back.cert, cert);
    assert_eq!(back.chain.len(), 1);
    assert!(matches!(
        shomei_pki::pkcs12::read(&bytes, "wrong"),
        Err(shomei_pki::pkcs12::P12Error::WrongPassword)
    ));
}

#[test]
fn we_read_what_openssl_writes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = generate(KeyType::P256).unwrap();
    std::fs::write(d.join("k.pem"), key.serialize_pem()).unwrap();
    std::fs::write(d.join("c.pem"), pem("CERTIFICATE", &self_signed(&key))).unwrap();
    let (ok, out) = openssl(
        d,
        &[
            "pkcs12", "-export", "-inkey", "k.pem", "-in", "c.pem", "-out", "o.p12", "-passout",
            "pass:abc", "-certpbe", "NONE",
        ],
    );
    assert!(ok, "{out}");
    let back = shomei_pki::pkcs12::read(&std::fs::read(d.join("o.p12")).unwrap(), "abc").unwrap();
    assert_eq!(back.key_pkcs8.len(), key.serialize_der().len());
}

/// The legacy form (--legacy-p12) for Windows before 10 1709 and Server
/// 2016: OpenSSL 3 reads it as PBE-SHA1-3DES with a SHA-1 MAC, and we read
/// back what OpenSSL writes in that form.
#[test]
fn the_legacy_form_is_what_openssl_calls_3des_with_a_sha1_mac_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = generate(KeyType::P256).unwrap();
    let cert = self_signed(&key);
    let bytes = shomei_pki::pkcs12::write_legacy(
        &key.serialize_der(),
        &cert,
        &[],
        "Shomei taro01",
        "pässword",
    )
    .unwrap();
    std::fs::write(d.join("l.p12"), &bytes).unwrap();
    let (ok, info) = openssl(
        d,
        &[
            "pkcs12",
            "-in",
            "l.p12",
            "-info",
            "-noout",
            "-passin",
            "pass:pässword",
        ],
    );
    assert!(ok, "{info}");
    assert!(info.contains("pbeWithSHA1And3-KeyTripleDES-CBC"), "{info}");
    assert!(info.contains("MAC: sha1"), "{info}");
    let (ok, out) = openssl(
        d,
        &[
            "pkcs12",
            "-in",
            "l.p12",
            "-nodes",
            "-passin",
            "pass:pässword",
            "-out",
            "l.pem",
        ],
    );
    assert!(ok, "{out}");
    let (_, from_key) = openssl(d, &["pkey", "-in", "l.pem", "-pubout"]);
    let (_, from_cert) = openssl(d, &["x509", "-in", "l.pem", "-noout", "-pubkey"]);
    assert_eq!(from_key, from_cert);
    let back = shomei_pki::pkcs12::read(&bytes, "pässword").unwrap();
    assert_eq!(back.key_pkcs8, key.serialize_der());
    assert!(back.legacy, "a renewal keeps the form");
    assert!(matches!(
        shomei_pki::pkcs12::read(&bytes, "wrong"),
        Err(shomei_pki::pkcs12::P12Error::WrongPassword)
    ));

    // OpenSSL's own 3DES + SHA-1 file (certificates unencrypted, as ours).
    std::fs::write(d.join("k.pem"), key.serialize_pem()).unwrap();
    std::fs::write(d.join("c.pem"), pem("CERTIFICATE", &cert)).unwrap();
    let (ok, out) = openssl(
        d,
        &[
            "pkcs12",
            "-export",
            "-inkey",
            "k.pem",
            "-in",
            "c.pem",
            "-out",
            "o.p12",
            "-passout",
            "pass:abc",
            "-certpbe",
            "NONE",
            "-keypbe",
            "PBE-SHA1-3DES",
            "-macalg",
            "sha1",
        ],
    );
    assert!(ok, "{out}");
    let back = shomei_pki::pkcs12::read(&std::fs::read(d.join("o.p12")).unwrap(), "abc").unwrap();
    assert_eq!(back.key_pkcs8.len(), key.serialize_der().len());
}

#[test]
fn every_key_type_makes_a_request_openssl_verifies() {
    let dir = tempfile::tempdir().unwrap();
    // RSA 4096 is slow to generate and adds nothing the others do not cover.
    for kind in [
        KeyType::P256,
        KeyType::P384,
        KeyType::Rsa2048,
        KeyType::Rsa3072,
    ] {
        let key = generate(kind).unwrap();
        let der = csr(&key, "taro01").unwrap();
        std::fs::write(dir.path().join("r.der"), &der).unwrap();
        let (ok, out) = openssl(
            dir.path(),
            &[
                "req", "-inform", "DER", "-in", "r.der", "-verify", "-noout", "-subject",
            ],
        );
        assert!(ok && out.contains("taro01"), "{kind:?}: {out}");
    }
}

#[test]
/// `issue` refuses an existing file unless --force before it asks the
/// server for anything (the end-to-end suite writes twice to one path);
/// here: a file, new or replaced (--force, renew), is written whole, 0600.
fn files_are_written_whole_and_replaced_whole() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.p12");
    write_atomic(&p, b"one").unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"one");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o600
    );
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    write_atomic(&p, b"two, longer than one").unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"two, longer than one");
    assert_eq!(
        std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o600,
        "a replaced file is the new one, not the old one rewritten"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
    assert!(write_atomic(&dir.path().join("no/such/dir/x.p12"), b"x").is_err());
}

#[test]
fn a_link_opens_the_window_and_nothing_else() {
    assert!(check_link("shomei-cert://issue").is_ok());
    assert!(check_link("shomei-cert:issue?server=https%3A%2F%2Fevil").is_ok());
    for bad in ["https://evil", "file:///etc/passwd", ""] {
        assert!(matches!(check_link(bad), Err(Fail::Usage(_))), "{bad}");
    }
    assert!(check_link(&format!("shomei-cert:{}", "a".repeat(5000))).is_err());
}

/// The real portal in this process, on free loopback ports, with the demo
/// users and a clock the test moves; the app reaches it as the bank of
/// `target`, trusting the root certificate it made.
struct Server {
    clock: Arc<shomei_service::ManualClock>,
    target: enroll::Target,
    demo: Vec<shomei_service::DemoUser>,
    running: Option<shomei_web::RunningServer>,
    // Its tasks run here while the app blocks on runtimes of its own.
    rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(shomei_service::ManualClock::default());
        let (running, target, demo) = rt.block_on(async {
            let bind = || shomei_web::bind("127.0.0.1:0".parse().unwrap());
            let (portal, cert) = (bind().await.unwrap(), bind().await.unwrap());
            let addr = portal.local_addr().unwrap();
            let server = format!("https://localhost:{}", addr.port());
            let cert_server = format!("https://localhost:{}", cert.local_addr().unwrap().port());
            let settings = shomei_service::Settings::default();
            let svc = shomei_service::Shomei::open(dir.path(), &server, settings, clock.clone())
                .await
                .unwrap();
            let demo = svc.seed_demo().await.unwrap();
            let root_pem = std::fs::read(svc.ca().root_cert_path()).unwrap();
            let running = shomei_web::start_all(
                Arc::new(svc),
                portal,
                shomei_web::Listeners {
                    cert: Some(cert),
                    ..Default::default()
                },
                shomei_web::ServerOptions {
                    listen: addr,
                    extra_names: vec![],
                    cert_public_url: Some(cert_server.clone()),
                },
            )
            .await
            .unwrap();
            let target = enroll::Target {
                bank: "Shomei".into(),
                server,
                cert_server,
                root_pem,
            };
            (running, target, demo)
        });
        Server {
            clock,
            target,
            demo,
            running: Some(running),
            rt,
            _dir: dir,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            self.rt.block_on(r.shutdown());
        }
    }
}

/// Issue 23's bug: `issue` wrote only Chromium's database, under another
/// name, and kept no key, so the window could not renew what the command
/// line issued. Now both go one way (`RealBank`): a certificate issued by
/// `issue --import-nss` is in the window's stores under the window's name,
/// its key kept, and the window renews it once it is 更新可. The control:
/// a certificate put in NSS the old way (no key kept) is refused by the
/// window with what to do, the specific message.
#[test]
fn a_certificate_issued_on_the_command_line_is_renewed_by_the_window() {
    let server = Server::start();
    let home = tempfile::tempdir().unwrap();
    let keep = || keep::Keep::new(home.path().join("renewal"));
    let nss = store::Nss::new(home.path().join(".pki/nssdb"), "Chromium");
    let nicknames = || -> Vec<String> {
        nss.list()
            .unwrap()
            .into_iter()
            .map(|c| c.nickname)
            .collect()
    };
    let file = store::P12File::new(
        home.path().join("jirodt.p12"),
        "Pkcs12#Secret".into(),
        false,
    );
    // What `issue --import-nss` makes of its flags, for this HOME.
    let cli = bank::RealBank {
        stores: cli_stores(file.clone(), Some(store::stores_under(home.path()))),
        target: server.target.clone(),
        keep: keep(),
    };
    issue_into(&cli, "jirodt", "Shomei#Demo1", KeyType::P256, &file).unwrap();
    let p12 = std::fs::read(home.path().join("jirodt.p12")).unwrap();
    let p12 = shomei_pki::pkcs12::read(&p12, "Pkcs12#Secret").unwrap();
    let issued = enroll::info(&p12.cert).unwrap();
    assert_eq!(issued.cn, "jirodt");
    assert_eq!(nicknames(), [bank::nickname(&issued)]);
    let kept = keep()
        .get(&issued.serial_hex)
        .expect("the key is kept for renewal");
    assert_eq!((kept.key_pkcs8, kept.cert), (p12.key_pkcs8, p12.cert));

    // The old way, beside it: the demo's tarodt (更新可) in NSS, no key kept.
    let (key, cert) = server
        .demo
        .iter()
        .find(|u| u.login_id == "tarodt")
        .and_then(|u| u.key_and_cert.clone())
        .unwrap();
    nss.add(&key, &cert, &[], "Shomei tarodt", &server.target.root_pem)
        .unwrap();
    let tarodt = enroll::info(&cert).unwrap();

    // The window: this user's stores and keeping, nothing of the command line's.
    let window = bank::RealBank {
        stores: store::stores_under(home.path()),
        target: server.target.clone(),
        keep: keep(),
    };
    let e = window.renew(&tarodt.serial_hex, &mut |_| {}).unwrap_err();
    assert_eq!(e.message(), text::NOT_KEPT);

    server.clock.advance(time::Duration::days(330));
    let found = window.survey().unwrap();
    let jirodt = found.iter().find(|f| f.login_id == "jirodt").unwrap();
    assert_eq!(
        (
            jirodt.serial_hex.as_str(),
            jirodt.state.as_str(),
            jirodt.renewable
        ),
        (issued.serial_hex.as_str(), "更新可", true),
        "the window offers 証明書更新"
    );
    let mut steps = Vec::new();
    let outcome = window
        .renew(&issued.serial_hex, &mut |s| steps.push(s))
        .unwrap();
    assert_eq!(steps, bank::Step::ALL);
    assert_eq!(
        (outcome.login_id.as_str(), outcome.state.as_str()),
        ("jirodt", "発行済")
    );
    assert!(
        outcome
            .removed
            .iter()
            .any(|r| r.contains("旧証明書") && r.contains(&issued.serial_hex)),
        "{:?}",
        outcome.removed
    );
    let renewed: Vec<_> = nss
        .list()
        .unwrap()
        .into_iter()
        .filter_map(|c| enroll::info(&c.der).ok().map(|i| (c.nickname, i)))
        .filter(|(_, i)| i.cn == "jirodt")
        .collect();
    assert_eq!(renewed.len(), 1, "only the new certificate stays");
    let (name, new) = &renewed[0];
    assert_ne!(new.serial_hex, issued.serial_hex);
    assert_eq!(*name, bank::nickname(new));
    assert!(keep().get(&new.serial_hex).is_some(), "the new key is kept");
    assert!(
        keep().get(&issued.serial_hex).is_none(),
        "the old one forgotten"
    );
}
