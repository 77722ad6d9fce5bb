//! Operating writ: `writ gateway --print-config` prints the configuration in the file's
//! format, and what it prints reads back as the same configuration; `writ server
//! --metrics-listen` serves Prometheus `/metrics` with requests, decisions, issuance, the
//! store's latency and the audit queue; SIGHUP reloads a running gateway's routes, and a
//! broken file leaves them as they were.

mod common;

use std::time::Duration;

use common::gateway::Gateway;
use common::{
    Server, TRUST_DOMAIN, TempDir, localhost_certificate, success, wait_for, writ_command,
};

const CONFIG: &str = r#"
listen = "127.0.0.1:8443"
trust_domain = "example.org"
state_dir = "state"
max_staleness = "90s"
[server]
addr = "https://127.0.0.1:7443"
ca_file = "ca.pem"
token_file = "gateway-token"
[tls]
cert = "gw.pem"
key = "gw.key"

[[route]]
name = "partner"
function = "partner-api"
path_prefix = "/partner"
upstream = "http://127.0.0.1:9001"
auth = ["api-key"]
timeout = "1500ms"

[usage_plan.basic]
quota = 100
quota_period = "1d"
shared = true

[[api_key]]
id = "partner-a"
hash = "sha256:abababababababababababababababababababababababababababababababab"
plan = "basic"
routes = ["partner"]
"#;

fn print_config(file: &std::path::Path) -> String {
    let out = common::run(
        writ_command()
            .args(["gateway", "--config"])
            .arg(file)
            .arg("--print-config"),
    );
    success("writ gateway --print-config", &out)
}

#[test]
fn print_config_writes_toml_that_reads_back_the_same() {
    let dir = TempDir::new("gw-print-config");
    let file = dir.join("gateway.toml");
    std::fs::write(&file, CONFIG).unwrap();
    let printed = print_config(&file);
    // TOML in the file's format, not Rust's Debug output: defaults filled, durations in
    // the file's units, paths resolved from the file's directory.
    assert!(
        printed.starts_with("listen = \"127.0.0.1:8443\"\n"),
        "{printed}"
    );
    assert!(!printed.contains("Config {"), "{printed}");
    let dir_shown = dir.path().display().to_string();
    for line in [
        "max_staleness = \"90s\"".to_string(),
        "timeout = \"1500ms\"".to_string(),
        "quota_period = \"1d\"".to_string(),
        "shared = true".to_string(),
        "max_connections_per_client = 256".to_string(),
        format!("token_file = \"{dir_shown}/gateway-token\""),
    ] {
        assert!(printed.contains(&line), "{line} in {printed}");
    }
    // Read back (from another directory), it prints the same.
    let elsewhere = TempDir::new("gw-print-config-again");
    let again = elsewhere.join("printed.toml");
    std::fs::write(&again, &printed).unwrap();
    assert_eq!(print_config(&again), printed);
}

/// The value of the sample `name` (its labels included) in a Prometheus exposition.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn the_server_serves_prometheus_metrics_on_its_metrics_listener() {
    let dir = TempDir::new("server-metrics");
    let server = Server::start(
        &dir.join("data"),
        &[
            "--trust-domain",
            TRUST_DOMAIN,
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    );
    let url = wait_for("the metrics address", Duration::from_secs(15), || {
        let out = server.stdout();
        let line = out.lines().find(|l| l.starts_with("writ: metrics on "))?;
        Some(line.trim_start_matches("writ: metrics on ").to_string())
    });
    // An allowed admin call, a login (an X.509-SVID issued), a refused token.
    server.register("orders");
    let _svid = common::gateway::login(&server, &dir, "orders");
    let refused = server
        .curl("GET", "/v1/functions")
        .bearer("writ.admin.nobody.wrong")
        .send();
    assert_eq!(refused.status, 401, "{}", refused.body);

    let scrape = || {
        let out = common::run(std::process::Command::new("curl").args(["-sS", "-i", &url]));
        success("curl /metrics", &out)
    };
    // The audit writer has appended what these did once its latency shows.
    let text = wait_for(
        "the audit append's latency",
        Duration::from_secs(15),
        || {
            let text = scrape();
            (sample(
                &text,
                "writ_server_store_operation_duration_seconds_count{op=\"audit_append\"}",
            )? >= 1.0)
                .then_some(text)
        },
    );
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.contains("content-type: text/plain; version=0.0.4"),
        "{text}"
    );
    for (name, at_least) in [
        ("writ_server_svids_issued_total{kind=\"x509\"}", 1.0),
        ("writ_server_svids_issued_total{kind=\"jwt\"}", 0.0),
        (
            "writ_server_requests_total{method=\"POST\",route=\"/v1/login\",status=\"200\"}",
            1.0,
        ),
        (
            "writ_server_requests_total{method=\"GET\",route=\"/v1/functions\",status=\"401\"}",
            1.0,
        ),
        ("writ_server_decisions_total{outcome=\"allowed\"}", 1.0),
        (
            "writ_server_decisions_total{outcome=\"unauthenticated\"}",
            1.0,
        ),
        (
            "writ_server_store_operation_duration_seconds_count{op=\"refresh\"}",
            0.0,
        ),
        ("writ_server_audit_queue_messages", 0.0),
    ] {
        let value = sample(&text, name).unwrap_or_else(|| panic!("{name} in {text}"));
        assert!(value >= at_least, "{name} = {value} in {text}");
    }
    // No secret in it: the refused token never appears.
    assert!(!text.contains("writ.admin."), "{text}");
}

