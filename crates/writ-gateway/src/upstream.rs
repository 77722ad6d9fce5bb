//! Forwarding to upstreams over kept-alive connections, HTTP or HTTPS.
//!
//! Each worker thread keeps its own idle connections to each upstream address, and a
//! request is written to its connection and its answer read by the task serving the
//! caller: a request, its upstream connection and the bytes of both stay on one thread
//! and in one task, and the only thing shared on the way is an uncontended lock on the
//! worker's idle list. What goes on the wire, and how an answer's end is found, is
//! [`crate::http1`]; this module moves the bytes. A connection goes back to the list
//! when the upstream's answer has been read to its end, with nothing after it; an answer
//! dropped before its end (the caller went away) closes it, since HTTP/1.1 cannot reuse
//! a connection with an unread body on it.
//!
//! An `https://` upstream is the same HTTP/1.1 over rustls (TLS 1.2 or 1.3, rustls's safe
//! defaults, the ring provider): its certificate is verified against the system's roots or
//! the route's `upstream_ca`, for the upstream's host name (sent as SNI) or IP address,
//! and sessions are resumed across the connections to it. A connection is a `Stream`:
//! plain TCP is used as it is, with no TLS layer, buffer or indirection in its way.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker, ready};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::HeaderValue;
use hyper::http::uri::PathAndQuery;
use hyper::{Method, Request, Response, Uri};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::http1::{self, Framing};

/// How long opening a connection to an upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// An idle connection unused for this long is closed when next found, not used: the
/// upstream may be about to close it (nginx's default keep-alive timeout is 75 s).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The most idle connections a worker keeps to one upstream address.
const MAX_IDLE: usize = 1024;

/// A request body up to this size goes out in one write with its head; a bigger one is
/// written after it rather than copied.
const COALESCE_BODY: usize = 16 * 1024;

/// How much room a read from an upstream asks for.
const READ_SIZE: usize = 8 * 1024;

/// A connection's bytes: plain TCP, or TLS over TCP (boxed: a TLS session is large, and
/// a plain connection should not carry its room).
enum Stream {
    /// An `http://` upstream.
    Plain(TcpStream),
    /// An `https://` upstream, its handshake done.
    Tls(Box<TlsStream<TcpStream>>),
}

/// An open connection to an upstream, between answers: its read buffer is empty.
struct Conn {
    stream: Stream,
    /// Bytes read (decrypted, over TLS) and not yet consumed.
    buf: BytesMut,
}

impl Conn {
    /// Whether the upstream has not closed it, nor sent anything unasked. Asks the
    /// socket only if the runtime saw it become readable; costs no system call otherwise.
    /// Over TLS, records that carry no data (session tickets) are taken in, and a
    /// `close_notify` counts as a close.
    fn is_open(&mut self) -> bool {
        let mut probe = [0u8; 1];
        match &mut self.stream {
            Stream::Plain(tcp) => {
                matches!(tcp.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
            Stream::Tls(tls) => {
                // Polled once, not awaited: whoever next waits on it registers its waker.
                let mut cx = Context::from_waker(Waker::noop());
                let mut probe = ReadBuf::new(&mut probe);
                Pin::new(&mut **tls)
                    .poll_read(&mut cx, &mut probe)
                    .is_pending()
            }
        }
    }

    /// Writes what it can of `unsent` without waiting, and has `cx` woken when more can
    /// go; `None` once all is written (and, over TLS, flushed), or once the upstream stops
    /// taking it (its answer is what counts then).
    fn push(&mut self, unsent: &mut Option<Bytes>, cx: &mut Context<'_>) {
        let tcp = match &mut self.stream {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => return push_tls(tls, unsent, cx),
        };
        while let Some(tail) = unsent.as_mut() {
            match tcp.try_write(tail) {
                Ok(n) if n > 0 => {
                    tail.advance(n);
                    if tail.is_empty() {
                        *unsent = None;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => match tcp.poll_write_ready(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(_)) => *unsent = None,
                    Poll::Pending => return,
                },
                _ => *unsent = None,
            }
        }
    }

    /// Reads more onto the end of the buffer; `Ok(0)` when the upstream closed.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        self.buf.reserve(READ_SIZE);
        let tcp = match &mut self.stream {
            Stream::Plain(tcp) => tcp,
            // A read future holds nothing between polls: made afresh each time.
            Stream::Tls(tls) => return std::pin::pin!(tls.read_buf(&mut self.buf)).poll(cx),
        };
        loop {
            match tcp.try_read_buf(&mut self.buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(tcp.poll_read_ready(cx))?;
                }
                read => return Poll::Ready(read),
            }
        }
    }
}

/// [`Conn::push`] over TLS: the bytes go through the session, which is flushed once they
/// are all in.
fn push_tls(tls: &mut TlsStream<TcpStream>, unsent: &mut Option<Bytes>, cx: &mut Context<'_>) {
    while let Some(tail) = unsent.as_mut() {
        let tls = Pin::new(&mut *tls);
        if tail.is_empty() {
            match tls.poll_flush(cx) {
                Poll::Pending => return,
                Poll::Ready(_) => *unsent = None,
            }
            continue;
        }
        match tls.poll_write(cx, tail) {
            Poll::Ready(Ok(n)) if n > 0 => tail.advance(n),
            Poll::Pending => return,
            _ => *unsent = None,
        }
    }
}

/// A worker's idle connections to one address, each with when it became idle; the most
/// recently used last.
type Idle = Mutex<VecDeque<(Conn, Instant)>>;

/// Where upstreams are reached (a host and port), with each worker's idle connections.
struct Endpoint {
    host: String,
    port: u16,
    /// For an `https://` upstream: how to verify it, and the name to verify.
    tls: Option<TlsTarget>,
    /// Indexed by worker.
    idle: Box<[Idle]>,
}

/// What a TLS connection to an upstream is made with.
struct TlsTarget {
    /// The roots its certificate must chain to; its session cache is shared by all
    /// connections made with it, so that they resume sessions rather than repeat full
    /// handshakes.
    config: Arc<rustls::ClientConfig>,
    /// The host (a DNS name, sent as SNI, or an IP address) its certificate must name.
    name: ServerName<'static>,
}

impl Endpoint {
    /// An idle connection of `worker`'s, the most recently used first; `None` if there
    /// is none that is open and was used within [`IDLE_TIMEOUT`].
    fn take(&self, worker: usize) -> Option<Conn> {
        let now = Instant::now();
        let mut idle = self.idle[worker % self.idle.len()]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        while let Some((mut conn, since)) = idle.pop_back() {
            if now.duration_since(since) >= IDLE_TIMEOUT {
                // The rest are older still.
                idle.clear();
                return None;
            }
            if conn.is_open() {
                return Some(conn);
            }
        }
        None
    }

