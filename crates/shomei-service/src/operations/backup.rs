//! `shomei backup`: the database by `VACUUM INTO` (one snapshot), then the
//! CA's files with their modes, then the copy is opened and checked
//! (integrity, the 操作履歴 hash chain, row counts) and a MANIFEST written.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::Settings;

/// Why a backup was not taken (English: CLI and logs).
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The database is PostgreSQL, which this command does not copy.
    #[error(
        "`shomei backup` copies the SQLite database of a data directory; back a PostgreSQL \
         database up with pg_dump or the server's point-in-time recovery (see the README), \
         and copy the data directory's ca/ folder"
    )]
    Postgres,
    /// The backup folder given already holds something.
    #[error("{0} is not empty: a backup never overwrites anything")]
    NotEmpty(PathBuf),
    /// A file or folder could not be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// To which file or folder.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// The database (or its copy) failed.
    #[error("{what}: {source}")]
    Database {
        /// What was being done.
        what: &'static str,
        /// The database's error.
        source: crate::DatabaseError,
    },
    /// The copy is not a sound SQLite database (SQLite's own message).
    #[error("the copy fails SQLite's integrity check: {0}")]
    Integrity(String),
    /// The copy's 操作履歴 does not verify from this row on.
    #[error("the copy's 操作履歴 hash chain is broken at row {0}")]
    Chain(i64),
}

/// A backup taken and checked.
#[derive(Debug, Clone)]
pub struct BackupDone {
    /// What MANIFEST.txt says (also for the operator's screen).
    pub manifest: String,
    /// How long the backup and its check took.
    pub seconds: f64,
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> BackupError + 'a {
    move |source| BackupError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

fn store(what: &'static str) -> impl FnOnce(shomei_store::StoreError) -> BackupError {
    move |source| BackupError::Database {
        what,
        source: crate::DatabaseError(source),
    }
}

/// Backs the SQLite database and the CA's files of `dir` up into `out`
/// (new or empty), and checks the copy as a restore would find it.
pub async fn backup(
    settings: &Settings,
    dir: &Path,
    out: &Path,
) -> Result<BackupDone, BackupError> {
    if settings.database_url.is_some() {
        return Err(BackupError::Postgres);
    }
    let db = settings
        .open_store(dir)
        .await
        .map_err(store("cannot open the database"))?;
    if out.exists()
        && std::fs::read_dir(out)
            .map_err(io("cannot read", out))?
            .next()
            .is_some()
    {
        return Err(BackupError::NotEmpty(out.to_owned()));
    }
    std::fs::create_dir_all(out).map_err(io("cannot create", out))?;
    std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o700))
        .map_err(io("cannot set the mode of", out))?;
    let started = std::time::Instant::now();
    db.backup_into(&out.join("shomei.db"))
        .await
        .map_err(store("copying the database"))?;
    let ca_from = dir.join("ca");
    let ca_to = out.join("ca");
    std::fs::create_dir(&ca_to).map_err(io("cannot create", &ca_to))?;
    std::fs::set_permissions(&ca_to, std::fs::Permissions::from_mode(0o700))
        .map_err(io("cannot set the mode of", &ca_to))?;
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&ca_from).map_err(io("cannot read", &ca_from))? {
        let entry = entry.map_err(io("cannot read", &ca_from))?;
        let path = entry.path();
        if !entry
            .file_type()
            .map_err(io("cannot read", &path))?
            .is_file()
        {
            continue;
        }
        let to = ca_to.join(entry.file_name());
        // std::fs::copy keeps the mode: private keys stay 0600.
        std::fs::copy(&path, &to).map_err(io("cannot copy", &path))?;
        files.push(entry.file_name().to_string_lossy().into_owned());
    }
    files.sort();
    // Check the copy as a restore would find it.
    let copy = shomei_store::Store::open_with(&out.join("shomei.db"), settings.durability())
        .await
        .map_err(store("opening the copy"))?;
    if let Some(problem) = copy
        .integrity_problem()
        .await
        .map_err(store("checking the copy"))?
    {
        return Err(BackupError::Integrity(problem));
    }
    if let Some(row) = copy
        .verify_audit()
        .await
        .map_err(store("checking the copy"))?
    {
        return Err(BackupError::Chain(row));
    }
    let counts = copy
        .table_counts()
        .await
        .map_err(store("counting the copy's rows"))?;
    copy.close().await;
    let key_in_token = !ca_from.join("issuing-ca.key").exists();
    let mut manifest = format!(
        "Shomei backup\ntaken: {}\nfrom: {}\ndatabase: shomei.db (integrity ok, 操作履歴 hash chain ok)\n",
        time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        dir.display()
    );
    for (table, n) in &counts {
        manifest.push_str(&format!("  {table}: {n}\n"));
    }
    manifest.push_str(&format!("ca/: {}\n", files.join(", ")));
    if key_in_token {
        manifest.push_str(
            "the issuing CA's key is in a PKCS#11 token, not in this backup: back the token up with the HSM's own tools\n",
        );
    }
    let manifest_path = out.join("MANIFEST.txt");
    std::fs::write(&manifest_path, &manifest).map_err(io("cannot write", &manifest_path))?;
    Ok(BackupDone {
        manifest,
        seconds: started.elapsed().as_secs_f64(),
    })
}
