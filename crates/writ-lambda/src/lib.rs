//! `writ lambda`: a local AWS Lambda host with writ enforcing every invocation.
//!
//! The functional core does no I/O: [`definition`] reads functions from a SAM template and a
//! TOML config, [`environment`] is the state machine of one execution environment,
//! [`invoke`] maps the Invoke API's requests and answers (and the retry schedule of
//! asynchronous invocations), and [`auth`] authenticates callers by SigV4 and decides
//! `lambda:InvokeFunction` with writ's policy engine. [`host`] is the shell: the Invoke API,
//! one Runtime API per execution environment, runtime processes, the asynchronous queue
//! and the audit file.
//!
//! The shell also serves the Extensions API beside each Runtime API. Not built yet: layers,
//! the Telemetry and Logs APIs, function URLs, versions and aliases, and `LogType: Tail`.

pub mod auth;
pub mod definition;
pub mod environment;
pub mod host;
pub mod invoke;
pub mod yaml;
