//! writ for Rust functions, in-process.
//!
//! [`secrets::SecretCache`] keeps the secrets a function reads: each is fetched once with
//! the function's identity, served from memory while fresh, refreshed in the background
//! before it expires (so rotations are picked up without a caller ever waiting), and served
//! for a bounded time past expiry while the server cannot be reached. [`fetch::HttpFetcher`]
//! fetches from `writ server` over mTLS with the function's X.509-SVID.
//!
//! [`api::ApiClient`] is the one client for writ's API (`writ_api`'s endpoints and types),
//! for this crate, the CLI, the gateway and the agent alike.
//!
//! [`identity::Identity`] attests at start (join token, OIDC token, or a GetCallerIdentity
//! request signed with the function's AWS credentials, [`aws_iam`]) and
//! [`identity::keep_fresh`] renews the X.509-SVID at half life; every client built with
//! [`fetch::mtls_client`] presents the current one. `writ agent` is built on the same.

pub mod api;
pub mod aws_iam;
pub mod fetch;
pub mod identity;
pub mod secrets;
pub mod tls_failure;
