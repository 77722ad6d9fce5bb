//! The writ console in a real headless browser: `writ dev` serves it, and `console.py` drives
//! Debian's chromium through chromedriver (Selenium): it signs in, sees the demo functions
//! and the intention graph, watches a denied call appear on its edge, opens its audit event
//! and reads the reason, checks a proposed intention before saving, revokes a function and
//! sees it marked; a token scoped to one function sees only it; a request without a session
//! gets 401 and no data; a cross-site form post is refused, and so is the session's cookie
//! sent cross-site or without the console's header.
//!
//! It needs `chromium` and `chromium-driver` (apt; `$WRIT_CHROMIUM` and `$WRIT_CHROMEDRIVER`
//! point elsewhere) and a Python with `selenium` (`$WRIT_TEST_PYTHON`, by default
//! `~/.cache/writ/venv/bin/python`), which `.ci/run` installs. With
//! `WRIT_CONSOLE_SCREENSHOTS=DIR` it writes the main views' screenshots there (docs/console/).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{TempDir, run, writ_command};

/// A tool the test needs, from `$var` or at `default`; the test fails saying how to install
/// it when it is not there.
fn tool(var: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    assert!(
        path.exists(),
        "this test drives a real browser and needs {} (not found). Install it as .ci/run \
         does:\n  apt-get install chromium chromium-driver\nor point {var} at it.",
        path.display()
    );
    path
}

/// The Python with Selenium: `$WRIT_TEST_PYTHON`, by default `~/.cache/writ/venv/bin/python`.
fn python() -> PathBuf {
    let python = std::env::var_os("WRIT_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(&std::env::var_os("HOME").expect("HOME is set"))
                .join(".cache/writ/venv/bin/python")
        });
    let ok = Command::new(&python)
        .args(["-c", "import selenium"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "this test needs a Python with selenium at {}. Install it as .ci/run does:\n  \
         python3 -m venv ~/.cache/writ/venv && ~/.cache/writ/venv/bin/pip install selenium\n\
         or point WRIT_TEST_PYTHON at a Python that has it.",
        python.display()
    );
    python
}

/// `writ dev`, stopped when dropped.
struct Dev(Child);

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The first URL on the line of `out` that starts with `prefix` (after spaces).
fn url_after(out: &str, prefix: &str) -> String {
    out.lines()
        .find_map(|l| l.trim_start().strip_prefix(prefix))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{out}"))
        .to_string()
}

#[test]
fn the_console_in_a_real_browser() {
    let chromium = tool("WRIT_CHROMIUM", "/usr/bin/chromium");
    let chromedriver = tool("WRIT_CHROMEDRIVER", "/usr/bin/chromedriver");
    let python = python();
    let dir = TempDir::new("console");
    let data = dir.join("data");
    let mut dev = Dev(writ_command()
        .args(["dev", "--data-dir"])
        .arg(&data)
        .args(["--listen", "127.0.0.1:0", "--gateway-listen", "127.0.0.1:0"])
        // The demo's functions run in-process: the console is what is tested here.
        .env("WRIT_DEV_PYTHON", "/nonexistent/python-for-writ-dev")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start writ dev"));
    let out = common::until_serving(&mut dev.0);
    assert!(out.contains("Serving until Ctrl-C"), "{out}");
    // writ dev prints the console's address.
    let console = url_after(&out, "Console: ");
    let server = console
        .strip_suffix("/ui/")
        .unwrap_or_else(|| panic!("the console is not at /ui/: {console}"));
    let gateway = url_after(&out, "gateway ");

    let mut cmd = Command::new(&python);
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console.py"))
        .env("WRIT_CONSOLE_URL", server)
        .env("WRIT_CONSOLE_DATA", &data)
        .env("WRIT_CONSOLE_GATEWAY", &gateway)
        .env("WRIT_CHROMIUM", &chromium)
        .env("WRIT_CHROMEDRIVER", &chromedriver)
        .env("HOME", dir.path());
    if let Some(shots) = std::env::var_os("WRIT_CONSOLE_SCREENSHOTS") {
        cmd.env("WRIT_CONSOLE_SCREENSHOTS", shots);
    }
    let result = run(&mut cmd);
    let stdout = String::from_utf8_lossy(&result.stdout);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        result.status.success() && stdout.contains("console: all checks passed"),
        "console.py failed:\n{stdout}\n{stderr}"
    );
}