/// A public route named `name` under `/name`, to `upstream`.
fn public_route(name: &str, upstream: u16) -> String {
    format!(
        "[[route]]\nname = \"{name}\"\nfunction = \"{name}\"\npath_prefix = \"/{name}\"\n\
         upstream = \"http://127.0.0.1:{upstream}\"\npublic = true\n\n"
    )
}

#[test]
fn sighup_reloads_the_gateways_routes_and_a_broken_file_changes_nothing() {
    let dir = TempDir::new("gw-sighup");
    let server = Server::start(&dir.join("data"), &["--trust-domain", TRUST_DOMAIN]);
    let (_upstream, upstream) = common::echo_upstream(&dir);
    common::gateway::token(&server, &dir, &[]);
    let (ca, cert, key) = localhost_certificate(&dir, "gateway");
    let head = common::gateway::config_head(&server, &cert, &key);
    let file = dir.join("gateway.toml");
    std::fs::write(&file, format!("{head}\n{}", public_route("old", upstream))).unwrap();
    let mut cmd = writ_command();
    cmd.args(["gateway", "--config"]).arg(&file);
    let gateway = Gateway::start(cmd, &dir, ca);
    let status = |path: &str| gateway.curl("GET", path).send().status;
    assert_eq!(status("/old/x"), 200);
    assert_eq!(status("/new/x"), 404);

    // A route added: served once the gateway has reloaded, the old one still.
    std::fs::write(
        &file,
        format!(
            "{head}\n{}{}",
            public_route("old", upstream),
            public_route("new", upstream)
        ),
    )
    .unwrap();
    gateway.proc.signal("HUP");
    wait_for("the new route", Duration::from_secs(15), || {
        (status("/new/x") == 200).then_some(())
    });
    assert_eq!(status("/old/x"), 200);
    assert!(
        gateway
            .proc
            .log()
            .contains("SIGHUP: reloaded the routes, usage plans and API keys"),
        "{}",
        gateway.proc.log()
    );

    // A broken file (a string never closed, on its line 3 after the head): logged with
    // its place, and both routes stay.
    let broken_line = head.lines().count() + 3;
    std::fs::write(
        &file,
        format!("{head}\n[[route]]\nname = \"broken\nfunction = \"x\"\n"),
    )
    .unwrap();
    gateway.proc.signal("HUP");
    let why = wait_for("the refused reload", Duration::from_secs(15), || {
        let log = gateway.proc.log();
        log.lines()
            .find(|l| l.contains("SIGHUP: the configuration was not reloaded"))
            .map(str::to_string)
    });
    let place = format!("{}:{broken_line}:", file.display());
    assert!(why.contains(&place), "{place} in {why}");
    assert_eq!(status("/old/x"), 200);
    assert_eq!(status("/new/x"), 200);

    // A setting that needs a restart is refused by name, and nothing changes.
    std::fs::write(
        &file,
        format!(
            "max_staleness = \"1m\"\n{head}\n{}",
            public_route("new", upstream)
        ),
    )
    .unwrap();
    gateway.proc.signal("HUP");
    wait_for("the second refused reload", Duration::from_secs(15), || {
        gateway
            .proc
            .log()
            .contains("max_staleness changed: it takes effect only when the gateway restarts")
            .then_some(())
    });
    assert_eq!(status("/old/x"), 200);

    // A route removed: no longer served.
    std::fs::write(&file, format!("{head}\n{}", public_route("new", upstream))).unwrap();
    gateway.proc.signal("HUP");
    wait_for("the old route gone", Duration::from_secs(15), || {
        (status("/old/x") == 404).then_some(())
    });
    assert_eq!(status("/new/x"), 200);
}
