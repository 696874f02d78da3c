//! The OCSP responder (RFC 6960): the status of a serial from the in-memory
//! revocation set, and for serials not revoked, from the database (good if
//! we issued it, unknown if not).
//!
//! Answering is mostly a lookup and a copy. Every certificate in force keeps
//! a pre-signed answer for the CertID most clients send (SHA-1, NULL
//! parameters, the serial as issued: what `openssl ocsp` and browsers send):
//! made at issuance, replaced by a revoked one in the revocation's own path
//! (before the revoking call returns, on the node that revoked and on every
//! node whose watch puts it in force), made at the first question for
//! certificates issued before this process started, and signed again in the
//! background before it is half-way to its nextUpdate. Only the signed part
//! is kept (about 260 octets); the response is assembled around it. Other
//! spellings of a single request without a nonce are cached per serial and
//! CertID for a while, and dropped when the serial is revoked. A request
//! with a nonce is always signed afresh.

use crate::Db as _;
use std::collections::HashMap;
use std::sync::{Mutex, RwLock};

use shomei_core::Serial;
use shomei_pki::ocsp::{
    CertId, CertStatus, IssuerHashes, OcspError, OcspSigner, SingleResponse, error_response,
    parse_request,
};
use time::{Duration, OffsetDateTime};

use crate::Shomei;

/// How long a response is valid (nextUpdate) and how long it is cached.
/// Revocation drops the cached answer at once, so caching does not delay it.
const VALIDITY: Duration = Duration::hours(1);
const CACHE_FOR: Duration = Duration::minutes(10);
/// Cached responses beyond this are dropped wholesale (bounded memory).
const MAX_CACHED: usize = 200_000;
/// A pre-signed answer is signed again once it is this old, and never
/// served older than `PRESIGNED_SERVE_FOR` (so a client always gets at
/// least half its validity).
const PRESIGNED_REFRESH_AFTER: Duration = Duration::minutes(20);
const PRESIGNED_SERVE_FOR: Duration = Duration::minutes(30);
/// A signed response, the CertID it answers as the client sent it (the
/// response echoes it, so a client asking with another hash algorithm or
/// another encoding needs its own), and until when it may be served again.
struct Cached {
    cert_id: Vec<u8>,
    response: bytes::Bytes,
    status: CertStatus,
    until: OffsetDateTime,
}

/// CertID spellings kept per serial (SHA-1 and SHA-256, with and without
/// NULL parameters); more only from a client playing games, and then the
/// serial's entries start over.
const SPELLINGS_PER_SERIAL: usize = 4;

/// A pre-signed answer about one certificate: the signed part of the
/// response (`OcspSigner::sign`), its status, when it was produced and the
/// certificate's notAfter (Unix seconds).
struct Presigned {
    signed: Box<[u8]>,
    revoked: bool,
    produced: i64,
    not_after: i64,
}

pub(crate) struct Responder {
    signer: OcspSigner,
    issuer: IssuerHashes,
    /// Keyed by serial, so that a revocation drops every spelling at once.
    cache: Mutex<HashMap<Vec<u8>, Vec<Cached>>>,
    /// By the serial's magnitude (all of ours fit 16 octets).
    presigned: RwLock<HashMap<u128, Presigned>>,
    /// Pre-signed answers kept at most (`ocsp_presigned_max`); beyond it,
    /// answers about more certificates are signed for each request.
    max: usize,
    /// Answers not kept because `max` were kept already.
    refused: std::sync::atomic::AtomicU64,
}

/// The serial's magnitude as one number, if it fits 16 octets.
fn short_key(serial: &[u8]) -> Option<u128> {
    let first = serial.iter().position(|b| *b != 0).unwrap_or(serial.len());
    let m = &serial[first..];
    (m.len() <= 16).then(|| {
        let mut b = [0u8; 16];
        b[16 - m.len()..].copy_from_slice(m);
        u128::from_be_bytes(b)
    })
}

