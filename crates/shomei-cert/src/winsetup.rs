//! What the setup registers on Windows, per user (no administrator, no UAC
//! prompt): the `shomei-cert:` link under `HKCU\Software\Classes`, the
//! entry of 「アプリと機能」 under `HKCU\…\Uninstall`, and the Start-menu
//! shortcut 「証明書発行アプリ」 (a `.lnk` file, written by `lnk`).
#![allow(unsafe_code)]

use std::path::Path;
use std::ptr::{null, null_mut};

use windows_sys::Win32::System::Registry::*;

pub const CLASSES_KEY: &str = r"Software\Classes\shomei-cert";
pub const UNINSTALL_KEY: &str = r"Software\Microsoft\Windows\CurrentVersion\Uninstall\shomei-cert";
pub const SHORTCUT: &str = "証明書発行アプリ.lnk";

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

/// A value of a key: a string or a number.
pub enum Value<'a> {
    Str(&'a str),
    Dword(u32),
}

/// Sets `values` (name "" is the key's default) on `HKCU\key`, made if missing.
pub fn set(key: &str, values: &[(&str, Value)]) -> Result<(), String> {
    let k = wide(key);
    let mut h: HKEY = null_mut();
    // SAFETY: out-pointer to a key handle closed below.
    let e = unsafe {
        RegCreateKeyExW(
            HKEY_CURRENT_USER,
            k.as_ptr(),
            0,
            null(),
            0,
            KEY_WRITE,
            null(),
            &mut h,
            null_mut(),
        )
    };
    if e != 0 {
        return Err(format!("RegCreateKeyExW(HKCU\\{key}): {e}"));
    }
    let mut res = Ok(());
    for (name, v) in values {
        let n = wide(name);
        let (ty, data): (u32, Vec<u8>) = match v {
            Value::Str(s) => (
                REG_SZ,
                wide(s).iter().flat_map(|c| c.to_le_bytes()).collect(),
            ),
            Value::Dword(d) => (REG_DWORD, d.to_le_bytes().to_vec()),
        };
        // SAFETY: the data buffer and its length.
        let e = unsafe { RegSetValueExW(h, n.as_ptr(), 0, ty, data.as_ptr(), data.len() as u32) };
        if e != 0 {
            res = Err(format!("RegSetValueExW(HKCU\\{key}\\{name}): {e}"));
            break;
        }
    }
    // SAFETY: the handle from RegCreateKeyExW.
    unsafe { RegCloseKey(h) };
    res
}

/// Removes `HKCU\key` with everything under it; a missing key is no error.
pub fn remove(key: &str) -> Result<(), String> {
    let k = wide(key);
    // SAFETY: a path under HKCU.
    let e = unsafe { RegDeleteTreeW(HKEY_CURRENT_USER, k.as_ptr()) };
    match e {
        0 | 2 => Ok(()), // ERROR_FILE_NOT_FOUND: nothing to remove
        e => Err(format!("RegDeleteTreeW(HKCU\\{key}): {e}")),
    }
}

#[link(name = "kernel32")]
unsafe extern "system" {
    fn AttachConsole(process: u32) -> i32;
}

/// The command line's output goes to the console it was started from (the
/// app is a window program, so it opens none of its own).
pub fn attach_console() {
    // SAFETY: ATTACH_PARENT_PROCESS; failing (no console) is harmless.
    unsafe { AttachConsole(u32::MAX) };
}

/// A Windows string argument with quotes, for `shell\open\command` and the
/// uninstall string.
pub fn quoted(p: &Path) -> String {
    format!("\"{}\"", p.display())
}

/// Registers the `shomei-cert:` link and the 「アプリと機能」 entry for `exe`.
pub fn register(exe: &Path, dir: &Path, publisher: &str) -> Result<(), String> {
    let exe_q = quoted(exe);
    set(
        CLASSES_KEY,
        &[
            ("", Value::Str("URL:shomei-cert (証明書発行アプリ)")),
            ("URL Protocol", Value::Str("")),
        ],
    )?;
    set(
        &format!(r"{CLASSES_KEY}\DefaultIcon"),
        &[("", Value::Str(&format!("{exe_q},0")))],
    )?;
    set(
        &format!(r"{CLASSES_KEY}\shell\open\command"),
        &[("", Value::Str(&format!("{exe_q} open \"%1\"")))],
    )?;
    set(
        UNINSTALL_KEY,
        &[
            ("DisplayName", Value::Str("証明書発行アプリ")),
            ("DisplayVersion", Value::Str(env!("CARGO_PKG_VERSION"))),
            ("Publisher", Value::Str(publisher)),
            ("DisplayIcon", Value::Str(&format!("{exe_q},0"))),
            ("InstallLocation", Value::Str(&dir.display().to_string())),
            ("UninstallString", Value::Str(&format!("{exe_q} uninstall"))),
            ("NoModify", Value::Dword(1)),
            ("NoRepair", Value::Dword(1)),
        ],
    )
}

/// Removes what `register` added.
pub fn unregister() -> Result<(), String> {
    remove(CLASSES_KEY)?;
    remove(UNINSTALL_KEY)
}

/// Removes `dir` once this process has ended (a running program's file
/// cannot be deleted on Windows): `cmd` waits about two seconds, then
/// removes the folder.
pub fn remove_after_exit(dir: &Path) -> Result<(), String> {
    use std::os::windows::process::CommandExt;
    const CREATE_NO_WINDOW: u32 = 0x0800_0000;
    const DETACHED_PROCESS: u32 = 0x0000_0008;
    std::process::Command::new("cmd.exe")
        .raw_arg(format!(
            "/c ping -n 3 127.0.0.1 >nul & rmdir /s /q \"{}\"",
            dir.display()
        ))
        .creation_flags(CREATE_NO_WINDOW | DETACHED_PROCESS)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(drop)
        .map_err(|e| format!("cmd.exe: {e}"))
}
