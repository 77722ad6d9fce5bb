//! The agent's local listeners: what a local caller or a browser page can make it do.
//!
//! The agent acts as its function for whatever reaches its loopback listeners. A web page
//! open on the same machine can reach them too: a cross-site form or `fetch` (CSRF, the
//! browser adds `Origin` and `Sec-Fetch-*`), or a page whose own domain was re-pointed to
//! 127.0.0.1 (DNS rebinding: same-origin to the page, so it reads the answers, but its
//! `Host` names the attacker's domain). Once, both were carried to the gateway as the
//! function, and the localhost API answered them. Now a `Host` that is not the listener's
//! own address is answered 421, and a browser's request 403, before anything is done.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{
    Curl, Proc, Response, Server, TRUST_DOMAIN, TempDir, echo_upstream, localhost_certificate,
    start_until_port, wait_for, writ_command,
};

const CALLER_TOKEN: &str = "session-token-of-the-function";
const SECRET: &str = "postgres://orders:hunter2@db/orders";

/// A server, a gateway in front of an echoing `payments`, and `writ agent` beside
/// `orders` with a localhost API and an outbound listener to payments.
struct Env {
    _dir: TempDir,
    server: Server,
    _upstream: Proc,
    _gateway: Proc,
    _agent: Proc,
    /// The localhost API's port.
    local: u16,
    /// The outbound listener's port.
    outbound: u16,
}

impl Env {
    fn new(label: &str) -> Env {
        let dir = TempDir::new(label);
        let server = Server::start(&dir.join("data"), &["--trust-domain", TRUST_DOMAIN]);
        let (upstream, up_port) = echo_upstream(&dir);
        let write_json = |name: &str, value: Value| {
            let path = dir.join(name);
            std::fs::write(&path, value.to_string()).unwrap();
            path.to_str().unwrap().to_string()
        };
        let policy = write_json(
            "orders-policy.json",
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Action": "secrets:GetSecretValue", "Resource": "writ:secret/prod/orders-*"}]}),
        );
        server.cli_ok(&["fn", "register", "orders", "--policy", &policy]);
        server.register("payments");
        server.cli_ok(&["intention", "allow", "orders", "payments"]);
        let value = dir.join("db-url");
        std::fs::write(&value, SECRET).unwrap();
        server.cli_ok(&[
            "secret",
            "put",
            "prod/orders-db",
            "--value-file",
            value.to_str().unwrap(),
        ]);
        let gw_policy = write_json(
            "gateway-policy.json",
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Action": ["writ:ReadRevocations", "writ:ReadIntentions", "writ:PutAuditEvents"],
                "Resource": "*"}]}),
        );
        let token = server.cli_ok(&["token", "create", "--policy", &gw_policy]);
        std::fs::write(dir.join("gateway-token"), token.trim()).unwrap();
        let (gateway_ca, cert, key) = localhost_certificate(&dir, "gateway");
        std::fs::write(
            dir.join("gateway.toml"),
            format!(
                r#"listen = "127.0.0.1:0"
trust_domain = "{TRUST_DOMAIN}"
state_dir = "gateway-state"
[server]
addr = "{}"
ca_file = "{}"
token_file = "gateway-token"
[tls]
cert = "{}"
key = "{}"
[[route]]
name = "payments"
function = "payments"
path_prefix = "/pay"
upstream = "http://127.0.0.1:{up_port}"
auth = ["mtls"]
"#,
                server.addr(),
                server.ca_file().display(),
                cert.display(),
                key.display()
            ),
        )
        .unwrap();
        let mut cmd = writ_command();
        cmd.args(["gateway", "--config"])
            .arg(dir.join("gateway.toml"));
        let (gateway, gateway_port) =
            start_until_port(cmd, &dir, "gateway", "writ: gateway listening on ");

        let mut cmd = writ_command();
        cmd.args(["agent", "--function", "orders", "--server"])
            .arg(server.addr())
            .arg("--ca-file")
            .arg(server.ca_file())
            .args([
                "--listen",
                "127.0.0.1:0",
                "--outbound",
                "payments=127.0.0.1:0",
                "--gateway",
            ])
            .arg(format!("https://127.0.0.1:{gateway_port}"))
            .arg("--gateway-ca")
            .arg(&gateway_ca)
            .env("WRIT_JOIN_TOKEN", server.join_token("orders"))
            .env("AWS_SESSION_TOKEN", CALLER_TOKEN);
        let (agent, ready) = start_agent(cmd, &dir);
        let local = port_after(&ready, " on http://127.0.0.1:");
        let outbound = port_after(&ready, "payments=http://127.0.0.1:");
        Env {
            _dir: dir,
            server,
            _upstream: upstream,
            _gateway: gateway,
            _agent: agent,
            local,
            outbound,
        }
    }

    /// A plain-HTTP request to one of the agent's listeners.
    fn curl(&self, method: &str, port: u16, path: &str) -> Curl {
        Curl::new(
            method,
            &format!("http://127.0.0.1:{port}{path}"),
            &self.server.ca_file(),
        )
    }

    /// `POST /pay/charge` through the outbound listener, with extra headers.
    fn charge(&self, headers: &[&str]) -> Response {
        headers
            .iter()
            .fold(self.curl("POST", self.outbound, "/pay/charge"), |c, h| {
                c.header(h)
            })
            .json(&json!({"amount": 100}))
            .send()
    }

    /// `GET PATH` on the localhost API with the caller token, and extra headers.
    fn local_get(&self, path: &str, headers: &[&str]) -> Response {
        headers
            .iter()
            .fold(
                self.curl("GET", self.local, path)
                    .header(&format!("X-Aws-Parameters-Secrets-Token: {CALLER_TOKEN}")),
                |c, h| c.header(h),
            )
            .send()
    }
}

