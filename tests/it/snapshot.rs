//! A restart reads the revocation set from its snapshot in the data
//! directory and the revocation log after it, never a stale set: a
//! certificate revoked while the server was down is refused on the first
//! handshake after the start, whether the snapshot was taken or (pruned
//! log, a changed file) the whole set was read from the database.

use std::sync::Arc;

use shomei_core::{LoginId, RevocationReason};

use crate::issuance::{enrolled, identity};
use crate::testkit::{Kit, StoreOf};

#[derive(Debug, Clone, Copy)]
enum Case {
    /// The snapshot and the one log entry after it.
    Fresh,
    /// The log entries after the snapshot were pruned (all but the newest).
    LogPruned,
    /// One octet of the file changed.
    FileChanged,
    /// No snapshot in the data directory.
    NoFile,
}

fn client(svc: &shomei_service::Shomei, cert: &[u8], key: &rcgen::KeyPair) -> reqwest::Client {
    let root = reqwest::Certificate::from_pem(svc.ca().root_pem().as_bytes()).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([root])
        .identity(identity(cert, key))
        .build()
        .unwrap()
}

async fn restart_after_a_revocation_while_down(case: Case) {
    let kit = Kit::start().await;
    let (x, x_key) = enrolled(&kit, "jirodt").await;
    let (y, y_key) = enrolled(&kit, "sachikodt").await;
    let _ = enrolled(&kit, "ichirodt").await;
    kit.crl_caught_up().await;
    let svc = kit.svc.clone();
    let dir = kit.dir.path().to_owned();
    let file = dir.join("revocation-set.snapshot");
    let base = kit.base.clone();
    let clock = kit.clock.clone();
    let database_url = kit.svc.settings().database_url.clone();
    // The graceful stop writes the snapshot with every revocation so far.
    let kept = kit.stop_keeping_data().await;
    assert!(file.exists(), "the stop wrote the snapshot");

    // While it is down, the operator revokes jirodt's certificate (and, for
    // the pruned log, ichirodt's after it).
    let op = shomei_service::Shomei::open_for_operator(
        &dir,
        &base,
        shomei_service::Settings {
            database_url: database_url.clone(),
            ..Default::default()
        },
        clock.clone(),
    )
    .await
    .unwrap();
    for who in ["jirodt", "ichirodt"] {
        op.revoke_by_operator(
            &LoginId::parse(who).unwrap(),
            RevocationReason::KeyCompromise,
            None,
            "operator",
        )
        .await
        .unwrap();
        if !matches!(case, Case::LogPruned) {
            break;
        }
    }
    match case {
        Case::Fresh => {}
        Case::LogPruned => {
            let gone = op
                .store()
                .prune_revocation_log(op.now() + time::Duration::hours(2))
                .await
                .unwrap();
            assert!(gone > 0, "entries after the snapshot were pruned");
        }
        Case::FileChanged => {
            let mut b = std::fs::read(&file).unwrap();
            let at = b.len() / 2;
            b[at] ^= 0x01;
            std::fs::write(&file, b).unwrap();
        }
        Case::NoFile => std::fs::remove_file(&file).unwrap(),
    }
    drop(op);
    drop(svc);

    // The restart.
    let svc = Arc::new(
        shomei_service::Shomei::open(
            &dir,
            &base,
            shomei_service::Settings {
                database_url,
                ..Default::default()
            },
            clock,
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        svc.started_from_revocation_snapshot(),
        matches!(case, Case::Fresh),
        "{case:?}: where the set came from"
    );
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
    // The first handshake of the revoked certificate: refused by its alert.
    let refused = client(&svc, &x, &x_key).get(&url).send().await;
    let err = format!(
        "{:?}",
        refused.expect_err("the certificate revoked while the server was down is refused")
    );
    assert!(
        err.contains("CertificateRevoked") || err.contains("certificate revoked"),
        "{case:?}: {err}"
    );
    // The control: the valid certificate is served by the same listener.
    let ok = client(&svc, &y, &y_key)
        .get(&url)
        .send()
        .await
        .expect("the valid certificate is served");
    assert_eq!(ok.status().as_u16(), 200, "{case:?}");
    server.shutdown().await;
    drop(kept);
}

#[tokio::test]
async fn a_restart_from_the_snapshot_refuses_a_certificate_revoked_while_it_was_down() {
    restart_after_a_revocation_while_down(Case::Fresh).await;
}

#[tokio::test]
async fn a_snapshot_behind_a_pruned_log_is_not_used_and_the_revocation_is_refused() {
    restart_after_a_revocation_while_down(Case::LogPruned).await;
}

#[tokio::test]
async fn a_changed_snapshot_is_not_used_and_the_revocation_is_refused() {
    restart_after_a_revocation_while_down(Case::FileChanged).await;
}

#[tokio::test]
async fn without_a_snapshot_the_set_comes_from_the_database() {
    restart_after_a_revocation_while_down(Case::NoFile).await;
}
