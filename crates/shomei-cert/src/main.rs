//! 証明書発行アプリ (`shomei-cert`): issues the user's client certificate with
//! login ID + login password over EST, renews it with the certificate
//! itself, and shows it. The private key is generated here and never leaves
//! the PC; the bank's server is trusted by the root certificate shipped with
//! the app, never by turning verification off.
#![forbid(unsafe_code)]

mod est;
mod nss;

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use rcgen::{CertificateParams, DnType, KeyPair, RsaKeySize};

const AFTER_HELP: &str = "\
Environment (for scripts; otherwise the app asks without echo):
  SHOMEI_LOGIN_PASSWORD   the login password (issue)
  SHOMEI_P12_PASSWORD     the PKCS#12 file's password (issue, renew, show)

Exit codes: 0 done, 2 usage or configuration, 3 refused by the server (password,
lock, certificate state), 4 network or TLS, 5 local file or key problem.";

#[derive(Parser)]
#[command(name = "shomei-cert", version, about = "Shomei 証明書発行アプリ: issue, renew and show your client certificate", after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone, Default)]
struct Conn {
    /// The portal, e.g. https://ib.example-bank.jp:8443 (default: shomei-cert.toml).
    #[arg(long)]
    server: Option<String>,
    /// The certificate server (default: shomei-cert.toml, else the portal's host on port 8444).
    #[arg(long)]
    cert_server: Option<String>,
    /// The bank's root certificate, PEM (default: shomei-cert.toml).
    #[arg(long)]
    root_ca: Option<PathBuf>,
    /// Configuration file (default: ./shomei-cert.toml, then next to the app).
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum, Debug, PartialEq, Eq)]
enum KeyType {
    P256,
    P384,
    Rsa2048,
    Rsa3072,
    Rsa4096,
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
        /// Import into the NSS database Chromium and Firefox read (~/.pki/nssdb).
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
        #[arg(long)]
        import_nss: bool,
    },
    /// Subject, serial, validity and the state the server reports.
    Show {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        p12: PathBuf,
    },
    /// Registers the shomei-cert: link of the 証明書取得認証 page (Linux desktops).
    Install,
    /// Handles a shomei-cert://issue?server=… link.
    Open { url: String },
}

/// A failure, told in one line; the variant decides the exit code.
#[derive(Debug)]
pub enum Fail {
    Usage(String),
    Refused(String),
    Network(String),
    Local(String),
}

impl Fail {
    fn code(&self) -> u8 {
        match self {
            Fail::Usage(_) => 2,
            Fail::Refused(_) => 3,
            Fail::Network(_) => 4,
            Fail::Local(_) => 5,
        }
    }

    fn message(&self) -> &str {
        match self {
            Fail::Usage(m) | Fail::Refused(m) | Fail::Network(m) | Fail::Local(m) => m,
        }
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    server: Option<String>,
    cert_server: Option<String>,
    root_ca: Option<PathBuf>,
}

/// The servers and the root certificate, from flags, then the config file.
struct Target {
    server: String,
    cert_server: String,
    root_pem: Vec<u8>,
}

fn config_path(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_owned());
    }
    let here = PathBuf::from("shomei-cert.toml");
    if here.is_file() {
        return Some(here);
    }
    let beside = std::env::current_exe()
        .ok()?
        .parent()?
        .join("shomei-cert.toml");
    beside.is_file().then_some(beside)
}

fn target(conn: &Conn) -> Result<Target, Fail> {
    let path = config_path(conn.config.as_deref());
    let cfg: ConfigFile = match &path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| Fail::Usage(format!("cannot read {}: {e}", p.display())))?;
            toml::from_str(&text).map_err(|e| {
                Fail::Usage(format!(
                    "{} is not a valid configuration: {}",
                    p.display(),
                    e.message()
                ))
            })?
        }
        None => ConfigFile::default(),
    };
    let base = path
        .as_ref()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let server = conn.server.clone().or(cfg.server).ok_or_else(|| {
        Fail::Usage(
            "which bank server? give --server https://HOST:PORT or a shomei-cert.toml".into(),
        )
    })?;
    let server = server.trim_end_matches('/').to_owned();
    if !server.starts_with("https://") {
        return Err(Fail::Usage(format!(
            "the server must be an https:// URL, got {server}"
        )));
    }
    let cert_server = match conn
        .cert_server
        .clone()
        .or(cfg.cert_server)
        .filter(|s| !s.is_empty())
    {
        Some(s) => s.trim_end_matches('/').to_owned(),
        None => {
            let host = server
                .trim_start_matches("https://")
                .split(['/', ':'])
                .next()
                .unwrap_or("");
            format!("https://{host}:8444")
        }
    };
    let root = conn
        .root_ca
        .clone()
        .or_else(|| cfg.root_ca.map(|r| if r.is_absolute() { r } else { base.join(r) }))
        .ok_or_else(|| Fail::Usage("the bank's root certificate is needed: --root-ca FILE or root_ca in shomei-cert.toml".into()))?;
    let root_pem = std::fs::read(&root).map_err(|e| {
        Fail::Usage(format!(
            "cannot read the root certificate {}: {e}",
            root.display()
        ))
    })?;
    Ok(Target {
        server,
        cert_server,
        root_pem,
    })
}

