//! The HTTPS listener: rustls over TCP, one HTTP/1.1 connection per task,
//! the peer address handed to handlers, and background upkeep (idle sessions,
//! CRL refresh).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use shomei_service::{Listener, Shomei};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::limits::{self, Gate, Limits, Watched};
use crate::pages::ClientAddr;
use crate::{AppState, metrics_router, router};

/// How to run the portal.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Address to bind; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Extra names (DNS or IP) the server certificate must cover, besides
    /// localhost, 127.0.0.1 and ::1.
    pub extra_names: Vec<String>,
    /// Base URL of the certificate listener as customers reach it (the
    /// login page's 電子証明書方式 link). Default: https://localhost:PORT.
    pub cert_public_url: Option<String>,
}

/// A started server. Dropping it does not stop it; call `shutdown`.
pub struct RunningServer {
    /// Where the portal listens (the port picked when 0 was asked for).
    pub addr: SocketAddr,
    /// The certificate listener, when started.
    pub cert_addr: Option<SocketAddr>,
    /// The plain-HTTP PKI listener (CRL, OCSP), when started.
    pub pki_addr: Option<SocketAddr>,
    /// The metrics listener, when started.
    pub metrics_addr: Option<SocketAddr>,
    /// The operator console, when started.
    pub operator_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// A graceful stop: the listeners stop accepting, then the current CRLs
    /// and the revocation set's snapshot are kept (a restart serves them
    /// again instead of signing and loading anew), then the background
    /// tasks end. Returns when all of that is done.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Runs until the process is asked to stop (Ctrl-C / SIGTERM).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// Why the server did not start (English, for the log and the shell).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// An address could not be bound (in use, or not this machine's).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the system said.
        source: std::io::Error,
    },
    /// The server certificate or the TLS configuration could not be made.
    #[error("TLS set-up failed: {0}")]
    Tls(String),
}

type Identity = (
    Vec<rustls::pki_types::CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
);

fn server_identity(svc: &Shomei, extra: &[String]) -> Result<Identity, StartError> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    for n in extra {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    svc.ca()
        .server_tls(&names, svc.now())
        .map_err(|e| StartError::Tls(e.to_string()))
}

fn tls_config((chain, key): Identity) -> Result<rustls::ServerConfig, StartError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StartError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| StartError::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Binds, sets up TLS with a certificate from our CA, and starts serving.
pub async fn start(svc: Arc<Shomei>, opts: ServerOptions) -> Result<RunningServer, StartError> {
    let listener = bind(opts.listen).await?;
    start_on(svc, listener, opts).await
}

/// Binds the listening socket (separately, so the caller learns the port
/// before the CA writes URLs into certificates).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

/// Serves the portal on an already bound listener.
pub async fn start_on(
    svc: Arc<Shomei>,
    listener: TcpListener,
    opts: ServerOptions,
) -> Result<RunningServer, StartError> {
    start_with(svc, listener, None, opts).await
}

/// The listeners of a server besides the portal's.
#[derive(Default)]
pub struct Listeners {
    /// The certificate listener (client certificates required).
    pub cert: Option<TcpListener>,
    /// The plain-HTTP PKI listener (CRLs, OCSP).
    pub pki: Option<TcpListener>,
    /// The plain-HTTP metrics listener (GET /metrics, Prometheus text).
    pub metrics: Option<TcpListener>,
    /// The operator console (operator certificates required).
    pub operator: Option<TcpListener>,
}

/// Serves the portal on `portal` and, if given, the certificate listener
/// (client certificates required) on `cert`. Both share sessions and routes.
pub async fn start_with(
    svc: Arc<Shomei>,
    portal: TcpListener,
    cert: Option<TcpListener>,
    opts: ServerOptions,
) -> Result<RunningServer, StartError> {
    start_all(
        svc,
        portal,
        Listeners {
            cert,
            ..Listeners::default()
        },
        opts,
    )
    .await
}

