//! `writ dev`: the whole system on one machine, in one process. A server on embedded
//! storage, a gateway in front of two demo functions (orders and payments), each with its
//! own identity; orders may call payments on `POST /payments/charge` and nothing else, and
//! only payments may read its secret. It drives a few calls, prints what happened and why,
//! verifies the audit chain, and keeps serving until Ctrl-C so the CLI can be tried on it.
//!
//! The demo functions are real Lambda handlers (Python, run by AWS's `awslambdaric`) in
//! `writ lambda`'s host, in this process, behind the gateway's Lambda upstream, when a Python
//! with `awslambdaric` is found (`WRIT_DEV_PYTHON`, else the venv `.ci/run` makes, else
//! `python3`). Otherwise `writ dev` says so and serves them in-process as plain HTTP
//! upstreams, payments reading its secret with `writ-client` (the Rust SDK's way).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use writ_api::aws::AwsCredentialsRequest;
use writ_api::endpoint::Endpoint;
use writ_api::endpoints::{
    CreateAdminToken, CreateJoinToken, CreateSecret, GetSecretValue, IssueAwsCredentials, Login,
    PutIntention, PutResourcePolicy, RegisterFunction,
};
use writ_api::functions::{FunctionName, RegisterFunctionRequest, default_rules};
use writ_api::identity::{Evidence, LoginRequest};
use writ_api::secrets::{CreateSecretRequest, GetSecretRequest, SecretPolicyRequest};
use writ_api::tokens::{AdminTokenRequest, JoinTokenFor, JoinTokenRequest};
use writ_client::api::{ApiCallError, ApiClient, Credential};
use writ_client::fetch::{HttpFetcher, SvidSource, mtls_client};
use writ_client::secrets::{CachePolicy, SecretCache};
use writ_policy::intentions::{Intention, IntentionAction, Permission};
use writ_server::server::{self, Settings};
use writ_server::state::Limits;

/// Arguments of `writ dev`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  writ dev
  writ dev --data-dir ./writ-dev --listen 127.0.0.1:17443 --gateway-listen 127.0.0.1:18443
  WRIT_DEV_PYTHON=./venv/bin/python writ dev

The demo functions are Lambda handlers, run by awslambdaric in writ lambda's host, when a
Python with awslambdaric is found: WRIT_DEV_PYTHON, else ~/.cache/writ/venv/bin/python,
else python3. Otherwise they run in-process, and writ dev says why.")]
pub struct DevArgs {
    /// Directory for the embedded store, keys and demo files, kept on exit (when omitted, a
    /// new temporary directory, removed on exit with the master key and admin token in it).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1:7443")]
    listen: SocketAddr,
    /// The gateway's address.
    #[arg(long, default_value = "127.0.0.1:8443")]
    gateway_listen: SocketAddr,
}

const TRUST_DOMAIN: &str = "dev.writ.local";

/// The admin API, as the CLI speaks it, with the failure named by route.
async fn call<E: Endpoint>(api: &ApiClient, request: &E::Request) -> Result<E::Answer, String> {
    api.send::<E>(request)
        .await
        .map_err(|e| format!("{}: {}", E::PATH, e.detail()))
}

/// Whether a call failed because what it makes already exists (a second `writ dev` on
/// the same data directory).
fn exists(e: &ApiCallError) -> bool {
    e.status() == Some(409)
}

/// The profile of payments' writ AWS credentials in `DIR/aws-credentials`.
const AWS_PROFILE: &str = "writ-dev-payments";

/// A command that reads `secret` with boto3 through writ's Secrets Manager API, as
/// payments (its credentials in `credentials`), pasted as it is printed (with boto3
/// installed: `pip install boto3`). No secret is on it: the credentials are in the file.
fn boto3_snippet(server: &str, ca: &Path, credentials: &Path, secret: &str) -> String {
    format!(
        "AWS_SHARED_CREDENTIALS_FILE={} AWS_PROFILE={AWS_PROFILE} AWS_ENDPOINT_URL={server} AWS_CA_BUNDLE={} AWS_DEFAULT_REGION=us-east-1 \\\n    python3 -c 'import boto3; print(boto3.client(\"secretsmanager\").get_secret_value(SecretId=\"{secret}\")[\"SecretString\"])'   # needs boto3",
        credentials.display(),
        ca.display()
    )
}

