//! The request path: route, authenticate, authorize, check, limit, forward, record.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::{Body as _, Incoming};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use rustls::pki_types::CertificateDer;
use serde_json::json;
use writ_audit::{Decision, Outcome};
use writ_client::secrets::SecretCache;
use writ_identity::{AudienceRule, SpiffeId, TrustDomain};

use crate::audit::{AuditBuffer, Reason, Record, UNROUTED};
use crate::authn::{self, VerifiedSvid};
use crate::config::{AuthMethod, Config, Cors, Route, WebhookStyle};
use crate::intentions::Denial;
use crate::limits::{BodyBudget, Bucket, Quota, Reserved};
use crate::metrics::{Label, Metrics, NO_ROUTE};
use crate::path::check_path;
use crate::sync::{ServerClient, Shared};
use crate::upstream::{Pooled, SendError, Upstream, Upstreams};

/// The answer's body: the upstream's, streamed, or the gateway's own.
pub type Body = Either<Pooled, Full<Bytes>>;

/// Header names the request path looks up or sets, made once rather than parsed from a
/// string on every request.
mod names {
    use hyper::header::HeaderName;

    pub const X_WRIT_CALLER: HeaderName = HeaderName::from_static("x-writ-caller");
    pub const X_WRIT_AUTHENTICATED_BY: HeaderName =
        HeaderName::from_static("x-writ-authenticated-by");
    pub const X_WRIT_ROUTE: HeaderName = HeaderName::from_static("x-writ-route");
    pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
    pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
    pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
    pub const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
    pub const X_HUB_SIGNATURE_256: HeaderName = HeaderName::from_static("x-hub-signature-256");
    pub const STRIPE_SIGNATURE: HeaderName = HeaderName::from_static("stripe-signature");
}

/// Headers a caller may not set: the gateway sets them for the upstream.
const IDENTITY_HEADERS: [&str; 4] = [
    "x-writ-caller",
    "x-writ-authenticated-by",
    "x-forwarded-client-cert",
    "x-writ-route",
];

/// How long a request body may take to arrive.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Forwarding headers a caller could forge; the gateway drops them (and sets its own
/// `x-forwarded-for` and `x-forwarded-proto`).
const FORWARDING_HEADERS: [&str; 5] = [
    "forwarded",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "x-forwarded-port",
];

/// The hop-by-hop headers, which are not forwarded. A `static`, not a `const`: a `const`
/// would be built and dropped at every use.
static HOP_BY_HOP_NAMES: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// A route, ready to serve.
struct Live {
    /// Its place in the configuration, which indexes its metrics.
    index: usize,
    route: Route,
    schema: Option<jsonschema::Validator>,
    bucket: Option<Mutex<Bucket>>,
    /// The audience its JWT-SVIDs must be for: its function's SPIFFE ID.
    audience: String,
    /// Which `aud` claims it accepts for that audience.
    audience_rule: AudienceRule,
    /// Whether it takes JWT-SVIDs, so that a bearer `Authorization` is its to consume.
    takes_jwt: bool,
    /// `writ:fn/FUNCTION`, the resource of its audit events.
    resource: Arc<str>,
    /// Its name, as the upstream reads it in `x-writ-route`.
    name_header: Option<HeaderValue>,
    /// Where it forwards to.
    upstream: Upstream,
}

/// Per API key: its hash, and its plan's limits.
struct KeyState {
    hash: String,
    routes: Vec<String>,
    bucket: Option<Bucket>,
    quota: Option<Quota>,
}

/// A client certificate checked against one bundle (by its digest), or why it was refused.
type CheckedCert = (u64, Result<Arc<CheckedSvid>, String>);

/// A client certificate that verified as an X.509-SVID, with what each request on its
/// connection needs from it worked out once.
struct CheckedSvid {
    svid: VerifiedSvid,
    /// Its not-before and not-after, Unix seconds.
    not_before: i64,
    not_after: i64,
    /// Its serial as revocations are compared ([`crate::control::serial_key`]).
    serial_key: String,
    /// Its SPIFFE ID, as audited.
    actor: Arc<str>,
    /// Its SPIFFE ID, as forwarded in `x-writ-caller`.
    header: Option<HeaderValue>,
}

/// The last authorization decision on a connection, and what it was made on: the
/// intentions (by digest), the route's function, the method, the path and the values of
/// the headers intentions condition on. Intentions decide on nothing else (the caller is
/// the connection's), so the same request under the same intentions gets the same answer.
struct Decided {
    intentions: u64,
    route: usize,
    method: hyper::Method,
    path: String,
    headers: Vec<(String, String)>,
    /// Allowed, or the refusal.
    verdict: Result<(), Denial>,
}

/// A verified JWT-SVID: its subject, `iat`, `exp`, and the digest of the JWKS it was
/// verified against.
type JwtHit = (SpiffeId, i64, i64, u64);

/// What one connection tells its requests.
pub struct Connection {
    /// The peer's address.
    pub remote: SocketAddr,
    /// The worker thread serving it.
    pub worker: usize,
    /// The client certificate, if one was presented (not yet checked).
    pub peer_cert: Option<CertificateDer<'static>>,
    /// The certificate's verification against the bundle in force when first checked,
    /// with the bundle's identity and the certificate's expiry; done once per connection.
    verified: OnceLock<CheckedCert>,
    /// The peer's address as audited.
    source: Arc<str>,
    /// The peer's address as `x-forwarded-for` gives it.
    remote_header: Option<HeaderValue>,
    /// The last authorization decision for an mTLS caller, made again when anything it
    /// was made on differs.
    decided: Mutex<Option<Decided>>,
}

impl Connection {
    /// A connection from `remote` that presented `peer_cert`, served by `worker`.
    pub fn new(
        remote: SocketAddr,
        peer_cert: Option<CertificateDer<'static>>,
        worker: usize,
    ) -> Connection {
        let source: Arc<str> = remote.ip().to_string().into();
        Connection {
            remote,
            worker,
            peer_cert,
            verified: OnceLock::new(),
            remote_header: HeaderValue::from_str(&source).ok(),
            source,
            decided: Mutex::new(None),
        }
    }
}

/// The gateway.
pub struct Gateway {
    config: Arc<Config>,
    trust_domain: TrustDomain,
    routes: Vec<Live>,
    shared: Arc<Shared>,
    secrets: SecretCache<ServerClient>,
    audit: Arc<AuditBuffer>,
    metrics: Arc<Metrics>,
    jwt_cache: Mutex<HashMap<[u8; 32], JwtHit>>,
    keys: Mutex<HashMap<String, KeyState>>,
    /// Every upstream address, with its idle connections.
    upstreams: Upstreams,
    /// [`UNROUTED`], shared by the events of requests no route took.
    unrouted: Arc<str>,
    /// The bytes of request bodies it may hold before their requests are authenticated.
    body_budget: Arc<BodyBudget>,
}

