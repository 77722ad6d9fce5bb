//! OSV advisories (<https://ossf.github.io/osv-schema/>): reading one record, and deciding
//! whether a package version is affected. No I/O: the records come in as text.

use std::cmp::Ordering;
use std::collections::HashMap;

use serde_json::Value;

use super::version::{Version, normalize_pypi_name};
use super::{Ecosystem, cvss};
use crate::Severity;

/// One OSV record, reduced to what matching and reporting need.
#[derive(Debug, Clone, PartialEq)]
pub struct Advisory {
    /// The id (`GHSA-...`, `PYSEC-...`, `RUSTSEC-...`, `GO-...`).
    pub id: String,
    /// Other ids of the same vulnerability (`CVE-...`).
    pub aliases: Vec<String>,
    /// The one-line summary, when the record has one.
    pub summary: Option<String>,
    /// The severity: `database_specific.severity` when present, else the CVSS v3 base
    /// score of `severity[]`, else medium.
    pub severity: Severity,
    /// Where [`Advisory::severity`] came from, for messages (`GHSA severity HIGH`,
    /// `CVSS 7.5`, `no severity given`).
    pub severity_source: String,
    /// The affected packages.
    pub affected: Vec<Affected>,
}

/// One `affected[]` entry of an ecosystem writ reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Affected {
    /// The ecosystem.
    pub ecosystem: Ecosystem,
    /// The package name, normalised for the ecosystem (PEP 503 for PyPI).
    pub name: String,
    /// `ranges[]` of type `SEMVER` or `ECOSYSTEM` (`GIT` ranges are not read).
    pub ranges: Vec<Range>,
    /// `versions[]`: versions affected, listed one by one.
    pub versions: Vec<String>,
}

/// How the versions of a [`Range`] are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeKind {
    /// SemVer 2.0 precedence.
    Semver,
    /// The ecosystem's own ordering.
    Ecosystem,
}

/// One range: its kind and its events.
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    /// How versions compare.
    pub kind: RangeKind,
    /// The events, as written.
    pub events: Vec<Event>,
}

/// A range event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Versions from this one on are affected (`"0"`: from the first).
    Introduced(String),
    /// Versions from this one on are not affected.
    Fixed(String),
    /// Versions after this one are not affected.
    LastAffected(String),
    /// Versions from this one on are outside the range.
    Limit(String),
}

/// The outcome of a match: why the version is affected and what fixes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The `fixed` versions of the ranges the version falls in, in order, without
    /// duplicates; empty when no fix is published.
    pub fixed: Vec<String>,
}