/// A demo function: its identity, and clients that present it.
struct Function {
    name: &'static str,
    cert: PathBuf,
    key: PathBuf,
    http: reqwest::Client,
}

fn fresh_dir() -> Result<PathBuf, String> {
    let mut bytes = [0u8; 4];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| "the system random source failed".to_string())?;
    let dir = std::env::temp_dir().join(format!("writ-dev-{}", writ_audit::hex(&bytes)));
    // A new directory, the owner's only: keys and tokens go in it.
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The temporary data directory of a `writ dev` run without `--data-dir`: it holds the
/// master key and the admin token, so it is removed when `writ dev` exits, however it exits
/// (Ctrl-C, SIGTERM, an error, a panic; only SIGKILL leaves it behind).
struct Scratch(PathBuf);

impl Scratch {
    /// Removes the directory now, saying so (or why it could not).
    fn remove(self) {
        let path = self.0.clone();
        drop(self);
        if path.exists() {
            eprintln!(
                "writ dev: could not remove {}; delete it by hand (it holds a master key)",
                path.display()
            );
        } else {
            println!("writ dev: removed {} and the keys in it", path.display());
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the demo, then serves until Ctrl-C or SIGTERM; a temporary data directory is
/// removed on the way out, a `--data-dir` kept.
pub fn run(args: DevArgs) -> Result<ExitCode, String> {
    super::server::init_logging(false);
    let (dir, scratch) = match &args.data_dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| format!("--data-dir {}: {e}", d.display()))?;
            (d.clone(), None)
        }
        None => {
            let d = fresh_dir()?;
            (d.clone(), Some(Scratch(d)))
        }
    };
    let dir = std::path::absolute(&dir).map_err(|e| e.to_string())?;
    // Declared after `scratch`, so dropped before it even on a panic: the server's tasks and
    // its store are gone before their directory is.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("could not start the runtime: {e}"))?;
    let python = lambda_python();
    let result = runtime.block_on(until_stopped(args, dir, scratch.is_some(), python));
    drop(runtime);
    if let Some(scratch) = scratch {
        scratch.remove();
    }
    result
}

/// The demo, stopped by Ctrl-C or SIGTERM at any point: while it sets up, at once; once it
/// serves, after the server and gateway have stopped cleanly and flushed the audit log.
async fn until_stopped(
    args: DevArgs,
    dir: PathBuf,
    temporary: bool,
    python: Result<PathBuf, String>,
) -> Result<ExitCode, String> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        super::server::shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let serving = std::sync::atomic::AtomicBool::new(false);
    let demo = demo(args, dir, temporary, python, stop_rx.clone(), &serving);
    tokio::pin!(demo);
    let mut stop = stop_rx;
    tokio::select! {
        result = &mut demo => result,
        () = async { let _ = stop.wait_for(|s| *s).await; } => {
            if serving.load(std::sync::atomic::Ordering::SeqCst) {
                demo.await
            } else {
                println!("\nwrit dev: interrupted while setting up");
                Ok(ExitCode::from(130))
            }
        }
    }
}