/// A refusal or failure answered by the gateway itself.
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// For the audit log (may say more than the caller is told).
    reason: String,
    decision: Label,
    /// The policy decision that refused it, when intentions made one.
    ruling: Option<Decision>,
    /// The intentions that decided an explicit deny.
    matched: Vec<String>,
    retry_after: Option<Duration>,
    /// The request's body was left partly read: the response ends the connection.
    close: bool,
}

impl Refusal {
    fn new(
        status: StatusCode,
        code: &'static str,
        decision: Label,
        message: impl Into<String>,
    ) -> Refusal {
        let message = message.into();
        Refusal {
            status,
            code,
            reason: message.clone(),
            message,
            decision,
            ruling: None,
            matched: Vec::new(),
            retry_after: None,
            close: false,
        }
    }

    fn unauthenticated(reason: impl Into<String>) -> Refusal {
        Refusal {
            reason: reason.into(),
            ..Refusal::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                Label::Unauthenticated,
                "authentication failed",
            )
        }
    }
}

/// Who the caller proved to be, and how (`mtls`, `jwt`, `webhook`, `api-key`, `public`).
struct Caller {
    /// A SPIFFE ID, `apikey:ID`, `webhook:ROUTE` or `anonymous`.
    actor: Arc<str>,
    /// The verified X.509-SVID, for an mTLS caller.
    svid: Option<Arc<CheckedSvid>>,
    /// Whether `actor` is a verified SPIFFE ID, which intentions then authorize.
    workload: bool,
    method: &'static str,
}

