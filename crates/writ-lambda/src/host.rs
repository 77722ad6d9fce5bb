//! The shell: the Invoke API on the host's address, one Runtime API listener per execution
//! environment, the runtime processes, the asynchronous queue and the audit file.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path as UrlPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Mutex, Semaphore, mpsc, oneshot, watch};

use crate::auth::{Authenticated, Authorizer, INVOKE_ACTION};
use crate::definition::{FunctionDef, Runtimes, function_arn, runtime_command};
use crate::environment::{EnvState, Finish};
use crate::invoke::{
    ApiError, EXECUTED_VERSION, InvocationType, MAX_ASYNC_PAYLOAD, MAX_SYNC_PAYLOAD, Outcome,
    RetrySchedule, exit_payload, failure_record, parse_invoke_path, timeout_payload,
};

/// How long a runtime may take to start and ask for its first invocation (Lambda's init
/// phase limit).
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long extensions have after SHUTDOWN before they are killed (Lambda: 2 s with
/// external extensions).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// How long the runtime's first `next` waits for the configured extensions to register.
pub const REGISTRATION_WINDOW: Duration = Duration::from_secs(2);

/// Everything the host needs to run.
#[derive(Debug)]
pub struct HostSettings {
    /// The region in ARNs and the runtimes' `AWS_REGION`.
    pub region: String,
    /// The account id in ARNs.
    pub account: String,
    /// The functions.
    pub functions: Vec<FunctionDef>,
    /// How to start each runtime family.
    pub runtimes: Runtimes,
    /// Where failed asynchronous invocations are written.
    pub failure_dir: PathBuf,
    /// When asynchronous invocations are retried.
    pub retry: RetrySchedule,
    /// The JSON-lines file every decision is appended to.
    pub audit_log: PathBuf,
    /// Callers and policies.
    pub authorizer: Authorizer,
}

struct Host {
    region: String,
    account: String,
    functions: HashMap<String, Arc<Function>>,
    runtimes: Runtimes,
    failure_dir: PathBuf,
    retry: RetrySchedule,
    audit: StdMutex<std::fs::File>,
    authorizer: Authorizer,
}

struct Function {
    def: FunctionDef,
    arn: String,
    permits: Arc<Semaphore>,
    idle: StdMutex<Vec<Arc<Env>>>,
}

/// Serves the Invoke API on `listener` until `shutdown` completes; runtime processes are
/// killed when the host stops.
pub async fn serve(
    listener: tokio::net::TcpListener,
    settings: HostSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Some(parent) = settings.audit_log.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let audit = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&settings.audit_log)?;
    let functions = settings
        .functions
        .into_iter()
        .map(|def| {
            let arn = function_arn(&settings.region, &settings.account, &def.name);
            let f = Function {
                permits: Arc::new(Semaphore::new(def.max_environments)),
                idle: StdMutex::new(Vec::new()),
                arn,
                def,
            };
            (f.def.name.clone(), Arc::new(f))
        })
        .collect();
    let host = Arc::new(Host {
        region: settings.region,
        account: settings.account,
        functions,
        runtimes: settings.runtimes,
        failure_dir: settings.failure_dir,
        retry: settings.retry,
        audit: StdMutex::new(audit),
        authorizer: settings.authorizer,
    });
    let app = Router::new().fallback(invoke_api).with_state(host.clone());
    let result = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    for f in host.functions.values() {
        let envs: Vec<Arc<Env>> = f
            .idle
            .lock()
            .map(|mut v| v.drain(..).collect())
            .unwrap_or_default();
        for env in envs {
            env.kill("spindown");
            for mut done in env.extensions_done.iter().cloned() {
                let _ = tokio::time::timeout(SHUTDOWN_GRACE, done.wait_for(|d| *d)).await;
            }
            let mut exited = env.exited.clone();
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, exited.wait_for(Option::is_some)).await;
        }
    }
    result
}

/// A unique id in the shape of Lambda's request ids (a version-4 UUID). Unique, not secret:
/// the time, the process id and a counter, mixed (splitmix64) so the ids look like Lambda's.
fn request_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let hi = mix(nanos ^ u64::from(std::process::id()).rotate_left(32));
    let lo = mix(hi ^ n);
    let h = format!("{hi:016x}{lo:016x}");
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

