//! The command groups of `shomei`, one module each, and what they share:
//! the data directory and configuration file every command opens
//! (`Common`, `load`), the operator's name for 操作履歴 (`Operator`), and
//! the shell's table and time formats.

pub(crate) mod approval;
pub(crate) mod audit;
pub(crate) mod backup;
pub(crate) mod cert;
pub(crate) mod company;
pub(crate) mod crl;
pub(crate) mod operator;
pub(crate) mod serve;
pub(crate) mod user;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use shomei_core::LoginId;
use shomei_service::{Settings, Shomei, SystemClock};

#[derive(clap::Args)]
pub(crate) struct Common {
    /// Data directory (database, CA, server certificate).
    #[arg(long, env = "SHOMEI_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Configuration file (see shomei.example.toml).
    #[arg(long, env = "SHOMEI_CONFIG")]
    config: Option<PathBuf>,
    /// PostgreSQL database shared by several nodes, as
    /// postgres://USER:PASSWORD@HOST:PORT/DB; without it, SQLite in the
    /// data directory.
    #[arg(long, env = "SHOMEI_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
}

/// Who takes the request, for 操作履歴.
#[derive(clap::Args)]
pub(crate) struct Operator {
    /// Who takes the request (written to 操作履歴). Default: $USER.
    #[arg(long)]
    operator: Option<String>,
}

impl Operator {
    fn name(&self) -> String {
        self.operator
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .filter(|o| !o.trim().is_empty())
            .unwrap_or_else(|| "operator".into())
    }
}

/// The configuration file.
#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ConfigFile {
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    listen: Option<SocketAddr>,
    public_url: Option<String>,
    cert_listen: Option<SocketAddr>,
    cert_public_url: Option<String>,
    pki_listen: Option<SocketAddr>,
    pki_public_url: Option<String>,
    metrics_listen: Option<SocketAddr>,
    operator_listen: Option<SocketAddr>,
    settings: Settings,
}

pub(crate) fn load_config(path: Option<&Path>) -> Result<ConfigFile> {
    let Some(path) = path else {
        return Ok(ConfigFile::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let cfg: ConfigFile =
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))?;
    cfg.settings
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid config file {}: {e}", path.display()))?;
    Ok(cfg)
}

/// The config file, with the database URL from `--database-url` (or
/// `SHOMEI_DATABASE_URL`, or the file's `database_url`) checked and set in
/// its settings: every command opens the store through them.
pub(crate) fn load(common: &Common) -> Result<ConfigFile> {
    let mut cfg = load_config(common.config.as_deref())?;
    if let Some(url) = common
        .database_url
        .as_deref()
        .or(cfg.database_url.as_deref())
    {
        cfg.settings.use_database_url(url)?;
    }
    Ok(cfg)
}

/// Refuses an operator command where there is no Shomei data (it never
/// creates any): with SQLite, no `shomei.db` in the data directory; with
/// PostgreSQL, no CA in it when the command needs the CA.
pub(crate) fn require_data(dir: &Path, cfg: &ConfigFile, needs_ca: bool) -> Result<()> {
    let missing = match cfg.settings.database_url {
        None => !dir.join("shomei.db").exists(),
        Some(_) => needs_ca && !dir.join("ca").exists(),
    };
    if missing {
        bail!(
            "no Shomei data in {} (start the server once, or pass --data-dir)",
            dir.display()
        );
    }
    Ok(())
}

pub(crate) const DEFAULT_DATA_DIR: &str = "./shomei-data";

pub(crate) fn data_dir(common: &Common, cfg: &ConfigFile) -> PathBuf {
    common
        .data_dir
        .clone()
        .or_else(|| cfg.data_dir.clone())
        .unwrap_or_else(|| DEFAULT_DATA_DIR.into())
}

pub(crate) async fn open(
    common: &Common,
    cfg: &ConfigFile,
    public_url: &str,
    pki_url: &str,
) -> Result<Shomei> {
    let dir = data_dir(common, cfg);
    Shomei::open_with_pki(
        &dir,
        public_url,
        pki_url,
        cfg.settings.clone(),
        Arc::new(SystemClock),
    )
    .await
    .with_context(|| format!("cannot open data directory {}", dir.display()))
}

/// Opens an existing data directory for an operator command; never creates one.
pub(crate) async fn open_existing(common: &Common, cfg: &ConfigFile) -> Result<Shomei> {
    let dir = data_dir(common, cfg);
    require_data(&dir, cfg, true)?;
    let public_url = cfg
        .public_url
        .clone()
        .unwrap_or_else(|| "https://localhost:8443".into());
    Shomei::open_for_operator(
        &dir,
        &public_url,
        cfg.settings.clone(),
        Arc::new(SystemClock),
    )
    .await
    .with_context(|| format!("cannot open data directory {}", dir.display()))
}

/// The service on an existing data directory, for an operator command.
pub(crate) async fn open_cli(common: &Common) -> Result<Shomei> {
    let cfg = load(common)?;
    open_existing(common, &cfg).await
}

/// Opens the database of an existing data directory, and nothing else (no
/// CA, no revocation set): for read-only operator commands.
pub(crate) async fn open_records(common: &Common) -> Result<shomei_service::Records> {
    let cfg = load(common)?;
    let dir = data_dir(common, &cfg);
    require_data(&dir, &cfg, false)?;
    let store = shomei_service::Records::open(&cfg.settings, &dir).await;
    match &cfg.settings.database_url {
        Some(url) => store.with_context(|| format!("cannot open the database {url}")),
        None => store.with_context(|| format!("cannot open the database in {}", dir.display())),
    }
}

/// `s` padded to `width` terminal columns (full-width characters take two).
pub(crate) fn pad(s: &str, width: usize) -> String {
    let used: usize = s.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum();
    format!("{s}{}", " ".repeat(width.saturating_sub(used).max(1)))
}

pub(crate) fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub(crate) fn login_id_of(s: &str) -> Result<LoginId> {
    LoginId::parse(s).ok_or_else(|| {
        anyhow::anyhow!("invalid login ID {s:?}: half-width letters and digits only")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// shomei.example.toml documents the defaults: it must parse and say
    /// exactly what the code does when nothing is configured.
    #[test]
    fn the_example_config_is_the_defaults() {
        let cfg: ConfigFile = toml::from_str(include_str!("../../shomei.example.toml")).unwrap();
        assert_eq!(cfg.settings, Settings::default());
        assert_eq!(cfg.data_dir, Some(PathBuf::from(DEFAULT_DATA_DIR)));
        assert_eq!(cfg.listen, Some(serve::DEFAULT_LISTEN.parse().unwrap()));
        assert!(cfg.settings.validate().is_ok());
    }

    #[test]
    fn a_config_with_unknown_keys_or_bad_numbers_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        for bad in [
            "colour = 1",
            "[settings]\nlogin_stop_after = 1",
            "[settings]\nsession_idle_minutes = \"ten\"",
        ] {
            std::fs::write(&path, bad).unwrap();
            assert!(load_config(Some(&path)).is_err(), "{bad}");
        }
    }
}
