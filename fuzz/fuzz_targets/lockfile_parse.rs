//! Feeds arbitrary text to every lock-file parser of `writ lint --deps`
//! (`writ_lint::deps::lockfile::parse`) and to the finding step with an empty advisory
//! database. Nothing may panic; every package must have a name, a version and a
//! position; every error a position.

#![no_main]

use libfuzzer_sys::fuzz_target;
use writ_lint::deps::lockfile::{self, LockKind};
use writ_lint::deps::osv::Database;
use writ_lint::deps::{DepCheck, lint_lockfile};

const NAMES: &[&str] = &[
    "requirements.txt",
    "poetry.lock",
    "Pipfile.lock",
    "package-lock.json",
    "pnpm-lock.yaml",
    "yarn.lock",
    "Cargo.lock",
    "go.sum",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let db = Database::new();
    for name in NAMES {
        let kind = LockKind::of(name).expect("a lock file name");
        match lockfile::parse(kind, text) {
            Ok(lock) => {
                for p in &lock.packages {
                    assert!(!p.name.is_empty() && !p.version.is_empty(), "{p:?}");
                    assert!(p.pos.line >= 1 && p.pos.column >= 1, "{p:?}");
                }
            }
            Err(e) => assert!(e.pos.line >= 1 && e.pos.column >= 1, "{e:?}"),
        }
        let report = lint_lockfile(
            name,
            text,
            kind,
            DepCheck {
                db: Some(&db),
                db_dir: "db",
                ships_in: "directory .",
            },
        );
        for f in &report.findings {
            assert!(f.line >= 1 && f.column >= 1, "{f:?}");
        }
    }
});