fn error_response(e: &ApiError, request_id: &str) -> Response {
    let mut response = (
        StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        axum::Json(e.body()),
    )
        .into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(e.kind) {
        h.insert("x-amzn-errortype", v);
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    response
}

impl Host {
    fn audit(&self, record: serde_json::Value) {
        let line = format!("{record}\n");
        match self.audit.lock() {
            Ok(mut file) => {
                if let Err(e) = file.write_all(line.as_bytes()) {
                    tracing::error!(error = %e, "cannot append to the audit log");
                }
            }
            Err(_) => tracing::error!("the audit log lock is poisoned"),
        }
    }
}

fn now_text() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

async fn invoke_api(
    State(host): State<Arc<Host>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let id = request_id();
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let target = match (
        parts.method.as_str(),
        parse_invoke_path(&path, Some(&query)),
    ) {
        ("POST", Some(t)) => t,
        _ => {
            let e = ApiError {
                status: 404,
                kind: "UnknownOperationException",
                message: format!(
                    "{} {path}: this host serves only the Invoke API, POST \
                     /2015-03-31/functions/NAME/invocations",
                    parts.method
                ),
                reason: None,
            };
            return error_response(&e, &id);
        }
    };
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let kind = match InvocationType::parse(header("x-amz-invocation-type")) {
        Ok(k) => k,
        Err(e) => return error_response(&e, &id),
    };
    let limit = if kind == InvocationType::Event {
        MAX_ASYNC_PAYLOAD
    } else {
        MAX_SYNC_PAYLOAD
    };
    let payload = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => return error_response(&ApiError::too_large(limit), &id),
    };
    let headers: Vec<(&str, &str)> = parts
        .headers
        .iter()
        .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?)))
        .collect();
    let arn = function_arn(&host.region, &host.account, &target.name);
    let source_ip = peer.ip().to_string();
    let signable = crate::auth::signable(parts.method.as_str(), &path, &query, &headers, &payload);
    let caller = match host
        .authorizer
        .authenticate(&signable, time::OffsetDateTime::now_utc())
    {
        Ok(c) => c,
        Err(e) => {
            host.audit(json!({
                "time": now_text(), "requestId": id, "principal": null,
                "action": INVOKE_ACTION, "resource": arn, "outcome": "unauthenticated",
                "decision": {"error": e.kind, "message": e.message}, "sourceIp": source_ip,
            }));
            tracing::info!(function = %target.name, error = e.kind, "invocation refused: not authenticated");
            return error_response(&e, &id);
        }
    };
    let decision = host
        .authorizer
        .decide(&caller, &target.name, &arn, &source_ip);
    host.audit(json!({
        "time": now_text(), "requestId": id, "principal": caller.principal,
        "accessKeyId": caller.access_key_id, "action": INVOKE_ACTION, "resource": arn,
        "outcome": decision.outcome.as_str(), "decision": decision, "sourceIp": source_ip,
        "invocationType": format!("{kind:?}"),
    }));
    if !decision.is_allowed() {
        let why = match decision.outcome {
            writ_policy::Outcome::ExplicitDeny => "an explicit deny in a policy",
            _ => "no identity-based or resource-based policy allows it",
        };
        let e = ApiError::access_denied(format!(
            "User: {} is not authorized to perform: {INVOKE_ACTION} on resource: {arn} because \
             of {why} (decided by writ)",
            caller.principal
        ));
        tracing::info!(function = %target.name, principal = %caller.principal, "invocation denied");
        return error_response(&e, &id);
    }
    let function = match host.functions.get(&target.name) {
        Some(f)
            if target
                .qualifier
                .as_deref()
                .is_none_or(|q| q == EXECUTED_VERSION) =>
        {
            f.clone()
        }
        _ => {
            let shown = match &target.qualifier {
                Some(q) => format!("{arn}:{q}"),
                None => arn.clone(),
            };
            return error_response(&ApiError::not_found(&shown), &id);
        }
    };
    let meta = Meta {
        client_context: header("x-amz-client-context").and_then(decode_client_context),
        trace_id: header("x-amzn-trace-id").map(str::to_string),
    };
    match kind {
        InvocationType::DryRun => {
            let mut r = StatusCode::NO_CONTENT.into_response();
            set_common(r.headers_mut(), &id);
            r
        }
        InvocationType::Event => {
            let host2 = host.clone();
            let id2 = id.clone();
            tokio::spawn(
                async move { run_event(host2, function, id2, payload, meta, caller).await },
            );
            let mut r = StatusCode::ACCEPTED.into_response();
            set_common(r.headers_mut(), &id);
            r
        }
        InvocationType::RequestResponse => {
            let Ok(permit) = function.permits.clone().try_acquire_owned() else {
                return error_response(&ApiError::too_many_requests(), &id);
            };
            let outcome = invoke(&host, &function, &id, payload, &meta).await;
            drop(permit);
            let (body, error) = match outcome {
                Outcome::Response(b) => (b, false),
                Outcome::FunctionError(b) => (b, true),
            };
            let mut r = (StatusCode::OK, body).into_response();
            let h = r.headers_mut();
            set_common(h, &id);
            h.insert("content-type", HeaderValue::from_static("application/json"));
            if error {
                h.insert(
                    "x-amz-function-error",
                    HeaderValue::from_static("Unhandled"),
                );
            }
            r
        }
    }
}

