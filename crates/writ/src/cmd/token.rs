//! `writ token create`: join tokens for functions, and scoped admin tokens for operators.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::Value;
use writ_api::endpoints::{CreateAdminToken, CreateJoinToken};
use writ_api::functions::FunctionName;
use writ_api::tokens::{AdminTokenRequest, JoinTokenFor, JoinTokenRequest};

use super::client::{Client, ClientArgs, print_answer};

/// `writ token ...`
#[derive(clap::Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(clap::Subcommand)]
enum TokenCommand {
    /// Create a one-time join token for a function (--fn), or an admin token (--policy).
    #[command(after_help = "Examples:
  writ token create --fn orders --ttl 10m
  writ token create --policy team-a-operators.json --ttl 8h --description 'team A on-call'

The token is printed once. A join token works for one login; an admin token is authorized by
its IAM-language policies (actions such as writ:RegisterFunction; see docs/server.md).")]
    Create {
        /// The function a join token is for.
        #[arg(
            long = "fn",
            conflicts_with = "policy",
            required_unless_present = "policy"
        )]
        function: Option<String>,
        /// A policy file for an admin token (repeatable).
        #[arg(long)]
        policy: Vec<PathBuf>,
        /// Lifetime (join tokens default to 10m; admin tokens do not expire by default).
        #[arg(long)]
        ttl: Option<String>,
        /// A note for the admin token.
        #[arg(long, default_value = "")]
        description: String,
    },
}

/// Runs `writ token`.
pub fn run(args: TokenArgs) -> Result<ExitCode, String> {
    let client = Client::new(&args.client)?;
    let TokenCommand::Create {
        function,
        policy,
        ttl,
        description,
    } = args.command;
    let answer = if let Some(name) = function {
        client.send::<CreateJoinToken>(&JoinTokenFor {
            function: FunctionName(name),
            request: JoinTokenRequest { ttl },
        })?
    } else {
        let mut docs = Vec::new();
        for path in &policy {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("--policy {}: {e}", path.display()))?;
            docs.push(Value::String(text));
        }
        client.send::<CreateAdminToken>(&AdminTokenRequest {
            policies: docs,
            ttl,
            description,
        })?
    };
    if args.client.format.is_json() {
        print_answer(&answer);
    } else {
        println!("{}", answer.token);
        eprintln!(
            "token id {} expires {}",
            answer.id,
            answer.expires_at.as_deref().unwrap_or("never")
        );
    }
    Ok(ExitCode::SUCCESS)
}
