//! The "wrong way" snippets of the seed article on Lambda security (seeds/003) produce the
//! finding the article warns about, and its "right way" snippets produce none of it.
//! The snippets are copied verbatim (unindented, as the article prints them) under
//! `tests/fixtures/seed003/`; the wrong-way function URL and environment are the article's
//! own right-way blocks with the change it warns against.

use std::path::Path;

use writ_lint::{Config, lint_source};

fn lint(name: &str) -> Vec<(&'static str, u32)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/seed003")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    lint_source(name, &text, &Config::default())
        .findings
        .iter()
        .map(|f| (f.rule, f.line))
        .collect()
}

fn rules(found: &[(&'static str, u32)]) -> Vec<&'static str> {
    found.iter().map(|(r, _)| *r).collect()
}

#[test]
fn wildcard_execution_role() {
    assert_eq!(
        lint("wrong_wildcard_policy.json"),
        vec![("WRIT-IAM-001", 4)]
    );
    assert_eq!(lint("right_scoped_policy.json"), vec![]);
    assert_eq!(lint("right_role_policy.tf"), vec![]);
}

#[test]
fn function_url_without_auth() {
    assert_eq!(lint("wrong_function_url.tf"), vec![("WRIT-URL-001", 3)]);
    assert_eq!(lint("right_function_url.tf"), vec![]);
}

#[test]
fn secrets_in_environment_variables() {
    let wrong = lint("wrong_environment.tf");
    for (rule, line) in [
        ("WRIT-ENV-001", 7),
        ("WRIT-ENV-001", 8),
        ("WRIT-ENV-001", 9),
        ("WRIT-ENV-002", 10),
    ] {
        assert!(wrong.contains(&(rule, line)), "{rule} at {line}: {wrong:?}");
    }
    // Only the four secrets, not the table name or log level.
    assert_eq!(
        wrong
            .iter()
            .filter(|(r, _)| r.starts_with("WRIT-ENV"))
            .count(),
        4
    );
    let right = rules(&lint("right_environment.tf"));
    assert!(
        !right.iter().any(|r| r.starts_with("WRIT-ENV")),
        "{right:?}"
    );
}

#[test]
fn resource_policy_source_arn() {
    assert_eq!(
        lint("wrong_resource_policy.json"),
        vec![("WRIT-PERM-001", 4)]
    );
    assert_eq!(lint("right_resource_policy.json"), vec![]);
}

#[test]
fn vpc_security_group_and_pinned_layers() {
    // The article's minimal-egress group and pinned layer: no egress or layer finding
    // (the snippets leave out tracing, a DLQ and the rest, which the hardening rules
    // report as the checklist at the article's end asks).
    let vpc = rules(&lint("right_vpc.tf"));
    assert!(!vpc.contains(&"WRIT-SG-001"), "{vpc:?}");
    let layers = rules(&lint("right_layers.tf"));
    assert!(!layers.contains(&"WRIT-LAYER-001"), "{layers:?}");
    assert!(
        vpc.contains(&"WRIT-TRACE-001") && vpc.contains(&"WRIT-DLQ-001"),
        "{vpc:?}"
    );
}
