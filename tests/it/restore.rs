//! A restore never un-revokes: a server keeps its newest CRL in its data
//! directory, and started on a database restored from an older backup it
//! re-imports the revocations the database is missing before serving — the
//! certificate stays refused by TLS, OCSP and the CRL — and CRL numbers go on
//! upward.

use std::sync::Arc;

use shomei_pki::ocsp::IssuerHashes;

use crate::issuance::{enrolled, identity};
use crate::testkit::{CONFIRM_PW, Kit, StoreOf};

fn serial_of(cert: &[u8]) -> Vec<u8> {
    x509_parser::parse_x509_certificate(cert)
        .unwrap()
        .1
        .raw_serial()
        .to_vec()
}

/// The serials a DER CRL lists, and its number.
fn crl_listing(der: &[u8]) -> (u64, Vec<Vec<u8>>) {
    let (_, crl) = x509_parser::parse_x509_crl(der).unwrap();
    let n = u64::try_from(crl.crl_number().unwrap().clone()).unwrap();
    (
        n,
        crl.iter_revoked_certificates()
            .map(|r| r.raw_serial().to_vec())
            .collect(),
    )
}

#[tokio::test]
async fn a_database_restored_from_an_older_backup_keeps_every_revocation() {
    let kit = Kit::start().await;
    let (x, x_key) = enrolled(&kit, "jirodt").await;
    let (y, y_key) = enrolled(&kit, "sachikodt").await;
    kit.crl_caught_up().await;
    // The backup: SQLite's own copy, or pg_dump (as the README says).
    let url = kit.svc.settings().database_url.clone();
    let backup = kit.dir.path().join("backup.db");
    match &url {
        None => kit.svc.store().backup_into(&backup).await.unwrap(),
        Some(u) => {
            let out = std::process::Command::new("pg_dump")
                .args(["--no-owner", "-f"])
                .arg(&backup)
                .arg(u.with_password())
                .output()
                .expect("pg_dump (PostgreSQL's client tools)");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    // After the backup, jirodt (マスター) revokes his own certificate.
    let b = kit.browser();
    b.to_brsk019(&kit, "jirodt", "jirodt").await;
    assert!(b.execute(CONFIRM_PW).await.has("BRSK020"));
    kit.crl_caught_up().await;
    let (published, listed) = crl_listing(
        &kit.svc
            .crl_naming(&shomei_core::Serial::from_bytes(&serial_of(&x)).unwrap())
            .await
            .unwrap()
            .unwrap()
            .der,
    );
    assert!(listed.contains(&serial_of(&x)));

    // The database is restored from the backup, and a server starts on it.
    let dir = kit.dir.path().to_owned();
    let base = kit.base.clone();
    let clock = kit.clock.clone();
    let kept = tempfile::tempdir().unwrap();
    let kept_dir = kept.path().join("data");
    // (The kit's temporary directory goes when it stops: a copy to start on.)
    copy_dir(&dir, &kept_dir);
    kit.stop().await;
    let restored = match &url {
        None => {
            for f in ["shomei.db-wal", "shomei.db-shm"] {
                let _ = std::fs::remove_file(kept_dir.join(f));
            }
            std::fs::copy(kept_dir.join("backup.db"), kept_dir.join("shomei.db")).unwrap();
            None
        }
        Some(u) => {
            // A new database from the dump, as an operator restores one.
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos();
            let name = format!("restored_{}_{nanos}", std::process::id());
            let fresh = crate::testkit::create_database(u, &name).await;
            let out = std::process::Command::new("psql")
                .args(["-q", "-v", "ON_ERROR_STOP=1", "-f"])
                .arg(kept_dir.join("backup.db"))
                .arg(fresh.with_password())
                .output()
                .expect("psql (PostgreSQL's client tools)");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            Some(fresh)
        }
    };
    let svc = Arc::new(
        shomei_service::Shomei::open(
            &kept_dir,
            &base,
            shomei_service::Settings {
                database_url: restored,
                ..Default::default()
            },
            clock,
        )
        .await
        .unwrap(),
    );
    let serial = shomei_core::Serial::from_bytes(&serial_of(&x)).unwrap();
    assert!(
        svc.store()
            .cert_by_serial(&serial)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some(),
        "re-imported into the restored database"
    );
    // OCSP: revoked.
    let issuer = IssuerHashes::of(svc.ca().issuing_der()).unwrap();
    let answer = svc.ocsp(&issuer.request(&serial_of(&x))).await;
    let good = svc.ocsp(&issuer.request(&serial_of(&y))).await;
    // certStatus: revoked [1] { revocationTime GeneralizedTime … } or good
    // [0] NULL, each followed by a 15-character GeneralizedTime.
    let revoked = |a: &[u8]| a.windows(4).any(|w| w[0] == 0xa1 && w[2..] == [0x18, 0x0f]);
    let is_good = |a: &[u8]| a.windows(4).any(|w| w == [0x80, 0x00, 0x18, 0x0f]);
    // (The answers' octets when they fail: certStatus is told by four
    // octets, which a signature may hold by chance.)
    assert!(
        revoked(&answer) && !is_good(&answer),
        "X is revoked: {:02x?}",
        &answer[..]
    );
    assert!(
        is_good(&good) && !revoked(&good),
        "Y is good (the control): {:02x?}",
        &good[..]
    );
    // The CRL lists it, under a higher number.
    let (number, listed) = crl_listing(
        &svc.crl_naming(&shomei_core::Serial::from_bytes(&serial_of(&x)).unwrap())
            .await
            .unwrap()
            .unwrap()
            .der,
    );
    assert!(number > published, "{number} after {published}");
    assert!(listed.contains(&serial_of(&x)));
    assert!(!listed.contains(&serial_of(&y)));
    // TLS: X refused, Y (the positive control) served, by the same listener.
    let cert = shomei_web::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let portal = shomei_web::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let cert_port = cert.local_addr().unwrap().port();
    let portal_addr = portal.local_addr().unwrap();
    let server = shomei_web::start_with(
        svc.clone(),
        portal,
        Some(cert),
        shomei_web::ServerOptions {
            listen: portal_addr,
            extra_names: vec![],
            cert_public_url: None,
        },
    )
    .await
    .unwrap();
    let url = format!("https://localhost:{cert_port}/cert-login");
    let kit_like = KitView { svc: svc.clone() };
    let ok = kit_like
        .client(&y, &y_key)
        .get(&url)
        .send()
        .await
        .expect("the valid certificate is served");
    assert_eq!(ok.status().as_u16(), 200);
    let refused = kit_like.client(&x, &x_key).get(&url).send().await;
    let err = format!(
        "{:?}",
        refused.expect_err("the revoked certificate is refused")
    );
    assert!(
        err.contains("CertificateRevoked") || err.contains("certificate revoked"),
        "{err}"
    );
    server.shutdown().await;
}

/// Just enough of a kit to build clients against another server.
struct KitView {
    svc: Arc<shomei_service::Shomei>,
}

impl KitView {
    fn client(&self, cert: &[u8], key: &rcgen::KeyPair) -> reqwest::Client {
        let root = reqwest::Certificate::from_pem(self.svc.ca().root_pem().as_bytes()).unwrap();
        reqwest::Client::builder()
            .tls_certs_only([root])
            .identity(identity(cert, key))
            .build()
            .unwrap()
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else if let Err(err) = std::fs::copy(e.path(), target) {
            // The live database's -wal/-shm may go while we copy.
            assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
        }
    }
}

/// README: `shomei backup` copies a SQLite database and refuses a
/// PostgreSQL one (with what to do instead), writing nothing. The control:
/// the same data directory without the URL is backed up and checked.
#[tokio::test]
async fn backup_refuses_a_postgresql_database_and_writes_nothing() {
    let kit = Kit::start().await;
    let dir = kit.dir.path();
    let pg = shomei_service::Settings {
        database_url: Some(
            shomei_service::DatabaseUrl::parse("postgres://shomei:secret@127.0.0.1:1/shomei")
                .unwrap(),
        ),
        ..kit.svc.settings().clone()
    };
    let out = kit.dir.path().join("backup-pg");
    let refused = shomei_service::backup(&pg, dir, &out).await;
    assert!(
        matches!(refused, Err(shomei_service::BackupError::Postgres)),
        "{refused:?}"
    );
    assert!(
        refused
            .unwrap_err()
            .to_string()
            .contains("back a PostgreSQL database up with pg_dump"),
    );
    assert!(!out.exists(), "nothing written");
    let sqlite = shomei_service::Settings {
        database_url: None,
        ..kit.svc.settings().clone()
    };
    let out = kit.dir.path().join("backup-sqlite");
    let done = shomei_service::backup(&sqlite, dir, &out).await.unwrap();
    assert!(done.manifest.contains("shomei.db"), "{}", done.manifest);
    assert!(out.join("shomei.db").is_file() && out.join("ca").is_dir());
    kit.stop().await;
}
