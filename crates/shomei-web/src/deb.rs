//! The 証明書発行アプリ as a Debian/Ubuntu package, for system-wide installs
//! (`sudo apt install ./shomei-cert_….deb`). The server builds it in memory
//! from the `shomei-cert` binary next to its own and this bank's
//! configuration (its servers, its root certificate), so every .deb a bank
//! hands out is that bank's, like the tar download. What the package says
//! about the app (version, menu entry, dependencies) the binary itself
//! tells (`shomei-cert package-info`): it cannot drift from the binary.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::archive::{Entry, ar, tar_end, tar_entry, tar_file};

/// What the app says about itself for a package.
#[derive(serde::Deserialize, Clone, Debug, PartialEq)]
pub(crate) struct AppInfo {
    pub package: String,
    pub version: String,
    pub exe: String,
    pub config_dir: String,
    pub desktop_file: String,
    pub desktop_entry: String,
    pub depends: String,
    pub recommends: String,
    pub description: String,
}

#[derive(Clone, Debug, thiserror::Error)]
pub(crate) enum DebError {
    #[error("{0} is not a 64-bit little-endian ELF binary for amd64 or arm64")]
    NotPackageable(String),
    #[error("{0} package-info: {1}")]
    Info(String, String),
    #[error("{0}: {1}")]
    Io(String, String),
}

/// Debian's name for the binary's architecture, from its ELF header; None
/// when it is none we package.
pub(crate) fn deb_arch(header: &[u8]) -> Option<&'static str> {
    if header.len() < 20 || &header[..4] != b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return None;
    }
    match u16::from_le_bytes([header[18], header[19]]) {
        0x3e => Some("amd64"),
        0xb7 => Some("arm64"),
        _ => None,
    }
}

/// A word of a control field or a path part: nothing that could break the
/// control file or a tar name.
fn plain(s: &str, extra: &[char]) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".+-~_".contains(c) || extra.contains(&c))
}

impl AppInfo {
    fn check(self) -> Result<Self, String> {
        let path_ok = |p: &str| {
            p.starts_with('/')
                && p.len() < 80
                && p[1..]
                    .split('/')
                    .all(|part| plain(part, &[]) && part != "..")
        };
        let one_line = |s: &str| !s.contains(['\n', '\r']) && s.len() < 1000;
        let ok = plain(&self.package, &[])
            && plain(&self.version, &[])
            && self.version.starts_with(|c: char| c.is_ascii_digit())
            && path_ok(&self.exe)
            && path_ok(&self.config_dir)
            && plain(&self.desktop_file, &[])
            && self.desktop_file.ends_with(".desktop")
            && one_line(&self.depends)
            && one_line(&self.recommends)
            && !self.description.trim().is_empty()
            && self.description.len() < 4000
            && self.desktop_entry.len() < 4000;
        if ok {
            Ok(self)
        } else {
            Err("unexpected package facts".into())
        }
    }
}

/// Asks the binary for its package facts (at most 10 seconds).
async fn ask(app: &Path) -> Result<AppInfo, DebError> {
    let name = app.display().to_string();
    let run = tokio::process::Command::new(app)
        .arg("package-info")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(10), run)
        .await
        .map_err(|_| DebError::Info(name.clone(), "no answer within 10 s".into()))?
        .map_err(|e| DebError::Io(name.clone(), e.to_string()))?;
    if !out.status.success() {
        return Err(DebError::Info(
            name,
            format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    serde_json::from_slice::<AppInfo>(&out.stdout)
        .map_err(|e| e.to_string())
        .and_then(AppInfo::check)
        .map_err(|e| DebError::Info(name, e))
}

/// The binary as it is on disk now: a rebuilt or replaced app is a new key.
type Stamp = (u64, Option<SystemTime>);

fn stamp(app: &Path) -> Result<Stamp, DebError> {
    let m = std::fs::metadata(app)
        .map_err(|e| DebError::Io(app.display().to_string(), e.to_string()))?;
    Ok((m.len(), m.modified().ok()))
}

/// Who hands the package out: the bank (Maintainer, its help desk's
/// address) and its portal (Homepage). One line each in the control file.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Origin {
    pub maintainer: String,
    pub homepage: String,
}

impl Origin {
    fn line(s: &str) -> String {
        s.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
            .trim()
            .to_owned()
    }
}

/// A built package: its file name and bytes.
pub(crate) struct Package {
    pub file_name: String,
    /// Shared by every response, not copied.
    pub bytes: axum::body::Bytes,
}

struct Cached {
    stamp: Stamp,
    /// What the binary said, or why no package can be made of it.
    facts: Result<(AppInfo, &'static str), DebError>,
    /// The last package built, with the configuration it was built with.
    built: Option<(String, Arc<Package>)>,
}

/// One app per server: what it said and the last package, until the binary
/// changes.
static CACHE: Mutex<Option<Cached>> = Mutex::new(None);
/// One build at a time: the first download builds, the others wait for it.
static BUILDING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn cache() -> std::sync::MutexGuard<'static, Option<Cached>> {
    CACHE.lock().unwrap_or_else(|p| p.into_inner())
}

async fn facts(app: &Path) -> Result<(AppInfo, &'static str), DebError> {
    let mut header = [0u8; 20];
    let arch = std::fs::File::open(app)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut header))
        .ok()
        .and_then(|()| deb_arch(&header))
        .ok_or_else(|| DebError::NotPackageable(app.display().to_string()))?;
    Ok((ask(app).await?, arch))
}

