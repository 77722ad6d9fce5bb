//! `writ dev`: the whole system on one machine.
//!
//! The gateway and agent it starts are not built yet, and this command says so rather than
//! pretending: it exits with an error that points at what works today.

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
        "`writ dev` is not built yet: the gateway and agent it starts are still to come. What \
         works today is the policy engine (`writ policy validate|simulate`) and the control \
         plane: `writ server --data-dir DIR --trust-domain example.org`, then `writ fn`, \
         `writ token`, `writ secret` and `writ audit` (see README.md)."
            .into(),
    )
}
