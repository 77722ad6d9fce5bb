//! Starting the gateway: load its certificate and last known state, follow the server,
//! and serve HTTPS (and `/metrics` over plain HTTP on its own address) until shut down.

use std::net::SocketAddr;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::audit::AuditBuffer;
use crate::config::Config;
use crate::control::{self, Control, Snapshot};
use crate::limits::{BodyBudget, ClientConnections, ClientSlot};
use crate::metrics::Metrics;
use crate::proxy::{Connection, Gateway};
use crate::sync::{self, ServerClient, Shared};

/// The most connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 10_000;

/// How often each worker closes the idle upstream connections that their upstream closed
/// (say, on its keep-alive timeout), rather than holding them until they are next taken.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// A gateway bound to its addresses, not yet serving.
pub struct Bound {
    /// The HTTPS address (useful with port 0).
    pub addr: SocketAddr,
    /// The metrics address, if any.
    pub metrics_addr: Option<SocketAddr>,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    gateway: Arc<Gateway>,
    tls: Arc<rustls::ServerConfig>,
    metrics: Arc<Metrics>,
    /// How many worker threads serve connections.
    workers: usize,
    /// The connections open per client, and the most each may have.
    clients: Arc<ClientConnections>,
}

/// Loads the certificate and the last known state, starts following the server, and
/// binds the listeners. Lambda routes sign with the AWS credentials the environment gives
/// (see [`crate::aws_credentials::load`]).
pub async fn bind(config: Config, node: String) -> Result<Bound, String> {
    // The AWS credentials Lambda routes sign with, from the environment (and kept fresh
    // when they come from the container credentials endpoint).
    let aws = if config.routes.iter().any(|r| r.lambda.is_some()) {
        Some(
            crate::aws_credentials::load(|k| std::env::var(k).ok())
                .await
                .map_err(|e| format!("lambda routes: {e}"))?,
        )
    } else {
        None
    };
    bind_with_aws_credentials(config, node, aws).await
}

/// As [`bind`], with the AWS credentials Lambda routes sign with given instead of read from
/// the process's environment: for a gateway embedded in another program (`writ dev`, which
/// makes the credentials of its own local Lambda host). A config with a Lambda route and
/// no credentials is refused, naming the route.
pub async fn bind_with_aws_credentials(
    config: Config,
    node: String,
    aws: Option<Arc<crate::aws_credentials::AwsCredentials>>,
) -> Result<Bound, String> {
    let config = Arc::new(config);
    let tls = Arc::new(crate::own_cert::server_config(&config).await?);
    let snapshot = control::load(&config.state_dir)?.unwrap_or_else(|| Snapshot {
        jwks: serde_json::json!({"keys": []}),
        ..Snapshot::default()
    });
    let (state_at, feed_at) = (snapshot.synced_at, snapshot.feed_synced_at);
    let shared = Arc::new(Shared {
        control: std::sync::RwLock::new(Control::build(snapshot, &config.trust_domain)?),
        state_synced_at: AtomicI64::new(state_at),
        feed_synced_at: AtomicI64::new(feed_at),
        updating: std::sync::Mutex::new(()),
    });
    let client = ServerClient::new(&config)?;
    let route_names: Vec<String> = config.routes.iter().map(|r| r.name.clone()).collect();
    let workers = config.worker_count();
    let body_budget = Arc::new(BodyBudget::new(config.unauthenticated_body_budget));
    let metrics =
        Arc::new(Metrics::new(&route_names, workers).with_body_budget(body_budget.clone()));
    let audit = Arc::new(AuditBuffer::new(workers));
    let secrets = writ_client::secrets::SecretCache::new(
        client.clone(),
        writ_client::secrets::CachePolicy {
            max_stale: config.max_staleness,
            ..writ_client::secrets::CachePolicy::default()
        },
    );
    let gateway = Arc::new(Gateway::new(
        config.clone(),
        aws,
        client.clone(),
        shared.clone(),
        secrets,
        audit.clone(),
        metrics.clone(),
        body_budget,
    )?);
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("listen {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let metrics_listener = match config.metrics_listen {
        Some(a) => Some(
            TcpListener::bind(a)
                .await
                .map_err(|e| format!("metrics_listen {a}: {e}"))?,
        ),
        None => None,
    };
    let metrics_addr = metrics_listener.as_ref().and_then(|l| l.local_addr().ok());
    tokio::spawn(sync::poll(config.clone(), shared.clone(), client.clone()));
    tokio::spawn(sync::follow_revocations(
        config.clone(),
        shared.clone(),
        client.clone(),
    ));
    tokio::spawn(crate::audit::send(audit, client, node, metrics.clone()));
    Ok(Bound {
        addr,
        metrics_addr,
        listener,
        metrics_listener,
        gateway,
        tls,
        metrics,
        workers,
        clients: ClientConnections::new(config.max_connections_per_client),
    })
}

