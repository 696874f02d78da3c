//! The revocation set and the published CRLs. The set (every revoked serial
//! with its time, reason, CRL scope and notAfter) is loaded from the
//! database at start and updated by the call that commits a revocation;
//! TLS, sessions and OCSP read it.
//!
//! New certificates name one of K CRL partitions (RFC 5280 §5.2.5), so a
//! revocation re-signs only its partition's CRL and delta CRL. Each
//! partition keeps its entries already encoded, so a CRL that only grew is
//! re-signed with one memory copy and one hash of its bytes, never encoded
//! again from the set. Certificates issued before partitions keep naming
//! the undivided CRL, published while any of them is listed.
//!
//! Expired certificates leave: an entry whose certificate expired before
//! the newest regularly scheduled CRL of its scope (and was listed on it)
//! is dropped from the set and from the CRLs at the next scheduled CRL
//! (RFC 5280 §3.3). OCSP still answers `revoked` for it from the database.

use crate::Db as _;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use shomei_pki::crl::{CrlEntry, CrlHeader, CrlKind, CrlList, CrlSigner};
use time::{Duration, OffsetDateTime};

use shomei_core::Operation;
use shomei_core::{CrlScope, MAX_CRL_PARTITIONS, Serial};
use shomei_store::AuditEntry;

use crate::certificates::revocation::PendingRevocation;
use crate::certificates::revset::Listed;
use crate::certificates::revset::{Loading, RevocationSet};
use crate::{Result, Revocation, ServiceError, Shomei};

/// The revoked serials of the issuing CA.
pub(crate) type RevokedSet = Arc<RwLock<RevocationSet>>;

/// One generated CRL, served from memory.
#[derive(Debug, Clone)]
pub struct CrlSnapshot {
    /// Shared with every response that sends it: no copy per request.
    pub der: bytes::Bytes,
    /// The CRL's number (cRLNumber), one higher at each publication.
    pub number: u64,
    /// When it was signed (thisUpdate).
    pub this_update: OffsetDateTime,
    /// When the next one is due at the latest (nextUpdate).
    pub next_update: OffsetDateTime,
    /// Strong validator for HTTP caches: the scope and the CRL number.
    pub etag: String,
    /// Revoked certificates it lists.
    pub entries: usize,
}

impl Default for CrlSnapshot {
    fn default() -> Self {
        Self {
            der: bytes::Bytes::new(),
            number: 0,
            this_update: OffsetDateTime::UNIX_EPOCH,
            next_update: OffsetDateTime::UNIX_EPOCH,
            etag: String::new(),
            entries: 0,
        }
    }
}

/// What one scope's next CRLs are made of.
struct Next {
    /// The full CRL's entries, already encoded.
    list: CrlList,
    entries: usize,
    /// The CRL number of the delta CRLs' base; `None` until the next full
    /// CRL published becomes it.
    base: Option<u64>,
    /// What was revoked since the base (the delta CRL's entries).
    since: Vec<(Vec<u8>, Revocation)>,
    /// While the lists are rebuilt from a copy of the set: what was
    /// revoked after the copy.
    pending: Option<(CrlList, usize)>,
    /// Served from a kept copy at start: the entries `list` comes after,
    /// still in that copy's octets (where in them), until the scope's
    /// next publication copies them in front of `list`.
    seed: Option<(bytes::Bytes, std::ops::Range<usize>)>,
}

impl Next {
    /// The full CRL's entries, every one in `list` (the kept copy's put in
    /// front of those added since, once).
    fn whole_list(&mut self) -> &CrlList {
        if let Some((der, at)) = self.seed.take() {
            let mut l = CrlList::from_encoded(&der[at], self.list.len());
            l.append(&self.list);
            self.list = l;
        }
        &self.list
    }
}

/// One CRL scope: a partition, or the undivided CRL.
struct ScopeCrls {
    scope: CrlScope,
    /// Its distribution point (the IDP of its CRLs).
    url: String,
    current: RwLock<Arc<CrlSnapshot>>,
    delta: RwLock<Arc<CrlSnapshot>>,
    next: Mutex<Next>,
    /// Microseconds the last generation of its CRLs took.
    generation_micros: AtomicU64,
    /// When its CRLs were last published by this server.
    published_at: Mutex<Option<std::time::Instant>>,
    /// Revocations added for any reason but superseded (a renewal's), and
    /// how many of them its published CRLs list: while the two differ, it
    /// is held back at most `MAX_SPACING`, else at most
    /// `SUPERSEDED_SPACING`.
    urgent_added: AtomicU64,
    urgent_listed: AtomicU64,
    /// The buffers of the full CRL served now and of the one before it:
    /// the one before takes the next CRL once no response holds it any
    /// more (a partition's CRL is most of a megabyte at a million revoked:
    /// a fresh buffer for each would be faulted in every time).
    buffers: Mutex<(Option<Buffer>, Option<Buffer>)>,
    /// The number of the full CRL whose copy is kept in the data directory.
    kept_full: AtomicU64,
}

impl ScopeCrls {
    fn new(scope: CrlScope, url: String) -> Self {
        Self {
            scope,
            url,
            current: RwLock::default(),
            delta: RwLock::default(),
            next: Mutex::new(Next {
                list: CrlList::default(),
                entries: 0,
                base: None,
                since: Vec::new(),
                pending: None,
                seed: None,
            }),
            generation_micros: AtomicU64::new(0),
            published_at: Mutex::new(None),
            urgent_added: AtomicU64::new(0),
            urgent_listed: AtomicU64::new(0),
            buffers: Mutex::default(),
            kept_full: AtomicU64::new(0),
        }
    }

    fn current(&self) -> Arc<CrlSnapshot> {
        self.current.read().map(|c| c.clone()).unwrap_or_default()
    }

    /// When the publisher task signs its CRLs again at the soonest: its
    /// last publication plus `SPACING_FACTOR` times what that signing took
    /// (at most `MAX_SPACING`); when all it has to add are renewals'
    /// supersessions, `SUPERSEDED_FACTOR` times (at most
    /// `SUPERSEDED_SPACING`). `None`: now (or within `COALESCE`: scopes due
    /// close together are signed in one generation).
    fn due_at(&self, now: std::time::Instant) -> Option<std::time::Instant> {
        let took = std::time::Duration::from_micros(self.generation_micros.load(Ordering::Relaxed));
        let urgent =
            self.urgent_added.load(Ordering::SeqCst) != self.urgent_listed.load(Ordering::SeqCst);
        let spacing = if urgent {
            took.saturating_mul(SPACING_FACTOR).min(MAX_SPACING)
        } else {
            took.saturating_mul(SUPERSEDED_FACTOR)
                .min(SUPERSEDED_SPACING)
        };
        let at = self.published_at.lock().ok().and_then(|p| *p)? + spacing;
        (at > now + COALESCE).then_some(at)
    }

    /// The buffer of the full CRL before the current one, if no response
    /// holds it any more; else an empty one.
    fn spare_buffer(&self) -> Vec<u8> {
        self.buffers
            .lock()
            .ok()
            .and_then(|mut b| b.1.take())
            .and_then(|spare| Arc::try_unwrap(spare).ok())
            .unwrap_or_default()
    }

    fn delta(&self) -> Arc<CrlSnapshot> {
        self.delta.read().map(|c| c.clone()).unwrap_or_default()
    }

