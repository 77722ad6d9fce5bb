//! Configuration as code end to end (issue 34): `writ plan`, `writ apply` and `writ export`
//! against real servers, with the CLI as an operator runs it.

mod common;

use std::path::Path;
use std::process::Output;

use common::{Server, TRUST_DOMAIN, TempDir, run, text, writ_command};
use serde_json::Value;

/// A server that lets secrets' rotation hooks reach loopback (the declared hook is
/// never called: apply sets a rotation without rotating).
fn start(dir: &TempDir, name: &str) -> Server {
    Server::start(
        &dir.join(name),
        &[
            "--trust-domain",
            TRUST_DOMAIN,
            "--hook-allow-net",
            "127.0.0.1/32",
        ],
    )
}

/// The lines of a text plan that are changes (`+`, `~`, `-`, `!`).
fn change_lines(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| ["+ ", "~ ", "- ", "! "].iter().any(|p| l.starts_with(p)))
        .map(str::to_string)
        .collect()
}

/// Runs `writ ARGS` against `server`; returns (exit code, stdout, stderr).
fn writ(server: &Server, args: &[&str]) -> (i32, String, String) {
    let out: Output = server.cli(args);
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

fn plan(server: &Server, path: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["plan", "-f", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    writ(server, &args)
}

fn apply(server: &Server, path: &Path, extra: &[&str]) -> String {
    let mut args = vec!["apply", "-f", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (code, out, err) = writ(server, &args);
    assert_eq!(code, 0, "writ {}: {out}\n{err}", args.join(" "));
    out
}

/// Stores a value for `name`, as an operator does before declaring the secret.
fn put_secret(server: &Server, dir: &TempDir, name: &str) {
    let value = dir.unique_file("value", "txt");
    std::fs::write(&value, "s3cr3t-value-never-exported").unwrap();
    server.cli_ok(&[
        "secret",
        "put",
        name,
        "--value-file",
        value.to_str().unwrap(),
        "--description",
        "orders database",
    ]);
}

fn function_json(server: &Server, name: &str) -> Value {
    let out = server.cli_ok(&["fn", "show", name, "--format", "json"]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("fn show: {e}: {out}"))
}

const FUNCTIONS: &str = r#"
[[functions]]
name = "orders"

[[functions]]
name = "payments"
x509Ttl = "30m"

[[functions.policies]]
Version = "2012-10-17"

[[functions.policies.Statement]]
Effect = "Allow"
Action = "secrets:GetSecretValue"
Resource = "writ:secret/app/db"
"#;

const INTENTIONS: &str = r#"
intentions:
  - source: orders
    destination: payments
    action: allow
    permissions:
      - methods: [POST]
        pathPrefix: /pay
"#;

const SECRETS: &str = r#"
[[secrets]]
name = "app/db"
description = "orders database"
resourcePolicy = '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"secrets:DeleteSecret","Resource":"*"}]}'

[secrets.rotation]
every = "720h"
hook = { type = "https", url = "http://127.0.0.1:9/rotate" }
"#;

/// A gateway's own configuration file in the directory: checked, not sent.
fn gateway_file(function: &str) -> String {
    format!(
        r#"
listen = "127.0.0.1:0"
trust_domain = "{TRUST_DOMAIN}"
state_dir = "gateway-state"
[server]
addr = "https://127.0.0.1:7443"
ca_file = "ca.pem"
token_file = "gateway-token"
[tls]
cert = "gateway.pem"
key = "gateway.key"

[[route]]
name = "pay"
function = "{function}"
path_prefix = "/pay"
upstream = "http://127.0.0.1:9001"
auth = ["mtls"]
"#
    )
}

fn write_config(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("functions.toml"), FUNCTIONS).unwrap();
    std::fs::write(dir.join("intentions.yaml"), INTENTIONS).unwrap();
    std::fs::write(dir.join("secrets.toml"), SECRETS).unwrap();
    std::fs::write(dir.join("gateway.toml"), gateway_file("payments")).unwrap();
}

#[test]
fn apply_plan_one_change_prune_and_export_to_a_second_server() {
    let dir = TempDir::new("config-apply");
    let a = start(&dir, "a");
    put_secret(&a, &dir, "app/db");
    let config = dir.join("config");
    write_config(&config);

    // A fresh server: everything declared is to be made.
    let (code, out, err) = plan(&a, &config, &[]);
    assert_eq!(code, 2, "plan with changes exits 2: {out}\n{err}");
    assert_eq!(
        change_lines(&out),
        [
            "+ function orders",
            "+ function payments",
            "+ intention orders -> payments (allow)",
            "~ secret app/db (resource policy)",
            "~ secret app/db (rotation)",
        ],
        "{out}"
    );
    assert!(out.contains("gateway file "), "{out}");

    let applied = apply(&a, &config, &[]);
    let change = applied
        .lines()
        .find_map(|l| l.strip_prefix("applied 5 changes as change "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no change id: {applied}"))
        .to_string();
    // Every change is audited under the one change id.
    for action in [
        "writ:RegisterFunction",
        "writ:WriteIntention",
        "secrets:PutResourcePolicy",
        "secrets:RotateSecret",
    ] {
        a.wait_for_audit(action, |e| {
            e["action"] == action
                && e["requestId"]
                    .as_str()
                    .is_some_and(|r| r.starts_with(&format!("{change}-")))
        });
    }
    assert_eq!(
        a.audit_events()
            .iter()
            .filter(|e| e["action"] == "writ:RegisterFunction"
                && e["requestId"]
                    .as_str()
                    .is_some_and(|r| r.starts_with(&change)))
            .count(),
        2
    );
    let (code, out, _) = plan(&a, &config, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no changes"), "{out}");

    // One file changes: the plan is exactly that change, and apply makes it.
    std::fs::write(
        config.join("functions.toml"),
        FUNCTIONS.replace("x509Ttl = \"30m\"", "x509Ttl = \"15m\""),
    )
    .unwrap();
    let (code, out, _) = plan(&a, &config, &[]);
    assert_eq!(code, 2, "{out}");
    assert_eq!(change_lines(&out), ["~ function payments (x509Ttl)"]);
    let (_, json_plan, _) = plan(&a, &config, &["--format", "json"]);
    let json_plan: Value = serde_json::from_str(&json_plan).unwrap();
    assert_eq!(
        json_plan["changes"].as_array().unwrap().len(),
        1,
        "{json_plan}"
    );
    assert_eq!(json_plan["changes"][0]["change"], "updateFunction");
    assert_eq!(json_plan["changes"][0]["fields"][0], "x509Ttl");
    assert_eq!(function_json(&a, "payments")["x509Ttl"], "30m");
    apply(&a, &config, &[]);
    assert_eq!(function_json(&a, "payments")["x509Ttl"], "15m");
    assert_eq!(plan(&a, &config, &[]).0, 0);

    // What no file declares is left alone, unless pruned.
    a.register("legacy");
    a.cli_ok(&["intention", "deny", "legacy", "orders"]);
    assert_eq!(plan(&a, &config, &[]).0, 0);
    let (code, out, _) = plan(&a, &config, &["--prune"]);
    assert_eq!(code, 2, "{out}");
    assert_eq!(
        change_lines(&out),
        [
            "- intention legacy -> orders",
            "- function legacy (its SVIDs are revoked with it)",
        ]
    );
    apply(&a, &config, &["--prune"]);
    assert!(!a.cli(&["fn", "show", "legacy"]).status.success());
    assert_eq!(plan(&a, &config, &["--prune"]).0, 0);

    // Export, apply to a second server (which holds its own secret values), and nothing
    // differs: the plan is empty and the export is the same.
    let exported = dir.join("a.toml");
    a.cli_ok(&["export", "-o", exported.to_str().unwrap()]);
    let exported_text = std::fs::read_to_string(&exported).unwrap();
    assert!(!exported_text.contains("s3cr3t"), "{exported_text}");
    assert!(
        exported_text.contains("[secrets.rotation]")
            && exported_text.contains("http://127.0.0.1:9/rotate"),
        "{exported_text}"
    );
    let exported_yaml = dir.join("a.yaml");
    a.cli_ok(&["export", "-o", exported_yaml.to_str().unwrap()]);
    let b = start(&dir, "b");
    put_secret(&b, &dir, "app/db");
    apply(&b, &exported, &[]);
    let (code, out, _) = plan(&b, &exported, &["--prune"]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = plan(&b, &exported_yaml, &["--prune"]);
    assert_eq!(code, 0, "the YAML export reads as the same state: {out}");
    let again = b.cli_ok(&["export"]);
    assert_eq!(again, exported_text);
}

/// Runs `writ plan -f PATH` with no server reachable: the files are read first.
fn plan_offline(path: &Path) -> (i32, String) {
    let out = run(writ_command()
        .args(["plan", "-f", path.to_str().unwrap()])
        .env("WRIT_ADDR", "https://127.0.0.1:9")
        .env("WRIT_CACERT", "/nonexistent")
        .env("WRIT_TOKEN", "unused"));
    (out.status.code().unwrap_or(-1), text(&out.stderr))
}

#[test]
fn errors_name_file_line_and_column() {
    let dir = TempDir::new("config-errors");

    let bad_toml = dir.join("bad.toml");
    std::fs::write(&bad_toml, "[[functions]]\nname = \"orders\"\nx509Ttl = 5\n").unwrap();
    let (code, err) = plan_offline(&bad_toml);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "{}:3:11: functions[0].x509Ttl: ",
            bad_toml.display()
        )),
        "{err}"
    );

    let bad_yaml = dir.join("bad.yaml");
    std::fs::write(
        &bad_yaml,
        "intentions:\n  - source: orders\n    destination: payments\n    action: maybe\n",
    )
    .unwrap();
    let (code, err) = plan_offline(&bad_yaml);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "{}:4:13: intentions[0].action: ",
            bad_yaml.display()
        )),
        "{err}"
    );

    // The same function in two files names both places.
    let twice = dir.join("twice");
    std::fs::create_dir_all(&twice).unwrap();
    std::fs::write(twice.join("a.toml"), "[[functions]]\nname = \"orders\"\n").unwrap();
    std::fs::write(twice.join("b.yml"), "functions:\n  - name: orders\n").unwrap();
    let (code, err) = plan_offline(&twice);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "{}:2:11: function orders is declared again (first at {}:2:8)",
            twice.join("b.yml").display(),
            twice.join("a.toml").display()
        )),
        "{err}"
    );

    // A gateway route to a function no file declares.
    let routes = dir.join("routes");
    write_config(&routes);
    std::fs::write(routes.join("gateway.toml"), gateway_file("billing")).unwrap();
    let (code, err) = plan_offline(&routes);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "{}:15:12: route \"pay\" sends to function \"billing\"",
            routes.join("gateway.toml").display()
        )),
        "{err}"
    );
}

