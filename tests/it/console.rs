//! The operator console's door: an operator certificate opens it and
//! nothing else; a customer's never opens it; a revoked operator is refused
//! on an open connection at once and from the next handshake; the
//! operators' lifecycle and its 操作履歴 rows.

use shomei_service::{NewOperator, OperatorAdminError};

use crate::handshake::cache_hits;
use crate::issuance::{assert_refused, cert_login, client, enrolled, gets_in, identity};
use crate::testkit::{Kit, eventually};

/// The console's message for a certificate that no longer opens it.
const NOT_IN_FORCE: &str = "このオペレーター証明書は使用できません。運用管理者に連絡してください。";

/// The operator's key and certificate from their PKCS#12, as a client
/// identity (what the operator imports into their browser).
fn operator_identity(op: &NewOperator) -> reqwest::Identity {
    let c = shomei_pki::pkcs12::read(&op.p12, &op.p12_password).expect("the PKCS#12 opens");
    let pem = shomei_pki::to_pem("CERTIFICATE", &c.cert)
        + &shomei_pki::to_pem("PRIVATE KEY", &c.key_pkcs8);
    reqwest::Identity::from_pem(pem.as_bytes()).unwrap()
}

async fn console(
    kit: &Kit,
    id: Option<reqwest::Identity>,
) -> Result<reqwest::Response, reqwest::Error> {
    client(kit, id)
        .get(format!("{}/opr001", kit.operator_base))
        .send()
        .await
}

/// The bank's own 操作履歴 rows (no company), as actor/operation/result/target.
async fn bank_history(kit: &Kit) -> Vec<String> {
    let mut rows = vec![];
    kit.svc
        .store()
        .audit_for_each(None, |r| {
            if r.company_id.is_none() {
                rows.push(format!(
                    "{}/{}/{}/{}",
                    r.actor_login_id, r.operation, r.result, r.target_login_id
                ));
            }
        })
        .await
        .unwrap();
    rows
}

#[tokio::test]
async fn an_operator_certificate_opens_the_console_and_a_customer_certificate_does_not() {
    let kit = Kit::start().await;
    let op = kit
        .svc
        .add_operator("sato", "helpdesk,audit", "root")
        .await
        .unwrap();
    assert_eq!(op.roles.codes(), "helpdesk,audit");
    assert_ne!(op.p12_password, op.confirm_password);

    // The operator's certificate opens OPR001, which says who they are.
    let r = console(&kit, Some(operator_identity(&op))).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body = r.text().await.unwrap();
    for s in [
        "OPR001",
        "sato（ヘルプデスク、監査）",
        &op.serial.to_string(),
    ] {
        assert!(body.contains(s), "{s}: {body}");
    }

    // A customer's certificate from the same CA: refused in the handshake,
    // while it still opens the customers' certificate listener (control).
    let (cert, key) = enrolled(&kit, "jirodt").await;
    gets_in(&kit, &cert, &key).await;
    assert_refused(
        &console(&kit, Some(identity(&cert, &key))).await,
        rustls::AlertDescription::UnsupportedCertificate,
        "a customer's certificate must not open the console",
    );
    assert_refused(
        &console(&kit, None).await,
        rustls::AlertDescription::CertificateRequired,
        "no certificate, no console",
    );

    // The operator's certificate never opens the customers' certificate
    // login, though it opens the console (above).
    assert_refused(
        &client(&kit, Some(operator_identity(&op)))
            .get(format!("{}/cert-login", kit.cert_base))
            .send()
            .await,
        rustls::AlertDescription::UnsupportedCertificate,
        "an operator's certificate must not open the portal's certificate login",
    );
    assert!(cert_login(&kit, Some((&cert, &key))).await.is_ok());

    assert_eq!(
        bank_history(&kit).await,
        ["銀行:root/オペレーター登録/成功/sato"]
    );
    kit.stop().await;
}

