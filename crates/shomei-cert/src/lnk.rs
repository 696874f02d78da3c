//! A Windows shortcut (`.lnk`, [MS-SHLLINK]) to a program on a local disk:
//! the header, a LinkInfo with the target's path (ANSI and Unicode), and the
//! description, working folder and arguments. Written by hand because the
//! shell's own writer (IShellLink) is a COM object; plain bytes, so built
//! and tested on every system.

/// The shortcut's bytes: `target` started with `args` in `workdir`.
pub fn shortcut(target: &str, args: &str, workdir: &str, description: &str) -> Vec<u8> {
    const HAS_LINK_INFO: u32 = 0x02;
    const HAS_NAME: u32 = 0x04;
    const HAS_WORKING_DIR: u32 = 0x10;
    const HAS_ARGUMENTS: u32 = 0x20;
    const IS_UNICODE: u32 = 0x80;
    let mut out = Vec::new();
    let u32le = |out: &mut Vec<u8>, v: u32| out.extend_from_slice(&v.to_le_bytes());
    // ShellLinkHeader (76 bytes).
    u32le(&mut out, 0x4c);
    out.extend_from_slice(&[
        0x01, 0x14, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x46,
    ]);
    u32le(
        &mut out,
        HAS_LINK_INFO | HAS_NAME | HAS_WORKING_DIR | HAS_ARGUMENTS | IS_UNICODE,
    );
    u32le(&mut out, 0x20); // FILE_ATTRIBUTE_ARCHIVE
    out.extend_from_slice(&[0u8; 24]); // creation, access, write times
    u32le(&mut out, 0); // file size
    u32le(&mut out, 0); // icon index
    u32le(&mut out, 1); // SW_SHOWNORMAL
    out.extend_from_slice(&[0u8; 2 + 2 + 4 + 4]); // hot key, reserved
    debug_assert_eq!(out.len(), 0x4c);

    // LinkInfo with VolumeID and LocalBasePath, and the Unicode offsets.
    let ansi: Vec<u8> = target
        .chars()
        .map(|c| if c.is_ascii() { c as u8 } else { b'?' })
        .chain(std::iter::once(0))
        .collect();
    let unicode: Vec<u8> = target
        .encode_utf16()
        .chain(std::iter::once(0))
        .flat_map(u16::to_le_bytes)
        .collect();
    let header = 0x24u32;
    let volume: Vec<u8> = {
        let mut v = Vec::new();
        u32le(&mut v, 0x11); // size
        u32le(&mut v, 3); // DRIVE_FIXED
        u32le(&mut v, 0); // serial
        u32le(&mut v, 0x10); // label offset
        v.push(0); // empty label
        v
    };
    let volume_at = header;
    let base_at = volume_at + volume.len() as u32;
    let suffix_at = base_at + ansi.len() as u32;
    let base_u_at = suffix_at + 1;
    let suffix_u_at = base_u_at + unicode.len() as u32;
    let size = suffix_u_at + 2;
    u32le(&mut out, size);
    u32le(&mut out, header);
    u32le(&mut out, 1); // VolumeIDAndLocalBasePath
    u32le(&mut out, volume_at);
    u32le(&mut out, base_at);
    u32le(&mut out, 0); // no network path
    u32le(&mut out, suffix_at);
    u32le(&mut out, base_u_at);
    u32le(&mut out, suffix_u_at);
    out.extend_from_slice(&volume);
    out.extend_from_slice(&ansi);
    out.push(0); // empty suffix
    out.extend_from_slice(&unicode);
    out.extend_from_slice(&[0, 0]); // empty Unicode suffix

    // StringData: counted UTF-16, in the order the format fixes.
    for s in [description, workdir, args] {
        let w: Vec<u16> = s.encode_utf16().collect();
        out.extend_from_slice(&(w.len() as u16).to_le_bytes());
        out.extend(w.iter().flat_map(|c| c.to_le_bytes()));
    }
    u32le(&mut out, 0); // no extra data
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shortcut_has_the_header_and_the_target_in_both_forms() {
        let t = r"C:\Users\山田\AppData\Local\Programs\shomei-cert\shomei-cert.exe";
        let b = shortcut(t, "open", r"C:\x", "電子証明書の発行・更新");
        assert_eq!(&b[..4], &[0x4c, 0, 0, 0]);
        assert_eq!(&b[4..8], &[0x01, 0x14, 0x02, 0x00]);
        let info_size = u32::from_le_bytes(b[0x4c..0x50].try_into().unwrap()) as usize;
        let info = &b[0x4c..0x4c + info_size];
        let at = |i: usize| u32::from_le_bytes(info[i..i + 4].try_into().unwrap()) as usize;
        let base_u = at(0x1c);
        let w: Vec<u16> = info[base_u..]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|c| *c != 0)
            .collect();
        assert_eq!(String::from_utf16(&w).unwrap(), t);
        let ansi_at = at(0x10);
        assert!(info[ansi_at..].starts_with(br"C:\Users\??\AppData"));
        // The strings follow the LinkInfo: description, folder, arguments.
        let rest = &b[0x4c + info_size..];
        let n = u16::from_le_bytes([rest[0], rest[1]]) as usize;
        assert_eq!(n, "電子証明書の発行・更新".encode_utf16().count());
        assert_eq!(&b[b.len() - 4..], &[0, 0, 0, 0]);
    }
}
