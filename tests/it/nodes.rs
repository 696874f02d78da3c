//! Several servers on one database must share one CA: a server that brings
//! another CA refuses to start and says why; with a copy of the first
//! server's ca/ folder it starts.

use crate::testkit::{Kit, StoreOf};

fn copy_file(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap();
}

#[tokio::test]
async fn a_server_with_another_ca_refuses_to_start_and_one_with_a_copy_of_ca_starts() {
    let kit = Kit::start().await;
    // A second data directory on the same PostgreSQL database, or on a copy
    // of the embedded one (SQLite keeps the database in the data directory).
    let other = tempfile::tempdir().unwrap();
    let url = kit.svc.settings().database_url.clone();
    if url.is_none() {
        let backup = other.path().join("shomei.db");
        kit.svc.store().backup_into(&backup).await.unwrap();
    }
    let open = || {
        shomei_service::Shomei::open(
            other.path(),
            &kit.base,
            shomei_service::Settings {
                database_url: url.clone(),
                ..Default::default()
            },
            kit.clock.clone(),
        )
    };
    let err = match open().await {
        Ok(_) => panic!("a server with a CA of its own started"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("is not the one in the database")
            && err.contains("copy that server's ca/ folder"),
        "{err}"
    );
    // The positive control: the first server's ca/ folder copied over.
    std::fs::remove_dir_all(other.path().join("ca")).unwrap();
    for f in [
        "root-ca.crt",
        "root-ca.key",
        "issuing-ca.crt",
        "issuing-ca.key",
    ] {
        let from = kit.dir.path().join("ca").join(f);
        if from.exists() {
            copy_file(&from, &other.path().join("ca").join(f));
        }
    }
    let second = open().await.expect("the same CA starts");
    assert_eq!(second.ca().issuing_der(), kit.svc.ca().issuing_der());
    kit.stop().await;
}
