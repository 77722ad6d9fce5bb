//! writ's HTTP API as types, with no I/O: every request and answer of the server's `/v1`
//! API, its error shape, each route as a type that says how a request travels, and the
//! OpenAPI document generated from them.
//!
//! - The domain modules hold the wire types, named as they are on the wire (camelCase):
//!   [`system`], [`identity`], [`functions`], [`tokens`], [`intentions`], [`ca`],
//!   [`audit`], [`secrets`], [`aws`], [`quotas`]; [`error`] holds the error shape every route answers with.
//!   Requests refuse unknown fields, as the server does; answers take them, so a field a
//!   newer server adds does not break an older client.
//! - [`endpoint::Endpoint`] describes one route: method, path, who may call it, and how a
//!   [`Endpoint::Request`](endpoint::Endpoint::Request) fills the path, the query string
//!   and the body. [`endpoints`] has one zero-sized type per route, and
//!   [`endpoints::all`] lists them.
//! - [`openapi::openapi`] builds the OpenAPI 3.1 document from that list and the types'
//!   schemas, so the document and the types cannot disagree.
//!
//! Types that writ's core crates already serialize in the wire shape are reused, not
//! copied: [`writ_audit::Event`], [`writ_audit::Outcome`], [`writ_audit::chain::Record`],
//! [`writ_audit::checkpoint::Checkpoint`] and [`writ_audit::checkpoint::PublicKey`] in the
//! audit log's routes, and [`writ_policy::intentions::Intention`] in the intentions'.
//! Their schemas are in [`schemas`].

pub mod audit;
pub mod aws;
pub mod ca;
pub mod endpoint;
pub mod endpoints;
pub mod error;
pub mod functions;
pub mod gateways;
pub mod identity;
pub mod intentions;
pub mod openapi;
pub mod quotas;
pub mod schemas;
pub mod secrets;
pub mod system;
pub mod tokens;

pub use endpoint::{Callers, Endpoint, EndpointInfo, NoBody, NoContent, NoRequest};
pub use endpoints::all;
pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use openapi::openapi;