impl Responder {
    pub(crate) fn new(signer: OcspSigner, issuer: IssuerHashes, max: usize) -> Self {
        Self {
            signer,
            issuer,
            cache: Mutex::new(HashMap::new()),
            presigned: RwLock::new(HashMap::new()),
            max,
            refused: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub(crate) fn forget(&self, serial: &[u8]) {
        if let Ok(mut c) = self.cache.lock() {
            c.remove(serial);
        }
    }

    /// The CertID a pre-signed answer is for: SHA-1 with NULL parameters,
    /// and the serial as `IssuerHashes::request` spells it.
    fn canonical_id(&self, serial: &[u8]) -> Option<CertId> {
        let req = shomei_pki::ocsp::parse_request(&self.issuer.request(serial)).ok()?;
        req.ids.into_iter().next()
    }

    /// Is `id` the spelling pre-signed answers are made for?
    fn is_canonical(&self, id: &CertId) -> bool {
        self.issuer.is_canonical(id)
    }

    /// The pre-signed answer about `key`, assembled, while fresh enough.
    fn presigned_answer(&self, key: u128, now: i64) -> Option<(Vec<u8>, bool)> {
        let p = self.presigned.read().ok()?;
        let e = p.get(&key)?;
        (now < e.produced + PRESIGNED_SERVE_FOR.whole_seconds())
            .then(|| (self.signer.assemble(&e.signed), e.revoked))
    }

    /// Signs the answer about `serial` for the canonical CertID.
    fn sign_canonical(
        &self,
        serial: &[u8],
        status: CertStatus,
        now: OffsetDateTime,
    ) -> Option<Box<[u8]>> {
        let id = self.canonical_id(serial)?;
        let answer = SingleResponse {
            id: &id,
            status,
            this_update: now,
            next_update: Some(now + VALIDITY),
        };
        match self.signer.sign(&[answer], None, now) {
            Ok(s) => Some(s.into_boxed_slice()),
            Err(_) => {
                tracing::error!("signing a pre-signed OCSP answer failed");
                None
            }
        }
    }

    /// Keeps `signed` as the answer about `key`. A good answer is kept only
    /// while the serial is not revoked, checked under the map's lock: a
    /// revocation puts the serial in the set before it replaces the answer,
    /// so a good answer can never land after its revoked one.
    fn keep(&self, key: u128, entry: Presigned, is_revoked: impl Fn() -> bool) {
        let Ok(mut p) = self.presigned.write() else {
            return;
        };
        if !entry.revoked && is_revoked() {
            if p.get(&key).is_some_and(|e| !e.revoked) {
                p.remove(&key);
            }
            return;
        }
        if p.len() >= self.max && !p.contains_key(&key) {
            self.refused
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return;
        }
        p.insert(key, entry);
    }

    /// Pre-signed answers kept now.
    pub(crate) fn presigned_count(&self) -> usize {
        self.presigned.read().map(|p| p.len()).unwrap_or(0)
    }

    /// Answers not kept because the cap was reached.
    pub(crate) fn presigned_refused(&self) -> u64 {
        self.refused.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn cached(
        &self,
        serial: &[u8],
        cert_id: &[u8],
        now: OffsetDateTime,
    ) -> Option<(bytes::Bytes, CertStatus)> {
        let c = self.cache.lock().ok()?;
        c.get(serial)?
            .iter()
            .find(|e| e.cert_id == cert_id && e.until > now)
            .map(|e| (e.response.clone(), e.status))
    }

    fn remember(
        &self,
        serial: &[u8],
        cert_id: &[u8],
        (response, status): (bytes::Bytes, CertStatus),
        now: OffsetDateTime,
    ) {
        if let Ok(mut c) = self.cache.lock() {
            if c.len() >= MAX_CACHED {
                c.clear();
            }
            let entries = c.entry(serial.to_vec()).or_default();
            entries.retain(|e| e.cert_id != cert_id && e.until > now);
            if entries.len() >= SPELLINGS_PER_SERIAL {
                entries.clear();
            }
            entries.push(Cached {
                cert_id: cert_id.to_vec(),
                response,
                status,
                until: now + CACHE_FOR,
            });
        }
    }
}

/// What the in-memory part of the responder made of a request.
enum Answer {
    /// The response, from memory (or an error response).
    Ready(bytes::Bytes),
    /// A valid request whose answer must be signed now.
    Sign(Asked, OffsetDateTime),
}

/// A parsed request, with what the in-memory part found out about it.
struct Asked {
    req: shomei_pki::ocsp::OcspRequest,
    /// The first serial, as the revocation set keys it.
    key: Vec<u8>,
    /// Its pre-signed answer's key, if it may have one.
    short: Option<u128>,
    /// A single request without a nonce, about a certificate of ours.
    cacheable: bool,
}

impl Shomei {
    /// Answers a DER OCSPRequest with a DER OCSPResponse. Never fails: a
    /// malformed request gets `malformedRequest`, our own trouble `internalError`.
    pub async fn ocsp(&self, request: &[u8]) -> bytes::Bytes {
        match self.ocsp_answer_in_memory(request) {
            Answer::Ready(r) => r,
            Answer::Sign(req, now) => self.ocsp_signed(req, now).await,
        }
    }

    /// The answer to a DER OCSPRequest when it needs no signing and no
    /// database: the pre-signed or cached answer, or the error response
    /// (malformed, or `tryLater` while the revocation view is not
    /// current). `None`: only [`Shomei::ocsp`] can answer it (a nonce, a
    /// certificate not in memory). The PKI listener answers with it in the
    /// accept loop itself.
    pub fn ocsp_from_memory(&self, request: &[u8]) -> Option<bytes::Bytes> {
        match self.ocsp_answer_in_memory(request) {
            Answer::Ready(r) => Some(r),
            Answer::Sign(..) => None,
        }
    }

    fn ocsp_answer_in_memory(&self, request: &[u8]) -> Answer {
        if self.revocation_view_problem().is_some() {
            // Fail closed: no answer at all rather than a stale `good`.
            self.metrics().ocsp_answer(None);
            return Answer::Ready(error_response(OcspError::TryLater).into());
        }
        let now = self.now();
        let req = match parse_request(request) {
            Ok(r) => r,
            Err(e) => {
                self.metrics().ocsp_answer(None);
                return Answer::Ready(error_response(e).into());
            }
        };
        // Only a single request without a nonce, about a certificate of ours.
        let cacheable =
            req.ids.len() == 1 && req.nonce.is_none() && self.ocsp.issuer.matches(&req.ids[0]);
        let key = Serial::from_bytes(&req.ids[0].serial)
            .map(|s| s.as_bytes().to_vec())
            .unwrap_or_default();
        let presignable = cacheable && self.ocsp.is_canonical(&req.ids[0]);
        let short = short_key(&key).filter(|_| presignable && !key.is_empty());
        if let Some(k) = short
            && let Some((r, revoked)) = self.ocsp.presigned_answer(k, now.unix_timestamp())
        {
            self.metrics().ocsp_cache_hit();
            self.metrics().ocsp_answer(Some(&if revoked {
                CertStatus::Revoked {
                    at: now,
                    reason: None,
                }
            } else {
                CertStatus::Good
            }));
            return Answer::Ready(r.into());
        }
        let cert_id = &req.ids[0].raw;
        if cacheable && let Some((r, status)) = self.ocsp.cached(&key, cert_id, now) {
            self.metrics().ocsp_cache_hit();
            self.metrics().ocsp_answer(Some(&status));
            return Answer::Ready(r);
        }
        Answer::Sign(
            Asked {
                req,
                key,
                short,
                cacheable,
            },
            now,
        )
    }

    /// Signs the answer to a request that [`Shomei::ocsp_answer_in_memory`]
    /// could not answer, and keeps or caches it.
    async fn ocsp_signed(&self, asked: Asked, now: OffsetDateTime) -> bytes::Bytes {
        let Asked {
            req,
            key,
            short,
            cacheable,
        } = asked;
        let cert_id = &req.ids[0].raw;
        let mut statuses = Vec::with_capacity(req.ids.len());
        let mut not_after = None;
        for id in &req.ids {
            statuses.push(self.ocsp_status(id, &mut not_after).await);
        }
        let Ok(statuses) = statuses.into_iter().collect::<Result<Vec<_>, _>>() else {
            self.metrics().ocsp_answer(None);
            return error_response(OcspError::InternalError).into();
        };
        self.metrics().ocsp_answer(statuses.first());
        let answers: Vec<SingleResponse<'_>> = req
            .ids
            .iter()
            .zip(statuses)
            .map(|(id, status)| SingleResponse {
                id,
                status,
                this_update: now,
                next_update: Some(now + VALIDITY),
            })
            .collect();
        let signed = match self.ocsp.signer.sign(&answers, req.nonce.as_deref(), now) {
            Ok(r) => r,
            Err(e) => return error_response(e).into(),
        };
        let response = bytes::Bytes::from(self.ocsp.signer.assemble(&signed));
        // Keep only answers that a revocation cannot have raced: the
        // status was read after any revocation already in the set. A good
        // answer about a certificate in force is kept as its pre-signed one
        // from now on; other answers are cached for a while.
        if let (Some(k), Some(not_after)) = (short, not_after)
            && answers[0].status == CertStatus::Good
            && not_after >= now.unix_timestamp()
        {
            self.ocsp.keep(
                k,
                Presigned {
                    signed: signed.into_boxed_slice(),
                    revoked: false,
                    produced: now.unix_timestamp(),
                    not_after,
                },
                || self.is_revoked(&key),
            );
        } else if cacheable && !matches!(answers[0].status, CertStatus::Unknown) {
            self.ocsp
                .remember(&key, cert_id, (response.clone(), answers[0].status), now);
            if self.is_revoked(&key) && matches!(answers[0].status, CertStatus::Good) {
                self.ocsp.forget(&key);
            }
        }
        response
    }

    /// Pre-signs the good answer about a certificate just issued.
    pub(crate) fn ocsp_presign_issued(&self, serial: &Serial, not_after: OffsetDateTime) {
        let Some(k) = short_key(serial.as_bytes()) else {
            return;
        };
        let now = self.now();
        if let Some(signed) = self
            .ocsp
            .sign_canonical(serial.as_bytes(), CertStatus::Good, now)
        {
            self.ocsp.keep(
                k,
                Presigned {
                    signed,
                    revoked: false,
                    produced: now.unix_timestamp(),
                    not_after: not_after.unix_timestamp(),
                },
                || self.is_revoked(serial.as_bytes()),
            );
        }
    }

    /// Replaces the answer about a serial just put in force as revoked (the
    /// revoking call's own path), and drops its other spellings.
    pub(crate) fn ocsp_presign_revoked(
        &self,
        serial: &[u8],
        at: OffsetDateTime,
        reason: Option<u8>,
        not_after: i64,
    ) {
        self.ocsp.forget(serial);
        let Some(k) = short_key(serial) else {
            return;
        };
        let now = self.now();
        match self
            .ocsp
            .sign_canonical(serial, CertStatus::Revoked { at, reason }, now)
        {
            Some(signed) => self.ocsp.keep(
                k,
                Presigned {
                    signed,
                    revoked: true,
                    produced: now.unix_timestamp(),
                    not_after,
                },
                || true,
            ),
            // Not signed: at least no good answer stays.
            None => {
                if let Ok(mut p) = self.ocsp.presigned.write() {
                    p.remove(&k);
                }
            }
        }
    }

    /// Drops every pre-signed good answer about a serial in the revocation
    /// set (after the set was replaced wholesale).
    pub(crate) fn ocsp_drop_revoked_good(&self) {
        let Ok(mut p) = self.ocsp.presigned.write() else {
            return;
        };
        if p.is_empty() {
            return;
        }
        let Ok(set) = self.revoked.read() else {
            p.clear();
            return;
        };
        p.retain(|k, e| e.revoked || !set.contains(&k.to_be_bytes()));
    }

    /// Signs again the pre-signed answers that are getting old, and drops
    /// those of certificates that have expired. Returns how many were
    /// signed again.
    pub fn refresh_presigned_ocsp(&self) -> usize {
        let now = self.now();
        let t = now.unix_timestamp();
        let due: Vec<(u128, bool)> = {
            let Ok(mut p) = self.ocsp.presigned.write() else {
                return 0;
            };
            p.retain(|_, e| e.not_after >= t);
            p.iter()
                .filter(|(_, e)| t >= e.produced + PRESIGNED_REFRESH_AFTER.whole_seconds())
                .map(|(k, e)| (*k, e.revoked))
                .collect()
        };
        let mut done = 0;
        for (k, revoked) in due {
            let serial = k.to_be_bytes();
            let status = if revoked {
                match self.revoked.read().ok().and_then(|s| s.get(&serial)) {
                    Some(r) => CertStatus::Revoked {
                        at: r.at,
                        reason: r.reason,
                    },
                    // Left the set (expired and off the CRLs): dropped;
                    // asked again, it is answered from the database.
                    None => {
                        if let Ok(mut p) = self.ocsp.presigned.write() {
                            p.remove(&k);
                        }
                        continue;
                    }
                }
            } else {
                CertStatus::Good
            };
            let Some(signed) = self.ocsp.sign_canonical(&serial, status, now) else {
                continue;
            };
            let Ok(mut p) = self.ocsp.presigned.write() else {
                return done;
            };
            // Replaced meanwhile (a revocation): that one stands.
            let Some(e) = p.get_mut(&k).filter(|e| e.revoked == revoked) else {
                continue;
            };
            if !revoked && self.is_revoked(&serial) {
                continue;
            }
            e.signed = signed;
            e.produced = t;
            done += 1;
        }
        done
    }

    /// Keeps the pre-signed OCSP answers fresh, every minute, for the life
    /// of the server.
    pub async fn run_ocsp_refresh(&self) {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            let n = self.refresh_presigned_ocsp();
            if n > 0 {
                tracing::debug!(signed_again = n, "pre-signed OCSP answers refreshed");
            }
        }
    }

    /// The status of one CertID; `not_after` gets the certificate's
    /// notAfter (Unix seconds) when it is ours.
    async fn ocsp_status(
        &self,
        id: &shomei_pki::ocsp::CertId,
        not_after: &mut Option<i64>,
    ) -> crate::Result<CertStatus> {
        if !self.ocsp.issuer.matches(id) {
            return Ok(CertStatus::Unknown);
        }
        let Some(serial) = Serial::from_bytes(&id.serial) else {
            return Ok(CertStatus::Unknown);
        };
        let revoked = self
            .revoked
            .read()
            .ok()
            .and_then(|s| s.get(serial.as_bytes()));
        let row = if revoked.is_some() {
            None
        } else {
            self.store.cert_by_serial(&serial).await.db()?
        };
        if let Some(r) = revoked {
            return Ok(CertStatus::Revoked {
                at: r.at,
                reason: r.reason,
            });
        }
        *not_after = row.as_ref().map(|c| c.not_after.unix_timestamp());
        Ok(match row {
            Some(c) => match c.revoked_at {
                Some(at) => CertStatus::Revoked {
                    at,
                    reason: c.reason,
                },
                None => CertStatus::Good,
            },
            None => CertStatus::Unknown,
        })
    }

    /// The OCSP signer's certificate (for clients that want it separately).
    pub fn ocsp_signer_der(&self) -> &[u8] {
        self.ocsp.signer.cert_der()
    }
}
