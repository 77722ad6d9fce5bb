//! `writ ca show|rotate`: the trust domain's signing keys.

use std::process::ExitCode;

use writ_api::ca::{RotateCaRequest, RotateKind};
use writ_api::endpoints::{DescribeCa, RotateCa};

use super::client::{Client, ClientArgs, print_answer};

/// `writ ca ...`
#[derive(clap::Args)]
pub struct CaArgs {
    #[command(subcommand)]
    command: CaCommand,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(clap::Subcommand)]
enum CaCommand {
    /// Show the signing keys and the trust bundle.
    #[command(after_help = "Examples:
  writ ca show
  writ ca show --bundle > ca.pem     # the X.509 trust bundle only")]
    Show {
        /// Print only the X.509 trust bundle (PEM).
        #[arg(long)]
        bundle: bool,
    },
    /// Make a new CA and/or JWT key. It is published at once and signs after --activate-after;
    /// the old key stays in the bundle until everything it signed has expired.
    #[command(after_help = "Examples:
  writ ca rotate                          # both, signing in 1m
  writ ca rotate --kind x509 --activate-after 0s")]
    Rotate {
        /// Which keys: x509, jwt or all.
        #[arg(long, default_value = "all", value_parser = ["x509", "jwt", "all"])]
        kind: String,
        /// How long the new key is published before it signs (0s: at once).
        #[arg(long, default_value = "1m")]
        activate_after: String,
    },
}

/// Runs `writ ca`.
pub fn run(args: CaArgs) -> Result<ExitCode, String> {
    let client = Client::new(&args.client)?;
    let format = args.client.format;
    let (answer, bundle_only) = match args.command {
        CaCommand::Show { bundle } => (client.send::<DescribeCa>(&writ_api::NoRequest)?, bundle),
        CaCommand::Rotate {
            kind,
            activate_after,
        } => {
            let kind = RotateKind::from_name(&kind)
                .ok_or_else(|| format!("--kind {kind:?}: give x509, jwt or all"))?;
            (
                client.send::<RotateCa>(&RotateCaRequest {
                    kind,
                    activate_after: Some(activate_after),
                })?,
                false,
            )
        }
    };
    if bundle_only {
        print!("{}", answer.x509_bundle);
    } else if format.is_json() {
        print_answer(&answer);
    } else {
        println!("trust domain: {}", answer.trust_domain);
        println!(
            "{:<6} {:<22} {:<10} {:<22} published until",
            "kind", "id", "status", "active from"
        );
        for k in &answer.keys {
            let short: String = k.id.chars().take(20).collect();
            println!(
                "{:<6} {:<22} {:<10} {:<22} {}",
                k.kind.as_str(),
                short,
                k.status.as_str(),
                k.active_from,
                k.published_until.as_deref().unwrap_or("-"),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