/// A secret from the environment, or asked for without echo.
fn secret(env: &str, prompt: &str, confirm: bool) -> Result<String, Fail> {
    if let Ok(v) = std::env::var(env) {
        return Ok(v);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Fail::Usage(format!(
            "no terminal to ask for the password: set {env}"
        )));
    }
    let read = |p: &str| {
        rpassword::prompt_password(p)
            .map_err(|e| Fail::Local(format!("cannot read the password: {e}")))
    };
    let first = read(prompt)?;
    if confirm && read("もう一度入力してください (again): ")? != first {
        return Err(Fail::Usage("the two passwords differ".into()));
    }
    if first.is_empty() {
        return Err(Fail::Usage("an empty password is not allowed".into()));
    }
    Ok(first)
}

fn ask_login_id() -> Result<String, Fail> {
    if !std::io::stdin().is_terminal() {
        return Err(Fail::Usage("give --login-id (no terminal to ask)".into()));
    }
    print!("ログインID (login ID): ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Fail::Local(e.to_string()))?;
    Ok(line.trim().to_owned())
}

fn step(n: u8, label: &str) {
    println!("[{n}/4] {label}");
}

fn generate(kind: KeyType) -> Result<KeyPair, Fail> {
    let k = match kind {
        KeyType::P256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        KeyType::P384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        KeyType::Rsa2048 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048),
        KeyType::Rsa3072 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_3072),
        KeyType::Rsa4096 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_4096),
    };
    k.map_err(|e| Fail::Local(format!("key generation failed: {e}")))
}

fn csr(key: &KeyPair, login_id: &str) -> Result<Vec<u8>, Fail> {
    let mut p =
        CertificateParams::new(Vec::<String>::new()).map_err(|e| Fail::Local(e.to_string()))?;
    p.distinguished_name.push(DnType::CommonName, login_id);
    Ok(p.serialize_request(key)
        .map_err(|e| Fail::Local(format!("cannot make the request: {e}")))?
        .der()
        .to_vec())
}

/// What a certificate says, for the screen.
struct CertInfo {
    subject: String,
    cn: String,
    serial_hex: String,
    not_before: String,
    not_after: String,
    spki: Vec<u8>,
    key_type: Option<KeyType>,
}

fn info(der: &[u8]) -> Result<CertInfo, Fail> {
    let (_, c) = x509_parser::parse_x509_certificate(der)
        .map_err(|_| Fail::Network("the server sent something that is not a certificate".into()))?;
    let cn = c
        .subject()
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .unwrap_or("")
        .to_owned();
    let pk = c.public_key();
    let key_type = match pk.parsed() {
        Ok(x509_parser::public_key::PublicKey::EC(p)) if p.key_size() == 256 => Some(KeyType::P256),
        Ok(x509_parser::public_key::PublicKey::EC(p)) if p.key_size() == 384 => Some(KeyType::P384),
        Ok(x509_parser::public_key::PublicKey::RSA(r)) => match r.key_size() {
            2048 => Some(KeyType::Rsa2048),
            3072 => Some(KeyType::Rsa3072),
            4096 => Some(KeyType::Rsa4096),
            _ => None,
        },
        _ => None,
    };
    let serial: Vec<u8> = c
        .raw_serial()
        .iter()
        .copied()
        .skip_while(|b| *b == 0)
        .collect();
    Ok(CertInfo {
        subject: c.subject().to_string(),
        cn,
        serial_hex: serial.iter().map(|b| format!("{b:02x}")).collect(),
        not_before: c.validity().not_before.to_string(),
        not_after: c.validity().not_after.to_string(),
        spki: pk.raw.to_vec(),
        key_type,
    })
}

fn pem(label: &str, der: &[u8]) -> String {
    shomei_pki::to_pem(label, der)
}

/// Writes `bytes` to `path` through a temporary file in the same folder:
/// either the whole new file is there, or the old state is untouched.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Fail> {
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
        Fail::Local(format!("cannot write {}: {e}", path.display()))
    })
}

