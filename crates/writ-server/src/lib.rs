//! writ's control plane: the function registry, attestation (join tokens, OIDC, AWS IAM), the CA
//! that signs X.509-SVIDs for callers' CSRs, JWT-SVIDs on demand, key rotation, and the
//! revocation feed, served as an HTTPS JSON API under `/v1`, with a web console at `/ui/`
//! ([`console`]).
//!
//! The functional core lives in `writ-identity` and `writ-policy`; this crate is the shell
//! around it: storage ([`store`]), TLS ([`tls`]), the API ([`api`]) and start-up
//! ([`server`]).

pub mod admin;
pub mod api;
pub mod attest;
pub mod audit;
pub mod authority;
pub mod aws;
pub mod cache;
pub mod console;
pub mod duration;
pub mod hook_destination;
pub mod master_key;
pub mod master_key_rotation;
pub mod metrics;
pub mod rotation;
pub mod server;
pub mod server_lock;
pub mod service;
pub mod state;
pub mod store;
pub mod throttle;
pub mod tls;
pub mod tokens;
