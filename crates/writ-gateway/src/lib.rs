//! writ's gateway: in front of functions, every request is authenticated (mTLS with an
//! X.509-SVID, a JWT-SVID, an HMAC-signed webhook or an API key), authorized by intentions
//! (compiled to policy statements, so one engine decides), checked (size, JSON Schema),
//! rate-limited, forwarded with the verified caller's identity, and recorded.
//!
//! The control-plane state is followed from `writ server` and kept on disk: while the
//! server is unreachable the gateway enforces the last known state, up to a staleness
//! bound, then refuses (fail static).

pub mod audit;
pub mod authn;
pub mod aws_credentials;
pub mod config;
pub mod control;
pub mod http1;
pub mod intentions;
pub mod lambda;
pub mod limits;
pub mod metrics;
pub mod own_cert;
pub mod path;
pub mod proxy;
pub mod quota_lease;
pub mod serve;
pub mod sync;
pub mod tls;
pub mod upstream;
