//! What a run found, and its renderings: text for people, JSON, SARIF 2.1.0 for code
//! scanning, JUnit XML for CI test reports. All pure functions over findings.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::baseline::{Baseline, normalize};
use crate::rules::{RULES, rule};
use crate::{FileReport, Finding, Severity};

/// The result of a run, after suppressions, the baseline and the severity threshold.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Every file scanned, in order.
    pub files: Vec<String>,
    /// The findings reported, by file then position.
    pub findings: Vec<Finding>,
    /// Findings silenced by inline `writ:ignore` comments.
    pub suppressed: usize,
    /// Findings accepted by the baseline.
    pub baselined: usize,
    /// Findings below the severity threshold, not reported.
    pub below_threshold: usize,
    /// Files read but not checked, with the reason: neither a template, a policy nor
    /// writ's gateway configuration (see [`FileReport::skipped`]).
    pub skipped: Vec<(String, String)>,
}

impl Outcome {
    /// Collects reports: drops what the baseline accepts and what is below `threshold`
    /// (parse errors are always kept: an unparsed file was not checked).
    pub fn collect(
        reports: &[FileReport],
        baseline: Option<&Baseline>,
        threshold: Severity,
    ) -> Outcome {
        let mut out = Outcome::default();
        for r in reports {
            out.files.push(r.file.clone());
            out.suppressed += r.suppressed;
            if let Some(why) = &r.skipped {
                out.skipped.push((r.file.clone(), why.clone()));
            }
            for f in &r.findings {
                if !f.is_parse_error() && baseline.is_some_and(|b| b.contains(f)) {
                    out.baselined += 1;
                } else if !f.is_parse_error() && f.severity < threshold {
                    out.below_threshold += 1;
                } else {
                    out.findings.push(f.clone());
                }
            }
        }
        out.findings.sort_by(|a, b| {
            (&a.file, a.line, a.column, a.rule).cmp(&(&b.file, b.line, b.column, b.rule))
        });
        out
    }

    /// True when something remains that should fail the run.
    pub fn failed(&self) -> bool {
        !self.findings.is_empty()
    }

    /// How many files could not be parsed.
    pub fn parse_errors(&self) -> usize {
        self.findings.iter().filter(|f| f.is_parse_error()).count()
    }

    fn counts(&self) -> BTreeMap<Severity, usize> {
        let mut m = BTreeMap::new();
        for f in &self.findings {
            *m.entry(f.severity).or_insert(0) += 1;
        }
        m
    }

    fn summary_line(&self) -> String {
        let counts = self.counts();
        let by: Vec<String> = Severity::ALL
            .iter()
            .rev()
            .filter_map(|s| counts.get(s).map(|n| format!("{n} {s}")))
            .collect();
        let mut s = format!(
            "{} finding{} in {} file{}",
            self.findings.len(),
            if self.findings.len() == 1 { "" } else { "s" },
            self.files.len(),
            if self.files.len() == 1 { "" } else { "s" },
        );
        if !by.is_empty() {
            let _ = write!(s, " ({})", by.join(", "));
        }
        let _ = write!(
            s,
            "; {} suppressed inline, {} in the baseline, {} below the threshold",
            self.suppressed, self.baselined, self.below_threshold
        );
        if !self.skipped.is_empty() {
            let n = self.skipped.len();
            let _ = write!(
                s,
                "; {n} file{} skipped (not a template or policy; --format json lists them)",
                if n == 1 { "" } else { "s" }
            );
        }
        s
    }
}

/// Text for people: findings grouped by file, each as `file:line:col severity RULE message`
/// with the fix hint below, then a summary line.
pub fn text(o: &Outcome) -> String {
    let mut s = String::new();
    let mut current: Option<&str> = None;
    for f in &o.findings {
        if current != Some(f.file.as_str()) {
            if current.is_some() {
                s.push('\n');
            }
            let _ = writeln!(s, "{}", f.file);
            current = Some(&f.file);
        }
        let _ = writeln!(
            s,
            "  {}:{}:{} {} {} {}",
            f.file, f.line, f.column, f.severity, f.rule, f.message
        );
        if let Some(r) = rule(f.rule) {
            let _ = writeln!(s, "      fix: {}", r.help);
        }
    }
    if !o.findings.is_empty() {
        s.push('\n');
    }
    let _ = writeln!(s, "{}", o.summary_line());
    s
}