/// The time in Unix seconds, negative before 1970; without the calendar arithmetic of
/// going through a date (it is read twice per request).
fn now_unix() -> i64 {
    match SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

impl Gateway {
    /// Builds the gateway from its checked configuration; bodies it reads before
    /// authentication are held within `body_budget`.
    pub fn new(
        config: Arc<Config>,
        shared: Arc<Shared>,
        secrets: SecretCache<ServerClient>,
        audit: Arc<AuditBuffer>,
        metrics: Arc<Metrics>,
        workers: usize,
        body_budget: Arc<BodyBudget>,
    ) -> Result<Gateway, String> {
        let trust_domain = TrustDomain::new(&config.trust_domain).map_err(|e| e.to_string())?;
        let now = Instant::now();
        let mut upstreams = Upstreams::new(workers);
        let mut routes = Vec::new();
        for (index, r) in config.routes.iter().enumerate() {
            let schema = match &r.schema {
                Some(path) => {
                    let text = std::fs::read_to_string(path).map_err(|e| {
                        format!("route {:?} schema {}: {e}", r.name, path.display())
                    })?;
                    let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                        format!("route {:?} schema {}: {e}", r.name, path.display())
                    })?;
                    Some(jsonschema::validator_for(&doc).map_err(|e| {
                        format!("route {:?} schema {}: {e}", r.name, path.display())
                    })?)
                }
                None => None,
            };
            let audience = SpiffeId::for_function(&trust_domain, &r.function)
                .map_err(|e| e.to_string())?
                .to_string();
            routes.push(Live {
                index,
                route: r.clone(),
                schema,
                bucket: r.rate_limit.map(|l| Mutex::new(Bucket::new(l, now))),
                audience,
                audience_rule: if r.allow_multi_audience {
                    AudienceRule::AllowMultiple
                } else {
                    AudienceRule::Exactly
                },
                takes_jwt: r.auth.contains(&AuthMethod::Jwt),
                resource: format!("writ:fn/{}", r.function).into(),
                name_header: HeaderValue::from_str(&r.name).ok(),
                upstream: upstreams
                    .upstream(&r.upstream, r.upstream_ca.as_deref(), r.timeout)
                    .map_err(|e| format!("route {:?}: upstream {:?}: {e}", r.name, r.upstream))?,
            });
        }
        let keys = config
            .api_keys
            .iter()
            .map(|k| {
                let plan = &config.usage_plans[&k.plan];
                (
                    k.id.clone(),
                    KeyState {
                        hash: k.hash.clone(),
                        routes: k.routes.clone(),
                        bucket: plan.rate.map(|l| Bucket::new(l, now)),
                        quota: plan.quota.map(|q| Quota::new(q, plan.quota_period, now)),
                    },
                )
            })
            .collect();
        Ok(Gateway {
            config,
            trust_domain,
            routes,
            shared,
            secrets,
            audit,
            metrics,
            jwt_cache: Mutex::new(HashMap::new()),
            keys: Mutex::new(keys),
            upstreams,
            unrouted: Arc::from(UNROUTED),
            body_budget,
        })
    }

    /// Closes `worker`'s idle upstream connections that their upstream closed or that
    /// went unused too long; run on `worker`'s thread, every second.
    pub fn sweep_idle_upstreams(&self, worker: usize) {
        self.upstreams.sweep(worker);
    }

    fn route_for(&self, host: Option<&str>, path: &str) -> Option<&Live> {
        self.routes
            .iter()
            .filter(|l| {
                l.route
                    .host
                    .as_deref()
                    .is_none_or(|h| host.is_some_and(|x| h.eq_ignore_ascii_case(x)))
            })
            .filter(|l| {
                let p = l.route.path_prefix.as_str();
                path == p
                    || (path.starts_with(p)
                        && (p.ends_with('/') || path[p.len()..].starts_with('/')))
            })
            .max_by_key(|l| (l.route.host.is_some(), l.route.path_prefix.len()))
    }

    /// Serves one request.
    pub async fn handle(&self, req: Request<Incoming>, conn: &Connection) -> Response<Body> {
        let started = Instant::now();
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().host())
            .map(|h| {
                h.rsplit_once(':').map_or(h, |(name, port)| {
                    if port.bytes().all(|b| b.is_ascii_digit()) {
                        name
                    } else {
                        h
                    }
                })
            });
        let path = req.uri().path();
        // Intentions and routes match the path literally, and the upstream may normalise
        // it: a path that could mean another one there (`/pay/../admin`, `//`, encoded
        // dots, slashes or backslashes) is refused rather than guessed at.
        if let Err(why) = check_path(path) {
            let r = Refusal::new(
                StatusCode::BAD_REQUEST,
                "invalidRequest",
                Label::BadPath,
                why,
            );
            return self.refuse_unrouted(&r, req, conn, started).await;
        }
        let Some(live) = self.route_for(host, path) else {
            let r = Refusal::new(
                StatusCode::NOT_FOUND,
                "notFound",
                Label::NoRoute,
                format!("no route for {path}"),
            );
            return self.refuse_unrouted(&r, req, conn, started).await;
        };
        let path = path.to_owned();
        let method = req.method().clone();
        let cors = live.route.cors.as_ref();
        let origin = req.headers().get(header::ORIGIN).cloned();
        // A CORS preflight carries no credentials; it is answered here.
        if method == hyper::Method::OPTIONS
            && origin.is_some()
            && req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
            && let Some(c) = cors
        {
            self.metrics
                .observe(conn.worker, live.index, Label::Preflight, started.elapsed());
            return preflight(c, origin.as_ref());
        }
        let awaits_continue = awaits_continue(req.headers());
        let (parts, body) = req.into_parts();
        let mut body = Some(body);
        let passed = self.pass(live, parts, &mut body, conn, started).await;
        let (label, mut response, record) = match passed {
            Ok((response, caller)) => {
                let status = response.status().as_u16();
                let record = Record {
                    authenticated_by: caller.method,
                    outcome: Outcome::Allowed,
                    decision: Some(Decision::Allowed),
                    ..self.record(
                        live,
                        conn,
                        caller.actor,
                        Reason::Forwarded {
                            method,
                            path,
                            status,
                        },
                    )
                };
                (Label::Allowed, response, record)
            }
            Err((mut r, actor)) => {
                let mut record = self.record(
                    live,
                    conn,
                    actor.unwrap_or_else(|| Arc::from("anonymous")),
                    Reason::Refused {
                        method,
                        path,
                        why: r.reason.clone(),
                    },
                );
                // The intentions' decision as they made it; any other 403 (an API key on
                // a route it does not name) is a deny for want of an allow.
                record.decision = r.ruling.or_else(|| {
                    (r.status == StatusCode::FORBIDDEN).then_some(Decision::ImplicitDeny)
                });
                record.matched = std::mem::take(&mut r.matched);
                if r.status.is_server_error() {
                    record.outcome = Outcome::Failed;
                }
                let response = finish_refusal(&r, body.take(), awaits_continue).await;
                (r.decision, response, record)
            }
        };
        if let Some(c) = cors {
            add_cors(c, origin.as_ref(), response.headers_mut());
        }
        let took = started.elapsed();
        let record = Record {
            latency_us: u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            ..record
        };
        if !self.audit.push(conn.worker, record) {
            self.metrics.audit_dropped(1);
        }
        self.metrics.observe(conn.worker, live.index, label, took);
        response
    }

    /// Refuses a request no route takes (its path is refused, or no route matches), and
    /// audits it, on the resource [`UNROUTED`]: its caller is not authenticated (the route
    /// would say how), so the actor is `anonymous`.
    async fn refuse_unrouted(
        &self,
        r: &Refusal,
        req: Request<Incoming>,
        conn: &Connection,
        started: Instant,
    ) -> Response<Body> {
        let at = SystemTime::now();
        let reason = Reason::Refused {
            method: req.method().clone(),
            path: req.uri().path().to_owned(),
            why: r.reason.clone(),
        };
        let response = refused(r, req).await;
        let took = started.elapsed();
        let record = Record {
            at,
            actor: Arc::from("anonymous"),
            authenticated_by: "",
            resource: self.unrouted.clone(),
            outcome: Outcome::Denied,
            decision: None,
            matched: Vec::new(),
            reason,
            source: conn.source.clone(),
            latency_us: u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
        };
        if !self.audit.push(conn.worker, record) {
            self.metrics.audit_dropped(1);
        }
        self.metrics
            .observe(conn.worker, NO_ROUTE, r.decision, took);
        response
    }

    /// The audit record of a request by `actor` on `live`, refused now without a policy
    /// decision; the caller changes what differs.
    fn record(&self, live: &Live, conn: &Connection, actor: Arc<str>, reason: Reason) -> Record {
        Record {
            at: SystemTime::now(),
            actor,
            authenticated_by: "",
            resource: live.resource.clone(),
            outcome: Outcome::Denied,
            decision: None,
            matched: Vec::new(),
            reason,
            source: conn.source.clone(),
            latency_us: 0,
        }
    }

    /// Authenticates, authorizes, validates and forwards a request. `body` is taken when
    /// it is read; left in place, it was never needed.
    async fn pass(
        &self,
        live: &Live,
        parts: hyper::http::request::Parts,
        body: &mut Option<Incoming>,
        conn: &Connection,
        started: Instant,
    ) -> Result<(Response<Body>, Caller), (Refusal, Option<Arc<str>>)> {
        let route = &live.route;
        let control = self.shared.control();
        // Both halves of the state must be fresh: the bundle, JWKS and intentions, and the
        // revocation feed. Either one failing alone must not keep the other's age hidden.
        let heard = self
            .shared
            .state_synced_at
            .load(Ordering::Acquire)
            .min(self.shared.feed_synced_at.load(Ordering::Acquire));
        let stale = now_unix() - heard;
        if !route.public && stale > self.config.max_staleness.as_secs() as i64 {
            return Err((
                Refusal::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "stale",
                    Label::Stale,
                    format!(
                        "the gateway has not heard from the server for {stale} s, past its {} s bound",
                        self.config.max_staleness.as_secs()
                    ),
                ),
                None,
            ));
        }
        if let Some(len) = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
            && len > route.max_body
        {
            return Err((too_large(route.max_body), None));
        }
        // A webhook's signature covers the body, so it is read (bounded, and within the
        // budget for unauthenticated bodies) before authentication; every other body only
        // once the caller is authenticated and authorized.
        let mut read = None;
        let mut unauthenticated = None;
        if route.auth.contains(&AuthMethod::Webhook)
            && let Some(b) = body.take()
        {
            let (bytes, held) = self
                .read_unauthenticated(b, route.max_body)
                .await
                .map_err(|r| (r, None))?;
            read = Some(bytes);
            unauthenticated = held;
        }
        let caller = self
            .authenticate(live, &parts.headers, read.as_ref(), conn, &control)
            .await;
        // Authenticated or refused, the body no longer counts against the budget: what is
        // left of it is an authenticated caller's, or dropped with the refusal.
        drop(unauthenticated);
        let caller = caller.map_err(|r| (r, None))?;
        let actor = Some(caller.actor.clone());
        if caller.workload {
            self.authorize(live, &caller, &parts, conn, &control)
                .map_err(|r| (r, actor.clone()))?;
        }
        if let Some(b) = &live.bucket {
            let taken = b
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take(Instant::now());
            if let Err(wait) = taken {
                let mut r = Refusal::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rateLimited",
                    Label::RateLimited,
                    format!("route {} is over its rate limit", route.name),
                );
                r.retry_after = Some(wait);
                return Err((r, actor));
            }
        }
        let body = match (read, body.take()) {
            (Some(b), _) => b,
            // A request without a body (no `content-length`, or 0, and not chunked) has
            // nothing to wait for.
            (None, Some(b)) if b.is_end_stream() => Bytes::new(),
            (None, Some(b)) => read_body(b, route.max_body)
                .await
                .map_err(|r| (r, actor.clone()))?,
            (None, None) => Bytes::new(),
        };
        if let Some(schema) = &live.schema {
            let doc: serde_json::Value = writ_audit::json::from_bytes(&body).map_err(|e| {
                (
                    Refusal::new(
                        StatusCode::BAD_REQUEST,
                        "invalidRequest",
                        Label::Invalid,
                        format!("body: not JSON: {e}"),
                    ),
                    actor.clone(),
                )
            })?;
            if let Err(e) = schema.validate(&doc) {
                let at = e.instance_path.to_string();
                let at = if at.is_empty() { "/".to_string() } else { at };
                return Err((
                    Refusal::new(
                        StatusCode::BAD_REQUEST,
                        "invalidRequest",
                        Label::Invalid,
                        format!("body{at}: {e}"),
                    ),
                    actor,
                ));
            }
        }
        let response = self
            .forward(live, parts, body, &caller, conn)
            .await
            .map_err(|r| (r, actor))?;
        let _ = started;
        Ok((response, caller))
    }

    async fn authenticate(
        &self,
        live: &Live,
        headers: &HeaderMap,
        body: Option<&Bytes>,
        conn: &Connection,
        control: &crate::control::Control,
    ) -> Result<Caller, Refusal> {
        let route = &live.route;
        if route.public {
            return Ok(Caller {
                actor: "anonymous".into(),
                svid: None,
                workload: false,
                method: "public",
            });
        }
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        for method in &route.auth {
            match method {
                AuthMethod::Mtls => {
                    if conn.peer_cert.is_some() {
                        return self.check_svid(conn, control).map(|svid| Caller {
                            actor: svid.actor.clone(),
                            svid: Some(svid),
                            workload: true,
                            method: AuthMethod::Mtls.as_str(),
                        });
                    }
                }
                AuthMethod::Jwt => {
                    if let Some(token) = bearer {
                        return self
                            .check_jwt(token, &live.audience, live.audience_rule, control)
                            .map(|id| Caller {
                                actor: id.as_str().into(),
                                svid: None,
                                workload: true,
                                method: AuthMethod::Jwt.as_str(),
                            });
                    }
                }
                AuthMethod::ApiKey => {
                    if let Some(key) = headers.get(names::X_API_KEY).and_then(|v| v.to_str().ok()) {
                        return self.check_api_key(key, &route.name).map(|id| Caller {
                            actor: format!("apikey:{id}").into(),
                            svid: None,
                            workload: false,
                            method: AuthMethod::ApiKey.as_str(),
                        });
                    }
                }
                AuthMethod::Webhook => {
                    if let Some(w) = &route.webhook {
                        let (name, present) = match w.style {
                            WebhookStyle::Github => (
                                "x-hub-signature-256",
                                headers.get(names::X_HUB_SIGNATURE_256),
                            ),
                            WebhookStyle::Stripe => {
                                ("stripe-signature", headers.get(names::STRIPE_SIGNATURE))
                            }
                        };
                        if present.is_some() {
                            let key = self.secrets.get(&w.secret).await.map_err(|e| {
                                Refusal::new(
                                    StatusCode::SERVICE_UNAVAILABLE,
                                    "unavailable",
                                    Label::Unavailable,
                                    "the webhook key is unavailable",
                                )
                                .with_reason(format!("webhook key {}: {e}", w.secret))
                            })?;
                            let header_value = present.and_then(|v| v.to_str().ok());
                            let body = body.map_or(&[][..], |b| &b[..]);
                            let checked = match w.style {
                                WebhookStyle::Github => {
                                    authn::github_signature_ok(key.as_bytes(), body, header_value)
                                }
                                WebhookStyle::Stripe => authn::stripe_signature_ok(
                                    key.as_bytes(),
                                    body,
                                    header_value,
                                    now_unix(),
                                    w.tolerance,
                                ),
                            };
                            return checked
                                .map(|()| Caller {
                                    actor: format!("webhook:{}", route.name).into(),
                                    svid: None,
                                    workload: false,
                                    method: AuthMethod::Webhook.as_str(),
                                })
                                .map_err(|e| Refusal::unauthenticated(format!("{name}: {e}")));
                        }
                    }
                }
            }
        }
        let offered: Vec<&str> = route.auth.iter().map(|m| m.as_str()).collect();
        Err(Refusal::unauthenticated(format!(
            "no credentials for this route, which takes {}",
            offered.join(", ")
        )))
    }

    fn check_svid(
        &self,
        conn: &Connection,
        control: &crate::control::Control,
    ) -> Result<Arc<CheckedSvid>, Refusal> {
        let bundle_id = control.bundle_digest;
        let Some(cert) = &conn.peer_cert else {
            return Err(Refusal::unauthenticated("no client certificate"));
        };
        let compute = || {
            let now = time::OffsetDateTime::now_utc();
            authn::verify_svid(cert, &control.bundle, self.trust_domain.as_str(), now).and_then(
                |svid| {
                    let (_, parsed) = x509_parser::parse_x509_certificate(cert)
                        .map_err(|_| "unreadable certificate".to_string())?;
                    let v = parsed.validity();
                    Ok(Arc::new(CheckedSvid {
                        not_before: v.not_before.timestamp(),
                        not_after: v.not_after.timestamp(),
                        serial_key: crate::control::serial_key(&svid.serial),
                        actor: svid.id.as_str().into(),
                        header: HeaderValue::from_str(svid.id.as_str()).ok(),
                        svid,
                    }))
                },
            )
        };
        let verified = conn.verified.get_or_init(|| (bundle_id, compute()));
        let recomputed;
        let verified = if verified.0 == bundle_id {
            &verified.1
        } else {
            // The bundle changed since this connection was checked: check again.
            recomputed = compute();
            &recomputed
        };
        let checked = verified.clone().map_err(Refusal::unauthenticated)?;
        if now_unix() >= checked.not_after {
            return Err(Refusal::unauthenticated(
                "the client certificate has expired",
            ));
        }
        if control.revoked_serials.contains(&checked.serial_key) {
            return Err(Refusal::unauthenticated(format!(
                "SVID {} is revoked",
                checked.svid.serial
            )));
        }
        if let Some(at) = control.revoked_functions.get(checked.svid.id.as_str())
            && checked.not_before + 30 < *at
        {
            return Err(Refusal::unauthenticated(format!(
                "{} is revoked",
                checked.svid.id
            )));
        }
        Ok(checked)
    }

    fn check_jwt(
        &self,
        token: &str,
        audience: &str,
        rule: AudienceRule,
        control: &crate::control::Control,
    ) -> Result<SpiffeId, Refusal> {
        // The audience and the rule it was checked by are part of the key: a token
        // verified for one route's function is not thereby good for another's, nor a
        // multi-audience token accepted by a route that allows it good for one that does
        // not. (The JWKS it was verified against is checked with the hit.)
        let key = {
            let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
            digest.update(match rule {
                AudienceRule::Exactly => b"exactly\0",
                AudienceRule::AllowMultiple => b"several\0",
            });
            digest.update(audience.as_bytes());
            digest.update(b"\0");
            digest.update(token.as_bytes());
            let mut key = [0u8; 32];
            key.copy_from_slice(digest.finish().as_ref());
            key
        };
        let now = now_unix();
        let cached = self
            .jwt_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .cloned();
        let (id, iat, exp, _) = match cached.filter(|hit| hit.3 == control.jwks_digest) {
            Some(hit) => hit,
            None => {
                let (id, claims) = writ_identity::jwt_svid::verify_with(
                    token,
                    &control.jwks,
                    &self.trust_domain,
                    audience,
                    rule,
                    time::OffsetDateTime::now_utc(),
                    time::Duration::seconds(30),
                )
                .map_err(|e| Refusal::unauthenticated(format!("JWT-SVID refused: {e}")))?;
                if !id.path().starts_with("/fn/") {
                    return Err(Refusal::unauthenticated(format!("{id} is not a function")));
                }
                let entry = (id, claims.iat, claims.exp, control.jwks_digest);
                let mut cache = self
                    .jwt_cache
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if cache.len() >= 100_000 {
                    cache.retain(|_, hit| hit.2 > now);
                    if cache.len() >= 100_000 {
                        cache.clear();
                    }
                }
                cache.insert(key, entry.clone());
                entry
            }
        };
        if now > exp + 30 {
            return Err(Refusal::unauthenticated("JWT-SVID refused: expired"));
        }
        if let Some(at) = control.revoked_functions.get(id.as_str())
            && iat < *at
        {
            return Err(Refusal::unauthenticated(format!("{id} is revoked")));
        }
        Ok(id)
    }

    fn check_api_key(&self, presented: &str, route: &str) -> Result<String, Refusal> {
        let Some((id, secret)) = authn::parse_api_key(presented) else {
            return Err(Refusal::unauthenticated("x-api-key: not a writ API key"));
        };
        let mut keys = self
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(state) = keys.get_mut(id) else {
            return Err(Refusal::unauthenticated(format!(
                "x-api-key: no key {id:?}"
            )));
        };
        if !authn::api_key_matches(secret, &state.hash) {
            return Err(Refusal::unauthenticated(format!(
                "x-api-key: wrong secret for key {id:?}"
            )));
        }
        if !state.routes.iter().any(|r| r == route) {
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                "accessDenied",
                Label::Denied,
                format!("API key {id} may not call route {route}"),
            ));
        }
        let now = Instant::now();
        if let Some(b) = &mut state.bucket
            && let Err(wait) = b.take(now)
        {
            let mut r = Refusal::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rateLimited",
                Label::RateLimited,
                format!("API key {id} is over its rate"),
            );
            r.retry_after = Some(wait);
            return Err(r);
        }
        if let Some(q) = &mut state.quota
            && let Err(wait) = q.take(now)
        {
            let mut r = Refusal::new(
                StatusCode::TOO_MANY_REQUESTS,
                "quotaExceeded",
                Label::QuotaExceeded,
                format!("API key {id} has used its quota"),
            );
            r.retry_after = Some(wait);
            return Err(r);
        }
        Ok(id.to_string())
    }

    fn authorize(
        &self,
        live: &Live,
        caller: &Caller,
        parts: &hyper::http::request::Parts,
        conn: &Connection,
        control: &crate::control::Control,
    ) -> Result<(), Refusal> {
        // Names as a CGI/WSGI upstream reads them (`_` as `-`). A header an intention
        // conditions on must come once, with a visible-ASCII value: otherwise the decision
        // could see one value (or none) and the upstream another.
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        // Only headers some intention conditions on enter the decision (most deployments
        // have none, and the request path then allocates nothing for headers).
        if !control.intention_headers.is_empty() {
            for (k, v) in &parts.headers {
                let raw = k.as_str();
                let name: std::borrow::Cow<'_, str> = if raw.contains('_') {
                    raw.replace('_', "-").into()
                } else {
                    raw.into()
                };
                if !control.intention_headers.contains(name.as_ref()) {
                    continue;
                }
                let visible = v.as_bytes().iter().all(|b| (0x20..0x7f).contains(b));
                if !visible || !seen.insert(name.to_string()) {
                    return Err(Refusal::new(
                        StatusCode::BAD_REQUEST,
                        "invalidRequest",
                        Label::BadRequest,
                        format!(
                            "header {name}: an intention conditions on it, so it must come once, in visible ASCII"
                        ),
                    ));
                }
                if let Ok(value) = v.to_str() {
                    headers.push((name.into_owned(), value.to_string()));
                }
            }
        }
        // The caller is told the method and path too; the event has them already.
        let refused = |denial: Denial| Refusal {
            ruling: Some(denial.decision),
            matched: denial.matched,
            ..Refusal::new(
                StatusCode::FORBIDDEN,
                "accessDenied",
                Label::Denied,
                format!("{} {}: {}", parts.method, parts.uri.path(), denial.reason),
            )
            .with_reason(denial.reason)
        };
        // An mTLS caller is the connection's, so its last decision stands for a request
        // that repeats everything it was made on (intentions condition on the source,
        // the destination, the method, the path and headers, and on nothing else).
        let path = parts.uri.path();
        let mut decided = caller.svid.as_ref().map(|_| {
            conn.decided
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        });
        if let Some(Some(d)) = decided.as_deref()
            && d.intentions == control.intentions_digest
            && d.route == live.index
            && d.method == parts.method
            && d.path == path
            && d.headers == headers
        {
            return d.verdict.clone().map_err(refused);
        }
        let request = crate::intentions::request(
            &caller.actor,
            &live.route.function,
            parts.method.as_str(),
            path,
            &headers,
            conn.remote.ip(),
        );
        let verdict = control.intentions.decide(&request);
        let verdict = crate::intentions::judge(&verdict);
        if let Some(slot) = decided.as_deref_mut() {
            *slot = Some(Decided {
                intentions: control.intentions_digest,
                route: live.index,
                method: parts.method.clone(),
                path: path.to_owned(),
                headers,
                verdict: verdict.clone(),
            });
        }
        verdict.map_err(refused)
    }

    async fn forward(
        &self,
        live: &Live,
        parts: hyper::http::request::Parts,
        body: Bytes,
        caller: &Caller,
        conn: &Connection,
    ) -> Result<Response<Body>, Refusal> {
        let uri = live.upstream.target(&parts.uri).map_err(|e| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                "invalidRequest",
                Label::BadRequest,
                format!("path: {e}"),
            )
        })?;
        // The caller's headers are forwarded in place: those that may not pass are
        // found first and removed (a request rarely has any), then the gateway's set.
        let mut headers = parts.headers;
        // Headers the Connection header names are hop-by-hop too.
        let connection = connection_named(&headers);
        let dropped: Vec<HeaderName> = headers
            .keys()
            // `host` is replaced below in any case.
            .filter(|name| *name != header::HOST && !forwarded(name.as_str(), &connection))
            .cloned()
            .collect();
        for name in dropped {
            headers.remove(name);
        }
        // On a route that takes JWT-SVIDs, a bearer `Authorization` is the gateway's
        // credential, consumed here (or not needed, when another method decided): the
        // upstream gets the verified caller in `x-writ-caller`, never a token it could
        // replay elsewhere as the caller.
        if live.takes_jwt
            && headers
                .get_all(header::AUTHORIZATION)
                .iter()
                .any(|v| is_bearer(v.as_bytes()))
        {
            headers.remove(header::AUTHORIZATION);
        }
        // The addresses the caller's `x-forwarded-for` lines list, in order (several lines
        // are one list, RFC 9110 section 5.3), then the caller's own.
        let mut prior = String::new();
        for line in headers.get_all(names::X_FORWARDED_FOR) {
            let Ok(line) = line.to_str() else { continue };
            let line = line.trim();
            if !line.is_empty() {
                if !prior.is_empty() {
                    prior.push_str(", ");
                }
                prior.push_str(line);
            }
        }
        let forwarded_for = if prior.is_empty() {
            conn.remote_header.clone()
        } else {
            HeaderValue::from_str(&format!("{prior}, {}", conn.remote.ip())).ok()
        };
        let traced = headers.contains_key(names::TRACEPARENT);
        headers.reserve(7);
        headers.insert(header::HOST, live.upstream.host.clone());
        let caller_header = match caller.svid.as_ref().and_then(|s| s.header.clone()) {
            Some(v) => Some(v),
            None => HeaderValue::from_str(&caller.actor).ok(),
        };
        if let Some(v) = caller_header {
            headers.insert(names::X_WRIT_CALLER, v);
        }
        headers.insert(
            names::X_WRIT_AUTHENTICATED_BY,
            HeaderValue::from_static(caller.method),
        );
        if let Some(v) = &live.name_header {
            headers.insert(names::X_WRIT_ROUTE, v.clone());
        }
        match forwarded_for {
            Some(v) => headers.insert(names::X_FORWARDED_FOR, v),
            None => headers.remove(names::X_FORWARDED_FOR),
        };
        headers.insert(names::X_FORWARDED_PROTO, HeaderValue::from_static("https"));
        if !traced {
            headers.insert(names::TRACEPARENT, new_traceparent());
        }
        let mut out = Request::new(body);
        *out.method_mut() = parts.method;
        *out.uri_mut() = uri;
        *out.headers_mut() = headers;
        let sent =
            tokio::time::timeout(live.route.timeout, live.upstream.send(conn.worker, out)).await;
        match sent {
            Ok(Ok(response)) => {
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Ok(Response::from_parts(parts, Either::Left(body)))
            }
            Ok(Err(e)) => {
                // A TLS failure is the configuration's or the upstream's certificate's:
                // the caller and the log are told which (it holds nothing secret).
                let message = match &e {
                    SendError::Tls(_) => {
                        tracing::warn!(route = %live.route.name, upstream = %live.route.upstream, "{e}");
                        format!("the upstream could not be reached: {e}")
                    }
                    SendError::Other(_) => "the upstream could not be reached".into(),
                };
                Err(Refusal::new(
                    StatusCode::BAD_GATEWAY,
                    "upstreamFailed",
                    Label::UpstreamError,
                    message,
                )
                .with_reason(format!("upstream {}: {e}", live.route.upstream)))
            }
            Err(_) => Err(Refusal::new(
                StatusCode::GATEWAY_TIMEOUT,
                "upstreamTimeout",
                Label::UpstreamTimeout,
                format!(
                    "the upstream did not answer within {:?}",
                    live.route.timeout
                ),
            )),
        }
    }
}