    /// Keeps `conn` for `worker`'s next request here, unless the worker already keeps
    /// [`MAX_IDLE`] (then it is dropped, which closes it). A read buffer that grew past a
    /// few reads' worth (a large answer head) is let go rather than kept while idle.
    fn put(&self, worker: usize, mut conn: Conn) {
        let mut idle = self.idle[worker % self.idle.len()]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE && conn.buf.is_empty() {
            if conn.buf.capacity() > 4 * READ_SIZE {
                conn.buf = BytesMut::new();
            }
            idle.push_back((conn, Instant::now()));
        }
    }

    /// Closes `worker`'s idle connections here that the upstream closed (or sent
    /// something on unasked), or that went unused for [`IDLE_TIMEOUT`].
    fn sweep(&self, worker: usize) {
        let now = Instant::now();
        let mut idle = self.idle[worker % self.idle.len()]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        idle.retain_mut(|(conn, since)| {
            now.duration_since(*since) < IDLE_TIMEOUT && conn.is_open()
        });
    }

    /// Opens a connection, and over TLS makes the handshake, within [`CONNECT_TIMEOUT`].
    async fn connect(&self) -> Result<Conn, SendError> {
        let late = || {
            SendError::Other(format!(
                "connecting: no answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            ))
        };
        let deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
        let address = (self.host.as_str(), self.port);
        let tcp = match tokio::time::timeout_at(deadline, TcpStream::connect(address)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => return Err(SendError::Other(format!("connecting: {e}"))),
            Err(_) => return Err(late()),
        };
        let _ = tcp.set_nodelay(true);
        let stream = match &self.tls {
            None => Stream::Plain(tcp),
            Some(tls) => {
                let handshake =
                    TlsConnector::from(tls.config.clone()).connect(tls.name.clone(), tcp);
                match tokio::time::timeout_at(deadline, handshake).await {
                    Ok(Ok(tls)) => Stream::Tls(Box::new(tls)),
                    Ok(Err(e)) => return Err(SendError::Tls(handshake_failure(&e))),
                    Err(_) => return Err(late()),
                }
            }
        };
        Ok(Conn {
            stream,
            buf: BytesMut::new(),
        })
    }
}

/// Why a TLS handshake with an upstream failed, in words an operator can act on, with
/// rustls's name for it. Says nothing secret: the handshake carries none.
fn handshake_failure(e: &io::Error) -> String {
    use rustls::{CertificateError, Error};
    let Some(e) = e.get_ref().and_then(|e| e.downcast_ref::<Error>()) else {
        return format!("handshake failed: {e}");
    };
    match e {
        Error::InvalidCertificate(why) => {
            let what = match why {
                CertificateError::UnknownIssuer => "certificate not trusted",
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => {
                    "certificate not valid for the upstream's host"
                }
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    "certificate expired"
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    "certificate not valid yet"
                }
                CertificateError::Revoked => "certificate revoked",
                _ => "certificate refused",
            };
            format!("{what} ({why:?})")
        }
        Error::AlertReceived(alert) => format!("the upstream refused the handshake ({alert:?})"),
        Error::PeerIncompatible(why) => format!("no protocol in common ({why:?})"),
        other => format!("handshake failed ({other})"),
    }
}

/// Why a request could not be sent to its upstream, or the head of its answer not read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The TLS handshake with an `https://` upstream failed: why (never a secret).
    #[error("upstream TLS: {0}")]
    Tls(String),
    /// Anything else: connecting, writing the request, reading or making sense of the
    /// answer's head.
    #[error("{0}")]
    Other(String),
}

/// An HTTP or HTTPS upstream: where requests go, and what each request to it needs worked
/// out once.
pub struct Upstream {
    endpoint: Arc<Endpoint>,
    /// The `host` header for it: its host, and its port unless the scheme's default.
    pub host: HeaderValue,
    /// The path in front of each request's, without a trailing `/`; empty for none.
    base_path: String,
    /// The longest an answer's body may go without a byte from the upstream.
    read_timeout: Duration,
}

/// Builds upstreams, one [`Endpoint`] (and so one set of idle connections) per address
/// however many routes forward there.
pub struct Upstreams {
    workers: usize,
    endpoints: Vec<Arc<Endpoint>>,
    /// TLS client configurations by the CA file they trust (`None`: the system's roots),
    /// made when an upstream first needs one, each shared by every upstream trusting it.
    tls_configs: Vec<(Option<PathBuf>, Arc<rustls::ClientConfig>)>,
}

impl Upstreams {
    /// For a gateway of `workers` worker threads.
    pub fn new(workers: usize) -> Upstreams {
        Upstreams {
            workers: workers.max(1),
            endpoints: Vec::new(),
            tls_configs: Vec::new(),
        }
    }

    /// The TLS client configuration trusting `ca` (a PEM file of certificates), or the
    /// system's roots.
    fn tls_config(&mut self, ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
        if let Some((_, config)) = self.tls_configs.iter().find(|(c, _)| c.as_deref() == ca) {
            return Ok(config.clone());
        }
        let mut roots = rustls::RootCertStore::empty();
        match ca {
            Some(path) => {
                let shown = path.display();
                let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
                let blocks = pem::parse_many(&text).map_err(|e| format!("{shown}: {e}"))?;
                for block in blocks.into_iter().filter(|b| b.tag() == "CERTIFICATE") {
                    roots
                        .add(CertificateDer::from(block.into_contents()))
                        .map_err(|e| format!("{shown}: {e}"))?;
                }
                if roots.is_empty() {
                    return Err(format!("{shown}: no CERTIFICATE block"));
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    return Err(
                        "no system root certificates were found: name the upstream's CA in upstream_ca"
                            .into(),
                    );
                }
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS versions: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let config = Arc::new(config);
        self.tls_configs
            .push((ca.map(Path::to_path_buf), config.clone()));
        Ok(config)
    }

    /// Closes `worker`'s idle connections that their upstream closed, or that went
    /// unused for [`IDLE_TIMEOUT`]. Called on `worker`'s thread, whose runtime sees the
    /// closes: a connection is otherwise looked at only when it is next taken, and one
    /// kept since a burst of traffic could hold its socket open indefinitely.
    pub fn sweep(&self, worker: usize) {
        for endpoint in &self.endpoints {
            endpoint.sweep(worker);
        }
    }

    /// The upstream at `url` (`http://HOST[:PORT][/PATH]` or `https://...`), whose
    /// answers' bodies fail once `read_timeout` passes without a byte of them. An
    /// `https://` upstream's certificate must chain to a certificate in the PEM file `ca`,
    /// or without one, to the system's roots. Fails on a URL without a host or of another
    /// scheme, and on a CA file that cannot be read or holds no certificate.
    pub fn upstream(
        &mut self,
        url: &str,
        ca: Option<&Path>,
        read_timeout: Duration,
    ) -> Result<Upstream, String> {
        let uri: Uri = url.parse().map_err(|e| format!("{e}"))?;
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or("no host in it")?;
        let (tls, default_port) = match uri.scheme_str() {
            Some("http") => (false, 80),
            Some("https") => (true, 443),
            _ => return Err("write http:// or https://".into()),
        };
        let port = uri.port_u16().unwrap_or(default_port);
        let host_header = if port == default_port {
            host.to_string()
        } else {
            format!("{host}:{port}")
        };
        // An IPv6 literal is bracketed in a URI, not in a socket address.
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let tls = if tls {
            let name = ServerName::try_from(bare.to_string())
                .map_err(|e| format!("{bare:?} cannot be verified as a TLS server name: {e}"))?;
            let config = self.tls_config(ca)?;
            Some(TlsTarget { config, name })
        } else {
            None
        };
        let same_tls = |e: &Endpoint| match (&e.tls, &tls) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(&a.config, &b.config),
            _ => false,
        };
        let endpoint = match self
            .endpoints
            .iter()
            .find(|e| e.host == bare && e.port == port && same_tls(e))
        {
            Some(e) => e.clone(),
            None => {
                let e = Arc::new(Endpoint {
                    host: bare.to_string(),
                    port,
                    tls,
                    idle: (0..self.workers).map(|_| Mutex::default()).collect(),
                });
                self.endpoints.push(e.clone());
                e
            }
        };
        Ok(Upstream {
            endpoint,
            host: HeaderValue::from_str(&host_header).map_err(|e| format!("{e}"))?,
            base_path: uri.path().trim_end_matches('/').to_string(),
            read_timeout,
        })
    }
}

/// How one exchange on one connection failed.
enum Failure {
    /// The connection closed (or was reset) before any of the answer came: a kept-alive
    /// connection the upstream closed as the request went out.
    ClosedBeforeAnswer,
    /// Anything else, as said to the gateway's log.
    Other(String),
}

impl From<Failure> for SendError {
    fn from(f: Failure) -> SendError {
        match f {
            Failure::ClosedBeforeAnswer => {
                SendError::Other("connection closed before message completed".into())
            }
            Failure::Other(e) => SendError::Other(e),
        }
    }
}

impl Upstream {
    /// The request target (origin form) of a request for `uri`, the path and query the
    /// caller sent: the upstream's base path, if any, then the caller's.
    pub fn target(&self, uri: &Uri) -> Result<Uri, String> {
        let path_and_query = uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        if self.base_path.is_empty() {
            return Ok(Uri::from(path_and_query));
        }
        let mut joined =
            String::with_capacity(self.base_path.len() + path_and_query.as_str().len());
        joined.push_str(&self.base_path);
        joined.push_str(path_and_query.as_str());
        Uri::try_from(joined).map_err(|e| e.to_string())
    }

