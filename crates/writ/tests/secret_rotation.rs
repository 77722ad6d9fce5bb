//! Secret rotation end to end: the real `writ` binary drives an owner's hook, written in
//! Python the way a team would write one, through create, set, test and finish. Over HTTPS
//! the hook requires a client certificate from writ's trust bundle and sees the server's
//! SPIFFE ID; as a command the operator registered, it gets each step's JSON on stdin.
//! AWSCURRENT moves only when all four steps pass.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Server, TRUST_DOMAIN, TempDir, run, wait_for};
use serde_json::{Value, json};

const STEPS: [&str; 4] = ["create", "set", "test", "finish"];

fn hook_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rotation_hook.py")
}

fn python3() -> String {
    let out = run(Command::new("sh").args(["-c", "command -v python3"]));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A running hook endpoint; killed when dropped.
struct Hook {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Hook {
    /// Starts `rotation_hook.py serve`, failing at `fail_at` if given, over TLS if `tls`
    /// (cert, key, client CA) is given.
    fn start(dir: &TempDir, fail_at: Option<&str>, tls: Option<[&Path; 3]>) -> Hook {
        let log = dir.unique_file("hook", "jsonl");
        let mut cmd = Command::new(python3());
        cmd.arg(hook_script()).arg("serve").arg("--log").arg(&log);
        if let Some(step) = fail_at {
            cmd.args(["--fail-at", step]);
        }
        if let Some(files) = tls {
            cmd.arg("--tls").args(files);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the hook");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("hook stdout"))
            .read_line(&mut line)
            .expect("read the hook's port");
        let port = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the hook did not start: {line:?}"));
        Hook { child, port, log }
    }

    fn steps(&self) -> Vec<Value> {
        read_log(&self.log)
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_log(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("hook log line"))
        .collect()
}

fn put(server: &Server, dir: &TempDir, name: &str, value: &str) {
    let file = dir.unique_file("value", "txt");
    std::fs::write(&file, value).expect("value file");
    server.cli_ok(&[
        "secret",
        "put",
        name,
        "--value-file",
        file.to_str().unwrap(),
    ]);
}

fn get(server: &Server, name: &str, stage: &str) -> String {
    server.cli_ok(&["secret", "get", name, "--version-stage", stage])
}

fn describe(server: &Server, name: &str) -> Value {
    let out = server.cli_ok(&["secret", "describe", name, "--format", "json"]);
    serde_json::from_str(&out).expect("describe JSON")
}

fn labels(server: &Server, name: &str) -> Vec<String> {
    let d = describe(server, name);
    let mut all: Vec<String> = d["versions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|v| v["versionStages"].as_array().unwrap().clone())
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    all.sort();
    all
}

#[test]
fn an_https_hook_rotates_a_secret_in_four_steps_and_sees_the_servers_spiffe_id() {
    let dir = TempDir::new("rotate-https");
    let (hook_ca, hook_cert, hook_key) = common::localhost_certificate(&dir, "hook");
    let server = Server::launch(
        &dir.join("data"),
        &[
            "--trust-domain",
            TRUST_DOMAIN,
            "--hook-allow-net",
            "127.0.0.1",
        ],
        &[("SSL_CERT_FILE", hook_ca.to_str().unwrap())],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    put(&server, &dir, "prod/orders-db", "old-password");
    let hook = Hook::start(
        &dir,
        None,
        Some([
            hook_cert.as_path(),
            hook_key.as_path(),
            server.ca_file().as_path(),
        ]),
    );
    let url = format!("https://127.0.0.1:{}/rotate", hook.port);

    let out = server.cli_ok(&[
        "secret",
        "rotate",
        "prod/orders-db",
        "--hook-url",
        &url,
        "--every",
        "30d",
    ]);
    assert!(out.contains("is AWSCURRENT"), "{out}");

    let steps = hook.steps();
    let names: Vec<&str> = steps.iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(names, STEPS, "the four steps, in order");
    let version = steps[0]["versionId"].as_str().unwrap().to_string();
    let new_value = format!("rotated-{version}");
    for s in &steps {
        assert_eq!(s["secretId"], "prod/orders-db");
        assert_eq!(
            s["versionId"],
            version.as_str(),
            "one version id for every step"
        );
        assert_eq!(
            s["current"], "old-password",
            "the hook gets the current value"
        );
        assert_eq!(
            s["peer"],
            format!("spiffe://{TRUST_DOMAIN}/writ/server"),
            "the server presents its SVID"
        );
    }
    assert_eq!(
        steps[0]["pending"],
        Value::Null,
        "create has no pending value yet"
    );
    assert_eq!(
        steps[1]["pending"],
        new_value.as_str(),
        "set gets the new value"
    );
    assert_eq!(
        steps[2]["pending"],
        new_value.as_str(),
        "test gets the new value"
    );

    assert_eq!(get(&server, "prod/orders-db", "AWSCURRENT"), new_value);
    assert_eq!(
        get(&server, "prod/orders-db", "AWSPREVIOUS"),
        "old-password"
    );
    assert_eq!(
        labels(&server, "prod/orders-db"),
        ["AWSCURRENT", "AWSPREVIOUS"]
    );
    let d = describe(&server, "prod/orders-db");
    assert_eq!(d["rotation"]["hook"], json!({"type": "https", "url": url}));
    assert_eq!(d["rotation"]["every"], "30d");
    assert_eq!(d["rotation"]["lastRotation"]["status"], "succeeded");
    assert_eq!(d["rotation"]["lastRotation"]["versionId"], version.as_str());
    assert!(d["rotation"]["nextRotationDate"].is_string());
    let event = server.wait_for_audit("the rotation's audit event", |e| {
        e["action"] == "secrets:RotateSecret" && e["outcome"] == "allowed"
    });
    assert!(event["reason"].as_str().unwrap().contains(&version));
    let events = serde_json::to_string(&server.audit_events()).unwrap();
    assert!(!events.contains(&new_value) && !events.contains("old-password"));

    // Again, with the stored hook: the value moves on, and the old one is AWSPREVIOUS.
    server.cli_ok(&["secret", "rotate", "prod/orders-db"]);
    assert_eq!(get(&server, "prod/orders-db", "AWSPREVIOUS"), new_value);
    assert_eq!(hook.steps().len(), 8);
}

#[test]
fn a_failure_at_any_step_leaves_awscurrent_as_it_was() {
    let dir = TempDir::new("rotate-fail");
    // The test's hooks listen on loopback, which hooks reach only when allow-listed.
    let server = Server::start(
        &dir.join("data"),
        &[
            "--trust-domain",
            TRUST_DOMAIN,
            "--hook-allow-net",
            "127.0.0.1",
        ],
    );
    put(&server, &dir, "app/key", "v1");
    for (i, step) in STEPS.iter().enumerate() {
        let hook = Hook::start(&dir, Some(step), None);
        let url = format!("http://127.0.0.1:{}/", hook.port);
        let out = server.cli(&["secret", "rotate", "app/key", "--hook-url", &url]);
        assert!(
            !out.status.success(),
            "step {step} failed, so must the command"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("failed at step {step}"))
                && err.contains("AWSCURRENT is unchanged"),
            "{err}"
        );
        assert!(err.contains("502"), "{err}");
        let names: Vec<String> = hook
            .steps()
            .iter()
            .map(|s| s["step"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, STEPS[..=i], "the steps stop at the failing one");
        assert_eq!(get(&server, "app/key", "AWSCURRENT"), "v1", "after {step}");
        assert_eq!(
            labels(&server, "app/key"),
            ["AWSCURRENT"],
            "no AWSPENDING left"
        );
        let last = &describe(&server, "app/key")["rotation"]["lastRotation"];
        assert_eq!(last["status"], "failed");
        assert_eq!(last["step"], *step);
        assert!(last["reason"].as_str().unwrap().contains("500"), "{last}");
    }
    // A hook nobody answers fails at create, too.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}/", closed.local_addr().unwrap().port());
    drop(closed);
    let out = server.cli(&["secret", "rotate", "app/key", "--hook-url", &url]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("failed at step create: could not reach the hook"),
        "{err}"
    );
    assert_eq!(get(&server, "app/key", "AWSCURRENT"), "v1");

    let failed = server
        .audit_events()
        .into_iter()
        .filter(|e| e["action"] == "secrets:RotateSecret" && e["outcome"] == "failed")
        .count();
    assert_eq!(failed, 5, "every failed rotation is on record");
}

#[test]
fn hooks_are_checked_before_they_are_stored() {
    let dir = TempDir::new("rotate-check");
    let server = Server::start(&dir.join("data"), &["--trust-domain", TRUST_DOMAIN]);
    put(&server, &dir, "app/key", "v1");
    for (args, expect) in [
        (vec!["--hook-url", "http://example.com/rotate"], "use https"),
        (
            vec!["--hook-url", "https://user:pw@example.com/"],
            "credentials",
        ),
        (vec!["--hook-url", "not a url"], "hook.url"),
        (
            vec!["--hook-command", "db"],
            "no rotation command \"db\" is registered",
        ),
        (vec![], "has no rotation hook yet"),
        (
            vec!["--hook-url", "https://h.example/", "--every", "2s"],
            "shortest schedule",
        ),
    ] {
        let mut full = vec!["secret", "rotate", "app/key"];
        full.extend(args.iter());
        let out = server.cli(&full);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(expect),
            "{args:?}: {err}"
        );
        assert!(err.contains("400"), "{err}");
    }
    assert_eq!(
        describe(&server, "app/key")["rotation"],
        Value::Null,
        "nothing stored"
    );
}

#[test]
fn a_registered_command_rotates_on_schedule() {
    let dir = TempDir::new("rotate-command");
    let log = dir.join("command-hook.jsonl");
    let wrapper = dir.join("rotate-db.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec {} {} command \"$1\" --log {}\n",
            python3(),
            hook_script().display(),
            log.display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let hook_arg = format!("db={}", wrapper.display());
    let server = Server::start(
        &dir.join("data"),
        &["--trust-domain", TRUST_DOMAIN, "--rotation-hook", &hook_arg],
    );
    put(&server, &dir, "prod/db", "first");
    let out = server.cli_ok(&[
        "secret",
        "rotate",
        "prod/db",
        "--hook-command",
        "db",
        "--every",
        "10s",
        "--no-rotate-now",
    ]);
    assert!(out.contains("settings of prod/db updated"), "{out}");
    assert!(read_log(&log).is_empty(), "--no-rotate-now does not rotate");

    // The schedule fires on its own, within its period plus the one-second tick.
    let event = wait_for("a scheduled rotation", Duration::from_secs(30), || {
        server
            .audit_events()
            .into_iter()
            .find(|e| e["action"] == "secrets:RotateSecret" && e["authenticatedBy"] == "schedule")
    });
    assert_eq!(
        event["actor"],
        format!("spiffe://{TRUST_DOMAIN}/writ/server")
    );
    assert_eq!(event["outcome"], "allowed", "{event}");
    let steps = read_log(&log);
    let names: Vec<&str> = steps.iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(names[..4], STEPS);
    assert_eq!(steps[0]["current"], "first");
    let version = steps[0]["versionId"].as_str().unwrap();
    assert_eq!(
        get(&server, "prod/db", "AWSCURRENT"),
        format!("rotated-{version}")
    );
    assert_eq!(get(&server, "prod/db", "AWSPREVIOUS"), "first");

    // Turning the schedule off keeps the hook for rotations on demand.
    server.cli_ok(&[
        "secret",
        "rotate",
        "prod/db",
        "--every",
        "off",
        "--no-rotate-now",
    ]);
    let d = describe(&server, "prod/db");
    assert_eq!(d["rotation"]["every"], Value::Null);
    assert_eq!(d["rotation"]["nextRotationDate"], Value::Null);
    assert_eq!(
        d["rotation"]["hook"],
        json!({"type": "command", "name": "db"})
    );
}

#[test]
fn pointing_a_secret_at_a_hook_needs_read_and_write_on_it() {
    let dir = TempDir::new("rotate-scope");
    // The test's hooks listen on loopback, which hooks reach only when allow-listed.
    let server = Server::start(
        &dir.join("data"),
        &[
            "--trust-domain",
            TRUST_DOMAIN,
            "--hook-allow-net",
            "127.0.0.1",
        ],
    );
    put(&server, &dir, "app/key", "v1");
    let policy = dir.join("rotate-only.json");
    std::fs::write(
        &policy,
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Action": "secrets:RotateSecret", "Resource": "writ:secret/*"}]})
        .to_string(),
    )
    .unwrap();
    let token = server.cli_ok(&["token", "create", "--policy", policy.to_str().unwrap()]);
    let token_file = dir.join("rotate-only-token");
    std::fs::write(&token_file, token.trim()).unwrap();
    let hook = Hook::start(&dir, None, None);
    let url = format!("http://127.0.0.1:{}/", hook.port);
    let out = run(server
        .cli_command()
        .env("WRIT_TOKEN_FILE", &token_file)
        .args(["secret", "rotate", "app/key", "--hook-url", &url]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("403") && err.contains("GetSecretValue"),
        "{err}"
    );
    assert!(hook.steps().is_empty(), "the hook saw nothing");
    assert_eq!(get(&server, "app/key", "AWSCURRENT"), "v1");
    // Once the operator has set the hook, the rotate-only token may rotate with it.
    server.cli_ok(&[
        "secret",
        "rotate",
        "app/key",
        "--hook-url",
        &url,
        "--no-rotate-now",
    ]);
    let out = run(server
        .cli_command()
        .env("WRIT_TOKEN_FILE", &token_file)
        .args(["secret", "rotate", "app/key"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(hook.steps().len(), 4);
}