/// A handshake whose chain validation came from the listener's cache still
/// meets the listener's profile: an operator's certificate, refused at the
/// certificate listener, is refused again from the cache right after a
/// customer's cached success there; a customer's, likewise at the console
/// right after an operator's cached success.
#[tokio::test]
async fn the_profile_is_checked_on_a_chain_cache_hit_on_both_listeners() {
    let kit = Kit::start().await;
    let op = kit
        .svc
        .add_operator("sato", "helpdesk", "root")
        .await
        .unwrap();
    let (cert, key) = enrolled(&kit, "jirodt").await;
    let at_cert_listener = || async {
        client(&kit, Some(operator_identity(&op)))
            .get(format!("{}/cert-login", kit.cert_base))
            .send()
            .await
    };

    // The certificate listener: the customer in full, then from the cache.
    gets_in(&kit, &cert, &key).await;
    let before = cache_hits(&kit).await;
    gets_in(&kit, &cert, &key).await;
    assert!(
        cache_hits(&kit).await > before,
        "the customer's chain came from the cache"
    );
    // The operator's certificate: refused when validated in full, and
    // again when its validation comes from the cache.
    for round in ["in full", "from the cache"] {
        let before = cache_hits(&kit).await;
        assert_refused(
            &at_cert_listener().await,
            rustls::AlertDescription::UnsupportedCertificate,
            &format!("an operator's certificate at the certificate listener ({round})"),
        );
        let hit = cache_hits(&kit).await > before;
        assert_eq!(hit, round == "from the cache", "{round}");
    }
    gets_in(&kit, &cert, &key).await;

    // The console: the operator in full, then from the cache; the
    // customer's certificate refused both ways.
    for _ in 0..2 {
        let r = console(&kit, Some(operator_identity(&op))).await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    for round in ["in full", "from the cache"] {
        let before = cache_hits(&kit).await;
        assert_refused(
            &console(&kit, Some(identity(&cert, &key))).await,
            rustls::AlertDescription::UnsupportedCertificate,
            &format!("a customer's certificate at the console ({round})"),
        );
        let hit = cache_hits(&kit).await > before;
        assert_eq!(hit, round == "from the cache", "{round}");
    }
    let r = console(&kit, Some(operator_identity(&op))).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    kit.stop().await;
}

#[tokio::test]
async fn a_revoked_operator_is_refused_on_an_open_connection_and_from_the_next_handshake() {
    let kit = Kit::start().await;
    let op = kit
        .svc
        .add_operator("kimura", "helpdesk", "root")
        .await
        .unwrap();
    let other = kit
        .svc
        .add_operator("tanaka", "audit", "root")
        .await
        .unwrap();
    let open = client(&kit, Some(operator_identity(&op)));
    let r = open
        .get(format!("{}/opr001", kit.operator_base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // `shomei operator revoke` runs in another process: the server learns
    // of it from the database.
    let cli = kit.operator().await;
    let revoked = cli.revoke_operator("kimura", "root").await.unwrap();
    assert_eq!(revoked, std::slice::from_ref(&op.serial));

    // The connection opened before gets no further...
    let r = open
        .get(format!("{}/opr001", kit.operator_base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert!(
        r.text().await.unwrap().contains(NOT_IN_FORCE),
        "the refusal says why"
    );
    // ...and, once the revocation log has reached this server, a new
    // handshake is refused as revoked.
    let svc = kit.svc.clone();
    let serial = op.serial.clone();
    assert!(eventually(|| svc.is_revoked(serial.as_bytes())).await);
    assert_refused(
        &console(&kit, Some(operator_identity(&op))).await,
        rustls::AlertDescription::CertificateRevoked,
        "a revoked operator certificate must not complete a handshake",
    );
    // The other operator still gets in (control).
    let r = console(&kit, Some(operator_identity(&other)))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // Refused twice, or for nobody; the list says who is revoked.
    assert!(matches!(
        cli.revoke_operator("kimura", "root").await,
        Err(OperatorAdminError::AlreadyRevoked(n)) if n == "kimura"
    ));
    assert!(matches!(
        cli.revoke_operator("nobody", "root").await,
        Err(OperatorAdminError::NoSuchOperator(n)) if n == "nobody"
    ));
    let list = cli.operator_list().await.unwrap();
    let states: Vec<(String, bool)> = list
        .iter()
        .map(|r| (r.operator.name.to_string(), r.operator.active))
        .collect();
    assert_eq!(
        states,
        [("kimura".to_string(), false), ("tanaka".to_string(), true)]
    );
    // A server started later loads it with the customers' revocations.
    assert!(kit.another_server().await.is_revoked(op.serial.as_bytes()));
    assert!(
        !kit.another_server()
            .await
            .is_revoked(other.serial.as_bytes())
    );
    assert_eq!(
        bank_history(&kit).await,
        [
            "銀行:root/オペレーター登録/成功/kimura",
            "銀行:root/オペレーター登録/成功/tanaka",
            "銀行:root/オペレーター失効/成功/kimura",
        ]
    );
    kit.stop().await;
}

#[tokio::test]
async fn operator_names_and_roles_are_checked_and_names_are_unique() {
    let kit = Kit::start().await;
    kit.svc
        .add_operator("sato", "helpdesk", "root")
        .await
        .unwrap();
    assert!(matches!(
        kit.svc.add_operator("sato", "audit", "root").await,
        Err(OperatorAdminError::NameTaken(n)) if n == "sato"
    ));
    assert!(matches!(
        kit.svc.add_operator("佐藤", "audit", "root").await,
        Err(OperatorAdminError::BadName(_))
    ));
    assert!(matches!(
        kit.svc
            .add_operator("suzuki", "helpdesk,root", "root")
            .await,
        Err(OperatorAdminError::BadRoles(_))
    ));
    assert_eq!(kit.svc.operator_list().await.unwrap().len(), 1);
    kit.stop().await;
}
