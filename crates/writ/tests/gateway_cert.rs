//! The gateway's own certificate from writ (issue 34), end to end with real processes: an
//! operator registers the gateway with the names it serves, the gateway logs in with a
//! join token as `spiffe://TD/writ/gateway/NAME` and serves the X.509-SVID writ issued;
//! curl trusting only writ's bundle gets through to the upstream by the registered name
//! (and not by another), openssl shows the SPIFFE ID, the names and serverAuth; an agent
//! with no `--gateway-ca` calls through it, and one trusting something else logs why TLS
//! failed. A gateway cannot get a certificate for a name it was not registered with, and
//! neither kind of join token logs in as the other kind of identity.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::gateway::{Gateway, config_head_with_tls, login, token};
use common::{
    KeyAndCsr, PATIENCE, Proc, Server, TRUST_DOMAIN, TempDir, all_sans, csr, ec_key,
    join_token_evidence, localhost_certificate, run, text, wait_for, writ_command, x509,
};
use serde_json::json;

/// A server with functions orders (the caller) and payments (behind the gateway), the
/// intention orders → payments, and the gateway `edge` registered for `gw.internal` and
/// 127.0.0.1 with a join token in `dir/edge.token`.
struct Env {
    dir: TempDir,
    server: Server,
    _upstream: Proc,
}

impl Env {
    fn new(label: &str) -> Env {
        let dir = TempDir::new(label);
        let server = Server::start(&dir.join("data"), &["--trust-domain", TRUST_DOMAIN]);
        let (upstream, up_port) = common::echo_upstream(&dir);
        server.register("orders");
        server.register("payments");
        server.cli_ok(&["intention", "allow", "orders", "payments"]);
        token(&server, &dir, &[]);
        let registered = server.cli_ok(&[
            "gateway",
            "register",
            "edge",
            "--dns",
            "gw.internal",
            "--ip",
            "127.0.0.1",
        ]);
        assert!(
            registered.contains(&format!("spiffe://{TRUST_DOMAIN}/writ/gateway/edge")),
            "{registered}"
        );
        let join = server.cli_ok(&["gateway", "join-token", "edge"]);
        std::fs::write(dir.join("edge.token"), join.trim()).unwrap();
        std::fs::write(dir.join("routes.toml"), routes(up_port)).unwrap();
        Env {
            dir,
            server,
            _upstream: upstream,
        }
    }

    /// The gateway's configuration with `[tls] from_writ` (and `extra` in it), written to
    /// `dir/NAME.toml`.
    fn config(&self, name: &str, extra: &str) -> PathBuf {
        let from_writ = format!(
            "from_writ = {{ name = \"edge\", attest = \"join-token\", token_file = \"edge.token\"{extra} }}"
        );
        let path = self.dir.join(format!("{name}.toml"));
        let routes = std::fs::read_to_string(self.dir.join("routes.toml")).unwrap();
        std::fs::write(
            &path,
            format!("{}{routes}", config_head_with_tls(&self.server, &from_writ)),
        )
        .unwrap();
        path
    }

    fn gateway_command(config: &Path) -> Command {
        let mut cmd = writ_command();
        cmd.args(["gateway", "--config"]).arg(config);
        cmd
    }
}

fn routes(up_port: u16) -> String {
    format!(
        r#"[[route]]
name = "payments"
function = "payments"
path_prefix = "/pay"
upstream = "http://127.0.0.1:{up_port}"
auth = ["mtls"]
"#
    )
}