async fn demo(
    args: DevArgs,
    dir: PathBuf,
    temporary: bool,
    python: Result<PathBuf, String>,
    mut signal: tokio::sync::watch::Receiver<bool>,
    serving: &std::sync::atomic::AtomicBool,
) -> Result<ExitCode, String> {
    println!("writ dev: a server, a gateway and two functions on this machine");
    if temporary {
        println!(
            "  data     {}   (removed on exit; --data-dir DIR keeps it)",
            dir.display()
        );
    } else {
        println!("  data     {}", dir.display());
    }

    // The control plane.
    let (running, listener) = server::start(Settings {
        data_dir: dir.clone(),
        store_url: None,
        listen: args.listen,
        trust_domain: Some(TRUST_DOMAIN.into()),
        limits: Limits {
            x509_ttl: time::Duration::hours(1),
            x509_max_ttl: time::Duration::hours(24),
            jwt_ttl: time::Duration::minutes(5),
            jwt_max_ttl: time::Duration::hours(1),
        },
        tls_names: Vec::new(),
        master_key_env: None,
        node: "writ-dev".into(),
        audit_copies: writ_server::audit::Copies::default(),
        rotation_hooks: Vec::new(),
        hook_networks: Default::default(),
        aws_iam: Default::default(),
        aws_account_id: writ_server::aws::DEFAULT_ACCOUNT_ID.into(),
    })
    .await
    .map_err(|e| format!("{e} (another writ on {}? use --listen)", args.listen))?;
    let server_addr = format!("https://{}", running.addr);
    let state = running.state.clone();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server_task = {
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            server::serve(&running, listener, async move {
                let _ = stop.changed().await;
            })
            .await;
            let _ = running.state.audit.flush().await;
        })
    };
    println!("  server   {server_addr}   trust domain {TRUST_DOMAIN}");
    let ca_file = dir.join("ca.pem");
    let bundle =
        std::fs::read_to_string(&ca_file).map_err(|e| format!("{}: {e}", ca_file.display()))?;
    let token = std::fs::read_to_string(dir.join("admin-token"))
        .map_err(|e| format!("admin-token: {e}"))?
        .trim()
        .to_string();
    let api = ApiClient::new(
        &server_addr,
        writ_client::fetch::bundle_client(&bundle)?,
        Credential::AdminToken(token.into()),
    );

    // The two functions' identities.
    let payments_secret = "payments/stripe-key";
    println!("\nSet up:");
    let mut functions = Vec::new();
    for name in ["orders", "payments"] {
        let registered = api
            .send::<RegisterFunction>(&RegisterFunctionRequest {
                name: name.into(),
                attestation: default_rules(),
                x509_ttl: None,
                policies: Vec::new(),
            })
            .await;
        match registered {
            Err(e) if !exists(&e) => {
                return Err(format!("{}: {}", RegisterFunction::PATH, e.detail()));
            }
            _ => {}
        }
        functions.push(login(&api, &dir, name, &bundle).await?);
    }
    println!(
        "  ✔ registered orders and payments; each proved itself with a one-time join token and holds an X.509-SVID"
    );
    call::<PutIntention>(
        &api,
        &Intention {
            source: "orders".into(),
            destination: "payments".into(),
            action: IntentionAction::Allow,
            permissions: vec![Permission {
                methods: vec!["POST".into()],
                path_exact: Some("/payments/charge".into()),
                ..Permission::default()
            }],
            description: Some("writ dev: orders charges through payments".into()),
        },
    )
    .await?;
    println!(
        "  ✔ intention: orders -> payments, POST /payments/charge only (everything else is denied by default)"
    );
    let created = api
        .send::<CreateSecret>(&CreateSecretRequest {
            name: payments_secret.into(),
            secret_string: Some(random_hex(16)?),
            description: "writ dev demo".into(),
            ..CreateSecretRequest::default()
        })
        .await;
    if let Err(e) = created
        && !exists(&e)
    {
        return Err(format!("{}: {}", CreateSecret::PATH, e.detail()));
    }
    call::<PutResourcePolicy>(
        &api,
        &SecretPolicyRequest {
            name: payments_secret.into(),
            policy: Some(json!({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"SPIFFE": format!("spiffe://{TRUST_DOMAIN}/fn/payments")},
                "Action": "secrets:GetSecretValue", "Resource": format!("writ:secret/{payments_secret}")}]})),
        },
    )
    .await?;
    println!("  ✔ secret {payments_secret}, readable by payments only (its resource policy)");

    // The demo functions: Lambda handlers in a local host when awslambdaric is there, else
    // in-process HTTP upstreams (payments reads its secret per request from its cache).
    let payments = &functions[1];
    let (upstreams, aws, host_task) = match python {
        Ok(python) => {
            let host = start_lambda_host(&dir, &python, stop_rx.clone()).await?;
            println!(
                "  ✔ orders and payments are Lambda handlers ({}), run by awslambdaric ({}) in writ lambda's host on http://{}; the gateway invokes them with a key made for this run, kept in memory",
                dir.join("lambda/app.py").display(),
                python.display(),
                host.addr
            );
            let lambda = |name: &str| {
                format!(
                    r#"lambda = {{ function = "{name}", region = "{LAMBDA_REGION}", endpoint = "http://{}" }}"#,
                    host.addr
                )
            };
            println!(
                "  orders   spiffe://{TRUST_DOMAIN}/fn/orders     Lambda function orders (app.orders)"
            );
            println!(
                "  payments spiffe://{TRUST_DOMAIN}/fn/payments   Lambda function payments (app.payments)"
            );
            (
                [lambda("orders"), lambda("payments")],
                Some(Arc::new(
                    writ_gateway::aws_credentials::AwsCredentials::fixed(host.credentials),
                )),
                Some(host.task),
            )
        }
        Err(why) => {
            println!("  (the functions run in-process, not as Lambda handlers: {why})");
            let (orders_addr, payments_addr) = (bind_local().await?, bind_local().await?);
            let source = SvidSource::from_pem(
                &std::fs::read_to_string(&payments.cert).map_err(|e| e.to_string())?,
                &std::fs::read_to_string(&payments.key).map_err(|e| e.to_string())?,
            )?;
            let cache = Arc::new(SecretCache::new(
                HttpFetcher::new(&server_addr, &bundle, source)?,
                CachePolicy::default(),
            ));
            tokio::spawn(serve_function(orders_addr.0, Handler::Orders));
            tokio::spawn(serve_function(
                payments_addr.0,
                Handler::Payments {
                    cache,
                    secret: payments_secret,
                },
            ));
            println!(
                "  orders   spiffe://{TRUST_DOMAIN}/fn/orders     upstream http://{}",
                orders_addr.1
            );
            println!(
                "  payments spiffe://{TRUST_DOMAIN}/fn/payments   upstream http://{}",
                payments_addr.1
            );
            (
                [
                    format!(r#"upstream = "http://{}""#, orders_addr.1),
                    format!(r#"upstream = "http://{}""#, payments_addr.1),
                ],
                None,
                None,
            )
        }
    };

    // The gateway in front of both, with a certificate from the trust domain's CA and a
    // token that may only read what it enforces and report events.
    let gateway_token = call::<CreateAdminToken>(
        &api,
        &AdminTokenRequest {
            description: "writ dev gateway".into(),
            policies: vec![json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["writ:ReadRevocations", "writ:ReadIntentions"],
                 "Resource": "*"},
                {"Effect": "Allow", "Action": "writ:PutAuditEvents",
                 "Resource": ["writ:fn/orders", "writ:fn/payments", "writ:gateway/no-route"]}]})],
            ttl: None,
        },
    )
    .await?
    .token;
    write_private(&dir.join("gateway-token"), &gateway_token)?;
    issue_gateway_certificate(&state, &dir)?;
    let config_text = format!(
        r#"# writ dev's gateway: try `writ gateway --config {config} --print-config`
listen = "{listen}"
trust_domain = "{TRUST_DOMAIN}"
state_dir = "gateway-state"
[server]
addr = "{server_addr}"
ca_file = "ca.pem"
token_file = "gateway-token"
[tls]
cert = "gateway.pem"
key = "gateway.key"

[[route]]
name = "payments"
function = "payments"
path_prefix = "/payments"
{payments}
auth = ["mtls", "jwt"]
max_body = 4096

[[route]]
name = "orders"
function = "orders"
path_prefix = "/orders"
{orders}
auth = ["mtls", "jwt"]
"#,
        config = dir.join("gateway.toml").display(),
        listen = args.gateway_listen,
        orders = upstreams[0],
        payments = upstreams[1],
    );
    write(&dir.join("gateway.toml"), &config_text)?;
    let config = writ_gateway::config::load(&dir.join("gateway.toml"))?;
    let bound = writ_gateway::serve::bind_with_aws_credentials(config, "writ-dev".into(), aws)
        .await
        .map_err(|e| {
            format!(
                "gateway: {e} (another on {}? use --gateway-listen)",
                args.gateway_listen
            )
        })?;
    let gateway = format!("https://{}", bound.addr);
    println!("  gateway  {gateway}");
    let gateway_task = {
        let mut stop = stop_rx.clone();
        tokio::spawn(bound.serve(async move {
            let _ = stop.changed().await;
        }))
    };

    // The calls.
    let orders = &functions[0];
    wait_for_gateway(orders, &gateway).await?;
    println!("\nCalls through the gateway:");
    let anonymous = writ_client::fetch::bundle_client(&bundle)?;
    let calls: [(&Function, &str, &str, Value, reqwest::Client); 4] = [
        (
            orders,
            "POST",
            "/payments/charge",
            json!({"amount": 1200}),
            orders.http.clone(),
        ),
        (
            orders,
            "GET",
            "/payments/charge",
            Value::Null,
            orders.http.clone(),
        ),
        (
            payments,
            "POST",
            "/orders/new",
            json!({"item": "book"}),
            payments.http.clone(),
        ),
        (
            orders,
            "POST",
            "/payments/charge",
            json!({"amount": 1}),
            anonymous,
        ),
    ];
    let mut surprises = 0;
    for (i, (caller, method, path, body, http)) in calls.into_iter().enumerate() {
        let who = if i == 3 {
            "(no certificate)"
        } else {
            caller.name
        };
        let mut request = http.request(
            method.parse().map_err(|_| "method")?,
            format!("{gateway}{path}"),
        );
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| format!("{path}: {e}"))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.unwrap_or_default();
        // The function's own answer when it was forwarded; the gateway's refusal, in the
        // API's error shape, when not.
        let (mark, what) = if status < 300 {
            let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            ("✔", answer.to_string())
        } else {
            let refusal = serde_json::from_slice::<writ_api::ErrorBody>(&body);
            ("✘", refusal.map(|r| r.error.message).unwrap_or_default())
        };
        println!("  {mark} {who:<16} {method:<4} {path:<18} {status}  {what}");
        let expected = [200, 403, 403, 401][i];
        if status != expected {
            surprises += 1;
            println!("    (expected {expected})");
        }
    }

    println!("\nSecrets, read with each function's SVID:");
    for f in &functions {
        let read = ApiClient::new(&server_addr, f.http.clone(), Credential::Tls)
            .send::<GetSecretValue>(&GetSecretRequest {
                name: payments_secret.into(),
                ..GetSecretRequest::default()
            })
            .await;
        let status = match &read {
            Ok(_) => 200,
            Err(e) => e.status().unwrap_or(0),
        };
        match &read {
            Ok(v) => println!(
                "  ✔ {:<8} reads {payments_secret}: version {} (the value stays in the function)",
                f.name, v.version_id
            ),
            Err(e) => println!(
                "  ✘ {:<8} reads {payments_secret}: {status} {}",
                f.name,
                e.server_message()
                    .map_or_else(|| e.detail(), str::to_string)
            ),
        }
        if (f.name == "payments") != (status == 200) {
            surprises += 1;
        }
    }

    // The same secret through AWS's own SDKs: payments' writ AWS credentials (as its agent
    // would serve them) in a shared credentials file, for the snippet printed below.
    let aws_credentials = dir.join("aws-credentials");
    let payments = functions.iter().find(|f| f.name == "payments");
    let issued = match payments {
        Some(f) => ApiClient::new(&server_addr, f.http.clone(), Credential::Tls)
            .send::<IssueAwsCredentials>(&AwsCredentialsRequest {
                duration_seconds: Some(12 * 3600),
                session_name: None,
            })
            .await
            .map_err(|e| e.detail()),
        None => Err("no payments function".to_string()),
    };
    println!(
        "
Through AWS's SDKs (writ's Secrets Manager and SSM APIs):"
    );
    match issued {
        Ok(c) => {
            write_private(
                &aws_credentials,
                &format!(
                    "# writ dev: payments' writ AWS credentials, until {}\n[{AWS_PROFILE}]\n\
                     aws_access_key_id = {}\naws_secret_access_key = {}\naws_session_token = {}\n",
                    c.expiration, c.access_key_id, c.secret_access_key, c.session_token
                ),
            )?;
            println!(
                "  ✔ payments' credentials ({}, until {}) in {}, profile {AWS_PROFILE}",
                c.role_arn,
                c.expiration,
                aws_credentials.display()
            );
        }
        Err(e) => {
            surprises += 1;
            println!("  ✘ payments' AWS credentials: {e}");
        }
    }

    // The gateway sends its events each second; then the chain is checked as
    // `writ audit verify` does.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (addr, ca, admin) = (
        server_addr.clone(),
        ca_file.clone(),
        dir.join("admin-token"),
    );
    let verified = tokio::task::spawn_blocking(move || {
        std::thread::spawn(move || {
            let client = super::client::Client::connect(&addr, ca, admin)?;
            super::audit::check(&client)
        })
        .join()
        .map_err(|_| "the audit check panicked".to_string())?
    })
    .await
    .map_err(|e| e.to_string())??;
    println!("\nAudit:");
    match verified {
        Ok(intact) => println!(
            "  ✔ chain verified: {} events, {} signed checkpoints, every decision above is on record",
            intact.head, intact.checkpoints
        ),
        Err((seq, problem)) => {
            surprises += 1;
            println!("  ✘ audit log broken at event {seq}: {problem}");
        }
    }

    println!(
        "\nConsole: {server_addr}/ui/ (sign in with the admin token in {token}; its TLS \
         certificate is signed by {ca}, which a browser does not know: trust that CA or \
         accept the warning)\n\nTry it (in another terminal):\n  export WRIT_ADDR={server_addr} WRIT_CACERT={ca} WRIT_TOKEN_FILE={token}\n  writ audit tail\n  writ intention check orders payments --method POST --path /payments/charge\n  curl --cacert {ca} --cert {oc} --key {ok} -d '{{\"amount\": 5}}' {gateway}/payments/charge\n  {boto3}\n  writ revoke --fn orders     # then the curl above gets 401 within a second\n\nServing until Ctrl-C.",
        ca = ca_file.display(),
        token = dir.join("admin-token").display(),
        oc = orders.cert.display(),
        ok = orders.key.display(),
        boto3 = boto3_snippet(&server_addr, &ca_file, &aws_credentials, payments_secret),
    );
    if surprises > 0 {
        println!("(the demo did not go as expected {surprises} time(s); see above)");
    }
    serving.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = signal.wait_for(|s| *s).await;
    let _ = stop_tx.send(true);
    let _ = gateway_task.await;
    if let Some(host) = host_task {
        let _ = host.await;
    }
    let _ = server_task.await;
    Ok(if surprises == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn random_hex(n: usize) -> Result<String, String> {
    let mut bytes = vec![0u8; n];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| "the system random source failed".to_string())?;
    Ok(writ_audit::hex(&bytes))
}

