//! `writ agent` beside a function, end to end with real processes: it attests with a join
//! token, serves the function's secret to a Python client written the way AWS documents
//! the Parameters and Secrets Lambda Extension (and refuses one without the header),
//! carries the function's plain-HTTP calls to the gateway over mTLS, stops them within a
//! second of a revocation, renews its SVID during a long run without one failed call,
//! follows a CA rotation of the server it runs against, and runs as a Lambda extension
//! against a local Extensions API.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    PATIENCE, Proc, Server, TRUST_DOMAIN, TempDir, localhost_certificate, start_until_port,
    wait_for, writ_command,
};
use serde_json::json;

const CALLER_TOKEN: &str = "session-token-for-tests";

struct Env {
    dir: TempDir,
    server: Server,
    _upstream: Proc,
    _gateway: Proc,
    gateway_port: u16,
    gateway_ca: PathBuf,
}

impl Env {
    fn new(label: &str, orders_ttl: &str) -> Env {
        let dir = TempDir::new(label);
        let server = Server::start(&dir.join("data"), &["--trust-domain", TRUST_DOMAIN]);
        let (upstream, up_port) = common::echo_upstream(&dir);
        let policy = dir.join("orders-policy.json");
        std::fs::write(
            &policy,
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Action": "secrets:GetSecretValue", "Resource": "writ:secret/prod/orders-*"}]})
            .to_string(),
        )
        .unwrap();
        server.cli_ok(&[
            "fn",
            "register",
            "orders",
            "--policy",
            policy.to_str().unwrap(),
            "--x509-ttl",
            orders_ttl,
        ]);
        server.register("payments");
        server.cli_ok(&["intention", "allow", "orders", "payments"]);
        let value = dir.join("db-url");
        std::fs::write(&value, "postgres://orders:pw@db/orders").unwrap();
        server.cli_ok(&[
            "secret",
            "put",
            "prod/orders-db",
            "--value-file",
            value.to_str().unwrap(),
        ]);
        let gw_policy = dir.join("gateway-policy.json");
        std::fs::write(
            &gw_policy,
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Action": ["writ:ReadRevocations", "writ:ReadIntentions", "writ:PutAuditEvents"],
                "Resource": "*"}]})
            .to_string(),
        )
        .unwrap();
        let token = server.cli_ok(&["token", "create", "--policy", gw_policy.to_str().unwrap()]);
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
        Env {
            dir,
            server,
            _upstream: upstream,
            _gateway: gateway,
            gateway_port,
            gateway_ca,
        }
    }

    /// `writ agent` for orders, with an outbound listener to payments through the gateway.
    fn agent_command(&self, svid_dir: &Path) -> Command {
        let token = self.server.join_token("orders");
        let mut cmd = writ_command();
        cmd.args(["agent", "--function", "orders", "--server"])
            .arg(self.server.addr())
            .arg("--ca-file")
            .arg(self.server.ca_file())
            .args([
                "--listen",
                "127.0.0.1:0",
                "--outbound",
                "payments=127.0.0.1:0",
                "--gateway",
            ])
            .arg(format!("https://127.0.0.1:{}", self.gateway_port))
            .arg("--gateway-ca")
            .arg(&self.gateway_ca)
            .arg("--svid-dir")
            .arg(svid_dir)
            .env("WRIT_JOIN_TOKEN", token)
            .env("AWS_SESSION_TOKEN", CALLER_TOKEN);
        cmd
    }
}

