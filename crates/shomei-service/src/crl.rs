//! The published CRL and the revoked-serial set, both rebuilt from the
//! database at start and updated by the call that commits a revocation.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use shomei_pki::RevokedEntry;
use time::{Duration, OffsetDateTime};

use crate::{Result, Revocation, Shomei};

/// One generated CRL, served from memory.
#[derive(Debug, Clone)]
pub struct CrlSnapshot {
    pub der: Vec<u8>,
    pub number: u64,
    pub this_update: OffsetDateTime,
    pub next_update: OffsetDateTime,
    /// Strong validator for HTTP caches: the CRL number.
    pub etag: String,
}

#[derive(Default)]
pub(crate) struct CrlPublisher {
    current: RwLock<Arc<CrlSnapshot>>,
    /// Serialises generation so numbers and contents advance together.
    generating: tokio::sync::Mutex<()>,
}

impl Default for CrlSnapshot {
    fn default() -> Self {
        Self {
            der: Vec::new(),
            number: 0,
            this_update: OffsetDateTime::UNIX_EPOCH,
            next_update: OffsetDateTime::UNIX_EPOCH,
            etag: String::new(),
        }
    }
}

impl CrlPublisher {
    pub(crate) fn current(&self) -> Arc<CrlSnapshot> {
        self.current.read().map(|c| c.clone()).unwrap_or_default()
    }
}

impl Shomei {
    /// Rebuilds the revoked-serial set and the CRL from the database.
    pub(crate) async fn reload_revocations(&self) -> Result<()> {
        let rows = self.store.revoked().await?;
        let set: HashMap<Vec<u8>, Revocation> = rows
            .iter()
            .map(|r| {
                (
                    r.serial.as_bytes().to_vec(),
                    Revocation {
                        at: r.revoked_at,
                        reason: r.reason,
                    },
                )
            })
            .collect();
        if let Ok(mut s) = self.revoked.write() {
            *s = set;
        }
        self.publish_crl().await
    }

    /// Puts a committed revocation in force in memory: TLS, sessions and
    /// OCSP see it from the next lookup on.
    pub(crate) fn mark_revoked(&self, serial: &[u8], at: time::OffsetDateTime, reason: u8) {
        if let Ok(mut s) = self.revoked.write() {
            s.insert(
                serial.to_vec(),
                Revocation {
                    at,
                    reason: Some(reason),
                },
            );
        }
        self.ocsp.forget(serial);
    }

    /// Generates and publishes a new full CRL with the next CRL number.
    pub async fn publish_crl(&self) -> Result<()> {
        let _guard = self.crl.generating.lock().await;
        let mut tx = self.store.begin().await?;
        let number = tx.next_crl_number().await?;
        tx.commit().await?;
        let entries: Vec<RevokedEntry> = self
            .store
            .revoked()
            .await?
            .into_iter()
            .map(|r| RevokedEntry {
                serial: r.serial.as_bytes().to_vec(),
                revoked_at: r.revoked_at,
                reason: r.reason,
            })
            .collect();
        let this_update = self.now();
        let next_update = this_update + Duration::hours(self.settings.crl_next_update_hours);
        let der = self.ca.crl(&entries, number, this_update, next_update)?;
        let snap = CrlSnapshot {
            der,
            number,
            this_update,
            next_update,
            etag: format!("\"crl-{number}\""),
        };
        if let Ok(mut c) = self.crl.current.write() {
            *c = Arc::new(snap);
        }
        tracing::info!(
            crl_number = number,
            entries = entries.len(),
            "CRL published"
        );
        Ok(())
    }

    /// Publishes a fresh CRL once half of the current one's lifetime has passed.
    pub async fn refresh_crl_if_due(&self) -> Result<()> {
        let c = self.crl();
        if self.now() >= c.this_update + (c.next_update - c.this_update) / 2 {
            self.publish_crl().await?;
        }
        Ok(())
    }
}
