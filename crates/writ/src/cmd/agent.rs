//! `writ agent`: beside one function, its identity, secrets and outbound calls.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use writ_client::identity::Evidence;

/// `writ agent --function NAME ...`
#[derive(clap::Args)]
#[command(after_help = "Examples:
  WRIT_JOIN_TOKEN=$(cat join) AWS_SESSION_TOKEN=s3 writ agent --function orders \\
      --outbound payments=127.0.0.1:9101 --gateway https://gateway.internal:8443
  writ agent --function orders --oidc-token-file /var/run/secrets/token --svid-dir /run/writ
  WRIT_ATTEST=aws-iam writ agent --function orders     # in Lambda: signs with the role's credentials

The function then reads secrets as it would from the AWS Parameters and Secrets Lambda
Extension (GET http://127.0.0.1:2773/secretsmanager/get?secretId=NAME with the header
X-Aws-Parameters-Secrets-Token), gets JWT-SVIDs (GET /v1/jwt?aud=AUDIENCE), and calls
http://127.0.0.1:9101/... to reach payments through the gateway over mTLS. With
AWS_LAMBDA_RUNTIME_API set it registers as a Lambda extension and leaves on SHUTDOWN.

Every option can come from the environment instead (shown as [env: ...]), so Lambda can
start the agent from a layer with no arguments (writ layer build).")]
pub struct AgentArgs {
    /// The function this agent is beside (default: AWS_LAMBDA_FUNCTION_NAME, in Lambda).
    #[arg(long = "function", env = "WRIT_FUNCTION")]
    function: Option<String>,
    /// The server.
    #[arg(long, env = "WRIT_ADDR", default_value = "https://127.0.0.1:7443")]
    server: String,
    /// The trust bundle to verify the server with at first contact.
    #[arg(long, env = "WRIT_CACERT")]
    ca_file: PathBuf,
    /// How the agent proves itself: join-token (--join-token-file or WRIT_JOIN_TOKEN), oidc
    /// (--oidc-token-file), or aws-iam (a GetCallerIdentity request signed with
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN and AWS_REGION, for the
    /// STS at AWS_ENDPOINT_URL_STS or sts.REGION.amazonaws.com). Default: from the file given.
    #[arg(long, env = "WRIT_ATTEST", value_enum)]
    attest: Option<Attest>,
    /// A file holding a one-time join token (or set WRIT_JOIN_TOKEN).
    #[arg(long, env = "WRIT_JOIN_TOKEN_FILE", conflicts_with = "oidc_token_file")]
    join_token_file: Option<PathBuf>,
    /// A file holding an OIDC ID token (re-read at each attestation).
    #[arg(long, env = "WRIT_OIDC_TOKEN_FILE")]
    oidc_token_file: Option<PathBuf>,
    /// The writ server's id that AWS IAM attestation signs for, when the server was given
    /// --aws-iam-server-id (default: the server's trust domain, from its trust bundle).
    #[arg(long, env = "WRIT_AWS_IAM_SERVER_ID", value_name = "ID")]
    aws_iam_server_id: Option<String>,
    /// Where the localhost endpoints listen.
    #[arg(long, env = "WRIT_AGENT_LISTEN", default_value = "127.0.0.1:2773")]
    listen: SocketAddr,
    /// A file holding the token callers must send in X-Aws-Parameters-Secrets-Token
    /// (default: AWS_SESSION_TOKEN, as in Lambda).
    #[arg(long, env = "WRIT_CALLER_TOKEN_FILE")]
    caller_token_file: Option<PathBuf>,
    /// An outbound listener, NAME=127.0.0.1:PORT (repeatable; comma-separated in the
    /// environment); its calls go to --gateway.
    #[arg(
        long = "outbound",
        env = "WRIT_OUTBOUND",
        value_delimiter = ',',
        value_name = "NAME=ADDR",
        value_parser = outbound
    )]
    outbound: Vec<(String, SocketAddr)>,
    /// The gateway outbound calls go to.
    #[arg(long, env = "WRIT_GATEWAY")]
    gateway: Option<String>,
    /// The CA to verify the gateway with (default: the trust bundle).
    #[arg(long, env = "WRIT_GATEWAY_CACERT")]
    gateway_ca: Option<PathBuf>,
    /// Write svid.pem, svid.key (0600) and bundle.pem here, kept current.
    #[arg(long, env = "WRIT_SVID_DIR")]
    svid_dir: Option<PathBuf>,
    /// Fetch this secret before saying ready (repeatable; comma-separated in the
    /// environment).
    #[arg(long, env = "WRIT_PREFETCH", value_delimiter = ',')]
    prefetch: Vec<String>,
    /// How long a secret is served from the cache.
    #[arg(
        long,
        env = "WRIT_CACHE_TTL",
        default_value = "5m",
        value_parser = writ_gateway::config::parse_duration
    )]
    cache_ttl: std::time::Duration,
    /// How long the first attestation keeps trying while the server cannot be reached
    /// (no answer, or a 5xx), before the agent gives up (and, in Lambda, reports an init
    /// error). Lambda's init phase lasts at most 10 s.
    #[arg(
        long,
        env = "WRIT_INIT_TIMEOUT",
        default_value = "8s",
        value_parser = writ_gateway::config::parse_duration
    )]
    init_timeout: std::time::Duration,
    /// Exit as soon as the agent is ready (to measure cold start).
    #[arg(long)]
    exit_when_ready: bool,
}