/// Reloads the routes, usage plans and API keys from the configuration file at `path`
/// on each SIGHUP ([`Gateway::reload`]): the file is read and checked whole first, and
/// on any error (logged with its file:line:col or route and field) the configuration in
/// force stays. Runs until the process ends.
pub async fn reload_on_hangup(path: std::path::PathBuf, gateway: Arc<Gateway>) {
    let mut hangups = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot wait for SIGHUP; the configuration will not reload");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        match crate::config::load(&path).and_then(|config| gateway.reload(config)) {
            Ok(done) => tracing::info!(
                file = %path.display(),
                routes = done.routes,
                api_keys = done.api_keys,
                "SIGHUP: reloaded the routes, usage plans and API keys"
            ),
            Err(e) => tracing::error!(
                error = %e,
                "SIGHUP: the configuration was not reloaded; the one in force stays"
            ),
        }
    }
}

impl Bound {
    /// The gateway it serves, for [`reload_on_hangup`].
    pub fn gateway(&self) -> Arc<Gateway> {
        self.gateway.clone()
    }

    /// Serves until `shutdown` resolves. Connections are served by worker threads (one
    /// per core unless the configuration's `workers` says otherwise), each with a
    /// single-threaded runtime accepting from the shared listener (as nginx's workers
    /// do): a request, its TLS session and its upstream connection stay on one thread,
    /// with no hand-offs between threads on the request path. The control plane's
    /// followers and the metrics listener stay on the calling runtime.
    ///
    /// Which worker the kernel wakes for a new connection is its choice, and a burst of
    /// connections could all land on one worker, leaving the other cores idle. So an
    /// accepted connection goes to the worker that serves the fewest (Envoy's exact
    /// balance), handed over before its TLS handshake.
    pub async fn serve(self, shutdown: impl std::future::Future<Output = ()>) {
        if let Some(l) = self.metrics_listener {
            tokio::spawn(serve_metrics(l, self.metrics.clone()));
        }
        let listener = match self.listener.into_std() {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "listener");
                return;
            }
        };
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let count = self.workers;
        let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let (inboxes, receivers): (Vec<_>, Vec<_>) =
            (0..count).map(|_| mpsc::unbounded_channel()).unzip();
        let inboxes: Arc<[mpsc::UnboundedSender<Handoff>]> = inboxes.into();
        let choosing = Arc::new(std::sync::Mutex::new(()));
        let mut threads = Vec::new();
        for (worker, inbox) in receivers.into_iter().enumerate() {
            let listener = match listener.try_clone() {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(error = %e, "listener");
                    break;
                }
            };
            let workers = Workers {
                gateway: self.gateway.clone(),
                tls: tokio_rustls::TlsAcceptor::from(self.tls.clone()),
                metrics: self.metrics.clone(),
                permits: permits.clone(),
                clients: self.clients.clone(),
                inboxes: inboxes.clone(),
                choosing: choosing.clone(),
            };
            let mut stop = stop_rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("writ-gateway-{worker}"))
                .spawn(move || {
                    let runtime = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(r) => r,
                        Err(e) => {
                            tracing::error!(error = %e, "worker runtime");
                            return;
                        }
                    };
                    runtime.block_on(async move {
                        let Ok(listener) = TcpListener::from_std(listener) else {
                            return;
                        };
                        let gateway = workers.gateway.clone();
                        tokio::spawn(async move {
                            let mut every = tokio::time::interval(SWEEP_EVERY);
                            loop {
                                every.tick().await;
                                gateway.sweep_idle_upstreams(worker);
                            }
                        });
                        accept_loop(listener, inbox, workers, worker, async move {
                            let _ = stop.changed().await;
                        })
                        .await;
                    });
                });
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => tracing::error!(error = %e, "worker thread"),
            }
        }
        shutdown.await;
        let _ = stop_tx.send(true);
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

/// What every worker shares: the gateway, the TLS acceptor, the counters, the limit on
/// connections, and each worker's inbox of connections handed over by the others.
struct Workers {
    gateway: Arc<Gateway>,
    tls: tokio_rustls::TlsAcceptor,
    metrics: Arc<Metrics>,
    permits: Arc<Semaphore>,
    /// The connections open per client, with their limit.
    clients: Arc<ClientConnections>,
    inboxes: Arc<[mpsc::UnboundedSender<Handoff>]>,
    /// Held while a connection's worker is chosen and counted, so that two workers
    /// accepting at once do not both choose from the same counts.
    choosing: Arc<std::sync::Mutex<()>>,
}

/// A connection one worker accepted for another to serve, before its TLS handshake.
struct Handoff {
    tcp: std::net::TcpStream,
    remote: SocketAddr,
    permit: OwnedSemaphorePermit,
    client: ClientSlot,
}

/// The worker that serves a connection `acceptor` accepted: the one serving the fewest,
/// `acceptor` itself among equals (no hand-over).
fn least_loaded(open: impl Fn(usize) -> u64, workers: usize, acceptor: usize) -> usize {
    (0..workers)
        .min_by_key(|&w| (open(w), w != acceptor))
        .unwrap_or(acceptor)
}