impl Advisory {
    /// Reads an OSV record. Errors say which field is wrong. A withdrawn record reads as
    /// `Ok(None)`.
    pub fn parse(text: &str) -> Result<Option<Advisory>, String> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| format!("not JSON (line {}, column {}): {e}", e.line(), e.column()))?;
        Advisory::from_value(&v)
    }

    /// Reads an OSV record already parsed as JSON.
    pub fn from_value(v: &Value) -> Result<Option<Advisory>, String> {
        let id = v
            .get("id")
            .and_then(Value::as_str)
            .ok_or("the record has no string \"id\"")?
            .to_string();
        if v.get("withdrawn").and_then(Value::as_str).is_some() {
            return Ok(None);
        }
        let strings = |key: &str| -> Vec<String> {
            v.get(key)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut affected = Vec::new();
        for (i, a) in v
            .get("affected")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let Some(pkg) = a.get("package") else {
                continue;
            };
            let Some(ecosystem) = pkg
                .get("ecosystem")
                .and_then(Value::as_str)
                .and_then(Ecosystem::from_osv)
            else {
                continue;
            };
            let name = pkg
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{id}: affected[{i}].package has no string \"name\""))?;
            let mut ranges = Vec::new();
            for (j, r) in a
                .get("ranges")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let kind = match r.get("type").and_then(Value::as_str) {
                    Some("SEMVER") => RangeKind::Semver,
                    Some("ECOSYSTEM") => RangeKind::Ecosystem,
                    _ => continue,
                };
                let mut events = Vec::new();
                for e in r
                    .get("events")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                {
                    let field = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_string);
                    let ev = if let Some(s) = field("introduced") {
                        Event::Introduced(s)
                    } else if let Some(s) = field("fixed") {
                        Event::Fixed(s)
                    } else if let Some(s) = field("last_affected") {
                        Event::LastAffected(s)
                    } else if let Some(s) = field("limit") {
                        Event::Limit(s)
                    } else {
                        return Err(format!(
                            "{id}: affected[{i}].ranges[{j}] has an event that is none of introduced, fixed, last_affected, limit"
                        ));
                    };
                    events.push(ev);
                }
                ranges.push(Range { kind, events });
            }
            let versions = a
                .get("versions")
                .and_then(Value::as_array)
                .map(|l| {
                    l.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            affected.push(Affected {
                ecosystem,
                name: ecosystem.normalize_name(name),
                ranges,
                versions,
            });
        }
        let (severity, severity_source) = severity_of(v);
        Ok(Some(Advisory {
            id,
            aliases: strings("aliases"),
            summary: v
                .get("summary")
                .and_then(Value::as_str)
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
            severity,
            severity_source,
            affected,
        }))
    }

    /// Whether `version` of package `name` in `ecosystem` is affected, and the fixes.
    pub fn affects(&self, ecosystem: Ecosystem, name: &str, version: &str) -> Option<Hit> {
        let name = ecosystem.normalize_name(name);
        let mut hit = false;
        let mut fixed = Vec::new();
        for a in self
            .affected
            .iter()
            .filter(|a| a.ecosystem == ecosystem && a.name == name)
        {
            if listed(ecosystem, &a.versions, version) {
                hit = true;
            }
            for r in &a.ranges {
                if in_range(ecosystem, r, version) {
                    hit = true;
                    for e in &r.events {
                        if let Event::Fixed(f) = e
                            && !fixed.contains(f)
                        {
                            fixed.push(f.clone());
                        }
                    }
                }
            }
        }
        hit.then_some(Hit { fixed })
    }
}

/// True when `version` is in the `versions` list (PEP 440 equality for PyPI, so `1.0`
/// matches `1.0.0`).
fn listed(eco: Ecosystem, versions: &[String], version: &str) -> bool {
    if versions.iter().any(|v| v == version) {
        return true;
    }
    let Some(parsed) = Version::parse(eco, version) else {
        return false;
    };
    versions
        .iter()
        .any(|v| Version::parse(eco, v).and_then(|v| v.compare(&parsed)) == Some(Ordering::Equal))
}

/// OSV's range evaluation: events sorted by version (`introduced: "0"` first); walking
/// them up to `version`, an `introduced` at or below it makes it affected, a `fixed` at or
/// below it unaffected, a `last_affected` below it unaffected. Limits: a version at or
/// above every `limit` is outside the range. A version that does not parse, or events
/// that do not, match nothing (the event is ignored).
pub fn in_range(eco: Ecosystem, range: &Range, version: &str) -> bool {
    let parse = |s: &str| match range.kind {
        RangeKind::Semver => Version::parse_semver(s),
        RangeKind::Ecosystem => Version::parse(eco, s),
    };
    let Some(v) = parse(version) else {
        return false;
    };
    // (version or None for "0", order of kind, event)
    let mut events: Vec<(Option<Version>, u8, &Event)> = Vec::new();
    let mut limits = Vec::new();
    for e in &range.events {
        match e {
            Event::Introduced(s) if s == "0" => events.push((None, 0, e)),
            Event::Introduced(s) => {
                if let Some(p) = parse(s) {
                    events.push((Some(p), 0, e));
                }
            }
            Event::Fixed(s) | Event::LastAffected(s) => {
                if let Some(p) = parse(s) {
                    events.push((Some(p), 1, e));
                }
            }
            Event::Limit(s) => {
                if let Some(p) = parse(s) {
                    limits.push(p);
                }
            }
        }
    }
    if !limits.is_empty()
        && limits
            .iter()
            .all(|l| v.compare(l).is_some_and(|o| o != Ordering::Less))
    {
        return false;
    }
    events.sort_by(|a, b| {
        let by_version = match (&a.0, &b.0) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => x.compare(y).unwrap_or(Ordering::Equal),
        };
        by_version.then(a.1.cmp(&b.1))
    });
    let mut affected = false;
    for (at, _, e) in &events {
        let cmp = at.as_ref().map_or(Ordering::Greater, |at| {
            v.compare(at).unwrap_or(Ordering::Less)
        });
        match e {
            Event::Introduced(_) if cmp != Ordering::Less => affected = true,
            Event::Fixed(_) if cmp != Ordering::Less => affected = false,
            Event::LastAffected(_) if cmp == Ordering::Greater => affected = false,
            _ => {}
        }
    }
    affected
}

