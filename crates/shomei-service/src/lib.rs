//! Shomei's use cases: one function per operation of the guide.
//!
//! Each use case loads what it needs, asks `shomei-core` what is allowed,
//! calls the CA, and commits the change together with its 操作履歴 row in one
//! transaction. Nothing here knows HTTP or HTML.

mod access;
mod certificates;
mod clock;
mod company;
mod operations;
mod pause;
mod people;
mod settings;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use shomei_core::records::CompanyRow;
use shomei_core::{Actor, CertState, Operation, Refusal};
use shomei_pki::{Ca, Endpoints};
use shomei_store::{AuditEntry, Store};
use time::OffsetDateTime;

pub use access::login::LoginOutcome;
pub use access::password_change::{PasswordChangeError, PasswordKind};
pub use access::sessions::{SessionData, SessionOpenError, Sessions, WaitingRevocation};
pub use certificates::crl::{CrlFigures, CrlSnapshot, export_crl};
pub use certificates::enroll::{EnrollError, Issued};
pub use certificates::revoke::{
    OperatorRevocation, OperatorRevokeError, PhoneRequest, RevocationDone, RevocationTarget,
    RevokeError, SortKey, UserListRow, needs_approval_ja,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use company::capability::{Manager, Master};
pub use company::contact::{CompanyError, CompanyOverview};
pub use company::history::{HISTORY_PAGE_SIZE, HistoryPage, HistoryQuery};
pub use company::stop::{ServiceChange, ServiceStateRow, StopError};
pub use company::users::{UserAdminError, UserForm};
pub use operations::approvals::{
    ALREADY_VOTED, Applied, ApprovalChange, ApprovalError, ApprovalKind, ApprovalPage,
    ApprovalRefusal, ApprovalRule, ApprovalView, Approved, BusinessCompany, EXPIRED, InvalidField,
    MASTER_LEFT, MAX_REQUIRED, NOT_BUSINESS_ADMIN, NOT_OPERATIONS_ADMIN, OWN_REQUEST, PendingVote,
    Submitted, already_committed,
};
pub use operations::audit_export::{AuditExportError, AuditExportFormat, csv_line};
pub use operations::auditor::{
    AuditorTasks, BAD_COMPANY_ID, BAD_PERIOD, CsvDownload, CsvEncoding, NOT_AUDITOR,
    REVIEW_PAGE_SIZE, ReviewForm, ReviewPage, ReviewQuery, csv_bytes,
};
pub use operations::backup::{BackupDone, BackupError, backup};
pub use operations::company_service::{
    CompanyServices, NO_SUCH_COMPANY, SAME_SERVICE, ServiceChanged, ServiceLimits,
};
pub use operations::console_access::{
    OPERATOR_NOT_IN_FORCE, OPERATOR_PASSWORD_STOPPED, OPERATOR_PASSWORD_WRONG,
};
pub use operations::demo::{
    DEMO_CONFIRM_PASSWORD, DEMO_LOGIN_PASSWORD, DEMO_P12_PASSWORD, DemoUser,
};
pub use operations::helpdesk::{
    CALLER_MISSING, HelpDeskTasks, INVALIDITY_IN_FUTURE, LiftDone, NO_SUCH_USER, NOT_HELPDESK,
    PhoneRevocationDone, QUERY_TOO_LONG, SEARCH_PAGE_INVALID, SearchPageKey, UserCertView,
    UserDetail, UserSearchPage, UserSearchRow,
};
pub use operations::helpdesk_reset::{
    MASTER_NEEDS_APPROVAL, MasterPasswords, MasterResetDone, PasswordReset, PasswordResetDone,
};
pub use operations::metrics::{ConnRefusal, Listener, Metrics};
pub use operations::operator::{OperatorError, TemporaryPasswords};
pub use operations::operators::{
    ConsoleOperator, NewOperator, OperatorAdminError, OperatorListRow,
};
pub use operations::records::Records;
pub use operations::shell_approvals::{BreakGlassDone, FirstOperatorError};
pub use people::{Operator, User};
pub use settings::{DatabaseUrl, HelpDesk, Settings};
pub use shomei_core::records::{ChainCheck, CompanyContact};

/// The database failed (unreachable, a constraint, a value it cannot hold,
/// a schema newer than this program): shown and logged with the store's
/// own message; which store and which error is the service's business.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct DatabaseError(shomei_store::StoreError);

/// The store's results with the service's error: `.db()?` in a use case,
/// whose own error converts from [`DatabaseError`]. Crate-private, so that
/// no public type of the service converts from (or names) the store's error.
pub(crate) trait Db<T> {
    /// This result, its store error wrapped as a [`DatabaseError`].
    fn db(self) -> std::result::Result<T, DatabaseError>;
}

impl<T> Db<T> for std::result::Result<T, shomei_store::StoreError> {
    fn db(self) -> std::result::Result<T, DatabaseError> {
        self.map_err(DatabaseError)
    }
}

/// Failures that are ours, not the user's: logged in English, shown as a
/// generic Japanese system-error page.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The database failed.
    #[error(transparent)]
    Database(#[from] DatabaseError),
    /// The CA failed (a key, a signature, a file of ca/).
    #[error(transparent)]
    Pki(#[from] shomei_pki::PkiError),
    /// The data directory cannot be read or written.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// Which file or folder.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// Hashing a password failed.
    #[error("password hashing failed: {0}")]
    Password(String),
    /// Making or signing a CRL failed.
    #[error("CRL generation failed: {0}")]
    Crl(String),
    /// Making a PKCS#12 file failed.
    #[error("PKCS#12: {0}")]
    Pkcs12(String),
    /// A notice could not be sent.
    #[error("mail: {0}")]
    Mail(String),
    /// The settings cannot be used (the message says which).
    #[error("settings: {0}")]
    Settings(String),
    /// This server's CA is not the database's (another node's or an old one).
    #[error(
        "the CA in {dir} is not the one in the database (its {which} differs): this server must use the CA of the first server on this database — copy that server's ca/ folder into this data directory, or use the same PKCS#11 token"
    )]
    CaMismatch {
        /// The data directory whose ca/ differs.
        dir: PathBuf,
        /// What differs: the root or the issuing CA's certificate.
        which: String,
    },
    /// Every password-hashing place is taken: try again shortly (HTTP 503).
    #[error("server busy: every password-hashing place is taken")]
    Busy,
    /// The revocation view is not known to be current: answer nothing that
    /// depends on it (HTTP 503).
    #[error("revocation view not current: {0}")]
    ViewStale(String),
    /// A rule of the code itself was broken: a bug, never the user's doing.
    #[error("internal invariant broken: {0}")]
    Invariant(&'static str),
    /// A task on another thread panicked or was cancelled.
    #[error("background task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// A result whose failure is our own ([`ServiceError`]).
pub type Result<T> = std::result::Result<T, ServiceError>;

/// How a change asked for on a screen ends when it does not happen: refused
/// with a message for the screen (Japanese), or our own trouble.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// Refused: the message for the screen (Japanese).
    #[error("{0}")]
    Refused(String),
    /// Our own trouble, shown as the system-error page.
    #[error(transparent)]
    Internal(#[from] ServiceError),
}

impl From<DatabaseError> for ActionError {
    fn from(e: DatabaseError) -> Self {
        Self::Internal(e.into())
    }
}

/// The running system: store, CA, settings, clock, and the in-memory views
/// of revocation (CRL bytes, the revoked-serial set).
pub struct Shomei {
    store: Store,
    ca: Ca,
    settings: Settings,
    clock: Arc<dyn Clock>,
    crl: certificates::crl::CrlPublisher,
    revoked: certificates::crl::RevokedSet,
    ocsp: certificates::ocsp::Responder,
    /// The bounded pool every password check runs on.
    hasher: access::password::Hasher,
    /// Busy refusals waiting to be written (at most once a second).
    busy_refusals: access::throttle::BusyTally,
    /// The hash an unknown login ID is checked against (same parameters as
    /// every user's), so that timing does not tell whether an ID exists.
    dummy_hash: String,
    /// Where notices are written as .eml files.
    outbox: PathBuf,
    metrics: operations::metrics::Metrics,
    started_unix: i64,
    /// When the revocation view was last confirmed current.
    view: certificates::view::RevocationView,
    /// This server's name in leases (random per process).
    node: String,
    /// This server's copies of the newest CRLs it published, per scope: a
    /// database restored from an older backup gets its revocations back
    /// from them.
    crl_copies: PathBuf,
    /// The revocation set's snapshot in the data directory.
    snapshots: certificates::snapshot::Snapshots,
    /// The portal's logged-in sessions.
    sessions: access::sessions::Sessions,
    /// Where a test holds a racing use case (none in a server).
    pauses: pause::Pauses,
}

/// When and why a certificate was revoked, as the revocation set keeps it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Revocation {
    pub at: OffsetDateTime,
    pub reason: Option<u8>,
    /// RFC 5280 §5.3.2, when the operator gave one.
    pub invalidity: Option<OffsetDateTime>,
}

/// Why a logged-in session ended.
#[derive(Debug, Clone, Copy)]
pub enum SessionEnd<'a> {
    /// Idle longer than `session_idle_minutes`.
    Timeout,
    /// Opened with a certificate that is now revoked.
    CertificateRevoked(&'a shomei_core::Serial),
}

/// A user's latest certificate as their own screens show it.
#[derive(Debug, Clone, Copy)]
pub struct OwnCertificate {
    /// 証明書状態 of the user's latest certificate (未発行 when none).
    pub state: CertState,
    /// The latest certificate's end, whatever its state.
    pub not_after: Option<OffsetDateTime>,
}

/// A user's latest certificate, by login ID (`shomei cert show`).
#[derive(Debug, Clone)]
pub enum CertificateOf {
    /// No user has this login ID.
    NoSuchUser,
    /// The user has no certificate (未発行).
    NoCertificate,
    /// The user's latest certificate.
    Latest {
        /// Its serial number.
        serial: shomei_core::Serial,
        /// Its state now.
        state: CertState,
        /// End of its validity.
        not_after: OffsetDateTime,
        /// The certificate itself (DER).
        der: Vec<u8>,
    },
}

/// The acting user with their company, loaded fresh for each request.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who acts, with their role.
    pub actor: Actor,
    /// Their company.
    pub company: CompanyRow,
    /// Their user record.
    pub user: User,
}

