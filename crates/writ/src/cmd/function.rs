//! `writ fn`: register, list, show and delete functions.

use std::path::PathBuf;
use std::process::ExitCode;

use reqwest::Method;
use serde_json::{Value, json};

use super::client::{Client, ClientArgs, ClientFormat, print_json};

/// `writ fn ...`
#[derive(clap::Args)]
pub struct FnArgs {
    #[command(subcommand)]
    command: FnCommand,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(clap::Subcommand)]
enum FnCommand {
    /// Register a function: its identity becomes spiffe://TRUST-DOMAIN/fn/NAME.
    #[command(after_help = "Examples:
  writ fn register orders                       # join tokens only
  writ fn register orders --attestation rules.json --x509-ttl 30m

rules.json is a JSON array of rules, e.g.
  [{\"type\": \"joinToken\"},
   {\"type\": \"oidc\", \"issuer\": \"https://token.actions.githubusercontent.com\",
    \"jwksUrl\": \"https://token.actions.githubusercontent.com/.well-known/jwks\",
    \"audience\": \"writ\", \"subject\": \"repo:acme/orders:ref:refs/heads/main\"}]")]
    Register {
        /// The function's name: lowercase letters, digits, '-' and '_'.
        name: String,
        /// A JSON file with the attestation rules (default: join tokens).
        #[arg(long)]
        attestation: Option<PathBuf>,
        /// X.509-SVID lifetime for this function (default: the server's).
        #[arg(long)]
        x509_ttl: Option<String>,
        /// An identity policy file: what the function may do, such as reading a secret
        /// (repeatable; none means nothing).
        #[arg(long)]
        policy: Vec<PathBuf>,
    },
    /// List functions.
    List,
    /// Show one function.
    Show {
        /// The function's name.
        name: String,
    },
    /// Delete a function and its join tokens.
    Delete {
        /// The function's name.
        name: String,
    },
}

/// Runs `writ fn`.
pub fn run(args: FnArgs) -> Result<ExitCode, String> {
    let client = Client::new(&args.client)?;
    let format = args.client.format;
    match args.command {
        FnCommand::Register {
            name,
            attestation,
            x509_ttl,
            policy,
        } => {
            let mut body = json!({"name": name});
            if let Some(path) = attestation {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("--attestation {}: {e}", path.display()))?;
                let rules: Value = serde_json::from_str(&text).map_err(|e| {
                    format!(
                        "--attestation {}:{}:{}: {e}",
                        path.display(),
                        e.line(),
                        e.column()
                    )
                })?;
                body["attestation"] = rules;
            }
            if let Some(ttl) = x509_ttl {
                body["x509Ttl"] = json!(ttl);
            }
            let mut docs = Vec::new();
            for path in &policy {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("--policy {}: {e}", path.display()))?;
                docs.push(Value::String(text));
            }
            if !docs.is_empty() {
                body["policies"] = Value::Array(docs);
            }
            let f = client.call(Method::POST, "/v1/functions", Some(body))?;
            show(&f, format, true);
        }
        FnCommand::List => {
            let all = client.call(Method::GET, "/v1/functions", None)?;
            if format.is_json() {
                print_json(&all);
            } else {
                let list = all["functions"].as_array().cloned().unwrap_or_default();
                if list.is_empty() {
                    println!("no functions registered");
                }
                for f in list {
                    let methods: Vec<&str> = f["attestation"]
                        .as_array()
                        .map(|r| r.iter().filter_map(|r| r["type"].as_str()).collect())
                        .unwrap_or_default();
                    let state = if f["revokedAt"].is_null() {
                        ""
                    } else {
                        "  REVOKED"
                    };
                    println!(
                        "{:<24} {:<48} {}{state}",
                        f["name"].as_str().unwrap_or(""),
                        f["spiffeId"].as_str().unwrap_or(""),
                        methods.join(",")
                    );
                }
            }
        }
        FnCommand::Show { name } => {
            let f = client.call(Method::GET, &format!("/v1/functions/{name}"), None)?;
            show(&f, format, false);
        }
        FnCommand::Delete { name } => {
            client.call(Method::DELETE, &format!("/v1/functions/{name}"), None)?;
            if format.is_json() {
                print_json(&json!({"deleted": name}));
            } else {
                println!("deleted function {name}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn show(f: &Value, format: ClientFormat, registered: bool) {
    if format.is_json() {
        print_json(f);
        return;
    }
    if registered {
        println!("registered {}", f["spiffeId"].as_str().unwrap_or(""));
    }
    println!("name:        {}", f["name"].as_str().unwrap_or(""));
    println!("spiffe id:   {}", f["spiffeId"].as_str().unwrap_or(""));
    println!("x509 ttl:    {}", f["x509Ttl"].as_str().unwrap_or(""));
    println!("created:     {}", f["createdAt"].as_str().unwrap_or(""));
    if let Some(r) = f["revokedAt"].as_str() {
        println!("revoked:     {r}");
    }
    println!(
        "attestation: {}",
        serde_json::to_string(&f["attestation"]).unwrap_or_default()
    );
    let policies = f["policies"].as_array().map_or(0, Vec::len);
    match f["permissionsBoundary"].as_array() {
        Some(boundary) => println!(
            "policies:    {policies}, bounded by the {} of the token that set them (--format json shows them)",
            if boundary.len() == 1 {
                "policy".to_string()
            } else {
                format!("{} policies", boundary.len())
            }
        ),
        None => println!("policies:    {policies}"),
    }
}
