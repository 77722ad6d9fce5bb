//! The gateway's HTTP surface before and after authentication: what reaches the upstream
//! once a caller is verified (never the credential it was verified by), and what an
//! unauthenticated client can make the gateway hold (bodies read before authentication,
//! connections).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;

use crate::common::{
    self, Curl, PATIENCE, Proc, Server, Svid, TRUST_DOMAIN, TempDir, join_token_evidence,
    localhost_certificate, wait_for, writ_command,
};

/// A server, an echoing upstream and a gateway in front of it, with these routes:
///
/// - `/pay` for `payments`, by mTLS or a JWT-SVID (`orders` may call it);
/// - `/shared` for `payments` too, by JWT-SVIDs that may name other audiences
///   (`allow_multi_audience = true`);
/// - `/hooks/github`, a GitHub-style webhook whose key is `gh-key`.
///
/// `orders` may read the secret `prod/db` (its value is [`GatewayEnv::SECRET`]).
pub struct GatewayEnv {
    /// Where everything's files are.
    pub dir: TempDir,
    /// The server.
    pub server: Server,
    gateway: Proc,
    /// The gateway's HTTPS port.
    pub port: u16,
    /// Its `/metrics` port (plain HTTP).
    pub metrics_port: u16,
    /// The CA of its TLS certificate.
    pub gateway_ca: PathBuf,
    _upstream: Proc,
}

impl GatewayEnv {
    /// The value of the secret `prod/db`.
    pub const SECRET: &'static str = "db-password-attack-corpus";

    /// Starts it all; `settings` are top-level gateway settings.
    pub fn start(label: &str, settings: &str) -> GatewayEnv {
        let dir = TempDir::new(label);
        let server = Server::start(&dir.join("data"), &["--trust-domain", TRUST_DOMAIN]);
        let (upstream_proc, upstream_port) = common::echo_upstream(&dir);
        let policy = dir.join("orders-policy.json");
        std::fs::write(
            &policy,
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Action": "secrets:GetSecretValue", "Resource": "writ:secret/prod/db"}]})
            .to_string(),
        )
        .unwrap();
        server.cli_ok(&[
            "fn",
            "register",
            "orders",
            "--policy",
            policy.to_str().unwrap(),
        ]);
        server.register("payments");
        server.cli_ok(&["intention", "allow", "orders", "payments"]);
        for (name, value) in [("hooks/github", "gh-key"), ("prod/db", Self::SECRET)] {
            let file = dir.unique_file("secret", "txt");
            std::fs::write(&file, value).unwrap();
            server.cli_ok(&[
                "secret",
                "put",
                name,
                "--value-file",
                file.to_str().unwrap(),
            ]);
        }
        let gateway_policy = dir.join("gateway-policy.json");
        std::fs::write(
            &gateway_policy,
            json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["writ:ReadRevocations", "writ:ReadIntentions",
                  "writ:PutAuditEvents"], "Resource": "*"},
                {"Effect": "Allow", "Action": "secrets:GetSecretValue",
                 "Resource": "writ:secret/hooks/*"}]})
            .to_string(),
        )
        .unwrap();
        let token = server.cli_ok(&[
            "token",
            "create",
            "--policy",
            gateway_policy.to_str().unwrap(),
        ]);
        std::fs::write(dir.join("gateway-token"), token.trim()).unwrap();
        std::fs::write(
            dir.join("charge.schema.json"),
            json!({"type": "object", "required": ["amount"],
                "properties": {"amount": {"type": "integer", "maximum": 100}}})
            .to_string(),
        )
        .unwrap();
        let (gateway_ca, cert, key) = localhost_certificate(&dir, "gateway");
        let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let upstream = format!("http://127.0.0.1:{upstream_port}");
        let config = format!(
            r#"{settings}
listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:{metrics_port}"
trust_domain = "{TRUST_DOMAIN}"
state_dir = "gateway-state"
[server]
addr = "{addr}"
ca_file = "{ca}"
token_file = "gateway-token"
[tls]
cert = "{cert}"
key = "{key}"

[[route]]
name = "payments"
function = "payments"
path_prefix = "/pay"
upstream = "{upstream}"
auth = ["mtls", "jwt"]

[[route]]
name = "shared"
function = "payments"
path_prefix = "/shared"
upstream = "{upstream}"
auth = ["jwt"]
allow_multi_audience = true

[[route]]
name = "checked"
function = "payments"
path_prefix = "/checked"
upstream = "{upstream}"
auth = ["mtls", "jwt"]
schema = "charge.schema.json"

[[route]]
name = "github"
function = "hooks"
path_prefix = "/hooks/github"
upstream = "{upstream}"
auth = ["webhook"]
[route.webhook]
style = "github"
secret = "hooks/github"
"#,
            addr = server.addr(),
            ca = server.ca_file().display(),
            cert = cert.display(),
            key = key.display(),
        );
        std::fs::write(dir.join("gateway.toml"), config).unwrap();
        let mut cmd = writ_command();
        cmd.args(["gateway", "--config"])
            .arg(dir.join("gateway.toml"));
        let (gateway, port) =
            common::start_until_port(cmd, &dir, "gateway", "writ: gateway listening on ");
        GatewayEnv {
            dir,
            server,
            gateway,
            port,
            metrics_port,
            gateway_ca,
            _upstream: upstream_proc,
        }
    }

    /// A curl request to the gateway.
    pub fn curl(&self, method: &str, path: &str) -> Curl {
        Curl::new(
            method,
            &format!("https://127.0.0.1:{}{path}", self.port),
            &self.gateway_ca,
        )
    }

    /// Logs `function` in with a join token.
    pub fn login(&self, function: &str) -> Svid {
        let token = self.server.join_token(function);
        Svid::login(
            &self.server,
            &self.dir,
            function,
            join_token_evidence(&token),
        )
        .unwrap_or_else(|r| panic!("login {function}: {} {}", r.status, r.body))
    }

    /// Waits until the gateway has the server's state: `svid` (of `orders`) gets through.
    pub fn wait_ready(&self, svid: &Svid) {
        wait_for("the gateway to sync", Duration::from_secs(15), || {
            let r = self
                .curl("GET", "/pay/ready")
                .client_cert(&svid.cert, &svid.key)
                .send();
            (r.status == 200).then_some(())
        });
    }

    /// A JWT-SVID of `svid`'s for `audiences`, minted by the server.
    pub fn jwt(&self, svid: &Svid, audiences: &[&str]) -> String {
        let r = svid
            .curl(&self.server, "POST", "/v1/svid/jwt")
            .json(&json!({ "audience": audiences }))
            .send()
            .expect(200);
        r.json()["token"].as_str().unwrap().to_string()
    }

    /// The gateway's standard error.
    pub fn log(&self) -> String {
        self.gateway.log()
    }

    /// The gateway's `/metrics` text.
    pub fn metrics(&self) -> String {
        let mut tcp = TcpStream::connect(("127.0.0.1", self.metrics_port)).unwrap();
        tcp.write_all(b"GET /metrics HTTP/1.1\r\nhost: m\r\nconnection: close\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        tcp.read_to_string(&mut text).unwrap();
        text
    }

    /// A TLS connection to the gateway (no client certificate), its handshake done; or
    /// why the handshake failed.
    pub fn tls(&self) -> Result<Tls, String> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&self.gateway_ca).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            tls.conn
                .complete_io(&mut tls.sock)
                .map_err(|e| e.to_string())?;
        }
        Ok(Tls(tls))
    }
}

