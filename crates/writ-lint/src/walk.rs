//! The shell around the core: finding files under the given paths and linting them in
//! parallel. The only module that touches the file system.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::rules::{self, Out};
use crate::{Config, FileReport, SyntaxError, is_candidate, lint_source};

/// Directories never entered: VCS data, tool caches, dependencies, build output.
pub const SKIP_DIRS: &[&str] = &[
    ".git",
    ".terraform",
    "node_modules",
    "target",
    ".aws-sam",
    "cdk.out",
];

/// Files larger than this are reported, not read.
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// A path that could not be walked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkError {
    /// The path.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

/// The files to lint under `paths`: a file given by name is always linted; directories are
/// walked recursively for `.tf`, `.yaml`, `.yml`, `.json` and `.template` files, skipping
/// [`SKIP_DIRS`], hidden directories and symbolic links. Sorted, without duplicates.
pub fn collect(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<WalkError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        match fs::metadata(p) {
            Ok(m) if m.is_dir() => walk_dir(p, &mut files, &mut errors),
            Ok(_) => files.push(p.clone()),
            Err(e) => errors.push(WalkError {
                path: p.clone(),
                message: e.to_string(),
            }),
        }
    }
    files.sort();
    files.dedup();
    (files, errors)
}

fn walk_dir(dir: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<WalkError>) {
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
        let path = entry.path();
        let Ok(ty) = entry.file_type() else { continue };
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if ty.is_dir() {
            if !name.starts_with('.') && !SKIP_DIRS.contains(&name.as_ref()) {
                subdirs.push(path);
            }
        } else if ty.is_file() && is_candidate(&path) {
            files.push(path);
        }
    }
    for d in subdirs {
        walk_dir(&d, files, errors);
    }
}

/// Reads a file, refusing ones over [`MAX_FILE_BYTES`].
fn read(path: &Path) -> Result<Vec<u8>, String> {
    let file = fs::File::open(path).map_err(|e| format!("cannot read the file: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the file: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "the file is larger than {MAX_FILE_BYTES} bytes; not read"
        ));
    }
    Ok(bytes)
}

/// Lints one file from disk. Unreadable files and invalid UTF-8 are parse findings.
pub fn lint_file(path: &Path, config: &Config) -> FileReport {
    let name = path.display().to_string();
    let failed = |pos, message| {
        let mut out = Out::new(&name);
        out.parse_error(SyntaxError { pos, message });
        FileReport {
            file: name.clone(),
            format: None,
            findings: out.into_findings(),
            ..FileReport::default()
        }
    };
    let bytes = match read(path) {
        Ok(b) => b,
        Err(m) => return failed(crate::Pos::new(1, 1), m),
    };
    match std::str::from_utf8(&bytes) {
        Ok(text) => lint_source(&name, text, config),
        Err(e) => {
            let valid = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or("");
            let pos = crate::node::LineIndex::new(valid).pos(valid.len());
            failed(
                pos,
                format!(
                    "the file is not valid UTF-8 (byte offset {})",
                    e.valid_up_to()
                ),
            )
        }
    }
}

/// Lints `files` on `threads` threads sharing one work queue, and returns the reports in
/// the order of `files`. `progress` is called with (files done, total) after each file.
pub fn lint_files(
    files: &[PathBuf],
    config: &Config,
    threads: usize,
    progress: Option<&(dyn Fn(usize, usize) + Sync)>,
) -> Vec<FileReport> {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, FileReport)>> = Mutex::new(Vec::with_capacity(files.len()));
    let threads = threads.clamp(1, files.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut local = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    local.push((i, lint_file(path, config)));
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if let Some(p) = progress {
                        p(n, files.len());
                    }
                }
                if let Ok(mut r) = results.lock() {
                    r.extend(local);
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(i, _)| *i);
    let mut reports: Vec<FileReport> = results.into_iter().map(|(_, r)| r).collect();
    shared_roles_across_files(&mut reports);
    reports
}

/// Terraform reads every `.tf` file of a directory as one module, so a role named by
/// functions in two files of one directory is shared too. Adds the findings the per-file
/// check could not see.
pub fn shared_roles_across_files(reports: &mut [FileReport]) {
    use std::collections::BTreeMap;
    // (directory, role) -> [(report index, use index)]
    let mut uses: BTreeMap<(PathBuf, String), Vec<(usize, usize)>> = BTreeMap::new();
    for (ri, r) in reports.iter().enumerate() {
        if r.format != Some(crate::FileFormat::Terraform) {
            continue;
        }
        let dir = Path::new(&r.file)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        for (ui, u) in r.role_uses.iter().enumerate() {
            uses.entry((dir.clone(), u.role.clone()))
                .or_default()
                .push((ri, ui));
        }
    }
    for ((_, role), list) in uses {
        let files: std::collections::BTreeSet<usize> = list.iter().map(|(ri, _)| *ri).collect();
        if files.len() < 2 {
            continue;
        }
        let names: Vec<String> = list
            .iter()
            .map(|(ri, ui)| reports[*ri].role_uses[*ui].function.clone())
            .collect();
        for (ri, ui) in &list {
            let u = reports[*ri].role_uses[*ui].clone();
            let subject = format!("{}.role", u.function);
            let report = &mut reports[*ri];
            if report
                .findings
                .iter()
                .any(|f| f.rule == rules::ROLE_SHARED && f.subject == subject)
            {
                continue;
            }
            let mut out = Out::new(&report.file);
            out.add(
                rules::ROLE_SHARED,
                u.pos,
                subject,
                format!(
                    "{}: execution role {role} is shared by {} functions in this module ({})",
                    u.function,
                    names.len(),
                    names.join(", ")
                ),
            );
            report.findings.extend(out.into_findings());
            report.findings.sort_by_key(|f| (f.line, f.column));
        }
    }
}
