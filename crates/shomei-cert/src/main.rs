//! 証明書発行アプリ (`shomei-cert`): started without a subcommand it opens
//! the window (the setup first, when this copy is not installed yet); the
//! subcommands are the headless mode for technicians and scripts, with the
//! same Japanese messages. The private key is generated here and never
//! leaves the PC; the bank's server is trusted by the root certificate
//! shipped with the app, never by turning verification off.
// Unsafe code only where Windows' C interfaces are called (winstore.rs,
// winsetup.rs); everywhere else none (denied in Cargo.toml), and on every
// other system it cannot be allowed at all.
#![cfg_attr(not(windows), forbid(unsafe_code))]
// The window opens without a console window; the command line attaches to
// the console it was started from (winsetup::attach_console).
#![cfg_attr(windows, windows_subsystem = "windows")]

mod bank;
mod bundle;
mod enroll;
mod est;
mod fail;
mod gui;
mod install;
mod keep;
#[cfg_attr(not(windows), allow(dead_code))]
mod keyblob;
#[cfg_attr(not(windows), allow(dead_code))]
mod lnk;
mod package;
mod store;
mod text;
#[cfg(windows)]
mod winsetup;
#[cfg(windows)]
mod winstore;

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use enroll::{Conn, KeyType};
use fail::Fail;
use store::CertStore;

const AFTER_HELP: &str = "\
Without a command the window opens (the setup first, when this copy is not
installed yet).

Environment (for scripts; otherwise the app asks without echo):
  SHOMEI_LOGIN_PASSWORD   the login password (issue)
  SHOMEI_P12_PASSWORD     the PKCS#12 file's password (issue, renew, show)

Exit codes: 0 done, 2 usage or configuration, 3 refused by the server (password,
lock, certificate state), 4 network or TLS, 5 local file or key problem.";

#[derive(Parser)]
#[command(name = "shomei-cert", version, about = "Shomei 証明書発行アプリ: issue, renew and show your client certificate", after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// 電子証明書発行: a new certificate with login ID + login password.
    Issue {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        login_id: Option<String>,
        #[arg(long, value_enum, default_value = "p256")]
        key_type: KeyType,
        /// Where to write the PKCS#12 file (default: LOGIN_ID.p12).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The older PKCS#12 form (key under PBE-SHA1-3DES, SHA-1 MAC) that
        /// Windows before 10 version 1709 and Windows Server 2016 need.
        #[arg(long)]
        legacy_p12: bool,
        /// Also put it where the window does (Chromium's NSS database
        /// ~/.pki/nssdb and each Firefox profile's; on Windows the user's
        /// store), named and kept as the window's, so the window renews it.
        #[arg(long)]
        import_nss: bool,
        /// Overwrite an existing output file.
        #[arg(long)]
        force: bool,
    },
    /// 電子証明書更新 (更新可): a new certificate, authenticated by the current one.
    Renew {
        #[command(flatten)]
        conn: Conn,
        /// The current PKCS#12 file; replaced by the new one on success.
        #[arg(long)]
        p12: PathBuf,
        /// Also put the new one where the window does (see issue), the old
        /// one taken out there.
        #[arg(long)]
        import_nss: bool,
    },
    /// Brings a certificate file (from a backup or another PC) into the
    /// browsers' stores and the app's keeping, so the window can renew it.
    Import {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        p12: PathBuf,
    },
    /// Subject, serial, validity and the state the server reports.
    Show {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        p12: PathBuf,
    },
    /// The setup without the window: installs this copy for this user (menu
    /// entry and the shomei-cert: link of the 証明書取得認証 page).
    Install {
        /// The folder (default: ~/.local/share/shomei-cert).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Opens the window from a shomei-cert: link (the link's text is not trusted).
    Open { url: Option<String> },
    /// Windows: removes this per-user install (files, Start-menu entry,
    /// shomei-cert: link, 「アプリと機能」 entry); the certificates stay in
    /// the store. What 「アンインストール」 runs.
    #[cfg(windows)]
    Uninstall,
    /// Makes a bank's Windows setup: the Windows build of this app with
    /// the bank's shomei-cert.toml and root certificate inside, to be
    /// signed afterwards (scripts/windows-app does both).
    #[command(hide = true)]
    WindowsSetup {
        /// The Windows build (shomei-cert.exe).
        #[arg(long)]
        exe: PathBuf,
        /// The bank's shomei-cert.toml (its root_ca line is not used).
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        root_ca: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// What a system-wide package of this binary needs (version, menu
    /// entry, dependencies), as JSON, for the server that builds the .deb.
    #[command(hide = true)]
    PackageInfo,
}

/// A secret from the environment, or asked for without echo.
fn secret(env: &str, prompt: &str, confirm: bool) -> Result<String, Fail> {
    if let Ok(v) = std::env::var(env) {
        return Ok(v);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Fail::Usage(format!(
            "パスワードを入力する端末がありません。環境変数 {env} を設定してください。"
        )));
    }
    let read = |p: &str| {
        rpassword::prompt_password(p).map_err(|e| Fail::Local(text::local_problem(&e.to_string())))
    };
    let first = read(prompt)?;
    if confirm && read("もう一度入力してください: ")? != first {
        return Err(Fail::Usage(
            "2回入力したパスワードが一致しません。もう一度お試しください。".into(),
        ));
    }
    if first.is_empty() {
        return Err(Fail::Usage("パスワードを入力してください。".into()));
    }
    Ok(first)
}

