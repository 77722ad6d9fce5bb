//! `writ gateway` end to end: real processes on 127.0.0.1 (the server, the gateway, and a
//! Python upstream that echoes what it received), curl and openssl as the clients.
//! mTLS and JWT-SVIDs, intentions, webhooks (GitHub and Stripe style), API keys with a
//! quota, body limits and JSON Schema, header hygiene, revocation, and fail-static
//! behaviour while the server is down, and connections spread over the worker threads.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{
    Curl, Proc, Response, Server, Svid, TRUST_DOMAIN, TempDir, localhost_certificate, openssl,
    wait_for, writ_command,
};
use serde_json::json;

fn hmac_hex(key: &[u8], data: &[u8]) -> String {
    let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), data);
    tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

struct Env {
    dir: TempDir,
    server: Server,
    gateway: Option<Proc>,
    gateway_port: u16,
    /// Where the gateway serves `/metrics` (plain HTTP).
    metrics_port: u16,
    gateway_ca: PathBuf,
    _upstream: Proc,
    upstream_port: u16,
    api_key: String,
}

impl Env {
    fn new(label: &str) -> Env {
        Env::with_settings(label, "")
    }

    /// An environment whose gateway configuration starts with `settings` (top-level keys).
    fn with_settings(label: &str, settings: &str) -> Env {
        Env::with_routes(label, settings, "")
    }