    /// Adds a revocation to the next CRLs.
    fn add(&self, serial: &[u8], r: Revocation) {
        let e = CrlEntry {
            serial,
            revoked_at: r.at,
            reason: r.reason,
            invalidity: r.invalidity,
        };
        if let Ok(mut n) = self.next.lock() {
            // Counted under the lock that the generation copies the list
            // under: what it counts as listed is in its list.
            if r.reason != Some(shomei_core::RevocationReason::Superseded.code()) {
                self.urgent_added.fetch_add(1, Ordering::SeqCst);
            }
            n.list.push(&e);
            n.entries += 1;
            if let Some((p, count)) = &mut n.pending {
                p.push(&e);
                *count += 1;
            }
            n.since.push((serial.to_vec(), r));
        }
    }
}

/// Every published full CRL in one PEM file, made at most once a second.
struct Bundle {
    /// The CRL numbers it holds, scope by scope.
    numbers: Vec<(CrlScope, u64)>,
    /// By the service's clock.
    made: OffsetDateTime,
    pem: bytes::Bytes,
    etag: String,
}

pub(crate) struct CrlPublisher {
    signer: Arc<CrlSigner>,
    scopes: RwLock<BTreeMap<CrlScope, Arc<ScopeCrls>>>,
    /// Scopes revoked into since their last publication.
    dirty: Mutex<BTreeSet<CrlScope>>,
    /// Serialises generation so numbers and contents advance together.
    generating: tokio::sync::Mutex<()>,
    /// Revocations marked / included in a published CRL (coalescing).
    requested: AtomicU64,
    published: AtomicU64,
    /// Wakes the publisher task after a revocation.
    wake: tokio::sync::Notify,
    /// Wakes the revocation watch (a PostgreSQL notice).
    notified: tokio::sync::Notify,
    /// The last revocation log entry this process has put in force.
    log_seen: std::sync::atomic::AtomicI64,
    bundle: tokio::sync::Mutex<Option<Bundle>>,
    /// The kept CRL copies read at start (to see whether the database is
    /// behind them), by file name, for `serve_kept_copies` not to read
    /// them again.
    read_at_start: Mutex<HashMap<String, Vec<u8>>>,
}

/// How long the publisher waits after a revocation for others to join the
/// same generation. Together with generation itself this stays well under
/// the one second in which a revocation must be in its partition's CRL.
const COALESCE: std::time::Duration = std::time::Duration::from_millis(100);
/// A scope's CRLs are signed again by the publisher task no sooner than
/// this many times what their last signing took after it (at a million
/// revoked, about 0.55 ms for a partition's 0.8 MB, so `MAX_SPACING`):
/// however fast revocations come, re-signing a partition then takes a
/// small, bounded share of a core (every hash is over all its entries:
/// the CRL's header, which changes, comes before them). At most
/// `MAX_SPACING`, so that a revocation is still in its CRL within a
/// second; small scopes (tens of thousands of entries and fewer) are not
/// held back beyond `COALESCE`.
const SPACING_FACTOR: u32 = 1500;
const MAX_SPACING: std::time::Duration = std::time::Duration::from_millis(800);
/// The same when everything a scope has to add is a renewal's supersession
/// (the holder's own new certificate replaced it; the old one is refused by
/// TLS and OCSP at once, like every revocation): renewals, the steady
/// stream of revocations, then share a generation five times as many at a
/// time, and a superseded certificate is listed within about 4.1 s (the
/// wait, the coalescing, the signing). A revocation for any other reason
/// brings its scope's CRLs back under `MAX_SPACING`.
const SUPERSEDED_FACTOR: u32 = 7500;
const SUPERSEDED_SPACING: std::time::Duration = std::time::Duration::from_millis(4000);
/// How long the revocation log keeps an entry: far beyond the 250 ms in
/// which every running server reads it.
const LOG_KEPT: time::Duration = time::Duration::hours(1);
/// The PEM bundle of every CRL is made again at most this often.
const BUNDLE_EVERY: Duration = Duration::seconds(1);

impl CrlPublisher {
    pub(crate) fn new(signer: CrlSigner) -> Self {
        Self {
            signer: Arc::new(signer),
            scopes: RwLock::default(),
            dirty: Mutex::default(),
            generating: tokio::sync::Mutex::new(()),
            requested: AtomicU64::new(0),
            published: AtomicU64::new(0),
            wake: tokio::sync::Notify::new(),
            notified: tokio::sync::Notify::new(),
            log_seen: std::sync::atomic::AtomicI64::new(0),
            bundle: tokio::sync::Mutex::new(None),
            read_at_start: Mutex::default(),
        }
    }

    fn scope(&self, scope: CrlScope) -> Option<Arc<ScopeCrls>> {
        self.scopes.read().ok()?.get(&scope).cloned()
    }

    fn all(&self) -> Vec<Arc<ScopeCrls>> {
        self.scopes
            .read()
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default()
    }
}

/// Per-scope figures for the metrics.
#[derive(Debug, Clone)]
pub struct CrlFigures {
    /// The CRL partition (or the undivided CRL) these figures are of.
    pub scope: CrlScope,
    /// Its current CRL number.
    pub number: u64,
    /// Revoked certificates its full CRL lists.
    pub entries: usize,
    /// Size of its full CRL (DER octets).
    pub bytes: usize,
    /// Revoked certificates its delta CRL lists.
    pub delta_entries: usize,
    /// Size of its delta CRL (DER octets).
    pub delta_bytes: usize,
    /// How long its last CRL took to make and sign.
    pub generation_seconds: f64,
}

fn snapshot(
    der: bytes::Bytes,
    number: u64,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
    tag: String,
    entries: usize,
) -> Arc<CrlSnapshot> {
    Arc::new(CrlSnapshot {
        der,
        number,
        this_update,
        next_update,
        etag: format!("\"{tag}-{number}\""),
        entries,
    })
}

/// May this entry leave its scope's CRLs? Its certificate expired before
/// the scope's newest scheduled CRL, and was revoked before it (so that CRL
/// listed it).
fn gone(horizons: &HashMap<CrlScope, i64>, r: Revocation, l: Listed) -> bool {
    let h = horizons.get(&l.scope).copied().unwrap_or(0);
    l.not_after < h && r.at.unix_timestamp() < h
}

/// No entry whose certificate expired at or after this may leave (`gone`).
fn newest_horizon(horizons: &HashMap<CrlScope, i64>) -> i64 {
    horizons.values().copied().max().unwrap_or(0)
}

/// The buffer a full CRL was signed in.
type Buffer = Arc<Vec<u8>>;

/// A full CRL served from the buffer it was signed in (from `start` on).
struct Served(Buffer, usize);

impl AsRef<[u8]> for Served {
    fn as_ref(&self) -> &[u8] {
        &self.0[self.1..]
    }
}

/// One scope's CRLs as signed, waiting for the compare-and-set.
struct Signed {
    scope: Arc<ScopeCrls>,
    number: u64,
    /// In the buffer its entries were written into (served as a slice of
    /// it: the entries are not moved), and that buffer.
    full: bytes::Bytes,
    buffer: Arc<Vec<u8>>,
    entries: usize,
    delta: Vec<u8>,
    delta_entries: usize,
    /// This full CRL becomes the delta base (and how many `since` entries
    /// it already lists).
    new_base: Option<usize>,
    took: std::time::Duration,
    /// The scope's `urgent_added` when its list was copied.
    urgent: u64,
}

impl Shomei {
    /// Rebuilds the revocation set from the database and publishes every
    /// scope's full CRL, each a new base of its delta CRLs.
    pub(crate) async fn reload_revocations(&self) -> Result<()> {
        self.load_revocations_from_database(false).await
    }