#[test]
fn a_change_between_plan_and_apply_is_refused() {
    let dir = TempDir::new("config-concurrent");
    let server = start(&dir, "data");
    put_secret(&server, &dir, "app/db");
    let config = dir.join("config");
    write_config(&config);
    apply(&server, &config, &[]);

    std::fs::write(
        config.join("functions.toml"),
        FUNCTIONS.replace("x509Ttl = \"30m\"", "x509Ttl = \"10m\""),
    )
    .unwrap();
    let (code, out, _) = plan(&server, &config, &[]);
    assert_eq!(code, 2, "{out}");
    let fingerprint = out
        .lines()
        .find_map(|l| l.strip_prefix("state: "))
        .unwrap_or_else(|| panic!("no state line: {out}"))
        .to_string();

    // Another operator changes the server after the plan was shown.
    server.cli_ok(&["fn", "update", "orders", "--x509-ttl", "20m"]);

    let (code, out, err) = writ(
        &server,
        &[
            "apply",
            "-f",
            config.to_str().unwrap(),
            "--if-state",
            &fingerprint,
        ],
    );
    assert_eq!(code, 3, "{out}\n{err}");
    assert!(err.contains("changed since the plan"), "{err}");
    // Nothing of the plan was made, and the other operator's change stands.
    assert_eq!(function_json(&server, "payments")["x509Ttl"], "30m");
    assert_eq!(function_json(&server, "orders")["x509Ttl"], "20m");

    // With the plan made again, apply goes ahead (and puts orders back as declared).
    let (_, out, _) = plan(&server, &config, &[]);
    let fingerprint = out
        .lines()
        .find_map(|l| l.strip_prefix("state: "))
        .unwrap()
        .to_string();
    apply(&server, &config, &["--if-state", &fingerprint]);
    assert_eq!(function_json(&server, "payments")["x509Ttl"], "10m");
    assert_eq!(function_json(&server, "orders")["x509Ttl"], "1h");
    assert_eq!(function_json(&server, "orders")["x509TtlPinned"], false);
}

