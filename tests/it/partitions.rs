//! Revocation that stays cheap as it grows: partitioned CRLs, each revocation
//! re-signing only its partition; expired certificates leaving the CRLs
//! after one scheduled CRL past their notAfter (RFC 5280 §3.3), still
//! refused; the undivided CRL kept for certificates issued before
//! partitions until the last of them has expired.

use std::collections::BTreeMap;
use std::sync::Arc;

use rcgen::PKCS_ECDSA_P256_SHA256;
use shomei_core::{CrlScope, LoginId, RevocationReason, Serial};
use shomei_pki::ocsp::IssuerHashes;
use shomei_service::{ManualClock, Settings, Shomei};
use x509_parser::prelude::*;

use crate::issuance::{assert_refused, cert_login, enrolled, gets_in, key_and_csr};
use crate::testkit::{Kit, LOGIN_PW, StoreOf};

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

/// OCSP's answer for a serial: revoked ([1] revokedInfo) or good ([0] NULL).
/// A loaded machine may get tryLater for a moment (the revocation view is
/// confirmed by a watch every 250 ms): asked again until it answers, within
/// the kit's ceiling for what the server does in the background.
async fn ocsp_says_revoked(svc: &Shomei, serial: &Serial) -> bool {
    let issuer = IssuerHashes::of(svc.ca().issuing_der()).unwrap();
    let deadline = tokio::time::Instant::now() + crate::testkit::EVENTUALLY;
    loop {
        let a = svc.ocsp(&issuer.request(serial.as_bytes())).await;
        let revoked = a.windows(4).any(|w| w[0] == 0xa1 && w[2..] == [0x18, 0x0f]);
        let good = a.windows(4).any(|w| w == [0x80, 0x00, 0x18, 0x0f]);
        if revoked != good {
            return revoked;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "OCSP gave neither revoked nor good for {serial} within {:?}",
            crate::testkit::EVENTUALLY
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Every published scope and its CRL number.
fn numbers(svc: &Shomei) -> BTreeMap<CrlScope, u64> {
    svc.crl_scopes()
        .into_iter()
        .map(|s| (s, svc.crl_of(s).unwrap().number))
        .collect()
}

/// The bank's operator revokes a user's certificate (key compromise);
/// returns its serial and the CRL it names.
async fn revoke_by_bank(svc: &Shomei, login_id: &str) -> (Serial, CrlScope) {
    let done = svc
        .revoke_by_operator(
            &LoginId::parse(login_id).unwrap(),
            RevocationReason::KeyCompromise,
            None,
            "yamada",
        )
        .await
        .unwrap();
    let scope = svc
        .store()
        .cert_by_serial(&done.serial)
        .await
        .unwrap()
        .unwrap()
        .crl_scope;
    (done.serial, scope)
}

#[tokio::test]
async fn an_expired_revoked_certificate_leaves_after_one_scheduled_crl_and_stays_refused() {
    let kit = Kit::start().await;
    // The control: a current certificate gets in.
    let (good, good_key) = enrolled(&kit, "ichirodt").await;
    gets_in(&kit, &good, &good_key).await;
    // jirodt's certificate, issued a validity and ten days ago (the test
    // clock moved back) and revoked then: by the real clock the handshake
    // reads, it expired ten days ago.
    let back = kit.svc.settings().cert_validity() + ::time::Duration::days(10);
    kit.clock.advance(-back);
    let (old, old_key) = enrolled(&kit, "jirodt").await;
    kit.svc
        .revoke_by_operator(
            &LoginId::parse("jirodt").unwrap(),
            RevocationReason::KeyCompromise,
            None,
            "yamada",
        )
        .await
        .unwrap();
    kit.clock.advance(back);
    kit.crl_caught_up().await;
    let x = serial_of(&old);
    let scope = kit
        .svc
        .store()
        .cert_by_serial(&x)
        .await
        .unwrap()
        .unwrap()
        .crl_scope;
    assert!(kit.svc.is_revoked(x.as_bytes()));
    assert!(listed(&kit.svc.crl_of(scope).unwrap().der).contains(&x));

    // The first scheduled CRL after its notAfter still lists it: the one
    // grace CRL.
    kit.svc.publish_scheduled_crls().await.unwrap();
    let grace = kit.svc.crl_of(scope).unwrap();
    assert!(
        listed(&grace.der).contains(&x),
        "listed on one scheduled CRL"
    );
    // The next scheduled CRL does not, and neither does the set in memory.
    kit.clock.advance(::time::Duration::hours(13));
    kit.svc.refresh_crl_if_due().await.unwrap();
    let after = kit.svc.crl_of(scope).unwrap();
    assert!(after.number > grace.number);
    assert!(!listed(&after.der).contains(&x), "gone from its CRL");
    assert!(!kit.svc.is_revoked(x.as_bytes()), "gone from the set");
    // sachikodt's revoked certificate has not expired: it stays.
    let sachiko = kit.serial_of("sachikodt").await;
    let sachiko_scope = kit
        .svc
        .store()
        .cert_by_serial(&sachiko)
        .await
        .unwrap()
        .unwrap()
        .crl_scope;
    assert!(listed(&kit.svc.crl_of(sachiko_scope).unwrap().der).contains(&sachiko));
    assert!(kit.svc.is_revoked(sachiko.as_bytes()));

    // Still refused everywhere: OCSP answers revoked (from the database,
    // which keeps every row), TLS refuses it as expired, and the record
    // and its 操作履歴 are untouched.
    assert!(ocsp_says_revoked(&kit.svc, &x).await);
    assert!(
        !ocsp_says_revoked(&kit.svc, &serial_of(&good)).await,
        "the control is good"
    );
    assert_refused(
        &cert_login(&kit, Some((&old, &old_key))).await,
        rustls::AlertDescription::CertificateExpired,
        "a revoked certificate that has expired",
    );
    gets_in(&kit, &good, &good_key).await;
    let row = kit.svc.store().cert_by_serial(&x).await.unwrap().unwrap();
    assert!(row.revoked_at.is_some());
    assert!(
        kit.history()
            .await
            .contains(&"銀行:yamada/証明書失効/成功/jirodt".to_string())
    );
    kit.stop().await;
}

/// A server on a data directory, with `partitions` CRL partitions.
async fn open(
    dir: &std::path::Path,
    db: &Option<shomei_service::DatabaseUrl>,
    clock: &Arc<ManualClock>,
    partitions: u16,
) -> Shomei {
    Shomei::open(
        dir,
        "https://localhost:8443",
        Settings {
            database_url: db.clone(),
            crl_partitions: partitions,
            ..Settings::default()
        },
        clock.clone(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn certificates_issued_before_partitions_keep_the_undivided_crl_until_they_expire() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::default());
    let db = crate::testkit::fresh_database().await;
    // Before partitions: every certificate names the undivided CRL.
    let before = open(dir.path(), &db, &clock, 0).await;
    before.seed_demo().await.unwrap();
    assert_eq!(before.crl_scopes(), [CrlScope::Undivided]);
    let sachiko = {
        let s = before.store();
        let u = s
            .user_by_login_id(&LoginId::parse("sachikodt").unwrap())
            .await
            .unwrap()
            .unwrap();
        s.latest_cert(u.id).await.unwrap().unwrap()
    };
    assert_eq!(sachiko.crl_scope, CrlScope::Undivided);
    drop(before);

    // With four partitions: the undivided CRL stays, for them.
    let svc = open(dir.path(), &db, &clock, 4).await;
    let mut want: Vec<CrlScope> = (0..4).map(CrlScope::Partition).collect();
    want.insert(0, CrlScope::Undivided);
    assert_eq!(svc.crl_scopes(), want);
    assert_eq!(
        listed(&svc.crl_of(CrlScope::Undivided).unwrap().der),
        std::slice::from_ref(&sachiko.serial)
    );
    // A new certificate names a partition.
    let (_, csr) = key_and_csr(&PKCS_ECDSA_P256_SHA256);
    let new = svc.enroll("jirodt", LOGIN_PW, &csr, "test").await.unwrap();
    let row = svc
        .store()
        .cert_by_serial(&new.serial)
        .await
        .unwrap()
        .unwrap();
    let CrlScope::Partition(p) = row.crl_scope else {
        panic!("a new certificate names a partition")
    };
    assert!(p < 4);

    // Revoking it re-signs its partition's CRL and delta, and nothing else.
    let numbers_before = numbers(&svc);
    let generations = svc.crl_generations();
    revoke_by_bank(&svc, "jirodt").await;
    svc.publish_crl().await.unwrap();
    assert!(svc.crl_up_to_date());
    assert_eq!(svc.crl_generations(), generations + 1, "one CRL signed");
    let numbers_after = numbers(&svc);
    for (scope, n) in &numbers_after {
        if *scope == row.crl_scope {
            assert!(*n > numbers_before[scope], "{scope} published again");
        } else {
            assert_eq!(*n, numbers_before[scope], "{scope} untouched");
        }
    }
    let part = svc.crl_of(row.crl_scope).unwrap();
    assert_eq!(listed(&part.der), std::slice::from_ref(&new.serial));
    assert_eq!(
        listed(&svc.delta_crl_of(row.crl_scope).unwrap().der),
        std::slice::from_ref(&new.serial)
    );
    assert!(!listed(&svc.crl_of(CrlScope::Undivided).unwrap().der).contains(&new.serial));

    // Revoking a certificate issued before partitions re-signs the undivided CRL.
    let (taro, _) = revoke_by_bank(&svc, "tarodt").await;
    svc.publish_crl().await.unwrap();
    let undivided = listed(&svc.crl_of(CrlScope::Undivided).unwrap().der);
    assert!(undivided.contains(&taro) && undivided.contains(&sachiko.serial));

    // A year on, every certificate issued before partitions has expired:
    // the scheduled CRL after that still lists them (the grace CRL) …
    clock.advance(::time::Duration::days(400));
    svc.publish_scheduled_crls().await.unwrap();
    let grace = listed(&svc.crl_of(CrlScope::Undivided).unwrap().der);
    assert!(grace.contains(&taro) && grace.contains(&sachiko.serial));
    // … and after the next one the undivided CRL is no longer published.
    clock.advance(::time::Duration::hours(13));
    svc.refresh_crl_if_due().await.unwrap();
    assert!(svc.crl_of(CrlScope::Undivided).is_none());
    assert_eq!(svc.crl_scopes().len(), 4, "the partitions stay");
    assert!(
        ocsp_says_revoked(&svc, &taro).await,
        "OCSP still says revoked"
    );
    // A restart does not bring it back.
    drop(svc);
    let again = open(dir.path(), &db, &clock, 4).await;
    assert!(again.crl_of(CrlScope::Undivided).is_none());
    assert!(!again.is_revoked(taro.as_bytes()));
    assert!(ocsp_says_revoked(&again, &taro).await);
}

#[tokio::test]
async fn a_revocation_on_one_server_is_in_its_partition_on_the_other_under_a_higher_number() {
    let kit = Kit::start().await;
    let other = kit.another_server().await;
    let before = numbers(&other);
    let (serial, scope) = revoke_by_bank(&kit.svc, "hanakodt").await;
    kit.crl_caught_up().await;
    let on_a = kit.svc.crl_of(scope).unwrap();
    assert!(listed(&on_a.der).contains(&serial));
    // The other server reads the revocation log (its watch does so every
    // 250 ms), and publishes that partition — and only it — again.
    assert_eq!(other.apply_revocation_log().await.unwrap(), 1);
    assert!(other.is_revoked(serial.as_bytes()));
    other.publish_crl().await.unwrap();
    let on_b = other.crl_of(scope).unwrap();
    assert!(listed(&on_b.der).contains(&serial));
    assert!(
        on_b.number > on_a.number,
        "a partition's numbers only go up, across servers"
    );
    for (s, n) in numbers(&other) {
        if s != scope {
            assert_eq!(n, before[&s], "{s} untouched on the other server");
        }
    }
    // The first server's next CRL of that partition goes above the other's.
    let (_, taro_scope) = revoke_by_bank(&kit.svc, "tarodt").await;
    kit.crl_caught_up().await;
    assert!(kit.svc.crl_of(taro_scope).unwrap().number > on_b.number);
    kit.stop().await;
}
