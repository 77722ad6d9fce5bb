//! The request path: route, authenticate, authorize, check, limit, forward, record.
//!
//! [`Gateway::handle`] takes a request through the steps, each in a module named for it:
//! routing (`route`, after [`crate::path`] has refused a path an upstream could read as
//! another), `authenticate`, `authorize`, then the body's checks and the forward here, with
//! `headers` deciding what of the request and the answer passes; `cors` answers
//! preflights, and `refusal` is every answer the gateway gives itself.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use rustls::pki_types::CertificateDer;
use writ_audit::{Decision, Outcome};
use writ_client::secrets::SecretCache;
use writ_identity::{AudienceRule, SpiffeId, TrustDomain};

use crate::audit::{AuditBuffer, Reason, Record, UNROUTED};
use crate::config::{AuthMethod, Config, Route};
use crate::limits::{BodyBudget, Bucket, Quota, Reserved};
use crate::metrics::{Label, Metrics, NO_ROUTE};
use crate::path::check_path;
use crate::quota_lease::{SharedQuota, default_lease};
use crate::sync::{ServerClient, Shared};
use crate::upstream::{Pooled, SendError, Upstream, Upstreams};

mod authenticate;
mod authorize;
mod aws_iam;
mod cors;
mod headers;
mod lambda;
mod refusal;
mod route;
mod shared_quota;

use authenticate::{Caller, CheckedCert, JwtHit, KeyState};
use authorize::Decided;
use cors::{add_cors, preflight};
use headers::{connection_named, forwarded, is_bearer, names, new_traceparent, strip_hop_by_hop};
use refusal::{
    Refusal, awaits_continue, body_timeout, finish_refusal, overloaded, refused, too_large,
};

/// The answer's body: the upstream's, streamed, or the gateway's own.
pub type Body = Either<Pooled, Full<Bytes>>;

/// How long a request body may take to arrive.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// A route, ready to serve.
struct Live {
    /// Its counters' place in the metrics ([`Metrics::route_index`]).
    index: usize,
    /// Unique among every route the process builds, across reloads: what a connection's
    /// cached authorization decision is for.
    key: u64,
    route: Route,
    schema: Option<jsonschema::Validator>,
    bucket: Option<Mutex<Bucket>>,
    /// The audience its JWT-SVIDs must be for: its function's SPIFFE ID.
    audience: String,
    /// Which `aud` claims it accepts for that audience.
    audience_rule: AudienceRule,
    /// Whether it takes JWT-SVIDs, so that a bearer `Authorization` is its to consume.
    takes_jwt: bool,
    /// What it checks of a SigV4 signature, when it takes `aws-iam`: then a SigV4
    /// `Authorization` and its `x-amz-security-token` are its to consume.
    aws_iam: Option<crate::config::AwsIam>,
    /// `writ:fn/FUNCTION`, the resource of its audit events.
    resource: Arc<str>,
    /// Its name, as the upstream reads it in `x-writ-route`.
    name_header: Option<HeaderValue>,
    /// Where it forwards to: the HTTP(S) upstream, or a Lambda function's Invoke API
    /// endpoint.
    upstream: Upstream,
    /// For a Lambda route: what invoking its function takes.
    lambda: Option<lambda::LambdaRoute>,
    /// The upstream as logs and audit reasons name it.
    upstream_shown: String,
}

/// A request body the gateway reads: hyper's from a connection, or any other body of bytes
/// (the in-process tests send `http_body_util::Full`).
pub trait RequestBody:
    hyper::body::Body<Data = Bytes, Error: std::fmt::Display + Into<BoxError>> + Send + Unpin + 'static
{
}

impl<B> RequestBody for B
where
    B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: std::fmt::Display + Into<BoxError>,
{
}

/// The error type bodies' errors convert into.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

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

/// The routes, API keys and upstreams of one configuration.
struct Table {
    /// The configuration they were built from.
    config: Arc<Config>,
    routes: Vec<Live>,
    keys: Mutex<HashMap<String, KeyState>>,
    /// Every upstream address, with its idle connections.
    upstreams: Upstreams,
}