/// The attestation methods the agent can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Attest {
    /// A one-time join token.
    JoinToken,
    /// An OIDC ID token from a file.
    Oidc,
    /// A GetCallerIdentity request signed with the function's AWS credentials.
    AwsIam,
}

/// The evidence the flags and environment choose.
fn evidence(args: &AgentArgs) -> Result<Evidence, String> {
    let join_from_env = || {
        std::env::var("WRIT_JOIN_TOKEN").map(Evidence::JoinToken).map_err(|_| {
            "give --join-token-file, --oidc-token-file, --attest aws-iam, or set WRIT_JOIN_TOKEN (tokens are never flag values)"
                .to_string()
        })
    };
    let attest = args
        .attest
        .unwrap_or(match (&args.join_token_file, &args.oidc_token_file) {
            (None, Some(_)) => Attest::Oidc,
            _ => Attest::JoinToken,
        });
    if attest != Attest::AwsIam && args.aws_iam_server_id.is_some() {
        return Err("--aws-iam-server-id is for --attest aws-iam".into());
    }
    match attest {
        Attest::JoinToken => {
            if args.oidc_token_file.is_some() {
                return Err("--attest join-token: --oidc-token-file is for --attest oidc".into());
            }
            match &args.join_token_file {
                Some(f) => Ok(Evidence::JoinToken(read_secret_file(
                    f,
                    "--join-token-file",
                )?)),
                None => join_from_env(),
            }
        }
        Attest::Oidc => match (&args.oidc_token_file, &args.join_token_file) {
            (Some(f), None) => Ok(Evidence::OidcFile(f.clone())),
            (None, _) => Err("--attest oidc needs --oidc-token-file".into()),
            (Some(_), Some(_)) => {
                Err("--attest oidc: --join-token-file is for --attest join-token".into())
            }
        },
        Attest::AwsIam => {
            if args.join_token_file.is_some() || args.oidc_token_file.is_some() {
                return Err(
                    "--attest aws-iam signs with the AWS credentials in the environment: leave out --join-token-file and --oidc-token-file"
                        .into(),
                );
            }
            // Fail here, before any connection, when the credentials are not there.
            writ_client::aws_iam::AwsEnvironment::from_env()?;
            Ok(Evidence::AwsIam {
                server_id: args.aws_iam_server_id.clone(),
            })
        }
    }
}

fn outbound(text: &str) -> Result<(String, SocketAddr), String> {
    let (name, addr) = text.split_once('=').ok_or("write NAME=127.0.0.1:PORT")?;
    let addr: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "{addr}: outbound listeners take plain HTTP, so they listen on loopback only"
        ));
    }
    Ok((name.to_string(), addr))
}

fn read_secret_file(path: &PathBuf, what: &str) -> Result<String, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("{what} {}: {e}", path.display()))?;
    let text = text.trim().to_string();
    if text.is_empty() {
        return Err(format!("{what} {}: empty", path.display()));
    }
    Ok(text)
}