fn set_common(h: &mut HeaderMap, id: &str) {
    if let Ok(v) = HeaderValue::from_str(id) {
        h.insert("x-amzn-requestid", v);
    }
    h.insert(
        "x-amz-executed-version",
        HeaderValue::from_static(EXECUTED_VERSION),
    );
}

/// `X-Amz-Client-Context` is base64 JSON; the runtime gets the JSON.
fn decode_client_context(b64: &str) -> Option<String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    String::from_utf8(bytes).ok()
}

/// What an invocation carries besides its payload.
#[derive(Clone, Default)]
struct Meta {
    client_context: Option<String>,
    trace_id: Option<String>,
}

/// Runs an asynchronous invocation: up to the schedule's attempts, then the failure
/// directory.
async fn run_event(
    host: Arc<Host>,
    function: Arc<Function>,
    id: String,
    payload: Bytes,
    meta: Meta,
    caller: Authenticated,
) {
    let mut last = None;
    let mut attempts = 0;
    for attempt in 0..host.retry.attempts() {
        if let Some(d) = host.retry.delay_before(attempt) {
            tokio::time::sleep(d).await;
        }
        let Ok(permit) = function.permits.clone().acquire_owned().await else {
            return;
        };
        attempts += 1;
        let outcome = invoke(&host, &function, &id, payload.clone(), &meta).await;
        drop(permit);
        if !outcome.is_error() {
            return;
        }
        tracing::info!(function = %function.def.name, request_id = %id, attempt = attempts, "asynchronous invocation failed");
        last = Some(outcome);
    }
    let Some(last) = last else { return };
    let record = failure_record(
        &id,
        &function.arn,
        attempts,
        &payload,
        &last,
        time::OffsetDateTime::now_utc(),
    );
    let mut record = record;
    record["requestContext"]["principal"] = json!(caller.principal);
    let file = host
        .failure_dir
        .join(format!("{}-{id}.json", function.def.name));
    let written = std::fs::create_dir_all(&host.failure_dir)
        .and_then(|()| std::fs::write(&file, format!("{record:#}\n")));
    match written {
        Ok(()) => {
            tracing::warn!(function = %function.def.name, request_id = %id, file = %file.display(), "asynchronous invocation failed after every retry; written to the failure directory")
        }
        Err(e) => {
            tracing::error!(function = %function.def.name, request_id = %id, error = %e, "cannot write the failed invocation to the failure directory")
        }
    }
}

/// Runs one invocation in an idle environment, or a new one. The caller holds a permit.
async fn invoke(
    host: &Host,
    function: &Arc<Function>,
    id: &str,
    payload: Bytes,
    meta: &Meta,
) -> Outcome {
    // An idle environment whose runtime has exited since is dropped, not used.
    let idle = function.idle.lock().ok().and_then(|mut v| {
        v.retain(|e| e.exited.borrow().is_none());
        v.pop()
    });
    let env = match idle {
        Some(env) => env,
        None => match Env::start(host, function) {
            Ok(env) => env,
            Err(message) => {
                tracing::error!(function = %function.def.name, "{message}");
                return Outcome::FunctionError(
                    json!({"errorType": "Runtime.InvalidEntrypoint", "errorMessage": message})
                        .to_string()
                        .into_bytes(),
                );
            }
        },
    };
    let (picked_tx, picked_rx) = oneshot::channel();
    let (done_tx, done_rx) = oneshot::channel();
    let pending = Pending {
        request_id: id.to_string(),
        payload,
        meta: meta.clone(),
        deadline_ms: 0,
        picked: Some(picked_tx),
        done: done_tx,
    };
    if env.tx.send(pending).await.is_err() {
        env.kill("failure");
        return Outcome::FunctionError(exit_payload(id, "the environment is gone"));
    }
    let mut exited = env.exited.clone();
    let timeout = Duration::from_secs(function.def.timeout_seconds);
    // The init phase (a cold start) has its own limit, as in Lambda.
    let picked = tokio::select! {
        p = tokio::time::timeout(INIT_TIMEOUT, picked_rx) => p,
        status = wait_exit(&mut exited) => {
            return env_gone(&env, id, &status);
        }
    };
    match picked {
        Ok(Ok(())) => {}
        Ok(Err(_)) => {
            // The environment dropped the invocation: an init error.
            let error = env.shared.init_error.lock().ok().and_then(|mut e| e.take());
            env.kill("failure");
            return Outcome::FunctionError(
                error.unwrap_or_else(|| exit_payload(id, "init failed")),
            );
        }
        Err(_) => {
            env.kill("timeout");
            return Outcome::FunctionError(
                json!({"errorType": "Runtime.Unknown", "errorMessage": format!("RequestId: {id} Error: the runtime did not ask for an invocation within {}s of starting", INIT_TIMEOUT.as_secs())})
                    .to_string()
                    .into_bytes(),
            );
        }
    }
    let outcome = tokio::select! {
        r = tokio::time::timeout(timeout, done_rx) => r,
        status = wait_exit(&mut exited) => {
            return env_gone(&env, id, &status);
        }
    };
    match outcome {
        Ok(Ok(outcome)) => {
            if let Ok(mut idle) = function.idle.lock() {
                idle.push(env);
            }
            outcome
        }
        Ok(Err(_)) => env_gone(&env, id, "the environment dropped the invocation"),
        Err(_) => {
            if let Ok(mut s) = env.shared.state.lock() {
                let _ = s.finish(id, Finish::TimedOut);
            }
            tracing::warn!(function = %function.def.name, request_id = %id, timeout_seconds = function.def.timeout_seconds, "invocation timed out; the execution environment is killed");
            env.kill("timeout");
            Outcome::FunctionError(timeout_payload(
                id,
                function.def.timeout_seconds,
                time::OffsetDateTime::now_utc(),
            ))
        }
    }
}

