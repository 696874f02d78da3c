//! The setup (セットアップ): per user, no root. Copies the app and its
//! configuration into a folder, adds the menu entry 「証明書発行アプリ」 and
//! registers the `shomei-cert:` links of 証明書取得認証 (freedesktop.org:
//! a `.desktop` file and `mimeapps.list`). Installing over an older copy
//! replaces it.

use std::path::{Path, PathBuf};

use crate::fail::Fail;
use crate::{store, text};

/// The files that travel with the app (the download's contents).
const COMPANIONS: [&str; 2] = ["shomei-cert.toml", "root-ca.crt"];
/// The licence of the Japanese font the Windows app carries
/// (`gui::FALLBACK_FONT`), installed beside it as the licence asks.
#[cfg(windows)]
const FONT_LICENSE: (&str, &[u8]) = (
    "NotoSansCJK-LICENSE.txt",
    include_bytes!("../fonts/NotoSansCJK-LICENSE.txt"),
);
/// Marks a folder as an installed copy: started from there, no setup.
const MARKER: &str = ".shomei-cert-installed";
pub const DESKTOP_FILE: &str = "shomei-cert.desktop";
pub const SCHEME: &str = "x-scheme-handler/shomei-cert";
/// Where the system-wide package (.deb) puts the app: started from there,
/// it is installed and needs no setup.
pub const SYSTEM_EXE: &str = "/usr/bin/shomei-cert";
/// Where the system-wide package puts the bank's configuration (the files
/// the per-user setup copies beside the app).
pub const SYSTEM_CONFIG_DIR: &str = "/etc/shomei-cert";

#[cfg_attr(windows, allow(dead_code))]
fn xdg(var: &str, fallback: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| store::home().join(fallback))
}

/// Where a per-user install puts things (freedesktop.org's places).
#[derive(Clone, Debug)]
pub struct Places {
    /// インストール先フォルダー's default.
    pub default_dir: PathBuf,
    /// Where the menu entry goes.
    pub applications: PathBuf,
    /// Which program opens which link (freedesktop.org; unused on Windows).
    #[cfg_attr(windows, allow(dead_code))]
    pub mimeapps: PathBuf,
}

impl Places {
    /// This user's on Windows: the app under `%LOCALAPPDATA%\Programs`, the
    /// shortcut in the Start menu's programs (`%APPDATA%`); links are
    /// registered in HKCU (winsetup.rs), no file.
    #[cfg(windows)]
    pub fn of_user() -> Self {
        let env = |v: &str| std::env::var_os(v).map(PathBuf::from).unwrap_or_default();
        Places {
            default_dir: env("LOCALAPPDATA").join("Programs").join("shomei-cert"),
            applications: env("APPDATA").join(r"Microsoft\Windows\Start Menu\Programs"),
            mimeapps: PathBuf::new(),
        }
    }

    /// This user's: under the home folder.
    #[cfg(not(windows))]
    pub fn of_user() -> Self {
        let data = xdg("XDG_DATA_HOME", ".local/share");
        Places {
            default_dir: data.join("shomei-cert"),
            applications: data.join("applications"),
            mimeapps: xdg("XDG_CONFIG_HOME", ".config").join("mimeapps.list"),
        }
    }
}

/// Whether this copy of the app is an installed one: set up for this user
/// (the marker beside it), or the system-wide package's.
pub fn is_installed() -> bool {
    std::env::current_exe().is_ok_and(|e| installed_at(&e))
}

fn installed_at(exe: &Path) -> bool {
    exe == Path::new(SYSTEM_EXE) || exe.with_file_name(MARKER).is_file()
}

fn fail(place: &Path, e: impl std::fmt::Display) -> Fail {
    Fail::Local(text::install_failed(
        &place.display().to_string(),
        &e.to_string(),
    ))
}

