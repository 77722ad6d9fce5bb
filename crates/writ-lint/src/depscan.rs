//! The shell of dependency scanning (`writ lint --deps`): finds lock files under the
//! scanned paths, tells which function each ships in, loads the OSV database from disk
//! and checks each lock file with the pure [`crate::deps::lint_lockfile`].
//!
//! The database is a directory with one subdirectory per ecosystem, named as OSV names
//! them (`PyPI`, `npm`, `crates.io`, `Go`), holding OSV records as `<ID>.json` files: the
//! content of `https://osv-vulnerabilities.storage.googleapis.com/<ECOSYSTEM>/all.zip`.
//! `writ advisories update` writes it, and a [`DOWNLOAD_INFO`] file beside the records
//! saying when; without one the directory's modification time is its age.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::deps::lockfile::LockKind;
use crate::deps::osv::{Advisory, Database};
use crate::deps::{DepCheck, Ecosystem, lint_lockfile};
use crate::walk::{MAX_FILE_BYTES, SKIP_DIRS, WalkError};
use crate::{FileReport, Pos, SyntaxError, rules};

/// The file in an ecosystem's directory that records the download (JSON:
/// `{"downloaded_at": <unix seconds>, "source": URL, "validator": ETag or Last-Modified,
/// "records": N}`); hidden, so never read as a record.
pub const DOWNLOAD_INFO: &str = ".writ-download.json";

/// The index `writ advisories update` writes beside the records: one line per affected
/// package and record, `<normalised name>\t<file name>`, so a lint run reads only the
/// records of its packages. Without it, every record file is read.
pub const INDEX: &str = ".writ-index.tsv";

/// The record files [`INDEX`] lists for the `wanted` names.
fn indexed_files(root: &Path, index: &str, wanted: &HashSet<String>) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = index
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(name, file)| {
            wanted.contains(*name) && !file.contains(['/', '\\']) && !file.starts_with('.')
        })
        .map(|(_, file)| root.join(file))
        .collect();
    files.sort();
    files.dedup();
    files
}

/// A database older than this gets a warning.
pub const STALE_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

/// The default database directory: `$XDG_CACHE_HOME/writ/advisories`, else
/// `$HOME/.cache/writ/advisories` (`%LOCALAPPDATA%\writ\advisories` on Windows).
pub fn default_dir() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let base = env("XDG_CACHE_HOME")
        .or_else(|| env("HOME").map(|h| h.join(".cache")))
        .or_else(|| env("LOCALAPPDATA"))?;
    Some(base.join("writ").join("advisories"))
}

/// The lock files under `paths`: a file named on the command line is taken when its name
/// is a lock file's; directories are walked as [`crate::walk::collect`] walks them
/// (skipping `node_modules`, `.git`, hidden directories...). Sorted.
pub fn find_lockfiles(paths: &[PathBuf]) -> (Vec<(PathBuf, LockKind)>, Vec<WalkError>) {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        match fs::metadata(p) {
            Ok(m) if m.is_dir() => walk(p, &mut found, &mut errors),
            Ok(_) => {
                if let Some(k) = kind_of(p) {
                    found.push((p.clone(), k));
                }
            }
            Err(e) => errors.push(WalkError {
                path: p.clone(),
                message: e.to_string(),
            }),
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found.dedup_by(|a, b| a.0 == b.0);
    (found, errors)
}

fn kind_of(p: &Path) -> Option<LockKind> {
    LockKind::of(p.file_name()?.to_str()?)
}

fn walk(dir: &Path, found: &mut Vec<(PathBuf, LockKind)>, errors: &mut Vec<WalkError>) {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push(WalkError {
                path: dir.to_path_buf(),
                message: e.to_string(),
            });
            return;
        }
    };
    let mut subdirs = Vec::new();
    for entry in entries.flatten() {
        let Ok(ty) = entry.file_type() else { continue };
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if ty.is_dir() {
            if !name.starts_with('.') && !SKIP_DIRS.contains(&name.as_ref()) {
                subdirs.push(path);
            }
        } else if ty.is_file()
            && let Some(k) = LockKind::of(&name)
        {
            found.push((path, k));
        }
    }
    for d in subdirs {
        walk(&d, found, errors);
    }
}

