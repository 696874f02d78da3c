//! The Windows setup is one file: the bank's configuration and root
//! certificate ride at the end of the `.exe`, after its last section and
//! before the Authenticode signature (which covers them: the file is made
//! and signed once per bank). Layout, ending where the signature begins:
//! `config.toml`, `root-ca.crt`, their lengths (u32 LE each) and `MAGIC`.
//! osslsigncode pads the file to 8 bytes before the signature; the reader
//! steps over that padding.

/// Ends the bundle; its last byte is not zero, so padding is told apart.
const MAGIC: &[u8; 16] = b"SHOMEI-BANK-CFG\x01";

/// Where the signature starts (the PE's security directory), else the end.
fn payload_end(exe: &[u8]) -> usize {
    let read = |at: usize, n: usize| exe.get(at..at + n);
    let Some(pe) = read(0x3c, 4).map(|b| u32::from_le_bytes(b.try_into().unwrap()) as usize) else {
        return exe.len();
    };
    if read(pe, 4) != Some(b"PE\0\0") {
        return exe.len();
    }
    let opt = pe + 24;
    // PE32+ (0x20b): data directories at 112; PE32 (0x10b): at 96.
    let dirs = match read(opt, 2) {
        Some([0x0b, 0x02]) => opt + 112,
        Some([0x0b, 0x01]) => opt + 96,
        _ => return exe.len(),
    };
    let security = dirs + 4 * 8;
    match read(security, 4).map(|b| u32::from_le_bytes(b.try_into().unwrap()) as usize) {
        Some(off) if off > 0 && off <= exe.len() => off,
        _ => exe.len(),
    }
}

fn signed(exe: &[u8]) -> bool {
    payload_end(exe) != exe.len()
}

/// The bank's configuration and root certificate in `exe`, if it has them.
pub fn read(exe: &[u8]) -> Option<(String, Vec<u8>)> {
    let mut end = payload_end(exe);
    for _ in 0..8 {
        if end > 0 && exe[end - 1] == 0 {
            end -= 1;
        }
    }
    let tail = exe.get(end.checked_sub(24)?..end)?;
    if &tail[8..] != MAGIC {
        return None;
    }
    let toml_len = u32::from_le_bytes(tail[..4].try_into().ok()?) as usize;
    let pem_len = u32::from_le_bytes(tail[4..8].try_into().ok()?) as usize;
    let start = (end - 24).checked_sub(toml_len + pem_len)?;
    let toml = String::from_utf8(exe[start..start + toml_len].to_vec()).ok()?;
    Some((toml, exe[start + toml_len..end - 24].to_vec()))
}

/// `exe` with the bank's configuration and root certificate at its end.
/// Refuses a signed file (the signature would no longer cover it) and one
/// that carries a bank already.
pub fn append(exe: &[u8], toml: &str, root_pem: &[u8]) -> Result<Vec<u8>, String> {
    if signed(exe) {
        return Err("the .exe is signed already: add the bank first, then sign".into());
    }
    if read(exe).is_some() {
        return Err("the .exe carries a bank's configuration already".into());
    }
    let mut out = exe.to_vec();
    out.extend_from_slice(toml.as_bytes());
    out.extend_from_slice(root_pem);
    out.extend_from_slice(&(toml.len() as u32).to_le_bytes());
    out.extend_from_slice(&(root_pem.len() as u32).to_le_bytes());
    out.extend_from_slice(MAGIC);
    Ok(out)
}

/// The bank this running copy carries.
pub fn of_current_exe() -> Option<(String, Vec<u8>)> {
    let exe = std::env::current_exe().ok()?;
    read(&std::fs::read(exe).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PE32+ header with its security directory at `sig` (0: unsigned).
    fn pe(len: usize, sig: u32) -> Vec<u8> {
        let mut b = vec![0u8; len];
        b[0..2].copy_from_slice(b"MZ");
        b[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        b[0x80..0x84].copy_from_slice(b"PE\0\0");
        b[0x98..0x9a].copy_from_slice(&[0x0b, 0x02]);
        let sec = 0x98 + 112 + 32;
        b[sec..sec + 4].copy_from_slice(&sig.to_le_bytes());
        b
    }

    #[test]
    fn the_bank_rides_in_the_exe_and_survives_a_signature_after_it() {
        let exe = pe(1024, 0);
        assert_eq!(read(&exe), None);
        let toml = "server = \"https://ib.example.jp:8443\"\n";
        let root = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let with = append(&exe, toml, root).unwrap();
        assert_eq!(read(&with), Some((toml.to_owned(), root.to_vec())));
        assert!(append(&with, toml, root).unwrap_err().contains("already"));
        // What osslsigncode does: pad to 8, point the security directory at
        // the signature and append it.
        let mut signed = with.clone();
        while !signed.len().is_multiple_of(8) {
            signed.push(0);
        }
        let at = signed.len() as u32;
        let sec = 0x98 + 112 + 32;
        signed[sec..sec + 4].copy_from_slice(&at.to_le_bytes());
        signed.extend_from_slice(&[0x30, 0x82, 1, 2, 3, 4, 5, 6]);
        assert_eq!(read(&signed), Some((toml.to_owned(), root.to_vec())));
        assert!(append(&signed, toml, root).unwrap_err().contains("signed"));
    }

    #[test]
    fn a_file_without_a_bank_or_with_a_cut_one_has_none() {
        assert_eq!(read(b""), None);
        assert_eq!(read(&pe(300, 0)), None);
        let with = append(&pe(300, 0), "x", b"y").unwrap();
        assert_eq!(read(&with[..with.len() - 1]), None);
        let mut lying = with.clone();
        let n = lying.len();
        lying[n - 24..n - 20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(read(&lying), None);
    }
}
