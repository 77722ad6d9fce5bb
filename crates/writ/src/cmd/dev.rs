//! `writ dev`: the whole system on one machine.
//!
//! The server, gateway and agent it starts are not built yet, and this command says so
//! rather than pretending: it exits with an error that points at what works today.

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `writ dev`.
#[derive(clap::Args)]
pub struct DevArgs {
    /// Directory for the embedded store (a temporary directory when omitted).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// Explains that `writ dev` is not available yet.
pub fn run(args: DevArgs) -> Result<ExitCode, String> {
    let _ = args.data_dir;
    Err(
        "`writ dev` is not built yet: the server, gateway and agent it starts are still to \
         come. What works today is the policy engine: try `writ policy validate FILE` and \
         `writ policy simulate --policy FILE --action ACTION --resource ARN` (see README.md)."
            .into(),
    )
}