/// The severity of a record: `database_specific.severity` (GitHub's LOW, MODERATE, HIGH,
/// CRITICAL), else the highest CVSS v3 base score in `severity[]`, else medium.
fn severity_of(v: &Value) -> (Severity, String) {
    if let Some(s) = v
        .get("database_specific")
        .and_then(|d| d.get("severity"))
        .and_then(Value::as_str)
    {
        let sev = match s.to_ascii_uppercase().as_str() {
            "LOW" => Some(Severity::Low),
            "MODERATE" | "MEDIUM" => Some(Severity::Medium),
            "HIGH" => Some(Severity::High),
            "CRITICAL" => Some(Severity::Critical),
            _ => None,
        };
        if let Some(sev) = sev {
            return (sev, format!("severity {s}"));
        }
    }
    let best = v
        .get("severity")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|s| {
            s.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t == "CVSS_V3")
        })
        .filter_map(|s| s.get("score").and_then(Value::as_str))
        .filter_map(cvss::base_score_v3)
        .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.max(s))));
    match best {
        Some(score) => (cvss::severity(score), format!("CVSS {score:.1}")),
        None => (Severity::Medium, "no severity given".to_string()),
    }
}

/// Advisories indexed by (ecosystem, normalised package name).
#[derive(Debug, Default)]
pub struct Database {
    advisories: Vec<Advisory>,
    index: HashMap<(Ecosystem, String), Vec<usize>>,
}

impl Database {
    /// An empty database.
    pub fn new() -> Database {
        Database::default()
    }

    /// Adds a record.
    pub fn add(&mut self, advisory: Advisory) {
        let i = self.advisories.len();
        let mut keys: Vec<(Ecosystem, String)> = advisory
            .affected
            .iter()
            .map(|a| (a.ecosystem, a.name.clone()))
            .collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            self.index.entry(k).or_default().push(i);
        }
        self.advisories.push(advisory);
    }

    /// How many records it holds.
    pub fn len(&self) -> usize {
        self.advisories.len()
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.advisories.is_empty()
    }

    /// The advisories affecting `version` of `name`, with their hits, in id order.
    pub fn matches(&self, eco: Ecosystem, name: &str, version: &str) -> Vec<(&Advisory, Hit)> {
        let key = (eco, eco.normalize_name(name));
        let mut out: Vec<(&Advisory, Hit)> = self
            .index
            .get(&key)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|&i| {
                let a = &self.advisories[i];
                a.affects(eco, name, version).map(|h| (a, h))
            })
            .collect();
        out.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        out
    }
}

impl Ecosystem {
    /// The ecosystem of an OSV `package.ecosystem` (`PyPI`, `npm`, `crates.io`, `Go`).
    pub fn from_osv(s: &str) -> Option<Ecosystem> {
        Ecosystem::ALL.into_iter().find(|e| e.osv_name() == s)
    }

