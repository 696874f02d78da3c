//! Load generator for the issuance benchmark (bench/issuance.sh).
//!
//! `shomei-bench renew ROOT_PEM HOST:PORT SECONDS KEY:CERT...` runs one
//! chain per key/certificate pair: each step opens a new mutual-TLS
//! connection with the current certificate, POSTs a renewal request
//! (simplereenroll) and continues with the certificate it gets back — the
//! server revokes the previous one, so every step is a full issuance.
//! `shomei-bench cfssl HOST:PORT SECONDS CONNECTIONS CSR_PEM` posts the same
//! kind of request to cfssl's /api/v1/cfssl/sign over keep-alive connections.
//! `shomei-bench ocsp HOST:PORT/PATH SECONDS CONNECTIONS ISSUER_PEM SERIALS new|keep`
//! posts OCSP requests for serials drawn at random from the file SERIALS
//! (one hex serial a line), on a new connection per request (`new`, like
//! `ab` without -k) or over keep-alive connections (`keep`); every answer
//! must be a successful OCSP response.
//! `shomei-bench argon2 SECONDS THREADS` hashes with the server's Argon2id
//! parameters on THREADS threads (the raw rate for bench/attack.sh).
//! All print `ops seconds refused-connections`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type Err = Box<dyn std::error::Error + Send + Sync>;