/// Serves the portal on `portal` and the other listeners given.
pub async fn start_all(
    svc: Arc<Shomei>,
    portal: TcpListener,
    others: Listeners,
    opts: ServerOptions,
) -> Result<RunningServer, StartError> {
    let local = |l: &TcpListener| {
        l.local_addr().map_err(|source| StartError::Bind {
            addr: opts.listen,
            source,
        })
    };
    let addr = local(&portal)?;
    let cert_addr = others.cert.as_ref().map(local).transpose()?;
    let pki_addr = others.pki.as_ref().map(local).transpose()?;
    let metrics_addr = others.metrics.as_ref().map(local).transpose()?;
    let operator_addr = others.operator.as_ref().map(local).transpose()?;
    let acceptors = Acceptors::new(&svc, &opts, operator_addr.is_some(), cert_addr.is_some())?;
    let state = app_state(&svc, &opts, cert_addr).await?;
    let (stop, stopped) = watch::channel(false);
    let background = spawn_background(&svc, state.clone(), &stop);
    let loops = spawn_listeners(&svc, state, portal, others, acceptors, stopped);
    let task = tokio::spawn(wind_down(loops, svc, background));
    Ok(RunningServer {
        addr,
        cert_addr,
        pki_addr,
        metrics_addr,
        operator_addr,
        stop,
        task,
    })
}

/// A TLS listener's acceptor that asks for client certificates, with the
/// cache of the chains it verified.
type ClientAuth = (TlsAcceptor, Arc<crate::certauth::ChainCache>);

/// The TLS acceptors: the portal's, and the operator console's and the
/// certificate listener's (client certificates asked for) when they run.
struct Acceptors {
    portal: TlsAcceptor,
    operator: Option<ClientAuth>,
    cert: Option<ClientAuth>,
}

impl Acceptors {
    /// Every acceptor with the server's certificate; `operator` and `cert`:
    /// whether those listeners run.
    fn new(
        svc: &Arc<Shomei>,
        opts: &ServerOptions,
        operator: bool,
        cert: bool,
    ) -> Result<Self, StartError> {
        let identity = server_identity(svc, &opts.extra_names)?;
        let portal = TlsAcceptor::from(Arc::new(tls_config((
            identity.0.clone(),
            identity.1.clone_key(),
        ))?));
        let operator = if operator {
            Some(client_auth(
                svc,
                (identity.0.clone(), identity.1.clone_key()),
                shomei_pki::operator::Profile::Operator,
            )?)
        } else {
            None
        };
        let cert = if cert {
            Some(client_auth(
                svc,
                identity,
                shomei_pki::operator::Profile::Customer,
            )?)
        } else {
            None
        };
        Ok(Self {
            portal,
            operator,
            cert,
        })
    }
}

/// An acceptor that asks for client certificates of `profile` (customers'
/// or operators').
fn client_auth(
    svc: &Arc<Shomei>,
    (chain, key): Identity,
    profile: shomei_pki::operator::Profile,
) -> Result<ClientAuth, StartError> {
    let (cfg, cache) = crate::certauth::client_tls_config(svc.clone(), chain, key, profile)
        .map_err(StartError::Tls)?;
    Ok((TlsAcceptor::from(Arc::new(cfg)), cache))
}

/// What every handler shares: the service, the login form's signing key,
/// the device cookies and the certificate listener's public URL.
async fn app_state(
    svc: &Arc<Shomei>,
    opts: &ServerOptions,
    cert_addr: Option<SocketAddr>,
) -> Result<AppState, StartError> {
    let form_secret = svc
        .login_form_secret()
        .await
        .map_err(|e| StartError::Tls(format!("login form key: {e}")))?;
    let form = Arc::new(crate::session::LoginForm::new(
        &form_secret,
        time::Duration::minutes(svc.settings().login_form_minutes),
    ));
    let devices = Arc::new(crate::session::DeviceCookies::new(
        form.clone(),
        time::Duration::days(svc.settings().device_cookie_days),
    ));
    let cert_base = cert_addr.map(|a| {
        opts.cert_public_url
            .clone()
            .unwrap_or_else(|| format!("https://localhost:{}", a.port()))
    });
    Ok(AppState {
        svc: svc.clone(),
        form,
        devices,
        cert_base,
    })
}

