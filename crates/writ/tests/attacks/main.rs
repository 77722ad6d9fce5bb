//! The attack regression suite: each case is an attack that once worked against writ (or a
//! close variant of one), run against the real binaries on loopback, and the refusal that
//! must now answer it. Cases are grouped by the surface they attack, one module each, so
//! the next finding is one more test in the module of its surface.
//!
//! | module | surface |
//! |---|---|
//! | `agent_listeners` | the agent's local listeners: what a local caller or a browser page can make it do |
//! | `audit_intake` | the events gateways and agents report to the audit log |
//! | `gateway_http` | the gateway's HTTP surface before and after authentication |
//! | `jwt` | JWT-SVIDs: audiences, replay |
//! | `operator_scopes` | admin tokens scoped by policy: what an operator may grant a function |
//! | `rotation_hooks` | where secret rotation hooks can make the server connect |
//! | `server_http` | the server's HTTP surface: headers, methods, query strings, bodies |
//! | `startup` | what the server does with its data directory and master key |
//! | `storage` | the server's store: `kill -9` during secret writes, a store that stops taking writes, a full disk and a read-only data dir (root only, ignored by default) |

#[path = "../common/mod.rs"]
mod common;

mod agent_listeners;
mod audit_intake;
mod gateway_http;
mod jwt;
mod operator_scopes;
mod rotation_hooks;
mod server_http;
mod startup;
mod storage;
