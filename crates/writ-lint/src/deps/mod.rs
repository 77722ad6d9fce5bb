//! Dependency scanning: the lock files of function code, and the packages in them with
//! known vulnerabilities according to an OSV database.
//!
//! Pure: [`lockfile::parse`] reads a lock file's text, [`osv::Advisory::parse`] an OSV
//! record's, and [`lint_lockfile`] turns both into findings. Finding lock files and
//! loading the database from disk is [`crate::depscan`]'s job.

pub mod cvss;
pub mod lockfile;
pub mod osv;
pub mod version;

use std::fmt;

use crate::rules::{self, Out};
use crate::{FileFormat, FileReport, SyntaxError, suppress};
use lockfile::LockKind;
use osv::Database;

/// The package ecosystems writ reads lock files of, named as OSV names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ecosystem {
    /// Python packages from PyPI.
    PyPI,
    /// JavaScript packages from the npm registry.
    Npm,
    /// Rust crates from crates.io.
    CratesIo,
    /// Go modules.
    Go,
}

impl Ecosystem {
    /// Every ecosystem.
    pub const ALL: [Ecosystem; 4] = [
        Ecosystem::PyPI,
        Ecosystem::Npm,
        Ecosystem::CratesIo,
        Ecosystem::Go,
    ];

    /// OSV's name, also the directory of its data (`PyPI`, `npm`, `crates.io`, `Go`).
    pub fn osv_name(self) -> &'static str {
        match self {
            Ecosystem::PyPI => "PyPI",
            Ecosystem::Npm => "npm",
            Ecosystem::CratesIo => "crates.io",
            Ecosystem::Go => "Go",
        }
    }

    /// Reads a name as given on a command line: OSV's, in any case.
    pub fn parse(s: &str) -> Option<Ecosystem> {
        Ecosystem::ALL
            .into_iter()
            .find(|e| e.osv_name().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.osv_name())
    }
}

/// What [`lint_lockfile`] checks a lock file against.
#[derive(Debug, Clone, Copy)]
pub struct DepCheck<'a> {
    /// The advisories of the lock file's ecosystem; `None` when there is no database for
    /// it (each lock file then gets a WRIT-DEP-003 finding).
    pub db: Option<&'a Database>,
    /// Where the database is (or was looked for), for messages.
    pub db_dir: &'a str,
    /// What the lock file ships in: `function Orders (template.yaml)`, or
    /// `directory functions/orders` when no template names its code.
    pub ships_in: &'a str,
}

/// Checks one lock file: parse errors (WRIT-PARSE-001), unpinned requirements
/// (WRIT-DEP-002), packages with known vulnerabilities (WRIT-DEP-001, one finding per
/// package and advisory, with the advisory's severity), or the missing database
/// (WRIT-DEP-003). `# writ:ignore` comments work in the formats that have comments.
pub fn lint_lockfile(file: &str, text: &str, kind: LockKind, check: DepCheck<'_>) -> FileReport {
    let mut out = Out::new(file);
    let eco = kind.ecosystem();
    let mut report = FileReport {
        file: file.to_string(),
        format: Some(FileFormat::LockFile),
        ..FileReport::default()
    };
    match lockfile::parse(kind, text) {
        Err(e) => out.parse_error(SyntaxError {
            pos: e.pos,
            message: e.message,
        }),
        Ok(lock) => {
            for u in &lock.unpinned {
                out.add(
                    rules::DEP_UNPINNED,
                    u.pos,
                    format!("deps.{eco}.{}.unpinned", eco.normalize_name(&u.name)),
                    format!(
                        "{:?} pins no version, so which release ships in {} is decided at install time and cannot be checked for advisories",
                        u.requirement, check.ships_in
                    ),
                );
            }
            match check.db {
                None => {
                    if !lock.packages.is_empty() {
                        out.add(
                            rules::DEP_NO_DATABASE,
                            lock.packages[0].pos,
                            format!("deps.{eco}.no-database"),
                            format!(
                                "no {eco} advisory database in {}, so the {} packages of {} were not checked; run `writ advisories update --ecosystem {eco}`",
                                check.db_dir,
                                lock.packages.len(),
                                check.ships_in
                            ),
                        );
                    }
                }
                Some(db) => {
                    for p in &lock.packages {
                        for (adv, hit) in db.matches(eco, &p.name, &p.version) {
                            let aliases = if adv.aliases.is_empty() {
                                String::new()
                            } else {
                                format!(" ({})", adv.aliases.join(", "))
                            };
                            let summary = adv
                                .summary
                                .as_deref()
                                .map(|s| format!(": {s}"))
                                .unwrap_or_default();
                            let fixed = if hit.fixed.is_empty() {
                                "no fixed version published".to_string()
                            } else {
                                format!("fixed in {}", hit.fixed.join(", "))
                            };
                            out.add_with(
                                rules::DEP_VULNERABLE,
                                adv.severity,
                                p.pos,
                                format!("deps.{eco}.{}.{}", eco.normalize_name(&p.name), adv.id),
                                format!(
                                    "{} {} ({eco}) is affected by {}{aliases}{summary}; {fixed}; ships in {} [{}]",
                                    p.name, p.version, adv.id, check.ships_in, adv.severity_source
                                ),
                            );
                        }
                    }
                }
            }
        }
    }
    let mut findings = out.into_findings();
    if kind.has_comments() {
        let (kept, suppressed, extra) = suppress::apply(file, text, findings);
        findings = kept;
        findings.extend(extra);
        report.suppressed = suppressed;
    }
    findings.sort_by(|a, b| {
        (a.line, a.column, a.rule, &a.subject).cmp(&(b.line, b.column, b.rule, &b.subject))
    });
    findings.dedup();
    report.findings = findings;
    report
}
