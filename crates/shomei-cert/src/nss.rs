//! The user's NSS database (the one Chromium and Firefox read on Linux) and
//! the desktop link handler, both through the standard tools.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Fail;

pub fn db_dir() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".pki").join("nssdb")
}

fn tool(name: &str, args: &[&str]) -> Result<(), Fail> {
    let out = Command::new(name).args(args).output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Fail::Local(format!("{name} is not installed: install the package libnss3-tools (Debian/Ubuntu) or nss-tools, then run again"))
        } else {
            Fail::Local(format!("{name} could not run: {e}"))
        }
    })?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr)
            .lines()
            .chain(String::from_utf8_lossy(&out.stdout).lines())
            .next()
            .unwrap_or("")
            .to_owned();
        return Err(Fail::Local(format!("{name} failed: {msg}")));
    }
    Ok(())
}

/// Imports the PKCS#12 file (key and certificate) and trusts the bank's root
/// for web sites, creating the database if there is none.
pub fn import(p12: &Path, password: &str, root_pem: &[u8]) -> Result<(), Fail> {
    let dir = db_dir();
    let db = format!("sql:{}", dir.display());
    if !dir.join("cert9.db").exists() {
        std::fs::create_dir_all(&dir)
            .map_err(|e| Fail::Local(format!("cannot create {}: {e}", dir.display())))?;
        tool("certutil", &["-N", "-d", &db, "--empty-password"])?;
    }
    let p12 = p12
        .to_str()
        .ok_or(Fail::Local("the file name is not UTF-8".into()))?;
    tool("pk12util", &["-i", p12, "-d", &db, "-W", password])?;
    let root = std::env::temp_dir().join(format!("shomei-root-{}.pem", std::process::id()));
    std::fs::write(&root, root_pem).map_err(|e| Fail::Local(e.to_string()))?;
    let res = tool(
        "certutil",
        &[
            "-A",
            "-d",
            &db,
            "-t",
            "C,,",
            "-n",
            "Shomei bank root",
            "-i",
            &root.to_string_lossy(),
        ],
    );
    let _ = std::fs::remove_file(&root);
    res
}

/// Registers `shomei-cert:` links with the desktop (freedesktop.org).
pub fn install_handler() -> Result<(), Fail> {
    let exe = std::env::current_exe().map_err(|e| Fail::Local(e.to_string()))?;
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .ok_or(Fail::Local("HOME is not set".into()))?;
    let apps = home.join(".local/share/applications");
    std::fs::create_dir_all(&apps)
        .map_err(|e| Fail::Local(format!("cannot create {}: {e}", apps.display())))?;
    let desktop = format!(
        "[Desktop Entry]\nType=Application\nName=Shomei 証明書発行アプリ\nExec=\"{}\" open %u\nTerminal=true\nNoDisplay=true\nMimeType=x-scheme-handler/shomei-cert;\n",
        exe.display()
    );
    let file = apps.join("shomei-cert.desktop");
    std::fs::write(&file, desktop)
        .map_err(|e| Fail::Local(format!("cannot write {}: {e}", file.display())))?;
    let registered = Command::new("xdg-mime")
        .args([
            "default",
            "shomei-cert.desktop",
            "x-scheme-handler/shomei-cert",
        ])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    println!("installed {}", file.display());
    if !registered {
        println!(
            "xdg-mime is not available: the browser will ask which program opens shomei-cert: links"
        );
    }
    Ok(())
}