/// Starts the background tasks: the upkeep rounds, the CRL publisher, the
/// revocation watch and listener, and the OCSP refresh; handles to end them.
fn spawn_background(
    svc: &Arc<Shomei>,
    state: AppState,
    stop: &watch::Sender<bool>,
) -> Vec<tokio::task::AbortHandle> {
    let upkeep = tokio::spawn(upkeep(state, stop.subscribe()));
    let publisher = {
        let svc = svc.clone();
        tokio::spawn(async move { svc.run_crl_publisher().await })
    };
    let watch = {
        let svc = svc.clone();
        tokio::spawn(async move { svc.run_revocation_watch().await })
    };
    let listen = {
        let svc = svc.clone();
        tokio::spawn(async move { svc.run_revocation_listener().await })
    };
    let ocsp_refresh = {
        let svc = svc.clone();
        tokio::spawn(async move { svc.run_ocsp_refresh().await })
    };
    [upkeep, publisher, watch, listen, ocsp_refresh]
        .iter()
        .map(|t| t.abort_handle())
        .collect()
}

/// Starts an accept loop on the portal and on each other listener given,
/// each until `stopped`.
fn spawn_listeners(
    svc: &Arc<Shomei>,
    state: AppState,
    portal: TcpListener,
    others: Listeners,
    acceptors: Acceptors,
    stopped: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let app = router(state.clone());
    let pki_app = crate::pki_router(state.clone());
    let metrics_app = metrics_router(state.clone());
    let console_app = crate::console::router(state);
    let mut loops = vec![tokio::spawn(accept_loop(
        portal,
        acceptors.portal,
        None,
        app.clone(),
        svc.clone(),
        Listener::Portal,
        stopped.clone(),
    ))];
    if let Some(listener) = others.pki {
        loops.push(tokio::spawn(pki_accept_loop(
            listener,
            pki_app,
            svc.clone(),
            stopped.clone(),
        )));
    }
    if let Some(listener) = others.metrics {
        loops.push(tokio::spawn(plain_accept_loop(
            listener,
            metrics_app,
            svc.clone(),
            Listener::Metrics,
            stopped.clone(),
        )));
    }
    if let (Some(listener), Some((acceptor, cache))) = (others.operator, acceptors.operator) {
        loops.push(tokio::spawn(accept_loop(
            listener,
            acceptor,
            Some(cache),
            console_app,
            svc.clone(),
            Listener::Operator,
            stopped.clone(),
        )));
    }
    if let (Some(listener), Some((acceptor, cache))) = (others.cert, acceptors.cert) {
        loops.push(tokio::spawn(accept_loop(
            listener,
            acceptor,
            Some(cache),
            app,
            svc.clone(),
            Listener::Cert,
            stopped,
        )));
    }
    loops
}

/// Waits until every listener has stopped, then keeps the current CRLs and
/// the revocation set's snapshot (a restart then reads the set from it, not
/// from the database, and serves these CRLs again instead of signing them),
/// then ends the background tasks.
async fn wind_down(
    loops: Vec<tokio::task::JoinHandle<()>>,
    keeper: Arc<Shomei>,
    background: Vec<tokio::task::AbortHandle>,
) {
    for l in loops {
        let _ = l.await;
    }
    keeper.keep_current_crl_copies().await;
    if let Err(e) = keeper.keep_revocation_snapshot_if_behind(true).await {
        tracing::error!(error = %e, "cannot write the revocation set snapshot");
    }
    for task in background {
        task.abort();
    }
}

