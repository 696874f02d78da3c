//! The revocation set and the published CRLs. The set (every revoked serial
//! with its time and reason) is loaded from the database at start and updated
//! by the call that commits a revocation; TLS, sessions and OCSP read it. The
//! full CRL and the delta CRL are encoded from it in memory — never from a
//! database scan — and regenerated after each revocation, several close
//! revocations sharing one generation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use shomei_pki::crl::{CrlEntry, CrlKind, CrlSigner};
use time::{Duration, OffsetDateTime};

use shomei_core::Serial;
use shomei_store::AuditEntry;

use crate::revset::RevocationSet;
use crate::{Result, Revocation, ServiceError, Shomei};

/// The revoked serials of the issuing CA.
pub(crate) type RevokedSet = Arc<RwLock<RevocationSet>>;

/// One generated CRL, served from memory.
#[derive(Debug, Clone)]
pub struct CrlSnapshot {
    /// Shared with every response that sends it: no copy per request.
    pub der: bytes::Bytes,
    pub number: u64,
    pub this_update: OffsetDateTime,
    pub next_update: OffsetDateTime,
    /// Strong validator for HTTP caches: the CRL number.
    pub etag: String,
}

impl Default for CrlSnapshot {
    fn default() -> Self {
        Self {
            der: bytes::Bytes::new(),
            number: 0,
            this_update: OffsetDateTime::UNIX_EPOCH,
            next_update: OffsetDateTime::UNIX_EPOCH,
            etag: String::new(),
        }
    }
}

/// The base of the delta CRLs: a full CRL, and what was revoked since.
#[derive(Default)]
struct Base {
    number: u64,
    since: Vec<(Vec<u8>, Revocation)>,
}

pub(crate) struct CrlPublisher {
    signer: Arc<CrlSigner>,
    current: RwLock<Arc<CrlSnapshot>>,
    delta: RwLock<Arc<CrlSnapshot>>,
    base: Mutex<Base>,
    /// Serialises generation so numbers and contents advance together.
    generating: tokio::sync::Mutex<()>,
    /// Revocations marked / included in a published CRL (coalescing).
    requested: AtomicU64,
    published: AtomicU64,
    /// The highest CRL number taken inside a revocation's own transaction:
    /// the next CRL can use it without a commit of its own.
    reserved: AtomicU64,
    /// Wakes the publisher task after a revocation.
    wake: tokio::sync::Notify,
    /// Wakes the revocation watch (a PostgreSQL notice).
    notified: tokio::sync::Notify,
    /// The last revocation log entry this process has put in force.
    log_seen: std::sync::atomic::AtomicI64,
}

/// How long the publisher waits after a revocation for others to join the
/// same generation. Together with generation itself this stays well under
/// the one second in which a revocation must be in the CRL.
const COALESCE: std::time::Duration = std::time::Duration::from_millis(100);
/// How long the revocation log keeps an entry: far beyond the 250 ms in
/// which every running server reads it.
const LOG_KEPT: time::Duration = time::Duration::hours(1);

impl CrlPublisher {
    pub(crate) fn new(signer: CrlSigner) -> Self {
        Self {
            signer: Arc::new(signer),
            current: RwLock::default(),
            delta: RwLock::default(),
            base: Mutex::default(),
            generating: tokio::sync::Mutex::new(()),
            requested: AtomicU64::new(0),
            published: AtomicU64::new(0),
            reserved: AtomicU64::new(0),
            wake: tokio::sync::Notify::new(),
            notified: tokio::sync::Notify::new(),
            log_seen: std::sync::atomic::AtomicI64::new(0),
        }
    }

    pub(crate) fn current(&self) -> Arc<CrlSnapshot> {
        self.current.read().map(|c| c.clone()).unwrap_or_default()
    }

    pub(crate) fn delta(&self) -> Arc<CrlSnapshot> {
        self.delta.read().map(|c| c.clone()).unwrap_or_default()
    }
}

fn snapshot(
    der: Vec<u8>,
    number: u64,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
    tag: &str,
) -> Arc<CrlSnapshot> {
    Arc::new(CrlSnapshot {
        der: der.into(),
        number,
        this_update,
        next_update,
        etag: format!("\"{tag}-{number}\""),
    })
}

