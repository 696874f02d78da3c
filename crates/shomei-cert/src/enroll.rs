//! What both faces of the app (the window and the command line) do with
//! the bank: read the configuration, make the key on this PC, ask for the
//! certificate (login ID + password, or the current certificate) and check
//! that what came back is for that key.

use std::path::{Path, PathBuf};

use rcgen::{CertificateParams, DnType, KeyPair, RsaKeySize};

use crate::fail::Fail;
use crate::{est, text};

#[derive(Clone, Copy, clap::ValueEnum, Debug, PartialEq, Eq)]
pub enum KeyType {
    P256,
    P384,
    Rsa2048,
    Rsa3072,
    Rsa4096,
}

/// Where the bank is, as flags give it; the rest comes from shomei-cert.toml.
#[derive(clap::Args, Clone, Default)]
pub struct Conn {
    /// The portal, e.g. https://ib.example-bank.jp:8443 (default: shomei-cert.toml).
    #[arg(long)]
    pub server: Option<String>,
    /// The certificate server (default: shomei-cert.toml, else the portal's host on port 8444).
    #[arg(long)]
    pub cert_server: Option<String>,
    /// The bank's root certificate, PEM (default: shomei-cert.toml).
    #[arg(long)]
    pub root_ca: Option<PathBuf>,
    /// Configuration file (default: ./shomei-cert.toml, then next to the app,
    /// then /etc/shomei-cert/shomei-cert.toml of the system-wide package).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    /// The bank's name, as the Windows store's friendly name shows it.
    bank_name: Option<String>,
    server: Option<String>,
    cert_server: Option<String>,
    root_ca: Option<PathBuf>,
}

/// The servers and the root certificate, from flags, then the config file.
#[derive(Clone)]
pub struct Target {
    /// The bank's name (else the portal's host), for the store's labels.
    pub bank: String,
    pub server: String,
    pub cert_server: String,
    pub root_pem: Vec<u8>,
}

/// The configuration file: given, else in the current folder, else beside
/// the app (the download and the per-user setup), else the system-wide
/// package's.
pub fn config_path(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_owned());
    }
    let here = PathBuf::from("shomei-cert.toml");
    let beside = std::env::current_exe()
        .ok()
        .map(|e| e.with_file_name("shomei-cert.toml"));
    let system = Path::new(crate::install::SYSTEM_CONFIG_DIR).join("shomei-cert.toml");
    std::iter::once(here)
        .chain(beside)
        .chain(std::iter::once(system))
        .find(|p| p.is_file())
}

pub fn target(conn: &Conn) -> Result<Target, Fail> {
    let path = config_path(conn.config.as_deref());
    // The Windows setup carries its bank inside the .exe (bundle.rs).
    let bundled = match path {
        None => crate::bundle::of_current_exe(),
        Some(_) => None,
    };
    let cfg: ConfigFile = match &path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| Fail::Usage(text::config_problem(&format!("{}: {e}", p.display()))))?;
            toml::from_str(&text).map_err(|e| {
                Fail::Usage(text::config_problem(&format!(
                    "{}: {}",
                    p.display(),
                    e.message()
                )))
            })?
        }
        None => match &bundled {
            Some((toml, _)) => toml::from_str(toml).map_err(|e| {
                Fail::Usage(text::config_problem(&format!(
                    "the configuration in the app: {}",
                    e.message()
                )))
            })?,
            None => ConfigFile::default(),
        },
    };
    let base = path
        .as_ref()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let server = conn.server.clone().or(cfg.server).ok_or_else(|| {
        Fail::Usage(text::config_problem(
            "no bank server: give --server https://HOST:PORT or a shomei-cert.toml",
        ))
    })?;
    let server = server.trim_end_matches('/').to_owned();
    if !server.starts_with("https://") {
        return Err(Fail::Usage(text::config_problem(&format!(
            "the server must be an https:// URL, got {server}"
        ))));
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
    let root_pem = match (conn.root_ca.clone(), bundled) {
        (None, Some((_, pem))) => pem,
        (root, _) => {
            let root = root
                .or_else(|| cfg.root_ca.map(|r| if r.is_absolute() { r } else { base.join(r) }))
                .ok_or_else(|| {
                    Fail::Usage(text::config_problem(
                        "the bank's root certificate is needed: --root-ca FILE or root_ca in shomei-cert.toml",
                    ))
                })?;
            std::fs::read(&root).map_err(|e| {
                Fail::Usage(text::config_problem(&format!("{}: {e}", root.display())))
            })?
        }
    };
    let bank = cfg
        .bank_name
        .filter(|b| !b.trim().is_empty())
        .unwrap_or_else(|| {
            server
                .trim_start_matches("https://")
                .split(['/', ':'])
                .next()
                .unwrap_or("")
                .to_owned()
        });
    Ok(Target {
        bank,
        server,
        cert_server,
        root_pem,
    })
}