impl Shomei {
    /// Opens the data directory: database (migrated), CA (created on first
    /// start), the CRL and the revocation set.
    pub async fn open(
        data_dir: &Path,
        public_url: &str,
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        Self::open_with_pki(data_dir, public_url, public_url, settings, clock).await
    }

    /// As `open`, with the CRL and OCSP URLs written into certificates under
    /// `pki_url` (the plain-HTTP PKI listener) rather than the portal.
    pub async fn open_with_pki(
        data_dir: &Path,
        public_url: &str,
        pki_url: &str,
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let this = Self::open_unloaded(data_dir, public_url, pki_url, settings, clock).await?;
        this.reimport_from_crl_copy().await?;
        this.load_revocations_at_start().await?;
        Ok(this)
    }

    /// As `open`, for an operator command that changes something and exits
    /// (`shomei cert revoke`, `shomei user …`, `shomei company …`): the
    /// revocation set is not loaded and no CRL is published. Such a process
    /// never answers TLS, OCSP or CRL requests; what it revokes reaches the
    /// running server through the revocation log.
    pub async fn open_for_operator(
        data_dir: &Path,
        public_url: &str,
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        Self::open_unloaded(data_dir, public_url, public_url, settings, clock).await
    }

    async fn open_unloaded(
        data_dir: &Path,
        public_url: &str,
        pki_url: &str,
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        if !data_dir.exists() {
            // A new data directory is the service's alone.
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(data_dir)
                .map_err(|source| ServiceError::DataDir {
                    path: data_dir.to_owned(),
                    source,
                })?;
        }
        let store = settings.open_store(data_dir).await.db()?;
        let now = clock.now();
        let hsm = settings.pkcs11().map_err(ServiceError::Settings)?;
        let ca = Ca::load_or_create_with(
            &data_dir.join("ca"),
            &settings.bank_name,
            Endpoints::with_pki(public_url, pki_url).with_crl_partitions(settings.crl_partitions),
            now,
            hsm.as_ref(),
        )?;
        // The CA is the database's: the first server on it records its
        // certificates; any other must bring the same (a copy of the first
        // one's ca/ folder, or the same PKCS#11 token), or it would issue
        // certificates the others do not know.
        for (name, der) in [
            ("ca:root-certificate", ca.root_der().as_ref()),
            ("ca:issuing-certificate", ca.issuing_der().as_ref()),
        ] {
            if store.shared_secret(name, der).await.db()? != der {
                return Err(ServiceError::CaMismatch {
                    dir: data_dir.join("ca"),
                    which: name.trim_start_matches("ca:").replace('-', " "),
                });
            }
        }
        if ca.issuing_not_after() < now + settings.cert_validity() {
            tracing::warn!(
                expires = %ca.issuing_not_after(),
                "the issuing CA expires before a certificate issued now would: such certificates end with it; plan a new issuing CA"
            );
        }
        let hasher = access::password::Hasher::new(
            settings.hash_workers,
            settings.hash_queue,
            settings.hash_reserved_places,
            settings.hash_workers_nice,
        );
        let dummy_hash = hasher.hash("shomei-timing-equaliser").await?;
        let ocsp = certificates::ocsp::Responder::new(
            ca.ocsp_signer(now)?,
            ca.ocsp_issuer()?,
            settings.ocsp_presigned_max,
        );
        let crl = certificates::crl::CrlPublisher::new(ca.crl_signer()?);
        Ok(Self {
            sessions: access::sessions::Sessions::new(
                store.clone(),
                settings.max_sessions,
                settings.max_sessions_per_user,
            ),
            store,
            ca,
            settings,
            clock,
            crl,
            revoked: Arc::default(),
            ocsp,
            hasher,
            busy_refusals: access::throttle::BusyTally::default(),
            dummy_hash,
            metrics: operations::metrics::Metrics::default(),
            started_unix: OffsetDateTime::now_utc().unix_timestamp(),
            view: certificates::view::RevocationView::default(),
            crl_copies: data_dir.join("newest-crls"),
            snapshots: certificates::snapshot::Snapshots::new(data_dir),
            node: {
                let mut b = [0u8; 8];
                rand::Rng::fill(&mut rand::rng(), &mut b[..]);
                hex::encode(b)
            },
            outbox: data_dir.join("outbox"),
            pauses: pause::Pauses::default(),
        })
    }

