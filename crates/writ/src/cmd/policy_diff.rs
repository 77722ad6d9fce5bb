//! `writ policy diff` and `writ policy check --not-granted`: what a policy change grants,
//! and whether policies can ever grant some actions on some resources.

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde_json::{Value, json};
use writ_policy::diff::{Change, DiffScope, Finding, PolicyDiff, Witness};
use writ_policy::{ContextValue, ParseOptions, Policy, PolicyKind, Principal};

use crate::input::read_bounded;

/// Files larger than this are not even read; the parser's own limit is far lower.
const READ_LIMIT: usize = 16 * 1024 * 1024;

/// Output format of `diff` and `check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    /// For people: one line per difference, `+` new access, `-` access taken away.
    Text,
    /// One JSON document.
    Json,
    /// SARIF 2.1.0, for code scanning.
    Sarif,
}

/// The kind of the policies compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DiffKind {
    /// Identity-based policies (no Principal).
    Identity,
    /// Resource-based policies (with Principal).
    Resource,
    /// Permissions boundaries: compared as the limit each sets.
    Boundary,
}

impl DiffKind {
    fn policy_kind(self) -> PolicyKind {
        match self {
            DiffKind::Identity => PolicyKind::Identity,
            DiffKind::Resource => PolicyKind::Resource,
            DiffKind::Boundary => PolicyKind::PermissionsBoundary,
        }
    }
}

/// Arguments of `writ policy diff`.
#[derive(Args)]
pub struct DiffArgs {
    /// The policy before the change.
    #[arg(value_name = "OLD")]
    old: String,
    /// The policy after the change.
    #[arg(value_name = "NEW")]
    new: String,
    /// The kind of both policies; by default resource when either names a Principal,
    /// identity otherwise.
    #[arg(long, value_enum)]
    kind: Option<DiffKind>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    format: DiffFormat,
}

/// Arguments of `writ policy check`.
#[derive(Args)]
pub struct CheckArgs {
    /// Actions the policies must never allow: comma-separated patterns (`*`, `?`).
    #[arg(long = "not-granted", value_name = "ACTIONS", required = true)]
    not_granted: String,
    /// On these resources: comma-separated patterns.
    #[arg(long = "on", value_name = "RESOURCES", default_value = "*")]
    on: String,
    /// The policies, evaluated together.
    #[arg(value_name = "POLICY", required = true)]
    policies: Vec<String>,
    /// The kind of the policies; by default resource when one names a Principal, identity
    /// otherwise.
    #[arg(long, value_enum)]
    kind: Option<DiffKind>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    format: DiffFormat,
}

/// Runs `writ policy diff`: exit 0 when NEW grants nothing more, 1 when it does, 2 on error.
pub fn diff(args: DiffArgs) -> ExitCode {
    finish(run_diff(&args))
}

/// Runs `writ policy check`: exit 0 when nothing is granted, 1 when something is, 2 on
/// error.
pub fn check(args: CheckArgs) -> ExitCode {
    finish(run_check(&args))
}