/// Whether a bank's configuration and root certificate are fit to ride in
/// the Windows setup: the configuration parses and names an https server,
/// the root is a PEM certificate.
pub fn check_bundle(toml: &str, root_pem: &[u8]) -> Result<(), Fail> {
    let cfg: ConfigFile =
        toml::from_str(toml).map_err(|e| Fail::Usage(text::config_problem(e.message())))?;
    if !cfg.server.is_some_and(|s| s.starts_with("https://")) {
        return Err(Fail::Usage(text::config_problem(
            "the configuration names no https:// server",
        )));
    }
    if reqwest::Certificate::from_pem(root_pem).is_err()
        || !root_pem.starts_with(b"-----BEGIN CERTIFICATE-----")
    {
        return Err(Fail::Usage(text::config_problem(
            "the root certificate is not a PEM certificate",
        )));
    }
    Ok(())
}

/// A login ID as the bank gives them: half-width letters and digits.
pub fn check_login_id(login_id: &str) -> Result<(), Fail> {
    let ok = !login_id.is_empty()
        && login_id.len() <= 64
        && login_id.chars().all(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(Fail::Usage(text::BAD_LOGIN_ID.into()))
    }
}

pub fn generate(kind: KeyType) -> Result<KeyPair, Fail> {
    let k = match kind {
        KeyType::P256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        KeyType::P384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        KeyType::Rsa2048 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048),
        KeyType::Rsa3072 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_3072),
        KeyType::Rsa4096 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_4096),
    };
    k.map_err(|e| Fail::Local(text::local_problem(&format!("key generation: {e}"))))
}

pub fn csr(key: &KeyPair, login_id: &str) -> Result<Vec<u8>, Fail> {
    let mut p = CertificateParams::new(Vec::<String>::new())
        .map_err(|e| Fail::Local(text::local_problem(&e.to_string())))?;
    p.distinguished_name.push(DnType::CommonName, login_id);
    Ok(p.serialize_request(key)
        .map_err(|e| Fail::Local(text::local_problem(&format!("the request: {e}"))))?
        .der()
        .to_vec())
}

/// What a certificate says, for the screen.
pub struct CertInfo {
    pub subject: String,
    pub cn: String,
    pub issuer_raw: Vec<u8>,
    pub serial_hex: String,
    pub not_before: String,
    pub not_after: String,
    /// The expiry as the guide writes it: 2010年10月20日 08時59分59秒 (JST).
    pub not_after_ja: String,
    pub expired: bool,
    pub spki: Vec<u8>,
    pub key_type: Option<KeyType>,
}

/// A time as the bank's screens show it, in Japan time.
pub fn jst(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::macros::offset!(+9));
    t.format(time::macros::format_description!(
        "[year]年[month]月[day]日 [hour]時[minute]分[second]秒"
    ))
    .unwrap_or_else(|_| t.to_string())
}