/// Starts the agent and waits for its "ready" line; returns it with its local and
/// outbound ports.
fn start_agent(env: &Env, mut cmd: Command) -> (Proc, u16, u16) {
    use std::io::BufRead;
    let stderr = env.dir.unique_file("agent", "stderr");
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
    let local = port_after(&line, " on http://127.0.0.1:");
    let outbound = port_after(&line, "payments=http://127.0.0.1:");
    (proc, local, outbound)
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

/// The function's code, as AWS documents reading a secret from the extension.
const PYTHON_CLIENT: &str = r#"
import json, os, sys, urllib.request, urllib.error
port, secret, send_header = sys.argv[1], sys.argv[2], sys.argv[3] == "yes"
request = urllib.request.Request(
    f"http://localhost:{port}/secretsmanager/get?secretId={urllib.parse.quote(secret, safe='')}")
if send_header:
    request.add_header("X-Aws-Parameters-Secrets-Token", os.environ["AWS_SESSION_TOKEN"])
try:
    with urllib.request.urlopen(request) as response:
        print(response.status, json.loads(response.read())["SecretString"])
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
"#;

fn python_get(port: u16, secret: &str, header: bool) -> String {
    let out = common::python3()
        .args(["-c", &format!("import urllib.parse\n{PYTHON_CLIENT}")])
        .args([
            port.to_string().as_str(),
            secret,
            if header { "yes" } else { "no" },
        ])
        .env("AWS_SESSION_TOKEN", CALLER_TOKEN)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string() + &String::from_utf8_lossy(&out.stderr)
}

/// `GET /secretsmanager/get?QUERY` of the agent on `port`, with the caller token: the status
/// and the JSON answer.
fn agent_get(port: u16, query: &str) -> (u16, serde_json::Value) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-w",
            "\n%{http_code}",
            "-H",
            &format!("X-Aws-Parameters-Secrets-Token: {CALLER_TOKEN}"),
        ])
        .arg(format!(
            "http://127.0.0.1:{port}/secretsmanager/get?{query}"
        ))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or((&text, "0"));
    (
        code.trim().parse().unwrap_or(0),
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

fn call_payments(outbound: u16) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "-w", "\n%{http_code}", "-d", r#"{"amount": 1}"#])
        .arg(format!("http://127.0.0.1:{outbound}/pay/charge"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or((&text, "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

#[test]
fn a_function_behind_its_agent_reads_its_secret_and_calls_through_the_gateway() {
    let env = Env::new("agent", "1h");
    let svid_dir = env.dir.join("svid");
    let (_agent, local, outbound) = start_agent(&env, env.agent_command(&svid_dir));

    // The secret, read as AWS documents it; without the header, refused.
    assert_eq!(
        python_get(local, "prod/orders-db", true),
        "200 postgres://orders:pw@db/orders"
    );
    let refused = python_get(local, "prod/orders-db", false);
    assert!(refused.starts_with("401"), "{refused}");
    let not_allowed = python_get(local, "prod/other", true);
    assert!(not_allowed.starts_with("403"), "{not_allowed}");

    // The SVID files for processes that need them; the key is the owner's only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(svid_dir.join("svid.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // A plain-HTTP call to the outbound listener reaches payments through the gateway,
    // as orders.
    let (code, body) = wait_for("the gateway to sync", Duration::from_secs(15), || {
        let r = call_payments(outbound);
        (r.0 == 200).then_some(r)
    });
    assert_eq!(code, 200);
    let seen: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        seen["headers"]["x-writ-caller"],
        format!("spiffe://{TRUST_DOMAIN}/fn/orders")
    );

    // A JWT-SVID on request.
    let jwt = Command::new("curl")
        .args([
            "-sS",
            "-H",
            &format!("X-Aws-Parameters-Secrets-Token: {CALLER_TOKEN}"),
        ])
        .arg(format!(
            "http://127.0.0.1:{local}/v1/jwt?aud=spiffe://{TRUST_DOMAIN}/fn/payments"
        ))
        .output()
        .unwrap();
    let jwt: serde_json::Value = serde_json::from_slice(&jwt.stdout).unwrap();
    assert!(jwt["token"].as_str().unwrap().starts_with("eyJ"), "{jwt}");

    // Other versions, by staging label and by id, as the AWS extension serves them.
    let rotated = env.dir.join("db-url-2");
    std::fs::write(&rotated, "postgres://orders:pw2@db/orders").unwrap();
    env.server.cli_ok(&[
        "secret",
        "put",
        "prod/orders-db",
        "--value-file",
        rotated.to_str().unwrap(),
    ]);
    let (status, previous) = agent_get(local, "secretId=prod%2Forders-db&versionStage=AWSPREVIOUS");
    assert_eq!(status, 200, "{previous}");
    assert_eq!(previous["SecretString"], "postgres://orders:pw@db/orders");
    assert_eq!(previous["VersionStages"], json!(["AWSPREVIOUS"]));
    let id = previous["VersionId"].as_str().unwrap().to_string();
    let (status, by_id) = agent_get(local, &format!("secretId=prod%2Forders-db&versionId={id}"));
    assert_eq!(
        (status, &by_id["SecretString"]),
        (200, &previous["SecretString"])
    );
    let (status, unknown) = agent_get(local, "secretId=prod%2Forders-db&versionStage=NOPE");
    assert_eq!(status, 404, "{unknown}");
    // Another secret's versions are as forbidden as its current value.
    let (status, other) = agent_get(local, "secretId=prod%2Fother&versionStage=AWSPREVIOUS");
    assert_eq!(status, 403, "{other}");

    // Revoking orders stops its next call within a second: the gateway refuses it (401),
    // or the agent, which follows the feed too, already does (403).
    env.server.cli_ok(&["revoke", "--fn", "orders"]);
    let revoked_at = Instant::now();
    wait_for("the revocation", Duration::from_secs(5), || {
        matches!(call_payments(outbound).0, 401 | 403).then_some(())
    });
    assert!(
        revoked_at.elapsed() < Duration::from_millis(1500),
        "{:?}",
        revoked_at.elapsed()
    );
    // The agent drops its cached secret and says why.
    let after = wait_for(
        "the agent to follow the feed",
        Duration::from_secs(5),
        || {
            let r = python_get(local, "prod/orders-db", true);
            r.starts_with("403").then_some(r)
        },
    );
    assert!(after.contains("revoked"), "{after}");
}

#[test]
fn the_svid_rotates_during_a_long_run_without_a_failed_call() {
    let env = Env::new("agent-rotate", "12s");
    let svid_dir = env.dir.join("svid");
    let (_agent, _local, outbound) = start_agent(&env, env.agent_command(&svid_dir));
    let first = std::fs::read_to_string(svid_dir.join("svid.pem")).unwrap();
    wait_for("the gateway to sync", Duration::from_secs(15), || {
        (call_payments(outbound).0 == 200).then_some(())
    });
    let started = Instant::now();
    let mut calls = 0;
    while started.elapsed() < Duration::from_secs(14) {
        let (code, body) = call_payments(outbound);
        assert_eq!(
            code,
            200,
            "call {calls} failed after {:?}: {body}",
            started.elapsed()
        );
        calls += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    let last = std::fs::read_to_string(svid_dir.join("svid.pem")).unwrap();
    assert_ne!(first, last, "the SVID was renewed during the run");
    assert!(calls > 50);
}

#[test]
fn as_a_lambda_extension_it_registers_and_leaves_on_shutdown() {
    let env = Env::new("agent-lambda", "1h");
    let api_log = env.dir.join("extensions-api.jsonl");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/extensions_api.py");
    let mut api = common::python3();
    api.arg(script).arg(&api_log);
    let (_api, api_port) = start_until_port(api, &env.dir, "extensions-api", "listening ");
    let mut cmd = env.agent_command(&env.dir.join("svid"));
    cmd.env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{api_port}"));
    let (mut agent, _, _) = start_agent(&env, cmd);
    let status = wait_for(
        "the agent to leave on SHUTDOWN",
        Duration::from_secs(15),
        || agent.try_wait(),
    );
    assert!(status.success(), "{status}");
    let log = std::fs::read_to_string(&api_log).unwrap();
    assert!(log.contains(r#""register": "writ-agent""#), "{log}");
    assert!(log.contains(r#""events": ["INVOKE", "SHUTDOWN"]"#), "{log}");
    assert!(
        log.matches("next").count() >= 2,
        "an INVOKE, then SHUTDOWN: {log}"
    );
}

/// The certificates in a PEM bundle file.
fn bundle_certs(path: &Path) -> Vec<String> {
    common::pem_certificates(&std::fs::read_to_string(path).unwrap_or_default())
}

/// Through the agent, as the function does, in one phase of a CA rotation: a JWT-SVID for
/// an audience not asked for before and a secret not read before (so neither comes from
/// the agent's caches), and a call through the outbound listener.
fn through_the_agent(env: &Env, local: u16, outbound: u16, phase: &str) {
    let value = env.dir.join(format!("value-{phase}"));
    std::fs::write(&value, format!("secret of {phase}")).unwrap();
    let name = format!("prod/orders-{phase}");
    env.server.cli_ok(&[
        "secret",
        "put",
        &name,
        "--value-file",
        value.to_str().unwrap(),
    ]);
    assert_eq!(
        python_get(local, &name, true),
        format!("200 secret of {phase}"),
        "{phase}: the secret through the agent"
    );
    let jwt = Command::new("curl")
        .args([
            "-sS",
            "-w",
            "\n%{http_code}",
            "-H",
            &format!("X-Aws-Parameters-Secrets-Token: {CALLER_TOKEN}"),
        ])
        .arg(format!(
            "http://127.0.0.1:{local}/v1/jwt?aud=spiffe://{TRUST_DOMAIN}/fn/payments-{phase}"
        ))
        .output()
        .unwrap();
    let jwt = String::from_utf8_lossy(&jwt.stdout).to_string();
    let (body, code) = jwt.rsplit_once('\n').unwrap_or((&jwt, "0"));
    assert_eq!(code, "200", "{phase}: a JWT-SVID through the agent: {body}");
    let token: serde_json::Value = serde_json::from_str(body).unwrap();
    assert!(
        token["token"]
            .as_str()
            .is_some_and(|t| t.starts_with("eyJ")),
        "{phase}: {body}"
    );
    let (code, body) = call_payments(outbound);
    assert_eq!(
        code, 200,
        "{phase}: a call through the outbound listener: {body}"
    );
}

#[test]
fn a_running_agent_follows_a_ca_rotation_through_activation() {
    let env = Env::new("agent-ca-rotation", "1h");
    let svid_dir = env.dir.join("svid");
    let (agent, local, outbound) = start_agent(&env, env.agent_command(&svid_dir));
    let old = bundle_certs(&env.server.ca_file());
    assert_eq!(old.len(), 1, "one CA before the rotation");
    wait_for("the gateway to sync", Duration::from_secs(15), || {
        (call_payments(outbound).0 == 200).then_some(())
    });
    through_the_agent(&env, local, outbound, "before");

    // A new CA, published now, signing (the server's TLS certificate too) in 5 seconds.
    env.server
        .cli_ok(&["ca", "rotate", "--kind", "x509", "--activate-after", "5s"]);
    let new_ca = wait_for("the new CA to be published", PATIENCE, || {
        let certs = common::pem_certificates(&env.server.cli_ok(&["ca", "show", "--bundle"]));
        certs.into_iter().find(|c| !old.contains(c))
    });
    let new_ca_file = env.dir.join("new-ca.pem");
    std::fs::write(&new_ca_file, &new_ca).unwrap();

    // The agent takes the published bundle (both CAs) from the server.
    wait_for("the agent to follow the bundle", PATIENCE, || {
        let held = bundle_certs(&svid_dir.join("bundle.pem"));
        (held.contains(&new_ca) && held.contains(&old[0])).then_some(())
    });
    through_the_agent(&env, local, outbound, "during");

    // Activation: the server now presents a certificate only the new CA verifies.
    wait_for(
        "the server to present a certificate the new CA signed",
        PATIENCE,
        || {
            common::Curl::new("GET", &env.server.url("/v1/bundle"), &new_ca_file)
                .try_send()
                .ok()
                .filter(|r| r.status == 200)
        },
    );
    through_the_agent(&env, local, outbound, "after");

    // The revocation feed is followed over the new certificate too: the agent itself
    // says the identity was revoked.
    env.server.cli_ok(&["revoke", "--fn", "orders"]);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let r = python_get(local, "prod/orders-db", true);
        if r.starts_with("403") && r.contains("the agent serves nothing more") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the agent did not follow the feed after the rotation: {r}\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