/// The source of [`Live::key`].
static NEXT_ROUTE_KEY: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// The gateway.
pub struct Gateway {
    config: Arc<Config>,
    trust_domain: TrustDomain,
    /// The routes, API keys and upstreams in force: swapped whole by [`Gateway::reload`];
    /// a request keeps the table it started with.
    table: RwLock<Arc<Table>>,
    /// What Lambda routes sign with, for the tables reloads build.
    aws: Option<Arc<crate::aws_credentials::AwsCredentials>>,
    shared: Arc<Shared>,
    secrets: SecretCache<ServerClient>,
    audit: Arc<AuditBuffer>,
    metrics: Arc<Metrics>,
    jwt_cache: Mutex<HashMap<[u8; 32], JwtHit>>,
    /// Signing keys of the writ credentials that signed `aws-iam` requests, by scope.
    aws_keys: Mutex<HashMap<[u8; 32], aws_iam::KeyHit>>,
    /// The server's API, asked for those signing keys.
    server: ServerClient,
    /// [`UNROUTED`], shared by the events of requests no route took.
    unrouted: Arc<str>,
    /// The bytes of request bodies it may hold before their requests are authenticated.
    body_budget: Arc<BodyBudget>,
}

/// The time in Unix seconds, negative before 1970; without the calendar arithmetic of
/// going through a date (it is read twice per request).
fn now_unix() -> i64 {
    match SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// What a reload put in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReloadSummary {
    /// How many routes.
    pub routes: usize,
    /// How many API keys.
    pub api_keys: usize,
}

impl Table {
    /// The routes, keys and upstreams of `config`; keys of `previous` whose plan is
    /// unchanged keep their state.
    fn build(
        config: Arc<Config>,
        trust_domain: &TrustDomain,
        aws: Option<&Arc<crate::aws_credentials::AwsCredentials>>,
        metrics: &Metrics,
        previous: Option<&Table>,
    ) -> Result<Table, String> {
        let now = Instant::now();
        let mut upstreams = Upstreams::new(config.worker_count());
        let mut routes = Vec::new();
        for r in &config.routes {
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
            let audience = SpiffeId::for_function(trust_domain, &r.function)
                .map_err(|e| e.to_string())?
                .to_string();
            let (url, lambda_route) = match (&r.upstream, &r.lambda) {
                (Some(url), _) => (url.clone(), None),
                (None, Some(l)) => {
                    let l = l.get_ref();
                    let creds = aws
                        .ok_or_else(|| format!("route {:?}: lambda: no AWS credentials", r.name))?;
                    let live =
                        lambda::LambdaRoute::new(l, creds.clone(), |k| std::env::var(k).ok())
                            .map_err(|e| format!("route {:?}: lambda: {e}", r.name))?;
                    (live.endpoint.clone(), Some(live))
                }
                (None, None) => return Err(format!("route {:?}: no upstream", r.name)),
            };
            let index = metrics.route_index(&r.name).ok_or_else(|| {
                format!(
                    "route {:?}: more new route names than a reload can count ({}); restart the gateway",
                    r.name,
                    crate::metrics::SPARE_ROUTES
                )
            })?;
            routes.push(Live {
                index,
                key: NEXT_ROUTE_KEY.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
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
                aws_iam: r
                    .auth
                    .contains(&AuthMethod::AwsIam)
                    .then(|| r.aws_iam.clone().unwrap_or_default()),
                resource: format!("writ:fn/{}", r.function).into(),
                name_header: HeaderValue::from_str(&r.name).ok(),
                upstream: upstreams
                    .upstream(&url, r.upstream_ca.as_deref(), r.timeout)
                    .map_err(|e| format!("route {:?}: upstream {url:?}: {e}", r.name))?,
                upstream_shown: match &lambda_route {
                    Some(l) => l.shown.clone(),
                    None => url.clone(),
                },
                lambda: lambda_route,
            });
        }
        let keys: HashMap<String, KeyState> = config
            .api_keys
            .iter()
            .map(|k| {
                let plan = &config.usage_plans[&k.plan];
                // A key whose plan is unchanged keeps what it has used.
                if let Some(kept) = previous.and_then(|p| p.take(&k.id, plan)) {
                    return (
                        k.id.clone(),
                        KeyState {
                            hash: k.hash.clone(),
                            routes: k.routes.clone(),
                            ..kept
                        },
                    );
                }
                (
                    k.id.clone(),
                    KeyState {
                        plan: plan.clone(),
                        hash: k.hash.clone(),
                        routes: k.routes.clone(),
                        bucket: plan.rate.map(|l| Bucket::new(l, now)),
                        quota: plan
                            .quota
                            .filter(|_| !plan.shared)
                            .map(|q| Quota::new(q, plan.quota_period, now)),
                        shared: plan.quota.filter(|_| plan.shared).map(|q| {
                            Arc::new(shared_quota::SharedKey {
                                id: Arc::from(k.id.as_str()),
                                quota: Arc::new(Mutex::new(SharedQuota::new(
                                    q,
                                    plan.quota_period.as_secs(),
                                    plan.lease.unwrap_or_else(|| default_lease(q)),
                                ))),
                                answered: Arc::new(tokio::sync::Notify::new()),
                            })
                        }),
                    },
                )
            })
            .collect();
        Ok(Table {
            config,
            routes,
            keys: Mutex::new(keys),
            upstreams,
        })
    }

