//! The OCSP responder (RFC 6960): the status of a serial from the in-memory
//! revocation set, and for serials not revoked, from the database (good if
//! we issued it, unknown if not). Signed responses for single requests
//! without a nonce are cached per serial and dropped when it is revoked.

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

/// A signed response and until when it may be served again.
type Cached = (Arc<Vec<u8>>, OffsetDateTime);

pub(crate) struct Responder {
    signer: OcspSigner,
    issuer: IssuerHashes,
    cache: Mutex<HashMap<Vec<u8>, Cached>>,
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

    fn cached(&self, serial: &[u8], now: OffsetDateTime) -> Option<Arc<Vec<u8>>> {
        let c = self.cache.lock().ok()?;
        c.get(serial)
            .filter(|(_, until)| *until > now)
            .map(|(r, _)| r.clone())
    }

    fn remember(&self, serial: &[u8], response: Arc<Vec<u8>>, now: OffsetDateTime) {
        if let Ok(mut c) = self.cache.lock() {
            if c.len() >= MAX_CACHED {
                c.clear();
            }
            c.insert(serial.to_vec(), (response, now + CACHE_FOR));
        }
    }
}

impl Shomei {
    /// Answers a DER OCSPRequest with a DER OCSPResponse. Never fails: a
    /// malformed request gets `malformedRequest`, our own trouble `internalError`.
    pub async fn ocsp(&self, request: &[u8]) -> Arc<Vec<u8>> {
        let now = self.now();
        let req = match parse_request(request) {
            Ok(r) => r,
            Err(e) => return Arc::new(error_response(e)),
        };
        let cacheable = req.ids.len() == 1 && req.nonce.is_none();
        let key = Serial::from_bytes(&req.ids[0].serial)
            .map(|s| s.as_bytes().to_vec())
            .unwrap_or_default();
        if cacheable && let Some(r) = self.ocsp.cached(&key, now) {
            return r;
        }
        let mut statuses = Vec::with_capacity(req.ids.len());
        for id in &req.ids {
            statuses.push(self.ocsp_status(id, now).await);
        }
        let Ok(statuses) = statuses.into_iter().collect::<Result<Vec<_>, _>>() else {
            return Arc::new(error_response(OcspError::InternalError));
        };
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
            self.ocsp.remember(&key, response.clone(), now);
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