/// Starts the agent; returns it with its "ready" line.
fn start_agent(mut cmd: Command, dir: &TempDir) -> (Proc, String) {
    use std::io::BufRead;
    let stderr = dir.unique_file("agent", "stderr");
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("start writ agent");
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let proc = Proc::new(child, stderr);
    assert!(line.contains("agent ready"), "{line}\n{}", proc.log());
    std::thread::spawn(move || for _ in reader.lines() {});
    (proc, line)
}

fn port_after(line: &str, marker: &str) -> u16 {
    let at = line
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in {line}"))
        + marker.len();
    line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

/// Asserts the agent refused with `status` in its error shape, naming `header`.
fn refused(r: &Response, status: u16, header: &str) {
    assert_eq!(r.status, status, "body: {}", r.body);
    let message = r.error_message();
    assert!(message.contains(header), "{message}");
    assert!(!r.body.contains(SECRET), "{}", r.body);
    assert!(!r.body.contains("eyJ"), "no token in a refusal: {}", r.body);
}

#[test]
fn a_page_cannot_make_the_outbound_listener_call_as_the_function() {
    let env = Env::new("attack-agent-outbound");
    let host = format!("Host: 127.0.0.1:{}", env.outbound);
    // The function's own call reaches payments through the gateway, as orders.
    let ok = wait_for("the gateway to sync", Duration::from_secs(15), || {
        let r = env.charge(&[]);
        (r.status == 200).then_some(r)
    });
    assert_eq!(
        ok.json()["headers"]["x-writ-caller"],
        format!("spiffe://{TRUST_DOMAIN}/fn/orders")
    );
    assert_eq!(
        env.charge(&[&format!("Host: localhost:{}", env.outbound)])
            .status,
        200,
        "localhost:PORT is the listener's own address too"
    );

    // DNS rebinding: the page's own domain, now resolving to 127.0.0.1.
    refused(&env.charge(&["Host: evil.example"]), 421, "Host");
    refused(
        &env.charge(&[&format!("Host: evil.example:{}", env.outbound)]),
        421,
        "Host",
    );
    // A cross-site form post, to the right address: the browser says where it came from.
    refused(
        &env.charge(&[&host, "Origin: https://evil.example"]),
        403,
        "Origin",
    );
    refused(&env.charge(&[&host, "Origin: null"]), 403, "Origin");
    refused(
        &env.charge(&[
            &host,
            "Sec-Fetch-Site: cross-site",
            "Sec-Fetch-Mode: no-cors",
        ]),
        403,
        "Sec-Fetch",
    );
    // Both, as a rebinding page's fetch sends them.
    let r = env.charge(&["Host: evil.example", "Origin: http://evil.example"]);
    assert!(matches!(r.status, 403 | 421), "{}", r.body);
    assert!(r.json()["headers"].is_null(), "never carried: {}", r.body);
}

#[test]
fn a_page_cannot_read_a_secret_or_a_token_through_the_local_api() {
    let env = Env::new("attack-agent-local");
    let secret = "/secretsmanager/get?secretId=prod%2Forders-db";
    let jwt = format!("/v1/jwt?aud=spiffe://{TRUST_DOMAIN}/fn/payments");
    // The function reads its secret, addressing the agent either way.
    for host in [
        format!("Host: 127.0.0.1:{}", env.local),
        format!("Host: localhost:{}", env.local),
    ] {
        let r = env.local_get(secret, &[&host]).expect(200);
        assert_eq!(r.json()["SecretString"], SECRET);
    }
    assert!(
        env.local_get(&jwt, &[]).expect(200).json()["token"]
            .as_str()
            .is_some_and(|t| t.starts_with("eyJ"))
    );

    for path in [secret, jwt.as_str(), "/v1/svid"] {
        // A rebinding page reads same-origin answers; it is refused by its Host, even if
        // it had the caller token.
        refused(&env.local_get(path, &["Host: evil.example"]), 421, "Host");
        refused(
            &env.local_get(path, &[&format!("Host: rebind.evil.example:{}", env.local)]),
            421,
            "Host",
        );
        // A browser's request to the right address.
        refused(
            &env.local_get(path, &["Origin: https://evil.example"]),
            403,
            "Origin",
        );
        refused(
            &env.local_get(path, &["Sec-Fetch-Mode: cors"]),
            403,
            "Sec-Fetch",
        );
        refused(
            &env.local_get(path, &["Sec-Fetch-Site: same-origin"]),
            403,
            "Sec-Fetch",
        );
    }
    // The guard comes first: a browser learns nothing about the caller token either.
    let r = env
        .curl("GET", env.local, secret)
        .header("Host: evil.example")
        .send();
    refused(&r, 421, "Host");
}