    /// The state of API key `id` if its plan was `plan`, taken out of this table.
    fn take(&self, id: &str, plan: &crate::config::UsagePlan) -> Option<KeyState> {
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        if keys.get(id).is_some_and(|k| &k.plan == plan) {
            keys.remove(id)
        } else {
            None
        }
    }
}

impl Gateway {
    /// Builds the gateway from its checked configuration, with upstream connections kept
    /// per worker of [`Config::worker_count`]; bodies it reads before authentication are
    /// held within `body_budget`; Lambda routes sign with `aws`; `server` is asked for the
    /// signing keys of writ credentials on `aws-iam` routes.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: Arc<Config>,
        aws: Option<Arc<crate::aws_credentials::AwsCredentials>>,
        server: ServerClient,
        shared: Arc<Shared>,
        secrets: SecretCache<ServerClient>,
        audit: Arc<AuditBuffer>,
        metrics: Arc<Metrics>,
        body_budget: Arc<BodyBudget>,
    ) -> Result<Gateway, String> {
        let trust_domain = TrustDomain::new(&config.trust_domain).map_err(|e| e.to_string())?;
        let table = Table::build(config.clone(), &trust_domain, aws.as_ref(), &metrics, None)?;
        Ok(Gateway {
            config,
            trust_domain,
            table: RwLock::new(Arc::new(table)),
            aws,
            shared,
            secrets,
            audit,
            metrics,
            jwt_cache: Mutex::new(HashMap::new()),
            aws_keys: Mutex::new(HashMap::new()),
            server,
            unrouted: Arc::from(UNROUTED),
            body_budget,
        })
    }

    /// The routes, API keys and upstreams in force now.
    fn table(&self) -> Arc<Table> {
        self.table
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Puts `config`'s routes, usage plans and API keys in force, for the requests that
    /// start from now on (those under way finish on the routes they started with). The
    /// configuration is checked whole first: on any error nothing changes. Only those
    /// three reload: a change to any other setting (addresses, TLS, the server link,
    /// limits) is refused, naming it, since it needs a restart. API keys whose usage plan
    /// is unchanged keep what they have used.
    pub fn reload(&self, config: Config) -> Result<ReloadSummary, String> {
        let current = self.table();
        if let Some(setting) = crate::config::fixed_setting_changed(&current.config, &config)? {
            return Err(format!(
                "{setting} changed: it takes effect only when the gateway restarts; nothing was reloaded"
            ));
        }
        let config = Arc::new(config);
        let table = Table::build(
            config.clone(),
            &self.trust_domain,
            self.aws.as_ref(),
            &self.metrics,
            Some(&current),
        )?;
        let summary = ReloadSummary {
            routes: table.routes.len(),
            api_keys: config.api_keys.len(),
        };
        *self.table.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(table);
        Ok(summary)
    }

    /// Closes `worker`'s idle upstream connections that their upstream closed or that
    /// went unused too long; run on `worker`'s thread, every second.
    pub fn sweep_idle_upstreams(&self, worker: usize) {
        self.table().upstreams.sweep(worker);
    }

    /// Serves one request.
    pub async fn handle<B: RequestBody>(
        &self,
        req: Request<B>,
        conn: &Connection,
    ) -> Response<Body> {
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
        let table = self.table();
        let Some(live) = table.route_for(host, path) else {
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
    async fn refuse_unrouted<B: RequestBody>(
        &self,
        r: &Refusal,
        req: Request<B>,
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
    async fn pass<B: RequestBody>(
        &self,
        live: &Live,
        parts: hyper::http::request::Parts,
        body: &mut Option<B>,
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
        // A webhook's signature covers the body, and so does a SigV4 signature's payload
        // hash, so such a body is read (bounded, and within the budget for unauthenticated
        // bodies) before authentication; every other body only once the caller is
        // authenticated and authorized.
        let mut read = None;
        let mut unauthenticated = None;
        if (route.auth.contains(&AuthMethod::Webhook)
            || (live.aws_iam.is_some() && aws_iam::is_signed(&parts)))
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
            .authenticate(live, &parts, read.as_ref(), conn, &control)
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
            // The schema sees serde_json's reading, which keeps the last of a key given
            // twice; an upstream that keeps the first would act on a value never validated.
            if let Ok(text) = std::str::from_utf8(&body)
                && let Err(e) = writ_audit::json::no_duplicate_keys(text)
            {
                return Err((
                    Refusal::new(
                        StatusCode::BAD_REQUEST,
                        "invalidRequest",
                        Label::Invalid,
                        format!("body: {e}"),
                    ),
                    actor,
                ));
            }
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

    async fn forward(
        &self,
        live: &Live,
        parts: hyper::http::request::Parts,
        body: Bytes,
        caller: &Caller,
        conn: &Connection,
    ) -> Result<Response<Body>, Refusal> {
        if let Some(lambda) = &live.lambda {
            return self
                .invoke_lambda(live, lambda, parts, body, caller, conn)
                .await;
        }
        let uri = live.upstream.target(&parts.uri).map_err(|e| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                "invalidRequest",
                Label::BadRequest,
                format!("path: {e}"),
            )
        })?;
        let headers = outgoing_headers(
            live,
            parts.headers,
            caller,
            conn,
            Some(live.upstream.host.clone()),
        );
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
                        tracing::warn!(route = %live.route.name, upstream = %live.upstream_shown, "{e}");
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
                .with_reason(format!("upstream {}: {e}", live.upstream_shown)))
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

/// The caller's headers as they go on to the upstream: without those that may not pass
/// (hop-by-hop, the credentials the gateway consumes, what the caller could forge), with
/// the gateway's own (`x-writ-caller`, `x-writ-authenticated-by`, `x-writ-route`,
/// `x-forwarded-for`, `-proto`, `traceparent`), and `host` set to `host` when given.
fn outgoing_headers(
    live: &Live,
    mut headers: hyper::HeaderMap,
    caller: &Caller,
    conn: &Connection,
    host: Option<HeaderValue>,
) -> hyper::HeaderMap {
    // The caller's headers are forwarded in place: those that may not pass are
    // found first and removed (a request rarely has any), then the gateway's set.
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
    // Likewise a SigV4 signature and the session token of the writ credentials behind it,
    // on a route that takes them.
    if live.aws_iam.is_some()
        && headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .any(|v| aws_iam::is_sigv4_authorization(v.as_bytes()))
    {
        headers.remove(header::AUTHORIZATION);
        headers.remove(names::X_AMZ_SECURITY_TOKEN);
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
    if let Some(host) = host {
        headers.insert(header::HOST, host);
    }
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
    headers
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
    async fn read_unauthenticated<B: RequestBody>(
        &self,
        mut body: B,
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

/// Reads a body up to `max` bytes. On failure the body is left partly read, so the
/// refusal ends the connection.
async fn read_body<B: RequestBody>(body: B, max: usize) -> Result<Bytes, Refusal> {
    read_limited(body, max)
        .await
        .map_err(|r| Refusal { close: true, ..r })
}

async fn read_limited<B: RequestBody>(body: B, max: usize) -> Result<Bytes, Refusal> {
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
