//! One module per command noun.

pub mod advisories;
pub mod agent;
pub mod audit;
pub mod ca;
pub mod client;
pub mod config;
pub mod dev;
pub mod function;
pub mod gateway;
pub mod generate;
pub mod intention;
pub mod lambda;
pub mod layer;
pub mod lint;
pub mod operator;
pub mod policy;
pub mod policy_diff;
pub mod revoke;
pub mod secret;
pub mod server;
pub mod token;

/// Output format shared by every command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// For programs: one JSON document on stdout.
    Json,
}