/// A path as one argument of a desktop entry's Exec line.
fn exec_quote(p: &Path) -> String {
    let mut s = String::from("\"");
    for c in p.to_string_lossy().chars() {
        if matches!(c, '"' | '`' | '$' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

pub fn desktop_entry(exe: &Path) -> String {
    format!(
        "[Desktop Entry]\nType=Application\nName=証明書発行アプリ\nName[ja]=証明書発行アプリ\nComment=電子証明書の発行・更新\nExec={} open %u\nTerminal=false\nStartupWMClass=shomei-cert\nCategories=Office;Finance;\nMimeType={SCHEME};\n",
        exec_quote(exe)
    )
}

/// `mimeapps.list` with our handler as the default for the scheme, every
/// other line kept.
#[cfg_attr(windows, allow(dead_code))]
pub fn with_handler(existing: &str) -> String {
    let line = format!("{SCHEME}={DESKTOP_FILE}");
    let mut out = Vec::new();
    let mut in_defaults = false;
    let mut placed = false;
    for l in existing.lines() {
        let t = l.trim();
        if t.starts_with('[') {
            if in_defaults && !placed {
                out.push(line.clone());
                placed = true;
            }
            in_defaults = t == "[Default Applications]";
        } else if in_defaults && t.starts_with(&format!("{SCHEME}=")) {
            if !placed {
                out.push(line.clone());
                placed = true;
            }
            continue;
        }
        out.push(l.to_owned());
    }
    if !placed {
        if !in_defaults {
            if out.last().is_some_and(|l| !l.is_empty()) {
                out.push(String::new());
            }
            out.push("[Default Applications]".into());
        }
        out.push(line);
    }
    out.join("\n") + "\n"
}

/// Copies `from` to `to` through a temporary file beside it, so a running
/// older copy is replaced whole.
fn copy_whole(from: &Path, to: &Path, mode: u32) -> Result<(), Fail> {
    let bytes = std::fs::read(from).map_err(|e| fail(from, e))?;
    let tmp = to.with_extension(format!("new-{}", std::process::id()));
    let res = (|| {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
        #[cfg(not(unix))]
        let _ = mode;
        let mut f = opts.open(&tmp)?;
        std::io::Write::write_all(&mut f, &bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, to)
    })();
    res.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(to, e)
    })
}

/// The menu entry and the `shomei-cert:` links (freedesktop.org).
#[cfg(not(windows))]
fn register(_dir: &Path, target: &Path, places: &Places) -> Result<(), Fail> {
    let apps = &places.applications;
    std::fs::create_dir_all(apps).map_err(|e| fail(apps, e))?;
    let entry = apps.join(DESKTOP_FILE);
    crate::fail::write_atomic(&entry, desktop_entry(target).as_bytes())?;
    let mime = &places.mimeapps;
    if let Some(parent) = mime.parent() {
        std::fs::create_dir_all(parent).map_err(|e| fail(parent, e))?;
    }
    let existing = std::fs::read_to_string(mime).unwrap_or_default();
    crate::fail::write_atomic(mime, with_handler(&existing).as_bytes())?;
    // Desktops that cache the handlers refresh; without the tool, they read
    // the files above on their next start.
    let _ = std::process::Command::new("update-desktop-database")
        .arg(apps)
        .output();
    Ok(())
}

/// The Start-menu shortcut, the `shomei-cert:` link and the 「アプリと機能」
/// entry (HKCU).
#[cfg(windows)]
fn register(dir: &Path, target: &Path, places: &Places) -> Result<(), Fail> {
    let apps = &places.applications;
    std::fs::create_dir_all(apps).map_err(|e| fail(apps, e))?;
    let lnk = crate::lnk::shortcut(
        &target.display().to_string(),
        "open",
        &dir.display().to_string(),
        "電子証明書の発行・更新",
    );
    crate::fail::write_atomic(&apps.join(crate::winsetup::SHORTCUT), &lnk)?;
    let publisher = crate::enroll::target(&crate::enroll::Conn::default())
        .map(|t| t.bank)
        .unwrap_or_default();
    crate::winsetup::register(target, dir, &publisher).map_err(|e| {
        let _ = crate::winsetup::unregister();
        let _ = std::fs::remove_file(apps.join(crate::winsetup::SHORTCUT));
        fail(dir, e)
    })
}

/// 「アンインストール」: removes the registry entries, the shortcut and the
/// folder of the copy that runs (after it has ended). The certificates stay
/// in the store: they are the user's, and the bank revokes them.
#[cfg(windows)]
pub fn uninstall(places: &Places) -> Result<(), Fail> {
    let exe = std::env::current_exe().map_err(|e| fail(Path::new("shomei-cert"), e))?;
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if !installed_at(&exe) {
        return Err(fail(&dir, "このフォルダーにはインストールされていません"));
    }
    crate::winsetup::unregister().map_err(|e| fail(&dir, e))?;
    let _ = std::fs::remove_file(places.applications.join(crate::winsetup::SHORTCUT));
    // The marker first: a folder left half-removed is no installed copy.
    let _ = std::fs::remove_file(dir.join(MARKER));
    for name in COMPANIONS {
        let _ = std::fs::remove_file(dir.join(name));
    }
    crate::winsetup::remove_after_exit(&dir).map_err(|e| fail(&dir, e))?;
    println!("アンインストールしました: {}", dir.display());
    Ok(())
}

/// Installs into `dir`; returns the installed app's path.
pub fn install(dir: &Path, places: &Places) -> Result<PathBuf, Fail> {
    if !dir.is_absolute() {
        let why = if cfg!(windows) {
            "フォルダーは C:\\ のようにドライブから始まる絶対パスで指定してください"
        } else {
            "フォルダーは / から始まる絶対パスで指定してください"
        };
        return Err(fail(dir, why));
    }
    let exe = std::env::current_exe().map_err(|e| fail(dir, e))?;
    let src = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    std::fs::create_dir_all(dir).map_err(|e| fail(dir, e))?;
    let target = dir.join(format!("shomei-cert{}", std::env::consts::EXE_SUFFIX));
    let same = std::fs::canonicalize(&src).ok() == std::fs::canonicalize(dir).ok();
    if !same {
        for name in COMPANIONS {
            let from = src.join(name);
            if from.is_file() {
                copy_whole(&from, &dir.join(name), 0o644)?;
            }
        }
        copy_whole(&exe, &target, 0o755)?;
    }
    #[cfg(windows)]
    crate::fail::write_atomic(&dir.join(FONT_LICENSE.0), FONT_LICENSE.1)?;
    register(dir, &target, places)?;
    // Last: only a complete copy is marked as installed.
    crate::fail::write_atomic(
        &dir.join(MARKER),
        concat!("shomei-cert ", env!("CARGO_PKG_VERSION"), "\n").as_bytes(),
    )?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_handler_is_set_and_other_handlers_are_kept() {
        assert_eq!(
            with_handler(""),
            "[Default Applications]\nx-scheme-handler/shomei-cert=shomei-cert.desktop\n"
        );
        let before = "[Added Associations]\ntext/plain=gedit.desktop\n\n[Default Applications]\nx-scheme-handler/shomei-cert=old.desktop\ntext/html=firefox.desktop\n";
        let after = with_handler(before);
        assert_eq!(
            after,
            "[Added Associations]\ntext/plain=gedit.desktop\n\n[Default Applications]\nx-scheme-handler/shomei-cert=shomei-cert.desktop\ntext/html=firefox.desktop\n"
        );
        assert_eq!(
            with_handler(&after),
            after,
            "installing again changes nothing"
        );
    }

    #[test]
    fn the_system_wide_copy_and_a_set_up_copy_need_no_setup_an_unpacked_one_does() {
        assert!(installed_at(Path::new("/usr/bin/shomei-cert")));
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("shomei-cert");
        assert!(!installed_at(&exe), "unpacked download");
        assert!(!installed_at(&dir.path().join("usr/bin/shomei-cert")));
        std::fs::write(dir.path().join(MARKER), "shomei-cert 0.1.0\n").unwrap();
        assert!(installed_at(&exe), "set up for this user");
    }

    #[test]
    fn the_menu_entry_quotes_the_path() {
        let e = desktop_entry(Path::new("/home/a b/$x/shomei-cert"));
        assert!(
            e.contains("Exec=\"/home/a b/\\$x/shomei-cert\" open %u\n"),
            "{e}"
        );
    }

    #[test]
    fn installing_again_replaces_the_copy_and_a_relative_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let places = Places {
            default_dir: dir.path().join("app"),
            applications: dir.path().join("apps"),
            mimeapps: dir.path().join("mimeapps.list"),
        };
        std::fs::create_dir_all(&places.default_dir).unwrap();
        std::fs::write(places.default_dir.join("shomei-cert"), b"old version").unwrap();
        let exe = install(&places.default_dir, &places).unwrap();
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(
            std::fs::read(&exe).unwrap() == me,
            "the old copy is replaced whole"
        );
        assert!(install(Path::new("relative/dir"), &places).is_err());
    }
}
