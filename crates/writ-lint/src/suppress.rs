//! Inline suppressions: `# writ:ignore RULE-ID reason` (or `// writ:ignore ...` in HCL) on
//! the line of a finding or the line above it. Several ids may be joined with commas.
//! A suppression needs a reason; one without, or naming no known rule, is reported
//! itself and silences nothing.

use crate::rules::{self, rule};
use crate::{Finding, Severity};

/// One `writ:ignore` comment.
#[derive(Debug, PartialEq, Eq)]
struct Suppression {
    line: u32,
    column: u32,
    rules: Vec<String>,
    reason: String,
}

/// Finds the suppressions in a text.
fn scan(text: &str) -> Vec<Suppression> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some(at) = line.find("writ:ignore") else {
            continue;
        };
        let before = line[..at].trim_end();
        if !(before.ends_with('#') || before.ends_with("//")) {
            continue;
        }
        let rest = line[at + "writ:ignore".len()..].trim();
        let (ids, reason) = match rest.split_once(char::is_whitespace) {
            Some((ids, reason)) => (ids, reason.trim()),
            None => (rest, ""),
        };
        out.push(Suppression {
            line: u32::try_from(i + 1).unwrap_or(u32::MAX),
            column: u32::try_from(line[..at].chars().count() + 1).unwrap_or(u32::MAX),
            rules: ids
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            reason: reason.to_string(),
        });
    }
    out
}

/// Applies a file's suppressions: the findings kept, how many were silenced, and the
/// findings about malformed suppressions.
pub(crate) fn apply(
    file: &str,
    text: &str,
    findings: Vec<Finding>,
) -> (Vec<Finding>, usize, Vec<Finding>) {
    let sups = scan(text);
    let mut extra = Vec::new();
    let mut valid = Vec::new();
    for s in sups {
        let unknown: Vec<&String> = s.rules.iter().filter(|r| rule(r).is_none()).collect();
        let problem = if s.rules.is_empty() {
            Some("writ:ignore names no rule id".to_string())
        } else if !unknown.is_empty() {
            Some(format!(
                "writ:ignore names unknown rule id {}",
                unknown
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        } else if s.reason.is_empty() {
            Some(format!(
                "writ:ignore {} has no reason; say why the finding is accepted",
                s.rules.join(",")
            ))
        } else {
            None
        };
        match problem {
            Some(message) => extra.push(Finding {
                rule: rules::SUPPRESS_REASON,
                severity: rule(rules::SUPPRESS_REASON).map_or(Severity::Medium, |r| r.severity),
                file: file.to_string(),
                line: s.line,
                column: s.column,
                message,
                subject: format!("suppression.{}.{}", s.rules.join(","), s.line),
            }),
            None => valid.push(s),
        }
    }
    let mut suppressed = 0;
    let kept = findings
        .into_iter()
        .filter(|f| {
            let hit = !f.is_parse_error()
                && valid.iter().any(|s| {
                    (s.line == f.line || s.line + 1 == f.line)
                        && s.rules.iter().any(|r| r == f.rule)
                });
            if hit {
                suppressed += 1;
            }
            !hit
        })
        .collect();
    (kept, suppressed, extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_hash_and_slash_comments_only() {
        let s = scan(
            "a = 1 # writ:ignore WRIT-URL-001 public webhook\n// writ:ignore WRIT-A,WRIT-B\nx = \"writ:ignore\"\n",
        );
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].rules, vec!["WRIT-URL-001"]);
        assert_eq!(s[0].reason, "public webhook");
        assert_eq!(s[1].rules, vec!["WRIT-A", "WRIT-B"]);
        assert_eq!(s[1].reason, "");
    }
}