    /// Sends `request` (its target from [`Upstream::target`], its `host` set) on one of
    /// `worker`'s idle connections, or on a new one, and reads the answer's head; the body
    /// streams from the connection as it is polled.
    ///
    /// An idle connection can close under a request: the upstream's keep-alive timeout
    /// ran out, or it restarted, before the gateway saw the close. When it closed before
    /// any of the answer came, a request with an idempotent method (RFC 9110, section
    /// 9.2.2) is sent again, once, on a new connection, as RFC 9112, section 9.3.1
    /// allows. A `POST` or `PATCH` that may have reached the upstream is not sent twice.
    pub async fn send(
        &self,
        worker: usize,
        request: Request<Bytes>,
    ) -> Result<Response<Pooled>, SendError> {
        let (parts, body) = request.into_parts();
        let target = parts.uri.path_and_query().map_or("/", PathAndQuery::as_str);
        let mut wire = Vec::with_capacity(512 + body.len().min(COALESCE_BODY));
        http1::write_request(&mut wire, &parts.method, target, &parts.headers, body.len());
        let coalesced = body.len() <= COALESCE_BODY;
        if coalesced {
            wire.extend_from_slice(&body);
        }
        let head_request = parts.method == Method::HEAD;
        let mut again = false;
        loop {
            // A request sent again goes out on a new connection: another idle one may
            // be as stale, and a request is not replayed more than once.
            let idle = if again {
                None
            } else {
                self.endpoint.take(worker)
            };
            let (mut conn, reused) = match idle {
                Some(conn) => (conn, true),
                None => (self.endpoint.connect().await?, false),
            };
            let sent = exchange(
                &mut conn,
                &wire,
                (!coalesced).then_some(&body),
                head_request,
            );
            match sent.await {
                Ok((answer, unsent)) => return Ok(self.answer(worker, conn, answer, unsent)),
                Err(Failure::ClosedBeforeAnswer) if reused && parts.method.is_idempotent() => {
                    again = true;
                }
                Err(failure) => return Err(failure.into()),
            }
        }
    }

    /// The answer whose head is `answer`, its body streaming from `conn`, on which the
    /// request's `unsent` end still goes out.
    fn answer(
        &self,
        worker: usize,
        conn: Conn,
        answer: http1::Answer,
        unsent: Option<Bytes>,
    ) -> Response<Pooled> {
        let mut body = Pooled {
            first: None,
            unsent,
            framing: answer.framing,
            conn: Some(conn),
            keep_alive: answer.keep_alive,
            endpoint: self.endpoint.clone(),
            worker,
            read_timeout: self.read_timeout,
            last_read: None,
            stall: None,
        };
        body.take_whole_body();
        let mut response = Response::new(body);
        *response.status_mut() = answer.status;
        *response.headers_mut() = answer.headers;
        response
    }
}

/// Writes `wire` (and `body`, when not in it) to `conn`, and reads the answer's head.
///
/// A request that fits in one write is written whole, then its answer read. With a body
/// of its own (bigger than [`COALESCE_BODY`]), the answer is read while the body is
/// written: an upstream may answer from the request's head (a 413 or a 401 without
/// reading the body, or a head flushed before it reads the body and answers). Such an
/// early answer is forwarded with what of the request is still unsent, which goes out as
/// the answer's body is read; its connection, with an interrupted exchange on it, is not
/// used again.
async fn exchange(
    conn: &mut Conn,
    wire: &[u8],
    body: Option<&Bytes>,
    head_request: bool,
) -> Result<(http1::Answer, Option<Bytes>), Failure> {
    let Conn { stream, buf } = conn;
    match (stream, body) {
        (Stream::Plain(tcp), None) => send_then_read(tcp, buf, wire, head_request).await,
        (Stream::Tls(tls), None) => send_then_read(&mut **tls, buf, wire, head_request).await,
        (Stream::Plain(tcp), Some(body)) => {
            let (reader, writer) = tcp.split();
            send_while_reading(reader, writer, buf, wire, body, head_request).await
        }
        (Stream::Tls(tls), Some(body)) => {
            let (reader, writer) = tokio::io::split(&mut **tls);
            send_while_reading(reader, writer, buf, wire, body, head_request).await
        }
    }
}

/// Writes `wire`, a whole request, to `stream`, then reads the answer's head.
async fn send_then_read<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    buf: &mut BytesMut,
    wire: &[u8],
    head_request: bool,
) -> Result<(http1::Answer, Option<Bytes>), Failure> {
    stream.write_all(wire).await.map_err(write_failure)?;
    // Over TLS, the last record may still be in the session; on TCP this does nothing.
    stream.flush().await.map_err(write_failure)?;
    let answer = read_head(stream, buf, head_request).await?;
    Ok((answer, None))
}

/// Writes `wire` then `body` to `writer` while reading the answer's head from `reader`
/// (see [`exchange`]).
async fn send_while_reading<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    mut reader: R,
    mut writer: W,
    buf: &mut BytesMut,
    wire: &[u8],
    body: &Bytes,
    head_request: bool,
) -> Result<(http1::Answer, Option<Bytes>), Failure> {
    // How much of `wire`, then `body`, has been written (an atomic only because the
    // future must be `Send`; one task reads and writes it).
    let sent = AtomicUsize::new(0);
    let write = async {
        for part in [wire, &body[..]] {
            let mut at = 0;
            while at < part.len() {
                let n = writer.write(&part[at..]).await?;
                if n == 0 {
                    return Err(io::Error::from(io::ErrorKind::WriteZero));
                }
                at += n;
                sent.fetch_add(n, Ordering::Relaxed);
            }
        }
        writer.flush().await
    };
    let read = read_head(&mut reader, buf, head_request);
    tokio::pin!(write, read);
    tokio::select! {
        biased;
        answer = &mut read => {
            let mut answer = answer?;
            answer.keep_alive = false;
            let sent = sent.load(Ordering::Relaxed);
            let unsent = if sent < wire.len() {
                let mut rest = BytesMut::from(&wire[sent..]);
                rest.extend_from_slice(body);
                rest.freeze()
            } else {
                body.slice(sent - wire.len()..)
            };
            Ok((answer, (!unsent.is_empty()).then_some(unsent)))
        }
        written = &mut write => match written {
            Ok(()) => Ok((read.await?, None)),
            // An answer sent before the upstream stopped reading may still be there.
            Err(e) => match read.await {
                Ok(mut answer) => {
                    answer.keep_alive = false;
                    Ok((answer, None))
                }
                Err(_) => Err(write_failure(e)),
            },
        },
    }
}

