//! `shomei audit export`: every 操作履歴 row of one company (or all), oldest
//! first, as CSV or as one JSON object a line, for the bank's own tools.

use std::io::Write;

use shomei_core::CompanyId;
use shomei_store::Store;

/// The export's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditExportFormat {
    /// A header line, then one CSV line a row.
    Csv,
    /// One JSON object a line.
    JsonLines,
}

/// Why an export stopped (English: CLI and logs).
#[derive(Debug, thiserror::Error)]
pub enum AuditExportError {
    #[error(transparent)]
    Store(#[from] shomei_store::StoreError),
    #[error("cannot write the export: {0}")]
    Write(#[from] std::io::Error),
}

/// One CSV field, quoted when it must be.
fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_owned()
    }
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Writes the rows to `w` and flushes it; returns how many were written.
pub async fn export_audit(
    store: &Store,
    company: Option<CompanyId>,
    format: AuditExportFormat,
    w: &mut dyn Write,
) -> Result<usize, AuditExportError> {
    let json = format == AuditExportFormat::JsonLines;
    let mut failed = None;
    if !json {
        writeln!(
            w,
            "id,at,company_id,actor,operation,target,result,detail,client"
        )?;
    }
    let n = store
        .audit_for_each(company, |r| {
            if failed.is_some() {
                return;
            }
            let line = if json {
                serde_json::json!({
                    "id": r.id,
                    "at": rfc3339(r.at),
                    "company_id": r.company_id.map(|c| c.0),
                    "actor": r.actor_login_id,
                    "operation": r.operation,
                    "target": r.target_login_id,
                    "result": r.result,
                    "detail": r.detail,
                    "client": r.client_addr,
                })
                .to_string()
            } else {
                [
                    r.id.to_string(),
                    rfc3339(r.at),
                    r.company_id.map(|c| c.0.to_string()).unwrap_or_default(),
                    csv_field(&r.actor_login_id),
                    csv_field(&r.operation),
                    csv_field(&r.target_login_id),
                    csv_field(&r.result),
                    csv_field(&r.detail),
                    csv_field(&r.client_addr),
                ]
                .join(",")
            };
            if let Err(e) = writeln!(w, "{line}") {
                failed = Some(e);
            }
        })
        .await?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    w.flush()?;
    Ok(n)
}