    /// The settings this service runs with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The CA that issues and signs here.
    pub fn ca(&self) -> &Ca {
        &self.ca
    }

    /// The time now, by the service's clock.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Is this serial revoked? Constant time in the number of revocations.
    pub fn is_revoked(&self, serial: &[u8]) -> bool {
        self.revoked
            .read()
            .map(|s| s.contains(serial))
            .unwrap_or(true)
    }

    /// The operators' counters (handshakes, logins, issuance, revocation,
    /// OCSP, CRLs, request latency).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The metrics in Prometheus text format; `sessions` is the number of
    /// open portal sessions (the caller counts them, within its own bound
    /// of time: [`Sessions::count`]).
    pub fn metrics_text(&self, sessions: Option<usize>) -> String {
        let revoked = self.revoked.read().map(|s| s.len()).unwrap_or(0);
        let h = self.hasher.figures();
        let (writer_waiting, writer_turns_ahead) = self.store.writer_turns();
        self.metrics.render(&operations::metrics::Gauges {
            hashing: (h.workers, h.capacity, h.in_use, h.done),
            hashing_reserved: (h.reserved, h.reserved_in_use),
            revoked,
            ocsp_presigned: self.ocsp.presigned_count(),
            ocsp_presigned_refused: self.ocsp.presigned_refused(),
            sessions,
            resident_bytes: operations::metrics::resident_bytes(),
            started_unix: self.started_unix,
            issuing_ca_not_after: self.ca.issuing_not_after().unix_timestamp(),
            crls: self.crl_figures(),
            writer_waiting,
            writer_turns_ahead,
            from_snapshot: self.started_from_revocation_snapshot(),
        })
    }