fn ask_login_id() -> Result<String, Fail> {
    if !std::io::stdin().is_terminal() {
        return Err(Fail::Usage(
            "ログインIDを --login-id で指定してください（入力する端末がありません）。".into(),
        ));
    }
    print!("ログインID: ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Fail::Local(text::local_problem(&e.to_string())))?;
    Ok(line.trim().to_owned())
}

fn step(s: bank::Step, detail: &str) {
    println!("[{}/4] {} {detail}", s as u8 + 1, s.label());
}

/// Prints the steps after 個人認証 (which the command prints itself, before
/// it asks for anything), each with its detail.
fn steps(details: [&str; 3]) -> impl FnMut(bank::Step) {
    move |s| {
        if s != bank::Step::Auth {
            step(s, details[s as usize - 1]);
        }
    }
}

/// Where `issue` and `renew` put the certificate: the window's stores when
/// asked (`--import-nss`), then the PKCS#12 file, last, so that a file
/// that cannot be written takes the certificate out of the others again.
fn cli_stores(
    file: store::P12File,
    window_stores: Option<Vec<Box<dyn CertStore>>>,
) -> Vec<Box<dyn CertStore>> {
    let mut stores = window_stores.unwrap_or_default();
    stores.push(Box::new(file));
    stores
}

/// The bank of `conn` with the stores of `cli_stores` and this user's
/// keeping, as the window has them.
fn cli_bank(conn: &Conn, file: store::P12File, import_nss: bool) -> Result<bank::RealBank, Fail> {
    let target = enroll::target(conn)?;
    let window_stores = import_nss.then(|| store::stores(&target.bank));
    Ok(bank::RealBank {
        stores: cli_stores(file, window_stores),
        target,
        keep: keep::Keep::of_user(),
    })
}

/// What the command line says of a certificate it stored.
fn print_stored(done: &bank::Done, file: &store::P12File) {
    for place in &done.outcome.stored_in {
        if *place != file.place() {
            println!("      保存先:   {place}");
        }
    }
    for r in &done.outcome.removed {
        println!("      削除:     {r}");
    }
}

/// The PKCS#12 file's password, asked (twice) before the bank is.
fn p12_password() -> Result<String, Fail> {
    secret(
        "SHOMEI_P12_PASSWORD",
        "PKCS#12 ファイルのパスワード: ",
        true,
    )
}

fn issue(
    conn: Conn,
    login_id: Option<String>,
    key_type: KeyType,
    out: Option<PathBuf>,
    legacy: bool,
    import_nss: bool,
    force: bool,
) -> Result<(), Fail> {
    enroll::target(&conn)?;
    step(bank::Step::Auth, "（ログインIDとログインパスワード）");
    let login_id = match login_id {
        Some(l) => l,
        None => ask_login_id()?,
    };
    enroll::check_login_id(&login_id)?;
    let out = out.unwrap_or_else(|| PathBuf::from(format!("{login_id}.p12")));
    if !force && (out.exists() || store::chain_path(&out).exists()) {
        return Err(Fail::Local(format!(
            "{} は既にあります。置き換えるには --force を付けてください。",
            out.display()
        )));
    }
    let password = secret("SHOMEI_LOGIN_PASSWORD", "ログインパスワード: ", false)?;
    let file = store::P12File::new(out, p12_password()?, legacy);
    let bank = cli_bank(&conn, file.clone(), import_nss)?;
    issue_into(&bank, &login_id, &password, key_type, &file)
}

/// `issue` once everything is asked: the window's issuance into `bank`'s
/// stores (among them `file`), with the command line's words.
fn issue_into(
    bank: &bank::RealBank,
    login_id: &str,
    password: &str,
    key_type: KeyType,
    file: &store::P12File,
) -> Result<(), Fail> {
    let done = bank.issue_as(
        login_id,
        password,
        key_type,
        &mut steps([
            "（このパソコンで鍵を作り、証明書を申し込みます）",
            "（確認して保存します）",
            "",
        ]),
    )?;
    print_stored(&done, file);
    println!("      subject:  {}", done.info.subject);
    println!("      serial:   {}", done.info.serial_hex);
    println!(
        "      valid:    {} – {}",
        done.info.not_before, done.info.not_after
    );
    println!(
        "      saved:    {} (and {})",
        file.place(),
        file.chain_path().display()
    );
    Ok(())
}

fn load_p12(path: &Path) -> Result<shomei_pki::pkcs12::Contents, Fail> {
    let bytes = std::fs::read(path)
        .map_err(|e| Fail::Local(text::local_problem(&format!("{}: {e}", path.display()))))?;
    let password = secret(
        "SHOMEI_P12_PASSWORD",
        "PKCS#12 ファイルのパスワード: ",
        false,
    )?;
    shomei_pki::pkcs12::read(&bytes, &password)
        .map_err(|e| Fail::Local(text::local_problem(&format!("{}: {e}", path.display()))))
}

fn renew(conn: Conn, path: PathBuf, import_nss: bool) -> Result<(), Fail> {
    enroll::target(&conn)?;
    step(bank::Step::Auth, "（いまの電子証明書）");
    let current = load_p12(&path)?;
    // The renewed file keeps the form of the one it replaces.
    let file = store::P12File::new(path, p12_password()?, current.legacy);
    let bank = cli_bank(&conn, file.clone(), import_nss)?;
    renew_into(&bank, &current, &file)
}

/// `renew` once everything is asked: the window's renewal with the key and
/// certificate of the file, into `bank`'s stores (among them `file`).
fn renew_into(
    bank: &bank::RealBank,
    current: &shomei_pki::pkcs12::Contents,
    file: &store::P12File,
) -> Result<(), Fail> {
    let old = enroll::info(&current.cert)?;
    let done = bank.renew_with(
        enroll::CurrentKey::Pkcs8(&current.key_pkcs8),
        &current.cert,
        &mut steps([
            "（このパソコンで新しい鍵を作ります）",
            "（確認して保存します）",
            "（前の証明書は銀行が失効させます）",
        ]),
    )?;
    print_stored(&done, file);
    println!(
        "      serial:   {} (was {})",
        done.info.serial_hex, old.serial_hex
    );
    println!(
        "      valid:    {} – {}",
        done.info.not_before, done.info.not_after
    );
    Ok(())
}

async fn show(conn: Conn, path: PathBuf) -> Result<(), Fail> {
    let c = load_p12(&path)?;
    let i = enroll::info(&c.cert)?;
    println!("subject:  {}", i.subject);
    println!("serial:   {}", i.serial_hex);
    println!("valid:    {} – {}", i.not_before, i.not_after);
    println!("有効期限: {}", i.not_after_ja);
    println!("chain:    {} CA certificate(s)", c.chain.len());
    match enroll::target(&conn) {
        Ok(t) => println!(
            "state:    {}",
            est::Est::new(&t.root_pem, None)?
                .status(&t.server, &i.serial_hex)
                .await?
                .label
        ),
        Err(Fail::Usage(_)) => println!("state:    （サーバーが設定されていません）"),
        Err(e) => return Err(e),
    }
    Ok(())
}

fn import(conn: Conn, path: &Path) -> Result<(), Fail> {
    let bank = bank::RealBank::of_user(enroll::target(&conn)?);
    let c = load_p12(path)?;
    let i = enroll::info(&c.cert)?;
    for s in &bank.stores {
        s.prepare()?;
    }
    for place in bank.save(&c.key_pkcs8, &c.cert, &c.chain, &i)? {
        println!("保存先: {place}");
    }
    println!(
        "取り込みました: {}（シリアル {}、有効期限 {}）",
        i.cn, i.serial_hex, i.not_after_ja
    );
    Ok(())
}

fn windows_setup(exe: &Path, config: &Path, root_ca: &Path, out: &Path) -> Result<(), Fail> {
    let read =
        |p: &Path| std::fs::read(p).map_err(|e| Fail::Usage(format!("{}: {e}", p.display())));
    let exe_bytes = read(exe)?;
    let toml = String::from_utf8(read(config)?)
        .map_err(|_| Fail::Usage(format!("{}: not UTF-8", config.display())))?;
    let root = read(root_ca)?;
    enroll::check_bundle(&toml, &root)?;
    let setup = bundle::append(&exe_bytes, &toml, &root).map_err(Fail::Usage)?;
    std::fs::write(out, setup).map_err(|e| Fail::Local(format!("{}: {e}", out.display())))?;
    println!("{}", out.display());
    Ok(())
}

/// A `shomei-cert:` link only opens the window: nothing in it is used, so a
/// link cannot point the app at another server or fill anything in.
fn check_link(url: &str) -> Result<(), Fail> {
    if url.len() > 2048 || !url.starts_with("shomei-cert:") {
        return Err(Fail::Usage(format!(
            "shomei-cert: のリンクではありません: {}",
            url.chars().take(80).collect::<String>()
        )));
    }
    Ok(())
}

/// The window, with the bank of the configuration beside the app.
fn window() -> Result<(), Fail> {
    let bank: Arc<dyn bank::Bank> = match enroll::target(&Conn::default()) {
        Ok(target) => Arc::new(bank::RealBank::of_user(target)),
        Err(e) => Arc::new(gui::NoBank(e.message().to_owned())),
    };
    gui::run(bank, install::is_installed(), install::Places::of_user())
}

fn run(cmd: Option<Cmd>) -> Result<(), Fail> {
    let Some(cmd) = cmd else {
        return window();
    };
    match cmd {
        Cmd::Issue {
            conn,
            login_id,
            key_type,
            out,
            legacy_p12,
            import_nss,
            force,
        } => issue(conn, login_id, key_type, out, legacy_p12, import_nss, force),
        Cmd::Renew {
            conn,
            p12,
            import_nss,
        } => renew(conn, p12, import_nss),
        Cmd::Show { conn, p12 } => enroll::block_on(show(conn, p12)),
        Cmd::Import { conn, p12 } => import(conn, &p12),
        Cmd::Install { dir } => {
            let places = install::Places::of_user();
            let dir = dir.unwrap_or_else(|| places.default_dir.clone());
            let exe = install::install(&dir, &places)?;
            println!("インストールしました: {}", exe.display());
            Ok(())
        }
        #[cfg(windows)]
        Cmd::Uninstall => install::uninstall(&install::Places::of_user()),
        Cmd::WindowsSetup {
            exe,
            config,
            root_ca,
            out,
        } => windows_setup(&exe, &config, &root_ca, &out),
        Cmd::PackageInfo => {
            println!("{}", package::info());
            Ok(())
        }
        Cmd::Open { url } => {
            if let Some(url) = url {
                check_link(&url)?;
            }
            window()
        }
    }
}

fn main() -> ExitCode {
    #[cfg(windows)]
    if std::env::args_os().len() > 1 {
        winsetup::attach_console();
    }
    match run(Cli::parse().cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("shomei-cert: {}", f.message());
            ExitCode::from(f.code())
        }
    }
}

#[cfg(test)]
mod tests;