fn finding_json(f: &Finding) -> Value {
    json!({
        "rule": f.rule,
        "severity": f.severity.as_str(),
        "file": f.file,
        "line": f.line,
        "column": f.column,
        "message": f.message,
        "help": rule(f.rule).map(|r| r.help),
        "fingerprint": f.fingerprint(),
    })
}

/// One JSON document: the findings and a summary.
pub fn json(o: &Outcome) -> String {
    let counts = o.counts();
    let doc = json!({
        "version": 1,
        "findings": [],
        "skipped": o.skipped.iter().map(|(file, reason)| json!({"file": file, "reason": reason})).collect::<Vec<_>>(),
        "summary": {
            "files": o.files.len(),
            "findings": o.findings.len(),
            "parse_errors": o.parse_errors(),
            "skipped": o.skipped.len(),
            "suppressed": o.suppressed,
            "baselined": o.baselined,
            "below_threshold": o.below_threshold,
            "by_severity": Severity::ALL.iter().map(|s| (s.as_str().to_string(), json!(counts.get(s).copied().unwrap_or(0)))).collect::<serde_json::Map<_, _>>(),
        }
    });
    let doc = serde_json::to_string_pretty(&doc).unwrap_or_default();
    let mut s = splice_array(&doc, "findings", o.findings.iter().map(finding_json));
    s.push('\n');
    s
}

/// `doc` (pretty-printed JSON) with the empty array under `key` filled with `items`, each
/// printed as `serde_json::to_string_pretty` would print it in place. The items never exist
/// as one tree: tens of thousands of findings as a `Value` took more memory than the lint.
fn splice_array(doc: &str, key: &str, items: impl Iterator<Item = Value>) -> String {
    let marker = format!("\"{key}\": []");
    let Some(at) = doc.find(&marker) else {
        return doc.to_string();
    };
    let line_start = doc[..at].rfind('\n').map_or(0, |i| i + 1);
    let indent = at - line_start;
    let pad = " ".repeat(indent + 2);
    let mut out = String::with_capacity(doc.len() + 512 * items.size_hint().0);
    out.push_str(&doc[..at]);
    out.push_str(&marker[..marker.len() - 1]);
    let mut any = false;
    for item in items {
        out.push_str(if any { ",\n" } else { "\n" });
        any = true;
        let text = serde_json::to_string_pretty(&item).unwrap_or_default();
        for (i, line) in text.lines().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&pad);
            out.push_str(line);
        }
    }
    if any {
        out.push('\n');
        out.push_str(&doc[line_start..at]);
    }
    out.push(']');
    out.push_str(&doc[at + marker.len()..]);
    out
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "note",
    }
}

/// GitHub code scanning ranks security results by this score.
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "2.0",
    }
}