fn env_gone(env: &Env, id: &str, status: &str) -> Outcome {
    if let Ok(mut s) = env.shared.state.lock() {
        let _ = s.finish(id, Finish::Exited);
    }
    env.kill("failure");
    // A runtime that reported an init error and exited: the init error says more.
    let init = env.shared.init_error.lock().ok().and_then(|mut e| e.take());
    Outcome::FunctionError(init.unwrap_or_else(|| exit_payload(id, status)))
}

async fn wait_exit(rx: &mut watch::Receiver<Option<String>>) -> String {
    loop {
        if let Some(s) = rx.borrow().clone() {
            return s;
        }
        if rx.changed().await.is_err() {
            return "the runtime process is gone".into();
        }
    }
}

/// An invocation on its way to, or in, an environment.
struct Pending {
    request_id: String,
    payload: Bytes,
    meta: Meta,
    deadline_ms: u64,
    picked: Option<oneshot::Sender<()>>,
    done: oneshot::Sender<Outcome>,
}

/// A registered external extension.
struct Extension {
    id: String,
    name: String,
    invoke: bool,
    shutdown: bool,
    tx: mpsc::UnboundedSender<serde_json::Value>,
    rx: Arc<Mutex<mpsc::UnboundedReceiver<serde_json::Value>>>,
    /// It has asked for its first event: its init is done.
    ready: bool,
}

/// What the Runtime and Extensions API handlers of one environment share.
struct EnvShared {
    function: String,
    arn: String,
    handler: String,
    timeout: Duration,
    rx: Mutex<mpsc::Receiver<Pending>>,
    state: StdMutex<EnvState>,
    current: StdMutex<Option<Pending>>,
    init_error: StdMutex<Option<Vec<u8>>>,
    /// The extensions configured (started) for this environment.
    expected_extensions: usize,
    extensions: StdMutex<Vec<Extension>>,
    /// Bumped when an extension registers or becomes ready.
    extension_change: watch::Sender<u64>,
    started: tokio::time::Instant,
}

impl EnvShared {
    /// Sends an event to every extension subscribed to its type.
    fn broadcast(&self, event: &serde_json::Value) {
        let kind = event["eventType"].as_str().unwrap_or_default();
        if let Ok(exts) = self.extensions.lock() {
            for e in exts.iter() {
                if (kind == "INVOKE" && e.invoke) || (kind == "SHUTDOWN" && e.shutdown) {
                    let _ = e.tx.send(event.clone());
                }
            }
        }
    }

    /// Waits until the configured extensions have registered (or the registration window
    /// closed) and every registered one has asked for its first event, as Lambda's init
    /// phase does before the first invocation.
    async fn extensions_initialized(&self) {
        if self.expected_extensions == 0 {
            return;
        }
        let mut changes = self.extension_change.subscribe();
        loop {
            let (registered, ready) = self
                .extensions
                .lock()
                .map(|e| (e.len(), e.iter().filter(|x| x.ready).count()))
                .unwrap_or((0, 0));
            let window_over = self.started.elapsed() >= REGISTRATION_WINDOW;
            if (registered >= self.expected_extensions || window_over) && ready >= registered {
                return;
            }
            let until = self.started + REGISTRATION_WINDOW;
            tokio::select! {
                r = changes.changed() => if r.is_err() { return },
                _ = tokio::time::sleep_until(until), if !window_over => {}
            }
        }
    }
}

