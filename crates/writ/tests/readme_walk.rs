//! The README, walked as a newcomer would: every `$ ` command of its `console` blocks, in
//! order, in one shell (so `export`s and variables carry on), in a fresh directory holding
//! what a clone has that the commands name (`examples/`, the lint fixtures). A command
//! fails the walk when it exits with another status than the README says.
//!
//! How the README's text is read:
//! - `$ cmd`, with `\` continuation lines, is a command; the lines after it are what it
//!   prints, for people (not compared).
//! - A comment `# exits N` on a command's line says it exits with N (a refused policy, a
//!   diff that finds new access); otherwise it must exit 0.
//! - A command ending with ` &` runs in the background, as in a second terminal: the walk
//!   waits until it prints that it is listening or ready, and stops it (SIGTERM) at the end. A `dev`
//!   command (`writ dev`) serves until Ctrl-C: the walk waits until its demo has run and
//!   sends it Ctrl-C, as the README's reader does, and requires it to exit 0.
//! - A `toml` block whose first line is `# FILE: ...` is that file's content, written
//!   before the commands that follow it.
//!
//! The walk runs the `writ` this test was built with, for `writ` and for `cargo run
//! --release -p writ --` alike, and does not run `cargo install` or `docker` (CI runs
//! both, `.ci/run`); it says so for each command it leaves out. `HOME` is a directory of
//! the walk, so nothing is written outside it.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::TempDir;

/// One step of the walk, where the README has it.
#[derive(Debug)]
enum Step {
    /// A command, its README line, and the exit status it must have.
    Run {
        line: usize,
        command: String,
        exits: i32,
        background: bool,
    },
    /// A file to write.
    File {
        line: usize,
        name: String,
        content: String,
    },
}

/// The steps of `readme`, in order.
fn steps(readme: &str) -> Vec<Step> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let fence = lines[i].trim_end();
        if fence == "```console" {
            i += 1;
            while i < lines.len() && lines[i].trim_end() != "```" {
                if let Some(first) = lines[i].strip_prefix("$ ") {
                    let line = i + 1;
                    let mut command = first.to_string();
                    while command.trim_end().ends_with('\\') && i + 1 < lines.len() {
                        i += 1;
                        command.push('\n');
                        command.push_str(lines[i]);
                    }
                    let exits = command
                        .split("# exits ")
                        .nth(1)
                        .and_then(|rest| rest.split_whitespace().next())
                        .and_then(|n| n.trim_end_matches([':', ',', ';']).parse().ok())
                        .unwrap_or(0);
                    let code = command.split(" #").next().unwrap_or(&command).trim_end();
                    let background = code.ends_with(" &");
                    let command = if background {
                        code.trim_end_matches('&').trim_end().to_string()
                    } else {
                        command
                    };
                    out.push(Step::Run {
                        line,
                        command,
                        exits,
                        background,
                    });
                }
                i += 1;
            }
        } else if fence == "```toml"
            && let Some(name) = lines
                .get(i + 1)
                .and_then(|l| l.strip_prefix("# "))
                .and_then(|l| l.split(':').next())
                .filter(|n| !n.contains(' '))
        {
            let line = i + 1;
            let mut content = String::new();
            i += 1;
            while i < lines.len() && lines[i].trim_end() != "```" {
                content.push_str(lines[i]);
                content.push('\n');
                i += 1;
            }
            out.push(Step::File {
                line,
                name: name.to_string(),
                content,
            });
        }
        i += 1;
    }
    out
}

/// Why the walk leaves a command out, if it does.
fn left_out(command: &str) -> Option<&'static str> {
    let program = command.split_whitespace().next().unwrap_or("");
    match program {
        "cargo" if command.contains("cargo install") => Some(
            "installs writ; the walk runs the writ this test was built with (CI runs `cargo install`)",
        ),
        "docker" => Some("builds the container image; CI builds it (`.ci/run`)"),
        _ => None,
    }
}