    /// An environment whose gateway configuration starts with `settings` (top-level keys)
    /// and has `routes` (`[[route]]` tables) after its own.
    fn with_routes(label: &str, settings: &str, routes: &str) -> Env {
        let dir = TempDir::new(label);
        let server = Server::start(&dir.join("data"), &["--trust-domain", TRUST_DOMAIN]);
        let (up, up_port) = common::echo_upstream(&dir);
        for f in ["orders", "payments", "stranger"] {
            server.register(f);
        }
        server.cli_ok(&["intention", "allow", "orders", "payments"]);
        for (name, value) in [("hooks/github", "gh-key"), ("hooks/stripe", "whsec_test")] {
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
        // The gateway's token may read what it enforces, report events, and read the
        // webhook keys, and nothing else.
        common::gateway::token(
            &server,
            &dir,
            &[
                json!({"Effect": "Allow", "Action": "secrets:GetSecretValue",
                     "Resource": "writ:secret/hooks/*"}),
            ],
        );
        let (gateway_ca, cert, key) = localhost_certificate(&dir, "gateway");
        let schema = dir.join("charge.schema.json");
        std::fs::write(
            &schema,
            json!({"type": "object", "required": ["amount"],
                   "properties": {"amount": {"type": "integer", "minimum": 1},
                                  "currency": {"type": "string"}}})
            .to_string(),
        )
        .unwrap();
        let out = run_writ(&[
            "gateway",
            "apikey",
            "partner-a",
            "--plan",
            "small",
            "--route",
            "partner",
        ]);
        let api_key = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let entry = String::from_utf8_lossy(&out.stderr);
        let entry = &entry[entry.find("[[api_key]]").expect("the config entry")..];
        let upstream = format!("http://127.0.0.1:{up_port}");
        let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let config = format!(
            r#"{settings}
metrics_listen = "127.0.0.1:{metrics_port}"
max_staleness = "6s"
{head}

[[route]]
name = "payments"
function = "payments"
path_prefix = "/pay"
upstream = "{upstream}"
auth = ["mtls", "jwt"]
max_body = 1024
schema = "charge.schema.json"

[[route]]
name = "slow"
function = "payments"
path_prefix = "/slow"
upstream = "{upstream}"
auth = ["mtls"]
timeout = "2s"

[[route]]
name = "orders"
function = "orders"
path_prefix = "/orders"
upstream = "{upstream}"
auth = ["jwt"]

[[route]]
name = "github"
function = "hooks"
path_prefix = "/hooks/github"
upstream = "{upstream}"
auth = ["webhook"]
[route.webhook]
style = "github"
secret = "hooks/github"

[[route]]
name = "stripe"
function = "hooks"
path_prefix = "/hooks/stripe"
upstream = "{upstream}"
auth = ["webhook"]
[route.webhook]
style = "stripe"
secret = "hooks/stripe"
tolerance = "5m"

[[route]]
name = "partner"
function = "partner-api"
path_prefix = "/partner"
upstream = "{upstream}"
auth = ["api-key"]

[[route]]
name = "internal"
function = "internal-api"
path_prefix = "/internal"
upstream = "{upstream}"
auth = ["api-key"]

{routes}

[usage_plan.small]
quota = 2

{entry}
"#,
            head = common::gateway::config_head(&server, &cert, &key),
        );
        std::fs::write(dir.join("gateway.toml"), config).unwrap();
        let mut env = Env {
            dir,
            server,
            gateway: None,
            gateway_port: 0,
            metrics_port,
            gateway_ca,
            _upstream: up,
            upstream_port: up_port,
            api_key,
        };
        env.start_gateway();
        env
    }

    fn start_gateway(&mut self) {
        let mut cmd = writ_command();
        cmd.args(["gateway", "--config"])
            .arg(self.dir.join("gateway.toml"));
        let (proc, port) =
            common::start_until_port(cmd, &self.dir, "gateway", "writ: gateway listening on ");
        self.gateway = Some(proc);
        self.gateway_port = port;
        // Ready once it has heard from the server: the allowed caller gets through.
    }

    fn curl(&self, method: &str, path: &str) -> Curl {
        Curl::new(
            method,
            &format!("https://127.0.0.1:{}{path}", self.gateway_port),
            &self.gateway_ca,
        )
    }

    fn login(&self, function: &str) -> Svid {
        common::gateway::login(&self.server, &self.dir, function)
    }

    fn charge(&self, svid: &Svid) -> Response {
        self.curl("POST", "/pay/charge")
            .client_cert(&svid.cert, &svid.key)
            .json(&json!({"amount": 100}))
            .send()
    }

    fn wait_ready(&self, svid: &Svid) {
        wait_for("the gateway to sync", Duration::from_secs(15), || {
            (self.charge(svid).status == 200).then_some(())
        });
    }

    fn gateway_log(&self) -> String {
        self.gateway.as_ref().map(Proc::log).unwrap_or_default()
    }
}

fn run_writ(args: &[&str]) -> std::process::Output {
    common::run(writ_command().args(args))
}

#[test]
fn svids_and_jwt_svids_are_authenticated_and_authorized_by_intentions() {
    let env = Env::new("gw-identity");
    let orders = env.login("orders");
    env.wait_ready(&orders);

    // A valid SVID of an allowed caller: through, with the verified identity and a trace.
    let r = env
        .curl("POST", "/pay/charge?x=1")
        .client_cert(&orders.cert, &orders.key)
        .header("x-writ-caller: spiffe://example.org/fn/admin")
        .header("traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        .json(&json!({"amount": 5}))
        .send()
        .expect(200);
    let seen = r.json();
    assert_eq!(
        seen["headers"]["x-writ-caller"],
        "spiffe://example.org/fn/orders"
    );
    assert_eq!(seen["headers"]["x-writ-authenticated-by"], "mtls");
    assert_eq!(
        seen["headers"]["traceparent"],
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    );
    assert_eq!(seen["path"], "/pay/charge?x=1");
    // The upstream is asked for by its own name, not the gateway's.
    assert_eq!(
        seen["headers"]["host"],
        format!("127.0.0.1:{}", env.upstream_port)
    );
    assert_eq!(seen["body"], r#"{"amount":5}"#);
    assert_eq!(
        r.headers["content-type"][0], "application/json",
        "{}",
        r.headers
    );

    // What a caller could forge is the gateway's to say: identity headers (also spelled
    // with `_`), any other `x-writ-*`, forwarding headers and the API key are dropped;
    // `x-forwarded-for` keeps the caller's list (both lines, in order) and gets the
    // caller's address added.
    let r = env
        .curl("POST", "/pay/charge")
        .client_cert(&orders.cert, &orders.key)
        .header("x_writ_caller: spiffe://example.org/fn/admin")
        .header("x-writ-authenticated-by: public")
        .header("x-writ-anything: 1")
        .header("x-forwarded-client-cert: Hash=1")
        .header("x-forwarded-for: 203.0.113.9")
        .header("x-forwarded-for: 203.0.113.10")
        .header("x_forwarded_for: 203.0.113.11")
        .header("x-forwarded-proto: http")
        .header("x-forwarded-host: evil.example")
        .header("x-real-ip: 203.0.113.9")
        .header("forwarded: for=203.0.113.9")
        .header("x-api-key: wk_1.2")
        .header("x-kept: yes")
        .json(&json!({"amount": 5}))
        .send()
        .expect(200);
    let seen = r.json();
    let mut lines: Vec<(String, String)> = seen["header_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            let name = pair[0].as_str().unwrap().to_string();
            let value = pair[1].as_str().unwrap().to_string();
            (name, value)
        })
        .filter(|(name, _)| {
            ![
                "traceparent",
                "user-agent",
                "accept",
                "content-type",
                "content-length",
            ]
            .contains(&name.as_str())
        })
        .collect();
    lines.sort();
    let owned = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        lines,
        owned(&[
            ("host", &format!("127.0.0.1:{}", env.upstream_port)),
            ("x-forwarded-for", "203.0.113.9, 203.0.113.10, 127.0.0.1"),
            ("x-forwarded-proto", "https"),
            ("x-kept", "yes"),
            ("x-writ-authenticated-by", "mtls"),
            ("x-writ-caller", "spiffe://example.org/fn/orders"),
            ("x-writ-route", "payments"),
        ]),
        "{}",
        r.body
    );

    // The upstream's hop-by-hop headers stay between it and the gateway: keep-alive, and
    // those its Connection header names; its other headers come through.
    let r = env
        .curl("POST", "/pay/hop")
        .client_cert(&orders.cert, &orders.key)
        .header("x-echo-hop: X-Private-Hop")
        // The same the other way: what the caller's Connection names stays at the gateway.
        .header("Connection: keep-alive, X-Caller-Hop")
        .header("X-Caller-Hop: 1")
        .json(&json!({"amount": 5}))
        .send()
        .expect(200);
    assert_eq!(r.json()["headers"]["x-echo-hop"], "X-Private-Hop");
    assert!(
        r.json()["headers"].get("x-caller-hop").is_none(),
        "{}",
        r.body
    );
    assert_eq!(r.headers["x-public"][0], "yes", "{}", r.headers);
    for gone in ["x-private-hop", "keep-alive"] {
        assert!(r.headers.get(gone).is_none(), "{gone}: {}", r.headers);
    }
    assert!(
        r.headers["connection"]
            .as_array()
            .is_none_or(|values| values.iter().all(|v| !v
                .as_str()
                .unwrap()
                .to_ascii_lowercase()
                .contains("private"))),
        "{}",
        r.headers
    );

    // No certificate, or one from another trust domain: 401.
    let none = env
        .curl("POST", "/pay/charge")
        .json(&json!({"amount": 5}))
        .send();
    assert_eq!(none.status, 401, "{}", none.body);
    let evil_key = env.dir.join("evil.key");
    let evil_cert = env.dir.join("evil.pem");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        evil_key.to_str().unwrap(),
        "-out",
        evil_cert.to_str().unwrap(),
        "-subj",
        "/O=evil",
        "-days",
        "1",
        "-addext",
        "subjectAltName=URI:spiffe://evil.org/fn/orders",
    ]);
    let foreign = env
        .curl("POST", "/pay/charge")
        .client_cert(&evil_cert, &evil_key)
        .json(&json!({"amount": 5}))
        .send();
    assert_eq!(foreign.status, 401, "{}", foreign.body);

    // Authenticated, but no intention lets it call payments: 403, saying why.
    let stranger = env.login("stranger");
    let r = env.charge(&stranger);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.error_message().contains("stranger"), "{}", r.body);

    // JWT-SVIDs: the audience must be the route's function.
    let token = |aud: &str| {
        orders.mint_jwt(&env.server, aud).expect(200).json()["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let right = token(&format!("spiffe://{TRUST_DOMAIN}/fn/payments"));
    let r = env
        .curl("POST", "/pay/charge")
        .bearer(&right)
        .json(&json!({"amount": 5}))
        .send()
        .expect(200);
    assert_eq!(r.json()["headers"]["x-writ-authenticated-by"], "jwt");
    // Verified (and cached) for payments, the same token is no good for another function.
    let r = env.curl("GET", "/orders/list").bearer(&right).send();
    assert_eq!(r.status, 401, "{}", r.body);
    let wrong = token(&format!("spiffe://{TRUST_DOMAIN}/fn/orders"));
    let r = env
        .curl("POST", "/pay/charge")
        .bearer(&wrong)
        .json(&json!({"amount": 5}))
        .send();
    assert_eq!(r.status, 401, "{}", r.body);

    // An expired SVID: 401.
    env.server
        .cli_ok(&["fn", "register", "brief", "--x509-ttl", "1s"]);
    env.server
        .cli_ok(&["intention", "allow", "brief", "payments"]);
    let brief = env.login("brief");
    std::thread::sleep(Duration::from_millis(2100));
    let r = env.charge(&brief);
    assert_eq!(r.status, 401, "{}", r.body);

    // A revoked SVID: refused within about a second of the revocation.
    env.server.cli_ok(&["revoke", "--serial", &orders.serial]);
    wait_for(
        "the revocation to reach the gateway",
        Duration::from_secs(5),
        || (env.charge(&orders).status == 401).then_some(()),
    );

    // Every decision is in the server's audit log, reported by the gateway's token.
    let event = env.server.wait_for_audit("a gateway event", |e| {
        e["action"] == "writ:Invoke"
            && e["outcome"] == "denied"
            && e["actor"] == format!("spiffe://{TRUST_DOMAIN}/fn/stranger")
    });
    assert!(
        event["reportedBy"].as_str().unwrap().starts_with("token:"),
        "{event}"
    );
}

#[test]
fn webhooks_api_keys_and_request_hygiene() {
    let env = Env::new("gw-hygiene");
    let orders = env.login("orders");
    env.wait_ready(&orders);

    // GitHub style: the signature covers every byte of the body.
    let body = r#"{"action":"opened","number":7}"#;
    let sig = format!("sha256={}", hmac_hex(b"gh-key", body.as_bytes()));
    let r = env
        .curl("POST", "/hooks/github")
        .header(&format!("X-Hub-Signature-256: {sig}"))
        .body(body, "application/json")
        .send();
    assert_eq!(r.status, 200, "{}\n{}", r.body, env.gateway_log());
    assert_eq!(r.json()["headers"]["x-writ-caller"], "webhook:github");
    let tampered = body.replace('7', "8");
    let r = env
        .curl("POST", "/hooks/github")
        .header(&format!("X-Hub-Signature-256: {sig}"))
        .body(tampered, "application/json")
        .send();
    assert_eq!(r.status, 401, "{}", r.body);

    // Stripe style: fresh is accepted, a replay from outside the window is not.
    let stripe = |t: i64| {
        let sig = hmac_hex(b"whsec_test", format!("{t}.{body}").as_bytes());
        env.curl("POST", "/hooks/stripe")
            .header(&format!("Stripe-Signature: t={t},v1={sig}"))
            .body(body, "application/json")
            .send()
    };
    assert_eq!(stripe(now()).status, 200);
    assert_eq!(stripe(now() - 600).status, 401);

    // Oversize bodies: 413, whether announced or not.
    let big = format!(r#"{{"amount": 1, "pad": "{}"}}"#, "x".repeat(2000));
    let r = env
        .curl("POST", "/pay/charge")
        .client_cert(&orders.cert, &orders.key)
        .body(big, "application/json")
        .send();
    assert_eq!(r.status, 413, "{}", r.body);

    // A schema violation: 400 naming the field.
    let r = env
        .curl("POST", "/pay/charge")
        .client_cert(&orders.cert, &orders.key)
        .json(&json!({"amount": "lots"}))
        .send();
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.error_message().contains("/amount"), "{}", r.body);

    // Paths an upstream that unescapes before routing could read as another path (here
    // `/pay/../admin` and Tomcat's `..;`, which intentions never allowed): 400 saying why.
    for (path, why) in [
        ("/pay/%252e%252e/admin", "escaped twice"),
        ("/pay/..%3b/charge", "escaped path parameter"),
    ] {
        let r = env
            .curl("POST", path)
            .client_cert(&orders.cert, &orders.key)
            .json(&json!({"amount": 1}))
            .send();
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        assert!(r.error_message().contains(why), "{path}: {}", r.body);
    }

    // API keys are scoped to their routes: partner-a's key is no good on another route.
    let r = env
        .curl("GET", "/internal/admin")
        .header(&format!("x-api-key: {}", env.api_key))
        .send();
    assert_eq!(r.status, 403, "{}", r.body);

    // API keys: a quota of 2, then 429 with Retry-After; a wrong key is 401.
    for _ in 0..2 {
        env.curl("GET", "/partner/report")
            .header(&format!("x-api-key: {}", env.api_key))
            .send()
            .expect(200);
    }
    let r = env
        .curl("GET", "/partner/report")
        .header(&format!("x-api-key: {}", env.api_key))
        .send();
    assert_eq!(r.status, 429, "{}", r.body);
    let wrong = format!("{}x", env.api_key);
    let r = env
        .curl("GET", "/partner/report")
        .header(&format!("x-api-key: {wrong}"))
        .send();
    assert_eq!(r.status, 401, "{}", r.body);
    // The key never reaches the upstream.
    let unknown_route = env.curl("GET", "/nowhere").send();
    assert_eq!(unknown_route.status, 404);
}

#[test]
fn with_the_server_down_the_gateway_enforces_its_last_state_until_the_bound() {
    let mut env = Env::new("gw-static");
    let orders = env.login("orders");
    let revoked = env.login("orders");
    let stranger = env.login("stranger");
    env.wait_ready(&orders);
    env.server.cli_ok(&["revoke", "--serial", &revoked.serial]);
    wait_for("the revocation", Duration::from_secs(5), || {
        (env.charge(&revoked).status == 401).then_some(())
    });

    env.server.stop();
    // A restarted gateway starts from its kept state, without the server.
    env.gateway = None;
    env.start_gateway();
    let started = std::time::Instant::now();
    assert_eq!(
        env.charge(&orders).status,
        200,
        "allowed traffic flows: {}",
        env.gateway_log()
    );
    assert_eq!(env.charge(&stranger).status, 403, "and the rest is refused");
    assert_eq!(
        env.charge(&revoked).status,
        401,
        "a revocation made before stays in force"
    );

    // Past the staleness bound (6 s since the server last answered), it denies.
    let r = wait_for("the staleness bound", Duration::from_secs(20), || {
        let r = env.charge(&orders);
        (r.status != 200).then_some(r)
    });
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(
        r.error_message().contains("has not heard from the server"),
        "{}",
        r.body
    );
    assert!(started.elapsed() < Duration::from_secs(15));
}

/// One kept-alive HTTPS connection to the gateway, driven by a Python client.
struct KeptAlive {
    child: std::process::Child,
    input: std::process::ChildStdin,
    output: std::io::BufReader<std::process::ChildStdout>,
}

impl KeptAlive {
    fn open(env: &Env, svid: &Svid) -> KeptAlive {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/keepalive_client.py");
        let mut child = common::python3()
            .arg(script)
            .args(["127.0.0.1", &env.gateway_port.to_string()])
            .args([&env.gateway_ca, &svid.cert, &svid.key])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let input = child.stdin.take().unwrap();
        let output = std::io::BufReader::new(child.stdout.take().unwrap());
        KeptAlive {
            child,
            input,
            output,
        }
    }

    /// The status of `METHOD PATH` sent on the connection (with a charge as its JSON body
    /// for a POST; `~POST` sends it 100 ms after the headers), and the connection's local
    /// port.
    fn request(&mut self, method: &str, path: &str) -> (u16, u16) {
        let body = method.ends_with("POST").then_some(r#"{"amount": 100}"#);
        let (status, port, close) = self.send(method, path, body);
        assert!(!close, "{method} {path}: the gateway closed the connection");
        (status, port)
    }

    /// The status of `METHOD PATH` with `body` (JSON, on one line), the local port it went
    /// out on, and whether the response said `Connection: close`.
    fn send(&mut self, method: &str, path: &str, body: Option<&str>) -> (u16, u16, bool) {
        use std::io::{BufRead, Write};
        match body {
            Some(body) => writeln!(self.input, "{method} {path} {body}").unwrap(),
            None => writeln!(self.input, "{method} {path}").unwrap(),
        }
        self.input.flush().unwrap();
        let mut line = String::new();
        self.output.read_line(&mut line).unwrap();
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts[..] {
            [status, port, close] => (
                status.parse().unwrap(),
                port.parse().unwrap(),
                close == "close",
            ),
            _ => panic!("the keep-alive client answered {line:?} to {method} {path}"),
        }
    }
}

impl Drop for KeptAlive {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn every_request_on_a_kept_alive_connection_is_authorized_on_its_own() {
    let env = Env::new("gw-keepalive");
    let orders = env.login("orders");
    env.wait_ready(&orders);
    let mut conn = KeptAlive::open(&env, &orders);
    let mut ports = Vec::new();
    let mut status = |conn: &mut KeptAlive, method: &str, path: &str| {
        let (status, port) = conn.request(method, path);
        ports.push(port);
        status
    };
    assert_eq!(status(&mut conn, "POST", "/pay/charge"), 200);
    assert_eq!(status(&mut conn, "POST", "/pay/refund"), 200);

    // Narrowed to POST /pay/charge: on the same connection, another method or path is
    // refused, and the allowed request still passes between refusals.
    env.server.cli_ok(&[
        "intention",
        "allow",
        "orders",
        "payments",
        "--method",
        "POST",
        "--path",
        "/pay/charge",
    ]);
    wait_for(
        "the narrowed intention to reach the gateway",
        Duration::from_secs(5),
        || (status(&mut conn, "DELETE", "/pay/refund") == 403).then_some(()),
    );
    assert_eq!(status(&mut conn, "POST", "/pay/charge"), 200);
    assert_eq!(status(&mut conn, "GET", "/pay/charge"), 403);
    // Refused with a body the gateway never needed: it is read and dropped, so the
    // connection carries the next request.
    // (`~POST` sends the body 100 ms after the headers; the gateway waits for it.)
    assert_eq!(status(&mut conn, "~POST", "/pay/refund"), 403);
    assert_eq!(status(&mut conn, "~POST", "/nowhere"), 404);
    assert_eq!(status(&mut conn, "POST", "/pay/charge"), 200);
    assert_eq!(status(&mut conn, "POST", "/pay/charge"), 200);

    // A deny in place of the allow: the very request just allowed is refused next.
    env.server
        .cli_ok(&["intention", "deny", "orders", "payments"]);
    wait_for(
        "the deny to reach the gateway",
        Duration::from_secs(5),
        || (status(&mut conn, "POST", "/pay/charge") == 403).then_some(()),
    );
    assert!(
        ports.windows(2).all(|w| w[0] == w[1]),
        "not one connection: local ports {ports:?}"
    );
    assert!(ports.len() >= 10);

    // A body over the route's limit is not read: the 413 says the connection ends, and the
    // client goes on over a new one.
    let big = format!(r#"{{"amount": 1, "pad": "{}"}}"#, "x".repeat(2000));
    let (code, port, close) = conn.send("POST", "/pay/charge", Some(&big));
    assert_eq!((code, close), (413, true));
    assert_eq!(port, ports[0]);
    let (code, _, close) = conn.send("POST", "/pay/charge", None);
    assert_eq!((code, close), (403, false));
}

#[test]
fn answers_reach_the_caller_whole_however_the_upstream_frames_them() {
    let env = Env::new("gw-framing");
    let orders = env.login("orders");
    env.wait_ready(&orders);
    // Chunked, to the connection's close, by length, and alternated, so that a pooled
    // upstream connection left mid-answer would show in the next answer.
    let frames = [
        "chunked",
        "close",
        "chunked",
        "length",
        "close",
        "length",
        "bad-length",
        "length",
        "chunked",
    ];
    for frame in frames {
        let r = env
            .curl("POST", "/pay/charge")
            .client_cert(&orders.cert, &orders.key)
            .header(&format!("x-echo-frame: {frame}"))
            .json(&json!({"amount": 1}))
            .send();
        if frame == "bad-length" {
            // Two lengths: a 502, not a guess at which.
            assert_eq!(r.status, 502, "{}", r.body);
            assert_eq!(r.json()["error"]["code"], "upstreamFailed", "{}", r.body);
            continue;
        }
        assert_eq!(r.status, 200, "{frame}: {}\n{}", r.body, env.gateway_log());
        let seen = r.json();
        assert_eq!(seen["path"], "/pay/charge", "{frame}: {}", r.body);
        assert_eq!(seen["headers"]["x-echo-frame"], frame, "{}", r.body);
        assert_eq!(seen["body"], r#"{"amount":1}"#, "{}", r.body);
    }
}

#[test]
fn an_answer_the_upstream_stops_sending_is_cut_off_after_the_routes_timeout() {
    let env = Env::new("gw-stall");
    let orders = env.login("orders");
    env.wait_ready(&orders);
    // The upstream sends the head and half the body, then nothing for 5 s; the route's
    // timeout is 2 s. The status has gone out by then, so the gateway can only end the
    // answer short: curl sees the connection close before the length it was promised.
    let cut = env
        .curl("GET", "/slow/x")
        .client_cert(&orders.cert, &orders.key)
        .header("x-echo-frame: stall")
        .try_send()
        .expect_err("the whole answer, after the upstream's 5 s pause");
    assert!(cut.contains("(18) transfer closed"), "{cut}");
    let log = env.gateway_log();
    assert!(
        log.contains("the upstream sent nothing of the body for 2s"),
        "{log}"
    );
    // The gateway's next answer on that route is whole.
    let r = env
        .curl("GET", "/slow/y")
        .client_cert(&orders.cert, &orders.key)
        .send();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["path"], "/slow/y", "{}", r.body);
}

/// The gateway's `writ_gateway_open_connections` gauge: connections per worker thread.
fn open_connections(env: &Env) -> Vec<u64> {
    let out = common::run(Command::new("curl").args([
        "-sS",
        &format!("http://127.0.0.1:{}/metrics", env.metrics_port),
    ]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("writ_gateway_open_connections{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn connections_are_spread_evenly_over_the_worker_threads() {
    // Three workers, whatever the machine's cores: the configuration's `workers`.
    let env = Env::with_settings("gw-balance", "workers = 3");
    let orders = env.login("orders");
    env.wait_ready(&orders);
    assert_eq!(open_connections(&env).len(), 3, "one gauge per worker");
    // Each connection is placed by the counts when it comes: none left from before.
    wait_for(
        "the readiness checks' connections to close",
        Duration::from_secs(5),
        || (open_connections(&env).iter().sum::<u64>() == 0).then_some(()),
    );
    // Connections opened at once, as a load tool or a client pool opens them; they wait
    // in the TLS handshake (up to its 10 s timeout), each counted by the worker serving it.
    let held: Vec<std::net::TcpStream> = (0..17)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", env.gateway_port)).unwrap())
        .collect();
    let counts = wait_for("17 open connections", Duration::from_secs(5), || {
        let counts = open_connections(&env);
        (counts.iter().sum::<u64>() == 17).then_some(counts)
    });
    let (least, most) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
    assert!(most - least <= 1, "connections per worker: {counts:?}");
    drop(held);
    wait_for("the connections to close", Duration::from_secs(5), || {
        (open_connections(&env).iter().sum::<u64>() == 0).then_some(())
    });
}

#[test]
fn https_upstreams_are_verified_against_the_routes_ca() {
    // The echo upstream over TLS, with a certificate for 127.0.0.1 from a CA of its own;
    // another CA, which did not sign it, for the route that must refuse it.
    let certs = TempDir::new("gw-tls-upstream-certs");
    let (upstream_ca, cert, key) = localhost_certificate(&certs, "upstream");
    let (other_ca, _, _) = localhost_certificate(&certs, "other");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/echo_upstream.py");
    let mut cmd = common::python3();
    cmd.arg(script).arg(&cert).arg(&key);
    let (_upstream, port) = common::start_until_port(cmd, &certs, "tls-upstream", "listening ");
    // One worker, so that consecutive requests find the same idle upstream connection.
    let env = Env::with_routes(
        "gw-tls-upstream",
        "workers = 1",
        &format!(
            r#"
[[route]]
name = "tls-trusted"
function = "payments"
path_prefix = "/tls/trusted"
upstream = "https://127.0.0.1:{port}"
upstream_ca = "{upstream_ca}"
public = true

[[route]]
name = "tls-untrusted"
function = "payments"
path_prefix = "/tls/untrusted"
upstream = "https://127.0.0.1:{port}"
upstream_ca = "{other_ca}"
public = true
"#,
            upstream_ca = upstream_ca.display(),
            other_ca = other_ca.display(),
        ),
    );

    let r = env.curl("GET", "/tls/trusted/a?x=1").send();
    assert_eq!(r.status, 200, "{}\n{}", r.body, env.gateway_log());
    let first = r.json();
    assert_eq!(first["path"], "/tls/trusted/a?x=1", "{}", r.body);
    assert_eq!(first["headers"]["host"], format!("127.0.0.1:{port}"));
    assert_eq!(first["headers"]["x-writ-route"], "tls-trusted");
    // A chunked answer, and a body too big to go out with the head (it is written while
    // the answer is awaited), over the same kept-alive TLS connection.
    let r = env
        .curl("GET", "/tls/trusted/b")
        .header("x-echo-frame: chunked")
        .send();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["path"], "/tls/trusted/b");
    let big = "z".repeat(100_000);
    let r = env
        .curl("POST", "/tls/trusted/c")
        .body(big.clone(), "text/plain")
        .send();
    assert_eq!(r.status, 200, "{}", r.body);
    let last = r.json();
    assert_eq!(last["body"], big.as_str());
    assert_eq!(
        last["peer"], first["peer"],
        "the upstream connection was not reused"
    );

    // A certificate the route's CA did not sign: 502, saying why, to the caller and in
    // the log; the upstream is not sent the request.
    let r = env.curl("GET", "/tls/untrusted/a").send();
    assert_eq!(r.status, 502, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "upstreamFailed", "{}", r.body);
    let why = "upstream TLS: certificate not trusted (UnknownIssuer)";
    assert!(
        r.json()["error"]["message"].as_str().unwrap().contains(why),
        "{}",
        r.body
    );
    assert!(env.gateway_log().contains(why), "{}", env.gateway_log());
}

#[test]
fn an_explicit_deny_is_audited_as_one_with_the_intention_that_decided() {
    let env = Env::new("gw-explicit-deny");
    let orders = env.login("orders");
    env.wait_ready(&orders);
    env.server
        .cli_ok(&["intention", "deny", "stranger", "payments"]);
    let stranger = env.login("stranger");
    wait_for(
        "the deny intention to reach the gateway",
        Duration::from_secs(10),
        || {
            let r = env.charge(&stranger);
            (r.status == 403 && r.error_message().contains("denied by intention")).then_some(())
        },
    );
    let event = env.server.wait_for_audit("the explicit deny", |e| {
        e["action"] == "writ:Invoke"
            && e["actor"] == stranger.spiffe_id.as_str()
            && e["reason"]
                .as_str()
                .is_some_and(|r| r.contains("denied by intention stranger -> payments"))
    });
    assert_eq!(event["decision"], "explicitDeny", "{event}");
    // The method and path once: the caller's message has them, the event its own.
    assert_eq!(
        event["reason"],
        "POST /pay/charge: denied by intention stranger -> payments"
    );
    assert_eq!(event["outcome"], "denied", "{event}");
    assert_eq!(
        event["matched"],
        json!(["intention stranger -> payments"]),
        "{event}"
    );

    // A caller no intention names is refused for want of an allow: an implicit deny,
    // which no statement decided.
    env.server.register("visitor");
    let visitor = env.login("visitor");
    assert_eq!(env.charge(&visitor).status, 403);
    let event = env.server.wait_for_audit("the implicit deny", |e| {
        e["action"] == "writ:Invoke" && e["actor"] == visitor.spiffe_id.as_str()
    });
    assert_eq!(event["decision"], "implicitDeny", "{event}");
    assert!(event.get("matched").is_none(), "{event}");
}

#[test]
fn requests_no_route_takes_are_audited_too() {
    let mut env = Env::new("gw-unrouted");
    let orders = env.login("orders");
    env.wait_ready(&orders);
    assert_eq!(env.curl("GET", "/nowhere/x").send().status, 404);
    assert_eq!(env.curl("GET", "/pay/%252e%252e/admin").send().status, 400);
    for (path, why) in [
        ("/nowhere/x", "GET /nowhere/x: no route for /nowhere/x"),
        ("/pay/%252e%252e/admin", "escaped twice"),
    ] {
        let event = env.server.wait_for_audit(path, |e| {
            e["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with(&format!("GET {path}:")))
        });
        assert_eq!(event["action"], "writ:Invoke", "{event}");
        assert_eq!(event["resource"], "writ:gateway/no-route", "{event}");
        assert_eq!(event["actor"], "anonymous", "{event}");
        assert_eq!(event["outcome"], "denied", "{event}");
        assert!(event.get("decision").is_none(), "{event}");
        assert!(event["reason"].as_str().unwrap().contains(why), "{event}");
    }

    // A gateway whose token may report only its functions' events: the server refuses
    // a batch that holds one of these, and the gateway sends the rest without it rather
    // than hold every later event behind it.
    let policy = env.dir.join("functions-only-policy.json");
    std::fs::write(
        &policy,
        json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["writ:ReadRevocations", "writ:ReadIntentions"],
             "Resource": "*"},
            {"Effect": "Allow", "Action": "writ:PutAuditEvents", "Resource": "writ:fn/*"}]})
        .to_string(),
    )
    .unwrap();
    let token = env
        .server
        .cli_ok(&["token", "create", "--policy", policy.to_str().unwrap()]);
    std::fs::write(env.dir.join("gateway-token"), token.trim()).unwrap();
    env.gateway = None;
    env.start_gateway();
    env.wait_ready(&orders);
    assert_eq!(env.curl("GET", "/nowhere/y").send().status, 404);
    env.curl("POST", "/pay/after")
        .client_cert(&orders.cert, &orders.key)
        .json(&json!({"amount": 1}))
        .send()
        .expect(200);
    env.server
        .wait_for_audit("the call after the unrouted one", |e| {
            e["reason"] == "POST /pay/after -> 200"
        });
    wait_for(
        "the gateway to say why it dropped an event",
        Duration::from_secs(10),
        || {
            env.gateway_log()
                .contains("writ:PutAuditEvents on writ:gateway/no-route")
                .then_some(())
        },
    );
    assert!(
        !env.server.audit_events().iter().any(|e| e["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("GET /nowhere/y"))),
        "an event the token may not report was recorded"
    );
}
