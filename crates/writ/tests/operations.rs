//! Operating writ: `writ gateway --print-config` prints the configuration in the file's
//! format, and what it prints reads back as the same configuration; `writ server
//! --metrics-listen` serves Prometheus `/metrics` with requests, decisions, issuance, the
//! store's latency and the audit queue.

mod common;

use std::time::Duration;

use common::{Server, TRUST_DOMAIN, TempDir, success, wait_for, writ_command};

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
