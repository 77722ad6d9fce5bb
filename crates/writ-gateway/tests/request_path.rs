//! The gateway's request path in process: a [`Gateway`] built from its configuration and a
//! control-plane snapshot, called with requests directly (no listener, no TLS handshake;
//! the client certificate is handed over as the connection would), forwarding to an echo
//! upstream on loopback. What is checked here is the order of the steps and what each one
//! decides: routing, path checks, CORS preflights, authentication by X.509-SVID and
//! JWT-SVID, revocations, authorization by intentions, header hygiene, and the audit record
//! of every request. The end-to-end tests (`crates/writ/tests/gateway.rs`) run the same
//! paths through the real binaries.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use rustls::pki_types::CertificateDer;
use serde_json::{Value, json};
use time::OffsetDateTime;
use writ_audit::{Decision, Outcome};
use writ_gateway::audit::{AuditBuffer, Record, UNROUTED};
use writ_gateway::control::{Control, Snapshot};
use writ_gateway::limits::BodyBudget;
use writ_gateway::metrics::Metrics;
use writ_gateway::proxy::{Connection, Gateway};
use writ_gateway::sync::{ServerClient, Shared};
use writ_identity::jwt_svid::JwtAuthority;
use writ_identity::{CertificateAuthority, SpiffeId, TrustDomain};

const TD: &str = "inproc.test";

/// A trust domain's CA and JWT key, to make SVIDs with.
struct Issuer {
    td: TrustDomain,
    ca: CertificateAuthority,
    jwt: JwtAuthority,
}

impl Issuer {
    fn new() -> Issuer {
        let td = TrustDomain::new(TD).unwrap();
        let now = OffsetDateTime::now_utc();
        Issuer {
            ca: CertificateAuthority::generate(&td, now, time::Duration::days(1)).unwrap(),
            jwt: JwtAuthority::generate(&td).unwrap(),
            td,
        }
    }

    fn id(&self, function: &str) -> SpiffeId {
        SpiffeId::for_function(&self.td, function).unwrap()
    }

    /// An X.509-SVID for `function`, DER, and its serial (hex).
    fn svid(&self, function: &str) -> (CertificateDer<'static>, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let csr = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .serialize_request(&key)
            .unwrap();
        let svid = self
            .ca
            .sign_csr(
                csr.der(),
                &self.id(function),
                OffsetDateTime::now_utc(),
                time::Duration::hours(1),
            )
            .unwrap();
        let serial = svid.serial.iter().map(|b| format!("{b:02x}")).collect();
        (CertificateDer::from(svid.cert_der), serial)
    }

    /// A JWT-SVID for `function`, for `audience`.
    fn jwt(&self, function: &str, audience: &str) -> String {
        self.jwt
            .mint(
                &self.id(function),
                &[audience],
                OffsetDateTime::now_utc(),
                time::Duration::minutes(5),
            )
            .unwrap()
    }

    fn snapshot(&self, intentions: Value) -> Snapshot {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        Snapshot {
            bundle_pem: self.ca.cert_pem().to_string(),
            jwks: serde_json::to_value(writ_identity::jwt_svid::jwks([&self.jwt])).unwrap(),
            intentions,
            synced_at: now,
            feed_synced_at: now,
            ..Snapshot::default()
        }
    }
}

/// An upstream that answers every request with what it received: method, path and headers.
async fn echo_upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                        let headers: serde_json::Map<String, Value> = req
                            .headers()
                            .iter()
                            .map(|(n, v)| {
                                (
                                    n.as_str().to_string(),
                                    json!(String::from_utf8_lossy(v.as_bytes())),
                                )
                            })
                            .collect();
                        let seen = json!({
                            "method": req.method().as_str(),
                            "path": req.uri().path(),
                            "headers": headers,
                        });
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(
                            seen.to_string(),
                        ))))
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    addr
}

/// A gateway in process, with the snapshot in force and its audit buffer at hand.
struct InProcess {
    gateway: Gateway,
    audit: Arc<AuditBuffer>,
    _dir: tempdir::Dir,
}

