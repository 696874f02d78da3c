//! A restart reads the revocation set from its snapshot in the data
//! directory and the revocation log after it, never a stale set: a
//! certificate revoked while the server was down is refused on the first
//! handshake after the start, whether the snapshot was taken or (pruned
//! log, a changed file) the whole set was read from the database. The
//! CRLs of the scopes nothing was revoked into are served again from the
//! copies kept at the stop (the same octets, nothing signed); the revoked
//! certificate's scope, and one whose kept copy was changed, are signed
//! anew.

use std::collections::BTreeMap;
use std::sync::Arc;

use shomei_core::{CrlScope, LoginId, RevocationReason, Serial};
use shomei_service::Shomei;
use x509_parser::prelude::*;

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
    /// The snapshot as written, but one octet of a kept CRL copy (of a
    /// scope nothing was revoked into) changed.
    CrlCopyChanged,
}

/// Every published scope's full and delta CRL.
fn crls(svc: &Shomei) -> BTreeMap<CrlScope, (u64, Vec<u8>, Vec<u8>)> {
    svc.crl_scopes()
        .into_iter()
        .map(|s| {
            let full = svc.crl_of(s).unwrap();
            let delta = svc.delta_crl_of(s).unwrap();
            (s, (full.number, full.der.to_vec(), delta.der.to_vec()))
        })
        .collect()
}

fn serial_of(der: &[u8]) -> Serial {
    let (_, c) = parse_x509_certificate(der).unwrap();
    Serial::from_bytes(c.raw_serial()).unwrap()
}

fn listed(crl: &[u8]) -> Vec<Serial> {
    let (_, c) = parse_x509_crl(crl).unwrap();
    c.iter_revoked_certificates()
        .map(|r| Serial::from_bytes(r.raw_serial()).unwrap())
        .collect()
}

/// The scope whose CRL names `serial`'s certificate.
async fn scope_of(svc: &Shomei, serial: &Serial) -> CrlScope {
    let naming = svc.crl_naming(serial).await.unwrap().unwrap();
    svc.crl_scopes()
        .into_iter()
        .find(|s| svc.crl_of(*s).unwrap().etag == naming.etag)
        .unwrap()
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
    let (z, _) = enrolled(&kit, "ichirodt").await;
    kit.crl_caught_up().await;
    let svc = kit.svc.clone();
    let x_scope = scope_of(&svc, &serial_of(&x)).await;
    let z_scope = scope_of(&svc, &serial_of(&z)).await;
    let before = crls(&svc);
    // A scope nothing is revoked into, for the changed copy.
    let other = *before
        .keys()
        .find(|s| **s != x_scope && **s != z_scope)
        .expect("more than two CRL scopes");
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
                .prune_revocation_log(op.now() + ::time::Duration::hours(2))
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
        Case::CrlCopyChanged => {
            let copy = dir
                .join("newest-crls")
                .join(format!("{}.der", other.label()));
            let mut b = std::fs::read(&copy).unwrap();
            assert_eq!(b, before[&other].1, "the stop kept the served CRL");
            let at = b.len() / 2;
            b[at] ^= 0x01;
            std::fs::write(&copy, b).unwrap();
        }
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
        matches!(case, Case::Fresh | Case::CrlCopyChanged),
        "{case:?}: where the set came from"
    );
    // The revoked certificates' scopes are signed anew and list them; the
    // changed copy's scope is signed anew; every other scope's CRLs are
    // the kept copies, octet for octet.
    let after = crls(&svc);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    let mut resigned = vec![x_scope];
    if matches!(case, Case::LogPruned) {
        resigned.push(z_scope);
    }
    if matches!(case, Case::CrlCopyChanged) {
        resigned.push(other);
    }
    for (scope, (number, full, delta)) in &after {
        let (was, was_full, was_delta) = &before[scope];
        if resigned.contains(scope) {
            assert!(number > was, "{case:?}: {scope} signed anew");
            assert_ne!(full, was_full, "{case:?}: {scope}");
        } else {
            assert_eq!(
                (number, full, delta),
                (was, was_full, was_delta),
                "{case:?}: {scope} served from its kept copies"
            );
        }
    }
    assert!(
        listed(&after[&x_scope].1).contains(&serial_of(&x)),
        "{case:?}"
    );
    if matches!(case, Case::LogPruned) {
        assert!(
            listed(&after[&z_scope].1).contains(&serial_of(&z)),
            "{case:?}"
        );
    }
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

#[tokio::test]
async fn a_changed_crl_copy_is_signed_anew_and_the_others_are_served_as_kept() {
    restart_after_a_revocation_while_down(Case::CrlCopyChanged).await;
}
