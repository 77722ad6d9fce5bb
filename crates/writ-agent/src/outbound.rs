//! Outbound calls: a plain-HTTP listener on localhost per upstream, whose requests the
//! agent carries to the gateway over mTLS with the function's current SVID (as
//! consul-lambda-extension does). The function calls `http://127.0.0.1:PORT/path`; the
//! gateway sees the function's identity. A request not addressed to the listener (421) or
//! sent by a browser (403) is refused before anything is carried (see [`crate::guard`]).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use writ_client::fetch::TrustBundle;
use writ_client::identity::Identity;

use crate::guard::OwnAddress;

/// The largest request body carried.
const MAX_BODY: usize = 10 * 1024 * 1024;

/// Hop-by-hop headers, not carried either way.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
];

fn failure(status: StatusCode, message: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(
        serde_json::json!({"error": {"message": message}}).to_string(),
    )));
    *r.status_mut() = status;
    r
}

/// One HTTPS client (with its connection pool) per SVID: after a renewal the next call
/// builds a new one, so no pooled connection goes on presenting the old certificate
/// until it expires.
#[derive(Default)]
struct Clients(std::sync::Mutex<Option<(String, reqwest::Client)>>);

impl Clients {
    fn get(
        &self,
        identity: &Identity,
        trust: &Arc<TrustBundle>,
    ) -> Result<reqwest::Client, String> {
        let cert = identity.svid().cert_pem;
        let mut current = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((c, client)) = current.as_ref()
            && *c == cert
        {
            return Ok(client.clone());
        }
        let client =
            writ_client::fetch::mtls_client_trusting(trust.clone(), identity.source.clone())?;
        *current = Some((cert, client.clone()));
        Ok(client)
    }
}

async fn carry(
    clients: &Clients,
    identity: &Identity,
    gateway: &str,
    trust: &Arc<TrustBundle>,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let client = match clients.get(identity, trust) {
        Ok(c) => c,
        Err(e) => return failure(StatusCode::BAD_GATEWAY, e),
    };
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return failure(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("over {MAX_BODY} bytes"),
            );
        }
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = client.request(parts.method.clone(), format!("{gateway}{path}"));
    for (name, value) in &parts.headers {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            out = out.header(name, value);
        }
    }
    let response = match out.body(body).send().await {
        Ok(r) => r,
        Err(e) => {
            // A TLS failure says why (unknown issuer, name mismatch, expired, ...), in the
            // log and to the caller.
            let message = match writ_client::tls_failure::tls_cause(&e) {
                Some(cause) => {
                    tracing::warn!(gateway = %gateway, cause = %cause, "TLS with the gateway failed");
                    format!("the gateway {gateway} could not be reached: {cause}")
                }
                None => {
                    let e = e.without_url();
                    tracing::warn!(gateway = %gateway, error = %e, "the gateway could not be reached");
                    format!("the gateway could not be reached: {e}")
                }
            };
            return failure(StatusCode::BAD_GATEWAY, message);
        }
    };
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.unwrap_or_default();
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    for (name, value) in &headers {
        if !HOP_BY_HOP.contains(&name.as_str()) && name != "content-length" {
            r.headers_mut().append(name, value.clone());
        }
    }
    r
}

/// Serves one outbound listener, carrying the requests addressed to `own` (its address,
/// see [`crate::guard`]) to `gateway` (`https://…`), verified against `trust` (the
/// trust bundle, current at each new connection, or the gateway's CA).
pub async fn serve(
    listener: tokio::net::TcpListener,
    own: OwnAddress,
    revoked: Arc<std::sync::atomic::AtomicBool>,
    identity: Arc<Identity>,
    gateway: String,
    trust: Arc<TrustBundle>,
) {
    let clients = Arc::new(Clients::default());
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let (identity, gateway, trust, clients, revoked) = (
            identity.clone(),
            gateway.clone(),
            trust.clone(),
            clients.clone(),
            revoked.clone(),
        );
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let (identity, gateway, trust, clients, revoked) = (
                    identity.clone(),
                    gateway.clone(),
                    trust.clone(),
                    clients.clone(),
                    revoked.clone(),
                );
                async move {
                    if let Err(refused) = own.check(req.headers(), req.uri()) {
                        return Ok::<_, Infallible>(failure(refused.status, refused.message));
                    }
                    if revoked.load(std::sync::atomic::Ordering::Acquire) {
                        return Ok::<_, Infallible>(failure(
                            StatusCode::FORBIDDEN,
                            "this function's identity was revoked".into(),
                        ));
                    }
                    Ok::<_, Infallible>(carry(&clients, &identity, &gateway, &trust, req).await)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}
