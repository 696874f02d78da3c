//! What a system-wide package (.deb) of this app must say about it: its
//! version, its menu entry and what it needs from the system. The bank's
//! server builds the package around this very binary and asks it
//! (`shomei-cert package-info`), so the menu entry of the package and of the
//! per-user setup are one text and the package never describes another
//! build than the one it carries.

use std::path::Path;

use crate::install;

/// What the binary links (`dpkg-shlibdeps`), what its window opens at run
/// time on X11 (winit and xkbcommon load these with dlopen, so no tool
/// sees them in the ELF file), and the certutil/pk12util the NSS store runs.
pub const DEPENDS: &str = "libc6 (>= 2.35), libgcc-s1 (>= 4.2), libx11-6, libx11-xcb1, libxcb1, libxcursor1, libxi6, libxrandr2, libxkbcommon0, libxkbcommon-x11-0, libnss3-tools";

/// The Japanese text of the window comes from the system's fonts.
pub const RECOMMENDS: &str = "fonts-noto-cjk | fonts-ipafont-gothic | fonts-vlgothic";

/// The package's description: a summary line, then the long text.
pub const DESCRIPTION: &str = "証明書発行アプリ (Shomei client certificate app)\n\
Issues and renews the user's client certificate for the bank's business\n\
internet banking and stores it where the browsers find it. The private key\n\
is generated on this PC and never leaves it.";

/// The facts, as JSON, for the server that builds the package.
pub fn info() -> serde_json::Value {
    serde_json::json!({
        "package": "shomei-cert",
        "version": env!("CARGO_PKG_VERSION"),
        "exe": install::SYSTEM_EXE,
        "config_dir": install::SYSTEM_CONFIG_DIR,
        "desktop_file": install::DESKTOP_FILE,
        "desktop_entry": install::desktop_entry(Path::new(install::SYSTEM_EXE)),
        "depends": DEPENDS,
        "recommends": RECOMMENDS,
        "description": DESCRIPTION,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs desktop-file-validate (desktop-file-utils, installed by
    /// scripts/install-test-deps) on an entry; returns its complaints.
    fn validate(entry: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(install::DESKTOP_FILE);
        std::fs::write(&file, entry).unwrap();
        let out = std::process::Command::new("desktop-file-validate")
            .arg(&file)
            .output()
            .expect("desktop-file-validate (desktop-file-utils): run scripts/install-test-deps");
        let said = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            said
        } else {
            format!("FAILED {said}")
        }
    }

    #[test]
    fn the_package_menu_entry_is_the_setups_for_the_system_path_and_validates() {
        let info = info();
        let entry = info["desktop_entry"].as_str().unwrap();
        assert_eq!(
            entry,
            install::desktop_entry(Path::new("/usr/bin/shomei-cert"))
        );
        for line in [
            "Name=証明書発行アプリ\n",
            "Exec=\"/usr/bin/shomei-cert\" open %u\n",
            "MimeType=x-scheme-handler/shomei-cert;\n",
        ] {
            assert!(entry.contains(line), "{line} in {entry}");
        }
        let said = validate(entry);
        assert!(said.trim().is_empty(), "{said}");
        // The check itself refuses a broken entry.
        let broken = entry.replace("Type=Application\n", "");
        assert!(validate(&broken).starts_with("FAILED"), "{broken}");
    }

    #[test]
    fn the_package_facts_name_this_build() {
        let info = info();
        assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(info["desktop_file"], "shomei-cert.desktop");
        assert_eq!(info["config_dir"], "/etc/shomei-cert");
        let depends = info["depends"].as_str().unwrap();
        // The NSS store runs certutil and pk12util.
        assert!(depends.contains("libnss3-tools"), "{depends}");
        assert!(!depends.contains('\n'));
    }
}