/// The app's facts and architecture, if a package can be made of it. Asked
/// once per binary; why not is logged once too.
pub(crate) async fn offer(app: &Path) -> Result<(AppInfo, &'static str), DebError> {
    let now = stamp(app)?;
    if let Some(c) = cache().as_ref()
        && c.stamp == now
    {
        return c.facts.clone();
    }
    let got = facts(app).await;
    if let Err(e) = &got {
        tracing::warn!(error = %e, "no .deb of the app can be offered");
    }
    *cache() = Some(Cached {
        stamp: now,
        facts: got.clone(),
        built: None,
    });
    got
}

/// The package of `app` with this bank's configuration (`config` files go
/// to the app's configuration folder), built once per binary and
/// configuration.
pub(crate) async fn package(
    app: &Path,
    config: Vec<(&'static str, Vec<u8>)>,
    origin: Origin,
    mtime: u64,
) -> Result<Arc<Package>, DebError> {
    let key: String = config
        .iter()
        .map(|(n, d)| format!("{n}\0{}\0", String::from_utf8_lossy(d)))
        .chain([origin.maintainer.clone(), origin.homepage.clone()])
        .collect();
    let _one = BUILDING.lock().await;
    let (info, arch) = offer(app).await?;
    let now = stamp(app)?;
    if let Some(c) = cache().as_ref()
        && c.stamp == now
        && let Some((k, p)) = &c.built
        && *k == key
    {
        return Ok(p.clone());
    }
    let name = app.display().to_string();
    let binary = tokio::fs::read(app)
        .await
        .map_err(|e| DebError::Io(name.clone(), e.to_string()))?;
    let built =
        tokio::task::spawn_blocking(move || build(&info, arch, &binary, &config, &origin, mtime))
            .await
            .map_err(|e| DebError::Io(name.clone(), e.to_string()))?
            .map_err(|e| DebError::Io(name, e.to_string()))?;
    let built = Arc::new(built);
    if let Some(c) = cache().as_mut()
        && c.stamp == now
    {
        c.built = Some((key, built.clone()));
    }
    Ok(built)
}

fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut z = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 2),
        flate2::Compression::default(),
    );
    z.write_all(data)?;
    z.finish()
}

/// Adds the directories of `path` not yet in the archive (dpkg wants
/// every directory it creates listed before what is in it).
fn dirs(tar: &mut Vec<u8>, seen: &mut Vec<String>, path: &str, mtime: u64) {
    let mut at = String::from(".");
    let parent = path.rsplit_once('/').map_or("", |(d, _)| d);
    for part in parent.split('/').filter(|p| !p.is_empty()) {
        at.push('/');
        at.push_str(part);
        if !seen.contains(&at) {
            tar_entry(tar, &format!("{at}/"), 0o755, mtime, Entry::Dir);
            seen.push(at.clone());
        }
    }
}

