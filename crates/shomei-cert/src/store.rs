//! Where the browsers find the user's key and certificate, behind one small
//! trait. Linux: the user's NSS database `~/.pki/nssdb` (Chromium's; made if
//! missing) and each Firefox profile's, through NSS's own tools, so nothing
//! asks for a password to invent. NSS gives keys back only as BER PKCS#12,
//! so what renewal needs is kept apart (`keep.rs`). Windows: the user's
//! `CurrentUser\My`, whose key cannot be exported and signs for renewal
//! itself (`winstore.rs`). macOS (the login keychain) would be a further
//! implementation (see the README).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::fail::Fail;
use crate::text;

/// A user certificate found in a store (one with its key).
pub struct Stored {
    pub nickname: String,
    pub der: Vec<u8>,
}

/// One certificate store of the PC.
pub trait CertStore: Send + Sync {
    /// Where it is, for the screen.
    fn place(&self) -> String;
    /// Makes it if missing and checks that it can be written, before the
    /// bank is asked for anything.
    fn prepare(&self) -> Result<(), Fail>;
    /// The user certificates in it (those that have their key here).
    fn list(&self) -> Result<Vec<Stored>, Fail>;
    /// Adds key, certificate and chain under `nickname`; trusts the bank's root.
    fn add(
        &self,
        key_pkcs8: &[u8],
        cert: &[u8],
        chain: &[Vec<u8>],
        nickname: &str,
        root_pem: &[u8],
    ) -> Result<(), Fail>;
    /// Removes the key and certificate under `nickname`.
    fn remove(&self, nickname: &str) -> Result<(), Fail>;
    /// The store's own key of `cert`, when the store signs with it (its key
    /// never leaves it, so renewal needs nothing kept beside it); `None` for
    /// a store whose keys renewal reads from `keep.rs`.
    fn signer(&self, _cert: &[u8]) -> Option<Result<Signer, Fail>> {
        None
    }
    /// Whether `signer` answers (the store keeps keys that sign in it).
    fn signs(&self) -> bool {
        false
    }
}

/// The key the window makes: RSA 2048 where CryptoAPI keeps it (every
/// Windows and wine import and sign with it), else P-256.
#[cfg(windows)]
pub const KEY_TYPE: crate::enroll::KeyType = crate::enroll::KeyType::Rsa2048;
#[cfg(not(windows))]
pub const KEY_TYPE: crate::enroll::KeyType = crate::enroll::KeyType::P256;

/// A key that signs where it is kept.
pub type Signer = std::sync::Arc<dyn rustls::sign::SigningKey>;

/// The stores of this user on this PC: on Windows, `CurrentUser\My`.
#[cfg(windows)]
pub fn stores(bank: &str) -> Vec<Box<dyn CertStore>> {
    vec![Box::new(crate::winstore::WinStore {
        bank: bank.to_owned(),
    })]
}

/// The stores of this user on this PC: Chromium's NSS database and each
/// Firefox profile's.
#[cfg(not(windows))]
pub fn stores(_bank: &str) -> Vec<Box<dyn CertStore>> {
    stores_under(&home())
}

/// Those of `home`: Chromium's NSS database and each Firefox profile's.
#[cfg(not(windows))]
pub fn stores_under(home: &Path) -> Vec<Box<dyn CertStore>> {
    let mut out: Vec<Box<dyn CertStore>> = vec![Box::new(Nss::new(
        home.join(".pki").join("nssdb"),
        "Chromium / Google Chrome",
    ))];
    if let Ok(dirs) = std::fs::read_dir(home.join(".mozilla").join("firefox")) {
        let mut profiles: Vec<PathBuf> = dirs
            .filter_map(|d| d.ok().map(|d| d.path()))
            .filter(|d| d.join("cert9.db").is_file())
            .collect();
        profiles.sort();
        for p in profiles {
            out.push(Box::new(Nss::new(p, "Firefox")));
        }
    }
    out
}

