//! `writ lambda` for the tests that host real Lambda handlers: the Python of the venv `.ci/run`
//! creates (AWS's `awslambdaric` runtime client and `boto3`), a running host, its log and its
//! audit file.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use serde_json::Value;

use super::{PATIENCE, wait_for, writ_command};

/// The Python with `awslambdaric` and `boto3`: `$WRIT_TEST_PYTHON`, by default
/// `~/.cache/writ/venv/bin/python`. Without them the test fails here, saying how to get them.
pub fn python() -> PathBuf {
    let python = std::env::var_os("WRIT_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(&std::env::var_os("HOME").expect("HOME is set"))
                .join(".cache/writ/venv/bin/python")
        });
    let ok = Command::new(&python)
        .args(["-c", "import awslambdaric, boto3"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "this test needs a Python with awslambdaric and boto3 at {}. Install them as .ci/run \
         does:\n  python3 -m venv ~/.cache/writ/venv && ~/.cache/writ/venv/bin/pip install \
         botocore awscli awslambdaric boto3\nor point WRIT_TEST_PYTHON at a Python that has them.",
        python.display()
    );
    python
}

/// Writes `text` to `path`, readable by its owner only (as the host requires of its
/// credentials file).
pub fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A running `writ lambda` started in `dir` with `template.yaml`, `lambda.toml` and
/// `credentials.toml` there, its data in `dir/data`; killed on drop.
pub struct Host {
    /// The directory it runs in.
    pub dir: PathBuf,
    /// The host's process.
    pub child: Child,
    /// Its Invoke API, `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Host {
    /// Starts the host in `dir` and waits until it listens.
    pub fn start(dir: &Path) -> Host {
        let stdout = std::fs::File::create(dir.join("host.out")).unwrap();
        let stderr = std::fs::File::create(dir.join("host.err")).unwrap();
        let child = writ_command()
            .current_dir(dir)
            .args([
                "lambda",
                "--template",
                "template.yaml",
                "--config",
                "lambda.toml",
                "--credentials",
                "credentials.toml",
                "--data-dir",
                "data",
                "--listen",
                "127.0.0.1:0",
            ])
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("start writ lambda");
        let out = dir.join("host.out");
        let endpoint = wait_for("the host to listen", PATIENCE, || {
            let text = std::fs::read_to_string(&out).ok()?;
            text.lines()
                .find_map(|l| l.strip_prefix("writ: lambda host listening on "))
                .map(str::to_string)
        });
        Host {
            dir: dir.to_path_buf(),
            child,
            endpoint,
        }
    }

    /// The host's port.
    pub fn port(&self) -> u16 {
        self.endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {}", self.endpoint))
    }

    /// What the host (and the runtimes, through it) wrote to stdout and stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("host.err")).unwrap_or_default()
            + &std::fs::read_to_string(self.dir.join("host.out")).unwrap_or_default()
    }

    /// The audit file's events, one per decision.
    pub fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("data/lambda-audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}
