//! `writ gateway`: the data plane in front of functions.

use std::path::PathBuf;
use std::process::ExitCode;

use writ_api::endpoints::{CreateGatewayJoinToken, ListGateways, RegisterGateway};
use writ_api::gateways::{Gateway, GatewayJoinTokenFor, GatewayName, RegisterGatewayRequest};
use writ_api::tokens::JoinTokenRequest;

use super::client::{Client, ClientArgs, print_answer};

/// `writ gateway --config FILE`, or `writ gateway apikey ID`.
#[derive(clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:
  writ gateway --config gateway.toml
  writ gateway --config gateway.toml --print-config
  kill -HUP $(pidof writ)       # reload the routes, usage plans and API keys from the file
  writ gateway apikey partner-a --route partners   # a new API key, and its entry for gateway.toml
  writ gateway register edge --dns gw.internal --ip 127.0.0.1   # its certificate from writ
  writ gateway join-token edge > edge.token          # for [tls] from_writ in gateway.toml

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
    /// Register a gateway: its identity becomes spiffe://TRUST-DOMAIN/writ/gateway/NAME, and
    /// the certificate writ issues it carries exactly the DNS names and IP addresses given
    /// here (a gateway cannot get one for any other name).
    #[command(after_help = "Examples:
  writ gateway register edge --dns gw.internal --ip 127.0.0.1
  writ gateway register edge --dns gw.example.org --attestation rules.json --x509-ttl 1h

rules.json is a JSON array of attestation rules, as for `writ fn register` (join tokens when
absent). The gateway then logs in with [tls] from_writ in its configuration (docs/gateway.md).")]
    Register {
        /// The gateway's name: lowercase letters, digits, '-' and '_'.
        name: String,
        /// A DNS name its certificate carries (repeatable).
        #[arg(long = "dns", value_name = "NAME")]
        dns: Vec<String>,
        /// An IP address its certificate carries (repeatable).
        #[arg(long = "ip", value_name = "ADDRESS")]
        ips: Vec<String>,
        /// A JSON file with the attestation rules (default: join tokens).
        #[arg(long)]
        attestation: Option<PathBuf>,
        /// The lifetime of its certificates (default: the server's).
        #[arg(long)]
        x509_ttl: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List the registered gateways.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Make a one-time join token for a gateway (printed once), for [tls] from_writ's
    /// token_file. It logs in as this gateway only, never as a function.
    JoinToken {
        /// The gateway's name.
        name: String,
        /// How long it is valid until used (default 10m, at most 7d).
        #[arg(long)]
        ttl: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// Runs the subcommands that talk to the server.
fn run_client(command: GatewayCommand) -> Result<ExitCode, String> {
    match command {
        GatewayCommand::Register {
            name,
            dns,
            ips,
            attestation,
            x509_ttl,
            client,
        } => {
            let attestation = match attestation {
                Some(path) => super::function::read_rules(&path)?,
                None => writ_api::functions::default_rules(),
            };
            let request = RegisterGatewayRequest {
                name,
                attestation,
                dns,
                ips,
                x509_ttl,
            };
            let g = Client::new(&client)?.send::<RegisterGateway>(&request)?;
            if client.format.is_json() {
                print_answer(&g);
            } else {
                println!("registered {}", g.spiffe_id);
                show(&g);
            }
        }
        GatewayCommand::List { client } => {
            let all = Client::new(&client)?.send::<ListGateways>(&writ_api::NoRequest)?;
            if client.format.is_json() {
                print_answer(&all);
            } else {
                if all.gateways.is_empty() {
                    println!("no gateways registered");
                }
                for g in &all.gateways {
                    let names: Vec<&str> = g
                        .dns
                        .iter()
                        .chain(g.ips.iter())
                        .map(String::as_str)
                        .collect();
                    println!("{:<24} {:<56} {}", g.name, g.spiffe_id, names.join(","));
                }
            }
        }
        GatewayCommand::JoinToken { name, ttl, client } => {
            let answer =
                Client::new(&client)?.send::<CreateGatewayJoinToken>(&GatewayJoinTokenFor {
                    gateway: GatewayName(name),
                    request: JoinTokenRequest { ttl },
                })?;
            if client.format.is_json() {
                print_answer(&answer);
            } else {
                println!("{}", answer.token);
                eprintln!(
                    "token id {} expires {}",
                    answer.id,
                    answer.expires_at.as_deref().unwrap_or("never")
                );
            }
        }
        GatewayCommand::Apikey { .. } => {
            return Err("apikey does not talk to the server".into());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn show(g: &Gateway) {
    println!("name:        {}", g.name);
    println!("spiffe id:   {}", g.spiffe_id);
    println!("dns:         {}", g.dns.join(", "));
    println!("ips:         {}", g.ips.join(", "));
    println!("x509 ttl:    {}", g.x509_ttl);
    println!("created:     {}", g.created_at);
    println!(
        "attestation: {}",
        serde_json::to_string(&g.attestation).unwrap_or_default()
    );
}

/// Runs `writ gateway`.
pub fn run(args: GatewayArgs) -> Result<ExitCode, String> {
    if let Some(
        command @ (GatewayCommand::Register { .. }
        | GatewayCommand::List { .. }
        | GatewayCommand::JoinToken { .. }),
    ) = args.command
    {
        return run_client(command);
    }
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
