//! `writ server`: the control plane.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use writ_server::duration;
use writ_server::server::{self, Settings};
use writ_server::state::Limits;

/// Arguments of `writ server`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  writ server --data-dir /var/lib/writ --trust-domain example.org
  writ server --data-dir ./node2 --store postgres://writ@db:5432/writ --listen 0.0.0.0:7443
  writ server --data-dir /var/lib/writ --metrics-listen 127.0.0.1:9091   # Prometheus /metrics

The first start initialises the trust domain, the CA and the JWT signing key, and prints a
bootstrap admin token once (also written to DATA_DIR/admin-token, mode 0600). The master key
that wraps the private keys comes from WRIT_MASTER_KEY (base64, 32 bytes) or DATA_DIR/master.key,
created on first start. Servers sharing one PostgreSQL database must share the master key.
The current trust bundle is kept in DATA_DIR/ca.pem for the CLI (WRIT_CACERT). Audit events
go to the store's hash-chained log, and with --audit-file or --audit-stdout also to JSON lines.
Secret rotation commands are registered with --rotation-hook NAME=PATH; the API names them,
never a path. AWS IAM attestation sends signed GetCallerIdentity requests to --aws-sts-endpoint
only, and accepts those naming this server's id (--aws-iam-server-id, the trust domain by
default) in their signed x-writ-server-id header.")]
pub struct ServerArgs {
    /// Directory for the master key, bootstrap token, trust bundle and SQLite database.
    #[arg(long, env = "WRIT_DATA_DIR", default_value = "writ-data")]
    data_dir: PathBuf,
    /// PostgreSQL URL (postgres://USER@HOST:PORT/DB); SQLite in --data-dir when omitted.
    #[arg(long, env = "WRIT_STORE")]
    store: Option<String>,
    /// Address to listen on.
    #[arg(long, env = "WRIT_LISTEN", default_value = "127.0.0.1:7443")]
    listen: SocketAddr,
    /// Where to serve Prometheus `/metrics` (plain HTTP, no credentials: keep it on
    /// loopback or a private network), if anywhere.
    #[arg(long, env = "WRIT_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Trust domain, e.g. example.org: required on the first start, checked afterwards.
    #[arg(long, env = "WRIT_TRUST_DOMAIN")]
    trust_domain: Option<String>,
    /// X.509-SVID lifetime for functions that set none.
    #[arg(long, default_value = "1h", value_parser = duration::parse)]
    x509_ttl: time::Duration,
    /// Longest X.509-SVID lifetime a function may set.
    #[arg(long, default_value = "24h", value_parser = duration::parse)]
    x509_max_ttl: time::Duration,
    /// JWT-SVID lifetime when the caller asks for none.
    #[arg(long, default_value = "5m", value_parser = duration::parse)]
    jwt_ttl: time::Duration,
    /// Longest JWT-SVID lifetime a caller may ask for.
    #[arg(long, default_value = "1h", value_parser = duration::parse)]
    jwt_max_ttl: time::Duration,
    /// Extra DNS name or IP address for the server certificate (repeatable); localhost,
    /// 127.0.0.1, ::1 and the listen address are always included.
    #[arg(long = "tls-san")]
    tls_san: Vec<String>,
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// This server's name in audit events (default: the host name).
    #[arg(long, env = "WRIT_NODE")]
    node: Option<String>,
    /// Also append committed audit events to this JSON-lines file.
    #[arg(long)]
    audit_file: Option<PathBuf>,
    /// Also print committed audit events to standard output, one JSON object per line.
    #[arg(long)]
    audit_stdout: bool,
    /// Register a secret rotation command that the API may name: NAME=PATH (repeatable).
    /// It runs as `PATH STEP` with the step's JSON on standard input.
    #[arg(long = "rotation-hook", value_name = "NAME=PATH", value_parser = rotation_hook)]
    rotation_hooks: Vec<(String, PathBuf)>,
    /// Let HTTPS rotation hooks reach this network although it is loopback, private or
    /// link-local (repeatable; WRIT_HOOK_ALLOW_NETS takes a comma-separated list). Without
    /// it, hooks reach public addresses only.
    #[arg(
        long = "hook-allow-net",
        value_name = "CIDR",
        env = "WRIT_HOOK_ALLOW_NETS",
        value_delimiter = ',',
        value_parser = cidr
    )]
    hook_allow_nets: Vec<writ_server::hook_destination::IpNet>,
    /// This server's id for AWS IAM attestation: a signed GetCallerIdentity request must
    /// name it in its signed x-writ-server-id header (default: the trust domain).
    #[arg(long, env = "WRIT_AWS_IAM_SERVER_ID", value_name = "ID")]
    aws_iam_server_id: Option<String>,
    /// Where AWS IAM attestation sends GetCallerIdentity requests; {region} is the
    /// credential scope's region. A signed request's host must be this endpoint's.
    #[arg(
        long,
        env = "WRIT_AWS_STS_ENDPOINT",
        value_name = "URL",
        default_value = writ_identity::aws_iam::DEFAULT_STS_ENDPOINT,
        value_parser = sts_endpoint
    )]
    aws_sts_endpoint: writ_identity::aws_iam::StsEndpoint,
    /// The 12-digit AWS account id the AWS-compatible APIs name in ARNs: a function's
    /// role is arn:aws:iam::ACCOUNT:role/NAME (see docs/aws.md).
    #[arg(long, env = "WRIT_AWS_ACCOUNT_ID", default_value = writ_server::aws::DEFAULT_ACCOUNT_ID, value_parser = aws_account_id)]
    aws_account_id: String,
}

