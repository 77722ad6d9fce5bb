//! What the gateway tests set up alike: the gateway's server token, the callers' SVIDs, a
//! running gateway and requests to it.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::{Curl, Proc, Server, Svid, TRUST_DOMAIN, TempDir, join_token_evidence};

/// Creates a server token the gateway may use to read what it enforces and report events,
/// plus the `extra` statements, and writes it to `dir/gateway-token`.
pub fn token(server: &Server, dir: &TempDir, extra: &[Value]) {
    let mut statements = vec![json!(
        {"Effect": "Allow", "Action": ["writ:ReadRevocations", "writ:ReadIntentions",
          "writ:PutAuditEvents"], "Resource": "*"})];
    statements.extend_from_slice(extra);
    let policy = dir.join("gateway-policy.json");
    std::fs::write(
        &policy,
        json!({"Version": "2012-10-17", "Statement": statements}).to_string(),
    )
    .unwrap();
    let token = server.cli_ok(&["token", "create", "--policy", policy.to_str().unwrap()]);
    std::fs::write(dir.join("gateway-token"), token.trim()).unwrap();
}

/// The gateway config's head: listen on an OS-chosen port, follow `server` with
/// `dir/gateway-token`, serve TLS with `cert` and `key`. Routes and the rest follow it.
pub fn config_head(server: &Server, cert: &std::path::Path, key: &std::path::Path) -> String {
    config_head_with_tls(
        server,
        &format!("cert = \"{}\"\nkey = \"{}\"", cert.display(), key.display()),
    )
}

/// The gateway config's head as [`config_head`], with `tls` as the `[tls]` table's body
/// (`from_writ = {...}` for the certificate writ issues).
pub fn config_head_with_tls(server: &Server, tls: &str) -> String {
    format!(
        r#"
listen = "127.0.0.1:0"
trust_domain = "{TRUST_DOMAIN}"
state_dir = "gateway-state"
[server]
addr = "{addr}"
ca_file = "{ca}"
token_file = "gateway-token"
[tls]
{tls}
"#,
        addr = server.addr(),
        ca = server.ca_file().display(),
    )
}

/// `function` logged in with a new join token: its SVID in files of `dir`.
pub fn login(server: &Server, dir: &TempDir, function: &str) -> Svid {
    let token = server.join_token(function);
    Svid::login(server, dir, function, join_token_evidence(&token))
        .unwrap_or_else(|r| panic!("login {function}: {} {}", r.status, r.body))
}

/// A running `writ gateway`, killed on drop.
pub struct Gateway {
    /// The process, with its log.
    pub proc: Proc,
    /// Its TLS port on 127.0.0.1.
    pub port: u16,
    /// The CA its certificate chains to.
    pub ca: PathBuf,
}

impl Gateway {
    /// Starts `cmd` (a `writ gateway --config ...` command) and waits until it listens.
    pub fn start(cmd: std::process::Command, dir: &TempDir, ca: PathBuf) -> Gateway {
        let (proc, port) =
            super::start_until_port(cmd, dir, "gateway", "writ: gateway listening on ");
        Gateway { proc, port, ca }
    }

    /// A request to the gateway.
    pub fn curl(&self, method: &str, path: &str) -> Curl {
        Curl::new(
            method,
            &format!("https://127.0.0.1:{}{path}", self.port),
            &self.ca,
        )
    }

    /// A request to the gateway over mTLS with `svid`.
    pub fn as_caller(&self, svid: &Svid, method: &str, path: &str) -> Curl {
        self.curl(method, path).client_cert(&svid.cert, &svid.key)
    }
}
