//! One door into the service: what no build of the server may reach.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The tests' handle on the store (`test_support`, behind the service's
/// `test-support` feature) is named by the service's lib.rs, which defines
/// it, and by no other code of any crate; only the tests' dev-dependency
/// turns the feature on.
#[test]
fn no_code_of_the_server_reaches_the_tests_store_handle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("crates"), &mut files);
    let defined = root.join("crates/shomei-service/src/lib.rs");
    let mut seen = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        if text.contains("test_support") || text.contains("test-support") {
            seen.push(f.strip_prefix(root).unwrap().display().to_string());
        }
    }
    let records = root.join("crates/shomei-service/src/operations/records.rs");
    let allowed = [&defined, &records].map(|p| p.strip_prefix(root).unwrap().display().to_string());
    seen.retain(|f| !allowed.contains(f));
    assert!(seen.is_empty(), "the tests' store handle named in {seen:?}");
    assert_eq!(
        files.iter().filter(|f| **f == defined).count(),
        1,
        "the positive control"
    );
    // Which manifests turn the feature on: the root's dev-dependencies.
    let mut manifests = vec![root.join("Cargo.toml")];
    for e in std::fs::read_dir(root.join("crates")).unwrap() {
        manifests.push(e.unwrap().path().join("Cargo.toml"));
    }
    let mut turned_on = 0;
    for m in manifests {
        let Ok(text) = std::fs::read_to_string(&m) else {
            continue;
        };
        // The table each line is in: the last `[header]` line above it.
        let mut table = "";
        for line in text.lines() {
            let t = line.trim();
            if t.starts_with('[') && !t.contains('=') {
                table = t;
            }
            if t.contains("\"test-support\"") {
                assert_eq!(
                    table,
                    "[dev-dependencies]",
                    "{} turns test-support on outside [dev-dependencies]: {line}",
                    m.display()
                );
                turned_on += 1;
            }
        }
    }
    assert_eq!(turned_on, 1, "the root's dev-dependency, once");
}