/// One ecosystem's advisories as loaded from disk.
#[derive(Debug)]
pub struct LoadedEcosystem {
    /// The records that name a package of interest.
    pub db: Database,
    /// How many record files the directory holds.
    pub records: usize,
    /// How old the download is, when known.
    pub age: Option<Duration>,
    /// Records that could not be read: (file, what is wrong).
    pub errors: Vec<(PathBuf, String)>,
}

/// Loads `dir/<ecosystem>/*.json`. Only records that mention one of `wanted` (normalised
/// package names) in a `"name"` field are parsed, which keeps a lint run fast on the large
/// npm and PyPI databases. `Ok(None)` when the directory does not exist.
pub fn load(
    dir: &Path,
    eco: Ecosystem,
    wanted: &HashSet<String>,
    threads: usize,
) -> Result<Option<LoadedEcosystem>, String> {
    let root = dir.join(eco.osv_name());
    let meta = match fs::metadata(&root) {
        Ok(m) if m.is_dir() => m,
        Ok(_) => return Err(format!("{} is not a directory", root.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", root.display())),
    };
    let info = fs::read_to_string(root.join(DOWNLOAD_INFO))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok());
    let downloaded = info
        .as_ref()
        .and_then(|v| v.get("downloaded_at").and_then(Value::as_u64))
        .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
        .or_else(|| meta.modified().ok());
    let age = downloaded.and_then(|t| SystemTime::now().duration_since(t).ok());
    let recorded = info
        .as_ref()
        .and_then(|v| v.get("records").and_then(Value::as_u64))
        .and_then(|n| usize::try_from(n).ok());
    let indexed = fs::read_to_string(root.join(INDEX)).ok();
    let (files, records) = match (indexed, recorded) {
        (Some(index), Some(records)) => (indexed_files(&root, &index, wanted), records),
        _ => {
            let mut files = Vec::new();
            for entry in fs::read_dir(&root).map_err(|e| format!("{}: {e}", root.display()))? {
                let entry = entry.map_err(|e| format!("{}: {e}", root.display()))?;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if !name.starts_with('.') && name.ends_with(".json") {
                    files.push(entry.path());
                }
            }
            files.sort();
            let n = files.len();
            (files, n)
        }
    };
    let chunk = files.len().div_ceil(threads.max(1)).max(1);
    let mut parts: Vec<Loaded> = Vec::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    let mut ok = Vec::new();
                    let mut bad = Vec::new();
                    for f in part {
                        let text = match read_record(f) {
                            Ok(t) => t,
                            Err(e) => {
                                bad.push((f.clone(), e));
                                continue;
                            }
                        };
                        if !mentions(&text, eco, wanted) {
                            continue;
                        }
                        match Advisory::parse(&text) {
                            Ok(Some(a)) => ok.push(a),
                            Ok(None) => {}
                            Err(e) => bad.push((f.clone(), e)),
                        }
                    }
                    (ok, bad)
                })
            })
            .collect();
        for h in handles {
            if let Ok(r) = h.join() {
                parts.push(r);
            }
        }
    });
    let mut db = Database::new();
    let mut errors = Vec::new();
    for (ok, bad) in parts {
        for a in ok {
            db.add(a);
        }
        errors.extend(bad);
    }
    Ok(Some(LoadedEcosystem {
        db,
        records,
        age,
        errors,
    }))
}

/// What one loader thread read: the records, and the files it could not read.
type Loaded = (Vec<Advisory>, Vec<(PathBuf, String)>);

fn read_record(path: &Path) -> Result<String, String> {
    let bytes = fs::read(path).map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("larger than {MAX_FILE_BYTES} bytes; not read"));
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())
}

