//! `writ lint`: scan Terraform, CloudFormation/SAM and IAM policy JSON for the classic
//! serverless security mistakes.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use writ_lint::baseline::{self, Baseline};
use writ_lint::render::{self, Outcome};
use writ_lint::{Config, Severity, depscan, walk};

/// Trees larger than this get a progress line on a terminal.
const PROGRESS_MIN_FILES: usize = 200;

/// Output formats of `writ lint`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LintFormat {
    /// For people: findings grouped by file, with fix hints.
    Text,
    /// One JSON document with findings and a summary.
    Json,
    /// SARIF 2.1.0, for code scanning (GitHub, GitLab, Azure DevOps).
    Sarif,
    /// JUnit XML, for CI test reports.
    Junit,
}

/// Severity threshold, as on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SeverityArg {
    /// Everything.
    Low,
    /// Medium and above.
    Medium,
    /// High and above.
    High,
    /// Critical only.
    Critical,
}

impl From<SeverityArg> for Severity {
    fn from(s: SeverityArg) -> Severity {
        match s {
            SeverityArg::Low => Severity::Low,
            SeverityArg::Medium => Severity::Medium,
            SeverityArg::High => Severity::High,
            SeverityArg::Critical => Severity::Critical,
        }
    }
}

/// Arguments of `writ lint`.
#[derive(Args)]
#[command(verbatim_doc_comment)]
pub struct LintArgs {
    /// Files and directories to scan (directories recursively: .tf, .tf.json, .yaml, .yml,
    /// .json, .template, .toml; .git, .terraform, node_modules, target and hidden directories are skipped).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = LintFormat::Text)]
    format: LintFormat,
    /// Report findings at or above this severity; exit 1 when one remains.
    #[arg(long, value_enum, default_value_t = SeverityArg::Low)]
    severity: SeverityArg,
    /// Do not report findings recorded in this baseline file.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// Write every current finding to this baseline file and exit 0.
    #[arg(long, value_name = "FILE")]
    write_baseline: Option<PathBuf>,
    /// An AWS account id whose Lambda layers are trusted (repeatable). Without any, the
    /// layer rule (WRIT-LAYER-001) is off.
    #[arg(long = "allow-layer-account", value_name = "ACCOUNT")]
    allow_layer_accounts: Vec<String>,
    /// Worker threads (default: the number of CPUs).
    #[arg(long)]
    threads: Option<usize>,
    /// Also check the lock files of function code (requirements.txt, poetry.lock,
    /// Pipfile.lock, package-lock.json, pnpm-lock.yaml, yarn.lock, Cargo.lock, go.sum)
    /// against the OSV advisories downloaded by `writ advisories update`. Works offline.
    #[arg(long)]
    deps: bool,
    /// Where the OSV advisories are (default: ~/.cache/writ/advisories).
    #[arg(long, value_name = "DIR", requires = "deps")]
    advisories_dir: Option<PathBuf>,
}

/// Runs `writ lint`. Exit codes: 0 nothing at or above the threshold, 1 findings (or
/// files that do not parse), 2 usage errors.
pub fn run(args: LintArgs) -> Result<ExitCode, String> {
    match lint(args) {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("writ lint: error: {e}");
            Ok(ExitCode::from(2))
        }
    }
}

fn lint(args: LintArgs) -> Result<ExitCode, String> {
    for a in &args.allow_layer_accounts {
        if a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "--allow-layer-account {a:?}: an AWS account id is 12 digits"
            ));
        }
    }
    let baseline = match &args.baseline {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("--baseline {}: {e}", path.display()))?;
            Some(
                Baseline::parse(&text)
                    .map_err(|e| format!("--baseline {}: {e}", path.display()))?,
            )
        }
        None => None,
    };
    let (files, errors) = walk::collect(&args.paths);
    if !errors.is_empty() {
        let list: Vec<String> = errors
            .iter()
            .map(|e| format!("{}: {}", e.path.display(), e.message))
            .collect();
        return Err(list.join("; "));
    }
    let config = Config {
        allow_layer_accounts: args.allow_layer_accounts.clone(),
    };
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let show_progress = std::io::stderr().is_terminal() && files.len() > PROGRESS_MIN_FILES;
    let progress = |done: usize, total: usize| {
        if done.is_multiple_of(50) || done == total {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\rwrit lint: {done}/{total} files");
            if done == total {
                let _ = write!(err, "\r\x1b[K");
            }
        }
    };
    let mut reports = walk::lint_files(
        &files,
        &config,
        threads,
        if show_progress { Some(&progress) } else { None },
    );
    if args.deps {
        let dir = match &args.advisories_dir {
            Some(d) => d.clone(),
            None => depscan::default_dir().ok_or(
                "no cache directory (neither XDG_CACHE_HOME nor HOME is set); pass --advisories-dir",
            )?,
        };
        let scan = depscan::scan(&args.paths, &reports, &dir, threads).map_err(|errors| {
            let list: Vec<String> = errors
                .iter()
                .map(|e| format!("{}: {}", e.path.display(), e.message))
                .collect();
            list.join("; ")
        })?;
        for note in &scan.notes {
            eprintln!("writ lint: {note}");
        }
        // A package-lock.json or pnpm-lock.yaml was also read as a possible template and
        // skipped; it is checked as a lock file instead, so it is neither skipped nor
        // counted twice.
        let locks: std::collections::HashSet<&str> =
            scan.reports.iter().map(|r| r.file.as_str()).collect();
        reports.retain(|r| !(r.format.is_none() && locks.contains(r.file.as_str())));
        reports.extend(scan.reports);
    }
    if let Some(path) = &args.write_baseline {
        let all = reports.iter().flat_map(|r| r.findings.iter());
        let text = baseline::write(all);
        std::fs::write(path, &text)
            .map_err(|e| format!("--write-baseline {}: {e}", path.display()))?;
        let n = reports
            .iter()
            .flat_map(|r| &r.findings)
            .filter(|f| !f.is_parse_error())
            .count();
        eprintln!("writ lint: wrote {n} findings to {}", path.display());
        return Ok(ExitCode::SUCCESS);
    }
    let outcome = Outcome::collect(&reports, baseline.as_ref(), args.severity.into());
    let rendered = match args.format {
        LintFormat::Text => render::text(&outcome),
        LintFormat::Json => render::json(&outcome),
        LintFormat::Sarif => render::sarif(&outcome),
        LintFormat::Junit => render::junit(&outcome),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(rendered.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| format!("writing the report: {e}"))?;
    Ok(if outcome.failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
