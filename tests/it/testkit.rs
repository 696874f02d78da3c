//! Starts the real portal on a free loopback port with a temporary data
//! directory, the demo data and a clock the test can move; hands back an
//! HTTPS client that behaves like a browser (cookies, forms with CSRF).

use std::sync::{Arc, Mutex};

use shomei_core::LoginId;
use shomei_service::{ManualClock, Settings, Shomei};
use shomei_web::{RunningServer, ServerOptions};

/// The store behind a running service, for what a test sets up or checks
/// that no use case shows: the service's `test-support` feature, which only
/// the tests' dev-dependency turns on (no build of the server has it).
pub trait StoreOf {
    fn store(&self) -> &shomei_store::Store;
}

impl StoreOf for Shomei {
    fn store(&self) -> &shomei_store::Store {
        shomei_service::test_support::store(self)
    }
}

pub const LOGIN_PW: &str = "Shomei#Demo1";
pub const CONFIRM_PW: &str = "Shomei#Kakunin1";

pub struct Kit {
    pub base: String,
    /// The certificate listener (client certificates required).
    pub cert_base: String,
    /// The metrics listener (plain HTTP).
    pub metrics_base: String,
    /// The operator console (operator certificates required).
    pub operator_base: String,
    /// The plain-HTTP PKI listener (CRLs, OCSP), when started with one
    /// (`start_with_pki`): then the URLs in certificates name it, as a
    /// production server's do; else they name the portal.
    pub pki_base: Option<String>,
    pub svc: Arc<Shomei>,
    pub clock: Arc<ManualClock>,
    pub dir: tempfile::TempDir,
    server: Option<RunningServer>,
}

impl Kit {
    pub async fn start() -> Kit {
        Self::start_with(Settings::default()).await
    }

    /// The real upkeep loop is kept out of the way (one round an hour, so
    /// never within a test): tests that count notices, CRLs or timeouts
    /// call the upkeep functions themselves, by the test clock. See
    /// `start_with_upkeep` for a server whose loop runs.
    pub async fn start_with(settings: Settings) -> Kit {
        Self::start_with_upkeep(Settings {
            upkeep_interval_seconds: 3600,
            ..settings
        })
        .await
    }

    /// As `start`, with the plain-HTTP PKI listener, whose URLs the
    /// certificates name (CRL distribution points, OCSP).
    pub async fn start_with_pki() -> Kit {
        Self::start_inner(
            Settings {
                upkeep_interval_seconds: 3600,
                ..Settings::default()
            },
            true,
        )
        .await
    }

    /// As `start_with`, the upkeep loop running as configured.
    pub async fn start_with_upkeep(settings: Settings) -> Kit {
        Self::start_inner(settings, false).await
    }

    async fn start_inner(mut settings: Settings, pki: bool) -> Kit {
        log_to_test_output();
        settings.database_url = fresh_database().await;
        let dir = tempfile::tempdir().unwrap();
        let listener = shomei_web::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("https://localhost:{}", addr.port());
        let clock = Arc::new(ManualClock::default());
        let pki_listener = if pki {
            Some(
                shomei_web::bind("127.0.0.1:0".parse().unwrap())
                    .await
                    .unwrap(),
            )
        } else {
            None
        };
        let pki_base = pki_listener
            .as_ref()
            .map(|l| format!("http://localhost:{}", l.local_addr().unwrap().port()));
        let svc = Arc::new(
            Shomei::open_with_pki(
                dir.path(),
                &base,
                pki_base.as_deref().unwrap_or(&base),
                settings,
                clock.clone(),
            )
            .await
            .unwrap(),
        );
        svc.seed_demo().await.unwrap();
        let cert_listener = shomei_web::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let cert_base = format!(
            "https://localhost:{}",
            cert_listener.local_addr().unwrap().port()
        );
        let opts = ServerOptions {
            listen: addr,
            extra_names: vec![],
            cert_public_url: Some(cert_base.clone()),
        };
        let metrics_listener = shomei_web::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let metrics_base = format!("http://{}", metrics_listener.local_addr().unwrap());
        let operator_listener = shomei_web::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let operator_base = format!(
            "https://localhost:{}",
            operator_listener.local_addr().unwrap().port()
        );
        let server = shomei_web::start_all(
            svc.clone(),
            listener,
            shomei_web::Listeners {
                cert: Some(cert_listener),
                pki: pki_listener,
                metrics: Some(metrics_listener),
                operator: Some(operator_listener),
            },
            opts,
        )
        .await
        .unwrap();
        Kit {
            base,
            cert_base,
            metrics_base,
            operator_base,
            pki_base,
            svc,
            clock,
            dir,
            server: Some(server),
        }
    }

    pub async fn stop(mut self) {
        self.stop_serving().await;
    }