/// The certificate a TLS server on 127.0.0.1:`port` serves (asking for `name` by SNI),
/// written to `dir` as PEM.
fn served_certificate(dir: &TempDir, port: u16, name: &str) -> PathBuf {
    let out = run(Command::new("openssl")
        .args(["s_client", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-servername", name])
        .stdin(Stdio::null()));
    let all = text(&out.stdout);
    let begin = all
        .find("-----BEGIN CERTIFICATE-----")
        .unwrap_or_else(|| panic!("no certificate from s_client: {all}"));
    let end = all[begin..].find("-----END CERTIFICATE-----").unwrap() + begin + 25;
    let path = dir.unique_file("served", "pem");
    std::fs::write(&path, format!("{}\n", &all[begin..end])).unwrap();
    path
}

/// Starts `writ agent` for orders with an outbound listener to the gateway at
/// `gateway_url`, trusting `gateway_ca` if given (writ's bundle if not); returns it and
/// its outbound port.
fn start_agent(env: &Env, gateway_url: &str, gateway_ca: Option<&Path>) -> (Proc, u16) {
    use std::io::BufRead;
    let mut cmd = writ_command();
    cmd.args(["agent", "--function", "orders", "--server"])
        .arg(env.server.addr())
        .arg("--ca-file")
        .arg(env.server.ca_file())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--outbound",
            "payments=127.0.0.1:0",
            "--gateway",
            gateway_url,
        ])
        .env("WRIT_JOIN_TOKEN", env.server.join_token("orders"))
        .env("AWS_SESSION_TOKEN", "session-token-for-tests")
        .env_remove("WRIT_GATEWAY_CACERT");
    if let Some(ca) = gateway_ca {
        cmd.arg("--gateway-ca").arg(ca);
    }
    let stderr = env.dir.unique_file("agent", "stderr");
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("start writ agent");
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let proc = Proc::new(child, stderr);
    assert!(line.contains("agent ready"), "{line}\n{}", proc.log());
    std::thread::spawn(move || for _ in reader.lines() {});
    let marker = "payments=http://127.0.0.1:";
    let at = line.find(marker).unwrap_or_else(|| panic!("{line}")) + marker.len();
    let port = line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap();
    (proc, port)
}

/// A plain-HTTP call to the agent's outbound listener.
fn through_agent(port: u16, path: &str) -> (u16, String) {
    let out = run(Command::new("curl")
        .args(["-sS", "--max-time", "30", "-w", "\n%{http_code}"])
        .arg(format!("http://127.0.0.1:{port}{path}")));
    let all = text(&out.stdout);
    let (body, status) = all.rsplit_once('\n').unwrap_or(("", "0"));
    (status.trim().parse().unwrap_or(0), body.to_string())
}

#[test]
fn gwcert_the_gateway_serves_the_certificate_writ_issued() {
    let env = Env::new("gwcert-serve");
    let config = env.config("gateway", "");
    let gateway = Gateway::start(
        Env::gateway_command(&config),
        &env.dir,
        env.server.ca_file(),
    );
    let port = gateway.port;

    // The certificate: the gateway's SPIFFE ID and exactly its registered names, for
    // TLS servers, chaining to writ's bundle.
    let served = served_certificate(&env.dir, port, "gw.internal");
    let mut sans = all_sans(&served);
    sans.sort();
    assert_eq!(
        sans,
        [
            "DNS:gw.internal".to_string(),
            "IP Address:127.0.0.1".to_string(),
            format!("URI:spiffe://{TRUST_DOMAIN}/writ/gateway/edge"),
        ]
    );
    let eku = x509(&served, &["-ext", "extendedKeyUsage"]);
    assert!(eku.contains("TLS Web Server Authentication"), "{eku}");
    common::verify(&env.server.ca_file(), &served).expect("chains to writ's bundle");

    // curl trusting writ's bundle alone reaches the upstream by the registered name.
    let orders = login(&env.server, &env.dir, "orders");
    let r = gateway
        .curl("GET", "/pay/charge")
        .client_cert(&orders.cert, &orders.key)
        .send();
    assert_eq!(r.status, 200, "by 127.0.0.1: {}", r.body);
    let by_name = common::Curl::new(
        "GET",
        &format!("https://gw.internal:{port}/pay/charge"),
        &env.server.ca_file(),
    )
    .resolve(&format!("gw.internal:{port}:127.0.0.1"))
    .client_cert(&orders.cert, &orders.key)
    .send();
    assert_eq!(by_name.status, 200, "by gw.internal: {}", by_name.body);
    assert!(
        by_name.body.contains("/pay/charge") || by_name.body.contains("/charge"),
        "the upstream answered: {}",
        by_name.body
    );
    // ... and not by a name the gateway was not registered for.
    let other = common::Curl::new(
        "GET",
        &format!("https://other.internal:{port}/pay/charge"),
        &env.server.ca_file(),
    )
    .resolve(&format!("other.internal:{port}:127.0.0.1"))
    .try_send()
    .expect_err("a name the certificate does not carry");
    assert!(
        other.contains("SSL") || other.contains("certificate"),
        "{other}"
    );

    // An agent with no --gateway-ca trusts writ's bundle for the gateway.
    let (_agent, outbound) = start_agent(&env, &format!("https://127.0.0.1:{port}"), None);
    let (status, body) = through_agent(outbound, "/pay/charge");
    assert_eq!(status, 200, "{body}");

    // An agent trusting another CA: the call fails, and the agent says why.
    let (other_ca, _, _) = localhost_certificate(&env.dir, "other");
    let (agent, outbound) =
        start_agent(&env, &format!("https://127.0.0.1:{port}"), Some(&other_ca));
    let (status, body) = through_agent(outbound, "/pay/charge");
    assert_eq!(status, 502, "{body}");
    assert!(
        body.contains("unknown issuer"),
        "the caller is told: {body}\n{}",
        agent.log()
    );
    wait_for("the agent's log of the TLS failure", PATIENCE, || {
        let log = agent.log();
        (log.contains("TLS with the gateway failed") && log.contains("unknown issuer"))
            .then_some(())
    });

    // An agent calling the gateway by a name its certificate does not carry.
    let (agent, outbound) = start_agent(&env, &format!("https://localhost:{port}"), None);
    let (status, body) = through_agent(outbound, "/pay/charge");
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("name mismatch"), "the caller is told: {body}");
    wait_for("the agent's log of the name mismatch", PATIENCE, || {
        agent.log().contains("name mismatch").then_some(())
    });
}