/// Reads one HTTP/1.1 response with Content-Length; returns (status, body).
async fn read_response<S: AsyncReadExt + Unpin>(
    s: &mut S,
    buf: &mut Vec<u8>,
) -> Result<(u16, Vec<u8>), Err> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end])?.to_ascii_lowercase();
            let status: u16 = head.split_whitespace().nth(1).ok_or("no status")?.parse()?;
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse())
                .transpose()?
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let mut chunk = [0u8; 16384];
                let n = s.read(&mut chunk).await?;
                if n == 0 {
                    return Err("connection closed mid-body".into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = buf[end + 4..end + 4 + len].to_vec();
            buf.drain(..end + 4 + len);
            return Ok((status, body));
        }
        let mut chunk = [0u8; 16384];
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err("connection closed".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Renews one certificate over and over until `until`, each renewal over a
/// new mutual-TLS connection with the certificate the previous one
/// returned; writes the last certificate back to `cert_path` (PEM), so a
/// later run goes on with the chain.
async fn renew_chain(
    root: rustls::RootCertStore,
    addr: String,
    key_pem: Vec<u8>,
    (mut cert, cert_path): (Vec<u8>, String),
    until: Instant,
    done: Arc<AtomicU64>,
) -> Result<(), Err> {
    let key = rcgen::KeyPair::from_pem(std::str::from_utf8(&key_pem)?)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "bench");
    let csr = STANDARD.encode(params.serialize_request(&key)?.der());
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let host = ServerName::try_from("localhost")?;
    while Instant::now() < until {
        let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(root.clone())
            .with_client_auth_cert(
                vec![CertificateDer::from(cert.clone())],
                key_der.clone_key(),
            )?;
        let tcp = TcpStream::connect(&addr).await?;
        tcp.set_nodelay(true)?;
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect(host.clone(), tcp)
            .await?;
        let req = format!(
            "POST /.well-known/est/simplereenroll HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/pkcs10\r\nContent-Transfer-Encoding: base64\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{csr}",
            csr.len()
        );
        tls.write_all(req.as_bytes()).await?;
        let (status, body) = read_response(&mut tls, &mut Vec::new()).await?;
        if status != 200 {
            return Err(format!(
                "renewal answered {status}: {}",
                String::from_utf8_lossy(&body)
            )
            .into());
        }
        let clean: Vec<u8> = body
            .into_iter()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        let p7 = STANDARD.decode(clean)?;
        cert = shomei_pki::pkcs7::parse_certs_only(&p7)?.remove(0);
        done.fetch_add(1, Ordering::Relaxed);
    }
    std::fs::write(&cert_path, shomei_pki::to_pem("CERTIFICATE", &cert))?;
    Ok(())
}

async fn cfssl_conn(
    addr: String,
    body: String,
    until: Instant,
    done: Arc<AtomicU64>,
) -> Result<(), Err> {
    let mut s = TcpStream::connect(&addr).await?;
    s.set_nodelay(true)?;
    let req = format!(
        "POST /api/v1/cfssl/sign HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut buf = Vec::new();
    while Instant::now() < until {
        s.write_all(req.as_bytes()).await?;
        let (status, body) = read_response(&mut s, &mut buf).await?;
        if status != 200 {
            return Err(format!(
                "cfssl answered {status}: {}",
                String::from_utf8_lossy(&body)
            )
            .into());
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// xorshift64*: cheap, deterministic random picks for the load loop.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// How an OCSP client picks its requests.
#[derive(Clone, Copy)]
enum Picks {
    /// At random, until the time is up.
    Random { seed: u64 },
    /// Every `step`th request from `first` on, each once (a sweep of all of
    /// them by `step` clients), then done.
    Each { first: usize, step: usize },
}

/// One OCSP client: `requests` are complete HTTP requests, one per serial.
async fn ocsp_conn(
    addr: String,
    requests: Arc<Vec<Vec<u8>>>,
    keep_alive: bool,
    picks: Picks,
    until: Instant,
    done: Arc<AtomicU64>,
    refused: Arc<AtomicU64>,
) -> Result<(), Err> {
    let mut rng = match picks {
        Picks::Random { seed } => seed | 1,
        Picks::Each { .. } => 0,
    };
    let mut next = match picks {
        Picks::Each { first, .. } => first,
        Picks::Random { .. } => 0,
    };
    let mut buf = Vec::new();
    let mut conn: Option<TcpStream> = None;
    while Instant::now() < until {
        let req = match picks {
            Picks::Random { .. } => {
                &requests[(next_random(&mut rng) % requests.len() as u64) as usize]
            }
            Picks::Each { step, .. } => {
                let Some(r) = requests.get(next) else { break };
                next += step;
                r
            }
        };
        let mut s = match conn.take() {
            Some(s) => s,
            None => match TcpStream::connect(&addr).await {
                Ok(s) => {
                    s.set_nodelay(true)?;
                    buf.clear();
                    s
                }
                // A responder that forks workers may refuse a connection
                // now and then; count it, and give up only if it persists.
                Err(e) => {
                    refused.fetch_add(1, Ordering::Relaxed);
                    if refused.load(Ordering::Relaxed) > 10_000 {
                        return Err(e.into());
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
            },
        };
        s.write_all(req).await?;
        let (status, body) = read_response(&mut s, &mut buf).await?;
        // OCSPResponse { responseStatus successful(0), responseBytes … }
        let successful = body.len() > 10
            && body[0] == 0x30
            && body.windows(3).take(8).any(|w| w == [0x0a, 0x01, 0x00]);
        if status != 200 || !successful {
            return Err(format!(
                "OCSP answered {status} with {} bytes that are not a successful response",
                body.len()
            )
            .into());
        }
        done.fetch_add(1, Ordering::Relaxed);
        if keep_alive {
            conn = Some(s);
        }
    }
    Ok(())
}

async fn run(args: Vec<String>) -> Result<(), Err> {
    let mode = args.get(1).map(String::as_str).unwrap_or("");
    let done = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    match mode {
        "renew" => {
            let [_, _, root, addr, secs, chains @ ..] = args.as_slice() else {
                return Err(
                    "usage: shomei-bench renew ROOT_PEM HOST:PORT SECONDS KEY:CERT...".into(),
                );
            };
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(root)? {
                roots.add(c?)?;
            }
            let until = start + Duration::from_secs(secs.parse()?);
            for chain in chains {
                let (k, c) = chain.split_once(':').ok_or("KEY:CERT")?;
                let cert = CertificateDer::from_pem_file(c)?.to_vec();
                tasks.push(tokio::spawn(renew_chain(
                    roots.clone(),
                    addr.clone(),
                    std::fs::read(k)?,
                    (cert, c.to_string()),
                    until,
                    done.clone(),
                )));
            }
        }
        "cfssl" => {
            let [_, _, addr, secs, conns, csr] = args.as_slice() else {
                return Err(
                    "usage: shomei-bench cfssl HOST:PORT SECONDS CONNECTIONS CSR_PEM".into(),
                );
            };
            let body = serde_json::json!({ "certificate_request": std::fs::read_to_string(csr)? })
                .to_string();
            let until = start + Duration::from_secs(secs.parse()?);
            for _ in 0..conns.parse::<usize>()? {
                tasks.push(tokio::spawn(cfssl_conn(
                    addr.clone(),
                    body.clone(),
                    until,
                    done.clone(),
                )));
            }
        }
        "ocsp" => {
            let [_, _, target, secs, conns, issuer, serials, how] = args.as_slice() else {
                return Err("usage: shomei-bench ocsp HOST:PORT/PATH SECONDS CONNECTIONS ISSUER_PEM SERIALS new|keep|each".into());
            };
            // each: keep-alive, every serial asked about once (within SECONDS).
            let (keep_alive, each) = match how.as_str() {
                "new" => (false, false),
                "keep" => (true, false),
                "each" => (true, true),
                _ => return Err("the last argument is new, keep or each".into()),
            };
            let (addr, path) = match target.split_once('/') {
                Some((a, p)) => (a.to_string(), format!("/{p}")),
                None => (target.clone(), "/".to_string()),
            };
            let issuer = CertificateDer::from_pem_file(issuer)?;
            let hashes = shomei_pki::ocsp::IssuerHashes::of(&issuer)
                .ok_or("cannot read the issuer certificate")?;
            let connection = if keep_alive { "keep-alive" } else { "close" };
            let mut requests = Vec::new();
            for line in std::fs::read_to_string(serials)?.lines() {
                let hex = line.trim();
                if hex.is_empty() {
                    continue;
                }
                let serial: Vec<u8> = (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
                    .collect::<Result<_, _>>()
                    .map_err(|_| format!("not a hex serial: {hex}"))?;
                let body = hashes.request(&serial);
                let mut req = format!(
                    "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/ocsp-request\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                req.extend_from_slice(&body);
                requests.push(req);
            }
            if requests.is_empty() {
                return Err("no serials".into());
            }
            let requests = Arc::new(requests);
            let until = start + Duration::from_secs(secs.parse()?);
            let conns = conns.parse::<u64>()?;
            for i in 0..conns {
                let picks = if each {
                    Picks::Each {
                        first: i as usize,
                        step: conns as usize,
                    }
                } else {
                    Picks::Random {
                        seed: 0x9e37_79b9_7f4a_7c15 ^ (i + 1),
                    }
                };
                tasks.push(tokio::spawn(ocsp_conn(
                    addr.clone(),
                    requests.clone(),
                    keep_alive,
                    picks,
                    until,
                    done.clone(),
                    refused.clone(),
                )));
            }
        }
        "argon2" => {
            // The raw rate the server's hashing pool is compared with: the
            // same Argon2id parameters (19 MiB, t=2, p=1), one thread each,
            // memory reused as the server's workers do.
            let secs: u64 = args.get(2).ok_or("seconds")?.parse()?;
            let threads: u64 = args.get(3).ok_or("threads")?.parse()?;
            let until = start + Duration::from_secs(secs);
            for t in 0..threads {
                let done = done.clone();
                tasks.push(tokio::task::spawn_blocking(move || {
                    let params = argon2::Params::default();
                    let a = argon2::Argon2::new(
                        argon2::Algorithm::Argon2id,
                        argon2::Version::V0x13,
                        params.clone(),
                    );
                    let mut blocks = vec![argon2::Block::default(); params.block_count()];
                    let salt = [t as u8; 16];
                    let mut out = [0u8; 32];
                    while Instant::now() < until {
                        a.hash_password_into_with_memory(
                            b"Shomei#Demo1",
                            &salt,
                            &mut out,
                            &mut blocks,
                        )
                        .map_err(|e| e.to_string())?;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok::<(), Err>(())
                }));
            }
        }
        _ => return Err("usage: shomei-bench renew|cfssl|ocsp|argon2 …".into()),
    }
    for t in tasks {
        t.await??;
    }
    println!(
        "{} {:.3} {}",
        done.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64(),
        refused.load(Ordering::Relaxed)
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build();
    let result = match rt {
        Ok(rt) => rt.block_on(run(std::env::args().collect())),
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shomei-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
