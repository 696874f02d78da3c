//! The app's file formats checked with the real tools: OpenSSL reads our
//! PKCS#12 files, and every key type makes a request OpenSSL verifies.

use std::process::Command;

use super::*;
use crate::enroll::{csr, generate};
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
