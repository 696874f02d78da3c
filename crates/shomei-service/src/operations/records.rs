//! The bank's records opened for reading by an operator command (`shomei
//! company list`, `shomei audit export`, `shomei audit verify`): the
//! database of an existing data directory and nothing else — no CA, no
//! revocation set, nothing written.

use crate::Db as _;
use std::io::Write;
use std::path::Path;

use shomei_core::CompanyId;
use shomei_core::records::ChainCheck;
use shomei_core::records::CompanySummary;
use shomei_store::Store;

use crate::{AuditExportError, AuditExportFormat, Result, Settings};

/// The database of a data directory, for reading (see the module's note).
pub struct Records {
    store: Store,
}

impl Records {
    /// Opens the database `settings` name for `data_dir` (its SQLite file,
    /// or the PostgreSQL database of `database_url`).
    pub async fn open(settings: &Settings, data_dir: &Path) -> Result<Self> {
        Ok(Self {
            store: settings.open_store(data_dir).await.db()?,
        })
    }

    /// The records behind a running service (the integration tests').
    #[cfg(feature = "test-support")]
    pub(crate) fn of(svc: &crate::Shomei) -> Self {
        Self {
            store: svc.store.clone(),
        }
    }

    /// Every company with its number of users (`shomei company list`).
    pub async fn companies(&self) -> Result<Vec<CompanySummary>> {
        Ok(self.store.companies().await.db()?)
    }

    /// `shomei audit export`: every 操作履歴 row of one company (or all),
    /// oldest first, written to `w` (flushed); how many were written.
    pub async fn export_audit(
        &self,
        company: Option<CompanyId>,
        format: AuditExportFormat,
        w: &mut dyn Write,
    ) -> std::result::Result<usize, AuditExportError> {
        super::audit_export::export_audit(&self.store, company, format, w).await
    }

    /// Walks every 操作履歴 chain (`shomei audit verify`; the console's
    /// 操作履歴検証 walks the same).
    pub async fn verify_audit_chains(&self) -> Result<ChainCheck> {
        Ok(self.store.check_audit_chains().await.db()?)
    }
}