/// Accepts TLS connections until stopped, within the listener's limits
/// (connections in all and per address, handshake, header and idle
/// timeouts). With `chain_cache` (the certificate listener, which asks for
/// client certificates), the verified certificate's serial goes to the
/// handlers, and every request re-checks it against the revocation set: a
/// keep-alive connection opened before a revocation gets no further.
async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    chain_cache: Option<Arc<crate::certauth::ChainCache>>,
    app: axum::Router,
    svc: Arc<Shomei>,
    kind: Listener,
    mut stopped: watch::Receiver<bool>,
) {
    // The certificate listener and the operator console ask for client
    // certificates; the certificate listener re-checks the serial here, the
    // console on every request (`console::Operator`).
    let client_certs = chain_cache.is_some().then(|| svc.clone());
    let gate = Gate::new(kind, Limits::from_settings(svc.settings()), svc.clone());
    let login: Arc<str> = format!("{}/login", svc.ca().endpoints().base_url()).into();
    let svc_all = svc;
    let mut backoff = Duration::ZERO;
    while let Some((tcp, peer, admitted)) =
        limits::next_admitted(&listener, &gate, &mut backoff, &mut stopped).await
    {
        let acceptor = acceptor.clone();
        let app = app.clone();
        let svc = client_certs.clone();
        let chain_cache = chain_cache.clone();
        let metrics_svc = svc_all.clone();
        let gate = gate.clone();
        let login = login.clone();
        tokio::spawn(async move {
            let _admitted = admitted;
            let limits = gate.limits();
            let (tcp, idle) = Watched::new(tcp);
            let accept = acceptor.accept(tcp).into_fallible();
            let tls = match tokio::time::timeout(limits.handshake, accept).await {
                Ok(Ok(tls)) => tls,
                Ok(Err((e, io))) => {
                    metrics_svc.metrics().handshake(kind, false);
                    tracing::debug!(error = %e, %peer, "TLS handshake failed");
                    limits::linger(io).await;
                    return;
                }
                Err(_) => {
                    metrics_svc.metrics().handshake(kind, false);
                    gate.handshake_timed_out();
                    return;
                }
            };
            metrics_svc.metrics().handshake(kind, true);
            let cert = match &chain_cache {
                Some(cache) => {
                    match tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .and_then(|c| cache.client_cert(c))
                    {
                        Some(c) => Some(c),
                        None => return,
                    }
                }
                None => None,
            };
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                let login = login.clone();
                req.extensions_mut().insert(ClientAddr(peer));
                let revoked = match (&svc, &cert) {
                    (Some(svc), Some(c)) if kind == Listener::Cert => {
                        svc.is_revoked(c.serial.as_bytes())
                    }
                    _ => false,
                };
                if let Some(c) = &cert {
                    req.extensions_mut().insert(c.clone());
                }
                let app = app.clone();
                let metrics_svc = metrics_svc.clone();
                async move {
                    if revoked {
                        // Back to the portal's login page (this listener
                        // would refuse the certificate's next handshake).
                        let to = format!("{login}?e=revoked");
                        return Ok(axum::response::IntoResponse::into_response(
                            axum::response::Redirect::to(&to),
                        ));
                    }
                    let started = std::time::Instant::now();
                    let r = app.oneshot(req).await;
                    metrics_svc.metrics().request(kind, started.elapsed());
                    r
                }
            });
            let conn = http1(limits).serve_connection(TokioIo::new(tls), service);
            limits::until_idle(conn, &idle, limits.idle).await;
        });
    }
}

/// HTTP/1.1 with the listener's header timeout.
fn http1(limits: Limits) -> hyper::server::conn::http1::Builder {
    let mut b = hyper::server::conn::http1::Builder::new();
    b.header_read_timeout(limits.header)
        .timer(hyper_util::rt::TokioTimer::new());
    b
}

