//! 実行 revokes: record, state, CRL, and the tools relying parties use.

use std::process::Command;

use x509_parser::prelude::*;

use crate::testkit::{CONFIRM_PW, Kit, LOGIN_PW, StoreOf};

/// The full CRL the user's certificate names in its CRL distribution point.
async fn crl(kit: &Kit, login_id: &str) -> Vec<u8> {
    pki(kit, &crl_path(kit, login_id).await).await
}

/// The path of the CRL a user's latest certificate names (its CRL
/// distribution point), on the portal.
pub async fn crl_path(kit: &Kit, login_id: &str) -> String {
    let id = shomei_core::UserId(kit.user_id(login_id).await);
    let der = kit.svc.store().latest_cert(id).await.unwrap().unwrap().der;
    cdp_path(&der)
}

/// The path part of a certificate's CRL distribution point.
pub fn cdp_path(der: &[u8]) -> String {
    let (_, c) = parse_x509_certificate(der).unwrap();
    let url =
        c.extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::CRLDistributionPoints(d) => d.points.iter().find_map(|p| match p
                    .distribution_point
                    .as_ref()?
                {
                    DistributionPointName::FullName(names) => names.iter().find_map(|n| match n {
                        GeneralName::URI(u) => Some(u.to_string()),
                        _ => None,
                    }),
                    _ => None,
                }),
                _ => None,
            })
            .expect("a CRL distribution point");
    url[url.find("/pki/").unwrap()..].to_string()
}

/// The delta CRL path beside a full CRL path (`/pki/crl/N` → `/pki/delta-crl/N`).
fn delta_of(path: &str) -> String {
    path.replacen("/pki/crl", "/pki/delta-crl", 1)
}