    /// Stops the server (its listeners and its background tasks: the CRL
    /// publisher, the revocation watch, the upkeep), keeping its data for
    /// `another_server`.
    pub async fn stop_serving(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }

    /// Stops the server and hands back its data directory (a restart's).
    pub async fn stop_keeping_data(mut self) -> tempfile::TempDir {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
        self.dir
    }

    /// Logged-in sessions in the database.
    pub async fn sessions(&self) -> usize {
        self.svc.store().session_count().await.unwrap() as usize
    }

    pub fn browser(&self) -> Browser {
        let root = reqwest::Certificate::from_pem(self.svc.ca().root_pem().as_bytes()).unwrap();
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let client = reqwest::Client::builder()
            .tls_certs_only([root])
            .cookie_provider(jar.clone())
            .build()
            .unwrap();
        Browser {
            client,
            jar,
            base: self.base.clone(),
            csrf: Mutex::new(String::new()),
        }
    }

    /// The user's id in the database (for forged requests).
    /// Another server on this kit's data directory (a restart, or a second
    /// node), sharing its clock; it serves nothing but can be called.
    pub async fn another_server(&self) -> Shomei {
        Shomei::open(
            self.dir.path(),
            &self.base,
            self.default_settings(),
            self.clock.clone(),
        )
        .await
        .unwrap()
    }

    /// The service as the operator's CLI opens it on this kit's data.
    pub async fn operator(&self) -> Shomei {
        Shomei::open_for_operator(
            self.dir.path(),
            &self.base,
            self.default_settings(),
            self.clock.clone(),
        )
        .await
        .unwrap()
    }

    /// The default settings, on this kit's database.
    fn default_settings(&self) -> Settings {
        Settings {
            database_url: self.svc.settings().database_url.clone(),
            ..Settings::default()
        }
    }

    /// The serial of `login_id`'s latest certificate.
    pub async fn serial_of(&self, login_id: &str) -> shomei_core::Serial {
        self.svc
            .store()
            .latest_cert(shomei_core::UserId(self.user_id(login_id).await))
            .await
            .unwrap()
            .unwrap()
            .serial
    }

    pub async fn user_id(&self, login_id: &str) -> i64 {
        self.svc
            .store()
            .user_by_login_id(&LoginId::parse(login_id).unwrap())
            .await
            .unwrap()
            .unwrap()
            .id
            .0
    }

    /// Is there a user with this login ID?
    pub async fn has_user(&self, login_id: &str) -> bool {
        self.svc
            .store()
            .user_by_login_id(&LoginId::parse(login_id).unwrap())
            .await
            .unwrap()
            .is_some()
    }

    /// Is the user's most recent certificate revoked?
    pub async fn revoked(&self, login_id: &str) -> bool {
        let id = shomei_core::UserId(self.user_id(login_id).await);
        self.svc
            .store()
            .latest_cert(id)
            .await
            .unwrap()
            .is_some_and(|c| c.revoked_at.is_some())
    }

    pub async fn counters(&self, login_id: &str) -> shomei_core::SecurityCounters {
        self.svc
            .store()
            .user_by_login_id(&LoginId::parse(login_id).unwrap())
            .await
            .unwrap()
            .unwrap()
            .counters
    }

    /// 操作履歴 rows of the demo company, newest first, as "operation/result/target".
    pub async fn history(&self) -> Vec<String> {
        self.history_of(1).await
    }

    /// The bank's own 操作履歴 rows (no company: the operators' and the
    /// approvals'), oldest first.
    pub async fn bank_rows(&self) -> Vec<shomei_core::records::AuditRow> {
        let mut rows = vec![];
        self.svc
            .store()
            .audit_for_each(None, |r| {
                if r.company_id.is_none() {
                    rows.push(r.clone());
                }
            })
            .await
            .unwrap();
        rows
    }

    /// The bank's own 操作履歴 rows, oldest first, as
    /// "actor/operation/result/target".
    pub async fn bank_history(&self) -> Vec<String> {
        self.bank_rows()
            .await
            .iter()
            .map(|r| {
                format!(
                    "{}/{}/{}/{}",
                    r.actor_login_id, r.operation, r.result, r.target_login_id
                )
            })
            .collect()
    }

    /// The bank's own 操作履歴 rows, oldest first, as
    /// "actor/operation/result/detail".
    pub async fn bank_details(&self) -> Vec<String> {
        self.bank_rows()
            .await
            .iter()
            .map(|r| {
                format!(
                    "{}/{}/{}/{}",
                    r.actor_login_id, r.operation, r.result, r.detail
                )
            })
            .collect()
    }

    /// 操作履歴 rows of a company, newest first, as
    /// "actor/operation/result/target".
    pub async fn history_of(&self, company: i64) -> Vec<String> {
        let rows = self
            .svc
            .store()
            .audit_for_company(shomei_core::CompanyId(company), 1000, 0)
            .await
            .unwrap();
        rows.iter()
            .map(|r| {
                format!(
                    "{}/{}/{}/{}",
                    r.actor_login_id, r.operation, r.result, r.target_login_id
                )
            })
            .collect()
    }
}

