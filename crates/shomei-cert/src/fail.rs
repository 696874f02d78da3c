//! How the app fails and how it writes a file: every module returns a
//! [`Fail`] (its variant decides the exit code), and every file the app
//! writes is written whole or not at all ([`write_atomic`]).

use std::io::Write;
use std::path::Path;

use crate::text;

/// A failure, told in one line; the variant decides the exit code.
#[derive(Debug)]
pub enum Fail {
    Usage(String),
    Refused(String),
    Network(String),
    Local(String),
}

impl Fail {
    /// The process exit code (see the help's list).
    pub fn code(&self) -> u8 {
        match self {
            Fail::Usage(_) => 2,
            Fail::Refused(_) => 3,
            Fail::Network(_) => 4,
            Fail::Local(_) => 5,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Fail::Usage(m) | Fail::Refused(m) | Fail::Network(m) | Fail::Local(m) => m,
        }
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder:
/// either the whole new file is there, or the old state is untouched.
/// Owner-only (0600).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Fail> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let res = (|| {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    res.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Fail::Local(text::local_problem(&format!("{}: {e}", path.display())))
    })
}
