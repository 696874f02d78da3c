//! The PKI listener's quick answer to OCSP.
//!
//! Most OCSP clients (`openssl ocsp`, the fetchers of browsers and TLS
//! libraries, a relying party's checker) open a connection, POST one
//! request and close it. When such a request is whole in the connection's
//! first read and its answer is in memory (pre-signed or cached), the
//! accept loop answers it itself: one read, one write that carries the
//! response and the FIN in one segment, and the close. The connection never
//! gets an HTTP connection task of its own, which costs more than the
//! lookup. (Its reads and writes go to the socket directly, not through the
//! reactor's readiness: the request is usually there before the reactor
//! has heard of the connection.)
//!
//! Anything else (a partial first read, keep-alive, GET, another path, a
//! chunked body, a request whose answer must be signed) goes to the
//! listener's HTTP server with the bytes already read in front of the
//! stream, and is served exactly as without this.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::SystemTime;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// How much of a connection's first read is looked at: an OCSP request is
/// about a hundred octets; a first read that fills this goes the long way.
const FIRST_READ: usize = 4096;

/// What became of a connection's first read.
pub(crate) enum First<S> {
    /// Answered and closed.
    Answered,
    /// The client had gone, or the socket failed: closed.
    Gone,
    /// Nothing to read yet.
    Waiting(S),
    /// For the HTTP server, with the bytes read so far.
    Serve(S, Vec<u8>),
    /// The answer went out in part only (a full send buffer): the rest is
    /// to be written before the connection is shut down.
    Finish(S, Vec<u8>),
}

impl First<std::net::TcpStream> {
    /// The same, its socket (non-blocking) registered with the current
    /// runtime's reactor; `None` if that failed (closed).
    pub(crate) fn into_tokio(self) -> Option<First<TcpStream>> {
        let tokio = |s: std::net::TcpStream| TcpStream::from_std(s).ok();
        Some(match self {
            First::Answered => First::Answered,
            First::Gone => First::Gone,
            First::Waiting(s) => First::Waiting(tokio(s)?),
            First::Serve(s, read) => First::Serve(tokio(s)?, read),
            First::Finish(s, rest) => First::Finish(tokio(s)?, rest),
        })
    }
}

/// The accept loop's state for quick answers: a read buffer and the
/// current `Date` header, both reused.
pub(crate) struct Quick {
    buf: Box<[u8; FIRST_READ]>,
    date: (u64, String),
    out: Vec<u8>,
}

impl Quick {
    pub(crate) fn new() -> Self {
        Self {
            buf: Box::new([0; FIRST_READ]),
            date: (u64::MAX, String::new()),
            out: Vec::with_capacity(1024),
        }
    }

    /// Reads what `tcp` holds already and answers it if it is a
    /// close-delimited OCSP POST whose answer `answer` finds in memory.
    /// Never blocks, and reads the socket itself, whatever a reactor knows
    /// of it.
    pub(crate) fn first_read<S: std::os::fd::AsFd>(
        &mut self,
        tcp: S,
        answer: impl FnOnce(&[u8]) -> Option<axum::body::Bytes>,
    ) -> First<S> {
        use rustix::io::Errno;
        let n = match rustix::net::recv(&tcp, &mut self.buf[..], rustix::net::RecvFlags::DONTWAIT) {
            Ok((_, 0)) => return First::Gone,
            Ok((_, n)) => n,
            Err(Errno::AGAIN | Errno::INTR) => return First::Waiting(tcp),
            Err(_) => return First::Gone,
        };
        let read = &self.buf[..n];
        let Some(body) = ocsp_post(read).filter(|_| n < FIRST_READ) else {
            return First::Serve(tcp, read.to_vec());
        };
        let Some(response) = answer(body) else {
            return First::Serve(tcp, read.to_vec());
        };
        self.out.clear();
        write_head(&mut self.out, response.len(), date(&mut self.date));
        self.out.extend_from_slice(&response);
        // MSG_MORE holds the segment back until the close, which sends the
        // FIN in it: one segment, not two. (Nothing is left unread, so the
        // close is a graceful one, not a reset.)
        let sent = rustix::net::send(
            &tcp,
            &self.out,
            rustix::net::SendFlags::MORE
                | rustix::net::SendFlags::NOSIGNAL
                | rustix::net::SendFlags::DONTWAIT,
        );
        match sent {
            Ok(n) if n == self.out.len() => First::Answered,
            Ok(n) => First::Finish(tcp, self.out[n..].to_vec()),
            Err(Errno::AGAIN | Errno::INTR) => First::Finish(tcp, self.out.clone()),
            Err(_) => First::Gone,
        }
    }
}

