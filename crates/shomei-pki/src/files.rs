//! Reading and writing the CA's files. Private keys are created with mode 0600
//! and written whole (temp file + rename) so a crash never leaves half a key.
//! (On Windows, where the 証明書発行アプリ also links this crate, a new file
//! takes its folder's access list; the mode is a Unix notion.)

use std::io::Write;
use std::path::Path;

use rcgen::KeyPair;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::PkiError;

pub(crate) fn ensure_dir(dir: &Path) -> Result<(), PkiError> {
    std::fs::create_dir_all(dir).map_err(|source| PkiError::Io {
        path: dir.to_owned(),
        source,
    })
}

fn write_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    let io = |source| PkiError::Io {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), PkiError> {
    write_mode(path, bytes, 0o600)
}

pub(crate) fn write_public(path: &Path, bytes: &[u8]) -> Result<(), PkiError> {
    write_mode(path, bytes, 0o644)
}

pub(crate) fn read_cert(path: &Path) -> Result<CertificateDer<'static>, PkiError> {
    CertificateDer::from_pem_file(path).map_err(|e| PkiError::BadFile {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

pub(crate) fn read_key(path: &Path) -> Result<KeyPair, PkiError> {
    let pem = std::fs::read_to_string(path).map_err(|source| PkiError::Io {
        path: path.to_owned(),
        source,
    })?;
    KeyPair::from_pem(&pem).map_err(|e| PkiError::BadFile {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

pub(crate) fn pem(label: &str, der: &[u8]) -> String {
    pem::encode(&pem::Pem::new(label, der.to_vec()))
}