#[test]
fn a_declared_secret_the_server_lacks_blocks_apply_before_any_change() {
    let dir = TempDir::new("config-missing-secret");
    let server = start(&dir, "data");
    let config = dir.join("config");
    write_config(&config);
    let (code, out, _) = plan(&server, &config, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        change_lines(&out)
            .iter()
            .any(|l| l.starts_with("! secret app/db is declared but absent")),
        "{out}"
    );
    let (code, _, err) = writ(&server, &["apply", "-f", config.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    assert!(!server.cli(&["fn", "show", "orders"]).status.success());
}

#[test]
fn a_failure_half_way_says_what_was_made_and_apply_again_converges() {
    let dir = TempDir::new("config-half-way");
    // This server lets no hook reach loopback: the declared rotation is refused.
    let server = Server::start(&dir.join("data"), &["--trust-domain", TRUST_DOMAIN]);
    put_secret(&server, &dir, "app/db");
    let config = dir.join("config");
    write_config(&config);
    let (code, out, err) = writ(&server, &["apply", "-f", config.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains("~ secret app/db (rotation): server refused (400)")
            && err.contains("4 of 5 changes were made before this one failed"),
        "{err}"
    );
    assert_eq!(
        change_lines(&out),
        [
            "+ function orders",
            "+ function payments",
            "+ intention orders -> payments (allow)",
            "~ secret app/db (resource policy)",
        ]
    );
    // What was made stays made; a new plan holds only what is still missing.
    let (code, out, _) = plan(&server, &config, &[]);
    assert_eq!(code, 2, "{out}");
    assert_eq!(change_lines(&out), ["~ secret app/db (rotation)"]);
    std::fs::write(
        config.join("secrets.toml"),
        &SECRETS[..SECRETS.find("[secrets.rotation]").unwrap()],
    )
    .unwrap();
    let (code, out, _) = plan(&server, &config, &[]);
    assert_eq!(code, 0, "{out}");
}