fn finish(r: Result<bool, String>) -> ExitCode {
    match r {
        Ok(false) => ExitCode::from(0),
        Ok(true) => ExitCode::from(1),
        Err(e) => {
            eprintln!("writ: error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Reads a file and parses it as `kind` (or detects the kind); errors name file:line:col.
fn load(file: &str, kind: Option<DiffKind>) -> Result<(PolicyKind, Policy), String> {
    let bytes = read_bounded(file, READ_LIMIT)?;
    let parse = |k: PolicyKind| writ_policy::parse_bytes(&bytes, &ParseOptions::new(k));
    let (kind, parsed) = match kind {
        Some(k) => (k.policy_kind(), parse(k.policy_kind())),
        None => {
            let p = parse(PolicyKind::Identity);
            if p.diagnostics
                .iter()
                .any(|d| d.code == "unexpected-principal")
            {
                (PolicyKind::Resource, parse(PolicyKind::Resource))
            } else {
                (PolicyKind::Identity, p)
            }
        }
    };
    for d in parsed.diagnostics.iter().filter(|d| !d.is_error()) {
        eprintln!("{file}:{d}");
    }
    let errors: Vec<String> = parsed
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| format!("{file}:{d}"))
        .collect();
    match parsed.policy {
        Some(p) if errors.is_empty() => Ok((kind, p)),
        _ => Err(format!(
            "invalid policy; nothing was compared:\n{}",
            errors.join("\n")
        )),
    }
}

/// Loads every file; all must be of one kind.
fn load_all(files: &[&str], kind: Option<DiffKind>) -> Result<(PolicyKind, Vec<Policy>), String> {
    let mut loaded = Vec::new();
    for f in files {
        loaded.push(load(f, kind)?);
    }
    let kind = match kind {
        Some(k) => k.policy_kind(),
        None if loaded.iter().any(|(k, _)| *k == PolicyKind::Resource) => {
            // One names a Principal: read them all as resource policies.
            if let Some((i, _)) = loaded
                .iter()
                .enumerate()
                .find(|(_, (k, _))| *k != PolicyKind::Resource)
            {
                return Err(format!(
                    "{} names no Principal but {} does: pass --kind to say what they are",
                    files[i],
                    files[loaded
                        .iter()
                        .position(|(k, _)| *k == PolicyKind::Resource)
                        .unwrap_or(0)]
                ));
            }
            PolicyKind::Resource
        }
        None => PolicyKind::Identity,
    };
    Ok((kind, loaded.into_iter().map(|(_, p)| p).collect()))
}

fn run_diff(args: &DiffArgs) -> Result<bool, String> {
    let (kind, policies) = load_all(&[&args.old, &args.new], args.kind)?;
    let d = writ_policy::diff::diff(
        &[(args.old.as_str(), &policies[0])],
        &[(args.new.as_str(), &policies[1])],
        kind,
        &DiffScope::default(),
    )
    .map_err(|e| format!("{}: {e}", args.new))?;
    match args.format {
        DiffFormat::Text => print!("{}", diff_text(&args.old, &args.new, &d)),
        DiffFormat::Json => {
            let doc = json!({
                "old": args.old,
                "new": args.new,
                "policyType": d.kind,
                "grantsMore": d.grants_more(),
                "added": d.added,
                "removed": d.removed,
            });
            println!("{}", pretty(&doc)?);
        }
        DiffFormat::Sarif => {
            let results: Vec<Value> = d
                .added
                .iter()
                .chain(&d.removed)
                .map(|f| sarif_result(f, &args.new, diff_rule(f), &finding_line(f)))
                .collect();
            println!("{}", pretty(&sarif(DIFF_RULES, results))?);
        }
    }
    Ok(d.grants_more())
}

fn split_list(text: &str, flag: &str) -> Result<Vec<String>, String> {
    let items: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if items.is_empty() {
        return Err(format!("{flag} {text:?}: give at least one pattern"));
    }
    Ok(items)
}

fn run_check(args: &CheckArgs) -> Result<bool, String> {
    let actions = split_list(&args.not_granted, "--not-granted")?;
    let resources = split_list(&args.on, "--on")?;
    let files: Vec<&str> = args.policies.iter().map(String::as_str).collect();
    let (kind, policies) = load_all(&files, args.kind)?;
    let named: Vec<(&str, &Policy)> = files.iter().copied().zip(policies.iter()).collect();
    let found = writ_policy::diff::check_not_granted(&named, kind, &actions, &resources)
        .map_err(|e| e.to_string())?;
    match args.format {
        DiffFormat::Text => {
            if found.is_empty() {
                println!(
                    "not granted: no request for {} on {} is allowed",
                    actions.join(", "),
                    resources.join(", ")
                );
            }
            for f in &found {
                print!("{}", check_text(f));
            }
        }
        DiffFormat::Json => {
            let doc = json!({
                "policies": files,
                "policyType": kind,
                "actions": actions,
                "resources": resources,
                "granted": !found.is_empty(),
                "findings": found,
            });
            println!("{}", pretty(&doc)?);
        }
        DiffFormat::Sarif => {
            let file = files.first().copied().unwrap_or("-");
            let results: Vec<Value> = found
                .iter()
                .map(|f| {
                    let rule = if f.witness.is_some() {
                        "writ-policy-check/granted"
                    } else {
                        "writ-policy-check/possibly-granted"
                    };
                    sarif_result(f, file, rule, &check_line(f))
                })
                .collect();
            println!("{}", pretty(&sarif(CHECK_RULES, results))?);
        }
    }
    Ok(!found.is_empty())
}

fn pretty(v: &Value) -> Result<String, String> {
    serde_json::to_string_pretty(v).map_err(|e| format!("cannot render JSON: {e}"))
}

/// `a, b` of the region parts' descriptions.
fn parts(list: &[writ_policy::diff::RegionPart]) -> String {
    list.iter()
        .map(|p| p.description.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

/// What a finding covers, in one line: `s3:Get* on arn:aws:s3:::b/* for AWS ...`.
fn region(f: &Finding) -> String {
    let mut s = format!("{} on {}", parts(&f.actions), parts(&f.resources));
    if !f.principals.is_empty() {
        s.push_str(&format!(" to {}", parts(&f.principals)));
    }
    s
}

/// The principal as `--principal` of `writ policy simulate` takes it.
fn principal_arg(p: &Principal) -> String {
    match p {
        Principal::Aws(id) => id.clone(),
        Principal::Service(s) if s.ends_with(".amazonaws.com") => s.clone(),
        Principal::Service(s) => format!("service:{s}"),
        Principal::Federated(s) => format!("federated:{s}"),
        Principal::CanonicalUser(s) => format!("canonical:{s}"),
        Principal::Spiffe(s) if s.starts_with("spiffe://") => s.clone(),
        Principal::Spiffe(s) => format!("spiffe:{s}"),
        Principal::Anonymous => "anonymous".into(),
    }
}

fn witness_text(w: &Witness, check: bool) -> String {
    let mut s = String::new();
    if let Some(p) = &w.principal {
        s.push_str(&format!("principal {} ", principal_arg(p)));
    }
    s.push_str(&format!("{} on {}", w.action, w.resource));
    if !w.context.is_empty() {
        let ctx: Vec<String> = w
            .context
            .iter()
            .map(|(k, v)| match v {
                ContextValue::One(v) => format!("{k}={v}"),
                ContextValue::List(v) => format!("{k}={v:?}"),
            })
            .collect();
        s.push_str(&format!(" with {}", ctx.join(" ")));
    }
    if check {
        s.push_str(&format!(" ({})", w.new.as_str()));
    } else {
        s.push_str(&format!(
            " (OLD: {}, NEW: {})",
            w.old.as_str(),
            w.new.as_str()
        ));
    }
    s
}

/// The lines under a finding: conditions, the statements, the witness or why none.
fn details(f: &Finding, check: bool) -> String {
    let mut out = String::new();
    for (i, c) in f.conditions.iter().enumerate() {
        let lead = if i == 0 { "when" } else { "  or" };
        let mut line = String::new();
        if !c.holds.is_empty() {
            line.push_str(&c.holds.join(" and "));
        }
        if !c.fails.is_empty() {
            if !line.is_empty() {
                line.push_str(", and ");
            }
            line.push_str(&format!("not ({})", c.fails.join(") and not (")));
        }
        out.push_str(&format!("    {lead}: {line}\n"));
    }
    if !f.allowed_by.is_empty() {
        let by: Vec<&str> = f
            .allowed_by
            .iter()
            .map(|b| match check {
                true => b.strip_prefix("NEW ").unwrap_or(b),
                false => b,
            })
            .collect();
        out.push_str(&format!("    by:   {}\n", by.join(", ")));
    }
    match (&f.witness, &f.unverified) {
        (Some(w), _) => out.push_str(&format!("    witness: {}\n", witness_text(w, check))),
        (None, Some(why)) => out.push_str(&format!("    no witness: {why}\n")),
        (None, None) => {}
    }
    out
}

fn finding_line(f: &Finding) -> String {
    let possible = f.witness.is_none();
    match (f.change, possible) {
        (Change::Added, false) => format!("+ allows {}", region(f)),
        (Change::Added, true) => format!("+ may allow {}", region(f)),
        (Change::Removed, false) => format!("- no longer allows {}", region(f)),
        (Change::Removed, true) => format!("- may no longer allow {}", region(f)),
    }
}

fn diff_text(old: &str, new: &str, d: &PolicyDiff) -> String {
    let mut out = String::new();
    for f in d.added.iter().chain(&d.removed) {
        out.push_str(&finding_line(f));
        out.push('\n');
        out.push_str(&details(f, false));
    }
    let unverified = d
        .added
        .iter()
        .chain(&d.removed)
        .filter(|f| f.witness.is_none())
        .count();
    let verdict = if d.grants_more() {
        format!("{new} grants more than {old}")
    } else {
        format!("{new} grants nothing that {old} does not")
    };
    out.push_str(&format!(
        "{verdict}: {} added, {} removed{}\n",
        d.added.len(),
        d.removed.len(),
        if unverified > 0 {
            format!(" ({unverified} depend on conditions and have no witness)")
        } else {
            String::new()
        }
    ));
    out
}

fn check_line(f: &Finding) -> String {
    if f.witness.is_some() {
        format!("granted: {}", region(f))
    } else {
        format!("possibly granted: {}", region(f))
    }
}

fn check_text(f: &Finding) -> String {
    format!("{}\n{}", check_line(f), details(f, true))
}

/// A SARIF rule: id, short description, level.
struct Rule {
    id: &'static str,
    text: &'static str,
    level: &'static str,
}

const DIFF_RULES: &[Rule] = &[
    Rule {
        id: "writ-policy-diff/added-access",
        text: "NEW allows requests that OLD refuses (verified by a witness request)",
        level: "error",
    },
    Rule {
        id: "writ-policy-diff/possible-added-access",
        text: "NEW may allow requests that OLD refuses, depending on conditions",
        level: "warning",
    },
    Rule {
        id: "writ-policy-diff/removed-access",
        text: "NEW refuses requests that OLD allows",
        level: "note",
    },
    Rule {
        id: "writ-policy-diff/possible-removed-access",
        text: "NEW may refuse requests that OLD allows, depending on conditions",
        level: "note",
    },
];

const CHECK_RULES: &[Rule] = &[
    Rule {
        id: "writ-policy-check/granted",
        text: "The policies allow a request that must never be allowed (verified by a witness request)",
        level: "error",
    },
    Rule {
        id: "writ-policy-check/possibly-granted",
        text: "The policies may allow a request that must never be allowed, depending on conditions",
        level: "warning",
    },
];

fn diff_rule(f: &Finding) -> &'static str {
    match (f.change, f.witness.is_some()) {
        (Change::Added, true) => "writ-policy-diff/added-access",
        (Change::Added, false) => "writ-policy-diff/possible-added-access",
        (Change::Removed, true) => "writ-policy-diff/removed-access",
        (Change::Removed, false) => "writ-policy-diff/possible-removed-access",
    }
}

fn sarif_result(f: &Finding, file: &str, rule: &str, message: &str) -> Value {
    let check = rule.starts_with("writ-policy-check/");
    let rules = if rule.starts_with("writ-policy-check/") {
        CHECK_RULES
    } else {
        DIFF_RULES
    };
    let index = rules.iter().position(|r| r.id == rule).unwrap_or(0);
    let level = rules.get(index).map_or("error", |r| r.level);
    let mut text = message.to_string();
    if let Some(w) = &f.witness {
        text.push_str(&format!("; witness: {}", witness_text(w, check)));
    } else if let Some(why) = &f.unverified {
        text.push_str(&format!("; {why}"));
    }
    json!({
        "ruleId": rule,
        "ruleIndex": index,
        "level": level,
        "message": { "text": text },
        "locations": [{
            "physicalLocation": {
                "artifactLocation": { "uri": file.replace('\\', "/") },
                "region": { "startLine": 1, "startColumn": 1 },
            }
        }],
        "properties": { "finding": f },
    })
}

fn sarif(rules: &[Rule], results: Vec<Value>) -> Value {
    let rules: Vec<Value> = rules
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.id.rsplit('/').next().unwrap_or(r.id),
                "shortDescription": { "text": r.text },
                "fullDescription": { "text": r.text },
                "helpUri": "docs/policy-diff.md",
                "defaultConfiguration": { "level": r.level },
                "properties": { "tags": ["security"] },
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "writ",
                    "version": env!("CARGO_PKG_VERSION"),
                    "informationUri": "https://example.invalid/writ/docs/policy-diff.md",
                    "rules": rules,
                }
            },
            "results": results,
        }]
    })
}