/// One execution environment: a runtime process, its extensions and their API listener.
struct Env {
    tx: mpsc::Sender<Pending>,
    shared: Arc<EnvShared>,
    exited: watch::Receiver<Option<String>>,
    kill: StdMutex<Option<oneshot::Sender<()>>>,
    extensions_stop: watch::Sender<bool>,
    extensions_done: Vec<watch::Receiver<bool>>,
    server: tokio::task::JoinHandle<()>,
}

type Stream = Box<dyn tokio::io::AsyncRead + Send + Unpin>;

/// Sends each line a process writes to the host's log, with the function's name.
fn log_lines(child: &mut tokio::process::Child, function: &str, process: &str) {
    let streams: [(Option<Stream>, &'static str); 2] = [
        (child.stdout.take().map(|s| Box::new(s) as Stream), "stdout"),
        (child.stderr.take().map(|s| Box::new(s) as Stream), "stderr"),
    ];
    for (stream, name) in streams {
        let Some(stream) = stream else { continue };
        let function = function.to_string();
        let process = process.to_string();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::info!(target: "writ_lambda::runtime", function = %function, process = %process, stream = name, "{line}");
            }
        });
    }
}

impl Env {
    /// Ends the environment: SHUTDOWN to the extensions (which get [`SHUTDOWN_GRACE`] to
    /// leave), the runtime killed at once.
    fn kill(&self, reason: &str) {
        if let Some(k) = self.kill.lock().ok().and_then(|mut k| k.take()) {
            let deadline = SystemTime::now() + SHUTDOWN_GRACE;
            self.shared.broadcast(&json!({
                "eventType": "SHUTDOWN",
                "shutdownReason": reason,
                "deadlineMs": deadline.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
            }));
            let _ = self.extensions_stop.send(true);
            let _ = k.send(());
            if self.extensions_done.is_empty() {
                // The runtime's API goes once the runtime is gone: a runtime whose pending
                // `next` connection closed first would report that as its own error.
                let abort = self.server.abort_handle();
                let mut exited = self.exited.clone();
                match tokio::runtime::Handle::try_current() {
                    Ok(handle) => {
                        handle.spawn(async move {
                            let _ = tokio::time::timeout(
                                SHUTDOWN_GRACE,
                                exited.wait_for(Option::is_some),
                            )
                            .await;
                            abort.abort();
                        });
                    }
                    Err(_) => abort.abort(),
                }
            } else {
                // The extensions still talk to the API while they shut down.
                let abort = self.server.abort_handle();
                let mut done: Vec<_> = self.extensions_done.clone();
                tokio::spawn(async move {
                    for d in done.iter_mut() {
                        let _ = tokio::time::timeout(
                            SHUTDOWN_GRACE + Duration::from_millis(500),
                            d.wait_for(|x| *x),
                        )
                        .await;
                    }
                    abort.abort();
                });
            }
        }
    }

