//! Marks tests ignored, not passed, when what they need is not on this machine.
//!
//! With `WRIT_TEST_POSTGRES_URL` unset, the tests that need PostgreSQL are compiled with
//! `cfg(writ_no_test_postgres)`, which gives them `#[ignore]`: `cargo test` then reports them
//! as ignored, with the reason. Under `CI=true` the cfg is never set, so a missing URL fails
//! those tests with a message saying so instead of hiding them.
//!
//! The same for moto's STS (AWS IAM attestation's test): without a Python at
//! `WRIT_TEST_PYTHON` (default `~/.cache/writ/venv/bin/python`) that imports `moto.server`
//! and `boto3`, the test is compiled with `cfg(writ_no_test_moto)` and reported ignored;
//! under `CI=true` it runs, and fails saying what to install.

use std::path::PathBuf;
use std::process::{Command, Stdio};

fn main() {
    println!("cargo::rustc-check-cfg=cfg(writ_no_test_postgres)");
    println!("cargo::rustc-check-cfg=cfg(writ_no_test_moto)");
    println!("cargo::rerun-if-env-changed=WRIT_TEST_POSTGRES_URL");
    println!("cargo::rerun-if-env-changed=WRIT_TEST_PYTHON");
    println!("cargo::rerun-if-env-changed=CI");
    let has_url = std::env::var_os("WRIT_TEST_POSTGRES_URL").is_some_and(|v| !v.is_empty());
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    if !has_url && !in_ci {
        println!("cargo::rustc-cfg=writ_no_test_postgres");
    }
    if !in_ci && !has_moto() {
        println!("cargo::rustc-cfg=writ_no_test_moto");
    }
}

/// Whether the test Python imports moto's server and boto3.
fn has_moto() -> bool {
    let python = std::env::var_os("WRIT_TEST_PYTHON")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/writ/venv/bin/python"))
        });
    python.is_some_and(|python| {
        python.exists()
            && Command::new(&python)
                .args(["-c", "import moto.server, boto3"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
    })
}