    /// `reload_revocations`; `at_start`: the kept CRL copies that are
    /// current are served again instead of signed anew (see
    /// `serve_kept_copies`).
    async fn load_revocations_from_database(&self, at_start: bool) -> Result<()> {
        let started = std::time::Instant::now();
        // The log head first: a revocation committed while the set loads is
        // then picked up (again, harmlessly) by the watch.
        let head = self.store.revocation_log_head().await.db()?;
        let now = self.now();
        let (horizons, in_use) = self.crl_scope_facts(now).await?;
        let mut loading = Loading::with_capacity(self.store.revoked_count().await.db()?);
        let mut left = 0usize;
        let n = self
            .store
            .for_each_revoked(|serial, e| {
                let h = horizons.get(&e.scope).copied().unwrap_or(0);
                if e.not_after < h && e.at < h {
                    left += 1;
                } else {
                    loading.insert_raw(serial, e);
                }
            })
            .await
            .db()?;
        let mut set = loading.done();
        for (serial, at) in self.store.invalidity_dates().await.db()? {
            if set.contains(serial.as_bytes()) {
                set.set_invalidity(serial.as_bytes(), at);
            }
        }
        for (serial, r, listed) in self.revoked_operator_certificates().await? {
            set.insert(serial.as_bytes(), r, listed);
        }
        for (serial, at, reason, scope) in self.store.reimported_revocations().await.db()? {
            set.insert(
                serial.as_bytes(),
                Revocation {
                    at,
                    reason,
                    invalidity: None,
                },
                Listed {
                    scope,
                    not_after: i64::MAX,
                },
            );
        }
        tracing::info!(
            revoked = n,
            expired_and_left = left,
            ms = started.elapsed().as_millis() as u64,
            "revocation set loaded"
        );
        self.put_set_in_force(set, head, &horizons, in_use, false, at_start)
            .await?;
        if let Err(e) = self.keep_revocation_snapshot().await {
            tracing::error!(error = %e, "cannot write the revocation set snapshot");
        }
        Ok(())
    }