impl Refusal {
    fn with_reason(mut self, reason: String) -> Refusal {
        self.reason = reason;
        self
    }
}

impl Gateway {
    /// Reads the body of a request not yet authenticated, up to `max` bytes, into bytes
    /// reserved from the budget for such bodies first: a length the client announces is
    /// reserved (and allocated) at once, a chunked body as it grows. The budget spent,
    /// 503 with `Retry-After`. Each piece is copied out of the connection's read buffer
    /// as it arrives, so no piece keeps that buffer alive, and the body is one
    /// allocation, freed when the request ends. Returns the body and its reservation,
    /// which the caller holds until the request is authenticated. On failure the body
    /// is left partly read, so the refusal ends the connection.
    async fn read_unauthenticated(
        &self,
        mut body: Incoming,
        max: usize,
    ) -> Result<(Bytes, Option<Reserved<'_>>), Refusal> {
        if body.is_end_stream() {
            return Ok((Bytes::new(), None));
        }
        let overloaded = || Refusal {
            close: true,
            ..overloaded(self.body_budget.limit())
        };
        let announced = body
            .size_hint()
            .exact()
            .map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX))
            .min(max);
        let mut held = self.body_budget.reserve(announced).ok_or_else(overloaded)?;
        let mut buf: Vec<u8> = Vec::with_capacity(announced);
        let read = async {
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| {
                    Refusal::new(
                        StatusCode::BAD_REQUEST,
                        "invalidRequest",
                        Label::BadRequest,
                        format!("reading the body: {e}"),
                    )
                })?;
                let Ok(data) = frame.into_data() else {
                    // Trailers: not part of the body.
                    continue;
                };
                let len = buf.len() + data.len();
                if len > max {
                    return Err(too_large(max));
                }
                if len > buf.capacity() {
                    // Grown by doubling, within the limit, each size reserved before it
                    // is allocated.
                    let want = len.max(buf.capacity().saturating_mul(2)).min(max);
                    if !held.grow(want.saturating_sub(held.bytes())) {
                        return Err(overloaded());
                    }
                    let mut bigger = Vec::with_capacity(want);
                    bigger.extend_from_slice(&buf);
                    buf = bigger;
                }
                buf.extend_from_slice(&data);
            }
            Ok(())
        };
        match tokio::time::timeout(BODY_TIMEOUT, read).await {
            Ok(Ok(())) => Ok((Bytes::from(buf), Some(held))),
            Ok(Err(r)) => Err(Refusal { close: true, ..r }),
            Err(_) => Err(Refusal {
                close: true,
                ..body_timeout()
            }),
        }
    }
}

