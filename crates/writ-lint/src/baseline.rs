//! Baselines: a file of accepted findings, so a team can adopt writ lint on an existing
//! tree and fail only on new problems.
//!
//! A finding is keyed by its rule, its file and a fingerprint of its subject (the resource
//! address and detail, see [`crate::Finding::subject`]), never by its line, so edits
//! elsewhere in the file do not bring it back.

use std::collections::HashSet;
use std::fmt;

use serde_json::{Value, json};

use crate::Finding;

/// The baseline format version written and read.
pub const VERSION: u64 = 1;

/// The fingerprint of a finding: 16 hex digits of FNV-1a over rule, file and subject.
pub fn fingerprint(rule: &str, file: &str, subject: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [rule, &normalize(file), subject] {
        for b in part.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// A path as baselines compare it: `/` separators, no leading `./`.
pub fn normalize(file: &str) -> String {
    let f = file.replace('\\', "/");
    let mut s = f.as_str();
    while let Some(rest) = s.strip_prefix("./") {
        s = rest;
    }
    s.to_string()
}

/// A loaded baseline.
#[derive(Debug, Default, Clone)]
pub struct Baseline {
    keys: HashSet<(String, String, String)>,
}

/// Why a baseline file could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaselineError(pub String);

impl fmt::Display for BaselineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BaselineError {}

impl Baseline {
    /// Reads a baseline written by [`write`].
    pub fn parse(text: &str) -> Result<Baseline, BaselineError> {
        let v: Value = serde_json::from_str(text).map_err(|e| {
            BaselineError(format!(
                "not JSON at line {} column {}: {e}",
                e.line(),
                e.column()
            ))
        })?;
        match v.get("version").and_then(Value::as_u64) {
            Some(VERSION) => {}
            other => {
                return Err(BaselineError(format!(
                    "unsupported baseline version {other:?} (expected {VERSION})"
                )));
            }
        }
        let list = v
            .get("findings")
            .and_then(Value::as_array)
            .ok_or_else(|| BaselineError("missing \"findings\" array".into()))?;
        let mut keys = HashSet::new();
        for (i, item) in list.iter().enumerate() {
            let get = |k: &str| {
                item.get(k)
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| {
                        BaselineError(format!("findings[{i}].{k}: missing or not a string"))
                    })
            };
            keys.insert((get("rule")?, normalize(&get("file")?), get("fingerprint")?));
        }
        Ok(Baseline { keys })
    }

    /// True when the baseline accepts this finding.
    pub fn contains(&self, f: &Finding) -> bool {
        self.keys
            .contains(&(f.rule.to_string(), normalize(&f.file), f.fingerprint()))
    }

    /// How many findings the baseline holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when the baseline holds no findings.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// A baseline accepting `findings`, as pretty JSON. Parse errors are not baselined: a
/// file that does not parse was not checked.
pub fn write<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> String {
    let mut items: Vec<Value> = findings
        .into_iter()
        .filter(|f| !f.is_parse_error())
        .map(|f| {
            json!({
                "rule": f.rule,
                "file": normalize(&f.file),
                "fingerprint": f.fingerprint(),
                "message": f.message,
            })
        })
        .collect();
    items.sort_by_key(|v| v.to_string());
    items.dedup();
    let doc = json!({ "version": VERSION, "tool": "writ lint", "findings": items });
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Severity;

    fn finding(line: u32) -> Finding {
        Finding {
            rule: "WRIT-URL-001",
            severity: Severity::High,
            file: "./infra/main.tf".into(),
            line,
            column: 1,
            message: "m".into(),
            subject: "aws_lambda_function_url.api.auth".into(),
        }
    }

    #[test]
    fn round_trip_ignores_line_moves() {
        let b = Baseline::parse(&write([&finding(3)])).unwrap();
        assert_eq!(b.len(), 1);
        assert!(b.contains(&finding(40)));
        let mut other = finding(3);
        other.subject = "aws_lambda_function_url.other.auth".into();
        assert!(!b.contains(&other));
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        assert!(Baseline::parse("{").unwrap_err().0.contains("line 1"));
        assert!(
            Baseline::parse("{\"version\": 9, \"findings\": []}")
                .unwrap_err()
                .0
                .contains("version")
        );
        assert!(
            Baseline::parse("{\"version\": 1, \"findings\": [{}]}")
                .unwrap_err()
                .0
                .contains("findings[0].rule")
        );
    }
}
