//! The attack regression suite: each case is an attack that once worked against writ (or a
//! close variant of one), run against the real binaries on loopback, and the refusal that
//! must now answer it. Cases are grouped by the surface they attack, one module each, so
//! the next finding is one more test in the module of its surface.
//!
//! | module | surface |
//! |---|---|
//! | `jwt` | JWT-SVIDs: audiences, replay |
//! | `gateway_http` | the gateway's HTTP surface before and after authentication |

#[path = "../common/mod.rs"]
mod common;
mod gateway_http;
mod jwt;