impl Shomei {
    /// Rebuilds the revocation set from the database and publishes a new
    /// full CRL, which becomes the base of the delta CRLs.
    pub(crate) async fn reload_revocations(&self) -> Result<()> {
        let started = std::time::Instant::now();
        // The log head first: a revocation committed while the set loads is
        // then picked up (again, harmlessly) by the watch.
        let head = self.store.revocation_log_head().await?;
        let mut set = RevocationSet::with_capacity(self.store.revoked_count().await?);
        let n = self
            .store
            .for_each_revoked(|serial, at, reason| set.insert_raw(serial, at, reason))
            .await?;
        for (serial, at) in self.store.invalidity_dates().await? {
            set.set_invalidity(serial.as_bytes(), at);
        }
        for (serial, at, reason) in self.store.reimported_revocations().await? {
            set.insert(
                serial.as_bytes(),
                Revocation {
                    at,
                    reason,
                    invalidity: None,
                },
            );
        }
        tracing::info!(
            revoked = n,
            ms = started.elapsed().as_millis() as u64,
            "revocation set loaded"
        );
        if let Ok(mut s) = self.revoked.write() {
            *s = set;
        }
        self.crl.log_seen.fetch_max(head, Ordering::SeqCst);
        self.view.confirm();
        self.publish_crl_with(true).await
    }

    /// Records a CRL number taken in a committed revocation transaction.
    pub(crate) fn crl_number_reserved(&self, n: u64) {
        self.crl.reserved.fetch_max(n, Ordering::SeqCst);
    }

    /// Puts a committed revocation in force in memory: TLS, sessions and
    /// OCSP see it from the next lookup on; the next CRLs list it.
    pub(crate) fn mark_revoked(&self, serial: &[u8], at: OffsetDateTime, reason: u8) {
        self.mark_revoked_with(
            serial,
            Revocation {
                at,
                reason: Some(reason),
                invalidity: None,
            },
        );
    }

    pub(crate) fn mark_revoked_with(&self, serial: &[u8], r: Revocation) {
        if let Ok(mut s) = self.revoked.write() {
            s.insert(serial, r);
        }
        if let Ok(mut b) = self.crl.base.lock() {
            b.since.push((serial.to_vec(), r));
        }
        self.crl.requested.fetch_add(1, Ordering::SeqCst);
        self.ocsp.forget(serial);
        self.metrics().revocation_in_force();
        self.crl.wake.notify_one();
    }

