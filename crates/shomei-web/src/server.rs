//! The HTTPS listener: rustls over TCP, one HTTP/1.1 connection per task,
//! the peer address handed to handlers, and background upkeep (idle sessions,
//! CRL refresh).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use shomei_service::{OK, Shomei};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::pages::ClientAddr;
use crate::session::Sessions;
use crate::{AppState, router};

/// How to run the portal.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Address to bind; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Extra names (DNS or IP) the server certificate must cover, besides
    /// localhost, 127.0.0.1 and ::1.
    pub extra_names: Vec<String>,
}

/// A started server. Dropping it does not stop it; call `shutdown`.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub sessions: Arc<Sessions>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Runs until the process is asked to stop (Ctrl-C / SIGTERM).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS set-up failed: {0}")]
    Tls(String),
}

fn tls_config(svc: &Shomei, extra: &[String]) -> Result<rustls::ServerConfig, StartError> {
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
    let (chain, key) = svc
        .ca()
        .server_tls(&names, svc.now())
        .map_err(|e| StartError::Tls(e.to_string()))?;
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

/// Serves on an already bound listener.
pub async fn start_on(
    svc: Arc<Shomei>,
    listener: TcpListener,
    opts: ServerOptions,
) -> Result<RunningServer, StartError> {
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: opts.listen,
        source,
    })?;
    let acceptor = TlsAcceptor::from(Arc::new(tls_config(&svc, &opts.extra_names)?));
    let sessions = Arc::new(Sessions::default());
    let state = AppState {
        svc: svc.clone(),
        sessions: sessions.clone(),
    };
    let app = router(state.clone());
    let (stop, mut stopped) = watch::channel(false);

    let upkeep = tokio::spawn(upkeep(state, stop.subscribe()));
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                accepted = listener.accept() => {
                    let Ok((tcp, peer)) = accepted else { continue };
                    let acceptor = acceptor.clone();
                    let app = app.clone();
                    tokio::spawn(async move {
                        let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await else {
                            return;
                        };
                        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                            req.extensions_mut().insert(ClientAddr(peer));
                            app.clone().oneshot(req)
                        });
                        let conn = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                            .http1_only()
                            .serve_connection(TokioIo::new(tls), service)
                            .await;
                        if let Err(e) = conn {
                            tracing::debug!(error = %e, %peer, "connection ended with an error");
                        }
                    });
                }
            }
        }
        upkeep.abort();
    });
    Ok(RunningServer {
        addr,
        sessions,
        stop,
        task,
    })
}

/// Every 30 s: end idle sessions (writing their セッションタイムアウト rows)
/// and refresh the CRL before it goes stale.
async fn upkeep(st: AppState, mut stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stopped.changed() => return,
            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
        }
        for user in st
            .sessions
            .expire_idle(st.svc.now(), st.svc.settings().session_idle())
        {
            if let Ok(Some(s)) = st.svc.session(user).await {
                let _ = st
                    .svc
                    .record(&s.actor, "セッションタイムアウト", "", OK, "", "")
                    .await;
            }
        }
        if let Err(e) = st.svc.refresh_crl_if_due().await {
            tracing::error!(error = %e, "CRL refresh failed");
        }
    }
}