/// A client's TLS connection to the gateway.
pub struct Tls(rustls::StreamOwned<rustls::ClientConnection, TcpStream>);

impl Tls {
    /// Sends `bytes`.
    pub fn send(&mut self, bytes: &[u8]) {
        self.0.write_all(bytes).unwrap();
        self.0.flush().unwrap();
    }

    /// Reads until the bytes read end with the blank line after a head; the head.
    pub fn read_head(&mut self) -> String {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match self.0.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                other => panic!(
                    "the connection ended after {:?}: {other:?}",
                    String::from_utf8_lossy(&head)
                ),
            }
        }
        String::from_utf8(head).unwrap()
    }
}

#[test]
fn the_upstream_never_sees_the_bearer_token_the_gateway_consumed() {
    let env = GatewayEnv::start("attack-strip", "");
    let orders = env.login("orders");
    env.wait_ready(&orders);
    let token = env.jwt(&orders, &[&format!("spiffe://{TRUST_DOMAIN}/fn/payments")]);

    // Authenticated by the JWT-SVID: the upstream learns who called from `x-writ-caller`,
    // and gets no token it could replay as the caller (to the server, or another route).
    let r = env
        .curl("POST", "/pay/charge")
        .bearer(&token)
        .json(&json!({"amount": 5}))
        .send()
        .expect(200);
    let seen = r.json();
    assert_eq!(
        seen["headers"]["x-writ-caller"],
        format!("spiffe://{TRUST_DOMAIN}/fn/orders")
    );
    assert_eq!(seen["headers"]["x-writ-authenticated-by"], "jwt");
    assert!(
        seen["headers"].get("authorization").is_none(),
        "the upstream saw the caller's bearer token: {seen}"
    );
    assert!(!r.body.contains(&token), "{}", r.body);

    // The same with `bearer` in lower case, and two `Authorization` lines: none passes.
    let r = env
        .curl("POST", "/pay/charge")
        .header(&format!("authorization: bearer {token}"))
        .header("authorization: Basic dXNlcjpwYXNz")
        .client_cert(&orders.cert, &orders.key)
        .json(&json!({"amount": 5}))
        .send()
        .expect(200);
    assert!(!r.body.contains(&token), "{}", r.body);
    assert!(
        r.json()["headers"].get("authorization").is_none(),
        "{}",
        r.body
    );

    // Authenticated by mTLS, with a bearer token as well: on a route that takes JWT-SVIDs
    // the token is still the gateway's, not forwarded.
    let r = env
        .curl("POST", "/pay/charge")
        .client_cert(&orders.cert, &orders.key)
        .bearer(&token)
        .json(&json!({"amount": 5}))
        .send()
        .expect(200);
    assert_eq!(r.json()["headers"]["x-writ-authenticated-by"], "mtls");
    assert!(!r.body.contains(&token), "{}", r.body);

    // Another scheme is the caller's business with the upstream, and passes.
    let r = env
        .curl("POST", "/pay/charge")
        .client_cert(&orders.cert, &orders.key)
        .header("authorization: Basic dXNlcjpwYXNz")
        .json(&json!({"amount": 5}))
        .send()
        .expect(200);
    assert_eq!(
        r.json()["headers"]["authorization"],
        "Basic dXNlcjpwYXNz",
        "{}",
        r.body
    );
    assert!(
        !env.log().contains(&token),
        "the token is in the gateway's log"
    );
}