    /// Puts in force the revocations committed by other processes (the
    /// operator's `shomei cert revoke`): every 250 ms, the revocation log
    /// after the last entry seen. Runs for the life of the server.
    pub async fn run_revocation_watch(&self) {
        self.view.confirm();
        self.view.watching();
        loop {
            // Every 250 ms, or at once when PostgreSQL notifies a commit.
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_millis(250)) => {}
                _ = self.crl.notified.notified() => {}
            }
            match self.apply_revocation_log().await {
                // Every revocation committed before this read is in force.
                Ok(_) => self.view.confirm(),
                Err(e) => {
                    tracing::error!(error = %e, "reading the revocation log failed; retrying")
                }
            }
        }
    }

    /// Wakes the watch at every revocation another server commits
    /// (PostgreSQL's LISTEN/NOTIFY), reconnecting after any error. Runs for
    /// the life of the server; on SQLite it returns at once (the poll alone).
    pub async fn run_revocation_listener(&self) {
        loop {
            let mut listener = match self.store.revocation_listener().await {
                Ok(Some(l)) => l,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for revocations; polling only, retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                }
            };
            // A (re)connect may have missed notices: look at the log now.
            self.crl.notified.notify_one();
            while listener.next().await.is_ok() {
                self.metrics().revocation_notice();
                self.crl.notified.notify_one();
            }
            tracing::warn!("revocation listener disconnected; reconnecting");
        }
    }

    /// One pass of the watch; returns how many revocations it put in force.
    pub async fn apply_revocation_log(&self) -> Result<usize> {
        match self.catch_up_from_log().await? {
            Some(n) => Ok(n),
            None => {
                // Entries this server never saw were pruned (it was stalled
                // for longer than the log keeps them): read the whole set
                // again. Anything committed meanwhile is in the log after
                // the new head.
                tracing::warn!(
                    "revocation log pruned past this server; reloading the revocation set"
                );
                self.reload_revocations().await?;
                Ok(0)
            }
        }
    }

    /// Puts in force the log entries after the last one seen; `None` when
    /// some were pruned unseen (the whole set must be read again).
    async fn catch_up_from_log(&self) -> Result<Option<usize>> {
        let seen = self.crl.log_seen.load(Ordering::SeqCst);
        if self.store.revocation_log_tail().await? > seen + 1 {
            return Ok(None);
        }
        let mut applied = 0;
        for r in self.store.revocations_after(seen).await? {
            if !self.is_revoked(r.serial.as_bytes()) {
                self.mark_revoked_with(
                    r.serial.as_bytes(),
                    Revocation {
                        at: r.revoked_at,
                        reason: r.reason,
                        invalidity: r.invalidity,
                    },
                );
                tracing::info!(serial = %r.serial, "revocation committed by another process now in force");
                applied += 1;
            }
            self.crl.log_seen.fetch_max(r.log_id, Ordering::SeqCst);
        }
        Ok(Some(applied))
    }

    /// Drops revocation log entries older than `LOG_KEPT` (upkeep). Every
    /// running server reads the log every 250 ms, and one that starts loads
    /// the whole set from the certificates, so old entries serve nobody.
    pub async fn prune_revocation_log(&self) -> Result<u64> {
        Ok(self
            .store
            .prune_revocation_log(self.now() - LOG_KEPT)
            .await?)
    }

    /// Publishes the CRLs after revocations, coalescing those that come
    /// close together. Runs for the life of the server; the revocation
    /// itself never waits for it (TLS, sessions and OCSP read the set).
    pub async fn run_crl_publisher(&self) {
        loop {
            self.crl.wake.notified().await;
            tokio::time::sleep(COALESCE).await;
            if let Err(e) = self.publish_crl().await {
                tracing::error!(error = %e, "CRL publication failed; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                self.crl.wake.notify_one();
            }
        }
    }

    /// Has every revocation marked so far been published in the CRLs?
    pub fn crl_up_to_date(&self) -> bool {
        self.crl.published.load(Ordering::SeqCst) >= self.crl.requested.load(Ordering::SeqCst)
    }

    /// Publishes new full and delta CRLs that include every revocation
    /// marked so far. A caller that finds its revocation already published
    /// by a generation that started after it returns at once.
    pub async fn publish_crl(&self) -> Result<()> {
        self.publish_crl_with(false).await
    }

    async fn publish_crl_with(&self, new_base: bool) -> Result<()> {
        let wanted = self.crl.requested.load(Ordering::SeqCst);
        let _guard = self.crl.generating.lock().await;
        if !new_base
            && self.crl.published.load(Ordering::SeqCst) >= wanted
            && self.crl.current().number != 0
        {
            return Ok(());
        }
        // Another server may publish meanwhile: a CRL whose number was
        // overtaken is not served, and a new one (with what this server has
        // seen since) is made under a new number.
        // What other servers (and this one) committed is in the log: read
        // it first, so the CRL lists every revocation committed before it.
        if self.catch_up_from_log().await?.is_none() {
            tracing::warn!("revocation log pruned past this server; the next watch pass reloads");
        }
        for _ in 0..5 {
            if self.generate_and_publish(new_base).await? {
                return Ok(());
            }
            self.catch_up_from_log().await?;
        }
        Err(ServiceError::Crl(
            "other servers kept publishing higher CRL numbers; will retry".into(),
        ))
    }

    /// One generation: `false` when its number was overtaken by another
    /// server's publication (nothing was served).
    async fn generate_and_publish(&self, new_base: bool) -> Result<bool> {
        let upto = self.crl.requested.load(Ordering::SeqCst);
        // Every revocation up to this log entry is in the set copied below.
        let seen = self.crl.log_seen.load(Ordering::SeqCst);
        let reserved = self.crl.reserved.load(Ordering::SeqCst);
        let number = if reserved > self.crl.current().number {
            reserved
        } else {
            let mut tx = self.store.begin().await?;
            let n = tx.next_crl_number().await?;
            tx.commit().await?;
            n
        };
        let this_update = self.now();
        let next_update = this_update + Duration::hours(self.settings.crl_next_update_hours);
        let started = std::time::Instant::now();
        let signer = self.crl.signer.clone();
        let revoked = self.revoked.clone();
        let (full, entries) = tokio::task::spawn_blocking(move || {
            // Copy under the lock (a few milliseconds at a million), encode
            // and sign without it: revocations and handshakes never wait
            // for a CRL generation.
            let copied = revoked
                .read()
                .map_err(|_| "revocation set lock poisoned".to_string())?
                .copy_out();
            let entries = copied.iter().map(|c| {
                let r = c.revocation();
                CrlEntry {
                    serial: c.serial(),
                    revoked_at: r.at,
                    reason: r.reason,
                    invalidity: r.invalidity,
                }
            });
            let der = signer.sign(entries, number, CrlKind::Full, this_update, next_update)?;
            Ok::<_, String>((der, copied.len()))
        })
        .await?
        .map_err(ServiceError::Crl)?;
        let delta = {
            let mut base = self
                .crl
                .base
                .lock()
                .map_err(|_| ServiceError::Crl("CRL base lock poisoned".into()))?;
            if new_base || base.number == 0 {
                *base = Base {
                    number,
                    since: Vec::new(),
                };
            }
            let entries = base.since.iter().map(|(s, r)| CrlEntry {
                serial: s,
                revoked_at: r.at,
                reason: r.reason,
                invalidity: r.invalidity,
            });
            self.crl
                .signer
                .sign(
                    entries,
                    number,
                    CrlKind::Delta { base: base.number },
                    this_update,
                    next_update,
                )
                .map_err(ServiceError::Crl)?
        };
        {
            let mut tx = self.store.begin().await?;
            let published = tx.publish_crl_number(number, seen).await?;
            tx.commit().await?;
            if !published {
                tracing::info!(
                    crl_number = number,
                    "a higher CRL number or a newer revocation came first; generating again"
                );
                // Never reuse a number that may have been overtaken.
                let _ = self.crl.reserved.compare_exchange(
                    number,
                    0,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                );
                return Ok(false);
            }
        }
        self.keep_crl_copy(&full, number).await;
        if let Ok(mut c) = self.crl.current.write() {
            *c = snapshot(full, number, this_update, next_update, "crl");
        }
        if let Ok(mut d) = self.crl.delta.write() {
            *d = snapshot(delta, number, this_update, next_update, "delta");
        }
        self.crl.published.store(upto, Ordering::SeqCst);
        self.metrics().crl_published(
            number,
            entries,
            self.crl.current().der.len(),
            started.elapsed(),
        );
        tracing::info!(
            crl_number = number,
            entries,
            ms = started.elapsed().as_millis() as u64,
            "CRL published"
        );
        Ok(true)
    }

    /// Keeps the newest full CRL in the data directory (written beside and
    /// renamed over, so a crash leaves the old copy or the new one).
    async fn keep_crl_copy(&self, der: &[u8], number: u64) {
        let path = self.crl_copy.clone();
        let der = der.to_vec();
        let written = tokio::task::spawn_blocking(move || {
            let tmp = path.with_extension("der.tmp");
            std::fs::write(&tmp, &der)?;
            std::fs::rename(&tmp, &path)
        })
        .await;
        if !matches!(written, Ok(Ok(()))) {
            tracing::error!(
                crl_number = number,
                path = %self.crl_copy.display(),
                "cannot keep a copy of the newest CRL in the data directory"
            );
        }
    }

    /// At start: when this server's copy of the newest CRL is newer than the
    /// database (restored from an older backup), re-imports the revocations
    /// the database is missing before anything is served, and moves CRL
    /// numbering above it — a restore never un-revokes a certificate.
    pub(crate) async fn reimport_from_crl_copy(&self) -> Result<()> {
        let der = match tokio::fs::read(&self.crl_copy).await {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(ServiceError::DataDir {
                    path: self.crl_copy.clone(),
                    source: e,
                });
            }
        };
        let copy = match shomei_pki::crl::read_own(&der, self.ca.issuing_der()) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, path = %self.crl_copy.display(), "the kept CRL copy is unreadable; not re-importing from it");
                return Ok(());
            }
        };
        let mut tx = self.store.begin().await?;
        if tx.crl_number().await? >= copy.number {
            return Ok(());
        }
        let now = self.now();
        let (mut known, mut unknown) = (0usize, 0usize);
        for (raw, at, reason) in &copy.entries {
            let Some(serial) = Serial::from_bytes(raw) else {
                continue;
            };
            match tx.cert_by_serial(&serial).await? {
                Some(c) if c.revoked_at.is_some() => {}
                Some(c) => {
                    if tx
                        .revoke_cert_with(&serial, *at, reason.unwrap_or(0), None)
                        .await?
                    {
                        known += 1;
                        let login = tx
                            .user(c.user_id)
                            .await?
                            .map(|u| (u.company_id, u.login_id.to_string()));
                        let detail = format!(
                            "復元したデータベースに無い失効をCRL番号 {} から再取り込み シリアル番号 {serial}",
                            copy.number
                        );
                        tx.audit(&AuditEntry {
                            at: now,
                            company_id: login.as_ref().map(|l| l.0),
                            actor_user_id: None,
                            actor_login_id: "銀行:system",
                            operation: crate::revoke::OP_REVOKE,
                            target_login_id: login.as_ref().map_or("", |l| l.1.as_str()),
                            result: crate::OK,
                            detail: &detail,
                            client_addr: "",
                        })
                        .await?;
                    }
                }
                None => {
                    if tx.insert_reimported(&serial, *at, *reason).await? {
                        unknown += 1;
                    }
                }
            }
        }
        tx.raise_crl_number(copy.number).await?;
        tx.commit().await?;
        tracing::warn!(
            crl_number = copy.number,
            reimported = known,
            reimported_unknown_certificates = unknown,
            "the database is behind this server's newest CRL (restored from an older backup?): revocations re-imported before serving"
        );
        Ok(())
    }

    /// Publishes a fresh full CRL (and a new delta base) once half of the
    /// current one's lifetime has passed.
    pub async fn refresh_crl_if_due(&self) -> Result<()> {
        let c = self.crl();
        if self.now() >= c.this_update + (c.next_update - c.this_update) / 2 {
            self.publish_crl_with(true).await?;
        }
        Ok(())
    }

    /// The current delta CRL (RFC 5280 §5.2.4): revocations since the base.
    pub fn delta_crl(&self) -> Arc<CrlSnapshot> {
        self.crl.delta()
    }
}