/// The answer when the budget for bodies read before authentication (`limit` bytes) is
/// spent: try again shortly.
fn overloaded(limit: usize) -> Refusal {
    Refusal {
        retry_after: Some(Duration::from_secs(1)),
        ..Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            Label::Overloaded,
            "the gateway is holding all the unauthenticated request bodies it may; try again shortly",
        )
        .with_reason(format!(
            "the budget for bodies read before authentication ({limit} bytes) is spent"
        ))
    }
}

/// A body that did not arrive within [`BODY_TIMEOUT`].
fn body_timeout() -> Refusal {
    Refusal::new(
        StatusCode::REQUEST_TIMEOUT,
        "timeout",
        Label::BadRequest,
        format!(
            "the body did not arrive within {} s",
            BODY_TIMEOUT.as_secs()
        ),
    )
}

/// Reads a body up to `max` bytes. On failure the body is left partly read, so the
/// refusal ends the connection.
async fn read_body(body: Incoming, max: usize) -> Result<Bytes, Refusal> {
    read_limited(body, max)
        .await
        .map_err(|r| Refusal { close: true, ..r })
}

async fn read_limited(body: Incoming, max: usize) -> Result<Bytes, Refusal> {
    let read = tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, max).collect()).await;
    let Ok(read) = read else {
        return Err(body_timeout());
    };
    match read {
        Ok(b) => Ok(b.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large(max))
        }
        Err(e) => Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "invalidRequest",
            Label::BadRequest,
            format!("reading the body: {e}"),
        )),
    }
}

