//! What renewal needs, kept on this PC only: each certificate this app put
//! in the stores, with its key, in an owner-only file (0600, in a 0700
//! folder) named by its serial. The browsers' stores hold the same key, but
//! NSS hands keys out only as BER PKCS#12, which our reader does not take.

use std::path::PathBuf;

use crate::enroll::pem;
use crate::fail::Fail;
use crate::text;

/// A key (PKCS#8) and its certificate.
pub struct Identity {
    pub key_pkcs8: Vec<u8>,
    pub cert: Vec<u8>,
}

pub struct Keep {
    dir: PathBuf,
}

impl Keep {
    pub fn new(dir: PathBuf) -> Self {
        Keep { dir }
    }

    /// This user's: `~/.local/share/shomei-cert-renewal`.
    pub fn of_user() -> Self {
        let data = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .unwrap_or_else(|| crate::store::home().join(".local/share"));
        Keep::new(data.join("shomei-cert-renewal"))
    }

    fn file(&self, serial_hex: &str) -> Option<PathBuf> {
        (!serial_hex.is_empty() && serial_hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| self.dir.join(format!("{serial_hex}.pem")))
    }

    pub fn put(&self, serial_hex: &str, key_pkcs8: &[u8], cert: &[u8]) -> Result<(), Fail> {
        let file = self
            .file(serial_hex)
            .ok_or(Fail::Local(text::local_problem("bad serial")))?;
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(&self.dir).map_err(|e| {
            Fail::Local(text::store_not_writable(
                &self.dir.display().to_string(),
                &e.to_string(),
            ))
        })?;
        let body = pem("PRIVATE KEY", key_pkcs8) + &pem("CERTIFICATE", cert);
        crate::fail::write_atomic(&file, body.as_bytes())
    }

    pub fn get(&self, serial_hex: &str) -> Option<Identity> {
        let bytes = std::fs::read(self.file(serial_hex)?).ok()?;
        let mut key = None;
        let mut cert = None;
        for p in x509_parser::pem::Pem::iter_from_buffer(&bytes).flatten() {
            match p.label.as_str() {
                "PRIVATE KEY" => key = Some(p.contents),
                "CERTIFICATE" => cert = Some(p.contents),
                _ => {}
            }
        }
        Some(Identity {
            key_pkcs8: key?,
            cert: cert?,
        })
    }

    pub fn forget(&self, serial_hex: &str) {
        if let Some(f) = self.file(serial_hex) {
            let _ = std::fs::remove_file(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_keys_are_owner_only_and_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let keep = Keep::new(dir.path().join("k"));
        keep.put("0a1b", b"key", b"cert").unwrap();
        let id = keep.get("0a1b").unwrap();
        assert_eq!(
            (id.key_pkcs8.as_slice(), id.cert.as_slice()),
            (&b"key"[..], &b"cert"[..])
        );
        #[cfg(unix)]
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(dir.path().join("k/0a1b.pem")), 0o600);
        assert_eq!(mode(dir.path().join("k")), 0o700);
        assert!(
            keep.get("../etc/passwd").is_none(),
            "only serials name files"
        );
        keep.forget("0a1b");
        assert!(keep.get("0a1b").is_none());
    }
}