/// The operator's `shomei crl export`: a new full CRL written straight from
/// the database, with the next CRL number. The revoked rows stream into the
/// CRL's own buffer — no revocation set, no copy — so a million entries
/// need little more memory than the CRL itself (about 49 bytes an entry).
pub async fn export_crl(
    data_dir: &std::path::Path,
    settings: &crate::Settings,
    now: OffsetDateTime,
) -> Result<(u64, Vec<u8>)> {
    let store = settings.open_store(data_dir).await?;
    let hsm = settings.pkcs11().map_err(ServiceError::Settings)?;
    let signer = shomei_pki::Ca::crl_signer_in(&data_dir.join("ca"), hsm.as_ref())?;
    let expected = store.revoked_count().await?;
    let mut list = shomei_pki::crl::CrlList::with_capacity(expected * 52);
    let mut bad = None;
    store
        .for_each_revoked(
            |serial, at, reason| match OffsetDateTime::from_unix_timestamp(at) {
                Ok(revoked_at) => list.push(&CrlEntry {
                    serial,
                    revoked_at,
                    reason: Some(reason),
                    invalidity: None,
                }),
                Err(_) => bad = Some(at),
            },
        )
        .await?;
    if let Some(at) = bad {
        return Err(ServiceError::Crl(format!(
            "a revocation time in the database is out of range: {at}"
        )));
    }
    let mut tx = store.begin().await?;
    let number = tx.next_crl_number().await?;
    tx.commit().await?;
    let next = now + Duration::hours(settings.crl_next_update_hours);
    let der = signer
        .sign_list(list, number, CrlKind::Full, now, next)
        .map_err(ServiceError::Crl)?;
    Ok((number, der))
}