async fn accept_loop(
    listener: TcpListener,
    mut inbox: mpsc::UnboundedReceiver<Handoff>,
    workers: Workers,
    worker: usize,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    // A permit first, then a connection: over the limit, connections wait in the backlog.
    let accept = || async {
        let permit = workers.permits.clone().acquire_owned().await;
        (listener.accept().await, permit)
    };
    loop {
        tokio::select! {
            handed = inbox.recv() => {
                let Some(handoff) = handed else { return };
                take_over(&workers, worker, handoff);
            }
            (accepted, permit) = accept() => {
                let Ok(permit) = permit else { return };
                let (tcp, remote) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let metrics = &workers.metrics;
                // A client with as many connections open as it may have gets this one
                // closed at once, before any TLS work is spent on it.
                let Some(client) = workers.clients.open(remote.ip()) else {
                    metrics.connection_refused();
                    tracing::debug!(%remote, "connection closed: the client has max_connections_per_client open");
                    continue;
                };
                let target = {
                    let _choosing = workers.choosing.lock().unwrap_or_else(PoisonError::into_inner);
                    let target = least_loaded(|w| metrics.open_connections(w), workers.inboxes.len(), worker);
                    metrics.connection_opened(target);
                    target
                };
                if target == worker {
                    serve_connection(&workers, worker, tcp, remote, (permit, client));
                    continue;
                }
                let tcp = match tcp.into_std() {
                    Ok(tcp) => tcp,
                    Err(e) => {
                        metrics.connection_closed(target);
                        tracing::warn!(%remote, error = %e, "handing over a connection failed");
                        continue;
                    }
                };
                // A worker whose thread is gone takes nothing: then this one serves it.
                if let Err(back) = workers.inboxes[target].send(Handoff { tcp, remote, permit, client }) {
                    metrics.connection_closed(target);
                    metrics.connection_opened(worker);
                    take_over(&workers, worker, back.0);
                }
            }
            () = &mut shutdown => return,
        }
    }
}

/// Serves a connection accepted elsewhere (already counted for `worker`) on this
/// worker's runtime.
fn take_over(workers: &Workers, worker: usize, handoff: Handoff) {
    let Handoff {
        tcp,
        remote,
        permit,
        client,
    } = handoff;
    match TcpStream::from_std(tcp) {
        Ok(tcp) => serve_connection(workers, worker, tcp, remote, (permit, client)),
        Err(e) => {
            workers.metrics.connection_closed(worker);
            tracing::warn!(%remote, error = %e, "taking over a connection failed");
        }
    }
}

/// Serves one client connection on this worker's runtime: the TLS handshake, then HTTP/1.1
/// until the client is done; counted in `worker`'s open connections until it ends, and
/// in the limits `counted` holds (the gateway's and its client's).
fn serve_connection(
    workers: &Workers,
    worker: usize,
    tcp: TcpStream,
    remote: SocketAddr,
    counted: (OwnedSemaphorePermit, ClientSlot),
) {
    /// Counts the connection closed however its task ends.
    struct Open(Arc<Metrics>, usize);
    impl Drop for Open {
        fn drop(&mut self) {
            self.0.connection_closed(self.1);
        }
    }
    let open = Open(workers.metrics.clone(), worker);
    let _ = tcp.set_nodelay(true);
    let acceptor = workers.tls.clone();
    let gateway = workers.gateway.clone();
    tokio::spawn(async move {
        let _open = open;
        let _counted = counted;
        let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                tracing::debug!(%remote, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => return,
        };
        let peer_cert = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.clone().into_owned());
        let conn = Arc::new(Connection::new(remote, peer_cert, worker));
        let service = service_fn(move |req| {
            let gateway = gateway.clone();
            let conn = conn.clone();
            async move { Ok::<_, std::convert::Infallible>(gateway.handle(req, &conn).await) }
        });
        let served = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10))
            .max_buf_size(64 * 1024)
            .serve_connection(TokioIo::new(tls), service)
            .await;
        if let Err(e) = served {
            tracing::debug!(%remote, error = %e, "connection ended");
        }
    });
}

async fn serve_metrics(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let metrics = metrics.clone();
                async move {
                    let mut response = if req.uri().path() == "/metrics" {
                        hyper::Response::new(Full::new(Bytes::from(metrics.render())))
                    } else {
                        let mut r =
                            hyper::Response::new(Full::new(Bytes::from_static(b"not found\n")));
                        *r.status_mut() = hyper::StatusCode::NOT_FOUND;
                        r
                    };
                    response.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
                    );
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::least_loaded;

    #[test]
    fn a_connection_goes_to_the_worker_serving_fewest_and_stays_among_equals() {
        let open = |counts: &'static [u64]| move |w: usize| counts[w];
        assert_eq!(least_loaded(open(&[3, 1, 2]), 3, 0), 1);
        assert_eq!(least_loaded(open(&[2, 2, 2]), 3, 2), 2);
        assert_eq!(least_loaded(open(&[2, 1, 1]), 3, 2), 2);
        assert_eq!(least_loaded(open(&[2, 1, 1]), 3, 0), 1);
        assert_eq!(least_loaded(open(&[0]), 1, 0), 0);
    }
}
