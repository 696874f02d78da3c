//! `shomei`: the bank's server and its operator CLI.
#![forbid(unsafe_code)]

mod approval_cli;
mod operator_cli;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use shomei_core::LoginId;
use shomei_service::{
    Applied, ApprovalChange, DEMO_CONFIRM_PASSWORD, DEMO_LOGIN_PASSWORD, DEMO_P12_PASSWORD,
    DemoUser, Settings, Shomei, SystemClock,
};

#[derive(Parser)]
#[command(
    name = "shomei",
    version,
    about = "Shomei: business internet-banking portal with client-certificate login",
    after_help = "The dangerous changes (opening or closing a company, registering a マスター, resetting a マスター's passwords, adding an operator or changing their roles, changing the approval rules) are submitted for four-eyes approval: operators approve them in the operator console, never on this shell (whoever holds the shell could pose as any operator). --break-glass --reason \"…\" commits one at once, with a prominent 操作履歴 row and a mail to every 運用管理者.\n\nExit status: 0 done or submitted; 1 refused or failed (nothing changed); 2 usage error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct Common {
    /// Data directory (database, CA, server certificate).
    #[arg(long, env = "SHOMEI_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Configuration file (see shomei.example.toml).
    #[arg(long, env = "SHOMEI_CONFIG")]
    config: Option<PathBuf>,
    /// PostgreSQL database shared by several nodes, as
    /// postgres://USER:PASSWORD@HOST:PORT/DB; without it, SQLite in the
    /// data directory.
    #[arg(long, env = "SHOMEI_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the portal over HTTPS.
    Serve(ServeArgs),
    /// Certificate tasks of the bank operator.
    Cert {
        #[command(subcommand)]
        command: CertCommand,
    },
    /// CRL tasks of the bank operator.
    Crl {
        #[command(subcommand)]
        command: CrlCommand,
    },
    /// Company tasks of the bank operator.
    Company {
        #[command(subcommand)]
        command: CompanyCommand,
    },
    /// User tasks of the bank operator.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// The operators of the operator console.
    Operator {
        #[command(subcommand)]
        command: operator_cli::OperatorCommand,
    },
    /// Four-eyes approval requests: list and show the queue, change a rule
    /// (approving and rejecting are done in the operator console only).
    Approval {
        #[command(subcommand)]
        command: approval_cli::ApprovalCommand,
    },
    /// 操作履歴 tasks.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Copy the data directory (the database, consistently, while the
    /// server runs, and the CA's files) into a new directory, and check the
    /// copy. The copy is itself a data directory: to restore, stop the
    /// server and start it with --data-dir on the copy.
    Backup {
        #[command(flatten)]
        common: Common,
        /// A directory that does not exist yet (or is empty).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum CertCommand {
    /// Print a user's most recent certificate (PEM) and its state.
    Show {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        login_id: String,
    },
    /// Revoke a user's certificate on a phone request. A running server puts
    /// it in force within a second (TLS, sessions, OCSP, then the CRLs).
    Revoke {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        login_id: String,
        /// key-compromise, affiliation-changed, superseded,
        /// cessation-of-operation or unspecified.
        #[arg(long)]
        reason: String,
        /// When the key was (suspected to be) compromised, RFC 3339, e.g.
        /// 2026-11-20T09:00:00+09:00; listed in the CRL entry.
        #[arg(long)]
        invalidity_date: Option<String>,
        /// Who takes the request (written to 操作履歴). Default: $USER.
        #[arg(long)]
        operator: Option<String>,
        /// When the bank's approval rule for a revocation on a company's
        /// behalf (revoke-for-company) asks for approvals, the revocation is
        /// submitted for them in the operator console; this commits it at
        /// once instead, in an emergency only: a prominent 緊急実行（承認省略）
        /// row with --break-glass-reason and a mail to every 運用管理者.
        #[arg(long)]
        break_glass: bool,
        /// Why the revocation cannot wait for approval (with --break-glass;
        /// 1-200 characters). Not --reason: that is the CRL reason here.
        #[arg(long)]
        break_glass_reason: Option<String>,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    #[command(flatten)]
    common: Common,
    /// Create the guide's demo companies and users on first start.
    #[arg(long)]
    demo: bool,
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, env = "SHOMEI_LISTEN")]
    listen: Option<SocketAddr>,
    /// Base URL customers use for the portal.
    #[arg(long, env = "SHOMEI_PUBLIC_URL")]
    public_url: Option<String>,
    /// Address of the certificate listener (client certificates required;
    /// 電子証明書方式 login and EST renewal). Default: the portal's IP,
    /// port 8444 (port 0 when the portal's port is 0).
    #[arg(long, env = "SHOMEI_CERT_LISTEN")]
    cert_listen: Option<SocketAddr>,
    /// Base URL of the certificate listener as customers reach it.
    #[arg(long, env = "SHOMEI_CERT_PUBLIC_URL")]
    cert_public_url: Option<String>,
    /// Address of the plain-HTTP PKI listener (CRLs, OCSP; what relying
    /// parties fetch). Default: the portal's IP, port 8480 (port 0 when the
    /// portal's port is 0).
    #[arg(long, env = "SHOMEI_PKI_LISTEN")]
    pki_listen: Option<SocketAddr>,
    /// Base URL of the PKI listener; written into every certificate (CRL
    /// distribution point, Freshest CRL, OCSP). Default: http://HOST:PORT.
    #[arg(long, env = "SHOMEI_PKI_PUBLIC_URL")]
    pki_public_url: Option<String>,
    /// Address of the metrics listener (plain HTTP, GET /metrics in
    /// Prometheus text format). Default: 127.0.0.1:9464, loopback only
    /// whatever the portal binds (port 0 when the portal's port is 0).
    #[arg(long, env = "SHOMEI_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Address of the operator console (HTTPS, operator certificates
    /// required). Default: 127.0.0.1:8445, loopback only whatever the portal
    /// binds (port 0 when the portal's port is 0); put it on the bank's
    /// internal network only.
    #[arg(long, env = "SHOMEI_OPERATOR_LISTEN")]
    operator_listen: Option<SocketAddr>,
}