    fn start(host: &Host, function: &Function) -> Result<Arc<Env>, String> {
        let def = &function.def;
        let argv = runtime_command(def, &host.runtimes).ok_or_else(|| {
            format!(
                "function {}: the host knows no way to run runtime {:?}; set functions.{}.command in the config",
                def.name, def.runtime, def.name
            )
        })?;
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| format!("function {}: cannot bind a Runtime API port: {e}", def.name))?;
        std_listener
            .set_nonblocking(true)
            .map_err(|e| format!("function {}: {e}", def.name))?;
        let listener = tokio::net::TcpListener::from_std(std_listener)
            .map_err(|e| format!("function {}: {e}", def.name))?;
        let api = listener
            .local_addr()
            .map_err(|e| format!("function {}: {e}", def.name))?;
        let (tx, rx) = mpsc::channel(1);
        let shared = Arc::new(EnvShared {
            function: def.name.clone(),
            arn: function.arn.clone(),
            handler: def.handler.clone(),
            timeout: Duration::from_secs(def.timeout_seconds),
            rx: Mutex::new(rx),
            state: StdMutex::new(EnvState::Initializing),
            current: StdMutex::new(None),
            init_error: StdMutex::new(None),
            expected_extensions: def.extensions.len(),
            extensions: StdMutex::new(Vec::new()),
            extension_change: watch::channel(0).0,
            started: tokio::time::Instant::now(),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(respond),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(fail))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .route("/2020-01-01/extension/register", post(register))
            .route("/2020-01-01/extension/event/next", get(extension_next))
            .route("/2020-01-01/extension/init/error", post(extension_error))
            .route("/2020-01-01/extension/exit/error", post(extension_error))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });

        let stream = format!(
            "{}/[$LATEST]{}",
            time::OffsetDateTime::now_utc().date(),
            &request_id().replace('-', "")[..32]
        );
        let mut vars: Vec<(String, String)> = Vec::new();
        for key in ["PATH", "LANG", "HOME", "SYSTEMROOT"] {
            if let Ok(v) = std::env::var(key) {
                vars.push((key.into(), v));
            }
        }
        let code_dir = def.code_dir.display().to_string();
        for (k, v) in [
            ("AWS_LAMBDA_RUNTIME_API", api.to_string()),
            ("_HANDLER", def.handler.clone()),
            ("AWS_LAMBDA_FUNCTION_NAME", def.name.clone()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", def.memory_mb.to_string()),
            ("AWS_LAMBDA_FUNCTION_VERSION", EXECUTED_VERSION.into()),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", def.name),
            ),
            ("AWS_LAMBDA_LOG_STREAM_NAME", stream),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
            ("AWS_REGION", host.region.clone()),
            ("AWS_DEFAULT_REGION", host.region.clone()),
            ("AWS_EXECUTION_ENV", format!("AWS_Lambda_{}", def.runtime)),
            ("LAMBDA_TASK_ROOT", code_dir.clone()),
            ("LAMBDA_RUNTIME_DIR", code_dir),
            ("TZ", ":UTC".into()),
        ] {
            vars.push((k.into(), v));
        }
        if def.pass_aws_credentials {
            for key in [
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN",
            ] {
                if let Ok(v) = std::env::var(key) {
                    vars.push((key.into(), v));
                }
            }
        }
        vars.extend(def.environment.iter().map(|(k, v)| (k.clone(), v.clone())));
        let spawn = |argv: &[String]| {
            // A relative program path with a directory (`rust/bootstrap`) is relative to the
            // host's working directory, not to the code directory the process starts in.
            let program = Path::new(&argv[0]);
            let program = match std::env::current_dir() {
                Ok(cwd) if program.is_relative() && program.components().count() > 1 => {
                    cwd.join(program)
                }
                _ => program.to_path_buf(),
            };
            let mut command = tokio::process::Command::new(&program);
            command
                .args(&argv[1..])
                .current_dir(&def.code_dir)
                .env_clear()
                .envs(vars.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                // A group of its own: a Ctrl-C at the host's terminal stops the host, which
                // ends its environments as Lambda would, rather than reaching the runtimes.
                .process_group(0);
            command.spawn().map_err(|e| {
                format!(
                    "function {}: cannot start {:?} in {}: {e}",
                    def.name,
                    argv[0],
                    def.code_dir.display()
                )
            })
        };

        // Extensions first, as Lambda starts them before the runtime.
        let (extensions_stop, _) = watch::channel(false);
        let mut extensions_done = Vec::new();
        for ext in &def.extensions {
            let mut child = match spawn(ext) {
                Ok(c) => c,
                Err(e) => {
                    let _ = extensions_stop.send(true);
                    server.abort();
                    return Err(e);
                }
            };
            let label = Path::new(&ext[0])
                .file_name()
                .map_or_else(|| ext[0].clone(), |n| n.to_string_lossy().into_owned());
            log_lines(&mut child, &def.name, &label);
            let mut stop = extensions_stop.subscribe();
            let (done_tx, done_rx) = watch::channel(false);
            let name = def.name.clone();
            tokio::spawn(async move {
                let status = tokio::select! {
                    s = child.wait() => s.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
                    () = async { let _ = stop.wait_for(|s| *s).await; } => {
                        match tokio::time::timeout(SHUTDOWN_GRACE, child.wait()).await {
                            Ok(s) => s.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
                            Err(_) => {
                                let _ = child.kill().await;
                                "killed after the shutdown grace period".to_string()
                            }
                        }
                    }
                };
                tracing::info!(function = %name, extension = %label, status = %status, "extension ended");
                let _ = done_tx.send(true);
            });
            extensions_done.push(done_rx);
        }

        let mut child = match spawn(&argv) {
            Ok(c) => c,
            Err(e) => {
                let _ = extensions_stop.send(true);
                server.abort();
                return Err(e);
            }
        };
        tracing::info!(function = %def.name, runtime_api = %api, command = ?argv, extensions = def.extensions.len(), "execution environment started");
        log_lines(&mut child, &def.name, "runtime");
        let (kill_tx, kill_rx) = oneshot::channel::<()>();
        let (exit_tx, exit_rx) = watch::channel(None);
        let name = def.name.clone();
        tokio::spawn(async move {
            let status = tokio::select! {
                s = child.wait() => s.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
                _ = kill_rx => {
                    let _ = child.kill().await;
                    "killed by the host".to_string()
                }
            };
            tracing::info!(function = %name, status = %status, "runtime ended");
            let _ = exit_tx.send(Some(status));
        });
        Ok(Arc::new(Env {
            tx,
            shared,
            exited: exit_rx,
            kill: StdMutex::new(Some(kill_tx)),
            extensions_stop,
            extensions_done,
            server,
        }))
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.kill("spindown");
    }
}

