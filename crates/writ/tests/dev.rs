//! `writ dev`: the README's run command completes its demo without a surprise, keeps
//! serving (the curl it prints works), and stops cleanly on SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{TempDir, writ_command};

#[test]
fn writ_dev_runs_its_demo_and_keeps_serving() {
    let dir = TempDir::new("dev");
    let mut child = writ_command()
        .args(["dev", "--data-dir"])
        .arg(dir.join("data"))
        .args(["--listen", "127.0.0.1:0", "--gateway-listen", "127.0.0.1:0"])
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

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}