    /// A package name as compared: PEP 503 for PyPI, as written elsewhere.
    pub fn normalize_name(self, name: &str) -> String {
        match self {
            Ecosystem::PyPI => normalize_pypi_name(name),
            _ => name.trim().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(kind: RangeKind, events: &[(&str, &str)]) -> Range {
        Range {
            kind,
            events: events
                .iter()
                .map(|(k, v)| match *k {
                    "introduced" => Event::Introduced(v.to_string()),
                    "fixed" => Event::Fixed(v.to_string()),
                    "last_affected" => Event::LastAffected(v.to_string()),
                    _ => Event::Limit(v.to_string()),
                })
                .collect(),
        }
    }

    #[test]
    fn ranges_follow_the_osv_evaluation() {
        let r = range(
            RangeKind::Semver,
            &[
                ("introduced", "0"),
                ("fixed", "1.2.0"),
                ("introduced", "2.0.0"),
                ("fixed", "2.0.3"),
            ],
        );
        for (v, want) in [
            ("0.1.0", true),
            ("1.1.9", true),
            ("1.2.0", false),
            ("1.9.0", false),
            ("2.0.0", true),
            ("2.0.2", true),
            ("2.0.3", false),
            ("3.0.0", false),
            ("1.2.0-rc.1", true),
            ("garbage", false),
        ] {
            assert_eq!(in_range(Ecosystem::Npm, &r, v), want, "{v}");
        }
        let last = range(
            RangeKind::Ecosystem,
            &[("introduced", "1.0"), ("last_affected", "1.4")],
        );
        assert!(in_range(Ecosystem::PyPI, &last, "1.4.0"));
        assert!(in_range(Ecosystem::PyPI, &last, "1.4rc1"));
        assert!(!in_range(Ecosystem::PyPI, &last, "1.4.post1"));
        assert!(!in_range(Ecosystem::PyPI, &last, "0.9"));
        let limit = range(
            RangeKind::Semver,
            &[("introduced", "0"), ("limit", "1.5.0")],
        );
        assert!(in_range(Ecosystem::CratesIo, &limit, "1.4.9"));
        assert!(!in_range(Ecosystem::CratesIo, &limit, "1.5.0"));
        let go = range(
            RangeKind::Semver,
            &[("introduced", "0"), ("fixed", "0.3.7")],
        );
        assert!(in_range(Ecosystem::Go, &go, "v0.3.6"));
        assert!(!in_range(Ecosystem::Go, &go, "v0.3.8"));
        assert!(in_range(
            Ecosystem::Go,
            &go,
            "v0.0.0-20210711020723-a769d52b0f37"
        ));
    }

    const RECORD: &str = r#"{
      "id": "GHSA-x", "aliases": ["CVE-2023-1"], "summary": " s ",
      "database_specific": {"severity": "MODERATE"},
      "affected": [
        {"package": {"ecosystem": "PyPI", "name": "Django_Thing"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.31.0"}]},
                    {"type": "GIT", "repo": "r", "events": [{"introduced": "abc"}]}],
         "versions": ["1.0"]},
        {"package": {"ecosystem": "Debian:11", "name": "x"}}
      ]}"#;

    #[test]
    fn records_read_and_match_with_normalised_names() {
        let a = Advisory::parse(RECORD).unwrap().unwrap();
        assert_eq!(a.severity, Severity::Medium);
        assert_eq!(a.summary.as_deref(), Some("s"));
        assert_eq!(a.affected.len(), 1);
        assert_eq!(a.affected[0].ranges.len(), 1);
        let hit = a.affects(Ecosystem::PyPI, "django-thing", "2.30").unwrap();
        assert_eq!(hit.fixed, vec!["2.31.0".to_string()]);
        assert!(a.affects(Ecosystem::PyPI, "Django.Thing", "2.31").is_none());
        assert!(a.affects(Ecosystem::Npm, "django-thing", "1.0.0").is_none());
        let mut db = Database::new();
        db.add(a);
        assert_eq!(
            db.matches(Ecosystem::PyPI, "DJANGO-thing", "1.0.0").len(),
            1
        );
    }

    #[test]
    fn withdrawn_and_broken_records() {
        assert_eq!(
            Advisory::parse(r#"{"id": "X", "withdrawn": "2024-01-01T00:00:00Z"}"#),
            Ok(None)
        );
        assert!(Advisory::parse("{").unwrap_err().contains("line 1"));
        assert!(Advisory::parse("{}").unwrap_err().contains("id"));
        let cvss = r#"{"id": "Y", "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]}"#;
        let a = Advisory::parse(cvss).unwrap().unwrap();
        assert_eq!(
            (a.severity, a.severity_source.as_str()),
            (Severity::Critical, "CVSS 9.8")
        );
        let none = Advisory::parse(r#"{"id": "Z"}"#).unwrap().unwrap();
        assert_eq!(none.severity, Severity::Medium);
    }
}
