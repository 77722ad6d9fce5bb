//! `writ lint` end to end: the real binary on fixture trees under `tests/lint/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lint")
}

fn writ(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_writ"))
        .arg("lint")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run writ")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A scratch copy of a fixture tree.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("writ-lint-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy(&fixtures().join("mixed"), &dir);
    dir
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn clean_tree_exits_zero_and_counts_the_suppression() {
    let o = writ(&["clean"], &fixtures());
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("0 findings in 1 file; 1 suppressed inline"),
        "{out}"
    );
}

#[test]
fn findings_exit_one_grouped_by_file_with_positions_and_hints() {
    let o = writ(&["mixed"], &fixtures());
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("mixed/main.tf:3:24 high WRIT-URL-001"),
        "{out}"
    );
    assert!(
        out.contains("mixed/nested/role.json:4:5 critical WRIT-IAM-001"),
        "{out}"
    );
    assert!(out.contains("fix: "), "{out}");
    // The broken template is reported where it breaks, and the other files were scanned.
    assert!(
        out.contains("mixed/nested/broken.yaml:4:1 high WRIT-PARSE-001"),
        "{out}"
    );
    // node_modules is skipped.
    assert!(!out.contains("node_modules"), "{out}");
    assert!(out.contains("in 3 files"), "{out}");
}

#[test]
fn severity_threshold() {
    let dir = fixtures().join("mixed");
    let o = writ(&["--severity", "critical", "main.tf"], &dir);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("1 below the threshold"));
    let o = writ(&["--severity", "critical", "nested/role.json"], &dir);
    assert_eq!(o.status.code(), Some(1));
    // A parse error fails the run whatever the threshold.
    let o = writ(&["--severity", "critical", "nested/broken.yaml"], &dir);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn usage_errors_exit_two() {
    let o = writ(&["does-not-exist"], &fixtures());
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("does-not-exist"));
    assert_eq!(
        writ(&["--severity", "bogus", "mixed"], &fixtures())
            .status
            .code(),
        Some(2)
    );
    assert_eq!(writ(&[], &fixtures()).status.code(), Some(2));
    assert_eq!(
        writ(&["--allow-layer-account", "12", "mixed"], &fixtures())
            .status
            .code(),
        Some(2)
    );
    let bad = std::env::temp_dir().join(format!(
        "writ-lint-bad-baseline-{}.json",
        std::process::id()
    ));
    std::fs::write(&bad, "{\"version\": 7}").unwrap();
    let o = writ(&["--baseline", bad.to_str().unwrap(), "mixed"], &fixtures());
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("version"));
    std::fs::remove_file(bad).unwrap();
}

#[test]
fn json_output() {
    let o = writ(&["--format", "json", "mixed"], &fixtures());
    let v: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["summary"]["files"], 3);
    assert_eq!(v["summary"]["parse_errors"], 1);
    let rules: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert!(
        rules.contains(&"WRIT-URL-001") && rules.contains(&"WRIT-IAM-001"),
        "{rules:?}"
    );
}

#[test]
fn sarif_output_is_structurally_valid() {
    let o = writ(&["--format", "sarif", "mixed"], &fixtures());
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&o.stdout).expect("SARIF is JSON");
    assert_eq!(v["version"], "2.1.0");
    assert!(v["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let run = &v["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"WRIT-URL-001") && ids.contains(&"WRIT-PARSE-001"));
    for r in rules {
        assert!(r["shortDescription"]["text"].is_string() && r["help"]["text"].is_string());
    }
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    for r in results {
        let id = r["ruleId"].as_str().unwrap();
        let index = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(ids[index], id);
        assert!(["error", "warning", "note"].contains(&r["level"].as_str().unwrap()));
        assert!(r["message"]["text"].is_string());
        let loc = &r["locations"][0]["physicalLocation"];
        assert!(
            loc["artifactLocation"]["uri"]
                .as_str()
                .unwrap()
                .starts_with("mixed/")
        );
        assert!(loc["region"]["startLine"].as_u64().unwrap() >= 1);
        assert!(loc["region"]["startColumn"].as_u64().unwrap() >= 1);
        assert!(r["partialFingerprints"]["writLint/v1"].is_string());
    }
}

