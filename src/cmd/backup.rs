//! `shomei backup`: the data directory copied, consistently, while the
//! server runs (the work is `shomei_service::backup`).

use std::path::PathBuf;

use anyhow::Result;

use super::{Common, data_dir, load, require_data};

// The options of `shomei backup` (its help is the variant's, in main.rs).
#[derive(clap::Args)]
pub(crate) struct BackupArgs {
    #[command(flatten)]
    common: Common,
    /// A directory that does not exist yet (or is empty).
    #[arg(long)]
    out: PathBuf,
}

/// `shomei backup` (see `shomei_service::backup`).
pub(crate) async fn backup(args: BackupArgs) -> Result<()> {
    let BackupArgs { common, out } = args;
    let cfg = load(&common)?;
    let dir = data_dir(&common, &cfg);
    require_data(&dir, &cfg, false)?;
    let done = shomei_service::backup(&cfg.settings, &dir, &out).await?;
    print!("{}", done.manifest);
    println!(
        "backup written to {} in {:.1} s; to restore, stop the server and start it with --data-dir {}",
        out.display(),
        done.seconds,
        out.display()
    );
    Ok(())
}