/// Parses `--aws-sts-endpoint`: an http(s) URL without user information or query.
fn sts_endpoint(text: &str) -> Result<writ_identity::aws_iam::StsEndpoint, String> {
    writ_identity::aws_iam::StsEndpoint::new(text.trim())
}

/// Checks `--aws-iam-server-id`: 1 to 255 printable ASCII characters, as it travels in an
/// HTTP header.
fn check_server_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 255 || !id.bytes().all(|b| (b'!'..=b'~').contains(&b)) {
        return Err(format!(
            "--aws-iam-server-id {id:?}: give 1 to 255 printable ASCII characters without spaces (it is sent in a header)"
        ));
    }
    Ok(())
}

/// Parses `--aws-account-id`: 12 digits.
fn aws_account_id(text: &str) -> Result<String, String> {
    writ_server::aws::check_account_id(text)?;
    Ok(text.to_string())
}

/// Parses a network for `--hook-allow-net`: `10.20.0.0/16`, `fd00:1::/32`, or one address.
fn cidr(text: &str) -> Result<writ_server::hook_destination::IpNet, String> {
    let text = text.trim();
    if let Ok(net) = text.parse() {
        return Ok(net);
    }
    text.parse::<std::net::IpAddr>()
        .map(writ_server::hook_destination::IpNet::from)
        .map_err(|_| format!("{text:?}: give a network as ADDRESS/PREFIX (10.20.0.0/16, fd00:1::/32) or one address"))
}

/// Parses `NAME=PATH` for `--rotation-hook`: a short name and an absolute path to a file
/// that exists, so a typo fails at start, not at the first rotation.
fn rotation_hook(text: &str) -> Result<(String, PathBuf), String> {
    let (name, path) = text
        .split_once('=')
        .ok_or("write NAME=PATH, for example db=/usr/local/bin/rotate-db")?;
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!(
            "{name:?}: a hook name is 1 to 64 letters, digits, - or _"
        ));
    }
    let path = PathBuf::from(path);
    if !path.is_absolute() {
        return Err(format!("{}: give an absolute path", path.display()));
    }
    if !path.is_file() {
        return Err(format!("{}: no such file", path.display()));
    }
    Ok((name.to_string(), path))
}

/// The host name, for audit events.
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "writ-server".into())
}

/// How the server logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Logs to standard error, as text or JSON lines, filtered by `WRIT_LOG` (default `info`).
pub(crate) fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WRIT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Runs the server until Ctrl-C or SIGTERM.
pub fn run(args: ServerArgs) -> Result<ExitCode, String> {
    if args.x509_ttl > args.x509_max_ttl {
        return Err("--x509-ttl is longer than --x509-max-ttl".into());
    }
    if args.jwt_ttl > args.jwt_max_ttl {
        return Err("--jwt-ttl is longer than --jwt-max-ttl".into());
    }
    if let Some(id) = &args.aws_iam_server_id {
        check_server_id(id)?;
    }
    init_logging(args.log_format == LogFormat::Json);
    let metrics_listen = args.metrics_listen;
    let settings = Settings {
        data_dir: args.data_dir,
        store_url: args.store,
        listen: args.listen,
        trust_domain: args.trust_domain,
        limits: Limits {
            x509_ttl: args.x509_ttl,
            x509_max_ttl: args.x509_max_ttl,
            jwt_ttl: args.jwt_ttl,
            jwt_max_ttl: args.jwt_max_ttl,
        },
        tls_names: args.tls_san,
        master_key_env: std::env::var(writ_server::master_key::MASTER_KEY_ENV).ok(),
        node: args.node.unwrap_or_else(host_name),
        audit_copies: writ_server::audit::Copies {
            file: args.audit_file,
            stdout: args.audit_stdout,
        },
        rotation_hooks: args.rotation_hooks,
        hook_networks: writ_server::hook_destination::HookNetworks::new(args.hook_allow_nets),
        aws_iam: writ_server::server::AwsIamConfig {
            server_id: args.aws_iam_server_id,
            sts_endpoint: args.aws_sts_endpoint,
        },
        aws_account_id: args.aws_account_id,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("could not start the runtime: {e}"))?;
    runtime.block_on(async move {
        let (running, listener) = server::start(settings).await.map_err(|e| e.to_string())?;
        println!(
            "writ: server for trust domain {} listening on https://{}",
            running.state.trust_domain, running.addr
        );
        tracing::info!(addr = %running.addr, "listening");
        if let Some(addr) = metrics_listen {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("--metrics-listen {addr}: {e}"))?;
            let bound = listener.local_addr().map_err(|e| e.to_string())?;
            println!("writ: metrics on http://{bound}/metrics");
            tokio::spawn(writ_server::metrics::serve(listener, running.state.clone()));
        }
        server::serve(&running, listener, shutdown_signal()).await;
        // Commit the queued audit events before the store closes.
        if let Err(e) = running.state.audit.flush().await {
            tracing::error!(error = %e, "queued audit events could not be committed at shutdown");
        }
        running.state.store.close().await;
        Ok(ExitCode::SUCCESS)
    })
}

pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutting down");
}