/// A relative URI for a path: `/` separators, spaces and `%` escaped.
fn uri(file: &str) -> String {
    normalize(file)
        .chars()
        .map(|c| match c {
            ' ' => "%20".to_string(),
            '%' => "%25".to_string(),
            '#' => "%23".to_string(),
            '?' => "%3F".to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// SARIF 2.1.0: every rule in `runs[0].tool.driver.rules`, every finding a result with a
/// physical location and a line-independent fingerprint.
pub fn sarif(o: &Outcome) -> String {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.id.replace('-', ""),
                "shortDescription": { "text": r.title },
                "fullDescription": { "text": r.title },
                "help": { "text": r.help, "markdown": format!("{}\n\nSee docs/rules/{}.md", r.help, r.id) },
                "helpUri": format!("docs/rules/{}.md", r.id),
                "defaultConfiguration": { "level": sarif_level(r.severity) },
                "properties": {
                    "tags": ["security"],
                    "security-severity": security_severity(r.severity),
                    "severity": r.severity.as_str(),
                },
            })
        })
        .collect();
    let results = o.findings.iter().map(|f| {
        let index = RULES.iter().position(|r| r.id == f.rule).unwrap_or(0);
        json!({
            "ruleId": f.rule,
            "ruleIndex": index,
            "level": sarif_level(f.severity),
            "message": { "text": f.message },
            "locations": [{
                "physicalLocation": {
                    "artifactLocation": { "uri": uri(&f.file), "uriBaseId": "%SRCROOT%" },
                    "region": { "startLine": f.line.max(1), "startColumn": f.column.max(1) },
                }
            }],
            "partialFingerprints": { "writLint/v1": f.fingerprint() },
            "properties": { "severity": f.severity.as_str() },
        })
    });
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "writ lint",
                    "version": env!("CARGO_PKG_VERSION"),
                    "informationUri": "https://example.invalid/writ/docs/lint.md",
                    "rules": rules,
                }
            },
            "results": [],
        }]
    });
    let doc = serde_json::to_string_pretty(&doc).unwrap_or_default();
    let mut s = splice_array(&doc, "results", results);
    s.push('\n');
    s
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 forbids most control characters, even escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: one test suite per file, one failing test case per finding, and one
/// passing case for a file without findings.
pub fn junit(o: &Outcome) -> String {
    let mut by_file: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
    for f in &o.files {
        by_file.entry(f.as_str()).or_default();
    }
    for f in &o.findings {
        by_file.entry(f.file.as_str()).or_default().push(f);
    }
    let tests: usize = by_file.values().map(|v| v.len().max(1)).sum();
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuites name=\"writ lint\" tests=\"{tests}\" failures=\"{}\">",
        o.findings.len()
    );
    for (file, findings) in by_file {
        let file_x = xml_escape(file);
        let _ = writeln!(
            s,
            "  <testsuite name=\"{file_x}\" tests=\"{}\" failures=\"{}\">",
            findings.len().max(1),
            findings.len()
        );
        if findings.is_empty() {
            let _ = writeln!(
                s,
                "    <testcase classname=\"{file_x}\" name=\"writ lint\"/>"
            );
        }
        for f in findings {
            let help = rule(f.rule).map_or("", |r| r.help);
            let _ = writeln!(
                s,
                "    <testcase classname=\"{file_x}\" name=\"{} {}:{}:{}\">",
                f.rule, file_x, f.line, f.column
            );
            let _ = writeln!(
                s,
                "      <failure type=\"{}\" message=\"{}\">{}:{}:{} {} {}\nfix: {}</failure>",
                f.severity,
                xml_escape(&f.message),
                file_x,
                f.line,
                f.column,
                f.rule,
                xml_escape(&f.message),
                xml_escape(help)
            );
            s.push_str("    </testcase>\n");
        }
        s.push_str("  </testsuite>\n");
    }
    s.push_str("</testsuites>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, lint_source};

    fn outcome() -> Outcome {
        let r = lint_source(
            "a <b>.json",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
            &Config::default(),
        );
        Outcome::collect(&[r], None, Severity::Low)
    }

    #[test]
    fn spliced_output_is_what_serde_prints() {
        let two = Outcome::collect(
            &[
                lint_source(
                    "a.json",
                    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Allow","NotAction":"s3:*","Resource":"*"}]}"#,
                    &Config::default(),
                ),
                lint_source("b.json", "{}", &Config::default()),
            ],
            None,
            Severity::Low,
        );
        let none = Outcome::collect(&[], None, Severity::Low);
        for o in [two, none, outcome()] {
            for out in [json(&o), sarif(&o)] {
                let v: Value = serde_json::from_str(&out).unwrap();
                assert_eq!(serde_json::to_string_pretty(&v).unwrap() + "\n", out);
            }
        }
        assert_eq!(
            serde_json::from_str::<Value>(&json(&outcome())).unwrap()["findings"][0]["rule"],
            "WRIT-IAM-001"
        );
    }

    #[test]
    fn sarif_has_rules_and_locations() {
        let v: Value = serde_json::from_str(&sarif(&outcome())).unwrap();
        assert_eq!(v["version"], "2.1.0");
        assert_eq!(
            v["runs"][0]["tool"]["driver"]["rules"]
                .as_array()
                .unwrap()
                .len(),
            RULES.len()
        );
        let r = &v["runs"][0]["results"][0];
        assert_eq!(r["ruleId"], "WRIT-IAM-001");
        assert_eq!(
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "a%20<b>.json"
        );
        assert_eq!(
            r["locations"][0]["physicalLocation"]["region"]["startLine"],
            1
        );
    }

    #[test]
    fn junit_escapes_names() {
        let x = junit(&outcome());
        assert!(x.contains("name=\"a &lt;b&gt;.json\""));
        assert!(x.contains("failures=\"1\""));
    }

    #[test]
    fn threshold_and_baseline_filter() {
        let r = lint_source(
            "p.json",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
            &Config::default(),
        );
        let critical = Outcome::collect(std::slice::from_ref(&r), None, Severity::Critical);
        assert_eq!(critical.findings.len(), 1);
        let b = Baseline::parse(&crate::baseline::write(&r.findings)).unwrap();
        let base = Outcome::collect(std::slice::from_ref(&r), Some(&b), Severity::Low);
        assert!(!base.failed());
        assert_eq!(base.baselined, 1);
        assert!(text(&base).contains("1 in the baseline"));
    }
}
