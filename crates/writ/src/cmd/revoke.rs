//! `writ revoke`: a function, one SVID serial, or a token.

use std::process::ExitCode;

use writ_api::endpoints::Revoke;
use writ_api::identity::RevokeRequest;

use super::client::{Client, ClientArgs, print_answer};

/// `writ revoke (--fn NAME | --serial HEX | --token-id ID)`
#[derive(clap::Args)]
#[command(after_help = "Examples:
  writ revoke --fn orders          # no more logins or renewals; its SVIDs go on the feed
  writ revoke --serial 5a:1f:...   # one X.509-SVID
  writ revoke --token-id 0123...   # a join or admin token

Revocations are published on the feed (GET /v1/revocations) that gateways and agents follow.")]
#[group(required = true, multiple = false, id = "target")]
pub struct RevokeArgs {
    /// A function's name.
    #[arg(long = "fn", group = "target")]
    function: Option<String>,
    /// An X.509-SVID's serial number, in hex.
    #[arg(long, group = "target")]
    serial: Option<String>,
    /// A token's id (the part after `writ.KIND.`).
    #[arg(long, group = "target")]
    token_id: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
}

/// Runs `writ revoke`.
pub fn run(args: RevokeArgs) -> Result<ExitCode, String> {
    let client = Client::new(&args.client)?;
    let request = match (args.function, args.serial, args.token_id) {
        (Some(f), _, _) => RevokeRequest {
            function: Some(f),
            ..RevokeRequest::default()
        },
        (_, Some(s), _) => RevokeRequest {
            serial: Some(s),
            ..RevokeRequest::default()
        },
        (_, _, Some(t)) => RevokeRequest {
            token_id: Some(t),
            ..RevokeRequest::default()
        },
        _ => return Err("give --fn, --serial or --token-id".into()),
    };
    let answer = client.send::<Revoke>(&request)?;
    if args.client.format.is_json() {
        print_answer(&answer);
    } else {
        let r = &answer.revocation;
        println!(
            "revoked {} {} (feed position {})",
            r.kind.as_str(),
            r.value,
            r.seq
        );
    }
    Ok(ExitCode::SUCCESS)
}
