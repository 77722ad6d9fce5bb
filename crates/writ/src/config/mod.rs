//! Configuration as code: functions, intentions and secrets' metadata declared in TOML or
//! YAML files ([`model`]), read with `file:line:col` in every error ([`read`], [`files`]),
//! compared with the server's state by a pure diff ([`diff`]), and written back out
//! ([`emit`]). `writ plan`, `writ apply` and `writ export` ([`crate::cmd::config`]) are
//! the shell around this core (docs/config.md).

pub mod diff;
pub mod emit;
pub mod files;
pub mod model;
pub mod read;
