//! Operating writ: `writ gateway --print-config` prints the configuration in the file's
//! format, and what it prints reads back as the same configuration.

mod common;

use common::{TempDir, success, writ_command};

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
