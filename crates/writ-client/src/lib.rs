//! writ for Rust functions, in-process.
//!
//! [`secrets::SecretCache`] keeps the secrets a function reads: each is fetched once with
//! the function's identity, served from memory while fresh, refreshed in the background
//! before it expires (so rotations are picked up without a caller ever waiting), and served
//! for a bounded time past expiry while the server cannot be reached. [`fetch::HttpFetcher`]
//! fetches from `writ server` over mTLS with the function's X.509-SVID.
//!
//! Identity (attestation, SVID renewal) and the authenticated HTTP client come with the
//! agent; until then the caller gives the fetcher its SVID and may replace it with
//! [`fetch::SvidSource::update`] when it renews.

pub mod fetch;
pub mod secrets;