fn chain_path(p12: &Path) -> PathBuf {
    let mut s = p12.as_os_str().to_owned();
    s.push(".chain.pem");
    PathBuf::from(s)
}

/// How `save` writes: the PKCS#12 form, and whether to import into NSS
/// (trusting `root_pem`).
struct SaveAs<'a> {
    legacy: bool,
    import_nss: bool,
    root_pem: &'a [u8],
}

/// Packs key, certificate and chain, writes both files, imports if asked.
fn save(
    out: &Path,
    key: &KeyPair,
    cert: &[u8],
    chain: &[Vec<u8>],
    login_id: &str,
    how: SaveAs<'_>,
) -> Result<(), Fail> {
    let SaveAs {
        legacy,
        import_nss,
        root_pem,
    } = how;
    let password = secret(
        "SHOMEI_P12_PASSWORD",
        "PKCS#12 ファイルのパスワード (password for the file): ",
        true,
    )?;
    let name = format!("Shomei {login_id}");
    let write = if legacy {
        shomei_pki::pkcs12::write_legacy
    } else {
        shomei_pki::pkcs12::write
    };
    let p12 = write(&key.serialize_der(), cert, chain, &name, &password)
        .map_err(|e| Fail::Local(e.to_string()))?;
    let chain_pem: String = std::iter::once(cert)
        .chain(chain.iter().map(Vec::as_slice))
        .map(|c| pem("CERTIFICATE", c))
        .collect();
    write_atomic(&chain_path(out), chain_pem.as_bytes())?;
    write_atomic(out, &p12)?;
    if import_nss {
        nss::import(out, &password, root_pem)?;
        println!(
            "      imported into the NSS database ({})",
            nss::db_dir().display()
        );
    }
    Ok(())
}

async fn issue(
    conn: Conn,
    login_id: Option<String>,
    key_type: KeyType,
    out: Option<PathBuf>,
    legacy: bool,
    import_nss: bool,
    force: bool,
) -> Result<(), Fail> {
    let t = target(&conn)?;
    step(1, "個人認証 (login ID and login password)");
    let login_id = match login_id {
        Some(l) => l,
        None => ask_login_id()?,
    };
    if login_id.is_empty()
        || login_id.len() > 64
        || !login_id.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Err(Fail::Usage(
            "the login ID is half-width letters and digits".into(),
        ));
    }
    let out = out.unwrap_or_else(|| PathBuf::from(format!("{login_id}.p12")));
    if !force && (out.exists() || chain_path(&out).exists()) {
        return Err(Fail::Local(format!(
            "{} already exists; use --force to replace it",
            out.display()
        )));
    }
    let password = secret(
        "SHOMEI_LOGIN_PASSWORD",
        "ログインパスワード (login password): ",
        false,
    )?;
    step(
        2,
        "証明書取得 (generating the key on this PC and requesting the certificate)",
    );
    let key = generate(key_type)?;
    let request = csr(&key, &login_id)?;
    let est = est::Est::new(&t.root_pem, None)?;
    let cert = est
        .simpleenroll(&t.server, &login_id, &password, &request)
        .await?;
    step(3, "処理中 (checking and saving)");
    let i = info(&cert)?;
    if i.spki != rcgen::PublicKeyData::subject_public_key_info(&key) {
        return Err(Fail::Network(
            "the certificate the server sent is not for the key made here".into(),
        ));
    }
    let chain = est.cacerts(&t.server).await?;
    save(
        &out,
        &key,
        &cert,
        &chain,
        &login_id,
        SaveAs {
            legacy,
            import_nss,
            root_pem: &t.root_pem,
        },
    )?;
    step(4, "取得完了 (done)");
    println!("      subject:  {}", i.subject);
    println!("      serial:   {}", i.serial_hex);
    println!("      valid:    {} – {}", i.not_before, i.not_after);
    println!(
        "      saved:    {} (and {})",
        out.display(),
        chain_path(&out).display()
    );
    Ok(())
}

fn load_p12(path: &Path) -> Result<shomei_pki::pkcs12::Contents, Fail> {
    let bytes = std::fs::read(path)
        .map_err(|e| Fail::Local(format!("cannot read {}: {e}", path.display())))?;
    let password = secret(
        "SHOMEI_P12_PASSWORD",
        "PKCS#12 ファイルのパスワード (password for the file): ",
        false,
    )?;
    shomei_pki::pkcs12::read(&bytes, &password)
        .map_err(|e| Fail::Local(format!("{}: {e}", path.display())))
}