    /// At start: the revocation set from its snapshot and the log after it
    /// when that can be shown current (see `snapshot`), else from the
    /// database; then every scope's CRLs are published.
    pub(crate) async fn load_revocations_at_start(&self) -> Result<()> {
        let started = std::time::Instant::now();
        let from = match self.revocations_from_snapshot().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "revocation set snapshot unreadable; reading the database");
                None
            }
        };
        let Some((set, seen)) = from else {
            return self.load_revocations_from_database(true).await;
        };
        let n = set.len();
        let now = self.now();
        let (horizons, in_use) = self.crl_scope_facts(now).await?;
        // Entries that expired since the snapshot leave here, as a load
        // from the database leaves them out.
        self.put_set_in_force(set, seen, &horizons, in_use, true, true)
            .await?;
        tracing::info!(
            revoked = n,
            ms = started.elapsed().as_millis() as u64,
            "revocation set loaded from its snapshot"
        );
        Ok(())
    }

    /// The last revocation log entry this server has put in force.
    pub(crate) fn log_seen(&self) -> i64 {
        self.crl.log_seen.load(Ordering::SeqCst)
    }

    /// Serves `set` (holding every revocation up to log entry `head`) and
    /// publishes every scope's CRLs from it; `at_start`, the scopes whose
    /// kept copies are current are served from them (nothing signed).
    async fn put_set_in_force(
        &self,
        set: RevocationSet,
        head: i64,
        horizons: &HashMap<CrlScope, i64>,
        in_use: BTreeSet<CrlScope>,
        prune: bool,
        at_start: bool,
    ) -> Result<()> {
        if let Ok(mut s) = self.revoked.write() {
            *s = set;
        }
        // Revocations that came with the new set (a reload after missed log
        // entries) must not keep a good OCSP answer.
        self.ocsp_drop_revoked_good();
        self.crl.log_seen.fetch_max(head, Ordering::SeqCst);
        self.view.confirm();
        let _guard = self.crl.generating.lock().await;
        if !at_start {
            self.rebuild_lists(horizons, in_use, prune, None)?;
            return self.publish_all(false).await;
        }
        let upto = self.crl.requested.load(Ordering::SeqCst);
        let (served, all) = self.serve_kept_copies(horizons, &in_use, prune).await?;
        if !all {
            self.rebuild_lists(horizons, in_use, false, Some(&served))?;
        }
        let todo: Vec<_> = self
            .crl
            .all()
            .into_iter()
            .filter(|s| !served.contains(&s.scope))
            .collect();
        self.publish_these(todo, upto, false).await
    }

    /// At start, before anything is served: every scope whose kept copies
    /// (full and delta CRL) are its newest publication (no server
    /// published a higher number of it), still valid, and list exactly the
    /// serials the set holds for it, is served from them as they are, its
    /// next CRL's entries taken from the copy (nothing signed, nothing
    /// encoded). Returns those scopes, and whether they are all the scopes
    /// (in use or listing an entry); every other scope is signed anew by
    /// the caller. With `prune`, the entries that may leave (see `gone`)
    /// leave the set first. The caller holds `generating`.
    async fn serve_kept_copies(
        &self,
        horizons: &HashMap<CrlScope, i64>,
        in_use: &BTreeSet<CrlScope>,
        prune: bool,
    ) -> Result<(BTreeSet<CrlScope>, bool)> {
        let started = std::time::Instant::now();
        let poisoned = || ServiceError::Crl("revocation set lock poisoned".into());
        let published: HashMap<CrlScope, u64> = {
            let mut tx = self.store.begin().await.db()?;
            let p = tx.crl_published().await.db()?;
            tx.commit().await.db()?;
            p.into_iter().collect()
        };
        let (digests, len) = {
            let mut set = self.revoked.write().map_err(|_| poisoned())?;
            if prune {
                let left = set.remove_where(newest_horizon(horizons), |r, l| gone(horizons, r, l));
                if left > 0 {
                    tracing::info!(
                        left,
                        "expired revoked certificates listed on a scheduled CRL after their notAfter left the CRLs"
                    );
                }
            }
            (set.scope_digests(), set.len())
        };
        let mut wanted: BTreeSet<CrlScope> = in_use.clone();
        wanted.extend(digests.keys().copied());
        let dir = self.crl_copies.clone();
        let ca = self.ca.issuing_der().to_vec();
        let now = self.now();
        let mut already = self
            .crl
            .read_at_start
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default();
        let scopes_wanted = wanted.len();
        let wanted: Vec<_> = wanted
            .into_iter()
            .filter_map(|scope| {
                let number = *published.get(&scope)?;
                let listed = digests.get(&scope).copied().unwrap_or_default();
                Some((scope, self.ca.endpoints().crl_url(scope), number, listed))
            })
            .collect();
        let kept = tokio::task::spawn_blocking(move || {
            wanted
                .into_iter()
                .filter_map(|(scope, url, number, listed)| {
                    let label = scope.label();
                    let mut read = |name: String| {
                        let der = match already.remove(&name) {
                            Some(d) => d,
                            None => std::fs::read(dir.join(&name)).ok()?,
                        };
                        match shomei_pki::crl::read_kept(&der, &ca) {
                            Ok(k) => Some((der, k)),
                            Err(e) => {
                                tracing::warn!(error = %e, file = name, "a kept CRL copy is unreadable; signing its scope anew");
                                None
                            }
                        }
                    };
                    let (full_der, full) = read(format!("{label}.der"))?;
                    let (delta_der, delta) = read(format!("{label}-delta.der"))?;
                    let current = full.number == number
                        && delta.number == number
                        && full.delta_base.is_none()
                        && delta.delta_base.is_some()
                        && full.scope_url.as_deref() == Some(url.as_str())
                        && delta.scope_url.as_deref() == Some(url.as_str())
                        && now < full.next_update
                        && now < delta.next_update;
                    if !current {
                        return None;
                    }
                    let mut copy = crate::certificates::revset::ScopeDigest::default();
                    for serial in full.serials(&full_der) {
                        copy.add(serial);
                    }
                    if copy != listed {
                        tracing::info!(%scope, crl_number = number, "the kept CRL copy does not list what the revocation set holds; signing its scope anew");
                        return None;
                    }
                    Some((scope, full_der, full, delta_der, delta))
                })
                .collect::<Vec<_>>()
        })
        .await?;
        // Nothing was revoked into the set meanwhile (a revocation would
        // have grown it; nothing else removes entries while `generating`
        // is held), so the digests above are still the set's.
        let set = self.revoked.read().map_err(|_| poisoned())?;
        if set.len() != len {
            return Ok((BTreeSet::new(), false));
        }
        let mut scopes = self.crl.scopes.write().map_err(|_| poisoned())?;
        let mut served = BTreeSet::new();
        for (scope, full_der, full, delta_der, delta) in kept {
            let full_der = bytes::Bytes::from(full_der);
            let s = scopes
                .entry(scope)
                .or_insert_with(|| self.new_scope(scope))
                .clone();
            let label = scope.label();
            {
                let mut n = s.next.lock().map_err(|_| poisoned())?;
                n.list = CrlList::default();
                n.seed = Some((full_der.clone(), full.entries_at()));
                n.entries = full.entries;
                // The next publication is a new delta base, as after a
                // start that signs.
                n.base = None;
                n.since.clear();
                n.pending = None;
            }
            if let Ok(mut c) = s.current.write() {
                *c = Arc::new(CrlSnapshot {
                    der: full_der,
                    number: full.number,
                    this_update: full.this_update,
                    next_update: full.next_update,
                    etag: format!("\"crl-{label}-{}\"", full.number),
                    entries: full.entries,
                });
            }
            if let Ok(mut d) = s.delta.write() {
                *d = snapshot(
                    delta_der.into(),
                    delta.number,
                    delta.this_update,
                    delta.next_update,
                    format!("delta-{label}"),
                    delta.entries,
                );
            }
            s.kept_full.store(full.number, Ordering::SeqCst);
            served.insert(scope);
        }
        drop(scopes);
        drop(set);
        tracing::info!(
            served = served.len(),
            ms = started.elapsed().as_millis() as u64,
            "kept CRL copies served again"
        );
        let all = served.len() == scopes_wanted;
        Ok((served, all))
    }

    /// Keeps a copy of every scope's current full CRL that is not kept yet
    /// (published since its last delta base), so that the next start can
    /// serve it again: at a graceful stop.
    pub async fn keep_current_crl_copies(&self) {
        for s in self.crl.all() {
            let c = s.current();
            if c.number == 0 || s.kept_full.load(Ordering::SeqCst) == c.number {
                continue;
            }
            self.keep_crl_copy(&format!("{}.der", s.scope.label()), &c.der, c.number)
                .await;
            s.kept_full.store(c.number, Ordering::SeqCst);
        }
    }

    /// The scopes' expiry horizons, and which scopes certificates not yet
    /// expired name: partitions 0..K (K from the settings, or more if
    /// certificates name more) and, while certificates issued before
    /// partitions are in force, the undivided CRL.
    async fn crl_scope_facts(
        &self,
        now: OffsetDateTime,
    ) -> Result<(HashMap<CrlScope, i64>, BTreeSet<CrlScope>)> {
        let mut tx = self.store.begin().await.db()?;
        let horizons: HashMap<CrlScope, i64> = tx.crl_horizons().await.db()?.into_iter().collect();
        let (highest, undivided) = tx.crl_scopes_in_use(now).await.db()?;
        tx.commit().await.db()?;
        let k = self.ca.endpoints().crl_partitions();
        let count = highest.map_or(k, |h| k.max(h.saturating_add(1)));
        let mut in_use: BTreeSet<CrlScope> = (0..count.min(MAX_CRL_PARTITIONS))
            .map(CrlScope::Partition)
            .collect();
        if undivided || k == 0 {
            in_use.insert(CrlScope::Undivided);
        }
        Ok((horizons, in_use))
    }

    fn new_scope(&self, scope: CrlScope) -> Arc<ScopeCrls> {
        Arc::new(ScopeCrls::new(scope, self.ca.endpoints().crl_url(scope)))
    }

    /// Makes every scope's entry list again from the set: the scopes in
    /// `in_use` and every scope the set has entries for. With `prune`, the
    /// entries that may leave (see `gone`) leave the set first; scopes left
    /// with no entry and no certificate stop being published. The caller
    /// holds `generating`. `except`: scopes whose lists are already made
    /// (served from their kept copies) and stay as they are.
    fn rebuild_lists(
        &self,
        horizons: &HashMap<CrlScope, i64>,
        in_use: BTreeSet<CrlScope>,
        prune: bool,
        except: Option<&BTreeSet<CrlScope>>,
    ) -> Result<()> {
        let except = except.cloned().unwrap_or_default();
        let poisoned = || ServiceError::Crl("revocation set lock poisoned".into());
        let (copied, left) = {
            // Revocations wait for this (a few milliseconds at a million);
            // from the copy on, they go to the pending lists as well.
            let mut set = self.revoked.write().map_err(|_| poisoned())?;
            let left = if prune {
                set.remove_where(newest_horizon(horizons), |r, l| gone(horizons, r, l))
            } else {
                0
            };
            let copied = if except.is_empty() {
                set.copy_out()
            } else {
                set.copy_out_where(|l| !except.contains(&l.scope))
            };
            let mut scopes = self.crl.scopes.write().map_err(|_| poisoned())?;
            for s in &in_use {
                scopes.entry(*s).or_insert_with(|| self.new_scope(*s));
            }
            for c in &copied {
                let s = c.listed().scope;
                scopes.entry(s).or_insert_with(|| self.new_scope(s));
            }
            for s in scopes.values().filter(|s| !except.contains(&s.scope)) {
                if let Ok(mut n) = s.next.lock() {
                    n.pending = Some((CrlList::default(), 0));
                }
            }
            (copied, left)
        };
        let mut lists: HashMap<CrlScope, (CrlList, usize)> = HashMap::new();
        for c in &copied {
            let r = c.revocation();
            let (list, count) = lists.entry(c.listed().scope).or_default();
            list.push(&CrlEntry {
                serial: c.serial(),
                revoked_at: r.at,
                reason: r.reason,
                invalidity: r.invalidity,
            });
            *count += 1;
        }
        let mut scopes = self.crl.scopes.write().map_err(|_| poisoned())?;
        let mut retired = Vec::new();
        for (scope, s) in scopes.iter().filter(|(s, _)| !except.contains(s)) {
            let Ok(mut n) = s.next.lock() else {
                return Err(poisoned());
            };
            let Some((pending, more)) = n.pending.take() else {
                // Made by a revocation after the copy: its list holds
                // exactly what came since.
                continue;
            };
            let (mut list, mut count) = lists.remove(scope).unwrap_or_default();
            list.append(&pending);
            count += more;
            if count == 0 && !in_use.contains(scope) {
                retired.push(*scope);
            }
            n.list = list;
            n.seed = None;
            n.entries = count;
            n.base = None;
            n.since.clear();
        }
        for scope in retired {
            // Every certificate that named it has expired and is off its
            // CRLs: nothing names it any more.
            scopes.remove(&scope);
            tracing::info!(%scope, "no certificate names this CRL any more; no longer published");
        }
        if left > 0 {
            tracing::info!(
                left,
                "expired revoked certificates listed on a scheduled CRL after their notAfter left the CRLs"
            );
        }
        Ok(())
    }

    /// Puts a committed revocation in force in memory: TLS, sessions and
    /// OCSP see it from the next lookup on; its scope's next CRLs list it.
    /// A use case's revocations come through `PendingRevocation::commit`;
    /// other processes' through the revocation log's watch. One already in
    /// force (the watch read it from the log between the commit and this
    /// call, or the other way round) changes nothing: each serial is listed
    /// once.
    pub(crate) fn mark_revoked_with(&self, serial: &[u8], r: Revocation, listed: Listed) {
        if let Ok(mut s) = self.revoked.write() {
            if !s.insert(serial, r, listed) {
                return;
            }
            // Under the set's lock, so that a rebuild's copy of the set and
            // its pending lists never both hold it.
            let scope = match self.crl.scope(listed.scope) {
                Some(s) => s,
                None => {
                    let made = self.new_scope(listed.scope);
                    match self.crl.scopes.write() {
                        Ok(mut m) => m.entry(listed.scope).or_insert(made).clone(),
                        Err(_) => made,
                    }
                }
            };
            scope.add(serial, r);
        }
        // Dirty before counted: a publication that sees the count takes
        // the scope with it.
        if let Ok(mut d) = self.crl.dirty.lock() {
            d.insert(listed.scope);
        }
        self.crl.requested.fetch_add(1, Ordering::SeqCst);
        // After the set has it: OCSP's pre-signed answer is replaced here,
        // before the revoking call returns.
        self.ocsp_presign_revoked(serial, r.at, r.reason, listed.not_after);
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
    pub(crate) async fn catch_up_from_log(&self) -> Result<Option<usize>> {
        let seen = self.crl.log_seen.load(Ordering::SeqCst);
        if self.store.revocation_log_tail().await.db()? > seen + 1 {
            return Ok(None);
        }
        let mut applied = 0;
        // One read returns at most 10,000 entries: read on until one finds
        // none after them, rather than leave the rest for the next pass.
        let mut after = seen;
        loop {
            let logged = self.store.revocations_after(after).await.db()?;
            let Some(last) = logged.last().map(|r| r.log_id) else {
                break;
            };
            applied += self.apply_logged(logged);
            after = last;
        }
        Ok(Some(applied))
    }

    /// Puts these log entries in force; returns how many were new here.
    fn apply_logged(&self, logged: Vec<shomei_store::LoggedRevocation>) -> usize {
        let mut applied = 0;
        for r in logged {
            if !self.is_revoked(r.serial.as_bytes()) {
                self.mark_revoked_with(
                    r.serial.as_bytes(),
                    Revocation {
                        at: r.revoked_at,
                        reason: r.reason,
                        invalidity: r.invalidity,
                    },
                    Listed {
                        scope: r.scope,
                        not_after: r.not_after.map_or(i64::MAX, |t| t.unix_timestamp()),
                    },
                );
                tracing::info!(serial = %r.serial, "revocation committed by another process now in force");
                applied += 1;
            }
            self.crl.log_seen.fetch_max(r.log_id, Ordering::SeqCst);
        }
        applied
    }

    /// Drops revocation log entries older than `LOG_KEPT` (upkeep). Every
    /// running server reads the log every 250 ms, and one that starts loads
    /// the whole set from the certificates, so old entries serve nobody.
    pub async fn prune_revocation_log(&self) -> Result<u64> {
        Ok(self
            .store
            .prune_revocation_log(self.now() - LOG_KEPT)
            .await
            .db()?)
    }

    /// Publishes the CRLs after revocations, coalescing those that come
    /// close together. Runs for the life of the server; the revocation
    /// itself never waits for it (TLS, sessions and OCSP read the set).
    pub async fn run_crl_publisher(&self) {
        loop {
            self.crl.wake.notified().await;
            tokio::time::sleep(COALESCE).await;
            loop {
                match self.publish_dirty(true).await {
                    Ok(None) => break,
                    // Scopes signed a moment ago (see `SPACING_FACTOR`):
                    // when the first of them is due, or sooner if a
                    // revocation meanwhile brings its scope's time forward
                    // (one for another reason than supersession).
                    Ok(Some(at)) => {
                        tokio::select! {
                            _ = tokio::time::sleep_until(at.into()) => {}
                            _ = self.crl.wake.notified() => tokio::time::sleep(COALESCE).await,
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "CRL publication failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        self.crl.wake.notify_one();
                        break;
                    }
                }
            }
        }
    }

    /// Has every revocation marked so far been published in its CRLs?
    pub fn crl_up_to_date(&self) -> bool {
        self.crl.published.load(Ordering::SeqCst) >= self.crl.requested.load(Ordering::SeqCst)
    }

    /// Publishes new CRLs and delta CRLs of every scope revoked into since
    /// its last publication, each including every revocation marked so far.
    /// A caller that finds its revocation already published by a
    /// generation that started after it returns at once.
    pub async fn publish_crl(&self) -> Result<()> {
        self.publish_dirty(false).await.map(|_| ())
    }

    /// `publish_crl`; with `spaced`, the scopes not yet due again (see
    /// `ScopeCrls::due_at`) stay dirty for later, and the soonest of them
    /// is returned.
    async fn publish_dirty(&self, spaced: bool) -> Result<Option<std::time::Instant>> {
        let wanted = self.crl.requested.load(Ordering::SeqCst);
        let _guard = self.crl.generating.lock().await;
        if self.crl.published.load(Ordering::SeqCst) >= wanted {
            return Ok(None);
        }
        // What other servers committed is in the log: read it first, so
        // each CRL lists every revocation committed before it.
        if self.catch_up_from_log().await?.is_none() {
            tracing::warn!("revocation log pruned past this server; the next watch pass reloads");
        }
        let upto = self.crl.requested.load(Ordering::SeqCst);
        // The dirty scopes to sign now; those held back stay dirty (a
        // forced `publish_crl` meanwhile takes them too).
        let mut later: Option<std::time::Instant> = None;
        let mut todo = self.take_dirty(spaced, &mut later);
        for _ in 0..5 {
            let scopes: Vec<_> = todo.iter().filter_map(|s| self.crl.scope(*s)).collect();
            let lost = self.publish_scopes(scopes, None).await.inspect_err(|_| {
                // Tried again by the publisher task: keep them dirty.
                if let Ok(mut d) = self.crl.dirty.lock() {
                    d.extend(todo.iter().copied());
                }
            })?;
            if lost.is_empty() {
                if later.is_none() {
                    self.crl.published.fetch_max(upto, Ordering::SeqCst);
                }
                return Ok(later);
            }
            // Another server published these scopes meanwhile: make them
            // again with what it committed.
            self.catch_up_from_log().await?;
            todo = lost.into_iter().collect();
            todo.extend(self.take_dirty(spaced, &mut later));
        }
        if let Ok(mut d) = self.crl.dirty.lock() {
            d.extend(todo);
        }
        Err(ServiceError::Crl(
            "other servers kept publishing higher CRL numbers; will retry".into(),
        ))
    }

    /// Takes the dirty scopes; with `spaced`, only those due (see
    /// `ScopeCrls::due_at`): the others stay dirty, and `later` gets the
    /// soonest of their times.
    fn take_dirty(
        &self,
        spaced: bool,
        later: &mut Option<std::time::Instant>,
    ) -> BTreeSet<CrlScope> {
        let Ok(mut d) = self.crl.dirty.lock() else {
            return BTreeSet::new();
        };
        if !spaced {
            return std::mem::take(&mut *d);
        }
        let mut due = BTreeSet::new();
        let now = std::time::Instant::now();
        d.retain(|s| match self.crl.scope(*s).and_then(|c| c.due_at(now)) {
            Some(at) => {
                *later = Some(later.map_or(at, |l| l.min(at)));
                true
            }
            None => {
                due.insert(*s);
                false
            }
        });
        due
    }

    /// Publishes every scope (at start, and on schedule): `scheduled` is
    /// true for the regularly scheduled CRLs, which move the scopes' expiry
    /// horizons. The caller holds `generating`.
    async fn publish_all(&self, scheduled: bool) -> Result<()> {
        let upto = self.crl.requested.load(Ordering::SeqCst);
        self.publish_these(self.crl.all(), upto, scheduled).await
    }

    /// Publishes these scopes, every revocation up to `upto` being in their
    /// lists. The caller holds `generating`.
    async fn publish_these(
        &self,
        mut todo: Vec<Arc<ScopeCrls>>,
        upto: u64,
        scheduled: bool,
    ) -> Result<()> {
        let this_update = self.now();
        for _ in 0..5 {
            let lost = self
                .publish_scopes(todo, scheduled.then_some(this_update))
                .await?;
            if lost.is_empty() {
                self.crl.published.fetch_max(upto, Ordering::SeqCst);
                return Ok(());
            }
            self.catch_up_from_log().await?;
            todo = lost.into_iter().filter_map(|s| self.crl.scope(s)).collect();
        }
        Err(ServiceError::Crl(
            "other servers kept publishing higher CRL numbers; will retry".into(),
        ))
    }

    /// One generation of these scopes' CRLs: numbers taken in one
    /// transaction, every CRL signed, then published in one transaction of
    /// compare-and-sets. Returns the scopes whose number was overtaken by
    /// another server's publication (nothing of theirs was served).
    async fn publish_scopes(
        &self,
        scopes: Vec<Arc<ScopeCrls>>,
        scheduled: Option<OffsetDateTime>,
    ) -> Result<Vec<CrlScope>> {
        if scopes.is_empty() {
            return Ok(Vec::new());
        }
        // Every revocation up to this log entry is in the lists read below.
        let seen = self.crl.log_seen.load(Ordering::SeqCst);
        let last = {
            let mut tx = self.store.begin().await.db()?;
            let n = tx.next_crl_numbers(scopes.len() as u64).await.db()?;
            tx.commit().await.db()?;
            n
        };
        let first = last + 1 - scopes.len() as u64;
        let this_update = scheduled.unwrap_or_else(|| self.now());
        let next_update = this_update + Duration::hours(self.settings.crl_next_update_hours);
        // What each scope lists now, copied under its lock (one memory copy
        // of its encoded entries).
        let mut work = Vec::with_capacity(scopes.len());
        for (i, s) in scopes.into_iter().enumerate() {
            let mut n = s
                .next
                .lock()
                .map_err(|_| ServiceError::Crl("CRL list lock poisoned".into()))?;
            let (base, since, new_base) = match n.base {
                Some(b) => (b, n.since.clone(), None),
                // This full CRL becomes the base: what it lists is not new.
                None => (first + i as u64, Vec::new(), Some(n.since.len())),
            };
            let list = n.whole_list().copy_into(s.spare_buffer());
            let entries = n.entries;
            // Every revocation added so far is in `list` (added under this
            // lock).
            let urgent = s.urgent_added.load(Ordering::SeqCst);
            drop(n);
            work.push((
                s,
                first + i as u64,
                list,
                entries,
                base,
                since,
                new_base,
                urgent,
            ));
        }
        let signer = self.crl.signer.clone();
        let signed = tokio::task::spawn_blocking(move || {
            work.into_iter()
                .map(
                    |(s, number, list, entries, base, since, new_base, urgent)| {
                        let started = std::time::Instant::now();
                        let header = |kind| CrlHeader {
                            number,
                            kind,
                            this_update,
                            next_update,
                            scope_url: Some(&s.url),
                        };
                        let (buf, start) = signer
                            .sign_in_place(list, &header(CrlKind::Full))?
                            .into_parts();
                        let buffer = Arc::new(buf);
                        let full = bytes::Bytes::from_owner(Served(buffer.clone(), start));
                        let delta = signer.sign(
                            since.iter().map(|(serial, r)| CrlEntry {
                                serial,
                                revoked_at: r.at,
                                reason: r.reason,
                                invalidity: r.invalidity,
                            }),
                            &header(CrlKind::Delta { base }),
                        )?;
                        Ok::<_, String>(Signed {
                            number,
                            full,
                            buffer,
                            entries,
                            delta,
                            delta_entries: since.len(),
                            new_base,
                            took: started.elapsed(),
                            urgent,
                            scope: s,
                        })
                    },
                )
                .collect::<std::result::Result<Vec<_>, String>>()
        })
        .await?
        .map_err(ServiceError::Crl)?;
        let won = {
            let crls: Vec<_> = signed.iter().map(|s| (s.scope.scope, s.number)).collect();
            let mut tx = self.store.begin().await.db()?;
            let won = tx.publish_crls(&crls, seen, scheduled).await.db()?;
            tx.commit().await.db()?;
            won
        };
        let mut lost = Vec::new();
        for (s, won) in signed.into_iter().zip(won) {
            let scope = s.scope.scope;
            if !won {
                tracing::info!(
                    crl_number = s.number,
                    %scope,
                    "a higher CRL number or a newer revocation came first; generating again"
                );
                lost.push(scope);
                continue;
            }
            self.install(s, this_update, next_update).await;
        }
        Ok(lost)
    }

    /// Serves a published scope's CRLs and keeps copies of them.
    async fn install(&self, s: Signed, this_update: OffsetDateTime, next_update: OffsetDateTime) {
        let crls = &s.scope;
        let label = crls.scope.label();
        if let Some(taken) = s.new_base
            && let Ok(mut n) = crls.next.lock()
        {
            n.base = Some(s.number);
            // What the base lists is not in its deltas.
            let taken = taken.min(n.since.len());
            n.since.drain(..taken);
        }
        // The delta always (small); the full CRL when it is a new base: the
        // delta lists everything revoked since, so the two together are
        // this server's newest view of the scope.
        if s.new_base.is_some() {
            self.keep_crl_copy(&format!("{label}.der"), &s.full, s.number)
                .await;
            crls.kept_full.store(s.number, Ordering::SeqCst);
        }
        self.keep_crl_copy(&format!("{label}-delta.der"), &s.delta, s.number)
            .await;
        let bytes = s.full.len();
        if let Ok(mut c) = crls.current.write() {
            *c = snapshot(
                s.full,
                s.number,
                this_update,
                next_update,
                format!("crl-{label}"),
                s.entries,
            );
        }
        if let Ok(mut d) = crls.delta.write() {
            *d = snapshot(
                s.delta.into(),
                s.number,
                this_update,
                next_update,
                format!("delta-{label}"),
                s.delta_entries,
            );
        }
        crls.generation_micros.store(
            s.took.as_micros().min(u128::from(u64::MAX)) as u64,
            Ordering::Relaxed,
        );
        if let Ok(mut p) = crls.published_at.lock() {
            *p = Some(std::time::Instant::now());
        }
        crls.urgent_listed.fetch_max(s.urgent, Ordering::SeqCst);
        if let Ok(mut b) = crls.buffers.lock() {
            let before = b.0.replace(s.buffer);
            b.1 = before;
        }
        self.metrics().crl_published(s.took);
        tracing::debug!(
            crl_number = s.number,
            scope = %crls.scope,
            entries = s.entries,
            bytes,
            us = s.took.as_micros() as u64,
            "CRL published"
        );
    }

    /// Keeps a published CRL in the data directory (written beside and
    /// renamed over, so a crash leaves the old copy or the new one).
    async fn keep_crl_copy(&self, name: &str, der: &[u8], number: u64) {
        let dir = self.crl_copies.clone();
        let path = dir.join(name);
        let der = der.to_vec();
        let written = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            let tmp = path.with_extension("der.tmp");
            std::fs::write(&tmp, &der)?;
            std::fs::rename(&tmp, &path)
        })
        .await;
        if !matches!(written, Ok(Ok(()))) {
            tracing::error!(
                crl_number = number,
                path = %self.crl_copies.join(name).display(),
                "cannot keep a copy of a published CRL in the data directory"
            );
        }
    }

    /// This server's kept CRL copies: (scope, path), the newest of every
    /// scope's full and delta CRLs, and the single copy older versions kept.
    fn kept_copies(&self) -> Vec<(CrlScope, PathBuf)> {
        let mut out = Vec::new();
        if let Some(parent) = self.crl_copies.parent() {
            out.push((CrlScope::Undivided, parent.join("newest-crl.der")));
        }
        let Ok(dir) = std::fs::read_dir(&self.crl_copies) else {
            return out;
        };
        for f in dir.flatten() {
            let name = f.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(stem) = name.strip_suffix(".der") else {
                continue;
            };
            let label = stem.strip_suffix("-delta").unwrap_or(stem);
            let scope = match label {
                "undivided" => Some(CrlScope::Undivided),
                p => p
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p < MAX_CRL_PARTITIONS)
                    .map(CrlScope::Partition),
            };
            if let Some(scope) = scope {
                out.push((scope, f.path()));
            }
        }
        out.sort();
        out
    }

    /// At start: when this server's copies of its newest CRLs are newer
    /// than the database (restored from an older backup), re-imports the
    /// revocations the database is missing before anything is served, and
    /// moves CRL numbering above them — a restore never un-revokes a
    /// certificate.
    pub(crate) async fn reimport_from_crl_copy(&self) -> Result<()> {
        let known_number = {
            let mut tx = self.store.begin().await.db()?;
            let n = tx.crl_number().await.db()?;
            tx.commit().await.db()?;
            n
        };
        let mut copies = Vec::new();
        for (scope, path) in self.kept_copies() {
            let der = match tokio::fs::read(&path).await {
                Ok(d) => d,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(ServiceError::DataDir {
                        path: path.clone(),
                        source: e,
                    });
                }
            };
            // Not newer than the database (every start but one after a
            // restore): its entries are not read here.
            if shomei_pki::crl::crl_number_of(&der).is_some_and(|n| n <= known_number) {
                if path.parent() == Some(self.crl_copies.as_path())
                    && let Some(name) = path.file_name().and_then(|n| n.to_str())
                    && let Ok(mut read) = self.crl.read_at_start.lock()
                {
                    read.insert(name.to_string(), der);
                }
                continue;
            }
            match shomei_pki::crl::read_own(&der, self.ca.issuing_der()) {
                Ok(c) => copies.push((scope, c)),
                Err(e) => {
                    tracing::error!(error = %e, path = %path.display(), "a kept CRL copy is unreadable; not re-importing from it");
                }
            }
        }
        let mut tx = self.store.begin().await.db()?;
        let known_number = tx.crl_number().await.db()?;
        let newest = copies.iter().map(|(_, c)| c.number).max().unwrap_or(0);
        if known_number >= newest {
            return Ok(());
        }
        let now = self.now();
        let (mut known, mut unknown) = (0usize, 0usize);
        let mut reimported = PendingRevocation::default();
        for (scope, copy) in copies.iter().filter(|(_, c)| c.number > known_number) {
            for (raw, at, reason) in &copy.entries {
                let Some(serial) = Serial::from_bytes(raw) else {
                    continue;
                };
                match tx.cert_by_serial(&serial).await.db()? {
                    Some(c) if c.revoked_at.is_some() => {}
                    Some(c) => {
                        if let Some(r) = self
                            .revoke_in(&mut tx, &c, *at, reason.unwrap_or(0), None)
                            .await?
                        {
                            reimported = reimported.and(r);
                            known += 1;
                            let login = tx
                                .user(c.user_id)
                                .await
                                .db()?
                                .map(|u| (u.company_id, u.login_id.to_string()));
                            let detail = format!(
                                "復元したデータベースに無い失効をCRL番号 {} から再取り込み シリアル番号 {serial}",
                                copy.number
                            );
                            let e = AuditEntry::new(Operation::CertificateRevocation, now)
                                .by_name(login.as_ref().map(|l| l.0), "銀行:system")
                                .target(login.as_ref().map_or("", |l| l.1.as_str()));
                            tx.audit(&e.detail(&detail)).await.db()?;
                        }
                    }
                    None => {
                        if tx
                            .insert_reimported(&serial, *at, *reason, *scope)
                            .await
                            .db()?
                        {
                            unknown += 1;
                        }
                    }
                }
            }
        }
        tx.raise_crl_number(newest).await.db()?;
        reimported.commit(self, tx).await?;
        tracing::warn!(
            crl_number = newest,
            reimported = known,
            reimported_unknown_certificates = unknown,
            "the database is behind this server's newest CRLs (restored from an older backup?): revocations re-imported before serving"
        );
        Ok(())
    }

    /// Publishes the regularly scheduled CRLs of every scope (each a new
    /// delta base) once half of the current ones' lifetime has passed.
    /// Expired certificates listed on the scope's previous scheduled CRL
    /// leave the set and the CRLs here.
    pub async fn refresh_crl_if_due(&self) -> Result<()> {
        let now = self.now();
        let due = self.crl.all().iter().any(|s| {
            let c = s.current();
            // (A scope made a moment ago is published by the next
            // generation, not here.)
            c.number != 0 && now >= c.this_update + (c.next_update - c.this_update) / 2
        });
        if due {
            self.publish_scheduled_crls().await?;
        }
        Ok(())
    }

    /// Publishes the regularly scheduled CRLs of every scope now.
    pub async fn publish_scheduled_crls(&self) -> Result<()> {
        let _guard = self.crl.generating.lock().await;
        self.catch_up_from_log().await?;
        let (horizons, in_use) = self.crl_scope_facts(self.now()).await?;
        self.rebuild_lists(&horizons, in_use, true, None)?;
        self.publish_all(true).await
    }

    /// The current full CRL of a scope; `None` when it is not published
    /// (no certificate names it).
    pub fn crl_of(&self, scope: CrlScope) -> Option<Arc<CrlSnapshot>> {
        self.crl.scope(scope).map(|s| s.current())
    }

    /// The current full CRL the certificate with this serial names in its
    /// CRL distribution point; `None` for a serial we never issued.
    pub async fn crl_naming(&self, serial: &Serial) -> Result<Option<Arc<CrlSnapshot>>> {
        Ok(self
            .store
            .cert_by_serial(serial)
            .await
            .db()?
            .and_then(|c| self.crl_of(c.crl_scope)))
    }

    /// The current delta CRL of a scope (RFC 5280 §5.2.4): revocations
    /// since its base.
    pub fn delta_crl_of(&self, scope: CrlScope) -> Option<Arc<CrlSnapshot>> {
        self.crl.scope(scope).map(|s| s.delta())
    }

    /// The scopes published.
    pub fn crl_scopes(&self) -> Vec<CrlScope> {
        self.crl
            .scopes
            .read()
            .map(|s| s.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Every published full CRL in one PEM file (for relying parties that
    /// take one file, such as nginx's `ssl_crl`), with its ETag. Made again
    /// at most once a second by the service's clock, however often it is
    /// asked for.
    pub async fn crl_bundle(&self) -> (bytes::Bytes, String) {
        // One look at the scopes: what is in the bundle and its numbers.
        let crls: Vec<(CrlScope, Arc<CrlSnapshot>)> = self
            .crl
            .all()
            .iter()
            .map(|s| (s.scope, s.current()))
            .collect();
        let numbers: Vec<(CrlScope, u64)> = crls.iter().map(|(s, c)| (*s, c.number)).collect();
        let mut b = self.crl.bundle.lock().await;
        let now = self.now();
        // (A clock set back makes it again at once rather than never.)
        if let Some(have) = b.as_ref()
            && (have.numbers == numbers || (have.made <= now && now - have.made < BUNDLE_EVERY))
        {
            return (have.pem.clone(), have.etag.clone());
        }
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for (s, n) in &numbers {
            for b in s.key().to_be_bytes().into_iter().chain(n.to_be_bytes()) {
                h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
            }
        }
        let etag = format!("\"crls-{h:016x}\"");
        let pem = tokio::task::spawn_blocking(move || {
            let mut out = String::new();
            for (_, c) in crls.iter().filter(|(_, c)| !c.der.is_empty()) {
                out.push_str(&shomei_pki::to_pem("X509 CRL", &c.der));
            }
            bytes::Bytes::from(out)
        })
        .await
        .unwrap_or_default();
        *b = Some(Bundle {
            numbers,
            made: now,
            pem: pem.clone(),
            etag: etag.clone(),
        });
        (pem, etag)
    }

    /// Per-scope figures for the metrics.
    pub fn crl_figures(&self) -> Vec<CrlFigures> {
        self.crl
            .all()
            .iter()
            .map(|s| {
                let c = s.current();
                let d = s.delta();
                CrlFigures {
                    scope: s.scope,
                    number: c.number,
                    entries: c.entries,
                    bytes: c.der.len(),
                    delta_entries: d.entries,
                    delta_bytes: d.der.len(),
                    generation_seconds: s.generation_micros.load(Ordering::Relaxed) as f64 / 1e6,
                }
            })
            .collect()
    }

    /// How many CRL generations this server has published.
    pub fn crl_generations(&self) -> u64 {
        self.metrics().crl_generations()
    }
}

/// The operator's `shomei crl export`: a complete CRL of every revoked
/// certificate (no issuing distribution point: it covers all of them),
/// written straight from the database with the next CRL number. The revoked
/// rows stream into the CRL's own buffer — no revocation set, no copy — so
/// a million entries need little more memory than the CRL itself (about 49
/// bytes an entry).
pub async fn export_crl(
    data_dir: &Path,
    settings: &crate::Settings,
    now: OffsetDateTime,
) -> Result<(u64, Vec<u8>)> {
    let store = settings.open_store(data_dir).await.db()?;
    let hsm = settings.pkcs11().map_err(ServiceError::Settings)?;
    let signer = shomei_pki::Ca::crl_signer_in(&data_dir.join("ca"), hsm.as_ref())?;
    let expected = store.revoked_count().await.db()?;
    let mut list = CrlList::with_capacity(expected * 52);
    let mut bad = None;
    store
        .for_each_revoked(
            |serial, e| match OffsetDateTime::from_unix_timestamp(e.at) {
                Ok(revoked_at) => list.push(&CrlEntry {
                    serial,
                    revoked_at,
                    reason: Some(e.reason),
                    invalidity: None,
                }),
                Err(_) => bad = Some(e.at),
            },
        )
        .await
        .db()?;
    if let Some(at) = bad {
        return Err(ServiceError::Crl(format!(
            "a revocation time in the database is out of range: {at}"
        )));
    }
    let mut tx = store.begin().await.db()?;
    let number = tx.next_crl_number().await.db()?;
    tx.commit().await.db()?;
    let der = signer
        .sign_list(
            list,
            &CrlHeader {
                number,
                kind: CrlKind::Full,
                this_update: now,
                next_update: now + Duration::hours(settings.crl_next_update_hours),
                scope_url: None,
            },
        )
        .map_err(ServiceError::Crl)?;
    Ok((number, der))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scope whose last signing took long (a large partition) is held
    /// back after its publication, by what that signing took times
    /// `SPACING_FACTOR` and never more than `MAX_SPACING`; one whose
    /// signing was quick (a small partition) is due at once; nothing is
    /// held back before a first publication or once its time has passed.
    #[test]
    fn a_large_partition_is_signed_again_only_after_its_spacing() {
        let s = ScopeCrls::new(CrlScope::Partition(3), "http://localhost/pki/crl/3".into());
        let now = std::time::Instant::now();
        s.add(
            &[1],
            Revocation {
                at: time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(),
                reason: Some(shomei_core::RevocationReason::KeyCompromise.code()),
                invalidity: None,
            },
        );
        assert_eq!(s.due_at(now), None, "never published");
        *s.published_at.lock().unwrap() = Some(now);
        s.generation_micros.store(20, Ordering::Relaxed);
        assert_eq!(s.due_at(now), None, "20 µs: due within the coalescing");
        s.generation_micros.store(300, Ordering::Relaxed);
        let at = now + std::time::Duration::from_micros(300) * SPACING_FACTOR;
        assert_eq!(s.due_at(now), Some(at), "300 µs: held back");
        s.generation_micros.store(2_000, Ordering::Relaxed);
        assert_eq!(
            s.due_at(now),
            Some(now + MAX_SPACING),
            "2 ms: at most MAX_SPACING"
        );
        assert!(MAX_SPACING + COALESCE < std::time::Duration::from_secs(1));
        assert_eq!(s.due_at(now + MAX_SPACING), None, "its time has come");
    }

    /// Renewals' supersessions alone hold a large partition back longer
    /// (`SUPERSEDED_SPACING`); a revocation for another reason brings it
    /// back under `MAX_SPACING` until a CRL lists it; a small partition is
    /// due at once either way.
    #[test]
    fn supersessions_alone_wait_longer_and_any_other_revocation_does_not() {
        let s = ScopeCrls::new(CrlScope::Partition(3), "http://localhost/pki/crl/3".into());
        let now = std::time::Instant::now();
        *s.published_at.lock().unwrap() = Some(now);
        let revoked = |reason| Revocation {
            at: time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(),
            reason: Some(shomei_core::RevocationReason::code(reason)),
            invalidity: None,
        };
        s.generation_micros.store(10, Ordering::Relaxed);
        s.add(&[1], revoked(shomei_core::RevocationReason::Superseded));
        assert_eq!(s.due_at(now), None, "10 µs: due within the coalescing");
        s.generation_micros.store(300, Ordering::Relaxed);
        let at = now + std::time::Duration::from_micros(300) * SUPERSEDED_FACTOR;
        assert_eq!(s.due_at(now), Some(at), "300 µs: held back longer");
        s.generation_micros.store(2_000, Ordering::Relaxed);
        assert_eq!(
            s.due_at(now),
            Some(now + SUPERSEDED_SPACING),
            "at most SUPERSEDED_SPACING"
        );
        assert!(SUPERSEDED_SPACING + COALESCE < std::time::Duration::from_secs(5));
        s.add(&[2], revoked(shomei_core::RevocationReason::KeyCompromise));
        assert_eq!(
            s.due_at(now),
            Some(now + MAX_SPACING),
            "a key compromise: MAX_SPACING"
        );
        // Listed by a CRL whose list was copied before it: still urgent.
        s.urgent_listed.fetch_max(0, Ordering::SeqCst);
        assert_eq!(s.due_at(now), Some(now + MAX_SPACING));
        // Listed: supersessions alone again.
        s.urgent_listed
            .fetch_max(s.urgent_added.load(Ordering::SeqCst), Ordering::SeqCst);
        s.add(&[3], revoked(shomei_core::RevocationReason::Superseded));
        assert_eq!(s.due_at(now), Some(now + SUPERSEDED_SPACING));
    }
}