pub fn home() -> PathBuf {
    #[cfg(windows)]
    if let Some(p) = std::env::var_os("USERPROFILE") {
        return PathBuf::from(p);
    }
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// The chain beside a PKCS#12 file: `NAME.p12.chain.pem`.
pub fn chain_path(p12: &Path) -> PathBuf {
    let mut s = p12.as_os_str().to_owned();
    s.push(".chain.pem");
    PathBuf::from(s)
}

/// A password-protected PKCS#12 file (and its chain, PEM, beside it) that
/// the command line writes: one more store of the same issuance and
/// renewal, so a certificate issued into it is named and kept as the
/// window's are. Its certificate is not listed: the file is replaced whole
/// by the new one (`write_atomic`), never cleared before it.
#[derive(Clone)]
pub struct P12File {
    path: PathBuf,
    password: String,
    /// The older form (PBE-SHA1-3DES, SHA-1 MAC) for old Windows.
    legacy: bool,
}

impl P12File {
    pub fn new(path: PathBuf, password: String, legacy: bool) -> Self {
        Self {
            path,
            password,
            legacy,
        }
    }

    /// The chain beside the file.
    pub fn chain_path(&self) -> PathBuf {
        chain_path(&self.path)
    }

    fn folder(&self) -> &Path {
        self.path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
    }
}

impl CertStore for P12File {
    fn place(&self) -> String {
        self.path.display().to_string()
    }

    /// The folder must take a file before the bank is asked.
    fn prepare(&self) -> Result<(), Fail> {
        let probe = self
            .folder()
            .join(format!(".shomei-cert-probe-{}", std::process::id()));
        std::fs::write(&probe, b"probe")
            .map_err(|e| Fail::Local(text::store_not_writable(&self.place(), &e.to_string())))?;
        let _ = std::fs::remove_file(&probe);
        Ok(())
    }

    fn list(&self) -> Result<Vec<Stored>, Fail> {
        Ok(Vec::new())
    }

    fn add(
        &self,
        key_pkcs8: &[u8],
        cert: &[u8],
        chain: &[Vec<u8>],
        nickname: &str,
        _root_pem: &[u8],
    ) -> Result<(), Fail> {
        let write = if self.legacy {
            shomei_pki::pkcs12::write_legacy
        } else {
            shomei_pki::pkcs12::write
        };
        let p12 = write(key_pkcs8, cert, chain, nickname, &self.password)
            .map_err(|e| Fail::Local(text::local_problem(&e.to_string())))?;
        let chain_pem: String = std::iter::once(cert)
            .chain(chain.iter().map(Vec::as_slice))
            .map(|c| crate::enroll::pem("CERTIFICATE", c))
            .collect();
        crate::fail::write_atomic(&self.chain_path(), chain_pem.as_bytes())?;
        crate::fail::write_atomic(&self.path, &p12)
    }

    fn remove(&self, _nickname: &str) -> Result<(), Fail> {
        for f in [self.path.clone(), self.chain_path()] {
            match std::fs::remove_file(&f) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Fail::Local(text::store_not_writable(
                        &self.place(),
                        &e.to_string(),
                    )));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// An NSS database (`cert9.db`, `key4.db`) with an empty password.
// Windows keeps certificates in its own store (winstore.rs): no NSS there.
#[cfg_attr(windows, allow(dead_code))]
pub struct Nss {
    dir: PathBuf,
    browser: &'static str,
    /// Where the scratch folders are made: the system's temporary folder
    /// (a test's own folder in tests).
    scratch_root: PathBuf,
}

/// A private scratch folder (mode 0700) that is removed when dropped: the
/// PKCS#12 hand-over files live only there and only for a moment.
#[cfg_attr(windows, allow(dead_code))]
struct Scratch(PathBuf);

#[cfg_attr(windows, allow(dead_code))]
impl Scratch {
    fn new(root: &Path) -> Result<Self, Fail> {
        let dir = root.join(format!("shomei-cert-{}", random_hex(8)?));
        #[cfg_attr(not(unix), allow(unused_mut))]
        let mut b = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(&dir)
            .map_err(|e| Fail::Local(text::local_problem(&format!("{}: {e}", dir.display()))))?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Random hex from the OS, for scratch names, key containers and one-time
/// passwords.
pub fn random_hex(n: usize) -> Result<String, Fail> {
    use aws_lc_rs::rand::SecureRandom;
    let mut b = vec![0u8; n];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| Fail::Local(text::local_problem("no random numbers from the system")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

#[cfg_attr(windows, allow(dead_code))]
fn tool(name: &str, args: &[&str]) -> Result<String, Fail> {
    let out = Command::new(name).args(args).output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Fail::Local(text::tool_missing(name))
        } else {
            Fail::Local(text::local_problem(&format!("{name}: {e}")))
        }
    })?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr)
            .lines()
            .chain(String::from_utf8_lossy(&out.stdout).lines())
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .to_owned();
        return Err(Fail::Local(format!("{name}: {msg}")));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The rows of `certutil -L`: nickname and trust flags, after the header.
#[cfg_attr(windows, allow(dead_code))]
pub fn parse_listing(out: &str) -> Vec<(String, String)> {
    out.lines()
        .skip_while(|l| !l.contains("SSL,S/MIME"))
        .skip(1)
        .filter_map(|l| {
            let l = l.trim_end();
            let (nick, trust) = l.rsplit_once(char::is_whitespace)?;
            let nick = nick.trim_end();
            (!nick.is_empty()).then(|| (nick.to_owned(), trust.to_owned()))
        })
        .collect()
}

#[cfg_attr(windows, allow(dead_code))]
impl Nss {
    pub fn new(dir: PathBuf, browser: &'static str) -> Self {
        Self {
            dir,
            browser,
            scratch_root: std::env::temp_dir(),
        }
    }

    fn db(&self) -> String {
        format!("sql:{}", self.dir.display())
    }

    fn unwritable(&self, reason: &str) -> Fail {
        Fail::Local(text::store_not_writable(&self.place(), reason))
    }

    fn path_str(p: &Path) -> Result<&str, Fail> {
        p.to_str().ok_or(Fail::Local(text::local_problem(
            "the folder name is not UTF-8",
        )))
    }
}

impl CertStore for Nss {
    fn place(&self) -> String {
        format!("{}（{}）", self.dir.display(), self.browser)
    }

    fn prepare(&self) -> Result<(), Fail> {
        if !self.dir.join("cert9.db").exists() {
            let mut b = std::fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            b.create(&self.dir)
                .map_err(|e| self.unwritable(&e.to_string()))?;
            tool("certutil", &["-N", "-d", &self.db(), "--empty-password"])
                .map_err(|e| self.unwritable(e.message()))?;
        }
        // NSS opens a read-only database without complaint; write a probe.
        let probe = self
            .dir
            .join(format!(".shomei-cert-probe-{}", std::process::id()));
        std::fs::write(&probe, b"probe").map_err(|e| self.unwritable(&e.to_string()))?;
        let _ = std::fs::remove_file(&probe);
        for f in ["cert9.db", "key4.db"] {
            let p = self.dir.join(f);
            if p.exists() {
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(&p)
                    .map_err(|e| self.unwritable(&format!("{f}: {e}")))?;
            }
        }
        Ok(())
    }

    fn list(&self) -> Result<Vec<Stored>, Fail> {
        if !self.dir.join("cert9.db").exists() {
            return Ok(Vec::new());
        }
        let listing = tool("certutil", &["-L", "-d", &self.db()])?;
        let mut out = Vec::new();
        for (nickname, trust) in parse_listing(&listing) {
            if !trust.contains('u') {
                continue;
            }
            let pem = tool("certutil", &["-L", "-d", &self.db(), "-n", &nickname, "-a"])?;
            for p in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()).flatten() {
                out.push(Stored {
                    nickname: nickname.clone(),
                    der: p.contents,
                });
            }
        }
        Ok(out)
    }

    fn add(
        &self,
        key_pkcs8: &[u8],
        cert: &[u8],
        chain: &[Vec<u8>],
        nickname: &str,
        root_pem: &[u8],
    ) -> Result<(), Fail> {
        let scratch = Scratch::new(&self.scratch_root)?;
        let password = random_hex(16)?;
        // Few iterations: the file lives a moment in a private folder.
        let p12 = shomei_pki::pkcs12::write_with(key_pkcs8, cert, chain, nickname, &password, 2048)
            .map_err(|e| Fail::Local(text::local_problem(&e.to_string())))?;
        let file = scratch.0.join("id.p12");
        crate::fail::write_atomic(&file, &p12)?;
        let root = scratch.0.join("root.pem");
        crate::fail::write_atomic(&root, root_pem)?;
        let db = self.db();
        tool(
            "pk12util",
            &["-i", Nss::path_str(&file)?, "-d", &db, "-W", &password],
        )
        .map_err(|e| self.unwritable(e.message()))?;
        tool(
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
                Nss::path_str(&root)?,
            ],
        )
        .map_err(|e| {
            let _ = self.remove(nickname);
            self.unwritable(e.message())
        })?;
        Ok(())
    }

    fn remove(&self, nickname: &str) -> Result<(), Fail> {
        // -F removes a key and its certificate together; NSS files every
        // certificate of one subject under one nickname, so go on until
        // none is left (a bounded number of times).
        let db = self.db();
        tool("certutil", &["-F", "-d", &db, "-n", nickname])
            .map_err(|e| self.unwritable(e.message()))?;
        for _ in 0..16 {
            if tool("certutil", &["-L", "-d", &db, "-n", nickname]).is_err() {
                return Ok(());
            }
            if tool("certutil", &["-F", "-d", &db, "-n", nickname]).is_err() {
                tool("certutil", &["-D", "-d", &db, "-n", nickname])
                    .map_err(|e| self.unwritable(e.message()))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(cn: &str) -> (Vec<u8>, Vec<u8>) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = rcgen::CertificateParams::new(vec![]).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let cert = p.self_signed(&key).unwrap();
        (key.serialize_der(), cert.der().to_vec())
    }

    #[test]
    fn the_nss_store_is_made_filled_read_back_and_emptied_with_nss_tools() {
        let dir = tempfile::tempdir().unwrap();
        let mut nss = Nss::new(dir.path().join(".pki/nssdb"), "Chromium");
        nss.scratch_root = dir.path().join("scratch");
        std::fs::create_dir(&nss.scratch_root).unwrap();
        assert!(
            nss.list().unwrap().is_empty(),
            "no database yet: nothing found"
        );
        nss.prepare().unwrap();
        assert!(dir.path().join(".pki/nssdb/cert9.db").is_file());
        let (key, cert) = self_signed("jirodt");
        let (_, root) = self_signed("Shomei root");
        let root_pem = crate::enroll::pem("CERTIFICATE", &root);
        nss.add(&key, &cert, &[], "Shomei jirodt 01", root_pem.as_bytes())
            .unwrap();
        let found = nss.list().unwrap();
        assert_eq!(
            found.len(),
            1,
            "the root is trusted but is no user certificate"
        );
        assert_eq!(found[0].nickname, "Shomei jirodt 01");
        assert_eq!(found[0].der, cert);
        let keys = || {
            let out = Command::new("certutil")
                .args(["-K", "-d", &nss.db()])
                .output()
                .unwrap();
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            (out.status.success(), text(&out.stdout) + &text(&out.stderr))
        };
        let (listed, with_key) = keys();
        assert!(
            listed && with_key.contains("Shomei jirodt 01"),
            "{with_key}"
        );
        nss.remove("Shomei jirodt 01").unwrap();
        assert!(nss.list().unwrap().is_empty());
        let (listed, without) = keys();
        assert!(
            !listed && without.contains("certutil: no keys found"),
            "the key went too: {without}"
        );
        let left: Vec<_> = std::fs::read_dir(&nss.scratch_root)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(
            left.is_empty(),
            "no hand-over file is left behind: {left:?}"
        );
    }

    #[test]
    fn a_scratch_folder_is_private_and_goes_when_dropped() {
        let root = tempfile::tempdir().unwrap();
        let s = Scratch::new(root.path()).unwrap();
        assert!(s.0.starts_with(root.path()) && s.0.is_dir());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&s.0).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        std::fs::write(s.0.join("id.p12"), b"x").unwrap();
        let path = s.0.clone();
        drop(s);
        assert!(!path.exists());
    }

    #[test]
    fn a_store_that_cannot_be_written_is_told_before_anything_is_asked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), b"x").unwrap();
        let nss = Nss::new(dir.path().join("file/nssdb"), "Chromium");
        let e = nss.prepare().unwrap_err();
        assert!(
            e.message().starts_with("電子証明書の保存先（"),
            "{}",
            e.message()
        );
        assert!(e.message().contains("証明書はまだ発行されていません"));
    }

    #[test]
    fn the_listing_of_certutil_is_read_by_its_columns() {
        let out = "\nCertificate Nickname                                         Trust Attributes\n                                                             SSL,S/MIME,JAR/XPI\n\nShomei jirodt 0a1b                                           u,u,u\nShomei bank root                                             C,,  \n";
        assert_eq!(
            parse_listing(out),
            [
                ("Shomei jirodt 0a1b".to_owned(), "u,u,u".to_owned()),
                ("Shomei bank root".to_owned(), "C,,".to_owned())
            ]
        );
    }
}