/// True when a record's text has a `"name": "<n>"` whose normalised `n` is wanted.
/// Over-approximates (any `"name"` field counts); never misses a package the parser would
/// find, since OSV writes `package.name` as a plain JSON string.
fn mentions(text: &str, eco: Ecosystem, wanted: &HashSet<String>) -> bool {
    let mut rest = text;
    while let Some(at) = rest.find("\"name\"") {
        rest = &rest[at + 6..];
        let after = rest.trim_start();
        let Some(after) = after.strip_prefix(':') else {
            continue;
        };
        let Some(value) = after.trim_start().strip_prefix('"') else {
            continue;
        };
        let Some(end) = value.find('"') else {
            return false;
        };
        let raw = &value[..end];
        if raw.contains('\\') || wanted.contains(&eco.normalize_name(raw)) {
            return true;
        }
    }
    false
}

/// A function's code directory, from a template.
#[derive(Debug, Clone)]
struct CodeDir {
    dir: PathBuf,
    function: String,
    template: String,
}

/// Lexical normalisation: `a/./b/../c` is `a/c`; no file system access.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The code directories named by the templates' functions. A path to an archive
/// (`build/orders.zip`) stands for the directory of the same name without the extension.
fn code_dirs(reports: &[FileReport]) -> Vec<CodeDir> {
    let mut out = Vec::new();
    for r in reports {
        let base = Path::new(&r.file).parent().unwrap_or(Path::new(""));
        for u in &r.code_uses {
            let mut p = base.join(&u.path);
            if let Some(ext) = p.extension().and_then(|e| e.to_str())
                && matches!(ext.to_ascii_lowercase().as_str(), "zip" | "jar")
            {
                p.set_extension("");
            }
            out.push(CodeDir {
                dir: normalize(&p),
                function: u.function.clone(),
                template: r.file.clone(),
            });
        }
    }
    out
}

/// What a lock file ships in: the functions whose code directory holds it (the deepest
/// such directory wins), else its own directory.
fn ships_in(lock: &Path, dirs: &[CodeDir]) -> String {
    let parent = normalize(lock.parent().unwrap_or(Path::new("")));
    let deepest = dirs
        .iter()
        .filter(|d| parent.starts_with(&d.dir))
        .map(|d| d.dir.components().count())
        .max();
    if let Some(depth) = deepest {
        let names: BTreeSet<String> = dirs
            .iter()
            .filter(|d| parent.starts_with(&d.dir) && d.dir.components().count() == depth)
            .map(|d| format!("{} ({})", d.function, d.template))
            .collect();
        let names: Vec<String> = names.into_iter().collect();
        let word = if names.len() == 1 {
            "function"
        } else {
            "functions"
        };
        return format!("{word} {}", names.join(", "));
    }
    let shown = parent.display().to_string();
    format!("directory {}", if shown.is_empty() { "." } else { &shown })
}

/// The outcome of `writ lint --deps`.
#[derive(Debug, Default)]
pub struct DepScan {
    /// One report per lock file.
    pub reports: Vec<FileReport>,
    /// For people, on standard error: which databases were used and how old they are,
    /// stale-database warnings, unreadable records.
    pub notes: Vec<String>,
}