/// A new operator of the console, added by root on the server's shell.
pub async fn operator(kit: &Kit, name: &str, roles: &str) -> shomei_service::NewOperator {
    kit.svc.add_operator(name, roles, "root").await.unwrap()
}

/// The operator as the console's service sees them (their certificate in
/// force).
pub async fn on(svc: &Shomei, op: &shomei_service::NewOperator) -> shomei_service::ConsoleOperator {
    svc.console_operator(&op.serial)
        .await
        .unwrap()
        .expect("the operator's certificate is in force")
}

/// An HTTPS client that keeps cookies and the last page's CSRF token.
pub struct Browser {
    pub client: reqwest::Client,
    /// Its cookies, to replay them from elsewhere.
    pub jar: Arc<reqwest::cookie::Jar>,
    pub base: String,
    csrf: Mutex<String>,
}

pub struct Page {
    pub status: u16,
    pub url: String,
    pub body: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Page {
    pub fn has(&self, s: &str) -> bool {
        self.body.contains(s)
    }

    pub fn path(&self) -> &str {
        let after_scheme = self.url.split_once("://").map(|x| x.1).unwrap_or("");
        let path = after_scheme
            .find('/')
            .map(|i| &after_scheme[i..])
            .unwrap_or("/");
        path.split('?').next().unwrap_or(path)
    }

    /// Asserts a 403 that says `message`: a CSRF slip is a 403 too, with
    /// another message, so the status alone proves nothing.
    pub fn assert_refused(&self, message: &str, what: &str) {
        assert_eq!(
            (self.status, self.error().as_deref()),
            (403, Some(message)),
            "{what}"
        );
    }

    /// Text of the first `div.error`, if any.
    pub fn error(&self) -> Option<String> {
        let start = self.body.find("<div class=\"error\" role=\"alert\">")?;
        let rest = &self.body[start + 32..];
        Some(rest[..rest.find("</div>")?].to_string())
    }
}

pub fn csrf_of(body: &str) -> Option<String> {
    let i = body.find("name=\"csrf\" value=\"")? + 19;
    Some(body[i..i + 64].to_string())
}

impl Browser {
    async fn page(&self, r: reqwest::Response) -> Page {
        let status = r.status().as_u16();
        let url = r.url().to_string();
        let headers = r.headers().clone();
        let body = r.text().await.unwrap();
        if let Some(t) = csrf_of(&body) {
            *self.csrf.lock().unwrap() = t;
        }
        Page {
            status,
            url,
            body,
            headers,
        }
    }

    pub async fn get(&self, path: &str) -> Page {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        self.page(r).await
    }

    /// Submits a form with the CSRF token of the last page seen.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.csrf.lock().unwrap().clone();
        let mut all: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    /// Submits exactly these fields (no CSRF token added).
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .form(fields)
            .send()
            .await
            .unwrap();
        self.page(r).await
    }

    pub async fn login(&self, login_id: &str, password: &str) -> Page {
        self.get("/login").await;
        self.post("/login", &[("login_id", login_id), ("password", password)])
            .await
    }

    /// 「実行 >」 on the BRSK019 now shown, with this 確認パスワード.
    pub async fn execute(&self, confirm_password: &str) -> Page {
        let token = crate::revocation::token(&self.get("/brsk019").await.body);
        self.post(
            "/brsk019",
            &[
                ("action", "execute"),
                ("token", &token),
                ("confirm_password", confirm_password),
            ],
        )
        .await
    }

    /// Logs in and opens BRSK019 for `target` (by login ID).
    pub async fn to_brsk019(&self, kit: &Kit, actor: &str, target: &str) -> Page {
        let p = self.login(actor, LOGIN_PW).await;
        assert_eq!(p.path(), "/top", "{actor} logs in");
        self.get("/brsk018").await;
        let id = kit.user_id(target).await.to_string();
        self.post("/brsk018", &[("user", &id)]).await
    }
}

impl Kit {
    /// Waits until every revocation so far is in the published CRLs. They
    /// follow a revocation within the second on an idle machine; the ceiling
    /// is generous because dozens of servers start at once in this suite.
    pub async fn crl_caught_up(&self) {
        assert!(
            eventually(|| self.svc.crl_up_to_date()).await,
            "the CRL was not published within {EVENTUALLY:?} of a revocation"
        );
    }
}

/// How long a test waits for something the server does in the background.
/// Far more than it takes, so a busy machine does not fail the test.
pub const EVENTUALLY: std::time::Duration = std::time::Duration::from_secs(30);