/// Accepts plain-HTTP connections (the PKI and metrics listeners) until
/// stopped, within the listener's limits; requests are timed for the metrics.
async fn plain_accept_loop(
    listener: TcpListener,
    app: axum::Router,
    svc: Arc<Shomei>,
    kind: Listener,
    mut stopped: watch::Receiver<bool>,
) {
    let gate = Gate::new(kind, Limits::from_settings(svc.settings()), svc.clone());
    let mut backoff = Duration::ZERO;
    while let Some((tcp, peer, admitted)) =
        limits::next_admitted(&listener, &gate, &mut backoff, &mut stopped).await
    {
        let app = app.clone();
        let svc = svc.clone();
        let limits = gate.limits();
        tokio::spawn(async move {
            let _admitted = admitted;
            serve_plain(tcp, peer, app, svc, kind, limits).await;
        });
    }
}

/// Serves plain HTTP/1.1 on `io` (from `peer`) until it ends or idles out;
/// requests are timed for the metrics of `kind`.
async fn serve_plain<T>(
    io: T,
    peer: SocketAddr,
    app: axum::Router,
    svc: Arc<Shomei>,
    kind: Listener,
    limits: Limits,
) where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (io, idle) = Watched::new(io);
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ClientAddr(peer));
        let app = app.clone();
        let svc = svc.clone();
        async move {
            let started = std::time::Instant::now();
            let r = app.oneshot(req).await;
            svc.metrics().request(kind, started.elapsed());
            r
        }
    });
    let conn = http1(limits).serve_connection(TokioIo::new(io), service);
    limits::until_idle(conn, &idle, limits.idle).await;
}

/// The PKI listener's accept loop: what [`plain_accept_loop`] does, except
/// that a close-delimited OCSP POST whose answer is in memory, whole in the
/// connection's first read, is answered in the loop itself (`quick`);
/// every other request goes to the HTTP server with what was read.
///
/// The loop runs on a thread of its own, blocked in `accept` on a listening
/// socket that hands over a connection only once its first data has come
/// (`TCP_DEFER_ACCEPT`, [`DEFER_ACCEPT_SECONDS`]): the request is there to
/// be read at once. A connection answered there never meets the reactor
/// (no registration, no task, no wake-up of a worker), which is most of
/// what it costs beyond the kernel's TCP. One whose request has not come
/// (a silent client, once the deferral is over) goes to the HTTP server at
/// once, whose header timeout applies. The task returned ends once the
/// thread has stopped (after `stopped`).
async fn pki_accept_loop(
    listener: TcpListener,
    app: axum::Router,
    svc: Arc<Shomei>,
    mut stopped: watch::Receiver<bool>,
) {
    let std_listener = listener.into_std().and_then(|l| {
        // Blocking: the thread sleeps in `accept`.
        l.set_nonblocking(false)?;
        let waker = l.try_clone()?;
        Ok((l, waker))
    });
    let (listener, waker) = match std_listener {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "cannot set up the PKI listener");
            return;
        }
    };
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (done, ended) = tokio::sync::oneshot::channel::<()>();
    let runtime = tokio::runtime::Handle::current();
    let thread = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("pki-accept".into())
            .spawn(move || {
                PkiAccept::new(&app, &svc, &runtime).run(&listener, &stop);
                let _ = done.send(());
            })
    };
    if let Err(e) = thread {
        tracing::error!(error = %e, "cannot start the PKI listener's thread");
        return;
    }
    // Also when this task is dropped with its runtime.
    let stopper = StopThread { stop, waker };
    let _ = stopped.changed().await;
    drop(stopper);
    let _ = ended.await;
}

/// Stops [`PkiAccept`]'s thread when dropped.
struct StopThread {
    stop: Arc<std::sync::atomic::AtomicBool>,
    waker: std::net::TcpListener,
}

impl Drop for StopThread {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // The listening socket shut down wakes the blocked accept, which
        // fails.
        let _ = rustix::net::shutdown(&self.waker, rustix::net::Shutdown::Both);
    }
}