async fn renew(conn: Conn, path: PathBuf, import_nss: bool) -> Result<(), Fail> {
    let t = target(&conn)?;
    step(1, "個人認証 (the current certificate)");
    let current = load_p12(&path)?;
    let i = info(&current.cert)?;
    let kind = i.key_type.ok_or(Fail::Local(
        "the current key is of a kind this app does not renew".into(),
    ))?;
    let key_pem = pem("PRIVATE KEY", &current.key_pkcs8);
    let identity = format!("{}{}", pem("CERTIFICATE", &current.cert), key_pem);
    step(2, "証明書取得 (a new key on this PC)");
    let key = generate(kind)?;
    let request = csr(&key, &i.cn)?;
    let est = est::Est::new(&t.root_pem, Some(identity.as_bytes()))?;
    let cert = est.simplereenroll(&t.cert_server, &request).await?;
    step(3, "処理中 (checking and saving)");
    let new = info(&cert)?;
    if new.spki != rcgen::PublicKeyData::subject_public_key_info(&key) {
        return Err(Fail::Network(
            "the certificate the server sent is not for the key made here".into(),
        ));
    }
    let chain = est::Est::new(&t.root_pem, None)?.cacerts(&t.server).await?;
    // The renewed file keeps the form of the one it replaces.
    save(
        &path,
        &key,
        &cert,
        &chain,
        &i.cn,
        SaveAs {
            legacy: current.legacy,
            import_nss,
            root_pem: &t.root_pem,
        },
    )?;
    step(
        4,
        "取得完了 (done; the previous certificate is revoked by the bank)",
    );
    println!("      serial:   {} (was {})", new.serial_hex, i.serial_hex);
    println!("      valid:    {} – {}", new.not_before, new.not_after);
    Ok(())
}

async fn show(conn: Conn, path: PathBuf) -> Result<(), Fail> {
    let c = load_p12(&path)?;
    let i = info(&c.cert)?;
    println!("subject:  {}", i.subject);
    println!("serial:   {}", i.serial_hex);
    println!("valid:    {} – {}", i.not_before, i.not_after);
    println!("chain:    {} CA certificate(s)", c.chain.len());
    match target(&conn) {
        Ok(t) => println!(
            "state:    {}",
            est::Est::new(&t.root_pem, None)?
                .status(&t.server, &i.serial_hex)
                .await?
        ),
        Err(Fail::Usage(_)) => println!("state:    (no server configured)"),
        Err(e) => return Err(e),
    }
    Ok(())
}

/// `shomei-cert://issue?server=https%3A%2F%2Fhost%3A8443` → the server URL.
fn server_of_link(url: &str) -> Result<String, Fail> {
    let rest = url
        .strip_prefix("shomei-cert://issue")
        .ok_or_else(|| Fail::Usage(format!("not a shomei-cert://issue link: {url}")))?;
    let query = rest.trim_start_matches('/').strip_prefix('?').unwrap_or("");
    for pair in query.split('&') {
        if let Some(v) = pair.strip_prefix("server=") {
            let mut out = Vec::new();
            let b = v.as_bytes();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'%' && i + 2 < b.len() {
                    let hex = std::str::from_utf8(&b[i + 1..i + 3])
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok());
                    match hex {
                        Some(x) => {
                            out.push(x);
                            i += 3;
                            continue;
                        }
                        None => return Err(Fail::Usage("bad %-escape in the link".into())),
                    }
                }
                out.push(b[i]);
                i += 1;
            }
            return String::from_utf8(out)
                .map_err(|_| Fail::Usage("the link's server is not UTF-8".into()));
        }
    }
    Err(Fail::Usage("the link names no server".into()))
}

async fn run(cli: Cli) -> Result<(), Fail> {
    match cli.cmd {
        Cmd::Issue {
            conn,
            login_id,
            key_type,
            out,
            legacy_p12,
            import_nss,
            force,
        } => issue(conn, login_id, key_type, out, legacy_p12, import_nss, force).await,
        Cmd::Renew {
            conn,
            p12,
            import_nss,
        } => renew(conn, p12, import_nss).await,
        Cmd::Show { conn, p12 } => show(conn, p12).await,
        Cmd::Install => nss::install_handler(),
        Cmd::Open { url } => {
            let server = server_of_link(&url)?;
            let conn = Conn {
                server: Some(server),
                ..Conn::default()
            };
            issue(conn, None, KeyType::P256, None, false, false, false).await
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("shomei-cert: cannot start: {e}");
            return ExitCode::from(5);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("shomei-cert: {}", f.message());
            ExitCode::from(f.code())
        }
    }
}

#[cfg(test)]
mod tests;