fn runtime_error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"errorType": kind, "errorMessage": message})),
    )
        .into_response()
}

async fn next(State(env): State<Arc<EnvShared>>) -> Response {
    let first = env
        .state
        .lock()
        .map(|s| *s == EnvState::Initializing)
        .unwrap_or(false);
    if first {
        env.extensions_initialized().await;
    }
    let mut rx = env.rx.lock().await;
    let Some(mut pending) = rx.recv().await else {
        return runtime_error(
            StatusCode::GONE,
            "ShutDown",
            "the execution environment is shutting down",
        );
    };
    drop(rx);
    if let Ok(mut s) = env.state.lock()
        && let Err(e) = s.begin(&pending.request_id)
    {
        return runtime_error(StatusCode::BAD_REQUEST, e.kind, &e.message);
    }
    let deadline = SystemTime::now() + env.timeout;
    pending.deadline_ms = deadline
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    if let Some(p) = pending.picked.take() {
        let _ = p.send(());
    }
    let trace = pending.meta.trace_id.clone().unwrap_or_else(|| {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let id = pending.request_id.replace('-', "");
        format!(
            "Root=1-{secs:08x}-{};Parent={};Sampled=0",
            &id[..24],
            &id[16..32]
        )
    });
    env.broadcast(&json!({
        "eventType": "INVOKE",
        "deadlineMs": pending.deadline_ms,
        "requestId": pending.request_id,
        "invokedFunctionArn": env.arn,
        "tracing": {"type": "X-Amzn-Trace-Id", "value": trace},
    }));
    let mut response = Response::new(Body::from(pending.payload.clone()));
    let h = response.headers_mut();
    let mut put = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    put("content-type", "application/json");
    put("lambda-runtime-aws-request-id", &pending.request_id);
    put(
        "lambda-runtime-deadline-ms",
        &pending.deadline_ms.to_string(),
    );
    put("lambda-runtime-invoked-function-arn", &env.arn);
    put("lambda-runtime-trace-id", &trace);
    if let Some(c) = &pending.meta.client_context {
        put("lambda-runtime-client-context", c);
    }
    tracing::debug!(function = %env.function, request_id = %pending.request_id, "invocation handed to the runtime");
    if let Ok(mut current) = env.current.lock() {
        *current = Some(pending);
    }
    response
}

fn finish(env: &EnvShared, id: &str, how: Finish, outcome: Outcome) -> Response {
    let allowed = env.state.lock().map_err(|_| ()).and_then(|mut s| {
        s.finish(id, how).map_err(|e| {
            tracing::warn!(function = %env.function, request_id = %id, "runtime API: {}", e.message);
        })
    });
    if allowed.is_err() {
        return runtime_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestID",
            "Invalid request ID",
        );
    }
    let pending = env.current.lock().ok().and_then(|mut c| c.take());
    if let Some(p) = pending {
        let _ = p.done.send(outcome);
    }
    (StatusCode::ACCEPTED, axum::Json(json!({"status": "OK"}))).into_response()
}

async fn respond(
    State(env): State<Arc<EnvShared>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Response {
    if body.len() > MAX_SYNC_PAYLOAD {
        let message = format!(
            "Response payload size ({} bytes) exceeded maximum allowed payload size ({MAX_SYNC_PAYLOAD} bytes).",
            body.len()
        );
        let payload =
            json!({"errorType": "Function.ResponseSizeTooLarge", "errorMessage": message})
                .to_string()
                .into_bytes();
        let _ = finish(&env, &id, Finish::Errored, Outcome::FunctionError(payload));
        return runtime_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            &message,
        );
    }
    finish(
        &env,
        &id,
        Finish::Responded,
        Outcome::Response(body.to_vec()),
    )
}

