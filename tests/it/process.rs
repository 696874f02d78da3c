//! The server as its binary runs: `shomei serve` started as a process, for
//! what only the process shows: the listeners' default addresses, the
//! open-files limit it raises at start, and how it rides out running out of
//! file descriptors.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::testkit::{EVENTUALLY, wait_for};

/// A running `shomei serve --demo` and what it has printed so far.
struct Server {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts `shomei serve --demo` on a fresh data directory with `args`,
    /// the shell running `before` first (an `ulimit`); SHOMEI_* variables of
    /// the test's environment are left out.
    fn start(before: &str, args: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("{before}\nexec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_shomei"))
            .args(["serve", "--demo", "--data-dir"])
            .arg(dir.path())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, _) in std::env::vars() {
            if k.starts_with("SHOMEI_") {
                cmd.env_remove(k);
            }
        }
        let mut child = cmd.spawn().unwrap();
        let lines = |r: Box<dyn std::io::Read + Send>| {
            let seen = Arc::new(Mutex::new(Vec::new()));
            let into = seen.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(r).lines() {
                    let Ok(l) = l else { break };
                    into.lock().unwrap().push(l);
                }
            });
            seen
        };
        let stdout = lines(Box::new(child.stdout.take().unwrap()));
        let stderr = lines(Box::new(child.stderr.take().unwrap()));
        Server {
            child,
            stdout,
            stderr,
            _dir: dir,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Waits for the first line of standard output that starts with
    /// `prefix`; fails with everything printed when the process ends or
    /// `EVENTUALLY` passes first.
    async fn printed(&mut self, prefix: &str) -> String {
        let deadline = tokio::time::Instant::now() + EVENTUALLY;
        loop {
            if let Some(l) = self
                .stdout
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.starts_with(prefix))
            {
                return l.clone();
            }
            let ended = self.child.try_wait().unwrap();
            assert!(
                ended.is_none() && tokio::time::Instant::now() < deadline,
                "no {prefix:?} (exit {ended:?}):\n{}\n{}",
                self.stdout.lock().unwrap().join("\n"),
                self.stderr.lock().unwrap().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The standard error lines so far, the log's among them
    /// (quotes around field values dropped: `field=value`).
    fn errors(&self) -> Vec<String> {
        let lines = self.stderr.lock().unwrap();
        lines.iter().map(|l| l.replace('"', "")).collect()
    }

    /// The soft and hard open-files limits of the running process.
    fn open_files_limit(&self) -> (u64, u64) {
        open_files_limit(&std::fs::read_to_string(format!("/proc/{}/limits", self.pid())).unwrap())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// "Max open files  SOFT  HARD  files" of a /proc/PID/limits text.
fn open_files_limit(limits: &str) -> (u64, u64) {
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or_else(|| panic!("{limits}"));
    let n: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (n[0], n[1])
}

/// A port free on loopback now (the server takes it a moment later).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The README: the metrics listener is on http://127.0.0.1:9464/metrics by
/// default ("--metrics-listen; loopback by default"), and "at start the soft
/// open-files limit is raised to the hard one (both logged)". The server is
/// started on a fixed portal port with every other listener on a free one
/// and no metrics address: it serves /metrics on 127.0.0.1:9464. Started
/// with a soft limit of 256 (the control: the same shell line shows 256 to a
/// program that does not raise it), the process runs at the hard limit and
/// logs both.
#[tokio::test]
async fn metrics_default_to_loopback_9464_and_the_open_files_limit_is_raised() {
    let before = "ulimit -S -n 256";
    let control = Command::new("sh")
        .arg("-c")
        .arg(format!("{before}\nexec cat /proc/self/limits"))
        .output()
        .unwrap();
    let (soft, hard) = open_files_limit(&String::from_utf8_lossy(&control.stdout));
    assert_eq!(soft, 256, "the shell lowers the soft limit");
    assert!(hard > 256, "a hard limit above 256 to raise it to: {hard}");

    let port = free_port().to_string();
    let portal = format!("127.0.0.1:{port}");
    let mut server = Server::start(
        before,
        &[
            "--listen",
            &portal,
            "--cert-listen",
            "127.0.0.1:0",
            "--pki-listen",
            "127.0.0.1:0",
            "--operator-listen",
            "127.0.0.1:0",
        ],
    );
    let line = server.printed("Metrics (Prometheus): ").await;
    assert_eq!(line, "Metrics (Prometheus): http://127.0.0.1:9464/metrics");
    let text = reqwest::get("http://127.0.0.1:9464/metrics")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("# TYPE shomei_tls_handshakes_total counter"),
        "{text}"
    );
    // This server's: it counts the portal handshake made now.
    let root = std::fs::read(server.dir().join("ca/root-ca.crt")).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&root).unwrap()])
        .build()
        .unwrap();
    let r = client
        .get(format!("https://localhost:{port}/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let handshakes = reqwest::get("http://127.0.0.1:9464/metrics")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        handshakes.contains("shomei_tls_handshakes_total{listener=\"portal\",result=\"ok\"} 1"),
        "{handshakes}"
    );

    assert_eq!(
        server.open_files_limit(),
        (hard, hard),
        "raised to the hard limit"
    );
    let logged = server.errors();
    assert!(
        logged.iter().any(|l| l.contains("open-files limit")
            && l.contains("soft_before=256")
            && l.contains(&format!("soft={hard}"))
            && l.contains(&format!("hard={hard}"))),
        "{logged:#?}"
    );
}

/// The README: "accept errors (too many open files) back off instead of
/// spinning". A server whose hard open-files limit is small is flooded with
/// idle connections on its metrics listener until accept fails (it says it
/// backs off); the failures are counted, and few (a spinning loop makes
/// thousands a second); once the connections go, it serves again: the
/// metrics listener and the portal.
#[tokio::test]
async fn out_of_file_descriptors_the_server_backs_off_and_serves_once_they_are_free() {
    let mut server = Server::start("ulimit -n 96", &["--listen", "127.0.0.1:0"]);
    let line = server.printed("Metrics (Prometheus): ").await;
    let metrics = line
        .strip_prefix("Metrics (Prometheus): http://")
        .and_then(|a| a.strip_suffix("/metrics"))
        .unwrap()
        .to_owned();
    let login = server.printed("Shomei is running: ").await;
    let portal = login
        .strip_prefix("Shomei is running: ")
        .and_then(|u| u.split_whitespace().next())
        .unwrap()
        .to_owned();
    let accept_errors = async || {
        let text = reqwest::get(format!("http://{metrics}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| {
                l.strip_prefix("shomei_accept_errors_total{listener=\"metrics\"} ")?
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or_else(|| panic!("{text}"))
    };
    assert_eq!(accept_errors().await, 0.0);
    assert_eq!(server.open_files_limit(), (96, 96));

    // More idle connections than the process has descriptors.
    let mut held = Vec::new();
    for _ in 0..150 {
        let mut s = tokio::net::TcpStream::connect(&metrics).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\n").await.unwrap();
        held.push(s);
    }
    let backing_off = || {
        server
            .errors()
            .iter()
            .any(|l| l.contains("accept failing: backing off") && l.contains("listener=metrics"))
    };
    wait_for("the server says it backs off", async || backing_off()).await;
    let since = std::time::Instant::now();
    drop(held);
    let served = accept_errors().await;
    let elapsed = since.elapsed();
    assert!(served >= 1.0, "the failed accepts are counted");
    // The pause doubles from 5 ms to a second: a handful of failures in the
    // second or so it took to say so, at most one per 5 ms after that.
    let ceiling = 20.0 + elapsed.as_secs_f64() / 0.005;
    assert!(served <= ceiling, "{served} failed accepts: it spun");
    let root = std::fs::read(server.dir().join("ca/root-ca.crt")).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&root).unwrap()])
        .build()
        .unwrap();
    let r = client.get(&portal).send().await.unwrap();
    assert_eq!(r.status(), 200, "the portal serves");
    assert!(server.child.try_wait().unwrap().is_none(), "still running");
}