/// The body of a PKI path on the portal listener (a CRL, the delta CRL).
async fn pki(kit: &Kit, path: &str) -> Vec<u8> {
    kit.browser()
        .client
        .get(format!("{}{path}", kit.base))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

fn crl_number(der: &[u8]) -> String {
    let (_, c) = parse_x509_crl(der).unwrap();
    c.crl_number().unwrap().to_string()
}

#[tokio::test]
async fn executing_revokes_the_certificate_and_publishes_it_in_the_crl() {
    let kit = Kit::start().await;
    let path = crl_path(&kit, "hanakodt").await;
    assert!(
        path.starts_with("/pki/crl/"),
        "new certificates name a partition: {path}"
    );
    let before = crl(&kit, "hanakodt").await;
    let b = kit.browser();
    let confirm = b.to_brsk019(&kit, "hanakodt", "hanakodt").await;
    assert_eq!(confirm.path(), "/brsk019");
    for s in [
        "<h1>利用者管理 証明書失効確認</h1>",
        "BRSK019",
        "証明書失効の対象利用者",
        "hanakodt",
        "北銀 花子",
        "発行済",
        "確認パスワード",
        "&lt; 戻る",
        "実行 &gt;",
    ] {
        assert!(confirm.has(s), "{s}");
    }
    let done = b
        .post(
            "/brsk019",
            &[
                ("action", "execute"),
                ("token", &token(&confirm.body)),
                ("confirm_password", CONFIRM_PW),
            ],
        )
        .await;
    assert_eq!(done.path(), "/brsk020");
    for s in [
        "<h1>利用者管理 証明書失効結果</h1>",
        "BRSK020",
        "証明書の失効結果",
        "hanakodt",
        "北銀 花子",
        "失効済",
        "ログインIDをメモに取るか",
        "× 閉じる",
    ] {
        assert!(done.has(s), "{s}");
    }

    let id = shomei_core::UserId(kit.user_id("hanakodt").await);
    let cert = kit.svc.store().latest_cert(id).await.unwrap().unwrap();
    assert!(cert.revoked_at.is_some());
    assert_eq!(
        cert.reason,
        Some(5),
        "cessationOfOperation: the PC is being replaced"
    );
    assert!(kit.svc.is_revoked(cert.serial.as_bytes()));
    let list = b.get("/brsk018").await;
    let row = crate::portal::rows(&list.body)
        .into_iter()
        .find(|r| r.0 == "hanakodt")
        .unwrap();
    assert_eq!(row.2, "失効済", "{row:?}");

    kit.crl_caught_up().await;
    let after = crl(&kit, "hanakodt").await;
    assert!(
        crl_number(&after).parse::<u64>().unwrap() > crl_number(&before).parse::<u64>().unwrap()
    );
    let (_, parsed) = parse_x509_crl(&after).unwrap();
    assert!(
        parsed
            .iter_revoked_certificates()
            .any(|r| r.raw_serial() == cert.serial.as_bytes())
    );
    assert!(parsed.extensions().iter().any(|e| matches!(
        e.parsed_extension(),
        ParsedExtension::AuthorityKeyIdentifier(_)
    )));
    let (_, issuing) = parse_x509_certificate(kit.svc.ca().issuing_der()).unwrap();
    parsed.verify_signature(issuing.public_key()).unwrap();
    assert_eq!(parsed.issuer(), issuing.subject());

    // What openssl says, as a relying party would run it.
    let dir = kit.dir.path();
    std::fs::write(dir.join("crl.der"), &after).unwrap();
    std::fs::write(
        dir.join("user.pem"),
        shomei_pki::to_pem("CERTIFICATE", &cert.der),
    )
    .unwrap();
    std::fs::write(
        dir.join("chain.pem"),
        kit.svc.ca().root_pem() + &kit.svc.ca().issuing_pem(),
    )
    .unwrap();
    let text = openssl(
        &["crl", "-inform", "DER", "-in", "crl.der", "-noout", "-text"],
        dir,
    );
    assert!(text.0, "openssl crl parses it");
    assert!(
        text.1
            .to_uppercase()
            .contains(&cert.serial.to_hex().to_uppercase()),
        "openssl lists the serial:\n{}",
        text.1
    );
    assert!(
        text.1.contains("X509v3 CRL Number") && text.1.contains("X509v3 Authority Key Identifier")
    );
    openssl(
        &["crl", "-inform", "DER", "-in", "crl.der", "-out", "crl.pem"],
        dir,
    );
    let (ok, out) = verify_with_crl(dir, "crl.pem", "user.pem");
    assert!(
        !ok && out.contains("certificate revoked"),
        "openssl verify refuses it:\n{out}"
    );
    // The same with every CRL in one file (the bundle, for nginx ssl_crl):
    // openssl picks the partition the certificate names.
    std::fs::write(dir.join("all.pem"), pki(&kit, "/pki/crls.pem").await).unwrap();
    let (ok, out) = verify_with_crl(dir, "all.pem", "user.pem");
    assert!(
        !ok && out.contains("certificate revoked"),
        "openssl verify refuses it with the bundle:\n{out}"
    );
    // Another partition's CRL alone is not this certificate's: its Issuing
    // Distribution Point names another URL, and openssl says so.
    let p: u16 = path.rsplit('/').next().unwrap().parse().unwrap();
    let other = pki(&kit, &format!("/pki/crl/{}.pem", (p + 1) % 64)).await;
    std::fs::write(dir.join("other.pem"), other).unwrap();
    let (ok, out) = verify_with_crl(dir, "other.pem", "user.pem");
    assert!(
        !ok && out.contains("different CRL scope"),
        "a CRL of another partition does not cover it:\n{out}"
    );
    // And a certificate that was not revoked still verifies against the
    // CRLs (all of them in the bundle).
    let taro = kit
        .svc
        .store()
        .latest_cert(shomei_core::UserId(kit.user_id("tarodt").await))
        .await
        .unwrap()
        .unwrap();
    std::fs::write(
        dir.join("taro.pem"),
        shomei_pki::to_pem("CERTIFICATE", &taro.der),
    )
    .unwrap();
    let (ok, out) = verify_with_crl(dir, "all.pem", "taro.pem");
    assert!(ok, "an unrevoked certificate still verifies:\n{out}");

    let h = kit.history().await;
    assert!(
        h.iter().any(|r| r == "hanakodt/証明書失効/成功/hanakodt"),
        "{h:?}"
    );
    kit.stop().await;
}

/// `openssl verify -crl_check` of a certificate with our chain and a CRL
/// file (PEM, one CRL or several), as a relying party runs it.
fn verify_with_crl(dir: &std::path::Path, crl: &str, cert: &str) -> (bool, String) {
    openssl(
        &[
            "verify",
            "-crl_check",
            "-CAfile",
            "chain.pem",
            "-CRLfile",
            crl,
            cert,
        ],
        dir,
    )
}

fn openssl(args: &[&str], dir: &std::path::Path) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed (scripts/test installs it)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

pub fn token(body: &str) -> String {
    let i = body.find("name=\"token\" value=\"").unwrap() + 20;
    body[i..i + 64].to_string()
}

#[tokio::test]
async fn a_repeated_submit_of_execute_revokes_once() {
    let kit = Kit::start().await;
    let b = kit.browser();
    let confirm = b.to_brsk019(&kit, "tarodt", "hanakodt").await;
    let t = token(&confirm.body);
    let fields = [
        ("action", "execute"),
        ("token", t.as_str()),
        ("confirm_password", CONFIRM_PW),
    ];
    let (first, second) = tokio::join!(b.post("/brsk019", &fields), b.post("/brsk019", &fields));
    let paths = [first.path().to_string(), second.path().to_string()];
    assert!(paths.contains(&"/brsk020".to_string()), "{paths:?}");
    assert!(
        paths.iter().any(|p| p.starts_with("/brsk018")),
        "the second submit lands on the list: {paths:?}"
    );
    // The back button and 実行 again.
    let again = b.post("/brsk019", &fields).await;
    assert!(again.path().starts_with("/brsk018") && again.has("既に実行済み"));
    let revocations = kit
        .history()
        .await
        .iter()
        .filter(|r| r.contains("/証明書失効/成功/"))
        .count();
    assert_eq!(revocations, 1);
    assert!(kit.revoked("hanakodt").await);
    kit.stop().await;
}

#[tokio::test]
async fn pressing_revoke_without_a_revocable_selection_shows_an_error_and_changes_nothing() {
    let kit = Kit::start().await;
    let b = kit.browser();
    b.login("hanakodt", LOGIN_PW).await;
    let crl_before = kit.svc.crl_generations();
    let cases: &[(&str, Option<&str>, &str)] = &[
        ("nobody selected", None, "利用者を選択してください。"),
        (
            "マスター",
            Some("jirodt"),
            "管理者ユーザはマスターユーザに対してこの操作を行うことはできません。",
        ),
        ("有効期限切れ", Some("ichirodt"), "失効できません"),
        ("失効済", Some("sachikodt"), "失効できません"),
    ];
    for (case, target, message) in cases {
        b.get("/brsk018").await;
        let id = match target {
            Some(t) => kit.user_id(t).await.to_string(),
            None => String::new(),
        };
        let fields: Vec<(&str, &str)> = if target.is_some() {
            vec![("user", &id)]
        } else {
            vec![]
        };
        let p = b.post("/brsk018", &fields).await;
        assert_eq!(p.status, 400, "{case}");
        assert!(p.has("BRSK018"), "{case}: error shown on BRSK018");
        assert!(
            p.error().is_some_and(|e| e.contains(message)),
            "{case}: {:?}",
            p.error()
        );
    }
    for u in ["hanakodt", "ichirodt", "jirodt", "sachikodt", "tarodt"] {
        assert_eq!(kit.revoked(u).await, u == "sachikodt", "{u}");
    }
    // BRSK019 cannot be reached without a selection.
    assert_eq!(b.get("/brsk019").await.path(), "/brsk018");
    // jirodt (マスター) selecting his own certificate, 未発行.
    let m = kit.browser();
    let p = m.to_brsk019(&kit, "jirodt", "jirodt").await;
    assert_eq!(p.status, 400, "未発行");
    assert!(
        p.error().is_some_and(|e| e.contains("失効できません")),
        "未発行: {:?}",
        p.error()
    );
    for u in ["hanakodt", "ichirodt", "jirodt", "sachikodt", "tarodt"] {
        assert_eq!(kit.revoked(u).await, u == "sachikodt", "{u}");
    }
    assert_eq!(kit.svc.crl_generations(), crl_before, "no new CRL");
    kit.stop().await;
}

#[tokio::test]
async fn back_on_brsk019_returns_to_the_list_without_revoking() {
    let kit = Kit::start().await;
    let b = kit.browser();
    b.to_brsk019(&kit, "hanakodt", "tarodt").await;
    let p = b.post("/brsk019", &[("action", "back")]).await;
    assert_eq!(p.path(), "/brsk018");
    assert!(!kit.revoked("tarodt").await);
    kit.stop().await;
}

#[tokio::test]
async fn the_crl_is_served_with_cache_validators() {
    let kit = Kit::start().await;
    let c = kit.browser().client;
    let path = crl_path(&kit, "tarodt").await;
    let if_none_match = |etag: &str| {
        c.get(format!("{}{path}", kit.base))
            .header("if-none-match", etag)
            .send()
    };
    let r = c.get(format!("{}{path}", kit.base)).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "application/pkix-crl");
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    assert!(r.headers().contains_key("last-modified"));
    // Cached, but revalidated every time: a revocation is published at once.
    assert_eq!(r.headers()["cache-control"], "public, no-cache");
    let again = if_none_match(&etag).await.unwrap();
    assert_eq!(again.status(), 304);
    // After a revocation the same validator gets the new CRL, with a new ETag.
    let serial = kit.serial_of("tarodt").await;
    let admin = kit.browser();
    admin.to_brsk019(&kit, "hanakodt", "tarodt").await;
    assert_eq!(admin.execute(CONFIRM_PW).await.path(), "/brsk020");
    kit.crl_caught_up().await;
    let changed = if_none_match(&etag).await.unwrap();
    assert_eq!(changed.status(), 200);
    assert_eq!(changed.headers()["cache-control"], "public, no-cache");
    let new_etag = changed.headers()["etag"].to_str().unwrap().to_string();
    assert_ne!(new_etag, etag);
    let der = changed.bytes().await.unwrap();
    let (_, parsed) = parse_x509_crl(&der).unwrap();
    assert!(
        parsed
            .iter_revoked_certificates()
            .any(|r| shomei_core::Serial::from_bytes(r.raw_serial()).as_ref() == Some(&serial)),
        "the new CRL lists tarodt's certificate"
    );
    let again = if_none_match(&new_etag).await.unwrap();
    assert_eq!(again.status(), 304);
    let pem = c
        .get(format!("{}{path}.pem", kit.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(pem.starts_with("-----BEGIN X509 CRL-----"));
    // The bundle: every partition's CRL, revalidated the same way.
    let r = c
        .get(format!("{}/pki/crls.pem", kit.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/x-pem-file");
    let bundle_etag = r.headers()["etag"].to_str().unwrap().to_string();
    let bundle = r.text().await.unwrap();
    assert_eq!(bundle.matches("-----BEGIN X509 CRL-----").count(), 64);
    let again = c
        .get(format!("{}/pki/crls.pem", kit.base))
        .header("if-none-match", &bundle_etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    // Certificates issued here name partitions: the undivided CRL is not
    // published, and says where the CRLs are; so is a partition out of range.
    for gone in [
        "/pki/crl",
        "/pki/delta-crl",
        "/pki/crl/64",
        "/pki/crl/-1",
        "/pki/crl/1x",
    ] {
        let r = c.get(format!("{}{gone}", kit.base)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{gone}");
        assert!(
            r.text().await.unwrap().contains("/pki/crls.pem"),
            "{gone}: says where the CRLs are"
        );
    }
    kit.stop().await;
}

#[tokio::test]
async fn the_delta_crl_lists_what_was_revoked_since_the_full_crl_and_openssl_reads_it() {
    let kit = Kit::start().await;
    let b = kit.browser();
    let delta_path = delta_of(&crl_path(&kit, "tarodt").await);
    let empty = pki(&kit, &delta_path).await;
    let (_, parsed) = parse_x509_crl(&empty).unwrap();
    assert_eq!(
        parsed.iter_revoked_certificates().count(),
        0,
        "nothing revoked since the base"
    );
    b.to_brsk019(&kit, "hanakodt", "tarodt").await;
    assert_eq!(b.execute(CONFIRM_PW).await.path(), "/brsk020");
    kit.crl_caught_up().await;
    let delta = pki(&kit, &delta_path).await;
    let (_, parsed) = parse_x509_crl(&delta).unwrap();
    let id = shomei_core::UserId(kit.user_id("tarodt").await);
    let serial = kit
        .svc
        .store()
        .latest_cert(id)
        .await
        .unwrap()
        .unwrap()
        .serial;
    let listed: Vec<_> = parsed
        .iter_revoked_certificates()
        .map(|r| shomei_core::Serial::from_bytes(r.raw_serial()).unwrap())
        .collect();
    assert_eq!(
        listed,
        vec![serial],
        "only the new revocation, not sachikodt's older one"
    );
    let indicator = parsed
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == "2.5.29.27")
        .unwrap();
    assert!(indicator.critical, "Delta CRL Indicator is critical");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("delta.der"), &delta).unwrap();
    let (ok, text) = openssl(
        &[
            "crl",
            "-inform",
            "DER",
            "-in",
            "delta.der",
            "-noout",
            "-text",
        ],
        dir.path(),
    );
    assert!(ok, "{text}");
    assert!(text.contains("Delta CRL Indicator"), "{text}");
    kit.stop().await;
}

#[tokio::test]
async fn a_password_session_of_a_user_whose_certificate_is_revoked_goes_on() {
    let kit = Kit::start().await;
    let taro = kit.browser();
    assert_eq!(taro.login("tarodt", LOGIN_PW).await.path(), "/top");
    let admin = kit.browser();
    admin.to_brsk019(&kit, "hanakodt", "tarodt").await;
    assert_eq!(admin.execute(CONFIRM_PW).await.path(), "/brsk020");
    let top = taro.get("/top").await;
    assert_eq!(
        top.path(),
        "/top",
        "ID・パスワード方式 sessions are not tied to a certificate"
    );
    assert!(top.has("失効済"));
    kit.stop().await;
}

/// The bank operator's `shomei cert revoke` runs in another process on the
/// same data directory: the running server puts it in force from the
/// revocation log (TLS, sessions, OCSP at once; the CRL with the reason and
/// the invalidity date within the second); refusals change nothing.
#[tokio::test]
async fn an_operator_revocation_from_another_process_takes_effect_in_the_running_server() {
    use shomei_core::{LoginId, RevocationReason};
    use shomei_service::{Clock, OperatorRevokeError};

    let kit = Kit::start().await;
    let hanako = LoginId::parse("hanakodt").unwrap();
    let serial = kit.serial_of("hanakodt").await;
    assert!(!kit.svc.is_revoked(serial.as_bytes()));

    // A second instance on the same data directory, as the CLI opens it.
    let operator = kit.operator().await;
    let future = kit.clock.now() + ::time::Duration::hours(1);
    assert!(matches!(
        operator
            .revoke_by_operator(
                &hanako,
                RevocationReason::KeyCompromise,
                Some(future),
                "yamada"
            )
            .await,
        Err(OperatorRevokeError::InvalidityInFuture)
    ));
    assert!(matches!(
        operator
            .revoke_by_operator(
                &LoginId::parse("nobody99").unwrap(),
                RevocationReason::KeyCompromise,
                None,
                "yamada"
            )
            .await,
        Err(OperatorRevokeError::NoSuchUser(_))
    ));
    assert!(!kit.revoked("hanakodt").await, "refusals change nothing");

    let invalid_since = kit.clock.now() - ::time::Duration::days(2);
    let done = operator
        .revoke_by_operator(
            &hanako,
            RevocationReason::KeyCompromise,
            Some(invalid_since),
            "yamada",
        )
        .await
        .unwrap();
    assert_eq!(done.serial, serial);
    assert!(kit.revoked("hanakodt").await);
    assert!(
        kit.history()
            .await
            .contains(&"銀行:yamada/証明書失効/成功/hanakodt".to_string())
    );

    // The running server learns it from the log (within a second, when idle).
    assert!(
        in_force_eventually(&kit.svc, &serial).await,
        "not in force in the running server"
    );
    kit.crl_caught_up().await;
    let der = crl(&kit, "hanakodt").await;
    let (_, c) = parse_x509_crl(&der).unwrap();
    let entry = c
        .iter_revoked_certificates()
        .find(|r| {
            let raw = r.raw_serial();
            let raw = if raw.len() > 1 && raw[0] == 0 {
                &raw[1..]
            } else {
                raw
            };
            raw == serial.as_bytes()
        })
        .expect("the CRL lists the operator's revocation");
    assert_eq!(entry.reason_code().map(|r| r.1.0), Some(1));
    let invalidity = entry
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::InvalidityDate(t) => Some(t.timestamp()),
            _ => None,
        });
    assert_eq!(invalidity, Some(invalid_since.unix_timestamp()));

    // Again: nothing in force to revoke, and a 失敗 row.
    assert!(matches!(
        operator
            .revoke_by_operator(&hanako, RevocationReason::KeyCompromise, None, "yamada")
            .await,
        Err(OperatorRevokeError::NotInForce { .. })
    ));
    assert!(
        kit.history()
            .await
            .contains(&"銀行:yamada/証明書失効/失敗/hanakodt".to_string())
    );
    kit.stop().await;
}

/// The revocation log is pruned an hour after the fact; a server that
/// stalled past the pruning notices the gap and reloads the whole set, so it
/// misses nothing; ids keep growing after a prune.
#[tokio::test]
async fn the_revocation_log_is_pruned_and_a_server_that_missed_entries_reloads() {
    use shomei_core::{LoginId, RevocationReason};

    let kit = Kit::start().await;
    let (hanako, taro) = (
        kit.serial_of("hanakodt").await,
        kit.serial_of("tarodt").await,
    );
    // A second server on the same data, stalled: it loads the set and then
    // reads the log no more until told to.
    let stalled = kit.another_server().await;
    let operator = kit.operator().await;
    for who in ["hanakodt", "tarodt"] {
        operator
            .revoke_by_operator(
                &LoginId::parse(who).unwrap(),
                RevocationReason::KeyCompromise,
                None,
                "yamada",
            )
            .await
            .unwrap();
    }
    let head = kit.svc.store().revocation_log_head().await.unwrap();
    // Only the demo's old revocation (sachikodt, days ago) goes; this hour's stay.
    kit.svc.prune_revocation_log().await.unwrap();
    assert_eq!(
        kit.svc.store().revocation_log_tail().await.unwrap(),
        head - 1
    );
    kit.clock.advance(::time::Duration::minutes(61));
    assert!(kit.svc.prune_revocation_log().await.unwrap() >= 1);
    assert_eq!(
        kit.svc.store().revocation_log_tail().await.unwrap(),
        head,
        "the newest entry stays"
    );
    assert!(!stalled.is_revoked(hanako.as_bytes()));
    stalled.apply_revocation_log().await.unwrap();
    assert!(
        stalled.is_revoked(hanako.as_bytes()) && stalled.is_revoked(taro.as_bytes()),
        "the pruned entry's revocation is in force after the reload"
    );
    // The running server has both (from the log, or by a reload if the
    // prune beat its next read), and later entries still reach it.
    for serial in [&hanako, &taro] {
        assert!(in_force_eventually(&kit.svc, serial).await);
    }
    let hotto = kit.serial_of("hottojr01").await;
    operator
        .revoke_by_operator(
            &LoginId::parse("hottojr01").unwrap(),
            RevocationReason::AffiliationChanged,
            None,
            "yamada",
        )
        .await
        .unwrap();
    assert_eq!(
        kit.svc.store().revocation_log_head().await.unwrap(),
        head + 1,
        "no id is used twice"
    );
    assert!(
        in_force_eventually(&kit.svc, &hotto).await,
        "a revocation after the prune reaches the running server"
    );
    kit.stop().await;
}

/// Polls the revocation set of `svc` for `serial` until it is there (a
/// second on an idle machine; `EVENTUALLY` at most).
async fn in_force_eventually(svc: &shomei_service::Shomei, serial: &shomei_core::Serial) -> bool {
    crate::testkit::eventually(|| svc.is_revoked(serial.as_bytes())).await
}

/// The Delta CRL Indicator's BaseCRLNumber (RFC 5280 §5.2.4).
fn delta_base(der: &[u8]) -> u64 {
    let (_, c) = parse_x509_crl(der).unwrap();
    let ext = c
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == "2.5.29.27")
        .expect("a Delta CRL Indicator");
    let v = ext.value;
    assert_eq!(v[0], 0x02, "an INTEGER");
    v[2..2 + v[1] as usize]
        .iter()
        .fold(0, |n, b| n << 8 | u64::from(*b))
}

fn delta_serials(der: &[u8]) -> Vec<shomei_core::Serial> {
    let (_, c) = parse_x509_crl(der).unwrap();
    c.iter_revoked_certificates()
        .map(|r| shomei_core::Serial::from_bytes(r.raw_serial()).unwrap())
        .collect()
}

/// Upkeep rebases the delta CRLs on a fresh full CRL once half of the full
/// CRL's life has passed (not before); what was revoked until then moves into
/// the base and the next delta starts empty. Driven by the test clock.
#[tokio::test]
async fn at_half_life_a_new_full_crl_becomes_the_base_of_the_delta_crls() {
    let kit = Kit::start().await;
    let taro = kit.serial_of("tarodt").await;
    let b = kit.browser();
    b.to_brsk019(&kit, "hanakodt", "tarodt").await;
    assert_eq!(b.execute(CONFIRM_PW).await.path(), "/brsk020");
    kit.crl_caught_up().await;
    let taro_crl = crl_path(&kit, "tarodt").await;
    let hanako_crl = crl_path(&kit, "hanakodt").await;
    let full = pki(&kit, &taro_crl).await;
    let delta = pki(&kit, &delta_of(&taro_crl)).await;
    let base = delta_base(&delta);
    assert!(base < crl_number(&full).parse::<u64>().unwrap());
    assert_eq!(delta_serials(&delta), std::slice::from_ref(&taro));

    // Before half-life (24 h CRLs: 11 h later) nothing changes.
    kit.clock.advance(::time::Duration::hours(11));
    kit.svc.refresh_crl_if_due().await.unwrap();
    assert_eq!(pki(&kit, &taro_crl).await, full);
    assert_eq!(pki(&kit, &delta_of(&taro_crl)).await, delta);

    // Past it (13 h): a new full CRL, and the delta is based on it, empty.
    kit.clock.advance(::time::Duration::hours(2));
    kit.svc.refresh_crl_if_due().await.unwrap();
    let rebased_full = pki(&kit, &taro_crl).await;
    let rebased = pki(&kit, &delta_of(&taro_crl)).await;
    let number: u64 = crl_number(&rebased_full).parse().unwrap();
    assert!(number > crl_number(&full).parse::<u64>().unwrap());
    assert_eq!(delta_base(&rebased), number);
    assert_eq!(delta_serials(&rebased), []);
    let (_, parsed) = parse_x509_crl(&rebased_full).unwrap();
    assert!(
        parsed
            .iter_revoked_certificates()
            .any(|r| shomei_core::Serial::from_bytes(r.raw_serial()).as_ref() == Some(&taro)),
        "tarodt's revocation is in the new base"
    );

    // The next revocation is in the next delta of its partition, on the
    // base rebased with the others.
    let hanako_base: u64 = crl_number(&pki(&kit, &hanako_crl).await).parse().unwrap();
    let hanako = kit.serial_of("hanakodt").await;
    let m = kit.browser();
    m.to_brsk019(&kit, "jirodt", "hanakodt").await;
    assert_eq!(m.execute(CONFIRM_PW).await.path(), "/brsk020");
    kit.crl_caught_up().await;
    let next = pki(&kit, &delta_of(&hanako_crl)).await;
    assert_eq!(delta_base(&next), hanako_base);
    assert_eq!(delta_serials(&next), [hanako]);
    kit.stop().await;
}

/// "Revocations close together share one generation": the publisher waits
/// 100 ms after a revocation, then one generation takes every revocation
/// marked so far. Shown without a clock: on a server whose publisher task
/// does not run (the kit's stopped, the same data opened again), three
/// revocations by the bank, then one publication: one generation, its CRL
/// listing all three; a publication with nothing new makes none; a fourth
/// revocation makes exactly one more.
#[tokio::test]
async fn revocations_close_together_share_one_crl_generation() {
    let mut kit = Kit::start_with(shomei_service::Settings {
        crl_partitions: 1,
        ..Default::default()
    })
    .await;
    kit.crl_caught_up().await;
    kit.stop_serving().await;
    let svc = kit.another_server().await;
    let revoke = async |who: &str| {
        svc.revoke_by_operator(
            &shomei_core::LoginId::parse(who).unwrap(),
            shomei_core::RevocationReason::KeyCompromise,
            None,
            "yamada",
        )
        .await
        .unwrap()
        .serial
    };
    let before = svc.crl_generations();
    let mut serials = Vec::new();
    for who in ["tarodt", "hanakodt", "hottojr02"] {
        serials.push(revoke(who).await);
    }
    assert_eq!(svc.crl_generations(), before, "none before the publisher");
    svc.publish_crl().await.unwrap();
    assert_eq!(
        svc.crl_generations(),
        before + 1,
        "three revocations, one generation"
    );
    let scope = svc.crl_scopes()[0];
    let listed = delta_serials(&svc.crl_of(scope).unwrap().der);
    for s in &serials {
        assert!(listed.contains(s), "{s} in the generation's CRL");
    }
    svc.publish_crl().await.unwrap();
    assert_eq!(
        svc.crl_generations(),
        before + 1,
        "nothing new: no generation"
    );
    let fourth = revoke("hottojr01").await;
    svc.publish_crl().await.unwrap();
    assert_eq!(
        svc.crl_generations(),
        before + 2,
        "one more revocation, one more"
    );
    assert!(delta_serials(&svc.crl_of(scope).unwrap().der).contains(&fourth));
    kit.stop().await;
}

/// More revocations logged than one read of the log returns (10,000): one
/// pass of a server's watch puts every one in force, not the first 10,000
/// and the rest a pass later.
#[tokio::test]
async fn one_pass_of_the_watch_catches_up_on_more_than_one_read_of_the_log() {
    const N: u32 = 10_050;
    let kit = Kit::start().await;
    let stalled = kit.another_server().await;
    // PostgreSQL takes log ids from the head, SQLite from the table itself.
    let pg = kit.svc.settings().database_url.is_some();
    let der = if pg { "'\\x00'::bytea" } else { "X'00'" };
    let n =
        format!("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {N})");
    let serial = "'7e' || (i + 100000)";
    crate::readiness::sql(
        &kit,
        &format!(
            "{n} INSERT INTO certificates (user_id, serial, not_before, not_after, der, issued_at, \
             revoked_at, revocation_reason) SELECT (SELECT min(id) FROM users), {serial}, \
             0, 4102444800, {der}, 0, 1700000000, 1 FROM n"
        ),
    )
    .await;
    let log = if pg {
        format!(
            "{n} INSERT INTO revocation_log (id, serial) \
             SELECT (SELECT seq FROM revocation_head) + i, {serial} FROM n"
        )
    } else {
        format!("{n} INSERT INTO revocation_log (serial) SELECT {serial} FROM n ORDER BY i")
    };
    crate::readiness::sql(&kit, &log).await;
    if pg {
        crate::readiness::sql(&kit, &format!("UPDATE revocation_head SET seq = seq + {N}")).await;
    }
    let first = shomei_core::Serial::from_hex("7e100001").unwrap();
    let last = shomei_core::Serial::from_hex(&format!("7e{}", 100_000 + N)).unwrap();
    assert!(!stalled.is_revoked(first.as_bytes()) && !stalled.is_revoked(last.as_bytes()));
    assert_eq!(stalled.apply_revocation_log().await.unwrap(), N as usize);
    assert!(stalled.is_revoked(first.as_bytes()) && stalled.is_revoked(last.as_bytes()));
    kit.stop().await;
}

/// The serials listed in a PEM file of CRLs.
fn bundle_serials(pem: &[u8]) -> Vec<shomei_core::Serial> {
    x509_parser::pem::Pem::iter_from_buffer(pem)
        .flat_map(|p| {
            let der = p.unwrap().contents;
            let (_, crl) = parse_x509_crl(&der).unwrap();
            crl.iter_revoked_certificates()
                .filter_map(|r| shomei_core::Serial::from_bytes(r.raw_serial()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The README: /pki/crls.pem is "made again at most once a second". Asked,
/// then a revocation published: asked again within the same second (by the
/// server's clock, which the test holds still) it is the same file with the
/// same ETag, over HTTP too; a second on it is made again and lists the
/// revocation (the control).
#[tokio::test]
async fn the_crl_bundle_is_made_again_at_most_once_a_second() {
    let kit = Kit::start().await;
    let serial = kit.serial_of("tarodt").await;
    let (first, etag) = kit.svc.crl_bundle().await;
    assert!(!bundle_serials(&first).contains(&serial));
    kit.svc
        .revoke_by_operator(
            &shomei_core::LoginId::parse("tarodt").unwrap(),
            shomei_core::RevocationReason::KeyCompromise,
            None,
            "yamada",
        )
        .await
        .unwrap();
    kit.crl_caught_up().await;
    let listed = |kit: &Kit| {
        kit.svc
            .crl_figures()
            .iter()
            .map(|f| f.entries)
            .sum::<usize>()
    };
    assert!(listed(&kit) >= 1, "the partition's CRL lists it");
    let (again, same) = kit.svc.crl_bundle().await;
    assert_eq!((&again, &same), (&first, &etag), "not made again yet");
    let c = kit.browser().client;
    let r = c
        .get(format!("{}/pki/crls.pem", kit.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
    kit.clock.advance(::time::Duration::seconds(1));
    let (new, new_etag) = kit.svc.crl_bundle().await;
    assert_ne!(new_etag, etag);
    assert!(
        bundle_serials(&new).contains(&serial),
        "made again: it lists the revocation"
    );
    let r = c
        .get(format!("{}/pki/crls.pem", kit.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["etag"].to_str().unwrap(), new_etag);
    kit.stop().await;
}