async fn fail(
    State(env): State<Arc<EnvShared>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Response {
    finish(
        &env,
        &id,
        Finish::Errored,
        Outcome::FunctionError(body.to_vec()),
    )
}

async fn init_error(
    State(env): State<Arc<EnvShared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let allowed = env
        .state
        .lock()
        .map_err(|_| ())
        .and_then(|mut s| s.init_failed().map_err(|_| ()));
    if allowed.is_err() {
        return runtime_error(
            StatusCode::FORBIDDEN,
            "InvalidStateTransition",
            "an init error may only be posted before the first invocation",
        );
    }
    let kind = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("Runtime.Unknown");
    tracing::warn!(function = %env.function, error_type = %kind, "the runtime reported an init error");
    if let Ok(mut e) = env.init_error.lock() {
        *e = Some(body.to_vec());
    }
    // Drop the invocation waiting for this environment: its invoker reports the init error.
    let mut rx = env.rx.lock().await;
    rx.close();
    while let Ok(p) = rx.try_recv() {
        drop(p);
    }
    (StatusCode::ACCEPTED, axum::Json(json!({"status": "OK"}))).into_response()
}

/// `POST /2020-01-01/extension/register`: `Lambda-Extension-Name` and `{"events": [...]}`.
async fn register(State(env): State<Arc<EnvShared>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(name) = headers
        .get("lambda-extension-name")
        .and_then(|v| v.to_str().ok())
        .filter(|n| !n.is_empty())
        .map(str::to_string)
    else {
        return runtime_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "the Lambda-Extension-Name header is missing",
        );
    };
    let events: Vec<String> = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(v) => match v["events"].as_array() {
            Some(a) => a
                .iter()
                .filter_map(|e| e.as_str().map(str::to_string))
                .collect(),
            None => Vec::new(),
        },
        Err(e) => {
            return runtime_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                &format!(
                    "the body is not JSON: {e}; send {{\"events\": [\"INVOKE\", \"SHUTDOWN\"]}}"
                ),
            );
        }
    };
    if let Some(bad) = events.iter().find(|e| *e != "INVOKE" && *e != "SHUTDOWN") {
        return runtime_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            &format!("event type {bad:?} is not INVOKE or SHUTDOWN"),
        );
    }
    let open = env
        .state
        .lock()
        .map(|s| *s == EnvState::Initializing)
        .unwrap_or(false);
    if !open {
        return runtime_error(
            StatusCode::FORBIDDEN,
            "Extension.RegistrationClosed",
            "extensions register during the init phase, before the first invocation",
        );
    }
    let id = request_id();
    let (tx, rx) = mpsc::unbounded_channel();
    if let Ok(mut exts) = env.extensions.lock() {
        if exts.iter().any(|e| e.name == name) {
            return runtime_error(
                StatusCode::CONFLICT,
                "Extension.AlreadyRegistered",
                &format!("an extension named {name:?} is already registered"),
            );
        }
        exts.push(Extension {
            id: id.clone(),
            name: name.clone(),
            invoke: events.iter().any(|e| e == "INVOKE"),
            shutdown: events.iter().any(|e| e == "SHUTDOWN"),
            tx,
            rx: Arc::new(Mutex::new(rx)),
            ready: false,
        });
    }
    env.extension_change.send_modify(|n| *n += 1);
    tracing::info!(function = %env.function, extension = %name, events = ?events, "extension registered");
    let mut response = (
        StatusCode::OK,
        axum::Json(json!({
            "functionName": env.function,
            "functionVersion": EXECUTED_VERSION,
            "handler": env.handler,
        })),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert("lambda-extension-identifier", v);
    }
    response
}

/// `GET /2020-01-01/extension/event/next` with `Lambda-Extension-Identifier`.
async fn extension_next(State(env): State<Arc<EnvShared>>, headers: HeaderMap) -> Response {
    let id = headers
        .get("lambda-extension-identifier")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let rx = env.extensions.lock().ok().and_then(|mut exts| {
        let e = exts.iter_mut().find(|e| e.id == id)?;
        e.ready = true;
        Some(e.rx.clone())
    });
    let Some(rx) = rx else {
        return runtime_error(
            StatusCode::FORBIDDEN,
            "Extension.UnknownExtensionIdentifier",
            "the Lambda-Extension-Identifier header names no registered extension",
        );
    };
    env.extension_change.send_modify(|n| *n += 1);
    let mut rx = rx.lock().await;
    match rx.recv().await {
        Some(event) => {
            let mut response = (StatusCode::OK, axum::Json(event)).into_response();
            if let Ok(v) = HeaderValue::from_str(id) {
                response
                    .headers_mut()
                    .insert("lambda-extension-event-identifier", v);
            }
            response
        }
        None => runtime_error(
            StatusCode::GONE,
            "ShutDown",
            "the execution environment is gone",
        ),
    }
}

/// `POST /2020-01-01/extension/init/error` and `/exit/error`: logged, and the environment
/// is ended as Lambda ends it.
async fn extension_error(State(env): State<Arc<EnvShared>>, headers: HeaderMap) -> Response {
    let kind = headers
        .get("lambda-extension-function-error-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("Extension.Unknown");
    tracing::warn!(function = %env.function, error_type = %kind, "an extension reported an error");
    if let Ok(mut e) = env.init_error.lock() {
        *e = Some(
            json!({"errorType": kind, "errorMessage": "an extension reported an error during init"})
                .to_string()
                .into_bytes(),
        );
    }
    let mut rx = env.rx.lock().await;
    rx.close();
    while let Ok(p) = rx.try_recv() {
        drop(p);
    }
    (StatusCode::ACCEPTED, axum::Json(json!({"status": "OK"}))).into_response()
}
