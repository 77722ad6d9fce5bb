//! Forwarding to HTTP upstreams over kept-alive connections.
//!
//! Each worker thread keeps its own idle connections to each upstream address, and the
//! task that drives a connection runs on the thread that opened it: a request, its
//! upstream connection and that task stay on one thread, and the only thing shared on
//! the way is an uncontended lock on the worker's idle list. A connection goes back to
//! the list when the upstream's answer has been read to its end; an answer dropped
//! before its end (the caller went away) closes it, since HTTP/1.1 cannot reuse a
//! connection with an unread body on it.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::HeaderValue;
use hyper::http::uri::PathAndQuery;
use hyper::{Request, Response, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How long opening a connection to an upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// An idle connection unused for this long is closed when next found, not used: the
/// upstream may be about to close it (nginx's default keep-alive timeout is 75 s).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// An idempotent request that a kept-alive connection closed under is sent again only if
/// the connection had been idle this long: an upstream's keep-alive timeout (seconds, in
/// every server we know) closes only such connections, and copying every request in case
/// would cost about 3 % of the gateway's work per request.
const REPLAYABLE_AFTER_IDLE: Duration = Duration::from_secs(1);

/// The most idle connections a worker keeps to one upstream address.
const MAX_IDLE: usize = 1024;

/// A connection's request half, ready for its next request.
type Sender = SendRequest<Full<Bytes>>;

/// A worker's idle connections to one address, each with when it became idle; the most
/// recently used last.
type Idle = Mutex<VecDeque<(Sender, Instant)>>;

/// Where upstreams are reached (a host and port), with each worker's idle connections.
struct Endpoint {
    host: String,
    port: u16,
    /// Indexed by worker.
    idle: Box<[Idle]>,
}

impl Endpoint {
    /// An idle connection of `worker`'s, the most recently used first, and how long it
    /// was idle; `None` if there is none that is open and was used within
    /// [`IDLE_TIMEOUT`].
    fn take(&self, worker: usize) -> Option<(Sender, Duration)> {
        let now = Instant::now();
        let mut idle = self.idle[worker % self.idle.len()]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        while let Some((sender, since)) = idle.pop_back() {
            let idle_for = now.duration_since(since);
            if idle_for >= IDLE_TIMEOUT {
                // The rest are older still.
                idle.clear();
                return None;
            }
            if !sender.is_closed() {
                return Some((sender, idle_for));
            }
        }
        None
    }

    /// Keeps `sender` for `worker`'s next request here, unless the worker already keeps
    /// [`MAX_IDLE`] (then it is dropped, which closes its connection).
    fn put(&self, worker: usize, sender: Sender) {
        let mut idle = self.idle[worker % self.idle.len()]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE && !sender.is_closed() {
            idle.push_back((sender, Instant::now()));
        }
    }

    /// Opens a connection, and drives it from a task on the calling thread's runtime.
    async fn connect(&self) -> Result<Sender, String> {
        let address = (self.host.as_str(), self.port);
        let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => return Err(format!("connecting: {e}")),
            Err(_) => {
                return Err(format!(
                    "connecting: no answer within {} s",
                    CONNECT_TIMEOUT.as_secs()
                ));
            }
        };
        let _ = tcp.set_nodelay(true);
        let (sender, connection) = http1::Builder::new()
            .handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| format!("connecting: {e}"))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "upstream connection ended");
            }
        });
        Ok(sender)
    }
}

/// An HTTP upstream: where requests go, and what each request to it needs worked out once.
pub struct Upstream {
    endpoint: Arc<Endpoint>,
    /// The `host` header for it: its host, and its port unless 80.
    pub host: HeaderValue,
    /// The path in front of each request's, without a trailing `/`; empty for none.
    base_path: String,
}

/// Builds upstreams, one [`Endpoint`] (and so one set of idle connections) per address
/// however many routes forward there.
pub struct Upstreams {
    workers: usize,
    endpoints: Vec<Arc<Endpoint>>,
}

impl Upstreams {
    /// For a gateway of `workers` worker threads.
    pub fn new(workers: usize) -> Upstreams {
        Upstreams {
            workers: workers.max(1),
            endpoints: Vec::new(),
        }
    }