/// What a failed write of a request means: a kept-alive connection the upstream closed
/// (reset, or a broken pipe), or something else.
fn write_failure(e: io::Error) -> Failure {
    match e.kind() {
        io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted => Failure::ClosedBeforeAnswer,
        _ => Failure::Other(format!("writing the request: {e}")),
    }
}

/// Reads an answer's head from `reader` into `buf`, which is empty (a connection is
/// pooled only so).
async fn read_head<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    head_request: bool,
) -> Result<http1::Answer, Failure> {
    let mut read_any = false;
    loop {
        buf.reserve(READ_SIZE);
        match reader.read_buf(buf).await {
            Ok(0) | Err(_) if !read_any => return Err(Failure::ClosedBeforeAnswer),
            Ok(0) => {
                return Err(Failure::Other(
                    "the upstream closed the connection within the answer's head".into(),
                ));
            }
            Ok(_) => read_any = true,
            Err(e) => return Err(Failure::Other(format!("reading the answer: {e}"))),
        }
        match http1::read_answer(buf, head_request) {
            Ok(Some(answer)) => return Ok(answer),
            Ok(None) => {}
            Err(e) => return Err(Failure::Other(e.to_string())),
        }
    }
}

/// An upstream's answer body, read from its connection as it is polled, which hands the
/// connection back for reuse once read to its end.
pub struct Pooled {
    /// The body's next bytes, already read.
    first: Option<Bytes>,
    /// The end of the request, not yet written when this answer began; written as the
    /// body is read, until the upstream stops taking it.
    unsent: Option<Bytes>,
    /// How the rest is delimited; `Length` counts the bytes still to read.
    framing: Framing,
    /// The connection, until the body ends or fails: `None` once there are no more
    /// frames but `first`.
    conn: Option<Conn>,
    /// The answer lets the connection carry another request.
    keep_alive: bool,
    endpoint: Arc<Endpoint>,
    worker: usize,
    /// The longest the body may go without a byte from the upstream.
    read_timeout: Duration,
    /// When the upstream last sent any of the body, or the first wait for it began.
    last_read: Option<Instant>,
    /// The timer a wait for more of the body runs against, made at the first wait:
    /// answers that came whole with their head need neither.
    stall: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Pooled {
    /// Takes a `Content-Length` body that came whole with the head (nearly every small
    /// answer does) out of the connection's buffer, and hands the connection back at
    /// once.
    fn take_whole_body(&mut self) {
        let Framing::Length(left) = self.framing else {
            return;
        };
        let Some(conn) = &mut self.conn else { return };
        if (conn.buf.len() as u64) < left {
            return;
        }
        if left > 0 {
            self.first = Some(conn.buf.split_to(left as usize).freeze());
        }
        self.framing = Framing::Length(0);
        self.finish();
    }

    /// The body has ended where its framing says: the connection goes back to the idle
    /// list if the answer allows it and nothing came after the body.
    fn finish(&mut self) {
        if let Some(conn) = self.conn.take()
            && self.keep_alive
        {
            self.endpoint.put(self.worker, conn);
        }
    }

    /// Whether the upstream has sent nothing for `read_timeout`, while waiting for more of
    /// the body; if not, `cx` is woken when it will have.
    fn stalled(&mut self, cx: &mut Context<'_>) -> bool {
        let since = *self.last_read.get_or_insert_with(Instant::now);
        let deadline = tokio::time::Instant::from_std(since + self.read_timeout);
        let stall = self
            .stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        // Bytes came since the timer was set: it runs from the last of them.
        if stall.deadline() != deadline {
            stall.as_mut().reset(deadline);
        }
        stall.as_mut().poll(cx).is_ready()
    }

    /// The body failed: the connection is closed.
    fn fail(&mut self, e: impl Into<String>) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        self.conn = None;
        Poll::Ready(Some(Err(io::Error::other(e.into()))))
    }
}

