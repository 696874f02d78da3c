//! Notices: 更新可 and 10 days before expiry to the user, a lock to the
//! company's マスター and 管理者 users; written once to the outbox as .eml,
//! even when the server restarts.

use crate::testkit::Kit;

fn outbox(kit: &Kit) -> Vec<String> {
    let dir = kit.dir.path().join("outbox");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".eml"))
                .map(|e| std::fs::read_to_string(e.path()).unwrap())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[tokio::test]
async fn renewal_and_lock_notices_are_sent_once() {
    let kit = Kit::start().await;
    // tarodt's certificate is in 更新可 (20 days left); nobody else's.
    assert_eq!(kit.svc.queue_renewal_notices().await.unwrap(), 1);
    assert_eq!(kit.svc.send_notices().await.unwrap(), 1);
    let mails = outbox(&kit);
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].contains("To: =?UTF-8?B?") && mails[0].contains("<tarodt@example.jp>"),
        "{}",
        mails[0]
    );

    // Again, and after a restart (a second instance on the same data): nothing new.
    assert_eq!(kit.svc.queue_renewal_notices().await.unwrap(), 0);
    assert_eq!(kit.svc.send_notices().await.unwrap(), 0);
    let other = kit.another_server().await;
    assert_eq!(other.queue_renewal_notices().await.unwrap(), 0);
    assert_eq!(other.send_notices().await.unwrap(), 0);

    // Ten days before expiry: the second notice.
    kit.clock.advance(::time::Duration::days(11));
    assert_eq!(kit.svc.queue_renewal_notices().await.unwrap(), 1);
    assert_eq!(kit.svc.send_notices().await.unwrap(), 1);
    assert_eq!(outbox(&kit).len(), 2);

    // ichirodt locks herself out: the company's マスター and 管理者 are told.
    for _ in 0..3 {
        kit.browser().login("ichirodt", "Wrong#1234").await;
    }
    assert_eq!(
        kit.svc.send_notices().await.unwrap(),
        3,
        "jirodt, hanakodt, tarodt"
    );
    let locks = outbox(&kit)
        .into_iter()
        .filter(|m| m.contains("=?UTF-8?B?"))
        .filter(|m| {
            [
                "<jirodt@example.jp>",
                "<hanakodt@example.jp>",
                "<tarodt@example.jp>",
            ]
            .iter()
            .any(|a| m.contains(a))
        })
        .count();
    assert_eq!(
        locks,
        2 + 3,
        "two renewal notices to tarodt, three lock notices"
    );
    kit.stop().await;
}

/// Two servers on one database run their rounds at the same moment: every
/// notice is claimed by exactly one of them and written once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_sending_at_the_same_time_send_each_notice_once() {
    let kit = Kit::start().await;
    let other = std::sync::Arc::new(kit.another_server().await);
    for _ in 0..3 {
        kit.browser().login("ichirodt", "Wrong#1234").await;
    }
    for _ in 0..3 {
        kit.browser().login("sachikodt", "Wrong#1234").await;
    }
    assert_eq!(kit.svc.queue_renewal_notices().await.unwrap(), 1);
    // tarodt's renewal, and three lock notices for each of two locks.
    let due = 1 + 3 + 3;
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(2));
    let round = |svc: std::sync::Arc<shomei_service::Shomei>| {
        let start = start.clone();
        tokio::spawn(async move {
            start.wait().await;
            svc.send_notices().await.unwrap()
        })
    };
    let (a, b) = (round(kit.svc.clone()), round(other.clone()));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    assert_eq!(a + b, due, "each notice sent by one of them: {a} + {b}");
    assert_eq!(outbox(&kit).len(), due);
    assert_eq!(kit.svc.send_notices().await.unwrap(), 0);
    assert_eq!(other.send_notices().await.unwrap(), 0);
    kit.stop().await;
}
