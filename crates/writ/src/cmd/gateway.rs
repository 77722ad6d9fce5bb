//! `writ gateway`: the data plane in front of functions.

use std::path::PathBuf;
use std::process::ExitCode;

/// `writ gateway --config FILE`, or `writ gateway apikey ID`.
#[derive(clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:
  writ gateway --config gateway.toml
  writ gateway --config gateway.toml --print-config
  kill -HUP $(pidof writ)       # reload the routes, usage plans and API keys from the file
  writ gateway apikey partner-a --route partners   # a new API key, and its entry for gateway.toml

Every request is authenticated (mTLS with an X.509-SVID, a JWT-SVID, an HMAC-signed webhook
or an API key, per route), authorized by intentions, checked (body size, JSON Schema),
rate-limited, forwarded with x-writ-caller set to the verified caller, and audited. See
docs/gateway.md for the configuration."
)]
pub struct GatewayArgs {
    /// The configuration file (TOML).
    #[arg(long, env = "WRIT_GATEWAY_CONFIG")]
    config: Option<PathBuf>,
    /// Print the configuration as read, in the file's format (TOML: paths resolved,
    /// defaults filled; API keys only as their hashes), and exit.
    #[arg(long)]
    print_config: bool,
    /// This gateway's name in audit events (default: the host name).
    #[arg(long, env = "WRIT_NODE")]
    node: Option<String>,
    #[command(subcommand)]
    command: Option<GatewayCommand>,
}

#[derive(clap::Subcommand)]
enum GatewayCommand {
    /// Make a new API key: prints the key once (give it to the caller) and the [[api_key]]
    /// entry, which holds only its hash, for the gateway's configuration.
    Apikey {
        /// The key's id, e.g. partner-a.
        id: String,
        /// The usage plan to put in the entry.
        #[arg(long, default_value = "default")]
        plan: String,
        /// A route the key may call (repeatable; at least one).
        #[arg(long = "route", required = true)]
        routes: Vec<String>,
    },
}

/// Runs `writ gateway`.
pub fn run(args: GatewayArgs) -> Result<ExitCode, String> {
    if let Some(GatewayCommand::Apikey { id, plan, routes }) = args.command {
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!("{id:?}: an API key id is letters, digits, - and _"));
        }
        let mut secret = [0u8; 24];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret)
            .map_err(|_| "the system random source failed".to_string())?;
        let secret = writ_audit::hex(&secret);
        println!("writ.apikey.{id}.{secret}");
        eprintln!(
            "writ: add to the gateway's configuration (the key above is not stored anywhere):\n\n[[api_key]]\nid = \"{id}\"\nhash = \"{}\"\nplan = \"{plan}\"\nroutes = {routes:?}",
            writ_gateway::authn::api_key_hash(&secret)
        );
        return Ok(ExitCode::SUCCESS);
    }
    let path = args
        .config
        .ok_or("give --config FILE (see `writ gateway --help`)")?;
    let config = writ_gateway::config::load(&path)?;
    if args.print_config {
        print!("{}", writ_gateway::config::to_toml(&config)?);
        return Ok(ExitCode::SUCCESS);
    }
    super::server::init_logging(false);
    let node = args.node.unwrap_or_else(super::server::host_name);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("could not start the runtime: {e}"))?;
    runtime.block_on(async move {
        let bound = writ_gateway::serve::bind(config, node).await?;
        tokio::spawn(writ_gateway::serve::reload_on_hangup(
            path.clone(),
            bound.gateway(),
        ));
        println!("writ: gateway listening on https://{}", bound.addr);
        if let Some(m) = bound.metrics_addr {
            println!("writ: metrics on http://{m}/metrics");
        }
        bound.serve(super::server::shutdown_signal()).await;
        Ok(ExitCode::SUCCESS)
    })
}