/// Logs a function in as its agent would: a key made here, a CSR, a one-time join token.
async fn login(
    api: &ApiClient,
    dir: &Path,
    name: &'static str,
    bundle: &str,
) -> Result<Function, String> {
    let join = call::<CreateJoinToken>(
        api,
        &JoinTokenFor {
            function: FunctionName::new(name),
            request: JoinTokenRequest::default(),
        },
    )
    .await?
    .token;
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let csr = rcgen::CertificateParams::new(Vec::<String>::new())
        .and_then(|p| p.serialize_request(&key))
        .and_then(|c| c.pem())
        .map_err(|e| e.to_string())?;
    let answer = call::<Login>(
        &api.with_credential(Credential::Tls),
        &LoginRequest {
            function: name.into(),
            attestation: Evidence::JoinToken { token: join },
            csr,
        },
    )
    .await?;
    let cert_pem = answer.x509_svid;
    let key_pem = key.serialize_pem();
    let (cert, key_file) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    write(&cert, &cert_pem)?;
    write_private(&key_file, &key_pem)?;
    let http = mtls_client(bundle, SvidSource::from_pem(&cert_pem, &key_pem)?)?;
    Ok(Function {
        name,
        cert,
        key: key_file,
        http,
    })
}

fn write_private(path: &Path, text: &str) -> Result<(), String> {
    let _ = std::fs::remove_file(path);
    writ_server::master_key::write_owner_only(path, text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The gateway's TLS certificate, for 127.0.0.1 and localhost, from the trust domain's CA:
/// the functions trust it through the bundle they already hold.
fn issue_gateway_certificate(
    state: &writ_server::state::AppState,
    dir: &Path,
) -> Result<(), String> {
    let now = time::OffsetDateTime::now_utc();
    let authorities = state.authorities();
    let ca = authorities
        .signing_ca(now.unix_timestamp())
        .ok_or("no CA is active")?;
    let id = writ_identity::SpiffeId::parse(&format!("spiffe://{TRUST_DOMAIN}/writ/gateway"))
        .map_err(|e| e.to_string())?;
    let (cert, key) = ca
        .ca
        .issue_server_certificate(
            &id,
            &["localhost".to_string()],
            &["127.0.0.1".parse().map_err(|_| "address")?],
            now,
            time::Duration::hours(24),
        )
        .map_err(|e| e.to_string())?;
    write(&dir.join("gateway.pem"), &cert)?;
    write_private(
        &dir.join("gateway.key"),
        &pem::encode(&pem::Pem::new("PRIVATE KEY", key)),
    )
}

async fn bind_local() -> Result<(tokio::net::TcpListener, SocketAddr), String> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let a = l.local_addr().map_err(|e| e.to_string())?;
    Ok((l, a))
}

/// Waits until the gateway has heard from the server and lets orders through.
async fn wait_for_gateway(orders: &Function, gateway: &str) -> Result<(), String> {
    for _ in 0..100 {
        let r = orders
            .http
            .post(format!("{gateway}/payments/charge"))
            .json(&json!({"amount": 0}))
            .send()
            .await;
        if r.is_ok_and(|r| r.status() != reqwest::StatusCode::SERVICE_UNAVAILABLE) {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Err("the gateway did not hear from the server within 10 s".into())
}

/// What a demo function does.
#[derive(Clone)]
enum Handler {
    Orders,
    Payments {
        cache: Arc<SecretCache<HttpFetcher>>,
        secret: &'static str,
    },
}

async fn serve_function(listener: tokio::net::TcpListener, handler: Handler) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: hyper::Request<Incoming>| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(answer(handler, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

async fn answer(handler: Handler, req: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
    let caller = req
        .headers()
        .get("x-writ-caller")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let answer = match handler {
        Handler::Orders => json!({"order": "created", "caller": caller}),
        Handler::Payments { cache, secret } => match cache.get(secret).await {
            Ok(key) => json!({"charged": request["amount"], "caller": caller,
                              "stripeKeyVersion": key.version_id()}),
            Err(e) => json!({"error": e.to_string()}),
        },
    };
    hyper::Response::new(Full::new(Bytes::from(answer.to_string())))
}

/// The region and account of the demo's Lambda functions' ARNs.
const LAMBDA_REGION: &str = "us-east-1";
const LAMBDA_ACCOUNT: &str = "123456789012";

/// The demo's two Lambda handlers (Python). They answer as API Gateway reads an answer;
/// the caller is the one the gateway verified, from `requestContext.authorizer`.
const LAMBDA_HANDLERS: &str = r#"# writ dev's demo functions, run by awslambdaric in writ lambda's host.
import json


def _answer(value):
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(value, separators=(",", ":")),
    }


def _caller(event):
    return event["requestContext"]["authorizer"]["writ"]["principal"]


def orders(event, context):
    return _answer({"order": "created", "caller": _caller(event)})


def payments(event, context):
    request = json.loads(event.get("body") or "{}")
    return _answer({"charged": request.get("amount"), "caller": _caller(event),
                    "lambdaRequestId": context.aws_request_id})
"#;

/// The Python that runs the demo's handlers under `awslambdaric`: `WRIT_DEV_PYTHON` when set,
/// else the venv `.ci/run` makes (`~/.cache/writ/venv/bin/python`), else `python3`; the
/// first that imports `awslambdaric`. `Err` says why none would do.
fn lambda_python() -> Result<PathBuf, String> {
    let candidates: Vec<PathBuf> = match std::env::var_os("WRIT_DEV_PYTHON") {
        Some(p) => vec![PathBuf::from(p)],
        None => {
            let mut c = Vec::new();
            if let Some(home) = std::env::var_os("HOME") {
                c.push(Path::new(&home).join(".cache/writ/venv/bin/python"));
            }
            c.push(PathBuf::from("python3"));
            c
        }
    };
    for python in &candidates {
        let imports = std::process::Command::new(python)
            .args(["-c", "import awslambdaric"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if imports {
            return Ok(python.clone());
        }
    }
    let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    Err(format!(
        "no Python with awslambdaric ({} tried); pip install awslambdaric, or set WRIT_DEV_PYTHON",
        tried.join(", ")
    ))
}

/// `writ lambda`'s host, serving in this process until `stop`.
struct LambdaHost {
    addr: SocketAddr,
    /// The key the gateway signs its invocations with: the only caller the host knows.
    credentials: writ_sigv4::Credentials,
    task: tokio::task::JoinHandle<()>,
}

/// Writes the handlers to `DIR/lambda/app.py` and starts the host with the functions orders
/// and payments, whose one caller is a new random key allowed to invoke them (kept in
/// memory only), its audit file in `DIR/lambda-audit.jsonl`.
async fn start_lambda_host(
    dir: &Path,
    python: &Path,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<LambdaHost, String> {
    use writ_lambda::definition;
    std::fs::create_dir_all(dir.join("lambda"))
        .map_err(|e| format!("{}: {e}", dir.join("lambda").display()))?;
    write(&dir.join("lambda/app.py"), LAMBDA_HANDLERS)?;
    let config_text = format!(
        r#"region = "{LAMBDA_REGION}"
account_id = "{LAMBDA_ACCOUNT}"
[runtimes]
python = {python:?}
[functions.orders]
handler = "app.orders"
runtime = "python3.12"
code_uri = "lambda"
timeout = 10
[functions.payments]
handler = "app.payments"
runtime = "python3.12"
code_uri = "lambda"
timeout = 10
"#,
        python = python.display().to_string(),
    );
    let config = definition::parse_config("(writ dev)", &config_text).map_err(|e| e.to_string())?;
    let functions =
        definition::merge(Vec::new(), &config, "(writ dev)", dir).map_err(|e| e.to_string())?;
    let credentials = writ_sigv4::Credentials {
        access_key_id: format!("AKIAWRITDEV{}", random_hex(5)?.to_uppercase()),
        secret_access_key: random_hex(20)?,
        session_token: None,
    };
    let callers = format!(
        r#"[[credential]]
access_key_id = "{id}"
secret_access_key = "{secret}"
principal = "arn:aws:iam::{LAMBDA_ACCOUNT}:user/writ-dev-gateway"
policies = ['{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"lambda:InvokeFunction","Resource":["arn:aws:lambda:{LAMBDA_REGION}:{LAMBDA_ACCOUNT}:function:orders","arn:aws:lambda:{LAMBDA_REGION}:{LAMBDA_ACCOUNT}:function:payments"]}}]}}']
"#,
        id = credentials.access_key_id,
        secret = credentials.secret_access_key,
    );
    let authorizer = writ_lambda::auth::Authorizer::new(
        Some(("(writ dev)", &callers)),
        &functions,
        LAMBDA_REGION,
        LAMBDA_ACCOUNT,
    )
    .map_err(|e| e.to_string())?;
    let settings = writ_lambda::host::HostSettings {
        region: LAMBDA_REGION.into(),
        account: LAMBDA_ACCOUNT.into(),
        functions,
        runtimes: config.runtimes.clone(),
        failure_dir: dir.join("lambda-failures"),
        retry: writ_lambda::invoke::RetrySchedule::new(Vec::new()),
        audit_log: dir.join("lambda-audit.jsonl"),
        authorizer,
    };
    let (listener, addr) = bind_local().await?;
    let task = tokio::spawn(async move {
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) = writ_lambda::host::serve(listener, settings, stopped).await {
            eprintln!("writ dev: the Lambda host stopped: {e}");
        }
    });
    Ok(LambdaHost {
        addr,
        credentials,
        task,
    })
}