/// How long the kernel holds a PKI connection whose client has sent
/// nothing before handing it to `accept` all the same (`TCP_DEFER_ACCEPT`:
/// the SYN-ACK is resent once; a silent client then meets the HTTP
/// server's header timeout, as on every listener).
const DEFER_ACCEPT_SECONDS: u32 = 1;

/// The state of the PKI listener's accept thread.
struct PkiAccept<'a> {
    app: &'a axum::Router,
    svc: &'a Arc<Shomei>,
    runtime: &'a tokio::runtime::Handle,
    gate: Arc<Gate>,
    quick: crate::quick::Quick,
}

impl<'a> PkiAccept<'a> {
    fn new(
        app: &'a axum::Router,
        svc: &'a Arc<Shomei>,
        runtime: &'a tokio::runtime::Handle,
    ) -> Self {
        Self {
            app,
            svc,
            runtime,
            gate: Gate::new(
                Listener::Pki,
                Limits::from_settings(svc.settings()),
                svc.clone(),
            ),
            quick: crate::quick::Quick::new(),
        }
    }

    /// Accepts and answers until `stop`; `listener` is blocking.
    fn run(&mut self, listener: &std::net::TcpListener, stop: &std::sync::atomic::AtomicBool) {
        if let Err(e) = crate::sockopt::defer_accept(listener, DEFER_ACCEPT_SECONDS) {
            // Still served, each request through the HTTP server's task
            // when it comes after its connection.
            tracing::warn!(error = %e, "the PKI listener cannot defer accepting connections");
        }
        let mut backoff = Duration::ZERO;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            let accepted = rustix::net::acceptfrom_with(
                listener,
                rustix::net::SocketFlags::NONBLOCK | rustix::net::SocketFlags::CLOEXEC,
            );
            let (tcp, peer) = match accepted {
                Ok((fd, Some(addr))) => match SocketAddr::try_from(addr) {
                    Ok(peer) => (std::net::TcpStream::from(fd), peer),
                    Err(_) => continue,
                },
                Ok((_, None)) | Err(rustix::io::Errno::INTR) => continue,
                Err(_) if stop.load(std::sync::atomic::Ordering::SeqCst) => return,
                Err(e) => {
                    std::thread::sleep(self.gate.accept_failed(&e.into(), &mut backoff));
                    continue;
                }
            };
            backoff = Duration::ZERO;
            let Ok(admitted) = self.gate.admit(peer) else {
                continue;
            };
            let started = std::time::Instant::now();
            let first = self
                .quick
                .first_read(tcp, answer_quickly(self.svc, started));
            if let Some(left) = left_to_do(first) {
                self.hand_over(left, peer, admitted);
            }
        }
    }

    /// The rest of a connection, for the runtime: registered with its
    /// reactor (the socket is non-blocking already) and served by a task.
    fn hand_over(
        &self,
        first: crate::quick::First<std::net::TcpStream>,
        peer: SocketAddr,
        admitted: limits::Admitted,
    ) {
        let registered = {
            let _in = self.runtime.enter();
            first.into_tokio()
        };
        let Some(first) = registered else {
            return;
        };
        let (app, svc, limits) = (self.app.clone(), self.svc.clone(), self.gate.limits());
        self.runtime.spawn(async move {
            let _admitted = admitted;
            pki_connection(first, peer, app, svc, limits).await;
        });
    }
}

/// The answer to a quick request's body, if it is in memory; counted in
/// the metrics before it is sent, so that a client that has read it finds
/// it counted.
fn answer_quickly(
    svc: &Shomei,
    started: std::time::Instant,
) -> impl FnOnce(&[u8]) -> Option<axum::body::Bytes> + '_ {
    move |body| {
        let answer = svc.ocsp_from_memory(body)?;
        svc.metrics().request(Listener::Pki, started.elapsed());
        svc.metrics().pki_quick_answer();
        Some(answer)
    }
}

