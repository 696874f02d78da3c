//! `shomei serve`: the portal and its listeners (certificate login and EST
//! renewal, CRLs and OCSP, metrics, the operator console), and with
//! `--demo` the guide's demo data on first start.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use shomei_service::{
    DEMO_CONFIRM_PASSWORD, DEMO_LOGIN_PASSWORD, DEMO_P12_PASSWORD, DemoUser, Shomei,
};

use super::{Common, data_dir, load, open, pad};

pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
const DEFAULT_CERT_PORT: u16 = 8444;
const DEFAULT_METRICS_PORT: u16 = 9464;
const DEFAULT_OPERATOR_PORT: u16 = 8445;
const DEFAULT_PKI_PORT: u16 = 8480;

#[derive(clap::Args)]
pub(crate) struct ServeArgs {
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

/// A listener's default address: the portal's IP with `port`, or port 0
/// (a free one) when the portal's port is 0.
fn beside(portal: SocketAddr, port: u16) -> SocketAddr {
    SocketAddr::new(portal.ip(), if portal.port() == 0 { 0 } else { port })
}

/// The host of the default public URL: `localhost` for a loopback or
/// unspecified address, else the address itself.
fn host_of(addr: SocketAddr) -> String {
    if addr.ip().is_loopback() || addr.ip().is_unspecified() {
        "localhost".to_string()
    } else {
        addr.ip().to_string()
    }
}

/// The host named by the public URL (what the server certificate must
/// cover); refused unless it is an https:// URL with a host.
fn public_host(public_url: &str) -> Result<String> {
    let host = public_url
        .strip_prefix("https://")
        .map(|r| r.split(['/', ':']).next().unwrap_or("").to_string())
        .filter(|h| !h.is_empty());
    let Some(host) = host else {
        bail!("--public-url must start with https:// and name a host, got {public_url}")
    };
    Ok(host)
}

/// A listener on `addr` and the address it got (the port picked for 0).
async fn bound(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = shomei_web::bind(addr).await?;
    let at = listener.local_addr()?;
    Ok((listener, at))
}

pub(crate) async fn serve(args: ServeArgs) -> Result<()> {
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
    let (listener, addr) = bound(listen).await?;
    let cert_listen = cert_listen
        .or(cfg.cert_listen)
        .unwrap_or_else(|| beside(listen, DEFAULT_CERT_PORT));
    let (cert_listener, cert_addr) = bound(cert_listen).await?;
    let pki_listen = pki_listen
        .or(cfg.pki_listen)
        .unwrap_or_else(|| beside(listen, DEFAULT_PKI_PORT));
    let (pki_listener, pki_addr) = bound(pki_listen).await?;
    let metrics_listen = metrics_listen.or(cfg.metrics_listen).unwrap_or_else(|| {
        beside(
            SocketAddr::from(([127, 0, 0, 1], listen.port())),
            DEFAULT_METRICS_PORT,
        )
    });
    let (metrics_listener, metrics_addr) = bound(metrics_listen).await?;
    let operator_listen = operator_listen.or(cfg.operator_listen).unwrap_or_else(|| {
        beside(
            SocketAddr::from(([127, 0, 0, 1], listen.port())),
            DEFAULT_OPERATOR_PORT,
        )
    });
    let (operator_listener, operator_addr) = bound(operator_listen).await?;
    let public_url = public_url
        .or(cfg.public_url.clone())
        .unwrap_or_else(|| format!("https://{}:{}", host_of(addr), addr.port()));
    let public_host = public_host(&public_url)?;

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
    print_pki_and_console(&svc, &pki_public_url, pki_addr, metrics_addr, operator_addr);
    if let Some(users) = demo_users {
        print_demo_users(&users, &data_dir(&common, &cfg));
    }
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate() => {}
    }
    println!("Shutting down.");
    server.shutdown().await;
    Ok(())
}

/// What the start prints after the portal's lines: where CRLs, OCSP, the
/// metrics and the operator console are, and the CA's key and root.
fn print_pki_and_console(
    svc: &Shomei,
    pki_public_url: &str,
    pki_addr: SocketAddr,
    metrics_addr: SocketAddr,
    operator_addr: SocketAddr,
) {
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
}

/// The demo users' table, with their passwords and where their
/// certificates are (`dir` is the data directory).
fn print_demo_users(users: &[DemoUser], dir: &Path) {
    println!(
        "Demo users (login password {DEMO_LOGIN_PASSWORD}, confirmation password {DEMO_CONFIRM_PASSWORD}):"
    );
    println!(
        "Their certificates with keys (PKCS#12, password {DEMO_P12_PASSWORD}): {}",
        dir.join("demo-certs").display()
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

async fn terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}
