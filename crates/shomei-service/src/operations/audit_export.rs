//! `shomei audit export`: every 操作履歴 row of one company (or all), oldest
//! first, as CSV or as one JSON object a line, for the bank's own tools.

use crate::Db as _;
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
    /// The 操作履歴 could not be read.
    #[error(transparent)]
    Database(#[from] crate::DatabaseError),
    /// The export could not be written.
    #[error("cannot write the export: {0}")]
    Write(#[from] std::io::Error),
}

/// Appends one CSV field to `out`: a value a spreadsheet would read as a
/// formula (leading `=`, `+`, `-`, `@`, tab or CR) gets a leading `'`, and
/// the field is quoted when it holds a comma, quote or line break. Every
/// 操作履歴 CSV (the portal's BSSK011, the console's, the CLI's export) goes
/// through this one rule.
pub(crate) fn csv_field(out: &mut String, v: &str) {
    let defused;
    let v = if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        defused = format!("'{v}");
        defused.as_str()
    } else {
        v
    };
    if v.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&v.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(v);
    }
}

/// One CSV line of `fields` (each through `csv_field`), without its end.
pub fn csv_line<'a>(fields: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for (i, v) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(&mut out, v);
    }
    out
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Writes the rows to `w` and flushes it; returns how many were written.
pub(crate) async fn export_audit(
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
                let (id, at) = (r.id.to_string(), rfc3339(r.at));
                let company = r.company_id.map(|c| c.0.to_string()).unwrap_or_default();
                csv_line([
                    id.as_str(),
                    &at,
                    &company,
                    &r.actor_login_id,
                    &r.operation,
                    &r.target_login_id,
                    &r.result,
                    &r.detail,
                    &r.client_addr,
                ])
            };
            if let Err(e) = writeln!(w, "{line}") {
                failed = Some(e);
            }
        })
        .await
        .db()?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    w.flush()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        let mut s = String::new();
        for (i, v) in ["a,b", "say \"hi\"", "証明書失効", "line\nbreak"]
            .iter()
            .enumerate()
        {
            if i > 0 {
                s.push('|');
            }
            csv_field(&mut s, v);
        }
        assert_eq!(s, "\"a,b\"|\"say \"\"hi\"\"\"|証明書失効|\"line\nbreak\"");
        for lead in ["=", "+", "-", "@", "\t", "\r"] {
            let v = format!("{lead}HYPERLINK(\"http://x\")");
            let got = csv_line([v.as_str()]);
            assert!(
                got.starts_with("\"'") || got.starts_with('\''),
                "{lead:?}: {got}"
            );
            assert!(
                got.contains(&format!("'{v}").replace('"', "\"\"")),
                "{lead:?}: {got}"
            );
        }
        // Only a leading one: inside a value they are plain text.
        assert_eq!(csv_line(["a=b", "1-2", "x@y"]), "a=b,1-2,x@y");
    }
}
