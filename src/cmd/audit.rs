//! `shomei audit …`: the 操作履歴's hash chain checked, or the rows exported.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;

use super::{Common, open_records};

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Check the hash chain of the whole 操作履歴.
    Verify {
        #[command(flatten)]
        common: Common,
    },
    /// Write the 操作履歴 (oldest first) as CSV, or JSON lines with --json.
    Export {
        #[command(flatten)]
        common: Common,
        /// Only this company's rows (see `shomei company list`).
        #[arg(long)]
        company_id: Option<i64>,
        /// Default: standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

/// Runs one `shomei audit` command.
pub(crate) async fn run(command: AuditCommand) -> Result<()> {
    match command {
        AuditCommand::Verify { common } => audit_verify(common).await,
        AuditCommand::Export {
            common,
            company_id,
            out,
            json,
        } => audit_export(common, company_id, out, json).await,
    }
}

async fn audit_verify(common: Common) -> Result<()> {
    let check = open_records(&common).await?.verify_audit_chains().await?;
    match check.broken_at {
        None => {
            println!(
                "操作履歴 hash chain: OK ({} rows in {} chains)",
                check.rows, check.chains
            );
            Ok(())
        }
        Some(id) => bail!("操作履歴 hash chain broken at row {id}: edited, deleted or reordered"),
    }
}

async fn audit_export(
    common: Common,
    company_id: Option<i64>,
    out: Option<PathBuf>,
    json: bool,
) -> Result<()> {
    let records = open_records(&common).await?;
    let mut w: Box<dyn std::io::Write> = match &out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot write {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let format = if json {
        shomei_service::AuditExportFormat::JsonLines
    } else {
        shomei_service::AuditExportFormat::Csv
    };
    let n = records
        .export_audit(company_id.map(shomei_core::CompanyId), format, &mut w)
        .await?;
    if let Some(p) = out {
        eprintln!("{n} rows written to {}", p.display());
    }
    Ok(())
}