mod tempdir {
    /// A directory removed when dropped.
    pub struct Dir(pub std::path::PathBuf);

    impl Dir {
        pub fn new() -> Dir {
            let dir = std::env::temp_dir().join(format!(
                "writ-gw-inproc-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            Dir(dir)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl InProcess {
    /// A gateway with one route, `payments` under `/pay` (and `extra` added to its table),
    /// forwarding to `upstream`, enforcing `snapshot`.
    fn new(issuer: &Issuer, upstream: SocketAddr, extra: &str, snapshot: Snapshot) -> InProcess {
        let dir = tempdir::Dir::new();
        // The server is never reached by these tests: they use no secret and no writ
        // credentials. Its CA file must still be a certificate.
        std::fs::write(dir.0.join("server-ca.pem"), issuer.ca.cert_pem()).unwrap();
        std::fs::write(dir.0.join("token"), "writ.admin.unused.unused").unwrap();
        let text = format!(
            r#"listen = "127.0.0.1:0"
trust_domain = "{TD}"
state_dir = "state"
[server]
addr = "127.0.0.1:9"
ca_file = "server-ca.pem"
token_file = "token"
[tls]
cert = "unused.pem"
key = "unused.key"
[[route]]
name = "payments"
function = "payments"
path_prefix = "/pay"
upstream = "http://{upstream}"
auth = ["mtls", "jwt"]
{extra}
"#
        );
        let config = Arc::new(writ_gateway::config::parse(&text, "gateway.toml", &dir.0).unwrap());
        let shared = Arc::new(Shared {
            control: std::sync::RwLock::new(Control::build(snapshot.clone(), TD).unwrap()),
            state_synced_at: AtomicI64::new(snapshot.synced_at),
            feed_synced_at: AtomicI64::new(snapshot.feed_synced_at),
            updating: std::sync::Mutex::new(()),
        });
        let server = ServerClient::new(&config).unwrap();
        let secrets = writ_client::secrets::SecretCache::new(
            server.clone(),
            writ_client::secrets::CachePolicy::default(),
        );
        let audit = Arc::new(AuditBuffer::new(1));
        let routes: Vec<String> = config.routes.iter().map(|r| r.name.clone()).collect();
        let metrics = Arc::new(Metrics::new(&routes, 1));
        let gateway = Gateway::new(
            config.clone(),
            None,
            server,
            shared,
            secrets,
            audit.clone(),
            metrics,
            Arc::new(BodyBudget::new(config.unauthenticated_body_budget)),
        )
        .unwrap();
        InProcess {
            gateway,
            audit,
            _dir: dir,
        }
    }

    /// Sends `req` on a connection that presented `cert`; the status, headers and JSON body.
    async fn send(
        &self,
        req: Request<Full<Bytes>>,
        cert: Option<CertificateDer<'static>>,
    ) -> (StatusCode, hyper::HeaderMap, Value) {
        let conn = Connection::new("127.0.0.1:40000".parse().unwrap(), cert, 0);
        let response =
            tokio::time::timeout(Duration::from_secs(10), self.gateway.handle(req, &conn))
                .await
                .expect("the gateway answers");
        let (parts, body) = response.into_parts();
        let bytes = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (parts.status, parts.headers, json)
    }

    /// The records audited since the last call.
    fn audited(&self) -> Vec<Record> {
        self.audit.take()
    }
}

fn get(path: &str) -> hyper::http::request::Builder {
    Request::builder()
        .method("GET")
        .uri(path)
        .header("host", "gateway.test")
}

fn allow(source: &str, destination: &str) -> Value {
    json!({"source": source, "destination": destination, "action": "allow"})
}

fn deny(source: &str, destination: &str) -> Value {
    json!({"source": source, "destination": destination, "action": "deny"})
}

#[tokio::test]
async fn an_svid_caller_allowed_by_an_intention_reaches_the_upstream_as_itself_only() {
    let issuer = Issuer::new();
    let upstream = echo_upstream().await;
    let gw = InProcess::new(
        &issuer,
        upstream,
        "",
        issuer.snapshot(json!([allow("orders", "payments")])),
    );
    let (cert, _) = issuer.svid("orders");
    let req = get("/pay/charge")
        // What the caller may not decide: who it is, and what a named header carries.
        .header("x-writ-caller", "spiffe://inproc.test/fn/admin")
        .header("connection", "x-private")
        .header("x-private", "for the next hop only")
        .header("x-kept", "yes")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, _, seen) = gw.send(req, Some(cert)).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(seen["path"], "/pay/charge");
    let headers = &seen["headers"];
    assert_eq!(headers["x-writ-caller"], "spiffe://inproc.test/fn/orders");
    assert_eq!(headers["x-writ-authenticated-by"], "mtls");
    assert_eq!(headers["x-writ-route"], "payments");
    assert_eq!(headers["x-kept"], "yes");
    assert!(headers.get("x-private").is_none(), "{headers}");
    assert!(headers.get("traceparent").is_some(), "{headers}");

    let records = gw.audited();
    assert_eq!(records.len(), 1);
    assert_eq!(&*records[0].actor, "spiffe://inproc.test/fn/orders");
    assert_eq!(records[0].authenticated_by, "mtls");
    assert_eq!(records[0].outcome, Outcome::Allowed);
    assert_eq!(&*records[0].resource, "writ:fn/payments");

    // Another function, with no intention naming it: an implicit deny.
    let (cert, _) = issuer.svid("billing");
    let req = get("/pay/charge").body(Full::new(Bytes::new())).unwrap();
    let (status, _, body) = gw.send(req, Some(cert)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "accessDenied");
    let records = gw.audited();
    assert_eq!(records[0].decision, Some(Decision::ImplicitDeny));
}

#[tokio::test]
async fn an_explicit_deny_keeps_its_kind_and_the_intention_that_decided() {
    let issuer = Issuer::new();
    let upstream = echo_upstream().await;
    let gw = InProcess::new(
        &issuer,
        upstream,
        "",
        issuer.snapshot(json!([allow("*", "payments"), deny("billing", "payments")])),
    );
    let (cert, _) = issuer.svid("billing");
    let req = get("/pay/charge").body(Full::new(Bytes::new())).unwrap();
    let (status, _, body) = gw.send(req, Some(cert)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let records = gw.audited();
    assert_eq!(records[0].decision, Some(Decision::ExplicitDeny));
    assert_eq!(records[0].outcome, Outcome::Denied);
    assert!(
        records[0].matched.iter().any(|m| m.contains("billing")),
        "{:?}",
        records[0].matched
    );
}

#[tokio::test]
async fn jwt_svids_must_be_for_the_routes_function_and_are_not_forwarded() {
    let issuer = Issuer::new();
    let upstream = echo_upstream().await;
    let gw = InProcess::new(
        &issuer,
        upstream,
        "",
        issuer.snapshot(json!([allow("orders", "payments")])),
    );
    let payments = issuer.id("payments").to_string();
    let token = issuer.jwt("orders", &payments);
    let req = get("/pay/charge")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, _, seen) = gw.send(req, None).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(seen["headers"]["x-writ-authenticated-by"], "jwt");
    assert!(seen["headers"].get("authorization").is_none(), "{seen}");

    // A token for another function is no token for this route.
    let other = issuer.jwt("orders", &issuer.id("shipping").to_string());
    let req = get("/pay/charge")
        .header("authorization", format!("Bearer {other}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, headers, body) = gw.send(req, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "unauthenticated");
    assert!(headers.contains_key("www-authenticate"));

    // No credentials at all: 401, the same answer for every cause; the audit record says
    // which (here: what the route takes).
    let req = get("/pay/charge").body(Full::new(Bytes::new())).unwrap();
    let (status, _, body) = gw.send(req, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["message"], "authentication failed");
    let records = gw.audited();
    assert_eq!(records.len(), 3);
    assert_eq!(&*records[2].actor, "anonymous");
    assert!(
        records[1].reason.to_string().contains("JWT-SVID refused"),
        "{}",
        records[1].reason
    );
    assert!(
        records[2].reason.to_string().contains("mtls, jwt"),
        "{}",
        records[2].reason
    );
}

#[tokio::test]
async fn revoked_svids_and_functions_are_refused() {
    let issuer = Issuer::new();
    let upstream = echo_upstream().await;
    let (cert, serial) = issuer.svid("orders");
    let mut snapshot = issuer.snapshot(json!([allow("*", "payments")]));
    snapshot.revoked_serials = vec![serial.to_ascii_lowercase()];
    let future = OffsetDateTime::now_utc().unix_timestamp() + 3600;
    snapshot.revoked_functions = vec![(issuer.id("billing").to_string(), future)];
    let gw = InProcess::new(&issuer, upstream, "", snapshot);
    let req = get("/pay/charge").body(Full::new(Bytes::new())).unwrap();
    let (status, _, body) = gw.send(req, Some(cert)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // A JWT-SVID of a function revoked after it was minted.
    let token = issuer.jwt("billing", &issuer.id("payments").to_string());
    let req = get("/pay/charge")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, _, body) = gw.send(req, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let records = gw.audited();
    let reasons: Vec<String> = records.iter().map(|r| r.reason.to_string()).collect();
    assert!(
        reasons[0].contains(&format!("SVID {serial} is revoked")),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("fn/billing is revoked"), "{reasons:?}");
}

#[tokio::test]
async fn paths_that_could_mean_another_and_requests_no_route_takes_are_refused_and_audited() {
    let issuer = Issuer::new();
    let upstream = echo_upstream().await;
    let gw = InProcess::new(
        &issuer,
        upstream,
        "",
        issuer.snapshot(json!([allow("*", "payments")])),
    );
    let (cert, _) = issuer.svid("orders");
    for path in [
        "/pay/../admin",
        "/pay/%2e%2e/admin",
        "/pay//charge",
        "/pay/a%2fb",
    ] {
        let req = get(path).body(Full::new(Bytes::new())).unwrap();
        let (status, _, body) = gw.send(req, Some(cert.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["error"]["code"], "invalidRequest", "{path}");
    }
    let req = get("/payroll").body(Full::new(Bytes::new())).unwrap();
    let (status, _, body) = gw.send(req, Some(cert)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let records = gw.audited();
    assert_eq!(records.len(), 5);
    for r in &records {
        assert_eq!(&*r.resource, UNROUTED);
        assert_eq!(&*r.actor, "anonymous");
        assert_eq!(r.outcome, Outcome::Denied);
    }
}

#[tokio::test]
async fn a_cors_preflight_is_answered_by_the_gateway_without_credentials() {
    let issuer = Issuer::new();
    let upstream = echo_upstream().await;
    let gw = InProcess::new(
        &issuer,
        upstream,
        r#"[route.cors]
allow_origins = ["https://app.example"]
allow_methods = ["POST"]
"#,
        issuer.snapshot(json!([allow("*", "payments")])),
    );
    let req = Request::builder()
        .method("OPTIONS")
        .uri("/pay/charge")
        .header("host", "gateway.test")
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, headers, _) = gw.send(req, None).await;
    assert!(status.is_success(), "{status}");
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example"
    );
    // Another origin gets no grant.
    let req = Request::builder()
        .method("OPTIONS")
        .uri("/pay/charge")
        .header("host", "gateway.test")
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (_, headers, _) = gw.send(req, None).await;
    assert!(!headers.contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn a_body_over_the_routes_limit_is_refused_before_it_is_read() {
    let issuer = Issuer::new();
    let upstream = echo_upstream().await;
    let gw = InProcess::new(
        &issuer,
        upstream,
        "max_body = 16",
        issuer.snapshot(json!([allow("*", "payments")])),
    );
    let (cert, _) = issuer.svid("orders");
    let body = Bytes::from(vec![b'x'; 64]);
    let req = Request::builder()
        .method("POST")
        .uri("/pay/charge")
        .header("host", "gateway.test")
        .header("content-length", "64")
        .body(Full::new(body))
        .unwrap();
    let (status, headers, _) = gw.send(req, Some(cert)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(headers["connection"], "close");
}