/// A bash script that runs the steps, printing `::step LINE` before each and
/// `::failed LINE STATUS` (then exiting) when one exits otherwise than the README says.
fn script(steps: &[Step], logs: &Path) -> String {
    let mut s = String::from(
        "set -u\n\
         background=()\n\
         stop_all() { for p in \"${background[@]}\"; do kill -TERM \"$p\" 2>/dev/null; done; wait 2>/dev/null; }\n\
         trap stop_all EXIT\n\
         ready() { # LOG PID: wait until the log says it is listening or ready\n\
           for _ in $(seq 1 600); do\n\
             grep -qiE 'listening|ready|Serving until' \"$1\" && return 0\n\
             kill -0 \"$2\" 2>/dev/null || return 1\n\
             sleep 0.1\n\
           done; return 1; }\n",
    );
    for step in steps {
        match step {
            Step::File {
                line,
                name,
                content,
            } => {
                let _ = writeln!(s, "echo '::step {line}'");
                let _ = writeln!(
                    s,
                    "cat > '{name}' <<'WRIT_README_EOF'\n{content}WRIT_README_EOF"
                );
            }
            Step::Run {
                line,
                command,
                exits,
                background,
            } => {
                let _ = writeln!(s, "echo '::step {line}'");
                if let Some(why) = left_out(command) {
                    let _ = writeln!(s, "echo '::left-out {line} {why}'");
                    continue;
                }
                let command = command.replace("cargo run --release -p writ --", "writ");
                let log = logs.join(format!("{line}.log"));
                let log = log.display();
                let is_dev = command.split_whitespace().take(2).eq(["writ", "dev"]);
                if *background || is_dev {
                    let _ = writeln!(
                        s,
                        "{command} > '{log}' 2>&1 &\npid=$!\n\
                         if ! ready '{log}' $pid; then echo '::failed {line} not-ready'; exit 1; fi"
                    );
                    if is_dev {
                        // Serves until Ctrl-C: the walk presses it once the demo has run.
                        let _ = writeln!(
                            s,
                            "kill -INT $pid; wait $pid; rc=$?\n\
                             if [ $rc -ne {exits} ]; then echo \"::failed {line} $rc\"; exit 1; fi"
                        );
                    } else {
                        s.push_str("background+=($pid)\n");
                    }
                } else {
                    let _ = writeln!(
                        s,
                        "{command}\n\
                         rc=$?\n\
                         if [ $rc -ne {exits} ]; then echo \"::failed {line} $rc\"; exit 1; fi"
                    );
                }
            }
        }
    }
    s.push_str("echo '::done'\n");
    s
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_readme_is_read_as_the_walk_reads_it() {
    let readme = "text\n```console\n$ writ a \\\n    --b   # exits 2: why\nprinted\n$ writ server --x &\n```\n```toml\n# gw.toml: the gateway\nlisten = 1\n```\n";
    let s = steps(readme);
    assert!(
        matches!(&s[0], Step::Run { line: 3, exits: 2, background: false, command } if command.contains("--b"))
    );
    assert!(
        matches!(&s[1], Step::Run { line: 6, exits: 0, background: true, command } if command == "writ server --x")
    );
    assert!(
        matches!(&s[2], Step::File { name, content, .. } if name == "gw.toml" && content.contains("listen = 1"))
    );
}

#[test]
fn every_command_of_the_readme_runs_in_order() {
    let root = repo();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let steps = steps(&readme);
    assert!(steps.len() > 20, "the README has {} steps", steps.len());

    let dir = TempDir::new("readme");
    let walk = dir.path().join("clone");
    copy_dir(&root.join("examples"), &walk.join("examples"));
    copy_dir(
        &root.join("crates/writ/tests/lint"),
        &walk.join("crates/writ/tests/lint"),
    );
    let home = dir.path().join("home");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&logs).unwrap();
    let script_path = dir.path().join("walk.sh");
    std::fs::write(&script_path, script(&steps, &logs)).unwrap();

    let bin = Path::new(env!("CARGO_BIN_EXE_writ")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg(&script_path)
        .current_dir(&walk)
        .env("PATH", path)
        .env("HOME", &home)
        .env("TMPDIR", dir.path())
        .env_remove("WRIT_ADDR")
        .env_remove("WRIT_TOKEN")
        .env_remove("WRIT_TOKEN_FILE")
        .env_remove("WRIT_CACERT")
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for left in stdout.lines().filter(|l| l.starts_with("::left-out")) {
        eprintln!("README.md:{}", left.trim_start_matches("::left-out "));
    }
    if let Some(failed) = stdout.lines().find(|l| l.starts_with("::failed")) {
        let mut parts = failed.split_whitespace().skip(1);
        let line: usize = parts.next().unwrap().parse().unwrap();
        let status = parts.next().unwrap_or("?");
        let command = readme.lines().nth(line - 1).unwrap_or("");
        let log = std::fs::read_to_string(logs.join(format!("{line}.log"))).unwrap_or_default();
        panic!(
            "README.md:{line}: `{command}` ended with {status}\n--- its output\n{}\n--- the walk's stderr (tail)\n{}\n--- its log\n{log}",
            tail(&stdout_since(&stdout, line), 40),
            tail(&stderr, 40),
        );
    }
    assert!(
        stdout.lines().any(|l| l == "::done"),
        "the walk stopped early:\n{}\n{}",
        tail(&stdout, 40),
        tail(&stderr, 40)
    );
}

fn stdout_since(stdout: &str, line: usize) -> String {
    let marker = format!("::step {line}");
    stdout
        .split_once(&marker)
        .map_or(stdout, |(_, after)| after)
        .to_string()
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