    /// Loads the user behind a session. `None` when the user no longer exists
    /// or was stopped by an administrator: the session must end.
    pub async fn session(&self, user_id: shomei_core::UserId) -> Result<Option<Session>> {
        let Some(user) = self.store.user(user_id).await.db()? else {
            return Ok(None);
        };
        if user.counters.admin_stopped {
            return Ok(None);
        }
        let Some(company) = self.store.company(user.company_id).await.db()? else {
            return Ok(None);
        };
        Ok(Some(Session {
            actor: actor_of(&user),
            company,
            user: user.into(),
        }))
    }

    /// The session user's own certificate now (トップページ, BRSK005).
    pub async fn own_certificate(&self, s: &Session) -> Result<OwnCertificate> {
        let latest = self.store.latest_cert(s.user.id).await.db()?;
        Ok(OwnCertificate {
            state: self.cert_state(latest.as_ref().map(|c| c.record()).as_ref()),
            not_after: latest.map(|c| c.not_after),
        })
    }

    /// The latest certificate of the user with `login_id`, with its state now.
    pub async fn certificate_of(&self, login_id: &shomei_core::LoginId) -> Result<CertificateOf> {
        let Some(user) = self.store.user_by_login_id(login_id).await.db()? else {
            return Ok(CertificateOf::NoSuchUser);
        };
        let Some(cert) = self.store.latest_cert(user.id).await.db()? else {
            return Ok(CertificateOf::NoCertificate);
        };
        Ok(CertificateOf::Latest {
            state: self.cert_state(Some(&cert.record())),
            serial: cert.serial,
            not_after: cert.not_after,
            der: cert.der,
        })
    }