/// The whole .deb: debian-binary, control.tar.gz, data.tar.gz.
pub(crate) fn build(
    info: &AppInfo,
    arch: &str,
    binary: &[u8],
    config: &[(&str, Vec<u8>)],
    origin: &Origin,
    mtime: u64,
) -> std::io::Result<Package> {
    let doc = format!("/usr/share/doc/{}/copyright", info.package);
    const COPYRIGHT: &str = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: Shomei\n\nFiles: *\nLicense: Apache-2.0\n On Debian systems, the full text of the Apache License 2.0 is in\n /usr/share/common-licenses/Apache-2.0.\n";
    let desktop = format!("/usr/share/applications/{}", info.desktop_file);
    let mut files: Vec<(String, u32, &[u8])> = vec![(info.exe.clone(), 0o755, binary)];
    let conffiles: Vec<String> = config
        .iter()
        .map(|(name, _)| format!("{}/{name}", info.config_dir))
        .collect();
    for ((_, data), path) in config.iter().zip(&conffiles) {
        files.push((path.clone(), 0o644, data));
    }
    files.push((desktop, 0o644, info.desktop_entry.as_bytes()));
    files.push((doc, 0o644, COPYRIGHT.as_bytes()));
    files.sort_by(|a, b| a.0.cmp(&b.0));

    let mut data = Vec::with_capacity(binary.len() + 16384);
    let mut seen = Vec::new();
    tar_entry(&mut data, "./", 0o755, mtime, Entry::Dir);
    for (path, mode, bytes) in &files {
        dirs(&mut data, &mut seen, path, mtime);
        tar_file(&mut data, &format!(".{path}"), *mode, mtime, bytes);
    }
    tar_end(&mut data);

    let installed_kib = files
        .iter()
        .map(|f| f.2.len().div_ceil(1024))
        .sum::<usize>();
    let mut description = info.description.trim().lines();
    let summary = Origin::line(description.next().unwrap_or_default());
    let long: String = description
        .map(Origin::line)
        .map(|l| {
            if l.is_empty() {
                " .\n".to_owned()
            } else {
                format!(" {l}\n")
            }
        })
        .collect();
    let control = format!(
        "Package: {}\nVersion: {}\nArchitecture: {arch}\nMaintainer: {}\nInstalled-Size: {installed_kib}\nDepends: {}\nRecommends: {}\nSection: misc\nPriority: optional\nHomepage: {}\nDescription: {summary}\n{long}",
        info.package,
        info.version,
        Origin::line(&origin.maintainer),
        info.depends,
        info.recommends,
        Origin::line(&origin.homepage),
    );
    // Menus and the shomei-cert: handler are read from mimeinfo.cache:
    // refresh it where the tool is (Debian's desktop-file-utils trigger
    // does too).
    let refresh = |when: &str| {
        format!(
            "#!/bin/sh\nset -e\n{when}\nif command -v update-desktop-database >/dev/null 2>&1; then\n    update-desktop-database -q /usr/share/applications || true\nfi\nexit 0\n"
        )
    };
    let postinst = refresh("[ \"$1\" = configure ] || exit 0");
    let postrm = refresh("case \"$1\" in remove|purge) ;; *) exit 0 ;; esac");
    let conffiles: String = conffiles.iter().map(|c| format!("{c}\n")).collect();
    let mut ctl = Vec::new();
    tar_entry(&mut ctl, "./", 0o755, mtime, Entry::Dir);
    tar_file(&mut ctl, "./control", 0o644, mtime, control.as_bytes());
    if !conffiles.is_empty() {
        tar_file(&mut ctl, "./conffiles", 0o644, mtime, conffiles.as_bytes());
    }
    tar_file(&mut ctl, "./postinst", 0o755, mtime, postinst.as_bytes());
    tar_file(&mut ctl, "./postrm", 0o755, mtime, postrm.as_bytes());
    tar_end(&mut ctl);

    let bytes = ar(
        mtime,
        &[
            ("debian-binary", b"2.0\n"),
            ("control.tar.gz", &gzip(&ctl)?),
            ("data.tar.gz", &gzip(&data)?),
        ],
    );
    Ok(Package {
        file_name: format!("{}_{}_{arch}.deb", info.package, info.version),
        bytes: bytes.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> AppInfo {
        AppInfo {
            package: "shomei-cert".into(),
            version: "0.1.0".into(),
            exe: "/usr/bin/shomei-cert".into(),
            config_dir: "/etc/shomei-cert".into(),
            desktop_file: "shomei-cert.desktop".into(),
            desktop_entry: "[Desktop Entry]\nType=Application\nName=証明書発行アプリ\nExec=\"/usr/bin/shomei-cert\" open %u\nMimeType=x-scheme-handler/shomei-cert;\n".into(),
            depends: "libc6 (>= 2.35), libnss3-tools".into(),
            recommends: "fonts-noto-cjk".into(),
            description: "証明書発行アプリ (test)\nFirst line.\n\nAfter a gap.".into(),
        }
    }

    fn dpkg_deb(args: &[&std::ffi::OsStr]) -> String {
        let out = std::process::Command::new("dpkg-deb")
            .args(args)
            .output()
            .expect("dpkg-deb");
        assert!(
            out.status.success(),
            "dpkg-deb {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn dpkg_reads_the_package_with_its_files_control_and_conffiles() {
        let dir = tempfile::tempdir().unwrap();
        let binary = b"\x7fELF not really, but bytes".repeat(100);
        let config = vec![
            (
                "shomei-cert.toml",
                b"server = \"https://bank.test\"\n".to_vec(),
            ),
            ("root-ca.crt", b"-----BEGIN CERTIFICATE-----\n".to_vec()),
        ];
        let p = build(
            &info(),
            "amd64",
            &binary,
            &config,
            &Origin {
                maintainer: "テスト銀行 <help@bank.test>\nEssential: yes".into(),
                homepage: "https://bank.test".into(),
            },
            1_700_000_000,
        )
        .unwrap();
        assert_eq!(p.file_name, "shomei-cert_0.1.0_amd64.deb");
        let deb = dir.path().join(&p.file_name);
        std::fs::write(&deb, &p.bytes).unwrap();

        let d = deb.as_os_str();
        let control = dpkg_deb(&["--field".as_ref(), d]);
        for f in [
            "Package: shomei-cert\n",
            "Version: 0.1.0\n",
            "Architecture: amd64\n",
            "Depends: libc6 (>= 2.35), libnss3-tools\n",
            "Homepage: https://bank.test\n",
            "Maintainer: テスト銀行 <help@bank.test> Essential: yes\n",
            "Description: 証明書発行アプリ (test)\n First line.\n .\n After a gap.\n",
        ] {
            assert!(control.contains(f), "{f:?} in {control}");
        }
        assert!(!control.contains("\nEssential:"), "{control}");
        let contents = dpkg_deb(&["--contents".as_ref(), d]);
        let line = |path: &str| {
            contents
                .lines()
                .find(|l| l.ends_with(&format!(" {path}")))
                .unwrap_or_else(|| panic!("{path} in {contents}"))
                .to_owned()
        };
        assert!(line("./usr/bin/shomei-cert").starts_with("-rwxr-xr-x root/root      2600 "));
        for f in [
            "./etc/shomei-cert/shomei-cert.toml",
            "./etc/shomei-cert/root-ca.crt",
            "./usr/share/applications/shomei-cert.desktop",
            "./usr/share/doc/shomei-cert/copyright",
        ] {
            assert!(line(f).starts_with("-rw-r--r-- root/root "), "{f}");
        }
        assert!(line("./usr/share/applications/").starts_with("drwxr-xr-x root/root "));
        let conffiles = dpkg_deb(&["--info".as_ref(), d, "conffiles".as_ref()]);
        assert_eq!(
            conffiles,
            "/etc/shomei-cert/shomei-cert.toml\n/etc/shomei-cert/root-ca.crt\n"
        );

        let root = dir.path().join("root");
        dpkg_deb(&["-x".as_ref(), d, root.as_os_str()]);
        assert_eq!(
            std::fs::read(root.join("usr/bin/shomei-cert")).unwrap(),
            binary
        );
        assert_eq!(
            std::fs::read(root.join("etc/shomei-cert/shomei-cert.toml")).unwrap(),
            config[0].1
        );
        assert_eq!(
            std::fs::read_to_string(root.join("usr/share/applications/shomei-cert.desktop"))
                .unwrap(),
            info().desktop_entry
        );
        let ctl = dir.path().join("ctl");
        dpkg_deb(&["-e".as_ref(), d, ctl.as_os_str()]);
        for script in ["postinst", "postrm"] {
            let text = std::fs::read_to_string(ctl.join(script)).unwrap();
            assert!(text.contains("update-desktop-database"), "{text}");
            let sh = std::process::Command::new("sh")
                .arg("-n")
                .arg(ctl.join(script))
                .status()
                .unwrap();
            assert!(sh.success(), "{script}");
        }
    }

    #[test]
    fn only_amd64_and_arm64_elf_binaries_are_packaged() {
        let mut elf = [0u8; 20];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[18] = 0x3e;
        assert_eq!(deb_arch(&elf), Some("amd64"));
        elf[18] = 0xb7;
        assert_eq!(deb_arch(&elf), Some("arm64"));
        elf[18] = 0x28;
        assert_eq!(deb_arch(&elf), None, "32-bit ARM");
        elf[18] = 0x3e;
        elf[4] = 1;
        assert_eq!(deb_arch(&elf), None, "32-bit");
        assert_eq!(deb_arch(b"#!/bin/sh\necho hello\n"), None);
        assert_eq!(deb_arch(b"MZ"), None);
    }

    #[test]
    fn facts_that_could_break_the_package_are_refused() {
        assert!(info().check().is_ok());
        let bad: [fn(&mut AppInfo); 6] = [
            |i| i.version = "1.0\nEvil: yes".into(),
            |i| i.version = "latest".into(),
            |i| i.exe = "/usr/../etc/passwd".into(),
            |i| i.config_dir = "etc/shomei-cert".into(),
            |i| i.desktop_file = "x/../../y.desktop".into(),
            |i| i.depends = "libc6\nPre-Depends: evil".into(),
        ];
        for (n, spoil) in bad.iter().enumerate() {
            let mut i = info();
            spoil(&mut i);
            assert!(i.check().is_err(), "case {n}");
        }
    }
}