#[test]
fn junit_output_parses() {
    let o = writ(&["--format", "junit", "mixed"], &fixtures());
    assert_eq!(o.status.code(), Some(1));
    let xml = stdout(&o);
    let script = "import sys, xml.etree.ElementTree as ET\n\
                  root = ET.fromstring(sys.stdin.read())\n\
                  assert root.tag == 'testsuites', root.tag\n\
                  suites = root.findall('testsuite')\n\
                  failures = sum(len(c.findall('failure')) for s in suites for c in s.findall('testcase'))\n\
                  print(len(suites), failures, root.get('failures'))\n";
    let py = Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn();
    match py {
        Ok(mut child) => {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(xml.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}\n{xml}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                "3 3 3",
                "{xml}"
            );
        }
        Err(_) => {
            // No python3: check the shape by hand, and say so.
            eprintln!("note: python3 not found; the JUnit XML was checked by hand, not parsed");
            assert!(xml.starts_with("<?xml") && xml.trim_end().ends_with("</testsuites>"));
            assert_eq!(xml.matches("<failure ").count(), 3);
        }
    }
}

#[test]
fn baseline_hides_known_findings_and_survives_line_moves() {
    let dir = scratch("baseline");
    let o = writ(&["--write-baseline", "base.json", "."], &dir);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let base: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("base.json")).unwrap()).unwrap();
    // Parse errors are not baselined: an unparsed file was not checked.
    assert_eq!(base["findings"].as_array().unwrap().len(), 2);
    std::fs::remove_file(dir.join("nested/broken.yaml")).unwrap();
    let o = writ(&["--baseline", "base.json", "."], &dir);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("2 in the baseline"));
    // Moving the finding down a few lines keeps it baselined.
    let tf = std::fs::read_to_string(dir.join("main.tf")).unwrap();
    std::fs::write(dir.join("main.tf"), format!("\n\n# moved\n{tf}")).unwrap();
    assert_eq!(
        writ(&["--baseline", "base.json", "."], &dir).status.code(),
        Some(0)
    );
    // A new finding is reported.
    std::fs::write(
        dir.join("perm.tf"),
        "resource \"aws_lambda_permission\" \"p\" {\n  principal = \"*\"\n}\n",
    )
    .unwrap();
    let o = writ(&["--baseline", "base.json", "."], &dir);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("WRIT-PERM-002") && !out.contains("WRIT-URL-001"),
        "{out}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn suppression_without_reason_is_a_finding() {
    let dir = scratch("suppress");
    std::fs::write(
        dir.join("main.tf"),
        "resource \"aws_lambda_function_url\" \"api\" {\n  # writ:ignore WRIT-URL-001\n  authorization_type = \"NONE\"\n}\n",
    )
    .unwrap();
    let o = writ(&["main.tf"], &dir);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        out.contains("main.tf:2:5 medium WRIT-SUPPRESS-001"),
        "{out}"
    );
    assert!(out.contains("main.tf:3:24 high WRIT-URL-001"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn files_that_are_not_templates_are_skipped_counted_and_listed() {
    let o = writ(&["not-templates"], &fixtures());
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("0 findings in 5 files;")
            && out.contains("; 4 files skipped (not a template or policy"),
        "{out}"
    );
    let o = writ(&["--format", "json", "not-templates"], &fixtures());
    assert_eq!(o.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["summary"]["skipped"], 4);
    assert_eq!(v["summary"]["parse_errors"], 0);
    let mut files: Vec<&str> = v["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["file"].as_str().unwrap())
        .collect();
    files.sort_unstable();
    assert_eq!(
        files,
        [
            "not-templates/App.sln.template",
            "not-templates/ci.yml",
            "not-templates/config.yaml",
            "not-templates/package.json"
        ]
    );
    assert!(
        v["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("not a")
    );
}