    /// The state of a user's certificate now.
    pub fn cert_state(&self, latest: Option<&shomei_core::CertRecord>) -> CertState {
        CertState::derive(latest, self.now(), self.settings.renewal_window())
    }

    /// A 操作履歴 row of `operation` now: the one way rows are begun.
    pub(crate) fn entry(&self, operation: Operation) -> AuditEntry<'static> {
        AuditEntry::new(operation, self.now())
    }

    /// Records an operation that changed nothing (logout, timeout, a
    /// refusal): the row alone, committed.
    pub(crate) async fn record(&self, e: &AuditEntry<'_>) -> Result<()> {
        let mut tx = self.store.begin().await.db()?;
        tx.audit(e).await.db()?;
        tx.commit().await.db()?;
        Ok(())
    }

    /// Takes or renews the upkeep lease: `true` when this server is the one
    /// to run the shared upkeep jobs now. A database error counts as not
    /// held (the jobs wait for the next round).
    pub async fn holds_upkeep_lease(&self) -> bool {
        let ttl = time::Duration::seconds(
            i64::try_from(self.settings.upkeep_interval_seconds.saturating_mul(3)).unwrap_or(90),
        );
        match self
            .store
            .take_lease("upkeep", &self.node, self.now(), ttl)
            .await
        {
            Ok(held) => held.is_some(),
            Err(e) => {
                tracing::error!(error = %e, "cannot take the upkeep lease");
                false
            }
        }
    }

    /// ログアウト: the session's end, in 操作履歴.
    pub async fn logout(&self, actor: &Actor, client: &str) -> Result<()> {
        self.record(&self.entry(Operation::Logout).by_actor(actor).client(client))
            .await
    }

    /// A logged-in session that ended other than by ログアウト, in 操作履歴
    /// (nothing when the user is gone or stopped).
    pub async fn session_ended(
        &self,
        user: shomei_core::UserId,
        why: SessionEnd<'_>,
        client: &str,
    ) -> Result<()> {
        let Some(s) = self.session(user).await? else {
            return Ok(());
        };
        match why {
            SessionEnd::Timeout => {
                let e = self.entry(Operation::SessionTimeout);
                self.record(&e.by_actor(&s.actor).client(client)).await
            }
            SessionEnd::CertificateRevoked(serial) => {
                let detail = format!("電子証明書失効 シリアル番号 {serial}");
                let e = self.entry(Operation::SessionEnded).by_actor(&s.actor);
                self.record(&e.detail(&detail).client(client)).await
            }
        }
    }

    /// Records a refusal of authority and hands it back.
    async fn refuse(
        &self,
        actor: &Actor,
        operation: Operation,
        target: &str,
        r: Refusal,
        client: &str,
    ) -> Result<Refusal> {
        let e = self.entry(operation).by_actor(actor).target(target);
        self.record(&e.failed().detail(r.message_ja()).client(client))
            .await?;
        Ok(r)
    }

    /// 操作履歴 of the actor's company, newest first.
    pub async fn audit_log(
        &self,
        actor: &Actor,
        limit: i64,
    ) -> Result<Vec<shomei_core::records::AuditRow>> {
        Ok(self
            .store
            .audit_for_company(actor.company_id, limit, 0)
            .await
            .db()?)
    }
}

/// For the integration tests only (the cargo feature `test-support`, which
/// only their dev-dependency turns on; no build of the server has it): the
/// store behind a running service, to set up and check what no use case
/// shows.
#[cfg(feature = "test-support")]
#[doc(hidden)]
pub mod test_support {
    /// The store behind `svc`.
    pub fn store(svc: &crate::Shomei) -> &shomei_store::Store {
        &svc.store
    }

    /// The read-only records behind `svc` (as `shomei audit …` opens them).
    pub fn records(svc: &crate::Shomei) -> crate::Records {
        crate::Records::of(svc)
    }

    pub use crate::pause::{PauseHook, PausePoint};

    /// Calls `hook` at every pause point of `svc` (once per service: `false`
    /// when one was set already).
    pub fn set_pause_hook(svc: &crate::Shomei, hook: PauseHook) -> bool {
        svc.pauses.0.set(hook).is_ok()
    }
}

pub(crate) fn actor_of(u: &shomei_store::UserRow) -> Actor {
    Actor {
        user_id: u.id,
        company_id: u.company_id,
        login_id: u.login_id.clone(),
        name: u.name.clone(),
        role: u.role,
    }
}