/// Runs the agent until Ctrl-C, SIGTERM, or Lambda's SHUTDOWN.
pub fn run(args: AgentArgs) -> Result<ExitCode, String> {
    let started = Instant::now();
    if !args.listen.ip().is_loopback() {
        return Err(format!(
            "--listen {}: the agent serves secrets, so it listens on loopback only",
            args.listen
        ));
    }
    let evidence = evidence(&args)?;
    let caller_token = match &args.caller_token_file {
        Some(f) => read_secret_file(f, "--caller-token-file")?,
        None => std::env::var("AWS_SESSION_TOKEN").map_err(|_| {
            "give --caller-token-file, or set AWS_SESSION_TOKEN (as Lambda does): callers must present it"
                .to_string()
        })?,
    };
    let config = writ_agent::Config {
        server: args.server.trim_end_matches('/').to_string(),
        ca_pem: read_secret_file(&args.ca_file, "--ca-file")?,
        function: match args.function {
            Some(f) => f,
            None => std::env::var("AWS_LAMBDA_FUNCTION_NAME").map_err(|_| {
                "give --function NAME, or set WRIT_FUNCTION (in Lambda, the function's own name \
                 is the default)"
                    .to_string()
            })?,
        },
        evidence,
        listen: args.listen,
        caller_token,
        outbound: args.outbound,
        gateway: args.gateway,
        gateway_ca_pem: args
            .gateway_ca
            .as_ref()
            .map(|p| read_secret_file(p, "--gateway-ca"))
            .transpose()?,
        svid_dir: args.svid_dir,
        cache: writ_client::secrets::CachePolicy {
            ttl: args.cache_ttl,
            refresh_after: args.cache_ttl.mul_f64(0.8),
            ..Default::default()
        },
        prefetch: args.prefetch,
        init_budget: args.init_timeout,
    };
    super::server::init_logging(false);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("could not start the runtime: {e}"))?;
    runtime.block_on(async move {
        let lambda = std::env::var("AWS_LAMBDA_RUNTIME_API").ok();
        let extension_client = reqwest::Client::new();
        // Lambda wants extensions registered during init, before anything slow.
        let extension_id = match &lambda {
            Some(api) => Some(writ_agent::extension::register(&extension_client, api).await?),
            None => None,
        };
        let (ready, _identity) = match writ_agent::start(config).await {
            Ok(started) => started,
            Err(e) => {
                // In Lambda, say why, so that the function fails its init with the cause
                // rather than running without its identity.
                if let (Some(api), Some(id)) = (&lambda, &extension_id) {
                    let kind = match &e {
                        writ_agent::StartError::Attestation(a) if a.unavailable => {
                            "Extension.WritUnavailable"
                        }
                        writ_agent::StartError::Attestation(_) => "Extension.WritAttestationRefused",
                        writ_agent::StartError::Other(_) => "Extension.WritStartFailed",
                    };
                    let message = e.to_string();
                    if let Err(report) =
                        writ_agent::extension::init_error(&extension_client, api, id, kind, &message)
                            .await
                    {
                        tracing::warn!(error = %report, "could not report the init error to Lambda");
                    }
                }
                return Err(e.to_string());
            }
        };
        let outbound: Vec<String> = ready
            .outbound
            .iter()
            .map(|(n, a)| format!("{n}=http://{a}"))
            .collect();
        println!(
            "writ: agent ready in {} ms: {} on http://{}{}{}",
            started.elapsed().as_millis(),
            ready.spiffe_id,
            ready.local,
            if outbound.is_empty() {
                ""
            } else {
                ", outbound "
            },
            outbound.join(" ")
        );
        if args.exit_when_ready {
            return Ok(ExitCode::SUCCESS);
        }
        match (&lambda, extension_id) {
            (Some(api), Some(id)) => {
                let reason =
                    writ_agent::extension::run_until_shutdown(&extension_client, api, &id).await?;
                tracing::info!(%reason, "Lambda is shutting down");
            }
            _ => super::server::shutdown_signal().await,
        }
        Ok(ExitCode::SUCCESS)
    })
}
