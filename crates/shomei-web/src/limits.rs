//! What every listener holds at most, and for how long: connections per
//! listener and per client address, the TLS handshake, request headers and
//! idleness under a timeout, and accept errors (EMFILE and friends) answered
//! by backing off instead of spinning. Each refusal is counted in the metrics.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use shomei_service::{ConnRefusal, Listener, Metrics, Settings};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// The limits of one listener, from the settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max: usize,
    pub per_address: usize,
    pub handshake: Duration,
    pub header: Duration,
    pub idle: Duration,
}

impl Limits {
    pub(crate) fn from_settings(s: &Settings) -> Self {
        Self {
            max: s.max_connections,
            per_address: s.max_connections_per_address,
            handshake: Duration::from_secs(s.tls_handshake_timeout_seconds),
            header: Duration::from_secs(s.header_timeout_seconds),
            idle: Duration::from_secs(s.idle_timeout_seconds),
        }
    }
}

/// Counts a listener's open connections, in all and per client address.
pub(crate) struct Gate {
    kind: Listener,
    limits: Limits,
    open: AtomicUsize,
    per_address: Mutex<HashMap<IpAddr, usize>>,
    svc: Arc<shomei_service::Shomei>,
}

/// A connection's place on its listener, given back when it is dropped.
pub(crate) struct Admitted {
    gate: Arc<Gate>,
    ip: IpAddr,
}

impl Gate {
    pub(crate) fn new(
        kind: Listener,
        limits: Limits,
        svc: Arc<shomei_service::Shomei>,
    ) -> Arc<Self> {
        Arc::new(Self {
            kind,
            limits,
            open: AtomicUsize::new(0),
            per_address: Mutex::default(),
            svc,
        })
    }

    fn metrics(&self, f: impl FnOnce(&Metrics)) {
        f(self.svc.metrics());
    }

    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    /// Admits a connection from `peer`, or says which cap it hit.
    pub(crate) fn admit(self: &Arc<Self>, peer: SocketAddr) -> Result<Admitted, ConnRefusal> {
        let ip = peer.ip();
        let refusal = {
            let mut m = self.per_address.lock().unwrap_or_else(|p| p.into_inner());
            let n = m.entry(ip).or_insert(0);
            if *n >= self.limits.per_address {
                Some(ConnRefusal::AddressFull)
            } else if self.open.load(Ordering::Relaxed) >= self.limits.max {
                Some(ConnRefusal::ListenerFull)
            } else {
                *n += 1;
                self.open.fetch_add(1, Ordering::Relaxed);
                None
            }
        };
        if let Some(r) = refusal {
            self.forget_if_unused(ip);
            self.metrics(|m| m.connection_refused(self.kind, r));
            return Err(r);
        }
        self.metrics(|m| m.connection(self.kind, true));
        Ok(Admitted {
            gate: self.clone(),
            ip,
        })
    }

    fn forget_if_unused(&self, ip: IpAddr) {
        let mut m = self.per_address.lock().unwrap_or_else(|p| p.into_inner());
        if m.get(&ip) == Some(&0) {
            m.remove(&ip);
        }
    }

    /// Counts a failed accept and says how long to pause before the next:
    /// `backoff`, doubled, from 5 ms up to a second.
    pub(crate) fn accept_failed(&self, e: &std::io::Error, backoff: &mut Duration) -> Duration {
        self.metrics(|m| m.accept_error(self.kind));
        *backoff = (*backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
        if *backoff == Duration::from_secs(1) {
            tracing::warn!(error = %e, listener = self.kind.label(), "accept failing: backing off");
        }
        *backoff
    }

    /// A handshake that did not finish in time.
    pub(crate) fn handshake_timed_out(&self) {
        self.metrics(|m| m.connection_refused(self.kind, ConnRefusal::HandshakeTimeout));
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        {
            let mut m = self
                .gate
                .per_address
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(n) = m.get_mut(&self.ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    m.remove(&self.ip);
                }
            }
        }
        self.gate.open.fetch_sub(1, Ordering::Relaxed);
        self.gate.metrics(|m| m.connection(self.gate.kind, false));
    }
}

