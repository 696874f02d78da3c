//! The OCSP responder (RFC 6960): the status of a serial from the in-memory
//! revocation set, and for serials not revoked, from the database (good if
//! we issued it, unknown if not). Signed responses for single requests
//! without a nonce are cached per serial and CertID, and dropped when the
//! serial is revoked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use shomei_core::Serial;
use shomei_pki::ocsp::{
    CertStatus, IssuerHashes, OcspError, OcspSigner, SingleResponse, error_response, parse_request,
};
use time::{Duration, OffsetDateTime};

use crate::Shomei;

/// How long a response is valid (nextUpdate) and how long it is cached.
/// Revocation drops the cached answer at once, so caching does not delay it.
const VALIDITY: Duration = Duration::hours(1);
const CACHE_FOR: Duration = Duration::minutes(10);
/// Cached responses beyond this are dropped wholesale (bounded memory).
const MAX_CACHED: usize = 200_000;

/// A signed response, the CertID it answers as the client sent it (the
/// response echoes it, so a client asking with another hash algorithm or
/// another encoding needs its own), and until when it may be served again.
struct Cached {
    cert_id: Vec<u8>,
    response: Arc<Vec<u8>>,
    status: CertStatus,
    until: OffsetDateTime,
}

/// CertID spellings kept per serial (SHA-1 and SHA-256, with and without
/// NULL parameters); more only from a client playing games, and then the
/// serial's entries start over.
const SPELLINGS_PER_SERIAL: usize = 4;

pub(crate) struct Responder {
    signer: OcspSigner,
    issuer: IssuerHashes,
    /// Keyed by serial, so that a revocation drops every spelling at once.
    cache: Mutex<HashMap<Vec<u8>, Vec<Cached>>>,
}

impl Responder {
    pub(crate) fn new(signer: OcspSigner, issuer: IssuerHashes) -> Self {
        Self {
            signer,
            issuer,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn forget(&self, serial: &[u8]) {
        if let Ok(mut c) = self.cache.lock() {
            c.remove(serial);
        }
    }

    fn cached(
        &self,
        serial: &[u8],
        cert_id: &[u8],
        now: OffsetDateTime,
    ) -> Option<(Arc<Vec<u8>>, CertStatus)> {
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
        (response, status): (Arc<Vec<u8>>, CertStatus),
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

impl Shomei {
    /// Answers a DER OCSPRequest with a DER OCSPResponse. Never fails: a
    /// malformed request gets `malformedRequest`, our own trouble `internalError`.
    pub async fn ocsp(&self, request: &[u8]) -> Arc<Vec<u8>> {
        if self.revocation_view_problem().is_some() {
            // Fail closed: no answer at all rather than a stale `good`.
            self.metrics().ocsp_answer(None);
            return Arc::new(error_response(OcspError::TryLater));
        }
        let now = self.now();
        let req = match parse_request(request) {
            Ok(r) => r,
            Err(e) => {
                self.metrics().ocsp_answer(None);
                return Arc::new(error_response(e));
            }
        };
        // Only a single request without a nonce, about a certificate of ours.
        let cacheable =
            req.ids.len() == 1 && req.nonce.is_none() && self.ocsp.issuer.matches(&req.ids[0]);
        let key = Serial::from_bytes(&req.ids[0].serial)
            .map(|s| s.as_bytes().to_vec())
            .unwrap_or_default();
        let cert_id = &req.ids[0].raw;
        if cacheable && let Some((r, status)) = self.ocsp.cached(&key, cert_id, now) {
            self.metrics().ocsp_cache_hit();
            self.metrics().ocsp_answer(Some(&status));
            return r;
        }
        let mut statuses = Vec::with_capacity(req.ids.len());
        for id in &req.ids {
            statuses.push(self.ocsp_status(id, now).await);
        }
        let Ok(statuses) = statuses.into_iter().collect::<Result<Vec<_>, _>>() else {
            self.metrics().ocsp_answer(None);
            return Arc::new(error_response(OcspError::InternalError));
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
        let response = match self
            .ocsp
            .signer
            .respond(&answers, req.nonce.as_deref(), now)
        {
            Ok(r) => Arc::new(r),
            Err(e) => return Arc::new(error_response(e)),
        };
        // Cache only answers that a revocation cannot have raced: the
        // status was read after any revocation already in the set.
        if cacheable && !matches!(answers[0].status, CertStatus::Unknown) {
            self.ocsp
                .remember(&key, cert_id, (response.clone(), answers[0].status), now);
            if self.is_revoked(&key) && matches!(answers[0].status, CertStatus::Good) {
                self.ocsp.forget(&key);
            }
        }
        response
    }

    async fn ocsp_status(
        &self,
        id: &shomei_pki::ocsp::CertId,
        _now: OffsetDateTime,
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
        if let Some(r) = revoked {
            return Ok(CertStatus::Revoked {
                at: r.at,
                reason: r.reason,
            });
        }
        Ok(match self.store.cert_by_serial(&serial).await? {
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
