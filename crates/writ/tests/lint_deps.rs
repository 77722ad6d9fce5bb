//! `writ lint --deps` end to end: lock files of every supported format under
//! `tests/lint/deps*`, checked against the small OSV database in
//! `crates/writ-lint/tests/data/osv`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lint")
}

fn osv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../writ-lint/tests/data/osv")
}

fn writ(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_writ"))
        .arg("lint")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run writ")
}

fn deps_json(path: &str, dir: &Path, db: &Path) -> (Option<i32>, Value, String) {
    let o = writ(
        &[
            "--deps",
            "--advisories-dir",
            db.to_str().unwrap(),
            "--format",
            "json",
            path,
        ],
        dir,
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    (
        o.status.code(),
        v,
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// (rule, file, line, message) of the findings of `rules`.
fn findings(v: &Value, rule_prefix: &str) -> Vec<(String, String, u64, String)> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"].as_str().unwrap().starts_with(rule_prefix))
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["file"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn scratch(name: &str, from: &Path) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("writ-lint-deps-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy(from, &dir);
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
fn findings_name_advisory_versions_lock_file_and_function() {
    let (code, v, err) = deps_json("deps", &fixtures(), &osv());
    assert_eq!(code, Some(1));
    assert!(err.contains("PyPI advisories: 3 records in"), "{err}");
    // The package-lock.json is checked as a lock file, not skipped as a non-template.
    assert_eq!(v["skipped"], serde_json::json!([]), "{v}");
    assert_eq!(v["summary"]["files"], 6, "{v}");
    assert!(err.contains("downloaded"), "{err}");
    let deps = findings(&v, "WRIT-DEP-");
    let want: &[(&str, &str, u64, &[&str])] = &[
        (
            "WRIT-DEP-001",
            "deps/functions/goapp/go.sum",
            3,
            &[
                "golang.org/x/text v0.3.6 (Go) is affected by GO-2021-0113 (CVE-2021-38561",
                "fixed in 0.3.7",
                "ships in directory deps/functions/goapp",
            ],
        ),
        (
            "WRIT-DEP-001",
            "deps/functions/orders/requirements.txt",
            2,
            &[
                "requests 2.19.1 (PyPI) is affected by GHSA-j8r2-6x86-q33q (CVE-2023-32681)",
                "fixed in 2.31.0",
                "ships in function Orders (deps/template.yaml)",
            ],
        ),
        (
            "WRIT-DEP-001",
            "deps/functions/orders/requirements.txt",
            2,
            &[
                "GHSA-x84v-xcm2-53pg (CVE-2018-18074)",
                "fixed in 2.20.0",
                "function Orders",
            ],
        ),
        (
            "WRIT-DEP-002",
            "deps/functions/orders/requirements.txt",
            4,
            &["\"PyYAML>=5.1\" pins no version"],
        ),
        (
            "WRIT-DEP-001",
            "deps/functions/rust/Cargo.lock",
            19,
            &[
                "time 0.1.43 (crates.io) is affected by RUSTSEC-2020-0071",
                "fixed in 0.2.0, 0.2.23",
                "ships in function aws_lambda_function.report (deps/infra/main.tf)",
            ],
        ),
        (
            "WRIT-DEP-001",
            "deps/functions/web/package-lock.json",
            15,
            &[
                "lodash 4.17.15 (npm) is affected by GHSA-35jh-r3h4-6jhm",
                "function Web",
            ],
        ),
        (
            "WRIT-DEP-001",
            "deps/functions/web/package-lock.json",
            20,
            &[
                "minimist 1.2.5 (npm) is affected by GHSA-xvch-5gv4-984h",
                "fixed in 1.2.6",
            ],
        ),
    ];
    assert_eq!(deps.len(), want.len(), "{deps:#?}");
    for ((rule, file, line, msg), (wr, wf, wl, parts)) in deps.iter().zip(want) {
        assert_eq!(
            (rule.as_str(), file.as_str(), *line),
            (*wr, *wf, *wl),
            "{msg}"
        );
        for p in *parts {
            assert!(msg.contains(p), "{msg:?} should contain {p:?}");
        }
    }
    // Severities come from the advisories: GHSA's own, CVSS, else medium.
    let sev = |id: &str| {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["message"].as_str().unwrap().contains(id))
            .map(|f| f["severity"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(sev("GHSA-x84v-xcm2-53pg"), "high");
    assert_eq!(sev("GHSA-j8r2-6x86-q33q"), "medium");
    assert_eq!(sev("GHSA-xvch-5gv4-984h"), "critical");
    assert_eq!(sev("RUSTSEC-2020-0071"), "medium");
    assert_eq!(sev("GO-2021-0113"), "medium");
}

/// A lock file, the vulnerable package and its line, the advisories expected, and the
/// edits that upgrade it to fixed versions.
type Case<'a> = (
    &'a str,
    &'a str,
    u64,
    &'a [&'a str],
    &'a [(&'a str, &'a str)],
);

/// Each format fails with its vulnerable version, and passes once the version is fixed.
#[test]
fn every_lock_format_fails_then_passes_once_upgraded() {
    let cases: &[Case] = &[
        (
            "poetry/poetry.lock",
            "requests 2.19.1",
            12,
            &["GHSA-j8r2-6x86-q33q", "GHSA-x84v-xcm2-53pg"],
            &[("version = \"2.19.1\"", "version = \"2.31.0\"")],
        ),
        (
            "pipenv/Pipfile.lock",
            "requests 2.25.0",
            9,
            &["GHSA-j8r2-6x86-q33q"],
            &[("==2.25.0", "==2.32.3"), ("==5.3.1", "==6.0.1")],
        ),
        (
            "npm-v1/package-lock.json",
            "lodash 4.17.11",
            7,
            &["GHSA-35jh-r3h4-6jhm", "GHSA-jf85-cpcp-j695"],
            &[("\"4.17.11\"", "\"4.17.21\"")],
        ),
        (
            "npm-v2/package-lock.json",
            "minimist 0.0.8",
            11,
            &["GHSA-xvch-5gv4-984h"],
            &[("\"0.0.8\"", "\"0.2.4\"")],
        ),
        (
            "pnpm/pnpm-lock.yaml",
            "lodash 4.17.20",
            17,
            &["GHSA-35jh-r3h4-6jhm"],
            &[("4.17.20", "4.17.21")],
        ),
        (
            "yarn-v1/yarn.lock",
            "minimist 1.2.5",
            5,
            &["GHSA-xvch-5gv4-984h"],
            &[("\"1.2.5\"", "\"1.2.8\"")],
        ),
        (
            "yarn-berry/yarn.lock",
            "lodash 4.17.20",
            16,
            &["GHSA-35jh-r3h4-6jhm"],
            &[("4.17.20", "4.17.21")],
        ),
    ];
    let dir = scratch("formats", &fixtures().join("deps-formats"));
    for (file, pkg, line, ids, fixes) in cases {
        let (code, v, _) = deps_json(file, &dir, &osv());
        assert_eq!(code, Some(1), "{file}");
        let found = findings(&v, "WRIT-DEP-001");
        let first = found
            .iter()
            .find(|f| f.3.starts_with(pkg))
            .unwrap_or_else(|| panic!("{file}: {found:#?}"));
        assert_eq!((first.1.as_str(), first.2), (*file, *line), "{file}");
        for id in *ids {
            assert!(
                found.iter().any(|f| f.3.contains(id)),
                "{file}: {id}: {found:#?}"
            );
        }
        let path = dir.join(file);
        let mut text = std::fs::read_to_string(&path).unwrap();
        for (from, to) in *fixes {
            text = text.replace(from, to);
        }
        std::fs::write(&path, text).unwrap();
        let (code, v, _) = deps_json(file, &dir, &osv());
        assert_eq!(findings(&v, "WRIT-"), vec![], "{file} after the upgrade");
        assert_eq!(code, Some(0), "{file}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_database_is_an_error_finding_and_a_stale_one_a_warning() {
    let empty = std::env::temp_dir().join(format!("writ-lint-deps-nodb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&empty);
    std::fs::create_dir_all(&empty).unwrap();
    let (code, v, _) = deps_json("deps/functions/orders", &fixtures(), &empty);
    assert_eq!(code, Some(1));
    let f = findings(&v, "WRIT-DEP-003");
    assert_eq!(f.len(), 1, "{f:#?}");
    assert!(
        f[0].3.contains("no PyPI advisory database in")
            && f[0].3.contains("writ advisories update --ecosystem PyPI"),
        "{f:#?}"
    );
    // A database downloaded ten days ago is used, with a warning saying how old it is.
    let db = scratch("stale", &osv());
    let ten_days_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 10 * 86_400;
    std::fs::write(
        db.join("PyPI/.writ-download.json"),
        format!("{{\"downloaded_at\": {ten_days_ago}}}"),
    )
    .unwrap();
    let (code, v, err) = deps_json("deps/functions/orders", &fixtures(), &db);
    assert_eq!(code, Some(1));
    assert_eq!(findings(&v, "WRIT-DEP-001").len(), 2);
    assert!(err.contains("downloaded 10 days ago"), "{err}");
    assert!(
        err.contains("warning: the PyPI advisories are older than 7 days"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&db);
    let _ = std::fs::remove_dir_all(&empty);
}

#[test]
fn suppressions_baselines_and_every_format_carry_dependency_findings() {
    let dir = scratch("suppress", &fixtures().join("deps"));
    let req = dir.join("functions/orders/requirements.txt");
    let text = std::fs::read_to_string(&req).unwrap();
    std::fs::write(
        &req,
        text.replace(
            "requests==2.19.1",
            "# writ:ignore WRIT-DEP-001 only calls our own API, no redirects or proxies\nrequests==2.19.1",
        ),
    )
    .unwrap();
    let (_, v, _) = deps_json("functions/orders", &dir, &osv());
    assert_eq!(findings(&v, "WRIT-DEP-001"), vec![]);
    assert_eq!(v["summary"]["suppressed"], 2, "{v}");

    // A baseline accepts today's findings; a new vulnerable package is reported.
    let base = dir.join("baseline.json");
    let o = writ(
        &[
            "--deps",
            "--advisories-dir",
            osv().to_str().unwrap(),
            "--write-baseline",
            base.to_str().unwrap(),
            "functions",
        ],
        &dir,
    );
    assert_eq!(o.status.code(), Some(0));
    let (code, v, _) = {
        let o = writ(
            &[
                "--deps",
                "--advisories-dir",
                osv().to_str().unwrap(),
                "--baseline",
                base.to_str().unwrap(),
                "--format",
                "json",
                "functions",
            ],
            &dir,
        );
        (
            o.status.code(),
            serde_json::from_slice::<Value>(&o.stdout).unwrap(),
            (),
        )
    };
    assert_eq!(code, Some(0), "{v}");
    let lock = dir.join("functions/web/package-lock.json");
    let text = std::fs::read_to_string(&lock).unwrap();
    std::fs::write(&lock, text.replace("\"4.17.15\"", "\"4.17.11\"")).unwrap();
    let o = writ(
        &[
            "--deps",
            "--advisories-dir",
            osv().to_str().unwrap(),
            "--baseline",
            base.to_str().unwrap(),
            "--format",
            "json",
            "functions",
        ],
        &dir,
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let new = findings(&v, "WRIT-DEP-001");
    assert_eq!(new.len(), 1, "{new:#?}");
    assert!(new[0].3.contains("GHSA-jf85-cpcp-j695"), "{new:#?}");

    // SARIF and JUnit carry them like any finding.
    for (format, needle) in [
        ("sarif", "\"ruleId\": \"WRIT-DEP-001\""),
        ("junit", "WRIT-DEP-001"),
    ] {
        let o = writ(
            &[
                "--deps",
                "--advisories-dir",
                osv().to_str().unwrap(),
                "--format",
                format,
                "functions/web",
            ],
            &dir,
        );
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(1), "{format}");
        assert!(
            out.contains(needle) || out.contains(&needle.replace(": ", ":")),
            "{format}: {out}"
        );
        assert!(out.contains("package-lock.json"), "{format}: {out}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn lock_files_are_read_only_with_deps_and_parse_errors_fail_the_run() {
    // Without --deps, lock files are not read (package-lock.json is skipped as before).
    let o = writ(&["--format", "json", "deps/functions"], &fixtures());
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(0), "{v}");
    assert_eq!(v["findings"].as_array().unwrap().len(), 0);

    let dir = std::env::temp_dir().join(format!("writ-lint-deps-bad-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("go.sum"), "golang.org/x/text v0.3.6\n").unwrap();
    std::fs::write(dir.join("Cargo.lock"), "[[package]]\nname = 1\n").unwrap();
    let (code, v, _) = deps_json(".", &dir, &osv());
    assert_eq!(code, Some(1));
    let parse = findings(&v, "WRIT-PARSE-001");
    assert_eq!(parse.len(), 2, "{parse:#?}");
    assert_eq!((parse[0].1.as_str(), parse[0].2), ("./Cargo.lock", 2));
    assert!(parse[0].3.contains("not a string"), "{parse:#?}");
    assert_eq!((parse[1].1.as_str(), parse[1].2), ("./go.sum", 1));
    assert!(parse[1].3.contains("module version hash"), "{parse:#?}");
    let _ = std::fs::remove_dir_all(&dir);
}