/// A body over the route's limit: it is not read, so the connection ends.
fn too_large(max: usize) -> Refusal {
    Refusal {
        close: true,
        ..Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "tooLarge",
            Label::TooLarge,
            format!("the body is over this route's {max} bytes"),
        )
    }
}

/// The answer to a request refused before its body was read.
async fn refused(r: &Refusal, req: Request<Incoming>) -> Response<Body> {
    let awaits = awaits_continue(req.headers());
    finish_refusal(r, Some(req.into_body()), awaits).await
}

/// Whether the client sends its body only after `100 Continue`.
fn awaits_continue(headers: &HeaderMap) -> bool {
    headers.contains_key(header::EXPECT)
}

/// The answer to a refusal, once the body it left `unread` is dealt with. A body the
/// refusal never needed is read and dropped (see [`discard`]) so the connection can carry
/// the next request; one that cannot be, or one the client sends only after
/// `100 Continue`, is not read, and the answer says the connection ends rather than the
/// client finding out from a closed socket.
async fn finish_refusal(
    r: &Refusal,
    unread: Option<Incoming>,
    awaits_continue: bool,
) -> Response<Body> {
    let mut response = refusal_response(r);
    let kept = !r.close
        && match unread {
            None => true,
            Some(body) => !awaits_continue && discard(body).await,
        };
    if !kept {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// The most of a refused request's body the gateway reads to keep its connection.
const DISCARD_MAX: u64 = 64 * 1024;
/// How long it waits for that body.
const DISCARD_TIME: Duration = Duration::from_secs(1);

/// Reads and drops a body, up to [`DISCARD_MAX`] bytes within [`DISCARD_TIME`]; whether
/// it ended there (so the connection can carry another request).
async fn discard(mut body: Incoming) -> bool {
    if body.is_end_stream() {
        return true;
    }
    if body.size_hint().lower() > DISCARD_MAX {
        return false;
    }
    let drain = async {
        let mut seen = 0u64;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return false };
            if let Some(data) = frame.data_ref() {
                seen += data.len() as u64;
                if seen > DISCARD_MAX {
                    return false;
                }
            }
        }
        true
    };
    tokio::time::timeout(DISCARD_TIME, drain)
        .await
        .unwrap_or(false)
}