/// Waits until `tcp` has something to read (or its end). The reactor's
/// readiness alone can be stale, so it is checked by peeking, which clears
/// it when nothing is there.
pub(crate) async fn request_come(tcp: &TcpStream) -> std::io::Result<()> {
    loop {
        tcp.readable().await?;
        let peeked = tcp.try_io(tokio::io::Interest::READABLE, || {
            rustix::net::recv(tcp, &mut [0u8; 1][..], rustix::net::RecvFlags::PEEK)
                .map_err(std::io::Error::from)
        });
        match peeked {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

/// The `Date` header's value, made again once a second.
fn date(kept: &mut (u64, String)) -> &str {
    let now = SystemTime::now();
    let second = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if kept.0 != second {
        *kept = (second, httpdate::fmt_http_date(now));
    }
    &kept.1
}

/// The head of a 200 answer carrying an OCSP response of `len` octets, with
/// the headers the HTTP server gives the same answer.
fn write_head(out: &mut Vec<u8>, len: usize, date: &str) {
    use std::io::Write as _;
    let _ = write!(
        out,
        "HTTP/1.1 200 OK\r\ncontent-type: application/ocsp-response\r\ncache-control: no-cache\r\ncontent-length: {len}\r\nconnection: close\r\ndate: {date}\r\n\r\n"
    );
}

/// The DER body of `bytes` if they are exactly one whole request
/// `POST /pki/ocsp` (HTTP/1.0 or 1.1) with a `Content-Length` body, after
/// which the client wants the connection closed; `None` for anything else,
/// which the HTTP server then serves (or refuses) as it would any request.
pub(crate) fn ocsp_post(bytes: &[u8]) -> Option<&[u8]> {
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut req = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(head) = req.parse(bytes).ok()? else {
        return None;
    };
    if req.method != Some("POST") || req.path != Some("/pki/ocsp") {
        return None;
    }
    let version = req.version?;
    if version > 1 {
        return None;
    }
    let (mut close, mut keep_alive, mut length) = (false, false, None);
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value).ok()?.trim_matches([' ', '\t']);
            if length.is_some() || v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            length = Some(v.parse::<usize>().ok()?);
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in std::str::from_utf8(h.value).ok()?.split(',') {
                match token.trim_matches([' ', '\t']) {
                    t if t.eq_ignore_ascii_case("close") => close = true,
                    t if t.eq_ignore_ascii_case("keep-alive") => keep_alive = true,
                    _ => return None,
                }
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding")
            || h.name.eq_ignore_ascii_case("expect")
            || h.name.eq_ignore_ascii_case("upgrade")
        {
            return None;
        }
    }
    // `close` ends the connection in either version; HTTP/1.0 also closes
    // when not asked to keep it alive.
    let close = close || (version == 0 && !keep_alive);
    let body = bytes.get(head..)?;
    (close && length? == body.len() && !body.is_empty()).then_some(body)
}

/// A stream with bytes already read from it in front.
pub(crate) struct Prefixed<T> {
    first: Vec<u8>,
    at: usize,
    inner: T,
}

impl<T> Prefixed<T> {
    pub(crate) fn new(first: Vec<u8>, inner: T) -> Self {
        Self {
            first,
            at: 0,
            inner,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Prefixed<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.at < self.first.len() {
            let n = buf.remaining().min(self.first.len() - self.at);
            let at = self.at;
            buf.put_slice(&self.first[at..at + n]);
            self.at += n;
            if self.at == self.first.len() {
                self.first = Vec::new();
                self.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Prefixed<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
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

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"\x30\x42fake-ocsp-request-der";

    fn request(version: &str, headers: &str, body: &[u8]) -> Vec<u8> {
        let mut r = format!(
            "POST /pki/ocsp HTTP/{version}\r\nHost: pki.example\r\nContent-Type: application/ocsp-request\r\n{headers}Content-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        r
    }

    #[test]
    fn a_whole_close_delimited_post_is_taken_and_nothing_else() {
        // Taken: HTTP/1.1 asking to close, HTTP/1.0 (closes by default).
        for r in [
            request("1.1", "Connection: close\r\n", BODY),
            request("1.0", "", BODY),
            request("1.0", "Connection: close\r\n", BODY),
            request("1.1", "Connection: keep-alive, close\r\n", BODY),
            request("1.0", "Connection: Keep-Alive, Close\r\n", BODY),
        ] {
            assert_eq!(ocsp_post(&r), Some(BODY), "{}", String::from_utf8_lossy(&r));
        }
        // Left to the HTTP server.
        let close = "Connection: close\r\n";
        let mut refused = vec![
            request("1.1", "", BODY),
            request("1.1", "Connection: keep-alive\r\n", BODY),
            request("1.0", "Connection: keep-alive\r\n", BODY),
            request("1.1", "Connection: close, upgrade\r\n", BODY),
            request(
                "1.1",
                &format!("{close}Transfer-Encoding: chunked\r\n"),
                BODY,
            ),
            request("1.1", &format!("{close}Expect: 100-continue\r\n"), BODY),
            request("1.1", &format!("{close}Content-Length: 3\r\n"), BODY),
            request("1.1", &format!("{close}Upgrade: h2c\r\n"), BODY),
            request("1.1", close, b""),
        ];
        let whole = request("1.1", close, BODY);
        // The body cut short, or followed by more (a pipelined request).
        refused.push(whole[..whole.len() - 1].to_vec());
        refused.push([whole.as_slice(), b"G"].concat());
        // The head cut anywhere.
        let head = whole.len() - BODY.len();
        for cut in [0, 1, 10, head - 2, head - 1] {
            refused.push(whole[..cut].to_vec());
        }
        // Another method, path or version; a sign or spaces in the length.
        for (from, to) in [
            ("POST", "GET"),
            ("POST", "PUT"),
            ("/pki/ocsp", "/pki/ocsp?x=1"),
            ("/pki/ocsp", "/pki/ocsp/"),
            ("/pki/ocsp", "/pki/OCSP"),
            ("HTTP/1.1", "HTTP/2.0"),
            ("Content-Length: ", "Content-Length: +"),
            ("Content-Length: ", "Content-Length: -"),
        ] {
            let text = String::from_utf8_lossy(&whole).replacen(from, to, 1);
            refused.push(text.into_bytes());
        }
        for r in refused {
            assert_eq!(ocsp_post(&r), None, "{:?}", String::from_utf8_lossy(&r));
        }
    }

    /// What hyper, the listener's HTTP server, makes of `bytes`: the
    /// requests it hands to the service (method, path, body) and whether
    /// it closes the connection after answering.
    async fn as_hyper_reads_it(bytes: Vec<u8>) -> (Vec<(String, String, Vec<u8>)>, bool) {
        use http_body_util::BodyExt;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let record = seen.clone();
        let service =
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let record = record.clone();
                async move {
                    let method = req.method().to_string();
                    let path = req.uri().to_string();
                    let body = req.into_body().collect().await?.to_bytes().to_vec();
                    record.lock().unwrap().push((method, path, body));
                    Ok::<_, hyper::Error>(hyper::Response::new(http_body_util::Full::new(
                        axum::body::Bytes::from_static(b"ok"),
                    )))
                }
            });
        let conn = hyper::server::conn::http1::Builder::new()
            .serve_connection(hyper_util::rt::TokioIo::new(server), service);
        let served = tokio::spawn(conn);
        client.write_all(&bytes).await.unwrap();
        // Hyper closes a close-delimited exchange itself; for anything else
        // the client's end of input ends it.
        let mut out = Vec::new();
        let mut chunk = [0u8; 1024];
        let mut closed_by_server = false;
        loop {
            match tokio::time::timeout(std::time::Duration::from_secs(5), client.read(&mut chunk))
                .await
            {
                Ok(Ok(0)) => {
                    closed_by_server = true;
                    break;
                }
                Ok(Ok(n)) => out.extend_from_slice(&chunk[..n]),
                Ok(Err(_)) => break,
                // Still open after answering (or waiting for more): ours
                // to end.
                Err(_) => break,
            }
            if out.windows(4).any(|w| w == b"\r\n\r\n") && out.ends_with(b"ok") {
                // Answered; does hyper close now?
                match tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    client.read(&mut chunk),
                )
                .await
                {
                    Ok(Ok(0)) => closed_by_server = true,
                    _ => closed_by_server = false,
                }
                break;
            }
        }
        drop(client);
        let _ = served.await;
        let seen = seen.lock().unwrap().clone();
        (seen, closed_by_server)
    }

    /// xorshift64*: reproducible random mutations.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn mutate(seed: &[u8], rng: &mut u64) -> Vec<u8> {
        let mut b = seed.to_vec();
        let tokens: &[&[u8]] = &[
            b"\r\n",
            b"\n",
            b" ",
            b"\t",
            b":",
            b",",
            b"close",
            b"keep-alive",
            b"Content-Length: 5\r\n",
            b"Transfer-Encoding: chunked\r\n",
            b"Connection: close\r\n",
            b"Connection: keep-alive\r\n",
            b"0",
            b"\x00",
            b"\xff",
            b"HTTP/1.0",
        ];
        for _ in 0..=(next(rng) % 3) {
            let at = (next(rng) as usize) % (b.len() + 1);
            match next(rng) % 5 {
                0 if !b.is_empty() => {
                    let i = at.min(b.len() - 1);
                    b[i] ^= 1 << (next(rng) % 8);
                }
                1 => {
                    let t = tokens[(next(rng) as usize) % tokens.len()];
                    b.splice(at..at, t.iter().copied());
                }
                2 => {
                    let end = (at + 1 + (next(rng) as usize) % 8).min(b.len());
                    b.drain(at.min(end)..end);
                }
                3 => b.truncate(at),
                _ => {
                    let c = (next(rng) % 256) as u8;
                    b.insert(at, c);
                }
            }
        }
        b
    }

    /// Differential fuzzing: whatever the quick path takes, hyper takes as
    /// exactly one request `POST /pki/ocsp` with the same body, and closes
    /// the connection after answering it. (The quick path may leave to
    /// hyper what hyper would also take: that costs speed, not meaning.)
    #[tokio::test]
    async fn what_the_quick_path_takes_hyper_reads_the_same_way() {
        let seeds = [
            request("1.1", "Connection: close\r\n", BODY),
            request("1.0", "", BODY),
            request("1.1", "X-A: 1\r\nConnection:close\r\n", BODY),
            request("1.0", "connection: CLOSE\r\n", &[0x30; 40]),
            request("1.1", "Connection: keep-alive, close\r\n", BODY),
        ];
        let mut rng = 0x5eed_0c5b_u64;
        let (mut taken, mut left) = (0, 0);
        for round in 0..3000 {
            let seed = &seeds[round % seeds.len()];
            let bytes = if round < seeds.len() {
                seed.clone()
            } else {
                mutate(seed, &mut rng)
            };
            let Some(body) = ocsp_post(&bytes) else {
                left += 1;
                continue;
            };
            taken += 1;
            let body = body.to_vec();
            let (seen, closed) = as_hyper_reads_it(bytes.clone()).await;
            let shown = String::from_utf8_lossy(&bytes).into_owned();
            assert_eq!(
                seen,
                vec![("POST".to_owned(), "/pki/ocsp".to_owned(), body)],
                "{shown:?}"
            );
            assert!(closed, "hyper would keep {shown:?} open");
        }
        // Both ways were exercised.
        assert!(taken >= 100 && left >= 1000, "taken {taken}, left {left}");
    }

    #[tokio::test]
    async fn the_bytes_read_first_come_before_the_rest_of_the_stream() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut client, server) = tokio::io::duplex(64);
        let mut s = Prefixed::new(b"POST /pki".to_vec(), server);
        client.write_all(b"/ocsp HTTP/1.1").await.unwrap();
        drop(client);
        let mut all = String::new();
        s.read_to_string(&mut all).await.unwrap();
        assert_eq!(all, "POST /pki/ocsp HTTP/1.1");
    }
}