#[test]
fn gwcert_a_gateway_cannot_get_a_name_it_was_not_registered_for() {
    let env = Env::new("gwcert-names");
    // The gateway asks for a name it was not registered with: it does not start, and says
    // why.
    let config = env.config("wrong", ", names = [\"evil.internal\"]");
    let out = run(&mut Env::gateway_command(&config));
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("tls.from_writ") && err.contains("evil.internal"),
        "{err}"
    );

    // By hand: a CSR for another name is refused (and does not use the join token up);
    // one for the registered name gets the certificate.
    let token = std::fs::read_to_string(env.dir.join("edge.token")).unwrap();
    let key = env.dir.join("edge-key.pem");
    ec_key(&key);
    let evil = csr(&key, &["-addext", "subjectAltName=DNS:evil.internal"]);
    let r = env
        .server
        .curl("POST", "/v1/gateway/login")
        .json(
            &json!({"gateway": "edge", "attestation": join_token_evidence(token.trim()),
                      "csr": evil}),
        )
        .send();
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.error_message().contains("DNS:evil.internal"),
        "{}",
        r.body
    );
    let good = csr(&key, &["-addext", "subjectAltName=DNS:gw.internal"]);
    let r = env
        .server
        .curl("POST", "/v1/gateway/login")
        .json(
            &json!({"gateway": "edge", "attestation": join_token_evidence(token.trim()),
                      "csr": good}),
        )
        .send();
    assert_eq!(r.status, 200, "{}", r.body);
    let cert = env.dir.join("edge.pem");
    std::fs::write(&cert, r.json()["x509Svid"].as_str().unwrap()).unwrap();
    let mut sans = all_sans(&cert);
    sans.sort();
    assert_eq!(
        sans,
        [
            "DNS:gw.internal".to_string(),
            "IP Address:127.0.0.1".to_string(),
            format!("URI:spiffe://{TRUST_DOMAIN}/writ/gateway/edge"),
        ]
    );

    // Its renewal over mTLS keeps exactly those names; another name is refused there too.
    let next = KeyAndCsr::new(&env.dir);
    let renewed = env
        .server
        .curl("POST", "/v1/gateway/svid")
        .client_cert(&cert, &key)
        .json(&json!({"csr": next.csr}))
        .send();
    assert_eq!(renewed.status, 200, "{}", renewed.body);
    let next_key = env.dir.join("edge-next.pem");
    ec_key(&next_key);
    let refused = env
        .server
        .curl("POST", "/v1/gateway/svid")
        .client_cert(&cert, &key)
        .json(&json!({"csr": csr(&next_key, &["-addext", "subjectAltName=IP:10.0.0.1"])}))
        .send();
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.error_message().contains("10.0.0.1"),
        "{}",
        refused.body
    );

    // A gateway's SVID is no function's: the functions' renewal refuses it.
    let as_function = env
        .server
        .curl("POST", "/v1/svid/x509")
        .client_cert(&cert, &key)
        .json(&json!({"csr": next.csr}))
        .send();
    assert_eq!(as_function.status, 401, "{}", as_function.body);

    // A gateway cannot be registered with a wildcard.
    let out = env
        .server
        .cli(&["gateway", "register", "wild", "--dns", "*.internal"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("dns[0]"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn gwcert_join_tokens_log_in_only_as_what_they_were_made_for() {
    let env = Env::new("gwcert-kinds");
    let key = KeyAndCsr::new(&env.dir);
    // A function's join token does not log in as the gateway...
    let function_token = env.server.join_token("orders");
    let r = env
        .server
        .curl("POST", "/v1/gateway/login")
        .json(
            &json!({"gateway": "edge", "attestation": join_token_evidence(&function_token),
                      "csr": key.csr}),
        )
        .send();
    assert_eq!(r.status, 401, "{}", r.body);
    env.server.wait_for_audit("the refusal", |e| {
        e["action"] == "writ:Login"
            && e["outcome"] == "denied"
            && e["resource"] == format!("spiffe://{TRUST_DOMAIN}/writ/gateway/edge")
            && e["reason"]
                .as_str()
                .is_some_and(|r| r.contains("not valid for this gateway"))
    });
    // ... and the gateway's does not log in as a function.
    let gateway_token = std::fs::read_to_string(env.dir.join("edge.token")).unwrap();
    let r = env
        .server
        .curl("POST", "/v1/login")
        .json(&json!({"function": "orders",
                      "attestation": join_token_evidence(gateway_token.trim()),
                      "csr": key.csr}))
        .send();
    assert_eq!(r.status, 401, "{}", r.body);
    // A function's SVID does not renew as a gateway.
    let orders = login(&env.server, &env.dir, "orders");
    let r = orders
        .curl(&env.server, "POST", "/v1/gateway/svid")
        .json(&json!({"csr": KeyAndCsr::new(&env.dir).csr}))
        .send();
    assert_eq!(r.status, 401, "{}", r.body);
    // Both tokens still work for what they were made for.
    let r = env
        .server
        .curl("POST", "/v1/gateway/login")
        .json(&json!({"gateway": "edge",
                      "attestation": join_token_evidence(gateway_token.trim()),
                      "csr": key.csr}))
        .send();
    assert_eq!(r.status, 200, "{}", r.body);
    let listed = env.server.cli_ok(&["gateway", "list"]);
    assert!(listed.contains("gw.internal,127.0.0.1"), "{listed}");
}

#[test]
fn gwcert_the_gateway_serves_its_renewed_certificate_without_a_restart() {
    let env = Env::new("gwcert-renew");
    // A second gateway registration with a short lifetime: renewed at about half of it.
    env.server.cli_ok(&[
        "gateway",
        "register",
        "brief",
        "--dns",
        "gw.internal",
        "--x509-ttl",
        "40s",
    ]);
    let join = env.server.cli_ok(&["gateway", "join-token", "brief"]);
    std::fs::write(env.dir.join("brief.token"), join.trim()).unwrap();
    let config = env.dir.join("brief.toml");
    let routes = std::fs::read_to_string(env.dir.join("routes.toml")).unwrap();
    std::fs::write(
        &config,
        format!(
            "{}{routes}",
            config_head_with_tls(
                &env.server,
                "from_writ = { name = \"brief\", attest = \"join-token\", token_file = \"brief.token\" }"
            )
        ),
    )
    .unwrap();
    let gateway = Gateway::start(
        Env::gateway_command(&config),
        &env.dir,
        env.server.ca_file(),
    );
    let first = served_certificate(&env.dir, gateway.port, "gw.internal");
    let first_serial = common::serial(&first);
    // The renewal is swapped in for new connections: another serial, the same names.
    let renewed = wait_for(
        "a renewed certificate served",
        std::time::Duration::from_secs(120),
        || {
            let now = served_certificate(&env.dir, gateway.port, "gw.internal");
            (common::serial(&now) != first_serial).then_some(now)
        },
    );
    let mut sans = all_sans(&renewed);
    sans.sort();
    assert_eq!(
        sans,
        [
            "DNS:gw.internal".to_string(),
            format!("URI:spiffe://{TRUST_DOMAIN}/writ/gateway/brief"),
        ]
    );
    common::verify(&env.server.ca_file(), &renewed).expect("chains to writ's bundle");
    assert!(
        gateway.proc.log().contains("SVID renewed"),
        "{}",
        gateway.proc.log()
    );
    // Callers reach the upstream through it by its name, trusting writ's bundle.
    let orders = login(&env.server, &env.dir, "orders");
    let port = gateway.port;
    let r = common::Curl::new(
        "GET",
        &format!("https://gw.internal:{port}/pay/charge"),
        &env.server.ca_file(),
    )
    .resolve(&format!("gw.internal:{port}:127.0.0.1"))
    .client_cert(&orders.cert, &orders.key)
    .send();
    assert_eq!(r.status, 200, "{}", r.body);
}
