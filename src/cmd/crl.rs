//! `shomei crl export`: the current full CRL, built from the database.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;

use super::{Common, data_dir, load, require_data};

#[derive(Subcommand)]
pub(crate) enum CrlCommand {
    /// Build the current full CRL from the database and write it (DER), e.g.
    /// for an offline distribution point.
    Export {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs one `shomei crl` command.
pub(crate) async fn run(command: CrlCommand) -> Result<()> {
    match command {
        CrlCommand::Export { common, out } => crl_export(common, out).await,
    }
}

async fn crl_export(common: Common, out: PathBuf) -> Result<()> {
    let cfg = load(&common)?;
    let dir = data_dir(&common, &cfg);
    require_data(&dir, &cfg, true)?;
    let (number, der) =
        shomei_service::export_crl(&dir, &cfg.settings, time::OffsetDateTime::now_utc())
            .await
            .with_context(|| format!("cannot build the CRL from {}", dir.display()))?;
    std::fs::write(&out, &der).with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "CRL number {number} written to {} ({} bytes)",
        out.display(),
        der.len()
    );
    Ok(())
}