#[derive(Subcommand)]
enum CrlCommand {
    /// Build the current full CRL from the database and write it (DER), e.g.
    /// for an offline distribution point.
    Export {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain of the whole 操作履歴.
    Verify {
        #[command(flatten)]
        common: Common,
    },
    /// Write the 操作履歴 (oldest first) as CSV, or JSON lines with --json.
    Export {
        #[command(flatten)]
        common: Common,
        /// Only this company's rows (see `shomei company list`).
        #[arg(long)]
        company_id: Option<i64>,
        /// Default: standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum CompanyCommand {
    /// The companies, with their service and number of users.
    List {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        json: bool,
    },
    /// Open a company contracted to a service, with its first マスター:
    /// submitted for approval in the operator console (or --break-glass,
    /// which prints the マスター's temporary passwords).
    Create {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        name: String,
        /// business-ib (ビジネスIB) or hottokun-webjr (ほっと君WebJr.).
        #[arg(long)]
        service: String,
        /// The first マスター's login ID.
        #[arg(long)]
        master_login_id: String,
        /// The first マスター's name.
        #[arg(long)]
        master_name: String,
        #[arg(long, default_value = "")]
        master_email: String,
        #[command(flatten)]
        op: Operator,
        #[command(flatten)]
        approval: approval_cli::Approval,
        #[arg(long)]
        json: bool,
    },
    /// Close a company (解約): all its users stopped, all its certificates
    /// revoked; submitted for approval in the operator console (or
    /// --break-glass).
    Close {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        id: i64,
        #[command(flatten)]
        op: Operator,
        #[command(flatten)]
        approval: approval_cli::Approval,
    },
    /// A company and its users.
    Show {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Change a company's contracted service.
    SetService {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        id: i64,
        #[arg(long)]
        service: String,
        #[command(flatten)]
        op: Operator,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Register a マスター user for a company that has none left: submitted
    /// for approval in the operator console (the approver gets the temporary
    /// passwords), or --break-glass, which prints them.
    CreateMaster {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        company_id: i64,
        #[arg(long)]
        login_id: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        email: String,
        #[command(flatten)]
        op: Operator,
        #[command(flatten)]
        approval: approval_cli::Approval,
        #[arg(long)]
        json: bool,
    },
    /// Release a user's password locks and stop (e.g. a locked-out マスター).
    Unlock {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        login_id: String,
        #[command(flatten)]
        op: Operator,
    },
    /// New temporary login and confirmation passwords, to be changed at the
    /// next login. A マスター's are submitted for approval in the operator
    /// console (the approver gets them), or --break-glass.
    ResetPassword {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        login_id: String,
        #[command(flatten)]
        op: Operator,
        #[command(flatten)]
        approval: approval_cli::Approval,
        #[arg(long)]
        json: bool,
    },
}

/// Who takes the request, for 操作履歴.
#[derive(clap::Args)]
struct Operator {
    /// Who takes the request (written to 操作履歴). Default: $USER.
    #[arg(long)]
    operator: Option<String>,
}

impl Operator {
    fn name(&self) -> String {
        self.operator
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .filter(|o| !o.trim().is_empty())
            .unwrap_or_else(|| "operator".into())
    }
}

/// The configuration file.
#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct ConfigFile {
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    listen: Option<SocketAddr>,
    public_url: Option<String>,
    cert_listen: Option<SocketAddr>,
    cert_public_url: Option<String>,
    pki_listen: Option<SocketAddr>,
    pki_public_url: Option<String>,
    metrics_listen: Option<SocketAddr>,
    operator_listen: Option<SocketAddr>,
    settings: Settings,
}

fn load_config(path: Option<&Path>) -> Result<ConfigFile> {
    let Some(path) = path else {
        return Ok(ConfigFile::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let cfg: ConfigFile =
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))?;
    cfg.settings
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid config file {}: {e}", path.display()))?;
    Ok(cfg)
}

/// The config file, with the database URL from `--database-url` (or
/// `SHOMEI_DATABASE_URL`, or the file's `database_url`) checked and set in
/// its settings: every command opens the store through them.
fn load(common: &Common) -> Result<ConfigFile> {
    let mut cfg = load_config(common.config.as_deref())?;
    if let Some(url) = common
        .database_url
        .as_deref()
        .or(cfg.database_url.as_deref())
    {
        cfg.settings.database_url = Some(shomei_store::DatabaseUrl::parse(url)?);
    }
    Ok(cfg)
}

/// Refuses an operator command where there is no Shomei data (it never
/// creates any): with SQLite, no `shomei.db` in the data directory; with
/// PostgreSQL, no CA in it when the command needs the CA.
fn require_data(dir: &Path, cfg: &ConfigFile, needs_ca: bool) -> Result<()> {
    let missing = match cfg.settings.database_url {
        None => !dir.join("shomei.db").exists(),
        Some(_) => needs_ca && !dir.join("ca").exists(),
    };
    if missing {
        bail!(
            "no Shomei data in {} (start the server once, or pass --data-dir)",
            dir.display()
        );
    }
    Ok(())
}

const DEFAULT_DATA_DIR: &str = "./shomei-data";
const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
const DEFAULT_CERT_PORT: u16 = 8444;
const DEFAULT_METRICS_PORT: u16 = 9464;
const DEFAULT_OPERATOR_PORT: u16 = 8445;
const DEFAULT_PKI_PORT: u16 = 8480;

fn data_dir(common: &Common, cfg: &ConfigFile) -> PathBuf {
    common
        .data_dir
        .clone()
        .or_else(|| cfg.data_dir.clone())
        .unwrap_or_else(|| DEFAULT_DATA_DIR.into())
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Cert {
            command: CertCommand::Show { common, login_id },
        } => cert_show(common, &login_id).await,
        Command::Cert {
            command:
                CertCommand::Revoke {
                    common,
                    login_id,
                    reason,
                    invalidity_date,
                    operator,
                    break_glass,
                    break_glass_reason,
                },
        } => {
            let approval = approval_cli::Approval {
                break_glass,
                reason: break_glass_reason,
            };
            cert_revoke(
                common,
                &login_id,
                &reason,
                invalidity_date.as_deref(),
                Operator { operator },
                approval,
            )
            .await
        }
        Command::Audit {
            command: AuditCommand::Verify { common },
        } => audit_verify(common).await,
        Command::Crl {
            command: CrlCommand::Export { common, out },
        } => crl_export(common, out).await,
        Command::Backup { common, out } => backup(common, out).await,
        Command::Audit {
            command:
                AuditCommand::Export {
                    common,
                    company_id,
                    out,
                    json,
                },
        } => audit_export(common, company_id, out, json).await,
        Command::Company {
            command: CompanyCommand::List { common, json },
        } => company_list(common, json).await,
        Command::Company { command } => company_task(command).await,
        Command::User { command } => user_task(command).await,
        Command::Operator { command } => operator_cli::operator_task(command).await,
        Command::Approval { command } => approval_cli::approval_task(command).await,
    };
    if let Err(e) = r {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn open(
    common: &Common,
    cfg: &ConfigFile,
    public_url: &str,
    pki_url: &str,
) -> Result<Shomei> {
    let dir = data_dir(common, cfg);
    Shomei::open_with_pki(
        &dir,
        public_url,
        pki_url,
        cfg.settings.clone(),
        Arc::new(SystemClock),
    )
    .await
    .with_context(|| format!("cannot open data directory {}", dir.display()))
}

/// Opens an existing data directory for an operator command; never creates one.
async fn open_existing(common: &Common, cfg: &ConfigFile) -> Result<Shomei> {
    let dir = data_dir(common, cfg);
    require_data(&dir, cfg, true)?;
    let public_url = cfg
        .public_url
        .clone()
        .unwrap_or_else(|| "https://localhost:8443".into());
    Shomei::open_for_operator(
        &dir,
        &public_url,
        cfg.settings.clone(),
        Arc::new(SystemClock),
    )
    .await
    .with_context(|| format!("cannot open data directory {}", dir.display()))
}

/// A listener's default address: the portal's IP with `port`, or port 0
/// (a free one) when the portal's port is 0.
fn beside(portal: SocketAddr, port: u16) -> SocketAddr {
    SocketAddr::new(portal.ip(), if portal.port() == 0 { 0 } else { port })
}

async fn serve(args: ServeArgs) -> Result<()> {
    let ServeArgs {
        common,
        demo,
        listen,
        public_url,
        cert_listen,
        cert_public_url,
        pki_listen,
        pki_public_url,
        metrics_listen,
        operator_listen,
    } = args;
    shomei_web::raise_open_files_limit();
    let cfg = load(&common)?;
    let listen = match listen.or(cfg.listen) {
        Some(l) => l,
        None => DEFAULT_LISTEN.parse()?,
    };
    let listener = shomei_web::bind(listen).await?;
    let addr = listener.local_addr()?;
    let cert_listen = cert_listen
        .or(cfg.cert_listen)
        .unwrap_or_else(|| beside(listen, DEFAULT_CERT_PORT));
    let cert_listener = shomei_web::bind(cert_listen).await?;
    let cert_addr = cert_listener.local_addr()?;
    let pki_listen = pki_listen
        .or(cfg.pki_listen)
        .unwrap_or_else(|| beside(listen, DEFAULT_PKI_PORT));
    let pki_listener = shomei_web::bind(pki_listen).await?;
    let pki_addr = pki_listener.local_addr()?;
    let metrics_listen = metrics_listen.or(cfg.metrics_listen).unwrap_or_else(|| {
        beside(
            SocketAddr::from(([127, 0, 0, 1], listen.port())),
            DEFAULT_METRICS_PORT,
        )
    });
    let metrics_listener = shomei_web::bind(metrics_listen).await?;
    let metrics_addr = metrics_listener.local_addr()?;
    let operator_listen = operator_listen.or(cfg.operator_listen).unwrap_or_else(|| {
        beside(
            SocketAddr::from(([127, 0, 0, 1], listen.port())),
            DEFAULT_OPERATOR_PORT,
        )
    });
    let operator_listener = shomei_web::bind(operator_listen).await?;
    let operator_addr = operator_listener.local_addr()?;
    let host = if addr.ip().is_loopback() || addr.ip().is_unspecified() {
        "localhost".to_string()
    } else {
        addr.ip().to_string()
    };
    let public_url = public_url
        .or(cfg.public_url.clone())
        .unwrap_or_else(|| format!("https://{host}:{}", addr.port()));
    let public_host = public_url
        .strip_prefix("https://")
        .map(|r| r.split(['/', ':']).next().unwrap_or("").to_string())
        .filter(|h| !h.is_empty());
    let Some(public_host) = public_host else {
        bail!("--public-url must start with https:// and name a host, got {public_url}")
    };

    let pki_public_url = pki_public_url
        .or(cfg.pki_public_url.clone())
        .unwrap_or_else(|| format!("http://{public_host}:{}", pki_addr.port()));
    let svc = Arc::new(open(&common, &cfg, &public_url, &pki_public_url).await?);
    let demo_users = if demo {
        let users = svc.seed_demo().await?;
        write_demo_certs(&svc, &data_dir(&common, &cfg), &users)?;
        Some(users)
    } else {
        None
    };
    let cert_public_url = cert_public_url
        .or(cfg.cert_public_url.clone())
        .unwrap_or_else(|| format!("https://{public_host}:{}", cert_addr.port()));
    let server = shomei_web::start_all(
        svc.clone(),
        listener,
        shomei_web::Listeners {
            cert: Some(cert_listener),
            pki: Some(pki_listener),
            metrics: Some(metrics_listener),
            operator: Some(operator_listener),
        },
        shomei_web::ServerOptions {
            listen: addr,
            extra_names: vec![public_host],
            cert_public_url: Some(cert_public_url.clone()),
        },
    )
    .await?;

    println!(
        "Shomei is running: {public_url}/login  (listening on {})",
        server.addr
    );
    println!(
        "Certificate login and EST renewal: {cert_public_url}/cert-login  (listening on {cert_addr})"
    );
    let partitions = svc.ca().endpoints().crl_partitions();
    let crls = if partitions == 0 {
        format!("{pki_public_url}/pki/crl")
    } else {
        format!("{pki_public_url}/pki/crl/0..{}", partitions - 1)
    };
    println!(
        "CRL and OCSP (plain HTTP, written into certificates): {crls}  {pki_public_url}/pki/ocsp  (listening on {pki_addr})"
    );
    println!("Every CRL in one PEM file (nginx ssl_crl): {pki_public_url}/pki/crls.pem");
    println!("Metrics (Prometheus): http://{metrics_addr}/metrics");
    println!(
        "Operator console (operator certificates only; internal network only): https://localhost:{}/  (listening on {operator_addr})",
        operator_addr.port()
    );
    println!("Issuing CA key: {}", svc.ca().describe_issuing_key());
    println!(
        "Trust this root certificate in your browser or client: {}",
        svc.ca().root_cert_path().display()
    );
    if let Some(users) = demo_users {
        println!(
            "Demo users (login password {DEMO_LOGIN_PASSWORD}, confirmation password {DEMO_CONFIRM_PASSWORD}):"
        );
        println!(
            "Their certificates with keys (PKCS#12, password {DEMO_P12_PASSWORD}): {}",
            data_dir(&common, &cfg).join("demo-certs").display()
        );
        println!(
            "  {}{}{}{}company",
            pad("login ID", 12),
            pad("name", 14),
            pad("role", 16),
            pad("cert", 14)
        );
        for u in users {
            println!(
                "  {}{}{}{}{}",
                pad(u.login_id, 12),
                pad(u.name, 14),
                pad(u.role.label(), 16),
                pad(u.cert, 14),
                u.company
            );
        }
    }
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate() => {}
    }
    println!("Shutting down.");
    server.shutdown().await;
    Ok(())
}

/// The demo users' certificates with their keys, as PKCS#12 files a
/// browser or `shomei-cert renew` can use (first start only).
fn write_demo_certs(svc: &Shomei, dir: &Path, users: &[DemoUser]) -> Result<()> {
    let out = dir.join("demo-certs");
    let ca = svc.ca();
    let chain = [ca.issuing_der().to_vec(), ca.root_der().to_vec()];
    for u in users {
        let Some((key, cert)) = &u.key_and_cert else {
            continue;
        };
        std::fs::create_dir_all(&out)
            .with_context(|| format!("cannot create {}", out.display()))?;
        let name = format!("Shomei {}", u.login_id);
        let p12 = shomei_pki::pkcs12::write(key, cert, &chain, &name, DEMO_P12_PASSWORD)?;
        let path = out.join(format!("{}.p12", u.login_id));
        let mut opts = std::fs::OpenOptions::new();
        std::os::unix::fs::OpenOptionsExt::mode(
            opts.write(true).create(true).truncate(true),
            0o600,
        );
        std::io::Write::write_all(&mut opts.open(&path)?, &p12)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// `s` padded to `width` terminal columns (full-width characters take two).
fn pad(s: &str, width: usize) -> String {
    let used: usize = s.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum();
    format!("{s}{}", " ".repeat(width.saturating_sub(used).max(1)))
}

async fn terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

async fn cert_show(common: Common, login_id: &str) -> Result<()> {
    let cfg = load(&common)?;
    let svc = open_existing(&common, &cfg).await?;
    let Some(id) = LoginId::parse(login_id) else {
        bail!("invalid login ID {login_id:?}: half-width letters and digits only")
    };
    let (serial, state, not_after, der) = match svc.certificate_of(&id).await? {
        shomei_service::CertificateOf::NoSuchUser => bail!("no user with login ID {login_id}"),
        shomei_service::CertificateOf::NoCertificate => {
            bail!("user {login_id} has no certificate (未発行)")
        }
        shomei_service::CertificateOf::Latest {
            serial,
            state,
            not_after,
            der,
        } => (serial, state, not_after, der),
    };
    eprintln!(
        "login ID {login_id}: serial {serial} state {} not after {not_after}",
        state.label(),
    );
    print!("{}", shomei_pki::to_pem("CERTIFICATE", &der));
    Ok(())
}

async fn cert_revoke(
    common: Common,
    login_id: &str,
    reason: &str,
    invalidity_date: Option<&str>,
    op: Operator,
    approval: approval_cli::Approval,
) -> Result<()> {
    use shomei_core::RevocationReason as R;
    let reason = match reason {
        "key-compromise" => R::KeyCompromise,
        "affiliation-changed" => R::AffiliationChanged,
        "superseded" => R::Superseded,
        "cessation-of-operation" => R::CessationOfOperation,
        "unspecified" => R::Unspecified,
        other => bail!(
            "unknown reason {other:?}: use key-compromise, affiliation-changed, superseded, cessation-of-operation or unspecified"
        ),
    };
    let invalidity = invalidity_date
        .map(|d| {
            time::OffsetDateTime::parse(d, &time::format_description::well_known::Rfc3339)
                .with_context(|| format!("invalid --invalidity-date {d:?}: use RFC 3339, e.g. 2026-11-20T09:00:00+09:00"))
        })
        .transpose()?;
    let Some(id) = LoginId::parse(login_id) else {
        bail!("invalid login ID {login_id:?}: half-width letters and digits only")
    };
    if approval.reason.is_some() && !approval.break_glass {
        bail!("--break-glass-reason goes with --break-glass");
    }
    let cfg = load(&common)?;
    let svc = open_existing(&common, &cfg).await?;
    let request = shomei_service::PhoneRequest {
        reason,
        invalidity,
        caller: "",
    };
    let done = if approval.break_glass {
        // Only where the rule holds the revocation for approval.
        let rules = svc.approval_rules().await?;
        if rules
            .iter()
            .any(|r| r.kind == shomei_service::ApprovalKind::RevokeForCompany && r.required == 0)
        {
            bail!(
                "--break-glass is for a revocation the bank's approval rule holds for approval; this bank's rule (revoke-for-company) asks for none: run it without --break-glass"
            );
        }
        None
    } else {
        match svc
            .revoke_by_operator(&id, reason, invalidity, &op.name())
            .await
        {
            Ok(done) => Some(done),
            Err(shomei_service::OperatorRevokeError::NeedsApproval { required }) => {
                eprintln!(
                    "not revoked at once: this bank's rule (revoke-for-company) asks {required} other operator(s) to approve a revocation on a company's behalf"
                );
                None
            }
            Err(e) => bail!("not revoked: {e}"),
        }
    };
    let Some(done) = done else {
        // Submitted for approval, or committed as break-glass.
        let change = svc
            .phone_revocation_change(&id, &request)
            .await
            .map_err(|e| anyhow::anyhow!("not revoked: {e}"))?;
        approval.run(&svc, change, &op).await?.print(|a| {
            if let Applied::CertificateRevoked {
                company,
                login_id,
                serial,
            } = a
            {
                println!("revoked: {login_id} ({company}) serial {serial}");
            }
        });
        return Ok(());
    };
    println!(
        "revoked: {} ({}) serial {} at {}",
        done.login_id,
        done.company,
        done.serial,
        done.at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    );
    Ok(())
}

/// The service on an existing data directory, for an operator command.
async fn open_cli(common: &Common) -> Result<Shomei> {
    let cfg = load(common)?;
    open_existing(common, &cfg).await
}

/// Opens the database of an existing data directory, and nothing else (no
/// CA, no revocation set): for read-only operator commands.
async fn open_records(common: &Common) -> Result<shomei_service::Records> {
    let cfg = load(common)?;
    let dir = data_dir(common, &cfg);
    require_data(&dir, &cfg, false)?;
    let store = shomei_service::Records::open(&cfg.settings, &dir).await;
    match &cfg.settings.database_url {
        Some(url) => store.with_context(|| format!("cannot open the database {url}")),
        None => store.with_context(|| format!("cannot open the database in {}", dir.display())),
    }
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

async fn company_list(common: Common, json: bool) -> Result<()> {
    let records = open_records(&common).await?;
    let companies = records.companies().await?;
    if json {
        for c in &companies {
            println!(
                "{}",
                serde_json::json!({
                    "id": c.id.0,
                    "name": c.name,
                    "service": c.service.code(),
                    "users": c.users,
                    "created_at": rfc3339(c.created_at),
                })
            );
        }
        return Ok(());
    }
    println!(
        "{}{}{}{}created",
        pad("id", 6),
        pad("company", 28),
        pad("service", 18),
        pad("users", 7)
    );
    for c in &companies {
        println!(
            "{}{}{}{}{}",
            pad(&c.id.0.to_string(), 6),
            pad(&c.name, 28),
            pad(c.service.label(), 18),
            pad(&c.users.to_string(), 7),
            rfc3339(c.created_at)
        );
    }
    Ok(())
}

fn service_of(s: &str) -> Result<shomei_core::Service> {
    match s {
        "business-ib" | "business_ib" => Ok(shomei_core::Service::BusinessIb),
        "hottokun-webjr" | "hottokun_webjr" => Ok(shomei_core::Service::HottokunWebJr),
        other => bail!("unknown service {other:?}: use business-ib or hottokun-webjr"),
    }
}

fn login_id_of(s: &str) -> Result<LoginId> {
    LoginId::parse(s).ok_or_else(|| {
        anyhow::anyhow!("invalid login ID {s:?}: half-width letters and digits only")
    })
}

async fn company_task(command: CompanyCommand) -> Result<()> {
    match command {
        CompanyCommand::List { common, json } => company_list(common, json).await,
        CompanyCommand::Create {
            common,
            name,
            service,
            master_login_id,
            master_name,
            master_email,
            op,
            approval,
            json,
        } => {
            let service = service_of(&service)?;
            let svc = open_cli(&common).await?;
            let change = ApprovalChange::OpenCompany {
                company: name.trim().to_owned(),
                service: service.code().to_owned(),
                login_id: master_login_id,
                name: master_name,
                email: master_email,
            };
            approval.run(&svc, change, &op).await?.print(|a| {
                if let Applied::CompanyOpened {
                    company_id,
                    company,
                    login_id,
                    passwords,
                } = a
                {
                    if json {
                        println!(
                            "{}",
                            serde_json::json!({
                                "id": company_id.0,
                                "name": company,
                                "service": service.code(),
                                "login_id": login_id,
                                "login_password": passwords.login,
                                "confirm_password": passwords.confirm,
                            })
                        );
                    } else {
                        println!(
                            "company {} opened: {company} ({})",
                            company_id.0,
                            service.label()
                        );
                        print_passwords(login_id, passwords, false);
                    }
                }
            });
            Ok(())
        }
        CompanyCommand::Close {
            common,
            id,
            op,
            approval,
        } => {
            let svc = open_cli(&common).await?;
            let (c, _) = svc.operator_company(shomei_core::CompanyId(id)).await?;
            let change = ApprovalChange::CloseCompany {
                company_id: id,
                company: c.name,
            };
            approval.run(&svc, change, &op).await?.print(|a| {
                if let Applied::CompanyClosed {
                    users_stopped,
                    certificates_revoked,
                    ..
                } = a
                {
                    println!(
                        "company {id} closed: {users_stopped} user(s) stopped, {certificates_revoked} certificate(s) revoked"
                    );
                }
            });
            Ok(())
        }
        CompanyCommand::Show { common, id, json } => {
            let svc = open_cli(&common).await?;
            let (c, users) = svc.operator_company(shomei_core::CompanyId(id)).await?;
            let now = svc.now();
            let state = |u: &shomei_service::UserRow| {
                u.counters
                    .service_states(now)
                    .iter()
                    .map(|s| s.label())
                    .collect::<Vec<_>>()
                    .join("、")
            };
            if json {
                let users: Vec<_> = users
                    .iter()
                    .map(|u| {
                        serde_json::json!({
                            "login_id": u.login_id.as_str(),
                            "name": u.name,
                            "role": u.role.code(),
                            "email": u.email,
                            "state": state(u),
                        })
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({
                        "id": c.id.0, "name": c.name, "service": c.service.code(),
                        "created_at": rfc3339(c.created_at), "users": users,
                    })
                );
                return Ok(());
            }
            println!(
                "company {}: {} ({}), created {}",
                c.id.0,
                c.name,
                c.service.label(),
                rfc3339(c.created_at)
            );
            println!(
                "  {}{}{}state",
                pad("login ID", 14),
                pad("name", 16),
                pad("role", 16)
            );
            for u in &users {
                println!(
                    "  {}{}{}{}",
                    pad(u.login_id.as_str(), 14),
                    pad(&u.name, 16),
                    pad(u.role.label(), 16),
                    state(u)
                );
            }
            Ok(())
        }
        CompanyCommand::SetService {
            common,
            id,
            service,
            op,
        } => {
            let service = service_of(&service)?;
            let svc = open_cli(&common).await?;
            svc.operator_set_service(shomei_core::CompanyId(id), service, &op.name())
                .await?;
            println!("company {id} now contracts {}", service.label());
            Ok(())
        }
    }
}

fn print_passwords(login_id: &str, t: &shomei_service::TemporaryPasswords, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({ "login_id": login_id, "login_password": t.login, "confirm_password": t.confirm })
        );
    } else {
        println!(
            "{login_id}: temporary login password {}  confirmation password {}",
            t.login, t.confirm
        );
        println!("(both must be changed at the first login)");
    }
}

async fn user_task(command: UserCommand) -> Result<()> {
    match command {
        UserCommand::CreateMaster {
            common,
            company_id,
            login_id,
            name,
            email,
            op,
            approval,
            json,
        } => {
            let svc = open_cli(&common).await?;
            let (c, _) = svc
                .operator_company(shomei_core::CompanyId(company_id))
                .await?;
            let change = ApprovalChange::RegisterMaster {
                company_id,
                company: c.name,
                login_id,
                name,
                email,
            };
            approval.run(&svc, change, &op).await?.print(|a| {
                if let Applied::MasterRegistered {
                    login_id,
                    passwords,
                    ..
                } = a
                {
                    print_passwords(login_id, passwords, json);
                }
            });
            Ok(())
        }
        UserCommand::Unlock {
            common,
            login_id,
            op,
        } => {
            let id = login_id_of(&login_id)?;
            let svc = open_cli(&common).await?;
            svc.operator_unlock(&id, &op.name()).await?;
            println!("{login_id}: locks released");
            Ok(())
        }
        UserCommand::ResetPassword {
            common,
            login_id,
            op,
            approval,
            json,
        } => {
            let id = login_id_of(&login_id)?;
            let svc = open_cli(&common).await?;
            if let Some(change) = svc.master_reset_change(&id).await? {
                approval.run(&svc, change, &op).await?.print(|a| {
                    if let Applied::MasterPasswordsReset { done, .. } = a {
                        let t = shomei_service::TemporaryPasswords {
                            login: done.login.clone().unwrap_or_default(),
                            confirm: done.confirm.clone().unwrap_or_default(),
                        };
                        print_passwords(&done.login_id, &t, json);
                    }
                });
                return Ok(());
            }
            if approval.break_glass || approval.reason.is_some() {
                bail!(
                    "{login_id} is not a マスター: their passwords are reset at once, without --break-glass"
                );
            }
            let t = svc.operator_reset_passwords(&id, &op.name()).await?;
            print_passwords(&login_id, &t, json);
            Ok(())
        }
    }
}

async fn audit_export(
    common: Common,
    company_id: Option<i64>,
    out: Option<PathBuf>,
    json: bool,
) -> Result<()> {
    let records = open_records(&common).await?;
    let mut w: Box<dyn std::io::Write> = match &out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot write {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let format = if json {
        shomei_service::AuditExportFormat::JsonLines
    } else {
        shomei_service::AuditExportFormat::Csv
    };
    let n = records
        .export_audit(company_id.map(shomei_core::CompanyId), format, &mut w)
        .await?;
    if let Some(p) = out {
        eprintln!("{n} rows written to {}", p.display());
    }
    Ok(())
}

async fn crl_export(common: Common, out: PathBuf) -> Result<()> {
    let cfg = load(&common)?;
    let dir = data_dir(&common, &cfg);
    require_data(&dir, &cfg, true)?;
    let (number, der) =
        shomei_service::export_crl(&dir, &cfg.settings, time::OffsetDateTime::now_utc())
            .await
            .with_context(|| format!("cannot build the CRL from {}", dir.display()))?;
    std::fs::write(&out, &der).with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "CRL number {number} written to {} ({} bytes)",
        out.display(),
        der.len()
    );
    Ok(())
}

async fn audit_verify(common: Common) -> Result<()> {
    let check = open_records(&common).await?.verify_audit_chains().await?;
    match check.broken_at {
        None => {
            println!(
                "操作履歴 hash chain: OK ({} rows in {} chains)",
                check.rows, check.chains
            );
            Ok(())
        }
        Some(id) => bail!("操作履歴 hash chain broken at row {id}: edited, deleted or reordered"),
    }
}

/// `shomei backup` (see `shomei_service::backup`).
async fn backup(common: Common, out: PathBuf) -> Result<()> {
    let cfg = load(&common)?;
    let dir = data_dir(&common, &cfg);
    require_data(&dir, &cfg, false)?;
    let done = shomei_service::backup(&cfg.settings, &dir, &out).await?;
    print!("{}", done.manifest);
    println!(
        "backup written to {} in {:.1} s; to restore, stop the server and start it with --data-dir {}",
        out.display(),
        done.seconds,
        out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// shomei.example.toml documents the defaults: it must parse and say
    /// exactly what the code does when nothing is configured.
    #[test]
    fn the_example_config_is_the_defaults() {
        let cfg: ConfigFile = toml::from_str(include_str!("../shomei.example.toml")).unwrap();
        assert_eq!(cfg.settings, Settings::default());
        assert_eq!(cfg.data_dir, Some(PathBuf::from(DEFAULT_DATA_DIR)));
        assert_eq!(cfg.listen, Some(DEFAULT_LISTEN.parse().unwrap()));
        assert!(cfg.settings.validate().is_ok());
    }

    #[test]
    fn a_config_with_unknown_keys_or_bad_numbers_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        for bad in [
            "colour = 1",
            "[settings]\nlogin_stop_after = 1",
            "[settings]\nsession_idle_minutes = \"ten\"",
        ] {
            std::fs::write(&path, bad).unwrap();
            assert!(load_config(Some(&path)).is_err(), "{bad}");
        }
    }
}
