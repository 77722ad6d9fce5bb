//! `writ dev`: the README's run command completes its demo without a surprise, keeps
//! serving (the curl it prints works), and stops cleanly on SIGTERM; its temporary data
//! directory (master key, admin token) is removed on Ctrl-C, a `--data-dir` kept.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{TempDir, writ_command};

#[test]
fn writ_dev_runs_its_demo_and_keeps_serving() {
    // No Python with awslambdaric: the functions run in-process, and writ dev says why.
    let out = demo_keeps_serving("dev", "/nonexistent/python-for-writ-dev", |_| {});
    assert!(
        out.contains(
            "(the functions run in-process, not as Lambda handlers: no Python with awslambdaric \
             (/nonexistent/python-for-writ-dev tried)"
        ),
        "{out}"
    );
    assert!(out.contains("upstream http://127.0.0.1:"), "{out}");
}

#[test]
fn writ_dev_runs_its_demo_functions_as_lambda_handlers_under_awslambdaric() {
    let python = common::lambda::python();
    // The boto3 command it prints reads the demo secret through writ's Secrets Manager API
    // as payments, pasted as it is (python3 being the venv's, which has boto3).
    let venv_bin = python.parent().unwrap().to_path_buf();
    let out = demo_keeps_serving("dev-lambda", python.to_str().unwrap(), |out| {
        let lines: Vec<&str> = out.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.trim_start().starts_with("AWS_SHARED_CREDENTIALS_FILE="))
            .expect("a boto3 line");
        let snippet = format!("{}\n{}", lines[at].trim(), lines[at + 1]);
        let path = format!(
            "{}:{}",
            venv_bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let read = Command::new("sh")
            .args(["-c", &snippet])
            .env("PATH", path)
            .output()
            .unwrap();
        assert!(
            read.status.success(),
            "{snippet}\n{}",
            String::from_utf8_lossy(&read.stderr)
        );
        // The demo secret: 16 random bytes in hex.
        let value = String::from_utf8_lossy(&read.stdout).trim().to_string();
        assert!(
            value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit()),
            "{snippet}: {value:?}"
        );
    });
    assert!(
        out.contains("✔ orders and payments are Lambda handlers")
            && out.contains("run by awslambdaric"),
        "{out}"
    );
    assert!(
        out.contains("Lambda function payments (app.payments)"),
        "{out}"
    );
    // The answer is the Python handler's, invoked by the gateway's Lambda upstream with the
    // verified caller.
    assert!(out.contains("\"lambdaRequestId\":"), "{out}");
    assert!(
        out.contains("\"caller\":\"spiffe://dev.writ.local/fn/orders\""),
        "{out}"
    );
}

/// Runs `writ dev` with `WRIT_DEV_PYTHON=python` on a `--data-dir` until it serves, checks
/// the demo's calls, that the curl it prints gets through, and that SIGTERM stops it
/// cleanly; returns what it printed.
fn demo_keeps_serving(label: &str, python: &str, while_serving: impl FnOnce(&str)) -> String {
    let dir = TempDir::new(label);
    let mut child = writ_command()
        .args(["dev", "--data-dir"])
        .arg(dir.join("data"))
        .args(["--listen", "127.0.0.1:0", "--gateway-listen", "127.0.0.1:0"])
        .env("WRIT_DEV_PYTHON", python)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start writ dev");
    let mut out = String::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    for line in lines.by_ref() {
        let line = line.unwrap();
        out.push_str(&line);
        out.push('\n');
        if line.contains("Serving until Ctrl-C") || std::time::Instant::now() > deadline {
            break;
        }
    }
    assert!(out.contains("Serving until Ctrl-C"), "{out}");
    assert!(!out.contains("did not go as expected"), "{out}");
    for expected in [
        "✔ orders           POST /payments/charge   200",
        "✘ orders           GET  /payments/charge   403",
        "✘ payments         POST /orders/new        403",
        "✘ (no certificate) POST /payments/charge   401",
        "✘ orders   reads payments/stripe-key: 403",
        "✔ payments reads payments/stripe-key: version",
        "✔ payments' credentials (arn:aws:iam::000000000000:role/payments",
        "✔ chain verified",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    // It keeps serving: the curl it suggests gets through the gateway.
    let curl = out
        .lines()
        .find(|l| l.trim_start().starts_with("curl "))
        .expect("a curl line")
        .trim()
        .to_string();
    let answer = Command::new("sh")
        .args(["-c", &format!("{curl} -sS")])
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&answer.stdout);
    assert!(body.contains("\"charged\":5"), "{body}");
    while_serving(&out);

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    // The user's own --data-dir is theirs: kept, with the store in it.
    assert!(
        dir.join("data/admin-token").exists(),
        "--data-dir was not kept"
    );
    out
}

#[test]
fn ctrl_c_removes_the_temporary_data_directory_and_its_keys() {
    let tmp = TempDir::new("dev-tmp");
    let mut child = writ_command()
        .arg("dev")
        .args(["--listen", "127.0.0.1:0", "--gateway-listen", "127.0.0.1:0"])
        .env("TMPDIR", tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start writ dev");
    let out = common::until_serving(&mut child);
    assert!(out.contains("Serving until Ctrl-C"), "{out}");
    let data = out
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("data "))
        .map(|rest| rest.split_whitespace().next().unwrap().to_string())
        .unwrap_or_else(|| panic!("no data line in:\n{out}"));
    let data = std::path::PathBuf::from(data);
    assert!(data.starts_with(tmp.path()), "{data:?} is not under TMPDIR");
    assert!(
        data.join("admin-token").exists(),
        "no admin token in {data:?}"
    );
    assert!(
        data.join("master.key").exists(),
        "no master key in {data:?}"
    );
    assert!(out.contains("removed on exit"), "{out}");

    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(!data.exists(), "{data:?} is still there after Ctrl-C");
}