pub fn info(der: &[u8]) -> Result<CertInfo, Fail> {
    let (_, c) = x509_parser::parse_x509_certificate(der)
        .map_err(|_| Fail::Network(text::server_error("certificate", "not a certificate")))?;
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
    let not_after = c.validity().not_after.to_datetime();
    Ok(CertInfo {
        subject: c.subject().to_string(),
        cn,
        issuer_raw: c.issuer().as_raw().to_vec(),
        serial_hex: serial.iter().map(|b| format!("{b:02x}")).collect(),
        not_before: c.validity().not_before.to_string(),
        not_after: c.validity().not_after.to_string(),
        not_after_ja: jst(not_after),
        expired: not_after < time::OffsetDateTime::now_utc(),
        spki: pk.raw.to_vec(),
        key_type,
    })
}

/// The subject of a CA certificate, raw, to recognise what it issued.
pub fn subject_raw(der: &[u8]) -> Option<Vec<u8>> {
    let (_, c) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(c.subject().as_raw().to_vec())
}

pub fn pem(label: &str, der: &[u8]) -> String {
    shomei_pki::to_pem(label, der)
}

/// A key made here and the certificate the bank issued for it.
pub struct Obtained {
    pub key: KeyPair,
    pub cert: Vec<u8>,
    pub chain: Vec<Vec<u8>>,
    pub info: CertInfo,
}

fn matches(key: KeyPair, cert: Vec<u8>, chain: Vec<Vec<u8>>) -> Result<Obtained, Fail> {
    let info = info(&cert)?;
    if info.spki != rcgen::PublicKeyData::subject_public_key_info(&key) {
        return Err(Fail::Network(text::server_error(
            "certificate",
            "the certificate the server sent is not for the key made here",
        )));
    }
    Ok(Obtained {
        key,
        cert,
        chain,
        info,
    })
}

/// 電子証明書発行: a new key, and its certificate for login ID + password.
pub async fn obtain(
    t: &Target,
    login_id: &str,
    password: &str,
    kind: KeyType,
) -> Result<Obtained, Fail> {
    check_login_id(login_id)?;
    let key = generate(kind)?;
    let request = csr(&key, login_id)?;
    let est = est::Est::new(&t.root_pem, None)?;
    let cert = est
        .simpleenroll(&t.server, login_id, password, &request)
        .await?;
    let chain = est.cacerts(&t.server).await?;
    matches(key, cert, chain)
}

/// The current key, for renewal: its PKCS#8 (kept by `keep.rs`), or a key
/// that signs in the store that keeps it.
pub enum CurrentKey<'a> {
    Pkcs8(&'a [u8]),
    InStore(crate::store::Signer),
}

/// 電子証明書更新: a new key of the same kind, authenticated by the current
/// certificate and key.
pub async fn reobtain(t: &Target, current: CurrentKey<'_>, cert: &[u8]) -> Result<Obtained, Fail> {
    let i = info(cert)?;
    let kind = i.key_type.ok_or(Fail::Local(text::local_problem(
        "the current key is of a kind this app does not renew",
    )))?;
    let key = generate(kind)?;
    let request = csr(&key, &i.cn)?;
    let est = match current {
        CurrentKey::Pkcs8(key_pkcs8) => {
            let identity = format!(
                "{}{}",
                pem("CERTIFICATE", cert),
                pem("PRIVATE KEY", key_pkcs8)
            );
            est::Est::new(&t.root_pem, Some(identity.as_bytes()))?
        }
        CurrentKey::InStore(signer) => est::Est::with_signer(&t.root_pem, cert, signer)?,
    };
    let new = est.simplereenroll(&t.cert_server, &request).await?;
    let chain = est::Est::new(&t.root_pem, None)?.cacerts(&t.server).await?;
    matches(key, new, chain)
}

/// Runs one of the above on a small runtime of its own (the window's
/// worker thread and the command line both block on it).
pub fn block_on<T>(f: impl std::future::Future<Output = Result<T, Fail>>) -> Result<T, Fail> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Fail::Local(text::local_problem(&e.to_string())))?
        .block_on(f)
}