/// The next connection of `listener`. An accept error (too many open files,
/// out of memory, …) is counted and answered by a pause that doubles up to a
/// second, so the loop never spins while the condition lasts.
async fn accept(
    listener: &TcpListener,
    gate: &Gate,
    backoff: &mut Duration,
) -> Option<(TcpStream, SocketAddr)> {
    match listener.accept().await {
        Ok(c) => {
            *backoff = Duration::ZERO;
            Some(c)
        }
        Err(e) => {
            tokio::time::sleep(gate.accept_failed(&e, backoff)).await;
            None
        }
    }
}

/// The next connection `gate` admits, with its place, until `stopped`
/// (`None`). Connections over a cap are closed at once, unserved: the cap is
/// what keeps the rest served.
pub(crate) async fn next_admitted(
    listener: &TcpListener,
    gate: &Arc<Gate>,
    backoff: &mut Duration,
    stopped: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<(TcpStream, SocketAddr, Admitted)> {
    loop {
        let accepted = tokio::select! {
            _ = stopped.changed() => return None,
            a = accept(listener, gate, backoff) => a,
        };
        let Some((tcp, peer)) = accepted else {
            continue;
        };
        let Ok(admitted) = gate.admit(peer) else {
            continue;
        };
        // Small answers go out at once (no Nagle delay behind delayed ACKs).
        let _ = tcp.set_nodelay(true);
        return Some((tcp, peer, admitted));
    }
}

/// A stream that remembers when it last moved a byte, for the idle timeout.
pub(crate) struct Watched<T> {
    inner: T,
    last: Arc<AtomicU64>,
    start: Instant,
}

/// How long since a watched stream last moved a byte.
#[derive(Clone)]
pub(crate) struct Idle {
    last: Arc<AtomicU64>,
    start: Instant,
}

impl Idle {
    pub(crate) fn for_how_long(&self) -> Duration {
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

impl<T> Watched<T> {
    pub(crate) fn new(inner: T) -> (Self, Idle) {
        let last = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        (
            Self {
                inner,
                last: last.clone(),
                start,
            },
            Idle { last, start },
        )
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    // Forwarded so that a TLS flight (ServerHello, ChangeCipherSpec, the
    // encrypted rest) leaves in one system call and one segment, not one each.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Drives `conn` until it ends or has moved no byte for `idle`.
pub(crate) async fn until_idle<F: std::future::Future>(conn: F, idle: &Idle, limit: Duration) {
    tokio::pin!(conn);
    let tick = (limit / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = &mut conn => return,
            _ = tokio::time::sleep(tick) => {
                if idle.for_how_long() >= limit {
                    tracing::debug!("connection idle too long: closed");
                    return;
                }
            }
        }
    }
}

/// Closes a connection whose TLS handshake failed so that the client reads
/// the alert (certificate required, revoked, unknown CA): our side is shut
/// down first, then what the client still sends is read and dropped for a
/// moment. Closing at once with its data unread would send a reset, which
/// can overtake the alert and leave the client with "connection reset"
/// instead of the reason.
pub(crate) async fn linger<T: AsyncRead + AsyncWrite + Unpin>(mut io: T) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = io.shutdown().await;
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        while let Ok(n) = io.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// Raises the soft limit on open files to the hard one (the default soft
/// limit, often 1024, is what a flood of idle connections exhausts first)
/// and logs both.
pub fn raise_open_files_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let before = getrlimit(Resource::Nofile);
    let raised = Rlimit {
        current: before.maximum,
        maximum: before.maximum,
    };
    let now = match setrlimit(Resource::Nofile, raised) {
        Ok(()) => getrlimit(Resource::Nofile),
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-files limit");
            before
        }
    };
    let show = |v: Option<u64>| v.map_or("unlimited".to_owned(), |n| n.to_string());
    tracing::info!(
        soft_before = show(before.current),
        soft = show(now.current),
        hard = show(now.maximum),
        "open-files limit"
    );
}
