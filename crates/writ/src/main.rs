//! `writ`: zero-trust identity, authorization and secrets for serverless functions.
//!
//! This binary is the shell around writ's core crates: it parses the command line, reads
//! files, and renders results for people (`--format text`) or programs (`--format json`).

mod cmd;
mod config;
mod input;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// mimalloc rather than glibc's allocator: under load the gateway spent a sixth of its time
/// in glibc's malloc and free (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Zero-trust identity, authorization and secrets for serverless functions.
#[derive(Parser)]
#[command(name = "writ", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate, simulate and explain AWS IAM policies, offline.
    #[command(subcommand)]
    Policy(cmd::policy::PolicyCommand),
    /// Run the control plane: registry, attestation, SVID issuance, rotation, revocation.
    Server(cmd::server::ServerArgs),
    /// Register, update, list, show, delete and reinstate functions.
    Fn(cmd::function::FnArgs),
    /// Show what `writ apply` would change: declared configuration against the server.
    Plan(cmd::config::PlanArgs),
    /// Make the server's functions, intentions and secrets' policies what the files declare.
    Apply(cmd::config::ApplyArgs),
    /// Write the server's functions, intentions and secrets' metadata as configuration.
    Export(cmd::config::ExportArgs),
    /// Create join tokens and admin tokens.
    Token(cmd::token::TokenArgs),
    /// Revoke a function, an SVID serial or a token.
    Revoke(cmd::revoke::RevokeArgs),
    /// Show and rotate the trust domain's CA and JWT keys.
    Ca(cmd::ca::CaArgs),
    /// Tail, verify and export the tamper-evident audit log.
    Audit(cmd::audit::AuditArgs),
    /// Allow or deny calls between functions, Consul style, and check a call.
    Intention(cmd::intention::IntentionArgs),
    /// Store and read secrets: envelope-encrypted, versioned, policy-guarded.
    Secret(cmd::secret::SecretArgs),
    /// Run beside one function: its identity, secrets on localhost, calls over mTLS.
    Agent(cmd::agent::AgentArgs),
    /// Run the gateway in front of functions: authenticate, authorize, check, forward.
    Gateway(cmd::gateway::GatewayArgs),
    /// Run Lambda handlers locally (Runtime and Invoke APIs), every invocation authorized.
    Lambda(cmd::lambda::LambdaArgs),
    /// Package writ agent as an AWS Lambda extension layer.
    Layer(cmd::layer::LayerArgs),
    /// Maintain a stopped deployment: rotate the master key.
    Operator(cmd::operator::OperatorArgs),
    /// Run the whole system on this machine with two demo functions.
    Dev(cmd::dev::DevArgs),
    /// Scan Terraform, CloudFormation/SAM and IAM JSON for serverless security mistakes.
    ///
    /// Exits 0 when nothing at or above --severity remains, 1 when something does (or a
    /// file does not parse), 2 on usage errors.
    ///
    /// Examples:
    ///   writ lint infra/
    ///   writ lint --severity high --format sarif . > writ-lint.sarif
    ///   writ lint --write-baseline .writ-lint-baseline.json .
    ///   writ lint --baseline .writ-lint-baseline.json --format junit . > lint.xml
    #[command(verbatim_doc_comment)]
    Lint(cmd::lint::LintArgs),
    /// Download OSV advisories for `writ lint --deps` (resumable; lint then works offline).
    Advisories(cmd::advisories::AdvisoriesArgs),
    /// Print shell completions for bash, zsh, fish, elvish or PowerShell.
    Completions(cmd::generate::CompletionsArgs),
    /// Print writ's manual page (roff), or write one per command with --out-dir.
    Man(cmd::generate::ManArgs),
}

fn main() -> ExitCode {
    quiet_on_closed_stdout();
    // One TLS stack, one provider: ring, for every client and server in the process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Policy(c) => cmd::policy::run(c),
        Command::Server(args) => cmd::server::run(args),
        Command::Fn(args) => cmd::function::run(args),
        Command::Plan(args) => cmd::config::plan(args),
        Command::Apply(args) => cmd::config::apply(args),
        Command::Export(args) => cmd::config::export(args),
        Command::Token(args) => cmd::token::run(args),
        Command::Revoke(args) => cmd::revoke::run(args),
        Command::Ca(args) => cmd::ca::run(args),
        Command::Audit(args) => cmd::audit::run(args),
        Command::Intention(args) => cmd::intention::run(args),
        Command::Secret(args) => cmd::secret::run(args),
        Command::Agent(args) => cmd::agent::run(args),
        Command::Gateway(args) => cmd::gateway::run(args),
        Command::Lambda(args) => cmd::lambda::run(args),
        Command::Layer(args) => cmd::layer::run(args),
        Command::Operator(args) => cmd::operator::run(args),
        Command::Dev(args) => cmd::dev::run(args),
        Command::Lint(args) => cmd::lint::run(args),
        Command::Advisories(args) => cmd::advisories::run(args),
        Command::Completions(args) => cmd::generate::completions(args, Cli::command()),
        Command::Man(args) => cmd::generate::man(args, Cli::command()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("writ: error: {e}");
            ExitCode::from(1)
        }
    }
}

/// `writ fn list | head -1` closes the pipe while writ still prints; Rust ignores SIGPIPE,
/// so `println!` panics on the broken pipe. A reader that stopped reading is no error of
/// writ's: exit quietly, as `ls` or `rg` would, and leave every other panic as it was.
fn quiet_on_closed_stdout() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        previous(info);
    }));
}
