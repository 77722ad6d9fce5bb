//! `writ lambda`: a local Lambda host with writ enforcing every invocation.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use writ_lambda::auth::Authorizer;
use writ_lambda::definition::{self, HostConfig};
use writ_lambda::host::{HostSettings, serve};
use writ_lambda::invoke::RetrySchedule;

/// `writ lambda --template template.yaml [--config FILE] [--listen ADDR]`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  writ lambda --template template.yaml --credentials lambda-credentials.toml
  writ lambda --template template.yaml --config lambda.toml --listen 127.0.0.1:3001
  aws lambda invoke --endpoint-url http://127.0.0.1:3001 --function-name Hello out.json

Functions come from the template's AWS::Serverless::Function resources and the config's
[functions.NAME] tables. Every invocation must be SigV4-signed by an access key of the
credentials file (interim, until writ's server issues AWS credentials) and allowed
(lambda:InvokeFunction) by the caller's identity policies or the function's resource policy
(AWS::Lambda::Permission). Every decision is appended to --audit-log. See docs/lambda.md.")]
pub struct LambdaArgs {
    /// The SAM template (YAML or JSON).
    #[arg(long, env = "WRIT_LAMBDA_TEMPLATE")]
    template: Option<PathBuf>,
    /// The host's config (TOML): region, account, runtimes, functions and their settings.
    #[arg(long, env = "WRIT_LAMBDA_CONFIG")]
    config: Option<PathBuf>,
    /// The credentials file (TOML, mode 0600): access key ids, secrets, principals and their
    /// identity policies. Interim, until writ's server issues AWS credentials. Without it,
    /// every invocation is refused.
    #[arg(long, env = "WRIT_LAMBDA_CREDENTIALS")]
    credentials: Option<PathBuf>,
    /// Where to serve the Invoke API.
    #[arg(long, default_value = "127.0.0.1:3001")]
    listen: String,
    /// The data dir: the default home of the audit log and the failure directory.
    #[arg(long, env = "WRIT_DATA_DIR", default_value = "writ-data")]
    data_dir: PathBuf,
    /// The JSON-lines file every decision is appended to (default DATA_DIR/lambda-audit.jsonl).
    #[arg(long)]
    audit_log: Option<PathBuf>,
    /// Print the functions and settings as read, and exit.
    #[arg(long)]
    print_config: bool,
}

fn read(path: &Path, what: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{what} {}: {e}", path.display()))
}

fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Runs `writ lambda`.
pub fn run(args: LambdaArgs) -> Result<ExitCode, String> {
    if args.template.is_none() && args.config.is_none() {
        return Err("give --template FILE and/or --config FILE (see `writ lambda --help`)".into());
    }
    let mut functions = Vec::new();
    if let Some(t) = &args.template {
        let text = read(t, "--template")?;
        functions = definition::parse_template(&t.display().to_string(), &dir_of(t), &text)
            .map_err(|e| e.to_string())?;
    }
    let (config, config_name, config_dir) = match &args.config {
        Some(c) => {
            let text = read(c, "--config")?;
            let name = c.display().to_string();
            (
                definition::parse_config(&name, &text).map_err(|e| e.to_string())?,
                name,
                dir_of(c),
            )
        }
        None => (
            HostConfig::default(),
            "(no config)".into(),
            PathBuf::from("."),
        ),
    };
    let functions = definition::merge(functions, &config, &config_name, &config_dir)
        .map_err(|e| e.to_string())?;
    if functions.is_empty() {
        return Err("no function: the template has no AWS::Serverless::Function and the config no [functions.NAME]".into());
    }
    let credentials = match &args.credentials {
        Some(path) => {
            check_private(path)?;
            Some((path.display().to_string(), read(path, "--credentials")?))
        }
        None => None,
    };
    let authorizer = Authorizer::new(
        credentials.as_ref().map(|(n, t)| (n.as_str(), t.as_str())),
        &functions,
        &config.region,
        &config.account_id,
    )
    .map_err(|e| e.to_string())?;
    let failure_dir = config
        .on_failure_dir
        .as_ref()
        .map(|d| config_dir.join(d))
        .unwrap_or_else(|| args.data_dir.join("lambda-failures"));
    let audit_log = args
        .audit_log
        .clone()
        .unwrap_or_else(|| args.data_dir.join("lambda-audit.jsonl"));
    let mut delays = Vec::new();
    for (i, d) in config.retry_delays_seconds.iter().enumerate() {
        if !d.is_finite() || *d < 0.0 || *d > 21_600.0 {
            return Err(format!(
                "{config_name}: retry_delays_seconds[{i}] must be 0 to 21600 seconds"
            ));
        }
        delays.push(Duration::from_secs_f64(*d));
    }
    if args.print_config {
        for f in &functions {
            println!(
                "{}: runtime {} handler {} code {} timeout {}s memory {} MB environments <= {} resource-policy statements {}",
                f.name,
                f.runtime,
                f.handler,
                f.code_dir.display(),
                f.timeout_seconds,
                f.memory_mb,
                f.max_environments,
                f.permissions.len()
            );
        }
        println!("region {} account {}", config.region, config.account_id);
        println!("failure dir {}", failure_dir.display());
        println!("audit log {}", audit_log.display());
        println!("retry delays {:?}", delays);
        println!("callers in the credentials file: {}", authorizer.callers());
        return Ok(ExitCode::SUCCESS);
    }
    super::server::init_logging(false);
    for f in &functions {
        if !f.layers.is_empty() {
            tracing::warn!(function = %f.name, layers = ?f.layers, "layers are not mounted by the local host; their code is not available to the function");
        }
    }
    if args.credentials.is_none() {
        tracing::warn!(
            "no --credentials file: every invocation will be refused (the host authenticates callers by SigV4 against that file)"
        );
    }
    let settings = HostSettings {
        region: config.region.clone(),
        account: config.account_id.clone(),
        functions,
        runtimes: config.runtimes.clone(),
        failure_dir,
        retry: RetrySchedule::new(delays),
        audit_log,
        authorizer,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("could not start the runtime: {e}"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .map_err(|e| format!("--listen {}: {e}", args.listen))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        println!("writ: lambda host listening on http://{addr}");
        serve(listener, settings, super::server::shutdown_signal())
            .await
            .map_err(|e| format!("lambda host: {e}"))?;
        Ok(ExitCode::SUCCESS)
    })
}

/// The credentials file holds secrets: refuse it when group or others may read it.
fn check_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta =
        std::fs::metadata(path).map_err(|e| format!("--credentials {}: {e}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "--credentials {}: mode {mode:04o} lets others read the secrets in it; run chmod 600 {}",
            path.display(),
            path.display()
        ));
    }
    Ok(())
}