/// The place of `name` (lower case) in [`HOP_BY_HOP_NAMES`], if it is there: one `match`
/// on the text rather than eight comparisons of header names.
fn hop_by_hop(name: &str) -> Option<usize> {
    Some(match name {
        "connection" => 0,
        "keep-alive" => 1,
        "proxy-authenticate" => 2,
        "proxy-authorization" => 3,
        "te" => 4,
        "trailer" => 5,
        "transfer-encoding" => 6,
        "upgrade" => 7,
        _ => return None,
    })
}

/// Whether a request header goes on to the upstream: not hop-by-hop (nor named by the
/// `Connection` header, whose tokens `connection` holds), not one the gateway sets (identity
/// and forwarding headers), not the API key, not `host`. Names are compared as a CGI/WSGI
/// upstream reads them, `_` as `-`: so `x_forwarded_for` is dropped too, which the
/// upstream would read as the gateway's `x-forwarded-for`.
fn forwarded(name: &str, connection: &[HeaderName]) -> bool {
    let normalized;
    let n = if name.contains('_') {
        normalized = name.replace('_', "-");
        normalized.as_str()
    } else {
        name
    };
    !(hop_by_hop(n).is_some()
        || n.starts_with("x-writ-")
        || IDENTITY_HEADERS.contains(&n)
        || FORWARDING_HEADERS.contains(&n)
        || connection.iter().any(|t| t.as_str() == n)
        || n == "x-api-key"
        || n == "host"
        || (n != name && n == "x-forwarded-for"))
}

/// Whether an `Authorization` value has the `Bearer` scheme (in any case, RFC 9110
/// section 11.1).
fn is_bearer(value: &[u8]) -> bool {
    value.len() >= 7 && value[..6].eq_ignore_ascii_case(b"bearer") && value[6] == b' '
}

/// The headers a message's `Connection` header names besides the standard hop-by-hop
/// ones (dropped in any case): hop-by-hop for this message too. A token that is no header
/// name names nothing. Allocates only when there are such names.
fn connection_named(headers: &HeaderMap) -> Vec<HeaderName> {
    let mut named = Vec::new();
    for value in headers.get_all(header::CONNECTION) {
        // What nearly every message says: no names to look for.
        let plain = value.as_bytes();
        if plain.eq_ignore_ascii_case(b"keep-alive") || plain.eq_ignore_ascii_case(b"close") {
            continue;
        }
        let Ok(value) = value.to_str() else { continue };
        for token in value.split(',').map(str::trim) {
            if token.is_empty()
                || HOP_BY_HOP_NAMES
                    .iter()
                    .any(|n| n.as_str().eq_ignore_ascii_case(token))
            {
                continue;
            }
            if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                named.push(name);
            }
        }
    }
    named
}