/// `None` if `first` was answered or is gone; else what is left to do.
fn left_to_do<S>(first: crate::quick::First<S>) -> Option<crate::quick::First<S>> {
    use crate::quick::First;
    match first {
        First::Answered | First::Gone => None,
        other => Some(other),
    }
}

/// The rest of a PKI listener connection that the accept loop did not
/// answer: the rest of a quick answer; or, once the first request has come,
/// a quick answer after all; or else the HTTP server.
async fn pki_connection(
    first: crate::quick::First<tokio::net::TcpStream>,
    peer: SocketAddr,
    app: axum::Router,
    svc: Arc<Shomei>,
    limits: Limits,
) {
    use crate::quick::First;
    let mut first = first;
    if let First::Waiting(tcp) = first {
        if !matches!(
            tokio::time::timeout(limits.header, crate::quick::request_come(&tcp)).await,
            Ok(Ok(()))
        ) {
            return;
        }
        let started = std::time::Instant::now();
        let again = crate::quick::Quick::new().first_read(tcp, answer_quickly(&svc, started));
        let Some(left) = left_to_do(again) else {
            return;
        };
        first = left;
    }
    let (tcp, read) = match first {
        First::Finish(mut tcp, rest) => {
            use tokio::io::AsyncWriteExt;
            let _ = tokio::time::timeout(limits.idle, async {
                tcp.write_all(&rest).await?;
                tcp.shutdown().await
            })
            .await;
            return;
        }
        First::Serve(tcp, read) => (tcp, read),
        First::Waiting(tcp) => (tcp, Vec::new()),
        First::Answered | First::Gone => return,
    };
    let _ = tcp.set_nodelay(true);
    let tcp = crate::quick::Prefixed::new(read, tcp);
    serve_plain(tcp, peer, app, svc, Listener::Pki, limits).await;
}

/// Every 30 s: refresh this server's CRL before it goes stale; then, on the
/// one server holding the upkeep lease, end idle sessions (writing their
/// セッションタイムアウト rows), send the notices due, write the coalesced
/// address refusals and prune the revocation log.
async fn upkeep(st: AppState, mut stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stopped.changed() => return,
            _ = tokio::time::sleep(Duration::from_secs(st.svc.settings().upkeep_interval_seconds)) => {}
        }
        if let Err(e) = st.svc.refresh_crl_if_due().await {
            tracing::error!(error = %e, "CRL refresh failed");
        }
        if let Err(e) = st.svc.keep_revocation_snapshot_if_behind(false).await {
            tracing::error!(error = %e, "cannot write the revocation set snapshot");
        }
        // The jobs on the shared database run on one server at a time
        // (under a lease that expires); this server's own CRL is its own.
        if !st.svc.holds_upkeep_lease().await {
            continue;
        }
        let ended = st
            .svc
            .sessions()
            .expire_idle(st.svc.now(), st.svc.settings().session_idle())
            .await
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "ending idle sessions failed");
                Vec::new()
            });
        for user in ended {
            let _ = st
                .svc
                .session_ended(user, shomei_service::SessionEnd::Timeout, "")
                .await;
        }
        // Notices that came due (更新可, 10 days before expiry), and those
        // queued by other use cases (locks): written to the outbox.
        if let Err(e) = st.svc.queue_renewal_notices().await {
            tracing::error!(error = %e, "queueing notices failed");
        }
        if let Err(e) = st.svc.send_notices().await {
            tracing::error!(error = %e, "sending notices failed");
        }
        // Address refusals counted but not yet written, as one row each.
        if let Err(e) = st.svc.record_address_refusals().await {
            tracing::error!(error = %e, "recording address refusals failed");
        }
        if let Err(e) = st.svc.prune_revocation_log().await {
            tracing::error!(error = %e, "pruning the revocation log failed");
        }
    }
}