impl Body for Pooled {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        let this = &mut *self;
        if let Some(first) = this.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        loop {
            let Some(conn) = &mut this.conn else {
                return Poll::Ready(None);
            };
            match &mut this.framing {
                Framing::Length(0) => {
                    this.finish();
                    continue;
                }
                Framing::Length(left) => {
                    if !conn.buf.is_empty() {
                        let n = conn
                            .buf
                            .len()
                            .min(usize::try_from(*left).unwrap_or(usize::MAX));
                        let data = conn.buf.split_to(n).freeze();
                        *left -= n as u64;
                        if *left == 0 {
                            this.finish();
                        }
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                }
                Framing::Chunked(decoder) => match decoder.decode(&mut conn.buf) {
                    Ok(Some(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                    Ok(None) if decoder.is_done() => {
                        this.finish();
                        continue;
                    }
                    Ok(None) => {}
                    Err(e) => return this.fail(e.to_string()),
                },
                Framing::UntilClose => {
                    if !conn.buf.is_empty() {
                        let data = conn.buf.split().freeze();
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                }
            }
            if this.unsent.is_some() {
                conn.push(&mut this.unsent, cx);
            }
            let filled = match conn.poll_fill(cx) {
                Poll::Ready(filled) => filled,
                Poll::Pending if this.stalled(cx) => {
                    let why = format!(
                        "the upstream sent nothing of the body for {:?}",
                        this.read_timeout
                    );
                    tracing::warn!(
                        upstream = %format_args!("{}:{}", this.endpoint.host, this.endpoint.port),
                        "{why}; the answer was cut off"
                    );
                    return this.fail(why);
                }
                Poll::Pending => return Poll::Pending,
            };
            match filled {
                // The end of a body that runs to the close.
                Ok(0) if this.framing == Framing::UntilClose => this.conn = None,
                Ok(0) => return this.fail("the upstream closed the connection within the body"),
                Ok(_) => this.last_read = Some(Instant::now()),
                Err(e) => return this.fail(format!("reading the body: {e}")),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.conn.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        let first = self.first.as_ref().map_or(0, |b| b.len() as u64);
        match self.framing {
            _ if self.conn.is_none() => SizeHint::with_exact(first),
            Framing::Length(left) => SizeHint::with_exact(first + left),
            _ => {
                let mut hint = SizeHint::new();
                hint.set_lower(first);
                hint
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};
    use hyper::body::Incoming;
    use hyper_util::rt::TokioIo;

    #[test]
    fn targets_and_host() {
        let mut upstreams = Upstreams::new(2);
        let request: Uri = "/pay/charge?x=1&y=%20".parse().unwrap();
        for (url, host, want) in [
            (
                "http://127.0.0.1:9001",
                "127.0.0.1:9001",
                "/pay/charge?x=1&y=%20",
            ),
            (
                "http://fn.internal/",
                "fn.internal",
                "/pay/charge?x=1&y=%20",
            ),
            (
                "http://fn.internal:80",
                "fn.internal",
                "/pay/charge?x=1&y=%20",
            ),
            ("http://[::1]:8080", "[::1]:8080", "/pay/charge?x=1&y=%20"),
            // A base path: joined in front of the request's.
            ("http://h:1/base/", "h:1", "/base/pay/charge?x=1&y=%20"),
            ("http://h:1/base", "h:1", "/base/pay/charge?x=1&y=%20"),
        ] {
            let upstream = upstreams.upstream(url, None, LONG).unwrap();
            assert_eq!(upstream.host, host, "{url}");
            assert_eq!(
                upstream.target(&request).unwrap().to_string(),
                want,
                "{url}"
            );
        }
        let root: Uri = "/".parse().unwrap();
        let h = upstreams.upstream("http://h:1", None, LONG).unwrap();
        assert_eq!(h.target(&root).unwrap().to_string(), "/");
        assert!(upstreams.upstream("not a url", None, LONG).is_err());
        // One endpoint per address: h:1 twice, fn.internal and fn.internal:80 alike.
        assert_eq!(upstreams.endpoints.len(), 4);
        let addresses: Vec<(&str, u16)> = upstreams
            .endpoints
            .iter()
            .map(|e| (e.host.as_str(), e.port))
            .collect();
        assert_eq!(
            addresses,
            [
                ("127.0.0.1", 9001),
                ("fn.internal", 80),
                ("::1", 8080),
                ("h", 1)
            ]
        );
    }

    /// A CA certificate whose key was thrown away: what the `https://` upstreams below
    /// trust (nothing connects to them).
    const TEST_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBqDCCAU2gAwIBAgIUdRi1kFBRkZOybWHtNzofnxYca/UwCgYIKoZIzj0EAwIw
IDEeMBwGA1UEAwwVd3JpdCB1cHN0cmVhbSB0ZXN0IENBMCAXDTI2MTIwNzIwMDUx
OFoYDzIxMjYxMTEzMjAwNTE4WjAgMR4wHAYDVQQDDBV3cml0IHVwc3RyZWFtIHRl
c3QgQ0EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQvyt4qoKNyTqgB/To8EqMm
hMfIPOJUfciPQbeTJ6yP0ZC23rFsVmwffEKczuUEyUJXsEtP6wtXqAFuecsVHKuX
o2MwYTAdBgNVHQ4EFgQU5V5IjptT/Jx6yTKdufL8zBbFlLowHwYDVR0jBBgwFoAU
5V5IjptT/Jx6yTKdufL8zBbFlLowDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8E
BAMCAgQwCgYIKoZIzj0EAwIDSQAwRgIhAJgAymlGzDPCPBpUgfFH8ImEEIC28y1N
yD2UjrxIUaLJAiEAl8acN0xRfPP8QyjdHQqeFYVMqmFjDjqizGrv36vcwkE=
-----END CERTIFICATE-----
";

    #[test]
    fn https_upstreams_trust_their_ca_file_and_have_endpoints_of_their_own() {
        let dir = std::env::temp_dir().join(format!("writ-upstream-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (ca, empty, missing) = (
            dir.join("ca.pem"),
            dir.join("empty.pem"),
            dir.join("no.pem"),
        );
        std::fs::write(&ca, TEST_CA).unwrap();
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let mut upstreams = Upstreams::new(1);
        for (url, host) in [
            ("https://fn.example.org", "fn.example.org"),
            ("https://fn.example.org:443/base", "fn.example.org"),
            ("https://127.0.0.1:8443", "127.0.0.1:8443"),
        ] {
            let upstream = upstreams.upstream(url, Some(&ca), LONG).unwrap();
            assert_eq!(upstream.host, host, "{url}");
        }
        // Plain HTTP to the same address is another endpoint, with connections of its own.
        let plain = upstreams
            .upstream("http://fn.example.org:443", None, LONG)
            .unwrap();
        assert_eq!(plain.host, "fn.example.org:443");
        assert_eq!(upstreams.endpoints.len(), 3);
        assert!(upstreams.endpoints[0].tls.is_some() && upstreams.endpoints[2].tls.is_none());
        // One TLS configuration (and session cache) for the routes trusting one CA.
        assert_eq!(upstreams.tls_configs.len(), 1);
        let Err(e) = upstreams.upstream("https://h", Some(&empty), LONG) else {
            panic!("a CA file without a certificate was taken");
        };
        assert_eq!(e, format!("{}: no CERTIFICATE block", empty.display()));
        let Err(e) = upstreams.upstream("https://h", Some(&missing), LONG) else {
            panic!("a missing CA file was taken");
        };
        assert!(e.starts_with(&format!("{}: ", missing.display())), "{e}");
        let Err(e) = upstreams.upstream("ftp://h", None, LONG) else {
            panic!("an ftp:// upstream was taken");
        };
        assert_eq!(e, "write http:// or https://");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn handshake_failures_say_why() {
        use rustls::{AlertDescription, CertificateError, Error};
        let tls = |e: Error| {
            SendError::Tls(handshake_failure(&io::Error::new(
                io::ErrorKind::InvalidData,
                e,
            )))
            .to_string()
        };
        assert_eq!(
            tls(Error::InvalidCertificate(CertificateError::UnknownIssuer)),
            "upstream TLS: certificate not trusted (UnknownIssuer)"
        );
        assert_eq!(
            tls(Error::InvalidCertificate(CertificateError::Expired)),
            "upstream TLS: certificate expired (Expired)"
        );
        assert_eq!(
            tls(Error::InvalidCertificate(CertificateError::NotValidForName)),
            "upstream TLS: certificate not valid for the upstream's host (NotValidForName)"
        );
        assert_eq!(
            tls(Error::AlertReceived(AlertDescription::HandshakeFailure)),
            "upstream TLS: the upstream refused the handshake (HandshakeFailure)"
        );
        let reset = handshake_failure(&io::Error::from(io::ErrorKind::ConnectionReset));
        assert!(reset.starts_with("handshake failed: "), "{reset}");
    }

    /// A body of several frames, which ends only when polled past its last one (as a
    /// chunked body does), without a dependency on a streams crate.
    struct Frames(VecDeque<Bytes>);

    impl Body for Frames {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
        }
    }

    const ANSWER: &[u8] = b"0123456789";

    /// A read timeout no test's upstream comes near.
    const LONG: Duration = Duration::from_secs(30);

    /// An upstream on 127.0.0.1 that counts the connections it accepts and answers each
    /// request with [`ANSWER`]: on `/close` it then closes the connection, and on
    /// `/chunked` it answers in chunks.
    async fn counting_upstream() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
                        let path = req.uri().path().to_string();
                        // `content-length` for a `Full` body, chunked for `Frames`.
                        let body = if path == "/chunked" {
                            http_body_util::Either::Right(Frames(
                                ANSWER.chunks(3).map(Bytes::copy_from_slice).collect(),
                            ))
                        } else {
                            http_body_util::Either::Left(Full::new(Bytes::from_static(ANSWER)))
                        };
                        let mut response = Response::new(body);
                        if path == "/close" {
                            response.headers_mut().insert(
                                hyper::header::CONNECTION,
                                HeaderValue::from_static("close"),
                            );
                        }
                        Ok::<_, std::convert::Infallible>(response)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        (addr, accepted)
    }

    fn get(upstream: &Upstream, path: &str) -> Request<Bytes> {
        let mut request = Request::new(Bytes::new());
        *request.uri_mut() = upstream.target(&path.parse().unwrap()).unwrap();
        request
            .headers_mut()
            .insert(hyper::header::HOST, upstream.host.clone());
        request
    }

    async fn read(response: Response<Pooled>) -> Bytes {
        response.into_body().collect().await.unwrap().to_bytes()
    }

    /// The error that ends reading the body of an answer whose head was read.
    async fn body_error(response: Response<Pooled>) -> String {
        match response.into_body().collect().await {
            Ok(body) => panic!("the body was read whole: {:?}", body.to_bytes()),
            Err(e) => e.to_string(),
        }
    }

    #[tokio::test]
    async fn a_connection_is_reused_once_its_answer_is_read() {
        let (addr, accepted) = counting_upstream().await;
        let upstream = Upstreams::new(2)
            .upstream(&format!("http://{addr}"), None, LONG)
            .unwrap();
        for path in ["/", "/chunked", "/", "/chunked"] {
            let response = upstream.send(0, get(&upstream, path)).await.unwrap();
            assert_eq!(read(response).await, ANSWER, "{path}");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);

        // A body with a `content-length` is at its end with its last byte, and hyper's
        // server stops polling it there: dropped then, it hands its connection back.
        let mut body = upstream
            .send(0, get(&upstream, "/"))
            .await
            .unwrap()
            .into_body();
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), ANSWER);
        assert!(body.is_end_stream());
        drop(body);
        read(upstream.send(0, get(&upstream, "/")).await.unwrap()).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 1);

        // Another worker has connections of its own.
        read(upstream.send(1, get(&upstream, "/")).await.unwrap()).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 2);

        // An answer dropped before its end closes its connection rather than reusing it.
        let unread = upstream.send(0, get(&upstream, "/chunked")).await.unwrap();
        drop(unread);
        read(upstream.send(0, get(&upstream, "/")).await.unwrap()).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_connection_the_upstream_closed_is_not_used_again() {
        let (addr, accepted) = counting_upstream().await;
        let upstream = Upstreams::new(1)
            .upstream(&format!("http://{addr}"), None, LONG)
            .unwrap();
        for _ in 0..3 {
            let response = upstream.send(0, get(&upstream, "/close")).await.unwrap();
            assert_eq!(read(response).await, ANSWER);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_request_a_kept_alive_connection_closed_under_is_sent_again_when_safe() {
        // An upstream on a thread of its own that answers one request per connection,
        // then, when told, closes it without having said so (no `connection: close`), as
        // an upstream's idle timeout does. The test's runtime is blocked meanwhile, so
        // the connection's task has not seen the close when the next request takes the
        // connection from the idle list: the request finds it closed only when sent.
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (close_tx, close_rx) = std::sync::mpsc::channel::<()>();
        let (closed_tx, closed_rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            for tcp in listener.incoming() {
                let mut tcp = tcp.unwrap();
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = tcp.read(&mut buf).unwrap();
                    got.extend_from_slice(&buf[..n]);
                }
                tcp.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .unwrap();
                if close_rx.recv().is_err() {
                    return;
                }
                drop(tcp);
                closed_tx.send(()).unwrap();
            }
        });
        let upstream = Upstreams::new(1)
            .upstream(&format!("http://{addr}"), None, LONG)
            .unwrap();
        let ok = async |request| {
            let response = upstream.send(0, request).await.unwrap();
            assert_eq!(read(response).await, "ok");
        };
        let closed_under = async |request| {
            let Err(e) = upstream.send(0, request).await else {
                panic!("an answer on a closed connection");
            };
            assert!(
                e.to_string()
                    .contains("connection closed before message completed"),
                "{e}"
            );
        };
        let close = || {
            close_tx.send(()).unwrap();
            closed_rx.recv().unwrap();
        };

        // A GET on a connection that closed under it, before any of the answer: sent
        // again, on a new one.
        ok(get(&upstream, "/")).await;
        close();
        ok(get(&upstream, "/")).await;

        // A POST is not idempotent: written to the closed connection, it may have reached
        // the upstream, so it is not sent again.
        close();
        let mut post = get(&upstream, "/");
        *post.method_mut() = hyper::Method::POST;
        closed_under(post).await;

        // A close the runtime saw while the connection was idle: the connection is not
        // used, so even a POST goes out, on a new one.
        ok(get(&upstream, "/")).await;
        close();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut post = get(&upstream, "/");
        *post.method_mut() = hyper::Method::POST;
        ok(post).await;
    }

    /// Reads one request's head off `tcp`, a byte at a time (so nothing after it is
    /// consumed): the head as sent, and its content-length; `None` at the end.
    fn request_head(tcp: &mut std::net::TcpStream) -> Option<(Vec<u8>, usize)> {
        use std::io::Read;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match tcp.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => return None,
            }
        }
        let text = String::from_utf8_lossy(&head).to_lowercase();
        let length = text
            .split("content-length: ")
            .nth(1)
            .map_or(0, |l| l[..l.find('\r').unwrap()].parse().unwrap());
        Some((head, length))
    }

    /// The requests an upstream read, byte for byte.
    type Seen = Arc<Mutex<Vec<Vec<u8>>>>;

    /// An upstream on a thread of its own that answers each request it reads, on any
    /// connection, with the next of `script`'s raw answers, and after an answer marked so
    /// closes the connection. Gives its address, a count of the connections it accepted
    /// and the requests it read, byte for byte.
    fn scripted(
        script: Vec<(&'static [u8], bool)>,
    ) -> (std::net::SocketAddr, Arc<AtomicUsize>, Seen) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (count, seen) = (accepted.clone(), requests.clone());
        std::thread::spawn(move || {
            let mut script = script.into_iter();
            for tcp in listener.incoming() {
                let mut tcp = tcp.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                // A request: its head, then as many bytes as its content-length says.
                while let Some((mut request, length)) = request_head(&mut tcp) {
                    let mut body = vec![0u8; length];
                    tcp.read_exact(&mut body).unwrap();
                    request.extend(body);
                    seen.lock().unwrap().push(request);
                    let Some((answer, close)) = script.next() else {
                        return;
                    };
                    tcp.write_all(answer).unwrap();
                    if close {
                        break;
                    }
                }
            }
        });
        (addr, accepted, requests)
    }

    #[tokio::test]
    async fn answers_are_read_to_the_end_their_framing_sets() {
        let big: &'static [u8] = {
            let mut answer = b"HTTP/1.1 200 OK\r\ncontent-length: 300000\r\n\r\n".to_vec();
            answer.extend((0..300_000).map(|i| (i % 251) as u8));
            answer.leak()
        };
        let (addr, accepted, _) = scripted(vec![
            (b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello", false),
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhe\r\n3;x=y\r\nllo\r\n0\r\nx-t: 1\r\n\r\n",
                false,
            ),
            (big, false),
            (b"HTTP/1.1 204 No Content\r\n\r\n", false),
            // Read to the close; the connection is not used again.
            (b"HTTP/1.1 200 OK\r\n\r\nhello", true),
            // Bytes after the answer: the connection is closed, not used again.
            (b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\n", false),
            (b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 5\r\n\r\nhello", false),
            (b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello", false),
        ]);
        let upstream = Upstreams::new(1)
            .upstream(&format!("http://{addr}"), None, LONG)
            .unwrap();
        let mut connections = Vec::new();
        for want in [
            &b"hello"[..],
            b"hello",
            &big[big.len() - 300_000..],
            b"",
            b"hello",
            b"hello",
            b"hello",
            b"hello",
        ] {
            let response = upstream.send(0, get(&upstream, "/")).await.unwrap();
            assert_eq!(read(response).await, want);
            // Let the upstream's close, if any, reach the runtime.
            tokio::time::sleep(Duration::from_millis(20)).await;
            connections.push(accepted.load(Ordering::SeqCst));
        }
        assert_eq!(connections, [1, 1, 1, 1, 1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn requests_go_out_with_the_length_of_their_body() {
        let ok: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        let (addr, _, requests) = scripted(vec![(ok, false), (ok, false), (ok, false)]);
        let upstream = Upstreams::new(1)
            .upstream(&format!("http://{addr}"), None, LONG)
            .unwrap();
        let mut post = get(&upstream, "/pay?x=1");
        *post.method_mut() = hyper::Method::POST;
        *post.body_mut() = Bytes::from_static(b"abc");
        post.headers_mut()
            .insert("content-length", HeaderValue::from_static("99"));
        post.headers_mut()
            .insert("x-a", HeaderValue::from_static("b"));
        read(upstream.send(0, post).await.unwrap()).await;
        // A body too big to copy goes out after the head, in a write of its own.
        let mut put = get(&upstream, "/");
        *put.method_mut() = hyper::Method::PUT;
        *put.body_mut() = Bytes::from(vec![b'z'; COALESCE_BODY + 1]);
        read(upstream.send(0, put).await.unwrap()).await;
        read(upstream.send(0, get(&upstream, "/")).await.unwrap()).await;
        let requests = requests.lock().unwrap();
        let host = format!("host: {addr}");
        assert_eq!(
            String::from_utf8_lossy(&requests[0]),
            format!("POST /pay?x=1 HTTP/1.1\r\n{host}\r\nx-a: b\r\ncontent-length: 3\r\n\r\nabc")
        );
        let mut want = format!(
            "PUT / HTTP/1.1\r\n{host}\r\ncontent-length: {}\r\n\r\n",
            COALESCE_BODY + 1
        )
        .into_bytes();
        want.extend(vec![b'z'; COALESCE_BODY + 1]);
        assert_eq!(requests[1], want);
        assert_eq!(
            String::from_utf8_lossy(&requests[2]),
            format!("GET / HTTP/1.1\r\n{host}\r\n\r\n")
        );
    }

    #[tokio::test]
    async fn an_answer_before_a_big_body_is_all_sent_is_forwarded() {
        // An upstream that answers a PUT from its head alone, then holds the connection
        // open without reading the body (far more than the sockets buffer); a GET gets
        // an ordinary answer.
        let (addr, accepted) = threaded(|tcp, line, _| {
            use std::io::Write;
            if line.starts_with("put") {
                tcp.write_all(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 4\r\n\r\nbig!")
                    .unwrap();
                std::thread::sleep(Duration::from_secs(10));
                return false;
            }
            tcp.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .is_ok()
        });
        let upstream = Upstreams::new(1)
            .upstream(&format!("http://{addr}"), None, LONG)
            .unwrap();
        let mut put = get(&upstream, "/upload");
        *put.method_mut() = hyper::Method::PUT;
        *put.body_mut() = Bytes::from(vec![b'x'; 32 << 20]);
        let sent = tokio::time::timeout(Duration::from_secs(5), upstream.send(0, put)).await;
        let response = sent.expect("the answer waited for the body").unwrap();
        assert_eq!(response.status(), hyper::StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(read(response).await, "big!");
        // The connection with half a request on it is not used again.
        read(upstream.send(0, get(&upstream, "/")).await.unwrap()).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    /// An upstream on threads of its own: for each request, `answer` is called with the
    /// connection, the request line and its content-length (the body not yet read), and
    /// says whether to go on reading requests on the connection. Counts connections.
    fn threaded(
        answer: fn(&mut std::net::TcpStream, &str, usize) -> bool,
    ) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        std::thread::spawn(move || {
            for tcp in listener.incoming() {
                let mut tcp = tcp.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    while let Some((head, length)) = request_head(&mut tcp) {
                        let head = String::from_utf8_lossy(&head).to_lowercase();
                        let line = head.lines().next().unwrap_or("");
                        if !answer(&mut tcp, line, length) {
                            return;
                        }
                    }
                });
            }
        });
        (addr, accepted)
    }

    #[tokio::test]
    async fn a_head_sent_before_the_body_is_read_gets_the_body_all_the_same() {
        // As a handler that flushes its head, then reads the upload, then answers. It
        // reads nothing for a moment, so that the head comes while the gateway is still
        // writing the body (a reader as fast as the writer takes the body first).
        let (addr, _) = threaded(|tcp, _, length| {
            use std::io::{Read, Write};
            tcp.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
                .unwrap();
            std::thread::sleep(Duration::from_millis(200));
            let mut left = length;
            let mut buf = vec![0u8; 65536];
            while left > 0 {
                match tcp.read(&mut buf[..left.min(65536)]) {
                    Ok(0) | Err(_) => return false,
                    Ok(n) => left -= n,
                }
            }
            tcp.write_all(b"ok").is_ok()
        });
        let upstream = Upstreams::new(1)
            .upstream(&format!("http://{addr}"), None, LONG)
            .unwrap();
        let mut put = get(&upstream, "/upload");
        *put.method_mut() = hyper::Method::PUT;
        *put.body_mut() = Bytes::from(vec![b'x'; 32 << 20]);
        let response = upstream.send(0, put).await.unwrap();
        let body = tokio::time::timeout(Duration::from_secs(10), read(response)).await;
        assert_eq!(body.expect("the body never came"), "ok");
    }

    #[tokio::test]
    async fn a_request_is_sent_again_once_on_a_new_connection() {
        // An upstream that answers `/` slowly (so that callers at once take several
        // connections), and closes the connection without an answer on `/crash`.
        static CRASHES: AtomicUsize = AtomicUsize::new(0);
        let (addr, accepted) = threaded(|tcp, line, _| {
            use std::io::Write;
            if line.contains("/crash") {
                CRASHES.fetch_add(1, Ordering::SeqCst);
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
            tcp.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .is_ok()
        });
        let upstream = Upstreams::new(1)
            .upstream(&format!("http://{addr}"), None, LONG)
            .unwrap();
        let one = || async { read(upstream.send(0, get(&upstream, "/")).await.unwrap()).await };
        tokio::join!(one(), one(), one(), one(), one());
        assert_eq!(accepted.load(Ordering::SeqCst), 5);
        let mut delete = get(&upstream, "/crash");
        *delete.method_mut() = hyper::Method::DELETE;
        let Err(e) = upstream.send(0, delete).await else {
            panic!("an answer from an upstream that gave none");
        };
        assert_eq!(e.to_string(), "connection closed before message completed");
        // On a kept-alive connection, then once more on a new one: not on each of the
        // four other idle connections.
        assert_eq!(CRASHES.load(Ordering::SeqCst), 2);
        assert_eq!(accepted.load(Ordering::SeqCst), 6);
    }

    #[tokio::test]
    async fn idle_connections_the_upstream_closed_are_swept() {
        // An upstream that answers slowly and closes a connection 300 ms after each
        // answer, as a short keep-alive timeout would.
        let (addr, _) = threaded(|tcp, _, _| {
            use std::io::Write;
            std::thread::sleep(Duration::from_millis(100));
            tcp.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .unwrap();
            std::thread::sleep(Duration::from_millis(300));
            false
        });
        let mut upstreams = Upstreams::new(1);
        let upstream = upstreams
            .upstream(&format!("http://{addr}"), None, LONG)
            .unwrap();
        let one = || async { read(upstream.send(0, get(&upstream, "/")).await.unwrap()).await };
        tokio::join!(one(), one(), one(), one());
        let idle = || upstreams.endpoints[0].idle[0].lock().unwrap().len();
        assert_eq!(idle(), 4);
        tokio::time::sleep(Duration::from_millis(600)).await;
        // Closed by the upstream, and still held until swept.
        assert_eq!(idle(), 4);
        upstreams.sweep(0);
        assert_eq!(idle(), 0);
    }

    #[tokio::test]
    async fn an_answer_whose_length_is_in_doubt_is_an_error() {
        let (addr, accepted, _) = scripted(vec![
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 5, 6\r\n\r\nhello",
                false,
            ),
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhelloX\r\n",
                false,
            ),
            (b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nhello", true),
            (b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello", false),
        ]);
        let upstream = Upstreams::new(1)
            .upstream(&format!("http://{addr}"), None, LONG)
            .unwrap();
        let Err(e) = upstream.send(0, get(&upstream, "/")).await else {
            panic!("an answer of two lengths was read");
        };
        assert_eq!(
            e.to_string(),
            "the answer's content-length is not one number: \"5, 6\""
        );
        assert_eq!(
            body_error(upstream.send(0, get(&upstream, "/")).await.unwrap()).await,
            "the answer's chunked body is malformed: a chunk's data does not end in CRLF"
        );
        assert_eq!(
            body_error(upstream.send(0, get(&upstream, "/")).await.unwrap()).await,
            "the upstream closed the connection within the body"
        );
        // None of those connections was used again.
        read(upstream.send(0, get(&upstream, "/")).await.unwrap()).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_body_the_upstream_stops_sending_fails_after_the_read_timeout() {
        // Half a body by length, and a chunked body without its last chunk; the upstream
        // then waits for another request, sending nothing more.
        let (addr, _, _) = scripted(vec![
            (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello", false),
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n",
                false,
            ),
        ]);
        let upstream = Upstreams::new(1)
            .upstream(&format!("http://{addr}"), None, Duration::from_millis(200))
            .unwrap();
        for _ in 0..2 {
            let mut body = upstream
                .send(0, get(&upstream, "/"))
                .await
                .unwrap()
                .into_body();
            let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
            assert_eq!(first, "hello");
            // Bounded, so that a gateway that waited on would fail here, not hang.
            let next = tokio::time::timeout(Duration::from_secs(10), body.frame()).await;
            let e = next.expect("still waiting").unwrap().unwrap_err();
            assert_eq!(
                e.to_string(),
                "the upstream sent nothing of the body for 200ms"
            );
            assert!(body.is_end_stream());
        }
    }

    #[tokio::test]
    async fn a_body_that_keeps_coming_is_read_however_long_it_takes() {
        // Six pieces 100 ms apart: 500 ms in all, but never 300 ms without a byte.
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut tcp, _) = listener.accept().unwrap();
            request_head(&mut tcp).unwrap();
            tcp.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\n")
                .unwrap();
            for piece in [b"a", b"b", b"c", b"d", b"e", b"f"] {
                std::thread::sleep(Duration::from_millis(100));
                tcp.write_all(piece).unwrap();
            }
            // Held open until the gateway's side closes.
            let _ = request_head(&mut tcp);
        });
        let upstream = Upstreams::new(1)
            .upstream(&format!("http://{addr}"), None, Duration::from_millis(300))
            .unwrap();
        let response = upstream.send(0, get(&upstream, "/")).await.unwrap();
        assert_eq!(read(response).await, "abcdef");
    }

    #[tokio::test]
    async fn an_upstream_that_is_not_there_is_an_error_that_says_so() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let upstream = Upstreams::new(1)
            .upstream(&format!("http://{addr}"), None, LONG)
            .unwrap();
        let Err(e) = upstream.send(0, get(&upstream, "/")).await else {
            panic!("an answer from no upstream");
        };
        assert!(e.to_string().starts_with("connecting: "), "{e}");
    }
}