/// Checks the lock files under `paths` against the database in `dir`. `templates` are
/// the reports of the templates linted in the same run (for their functions' code
/// locations).
pub fn scan(
    paths: &[PathBuf],
    templates: &[FileReport],
    dir: &Path,
    threads: usize,
) -> Result<DepScan, Vec<WalkError>> {
    let (locks, errors) = find_lockfiles(paths);
    if !errors.is_empty() {
        return Err(errors);
    }
    let dirs = code_dirs(templates);
    let mut texts = Vec::new();
    let mut wanted: BTreeMap<Ecosystem, HashSet<String>> = BTreeMap::new();
    for (path, kind) in &locks {
        let text = read_record(path);
        if let Ok(t) = &text
            && let Ok(lock) = crate::deps::lockfile::parse(*kind, t)
        {
            let set = wanted.entry(kind.ecosystem()).or_default();
            for p in lock.packages {
                set.insert(kind.ecosystem().normalize_name(&p.name));
            }
        } else {
            wanted.entry(kind.ecosystem()).or_default();
        }
        texts.push(text);
    }
    let mut scan = DepScan::default();
    let mut dbs: BTreeMap<Ecosystem, Option<LoadedEcosystem>> = BTreeMap::new();
    for (eco, names) in &wanted {
        let loaded = match load(dir, *eco, names, threads) {
            Ok(l) => l,
            Err(e) => {
                scan.notes
                    .push(format!("cannot read the {eco} advisories: {e}"));
                None
            }
        };
        if let Some(l) = &loaded {
            let age = l.age.map_or("of unknown age".to_string(), |a| {
                format!("downloaded {} ago", human(a))
            });
            scan.notes.push(format!(
                "{eco} advisories: {} record{} in {}, {age}",
                l.records,
                if l.records == 1 { "" } else { "s" },
                dir.join(eco.osv_name()).display()
            ));
            if l.age.is_some_and(|a| a > STALE_AFTER) {
                scan.notes.push(format!(
                    "warning: the {eco} advisories are older than 7 days; run `writ advisories update`"
                ));
            }
            for (f, e) in l.errors.iter().take(5) {
                scan.notes
                    .push(format!("warning: {}: not read: {e}", f.display()));
            }
            if l.errors.len() > 5 {
                scan.notes.push(format!(
                    "warning: {} more {eco} records not read",
                    l.errors.len() - 5
                ));
            }
        }
        dbs.insert(*eco, loaded);
    }
    let db_dir = dir.display().to_string();
    for ((path, kind), text) in locks.iter().zip(texts) {
        let name = path.display().to_string();
        let report = match text {
            Ok(text) => {
                let shipped = ships_in(path, &dirs);
                let db = dbs
                    .get(&kind.ecosystem())
                    .and_then(Option::as_ref)
                    .map(|l| &l.db);
                lint_lockfile(
                    &name,
                    &text,
                    *kind,
                    DepCheck {
                        db,
                        db_dir: &db_dir,
                        ships_in: &shipped,
                    },
                )
            }
            Err(e) => {
                let mut out = rules::Out::new(&name);
                out.parse_error(SyntaxError {
                    pos: Pos::new(1, 1),
                    message: format!("cannot read the lock file: {e}"),
                });
                FileReport {
                    file: name.clone(),
                    format: Some(crate::FileFormat::LockFile),
                    findings: out.into_findings(),
                    ..FileReport::default()
                }
            }
        };
        scan.reports.push(report);
    }
    Ok(scan)
}

/// `3 days`, `5 hours`, `12 minutes`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = if s >= 86_400 {
        (s / 86_400, "day")
    } else if s >= 3600 {
        (s / 3600, "hour")
    } else {
        (s / 60, "minute")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_files_ship_in_the_function_whose_code_holds_them() {
        let t = FileReport {
            file: "app/template.yaml".into(),
            code_uses: vec![
                crate::CodeUse {
                    function: "Orders".into(),
                    path: "src/orders/".into(),
                    pos: Pos::new(1, 1),
                },
                crate::CodeUse {
                    function: "Api".into(),
                    path: "./build/../src/api.zip".into(),
                    pos: Pos::new(1, 1),
                },
            ],
            ..FileReport::default()
        };
        let dirs = code_dirs(&[t]);
        assert_eq!(
            ships_in(Path::new("app/src/orders/requirements.txt"), &dirs),
            "function Orders (app/template.yaml)"
        );
        assert_eq!(
            ships_in(Path::new("app/src/api/package-lock.json"), &dirs),
            "function Api (app/template.yaml)"
        );
        assert_eq!(
            ships_in(Path::new("app/other/go.sum"), &dirs),
            "directory app/other"
        );
    }

    #[test]
    fn record_prefilter_finds_wanted_names() {
        let wanted: HashSet<String> = ["django-thing".to_string()].into();
        assert!(mentions(
            r#"{"package": {"name" : "Django_Thing"}}"#,
            Ecosystem::PyPI,
            &wanted
        ));
        assert!(!mentions(
            r#"{"package": {"name": "other"}}"#,
            Ecosystem::PyPI,
            &wanted
        ));
        assert!(!mentions(r#"{"name"#, Ecosystem::PyPI, &wanted));
    }
}
