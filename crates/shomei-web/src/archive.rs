//! The two archive formats the downloads of 証明書取得認証 are made of,
//! written in memory: POSIX ustar (the app's download, and the members of
//! a .deb) and the `ar` container a .deb is.

/// What a tar entry is.
#[derive(Clone, Copy)]
pub(crate) enum Entry<'a> {
    File(&'a [u8]),
    Dir,
}

/// One entry in POSIX ustar format, owned by root. Names are short and
/// ours (at most 100 bytes), never from a request.
pub(crate) fn tar_entry(out: &mut Vec<u8>, name: &str, mode: u32, mtime: u64, entry: Entry) {
    debug_assert!(name.len() <= 100, "{name}");
    let (data, kind): (&[u8], u8) = match entry {
        Entry::File(d) => (d, b'0'),
        Entry::Dir => (&[], b'5'),
    };
    let mut h = [0u8; 512];
    let put = |h: &mut [u8; 512], at: usize, len: usize, v: &[u8]| {
        let n = v.len().min(len);
        h[at..at + n].copy_from_slice(&v[..n]);
    };
    let octal = |v: u64, width: usize| format!("{v:0w$o}\0", w = width - 1).into_bytes();
    put(&mut h, 0, 100, name.as_bytes());
    put(&mut h, 100, 8, &octal(mode as u64, 8));
    put(&mut h, 108, 8, &octal(0, 8));
    put(&mut h, 116, 8, &octal(0, 8));
    put(&mut h, 124, 12, &octal(data.len() as u64, 12));
    put(&mut h, 136, 12, &octal(mtime, 12));
    put(&mut h, 148, 8, b"        ");
    h[156] = kind;
    put(&mut h, 257, 6, b"ustar\0");
    put(&mut h, 263, 2, b"00");
    put(&mut h, 265, 32, b"root");
    put(&mut h, 297, 32, b"root");
    let sum: u32 = h.iter().map(|b| *b as u32).sum();
    put(&mut h, 148, 8, format!("{sum:06o}\0 ").as_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    let pad = (512 - data.len() % 512) % 512;
    out.extend(std::iter::repeat_n(0u8, pad));
}

/// One regular file in POSIX ustar format.
pub(crate) fn tar_file(out: &mut Vec<u8>, name: &str, mode: u32, mtime: u64, data: &[u8]) {
    tar_entry(out, name, mode, mtime, Entry::File(data));
}

/// The end of a tar archive: two empty blocks.
pub(crate) fn tar_end(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0u8; 1024]);
}

/// An `ar` archive (the common format, as `ar` and dpkg-deb write it) of
/// `(name, data)` members; names are at most 16 bytes.
pub(crate) fn ar(mtime: u64, members: &[(&str, &[u8])]) -> Vec<u8> {
    let size: usize = members.iter().map(|(_, d)| 60 + d.len() + 1).sum();
    let mut out = Vec::with_capacity(8 + size);
    out.extend_from_slice(b"!<arch>\n");
    for (name, data) in members {
        debug_assert!(name.len() <= 16, "{name}");
        let header = format!(
            "{name:<16}{mtime:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            0,
            0,
            "100644",
            data.len()
        );
        debug_assert_eq!(header.len(), 60);
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(dir: &std::path::Path, cmd: &str, args: &[&str]) -> String {
        let out = std::process::Command::new(cmd)
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{cmd} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn the_archive_is_read_by_tar() {
        let dir = tempfile::tempdir().unwrap();
        let mut tar = Vec::new();
        tar_entry(&mut tar, "a/", 0o755, 1_700_000_000, Entry::Dir);
        tar_file(&mut tar, "a/hello.txt", 0o644, 1_700_000_000, b"hello");
        tar_file(&mut tar, "a/run", 0o755, 1_700_000_000, &[7u8; 1000]);
        tar_end(&mut tar);
        std::fs::write(dir.path().join("t.tar"), &tar).unwrap();
        let listing = tool(dir.path(), "tar", &["-tvf", "t.tar"]);
        assert!(listing.contains("root/root"), "{listing}");
        tool(dir.path(), "tar", &["-xf", "t.tar"]);
        assert_eq!(
            std::fs::read(dir.path().join("a/hello.txt")).unwrap(),
            b"hello"
        );
        assert_eq!(std::fs::read(dir.path().join("a/run")).unwrap().len(), 1000);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(dir.path().join("a/run"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o755
        );
    }

    #[test]
    fn the_ar_archive_is_read_by_ar() {
        let dir = tempfile::tempdir().unwrap();
        let a = ar(1_700_000_000, &[("odd", b"abc"), ("even.bin", b"abcd")]);
        std::fs::write(dir.path().join("t.a"), &a).unwrap();
        assert_eq!(tool(dir.path(), "ar", &["t", "t.a"]), "odd\neven.bin\n");
        assert_eq!(tool(dir.path(), "ar", &["p", "t.a", "odd"]), "abc");
        assert_eq!(tool(dir.path(), "ar", &["p", "t.a", "even.bin"]), "abcd");
    }
}