/// Polls `done` every 10 ms until it holds (true) or `EVENTUALLY` passes (false).
pub async fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    loop {
        if done() {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Polls the async `done` every 10 ms until it holds; fails the test, saying
/// what it waited for, when `EVENTUALLY` passes first.
pub async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {EVENTUALLY:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// With SHOMEI_IT_DATABASE=postgres, a new empty PostgreSQL database for
/// one kit on the server SHOMEI_TEST_DATABASE_URL names (scripts/postgres
/// starts one); else none: SQLite in the kit's data directory.
pub async fn fresh_database() -> Option<shomei_service::DatabaseUrl> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    if std::env::var("SHOMEI_IT_DATABASE").as_deref() != Ok("postgres") {
        return None;
    }
    let server = std::env::var("SHOMEI_TEST_DATABASE_URL")
        .expect("SHOMEI_IT_DATABASE=postgres needs SHOMEI_TEST_DATABASE_URL (scripts/postgres)");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let name = format!(
        "shomei_it_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let server = shomei_service::DatabaseUrl::parse(&server).unwrap();
    Some(create_database(&server, &name).await)
}

/// Creates the empty database `name` on the server of `url` (its user must
/// be allowed to) and returns its URL.
pub async fn create_database(
    url: &shomei_service::DatabaseUrl,
    name: &str,
) -> shomei_service::DatabaseUrl {
    let created = shomei_store::DatabaseUrl::parse(url.with_password())
        .unwrap()
        .create_database(name)
        .await
        .unwrap();
    shomei_service::DatabaseUrl::parse(created.with_password()).unwrap()
}

/// The servers' log (info and up) into the test's captured output, which
/// the test harness shows beside a failure: what the watch, the publisher
/// and the upkeep did on the way to it.
fn log_to_test_output() {
    // Fails only when already set (by another test of this process).
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .try_init();
}

/// Holds two nodes' transactions of `op` side by side, through the
/// service's pause points (each once): node `a`'s transaction opens and
/// reads what it decides on (an approval: the request; the first
/// operator: the count of operators), then waits there, open, until node
/// `b`'s transaction has begun too; `b` begins only once `a`'s is open.
/// `a` goes on when `b` has reached the same point (both read before
/// either wrote) or is waiting for a lock `a` holds: on PostgreSQL a row
/// or table lock, seen in `pg_stat_activity`; on SQLite the write lock,
/// which a write transaction takes at its BEGIN (`b` is let go into its
/// BEGIN, where it waits for `a`'s commit).
pub fn side_by_side(kit: &Kit, a: &Shomei, b: &Shomei, op: shomei_core::Operation) {
    use shomei_service::test_support::{PausePoint, set_pause_hook};
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use tokio::sync::Notify;
    let a_open = Arc::new(Notify::new());
    let b_there = Arc::new(Notify::new());
    let (open, there) = (a_open.clone(), b_there.clone());
    let held = Arc::new(AtomicBool::new(false));
    assert!(set_pause_hook(
        a,
        Arc::new(move |p| {
            let (open, there, held) = (open.clone(), there.clone(), held.clone());
            Box::pin(async move {
                if p == PausePoint::InTransaction(op) && !held.swap(true, SeqCst) {
                    open.notify_one();
                    there.notified().await;
                }
            })
        })
    ));
    let pg = kit.svc.settings().database_url.clone();
    let began = Arc::new(AtomicBool::new(false));
    let inside = Arc::new(AtomicBool::new(false));
    assert!(set_pause_hook(
        b,
        Arc::new(move |p| {
            let (open, there, pg) = (a_open.clone(), b_there.clone(), pg.clone());
            let (began, inside) = (began.clone(), inside.clone());
            Box::pin(async move {
                if p == PausePoint::Begin(op) && !began.swap(true, SeqCst) {
                    open.notified().await;
                    match pg {
                        // Let go into BEGIN, where it waits for the lock.
                        None => there.notify_one(),
                        Some(url) => {
                            tokio::spawn(lock_waited(url, there, inside));
                        }
                    }
                } else if p == PausePoint::InTransaction(op) && !inside.swap(true, SeqCst) {
                    there.notify_one();
                }
            })
        })
    ));
}

/// Notifies `there` once a session of the kit's PostgreSQL database waits
/// for a lock; stops without when `inside` (the other node reached its
/// point instead).
async fn lock_waited(
    url: shomei_service::DatabaseUrl,
    there: Arc<tokio::sync::Notify>,
    inside: Arc<std::sync::atomic::AtomicBool>,
) {
    use sqlx::Connection as _;
    let mut c = sqlx::PgConnection::connect(url.with_password())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    while !inside.load(std::sync::atomic::Ordering::SeqCst) {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut c)
        .await
        .unwrap();
        if waiting > 0 {
            there.notify_one();
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no transaction waited for a lock within {EVENTUALLY:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}