/// Drops an upstream answer's hop-by-hop headers, and those its `Connection` header
/// names (RFC 9110, section 7.6.1). One pass over the names finds which are there
/// (usually none, or only `connection: keep-alive`), and only those are removed; nothing
/// is allocated unless the `Connection` header names a header of its own.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Bit i: HOP_BY_HOP_NAMES[i] is there.
    let mut present = 0u8;
    for name in headers.keys() {
        if let Some(i) = hop_by_hop(name.as_str()) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return;
    }
    let named = connection_named(headers);
    for (i, name) in HOP_BY_HOP_NAMES.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(name);
        }
    }
    for name in named {
        headers.remove(name);
    }
}

/// Random bytes for trace IDs, drawn from the operating system a block at a time (trace
/// IDs need to be unique, not secret, and a system call per request would cost more than
/// the rest of the ID).
struct TraceRandom {
    block: [u8; 4096],
    used: usize,
}

thread_local! {
    static TRACE_RANDOM: std::cell::RefCell<TraceRandom> = const {
        std::cell::RefCell::new(TraceRandom { block: [0; 4096], used: 4096 })
    };
}

/// A W3C trace context for a request that came without one: `00-TRACEID-SPANID-01`.
fn new_traceparent() -> HeaderValue {
    let mut bytes = [0u8; 24];
    TRACE_RANDOM.with_borrow_mut(|r| {
        if r.used + bytes.len() > r.block.len() {
            if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut r.block)
                .is_err()
            {
                // No randomness: the IDs of this block come from the clock and a counter
                // instead, still unique within the process.
                let seed = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos());
                for (i, chunk) in r.block.chunks_mut(16).enumerate() {
                    let v = seed.wrapping_add(i as u128).to_le_bytes();
                    chunk.copy_from_slice(&v[..chunk.len()]);
                }
            }
            r.used = 0;
        }
        bytes.copy_from_slice(&r.block[r.used..r.used + 24]);
        r.used += 24;
    });
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = [0u8; 55];
    text[..3].copy_from_slice(b"00-");
    for (i, b) in bytes.iter().enumerate() {
        // The trace ID (16 bytes) then, after a dash, the span ID (8 bytes).
        let at = 3 + i * 2 + usize::from(i >= 16);
        text[at] = HEX[usize::from(b >> 4)];
        text[at + 1] = HEX[usize::from(b & 0xf)];
    }
    text[35] = b'-';
    text[52..].copy_from_slice(b"-01");
    HeaderValue::from_bytes(&text).unwrap_or_else(|_| {
        HeaderValue::from_static("00-00000000000000000000000000000001-0000000000000001-01")
    })
}

fn refusal_response(r: &Refusal) -> Response<Body> {
    let body = json!({"error": {"code": r.code, "message": r.message}}).to_string();
    let mut response = Response::new(Either::Right(Full::new(Bytes::from(body))));
    *response.status_mut() = r.status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if r.status == StatusCode::UNAUTHORIZED {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"writ\""),
        );
    }
    if let Some(wait) = r.retry_after {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
            headers.insert(header::RETRY_AFTER, v);
        }
    }
    response
}

fn origin_allowed<'a>(c: &Cors, origin: Option<&'a HeaderValue>) -> Option<&'a HeaderValue> {
    let origin = origin?;
    let text = origin.to_str().ok()?;
    c.allow_origins
        .iter()
        .any(|o| o == "*" || o == text)
        .then_some(origin)
}

fn add_cors(c: &Cors, origin: Option<&HeaderValue>, headers: &mut HeaderMap) {
    if let Some(o) = origin_allowed(c, origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o.clone());
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        if c.allow_credentials {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }
}

fn preflight(c: &Cors, origin: Option<&HeaderValue>) -> Response<Body> {
    let mut response = Response::new(Either::Right(Full::new(Bytes::new())));
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    if origin_allowed(c, origin).is_some() {
        add_cors(c, origin, headers);
        if let Ok(v) = HeaderValue::from_str(&c.allow_methods.join(", ")) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v);
        }
        if !c.allow_headers.is_empty()
            && let Ok(v) = HeaderValue::from_str(&c.allow_headers.join(", "))
        {
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
        }
        if let Ok(v) = HeaderValue::from_str(&c.max_age.to_string()) {
            headers.insert(header::ACCESS_CONTROL_MAX_AGE, v);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::{
        HOP_BY_HOP_NAMES, HeaderMap, HeaderValue, hop_by_hop, is_bearer, strip_hop_by_hop,
    };

    #[test]
    fn a_bearer_authorization_is_known_in_any_case() {
        for yes in ["Bearer a.b.c", "bearer x", "BEARER  x", "Bearer "] {
            assert!(is_bearer(yes.as_bytes()), "{yes}");
        }
        for no in [
            "Basic dXNlcg==",
            "Bearer",
            "Bearerx",
            "Bear x",
            "",
            "Token x",
        ] {
            assert!(!is_bearer(no.as_bytes()), "{no}");
        }
    }

    #[test]
    fn hop_by_hop_knows_each_name_by_its_place() {
        for (i, name) in HOP_BY_HOP_NAMES.iter().enumerate() {
            assert_eq!(hop_by_hop(name.as_str()), Some(i), "{name}");
        }
        for other in ["connections", "host", "x-keep-alive", ""] {
            assert_eq!(hop_by_hop(other), None, "{other}");
        }
    }

    #[test]
    fn an_answers_hop_by_hop_headers_are_dropped() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("content-type", "text/plain"),
            ("connection", "keep-alive, X-Private"),
            // Not header names: ignored, not a panic.
            ("connection", "x-other, not a name, ,"),
            ("keep-alive", "timeout=5"),
            ("x-private", "1"),
            ("x-other", "2"),
            ("transfer-encoding", "chunked"),
            ("x-public", "3"),
        ] {
            headers.append(name, HeaderValue::from_static(value));
        }
        strip_hop_by_hop(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        left.sort();
        assert_eq!(left, ["content-type", "x-public"]);

        // The usual `keep-alive` (any case) or `close` names nothing else.
        for connection in ["Keep-Alive", "close"] {
            let mut usual = HeaderMap::new();
            usual.insert("connection", HeaderValue::from_static(connection));
            usual.insert("x-kept", HeaderValue::from_static("1"));
            strip_hop_by_hop(&mut usual);
            let left: Vec<&str> = usual.keys().map(|k| k.as_str()).collect();
            assert_eq!(left, ["x-kept"], "{connection}");
        }

        // Without hop-by-hop headers, nothing changes.
        let mut plain = HeaderMap::new();
        plain.insert("x-private", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut plain);
        assert_eq!(plain.len(), 1);
    }
}
