//! TLS for the API: rustls (ring), TLS 1.3 and 1.2 with rustls's safe suites. Client
//! certificates are optional and, when presented, must chain to the trust bundle: that is
//! how a function renews its SVID or mints a JWT-SVID without attesting again.
//!
//! The accept loop hands each request the connection's peer address and verified client
//! certificate, as a [`ConnInfo`] request extension.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// What the connection tells a request: who is at the other end, and the request's own id
/// and start time for its audit event.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The peer's address.
    pub remote: SocketAddr,
    /// The client's certificate (DER), verified against the trust bundle, if it sent one.
    pub peer_cert: Option<Arc<CertificateDer<'static>>>,
    /// A random id for this request.
    pub request_id: String,
    /// When the request arrived.
    pub started: std::time::Instant,
}

/// 16 random hex digits; for a request that names the change it is part of
/// (`Writ-Change-Id: ` 16 lowercase hex digits, as `writ apply` sends with every request of
/// one apply), `CHANGE-RANDOM`, so that every audit event of one change shares its prefix.
/// Any other value of the header is ignored.
fn request_id(headers: &axum::http::HeaderMap) -> String {
    let mut bytes = [0u8; 8];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    let own = writ_audit::hex(&bytes);
    match headers
        .get(CHANGE_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_change_id(v))
    {
        Some(change) => format!("{change}-{own}"),
        None => own,
    }
}

/// The header naming the change a request is part of.
pub const CHANGE_ID_HEADER: &str = "writ-change-id";

/// Whether `text` is a change id: 16 lowercase hex digits.
pub fn is_change_id(text: &str) -> bool {
    text.len() == 16
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Builds the server's TLS configuration: its certificate chain and key, and a client
/// verifier that accepts certificates chaining to `bundle_ders` (or none).
pub fn server_config(
    cert_pem: &str,
    key_pkcs8: Vec<u8>,
    bundle_ders: &[Vec<u8>],
) -> Result<rustls::ServerConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for der in bundle_ders {
        roots
            .add(CertificateDer::from(der.clone()))
            .map_err(|e| format!("trust bundle: {e}"))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| format!("client verifier: {e}"))?;
    let chain = pem::parse_many(cert_pem)
        .map_err(|e| format!("server certificate: {e}"))?
        .into_iter()
        .map(|p| CertificateDer::from(p.into_contents()))
        .collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pkcs8));
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| format!("server certificate: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // No session resumption: a resumed session would carry the client certificate of the
    // first handshake without checking it again, even after it expired.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// The most connections served at once; further ones wait in the listen backlog.
const MAX_CONNECTIONS: usize = 10_000;
/// The longest one request may take, body included (the revocation feed's long poll
/// waits up to 60 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(75);

/// Serves `router` on `listener` over TLS, reading the current configuration for each new
/// connection (so rotation takes effect without a restart), until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    config: Arc<RwLock<Arc<rustls::ServerConfig>>>,
    router: Router,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return,
            },
            () = &mut shutdown => return,
        };
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let _ = tcp.set_nodelay(true);
        let current = config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let acceptor = tokio_rustls::TlsAcceptor::from(current);
        let router = router.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(%remote, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%remote, "TLS handshake timed out");
                        return;
                    }
                };
            let peer_cert = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| certs.first())
                .map(|c| Arc::new(c.clone().into_owned()));
            let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
                let request_id = request_id(req.headers());
                req.extensions_mut().insert(ConnInfo {
                    remote,
                    peer_cert: peer_cert.clone(),
                    request_id,
                    started: std::time::Instant::now(),
                });
                let call = router.clone().oneshot(req);
                async move {
                    match tokio::time::timeout(REQUEST_TIMEOUT, call).await {
                        Ok(answer) => answer,
                        // A client trickling its body (or anything else this slow) is cut off.
                        Err(_) => Ok(axum::response::IntoResponse::into_response(
                            axum::http::StatusCode::REQUEST_TIMEOUT,
                        )),
                    }
                }
            });
            let result = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(tls), service)
                .await;
            if let Err(e) = result {
                tracing::debug!(%remote, error = %e, "connection ended with an error");
            }
        });
    }
}