    /// The upstream at `url` (`http://HOST[:PORT][/PATH]`); `None` without a host.
    pub fn upstream(&mut self, url: &str) -> Option<Upstream> {
        let uri: Uri = url.parse().ok()?;
        let host = uri.host().filter(|h| !h.is_empty())?;
        let port = uri.port_u16().unwrap_or(80);
        let host_header = if port == 80 {
            host.to_string()
        } else {
            format!("{host}:{port}")
        };
        // An IPv6 literal is bracketed in a URI, not in a socket address.
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let endpoint = match self
            .endpoints
            .iter()
            .find(|e| e.host == bare && e.port == port)
        {
            Some(e) => e.clone(),
            None => {
                let e = Arc::new(Endpoint {
                    host: bare.to_string(),
                    port,
                    idle: (0..self.workers).map(|_| Mutex::default()).collect(),
                });
                self.endpoints.push(e.clone());
                e
            }
        };
        Some(Upstream {
            endpoint,
            host: HeaderValue::from_str(&host_header).ok()?,
            base_path: uri.path().trim_end_matches('/').to_string(),
        })
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
    /// `worker`'s idle connections, or on a new one.
    ///
    /// An idle connection can close under a request: the upstream's keep-alive timeout
    /// ran out, or it restarted, before the gateway saw the close. Then the request is
    /// sent again on another connection when none of it was written, or when its method
    /// is idempotent (RFC 9110, section 9.2.2), the connection had been idle for
    /// [`REPLAYABLE_AFTER_IDLE`] or more, and it closed before any of the answer came.
    /// A `POST` or `PATCH` that may have reached the upstream is not sent twice.
    pub async fn send(
        &self,
        worker: usize,
        mut request: Request<Full<Bytes>>,
    ) -> Result<Response<Pooled>, String> {
        loop {
            let (mut sender, idle_for) = match self.endpoint.take(worker) {
                Some((sender, idle_for)) => (sender, Some(idle_for)),
                None => (self.endpoint.connect().await?, None),
            };
            let reused = idle_for.is_some();
            if let Err(e) = sender.ready().await {
                if reused {
                    continue;
                }
                return Err(format!("the new connection closed: {e}"));
            }
            let again = (idle_for.is_some_and(|d| d >= REPLAYABLE_AFTER_IDLE)
                && request.method().is_idempotent())
            .then(|| copy(&request));
            match sender.try_send_request(request).await {
                Ok(response) => {
                    return Ok(response.map(|body| Pooled {
                        body,
                        ended: false,
                        sender: Some(sender),
                        endpoint: self.endpoint.clone(),
                        worker,
                    }));
                }
                Err(mut e) => {
                    if let Some(unsent) = e.take_message().filter(|_| reused) {
                        request = unsent;
                        continue;
                    }
                    let e = e.into_error();
                    match again {
                        Some(copied) if e.is_incomplete_message() => request = copied,
                        _ => return Err(e.to_string()),
                    }
                }
            }
        }
    }
}

/// A copy of `request`, to send again (its body is shared, not copied).
fn copy(request: &Request<Full<Bytes>>) -> Request<Full<Bytes>> {
    let mut copied = Request::new(request.body().clone());
    *copied.method_mut() = request.method().clone();
    *copied.uri_mut() = request.uri().clone();
    *copied.headers_mut() = request.headers().clone();
    copied
}

/// An upstream's answer body, which hands its connection back for reuse once read to
/// its end.
pub struct Pooled {
    body: Incoming,
    /// The body gave its last frame (a chunked body does not know its end before).
    ended: bool,
    sender: Option<Sender>,
    endpoint: Arc<Endpoint>,
    worker: usize,
}

impl Body for Pooled {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.ended = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(sender) = self.sender.take()
            && self.is_end_stream()
        {
            self.endpoint.put(self.worker, sender);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::atomic::{AtomicUsize, Ordering};

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
            let upstream = upstreams.upstream(url).unwrap();
            assert_eq!(upstream.host, host, "{url}");
            assert_eq!(
                upstream.target(&request).unwrap().to_string(),
                want,
                "{url}"
            );
        }
        let root: Uri = "/".parse().unwrap();
        let h = upstreams.upstream("http://h:1").unwrap();
        assert_eq!(h.target(&root).unwrap().to_string(), "/");
        assert!(upstreams.upstream("not a url").is_none());
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

    fn get(upstream: &Upstream, path: &str) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(Bytes::new()));
        *request.uri_mut() = upstream.target(&path.parse().unwrap()).unwrap();
        request
            .headers_mut()
            .insert(hyper::header::HOST, upstream.host.clone());
        request
    }

    async fn read(response: Response<Pooled>) -> Bytes {
        response.into_body().collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn a_connection_is_reused_once_its_answer_is_read() {
        let (addr, accepted) = counting_upstream().await;
        let upstream = Upstreams::new(2)
            .upstream(&format!("http://{addr}"))
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
            .upstream(&format!("http://{addr}"))
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
            .upstream(&format!("http://{addr}"))
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
                e.contains("connection closed before message completed"),
                "{e}"
            );
        };
        let close = || {
            close_tx.send(()).unwrap();
            closed_rx.recv().unwrap();
        };

        // A GET on a connection that was idle for a second: sent again, on a new one.
        ok(get(&upstream, "/")).await;
        close();
        std::thread::sleep(REPLAYABLE_AFTER_IDLE + Duration::from_millis(100));
        ok(get(&upstream, "/")).await;

        // A GET on a connection busy a moment ago: not copied in case, so not sent again.
        close();
        closed_under(get(&upstream, "/")).await;

        // A POST is not idempotent: written to the closed connection, it may have reached
        // the upstream, so it is not sent again.
        ok(get(&upstream, "/")).await;
        close();
        std::thread::sleep(REPLAYABLE_AFTER_IDLE + Duration::from_millis(100));
        let mut post = get(&upstream, "/");
        *post.method_mut() = hyper::Method::POST;
        closed_under(post).await;
    }

    #[tokio::test]
    async fn an_upstream_that_is_not_there_is_an_error_that_says_so() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let upstream = Upstreams::new(1)
            .upstream(&format!("http://{addr}"))
            .unwrap();
        let Err(e) = upstream.send(0, get(&upstream, "/")).await else {
            panic!("an answer from no upstream");
        };
        assert!(e.starts_with("connecting: "), "{e}");
    }
}
