//! Every rule has a page `docs/rules/<ID>.md`, and the examples on it lint as they say:
//! a block fenced as ```` ```hcl fail ```` (or `yaml`, `json`) must produce the rule, one
//! fenced as ```` ```hcl pass ```` must not (and must parse). Examples are linted with
//! `--allow-layer-account 123456789012`. A block whose language is a lock file's name
//! (```` ```requirements.txt fail ````) is checked as `writ lint --deps` checks it, against
//! the test OSV database in `tests/data/osv`; with the word `no-database` after `fail` or
//! `pass`, against no database at all.

use std::path::{Path, PathBuf};

use writ_lint::deps::lockfile::LockKind;
use writ_lint::deps::{DepCheck, Ecosystem, lint_lockfile};
use writ_lint::{Config, FileReport, RULES, depscan, lint_source};

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/rules")
}

struct Example {
    lang: String,
    fails: bool,
    no_database: bool,
    code: String,
    line: usize,
}

fn examples(page: &str) -> Vec<Example> {
    let mut out = Vec::new();
    // Inside a fence: `Some(None)` for an unmarked block, `Some(Some(example))` for a marked one.
    let mut fence: Option<Option<Example>> = None;
    for (i, line) in page.lines().enumerate() {
        let trimmed = line.trim_start();
        match fence.take() {
            Some(inner) if trimmed.starts_with("```") => out.extend(inner),
            Some(Some(mut ex)) => {
                ex.code.push_str(line);
                ex.code.push('\n');
                fence = Some(Some(ex));
            }
            Some(None) => fence = Some(None),
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    let mut words = info.split_whitespace();
                    let lang = words.next().unwrap_or("").to_string();
                    fence = Some(match words.next() {
                        Some(kind @ ("fail" | "pass")) => Some(Example {
                            lang,
                            fails: kind == "fail",
                            no_database: words.next() == Some("no-database"),
                            code: String::new(),
                            line: i + 1,
                        }),
                        _ => None,
                    });
                }
            }
        }
    }
    out
}

fn file_name(lang: &str) -> &'static str {
    match lang {
        "hcl" | "terraform" | "tf" => "example.tf",
        "yaml" | "yml" => "example.yaml",
        "json" => "example.json",
        "toml" => "gateway.toml",
        other => panic!("unknown example language {other:?}"),
    }
}

/// Lints an example: a lock file against the test OSV database, anything else as a file
/// of its language.
fn lint_example(ex: &Example, config: &Config) -> FileReport {
    let Some(kind) = LockKind::of(&ex.lang) else {
        return lint_source(file_name(&ex.lang), &ex.code, config);
    };
    let osv = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/osv");
    let eco: Ecosystem = kind.ecosystem();
    let wanted = writ_lint::deps::lockfile::parse(kind, &ex.code)
        .map(|l| {
            l.packages
                .iter()
                .map(|p| eco.normalize_name(&p.name))
                .collect()
        })
        .unwrap_or_default();
    let loaded = depscan::load(&osv, eco, &wanted, 1).unwrap().unwrap();
    let db = (!ex.no_database).then_some(&loaded.db);
    lint_lockfile(
        &ex.lang,
        &ex.code,
        kind,
        DepCheck {
            db,
            db_dir: "tests/data/osv",
            ships_in: "function Example (template.yaml)",
        },
    )
}

#[test]
fn every_rule_has_a_page_with_examples_that_lint_as_they_say() {
    let config = Config {
        allow_layer_accounts: vec!["123456789012".into()],
    };
    for rule in RULES {
        let path = rules_dir().join(format!("{}.md", rule.id));
        let page =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            page.starts_with(&format!("# {}: ", rule.id)),
            "{}: title",
            rule.id
        );
        assert!(
            page.contains(&format!("**Severity:** {}", rule.severity)),
            "{}: the page must state severity {}",
            rule.id,
            rule.severity
        );
        let exs = examples(&page);
        assert!(
            exs.iter().any(|e| e.fails),
            "{}: no failing example",
            rule.id
        );
        assert!(
            exs.iter().any(|e| !e.fails),
            "{}: no passing example",
            rule.id
        );
        for ex in exs {
            let report = lint_example(&ex, &config);
            let ids: Vec<&str> = report.findings.iter().map(|f| f.rule).collect();
            if ex.fails {
                assert!(
                    ids.contains(&rule.id),
                    "{}.md line {}: expected {}, got {ids:?}",
                    rule.id,
                    ex.line,
                    rule.id
                );
            } else {
                assert!(
                    !ids.contains(&rule.id),
                    "{}.md line {}: {} not expected, got {ids:?}",
                    rule.id,
                    ex.line,
                    rule.id
                );
                assert!(
                    !ids.contains(&"WRIT-PARSE-001"),
                    "{}.md line {}: passing example does not parse",
                    rule.id,
                    ex.line
                );
            }
        }
    }
}

#[test]
fn every_page_is_a_rule() {
    for entry in std::fs::read_dir(rules_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let id = name.strip_suffix(".md").unwrap_or(&name);
        assert!(
            writ_lint::rule(id).is_some(),
            "docs/rules/{name} names no rule"
        );
    }
}

#[test]
fn example_blocks_are_found() {
    let page = "x\n```hcl fail\na = 1\n```\n```sh\nwrit lint .\n```\n```json pass\n{}\n```\n";
    let exs = examples(page);
    assert_eq!(exs.len(), 2);
    assert!(exs[0].fails && exs[0].lang == "hcl" && exs[0].code == "a = 1\n");
    assert!(!exs[1].fails && exs[1].lang == "json");
}