/// The value of the line `name` (a metric with its labels) in the gateway's metrics.
fn metric(env: &GatewayEnv, name: &str) -> Option<u64> {
    env.metrics().lines().find_map(|line| {
        line.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

/// A GitHub-style webhook delivery of `body`, signed with the route's key.
fn signed_delivery(env: &GatewayEnv, body: &str) -> common::Response {
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"gh-key"),
        body.as_bytes(),
    );
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    env.curl("POST", "/hooks/github")
        .header(&format!("X-Hub-Signature-256: sha256={hex}"))
        .body(body, "application/json")
        .send()
}

#[test]
fn unsigned_webhook_bodies_held_open_cannot_take_more_than_the_budget() {
    const MIB: usize = 1024 * 1024;
    // Room for four webhook bodies of the route's 1 MiB.
    let env = GatewayEnv::start(
        "attack-body-budget",
        &format!("unauthenticated_body_budget = {}", 4 * MIB),
    );
    let orders = env.login("orders");
    env.wait_ready(&orders);

    // Four unsigned deliveries announce 1 MiB each, send a little, and hold the rest
    // back. The gateway asks for each body (`100 Continue`) once it has set room aside.
    let mut held: Vec<Tls> = (0..4)
        .map(|i| {
            let mut tls = env.tls().unwrap_or_else(|e| panic!("connection {i}: {e}"));
            tls.send(
                format!(
                    "POST /hooks/github HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
                     x-hub-signature-256: sha256=00\r\ncontent-length: {MIB}\r\nexpect: 100-continue\r\n\r\n"
                )
                .as_bytes(),
            );
            let head = tls.read_head();
            assert!(head.starts_with("HTTP/1.1 100 Continue"), "{i}: {head}");
            tls.send(&[b'x'; 16 * 1024]);
            tls
        })
        .collect();

    // The next unauthenticated body finds the budget spent: 503, try again later, and
    // the connection is not kept (its body was never read).
    let r = env
        .curl("POST", "/hooks/github")
        .header("x-hub-signature-256: sha256=00")
        .body("{}", "application/json")
        .send();
    assert_eq!(r.status, 503, "{}\n{}", r.body, env.log());
    assert_eq!(r.error_code(), "overloaded", "{}", r.body);
    assert_eq!(r.headers["retry-after"][0], "1", "{}", r.headers);
    assert_eq!(r.headers["connection"][0], "close", "{}", r.headers);
    // A signed one too: the signature cannot be checked before the body is read.
    assert_eq!(signed_delivery(&env, "{}").status, 503);
    assert_eq!(
        metric(&env, "writ_gateway_unauthenticated_body_bytes"),
        Some(4 * MIB as u64)
    );
    assert_eq!(
        metric(
            &env,
            "writ_gateway_requests_total{route=\"github\",decision=\"overloaded\"}"
        ),
        Some(2)
    );

    // Authenticated callers do not wait on that budget: mTLS and JWT-SVID calls with a
    // body go through meanwhile.
    env.curl("POST", "/pay/charge")
        .client_cert(&orders.cert, &orders.key)
        .json(&json!({"amount": 5}))
        .send()
        .expect(200);
    let token = env.jwt(&orders, &[&format!("spiffe://{TRUST_DOMAIN}/fn/payments")]);
    env.curl("POST", "/pay/charge")
        .bearer(&token)
        .json(&json!({"amount": 5}))
        .send()
        .expect(200);

    // One client gives up: its room comes back, and a signed delivery gets through.
    drop(held.pop());
    wait_for(
        "the budget held for a closed connection to come back",
        Duration::from_secs(10),
        || (signed_delivery(&env, r#"{"n":1}"#).status == 200).then_some(()),
    );
    assert_eq!(
        metric(&env, "writ_gateway_unauthenticated_body_bytes"),
        Some(3 * MIB as u64)
    );
    // All of them gone: nothing held.
    held.clear();
    wait_for(
        "the whole budget to come back",
        Duration::from_secs(10),
        || (metric(&env, "writ_gateway_unauthenticated_body_bytes") == Some(0)).then_some(()),
    );
}

#[test]
fn a_client_cannot_hold_more_connections_than_its_limit() {
    let env = GatewayEnv::start("attack-conn-limit", "max_connections_per_client = 3");
    let orders = env.login("orders");
    env.wait_ready(&orders);
    // The connections of getting ready have ended.
    wait_for(
        "earlier connections to end",
        Duration::from_secs(10),
        || {
            let text = env.metrics();
            let open: u64 = text
                .lines()
                .filter(|l| l.starts_with("writ_gateway_open_connections{"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                .sum();
            (open == 0).then_some(())
        },
    );

    let mut held: Vec<Tls> = (0..3)
        .map(|i| env.tls().unwrap_or_else(|e| panic!("connection {i}: {e}")))
        .collect();
    // The fourth from the same address is closed as it is accepted, before TLS.
    let refused = env.tls();
    assert!(refused.is_err(), "a fourth connection was served");
    assert_eq!(
        metric(
            &env,
            "writ_gateway_connections_refused_total{reason=\"client_limit\"}"
        ),
        Some(1)
    );
    // The three it holds are served.
    held[0].send(b"GET /pay/x HTTP/1.1\r\nhost: localhost\r\n\r\n");
    let head = held[0].read_head();
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");

    // One closed, another may open, and is served.
    drop(held.pop());
    let mut again = wait_for("room for one more", Duration::from_secs(10), || {
        env.tls().ok()
    });
    again.send(b"GET /pay/x HTTP/1.1\r\nhost: localhost\r\n\r\n");
    let head = again.read_head();
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
}

/// A body that gives a key twice reads one way to the schema (serde_json keeps the last)
/// and may read the other way to the upstream (many parsers keep the first): an amount of
/// a million smuggled past a schema that allows at most 100. Refused before validation.
#[test]
fn a_body_with_a_key_given_twice_cannot_slip_past_the_schema() {
    let env = GatewayEnv::start("attack-gw-dupkeys", "");
    let orders = env.login("orders");
    env.wait_ready(&orders);
    let payments = format!("spiffe://{TRUST_DOMAIN}/fn/payments");
    let jwt = env.jwt(&orders, &[&payments]);
    env.curl("POST", "/checked/charge")
        .bearer(&jwt)
        .json(&json!({"amount": 5}))
        .send()
        .expect(200);
    let r = env
        .curl("POST", "/checked/charge")
        .bearer(&jwt)
        .body(r#"{"amount": 1000000, "amount": 5}"#, "application/json")
        .send();
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("more than once"), "{}", r.body);
}

/// The gateway's own connections to the server used to trust only the `ca_file` read at
/// start: once a rotated CA signed the server's certificate, any new connection (after a
/// restart of the server, say) failed, and the gateway went on enforcing a state that no
/// longer changed, revocations included. It follows the bundle the server publishes now.
#[test]
fn the_gateway_follows_the_servers_bundle_through_a_ca_rotation_and_a_restart() {
    let mut env = GatewayEnv::start("attack-gw-ca-rotation", "");
    let orders = env.login("orders");
    env.wait_ready(&orders);
    env.server
        .cli_ok(&["ca", "rotate", "--kind", "x509", "--activate-after", "3s"]);
    wait_for("the new CA to sign", PATIENCE, || {
        let keys = env.server.ca_show()["keys"].clone();
        keys.as_array()?
            .iter()
            .any(|k| k["kind"] == "x509" && k["status"] == "retiring")
            .then_some(())
    });
    // Every connection to the server is new from here, and only the new CA verifies it.
    env.server.restart();
    env.server.cli_ok(&["revoke", "--fn", "orders"]);
    wait_for("the gateway to take the revocation", PATIENCE, || {
        let r = env
            .curl("GET", "/pay/ready")
            .client_cert(&orders.cert, &orders.key)
            .send();
        (r.status == 401).then_some(())
    });
}
