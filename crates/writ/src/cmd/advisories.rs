//! `writ advisories update`: downloads OSV's advisories for the ecosystems in use, for
//! `writ lint --deps` to read offline.
//!
//! Each ecosystem's `all.zip` (`<source>/<ECOSYSTEM>/all.zip`, as OSV publishes them) is
//! downloaded to `<dir>/.<ECOSYSTEM>.all.zip.partial`, resumed with an HTTP `Range`
//! request when a partial file is there (re-validated with `If-Range` and the ETag it was
//! started with; a changed file is downloaded again from the start), checked as a zip of
//! OSV records, unpacked beside the current data into a new directory, and swapped in
//! atomically: `<dir>/<ECOSYSTEM>` is a symbolic link renamed over the old one, so a lint
//! run reads either the old records or the new ones, never a mix.

use std::fs;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use clap::{Args, Subcommand};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, ETAG, IF_RANGE, LAST_MODIFIED, RANGE};
use serde_json::Value;
use writ_lint::deps::Ecosystem;
use writ_lint::depscan::{self, DOWNLOAD_INFO, INDEX};

/// OSV's public bucket.
pub const DEFAULT_SOURCE: &str = "https://osv-vulnerabilities.storage.googleapis.com";

/// The largest record unpacked; larger entries make the archive invalid.
const MAX_RECORD_BYTES: u64 = 8 * 1024 * 1024;

/// Arguments of `writ advisories`.
#[derive(Args)]
pub struct AdvisoriesArgs {
    #[command(subcommand)]
    command: AdvisoriesCommand,
}

#[derive(Subcommand)]
enum AdvisoriesCommand {
    /// Download the OSV advisories of the ecosystems in use (resumable), for
    /// `writ lint --deps`.
    ///
    /// The ecosystems are those of the lock files under PATH (default: the current
    /// directory), or those named with --ecosystem (PyPI, npm, crates.io, Go).
    ///
    /// Examples:
    ///   writ advisories update .
    ///   writ advisories update --ecosystem PyPI --ecosystem npm
    ///   writ advisories update --dir ./osv --source https://mirror.example.com/osv
    #[command(verbatim_doc_comment)]
    Update(UpdateArgs),
}

/// Arguments of `writ advisories update`.
#[derive(Args)]
struct UpdateArgs {
    /// Find the ecosystems in use from the lock files under these paths.
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// An ecosystem to download (repeatable): PyPI, npm, crates.io or Go.
    #[arg(long = "ecosystem", value_name = "ECOSYSTEM", value_parser = parse_ecosystem)]
    ecosystems: Vec<Ecosystem>,
    /// Where to keep the advisories (default: ~/.cache/writ/advisories).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Where OSV's data is published.
    #[arg(long, value_name = "URL", default_value = DEFAULT_SOURCE)]
    source: String,
}

fn parse_ecosystem(s: &str) -> Result<Ecosystem, String> {
    Ecosystem::parse(s).ok_or_else(|| {
        format!("{s:?} is not an ecosystem writ reads; use PyPI, npm, crates.io or Go")
    })
}

/// Runs `writ advisories`. Exit codes: 0 done, 1 a download or archive failed, 2 usage.
pub fn run(args: AdvisoriesArgs) -> Result<ExitCode, String> {
    match args.command {
        AdvisoriesCommand::Update(u) => update(u),
    }
}

fn update(args: UpdateArgs) -> Result<ExitCode, String> {
    let usage = |e: String| {
        eprintln!("writ advisories: error: {e}");
        Ok(ExitCode::from(2))
    };
    let dir = match args.dir.clone().or_else(depscan::default_dir) {
        Some(d) => d,
        None => {
            return usage(
                "no cache directory (neither XDG_CACHE_HOME nor HOME is set); pass --dir".into(),
            );
        }
    };
    let source = args.source.trim_end_matches('/').to_string();
    if !(source.starts_with("https://") || source.starts_with("http://")) {
        return usage(format!("--source {source}: expected an http(s) URL"));
    }
    let mut ecosystems = args.ecosystems.clone();
    if ecosystems.is_empty() || !args.paths.is_empty() {
        let paths = if args.paths.is_empty() {
            vec![PathBuf::from(".")]
        } else {
            args.paths.clone()
        };
        let (locks, errors) = depscan::find_lockfiles(&paths);
        if let Some(e) = errors.first() {
            return usage(format!("{}: {}", e.path.display(), e.message));
        }
        ecosystems.extend(locks.iter().map(|(_, k)| k.ecosystem()));
        if ecosystems.is_empty() {
            return usage(format!(
                "no lock files under {}; name the ecosystems with --ecosystem",
                paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    ecosystems.sort();
    ecosystems.dedup();
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(60))
        .user_agent(concat!("writ/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    let mut failed = false;
    for eco in ecosystems {
        let url = format!("{source}/{}/all.zip", eco.osv_name());
        let result = runtime
            .block_on(download(&http, &url, &dir, eco))
            .and_then(|d| install(&dir, eco, &d, &url));
        match result {
            Ok(n) => eprintln!(
                "writ advisories: {eco}: {n} records in {}",
                dir.join(eco.osv_name()).display()
            ),
            Err(e) => {
                eprintln!("writ advisories: error: {eco}: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// A finished download.
struct Downloaded {
    /// The complete `all.zip`.
    path: PathBuf,
    /// The validator it was downloaded with (ETag, else Last-Modified).
    validator: Option<String>,
}

fn partial_path(dir: &Path, eco: Ecosystem) -> PathBuf {
    dir.join(format!(".{}.all.zip.partial", eco.osv_name()))
}

/// The file beside the partial download holding its validator.
fn validator_path(dir: &Path, eco: Ecosystem) -> PathBuf {
    dir.join(format!(".{}.all.zip.partial.validator", eco.osv_name()))
}

/// Downloads `url` into the partial file, resuming it when it has a validator.
async fn download(
    http: &reqwest::Client,
    url: &str,
    dir: &Path,
    eco: Ecosystem,
) -> Result<Downloaded, String> {
    let partial = partial_path(dir, eco);
    let vpath = validator_path(dir, eco);
    let have = fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
    let validator = fs::read_to_string(&vpath)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty());
    let mut request = http.get(url);
    let resuming = have > 0 && validator.is_some();
    if let (true, Some(v)) = (resuming, &validator) {
        request = request
            .header(RANGE, format!("bytes={have}-"))
            .header(IF_RANGE, v);
    }
    let mut response = request.send().await.map_err(|e| describe(url, &e))?;
    let status = response.status();
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let (mut file, mut done, total) = if status == StatusCode::PARTIAL_CONTENT && resuming {
        // `bytes START-END/TOTAL`: must continue where the file stops.
        let range = header(CONTENT_RANGE).unwrap_or_default();
        let start = range
            .strip_prefix("bytes ")
            .and_then(|r| r.split('-').next())
            .and_then(|s| s.parse::<u64>().ok());
        if start != Some(have) {
            return Err(format!(
                "{url}: asked to resume at byte {have}, the server answered Content-Range {range:?}; delete {} to start again",
                partial.display()
            ));
        }
        let total = range.rsplit('/').next().and_then(|t| t.parse::<u64>().ok());
        eprintln!(
            "writ advisories: {eco}: resuming {url} at {}",
            human_bytes(have)
        );
        let file = fs::OpenOptions::new()
            .append(true)
            .open(&partial)
            .map_err(|e| format!("{}: {e}", partial.display()))?;
        (file, have, total)
    } else if status == StatusCode::OK {
        if resuming {
            eprintln!(
                "writ advisories: {eco}: {url} changed since the interrupted download (or the server does not resume downloads); starting again"
            );
        }
        let v = header(ETAG).or_else(|| header(LAST_MODIFIED));
        match &v {
            Some(v) => fs::write(&vpath, v).map_err(|e| format!("{}: {e}", vpath.display()))?,
            None => {
                let _ = fs::remove_file(&vpath);
            }
        }
        let file = fs::File::create(&partial).map_err(|e| format!("{}: {e}", partial.display()))?;
        let total = response.content_length();
        eprintln!(
            "writ advisories: {eco}: downloading {url}{}",
            total.map_or(String::new(), |t| format!(" ({})", human_bytes(t)))
        );
        (file, 0, total)
    } else if status == StatusCode::RANGE_NOT_SATISFIABLE {
        let _ = fs::remove_file(&partial);
        let _ = fs::remove_file(&vpath);
        return Err(format!(
            "{url}: the server refused to resume at byte {have} (416); the partial download was discarded, run again"
        ));
    } else {
        return Err(format!("{url}: the server answered {status}"));
    };
    let terminal = std::io::stderr().is_terminal();
    let mut last = Instant::now();
    while let Some(chunk) = response.chunk().await.map_err(|e| {
        format!(
            "{}; {} kept in {}, run again to resume",
            describe(url, &e),
            human_bytes(done),
            partial.display()
        )
    })? {
        file.write_all(&chunk)
            .map_err(|e| format!("{}: {e}", partial.display()))?;
        done += chunk.len() as u64;
        if terminal && last.elapsed() > Duration::from_millis(200) {
            last = Instant::now();
            let pct = total.map_or(String::new(), |t| {
                format!(" of {} ({}%)", human_bytes(t), done * 100 / t.max(1))
            });
            eprint!("\rwrit advisories: {eco}: {}{pct}\x1b[K", human_bytes(done));
        }
    }
    if terminal {
        eprint!("\r\x1b[K");
    }
    file.sync_all()
        .map_err(|e| format!("{}: {e}", partial.display()))?;
    if let Some(t) = total
        && done != t
    {
        return Err(format!(
            "{url}: the download stopped at {done} of {t} bytes; run again to resume"
        ));
    }
    eprintln!("writ advisories: {eco}: downloaded {}", human_bytes(done));
    Ok(Downloaded {
        path: partial,
        validator: fs::read_to_string(&vpath).ok(),
    })
}

fn describe(url: &str, e: &reqwest::Error) -> String {
    let mut msg = format!("{url}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(&format!(": {s}"));
        source = s.source();
    }
    msg
}

fn human_bytes(n: u64) -> String {
    if n >= 1024 * 1024 {
        format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0))
    } else if n >= 1024 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} bytes")
    }
}

/// Checks the archive, unpacks it beside the current data and swaps it in. Returns the
/// number of records. On any error the current data is left as it was.
fn install(dir: &Path, eco: Ecosystem, d: &Downloaded, url: &str) -> Result<usize, String> {
    let stamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|e| e.to_string())?;
    let name = format!(
        ".{}-{}.{:09}-{}",
        eco.osv_name(),
        stamp.as_secs(),
        stamp.subsec_nanos(),
        std::process::id()
    );
    let fresh = dir.join(&name);
    let records = match unpack(&d.path, &fresh, eco) {
        Ok(n) => n,
        Err(e) => {
            let _ = fs::remove_dir_all(&fresh);
            // A corrupt download is not resumed: the next run starts again.
            let _ = fs::remove_file(&d.path);
            let _ = fs::remove_file(validator_path(dir, eco));
            return Err(format!("{url} is not a zip of OSV records: {e}"));
        }
    };
    let info = serde_json::json!({
        "downloaded_at": stamp.as_secs(),
        "source": url,
        "validator": d.validator.as_deref().map(str::trim),
        "records": records,
    });
    fs::write(fresh.join(DOWNLOAD_INFO), info.to_string())
        .map_err(|e| format!("{}: {e}", fresh.display()))?;
    swap_in(dir, eco, &name)?;
    let _ = fs::remove_file(&d.path);
    let _ = fs::remove_file(validator_path(dir, eco));
    Ok(records)
}

/// Unpacks the `.json` entries of an OSV `all.zip` into `to`, checking that each is a
/// JSON object with an `id`. Entry names must be plain file names. Writes the index of
/// [`INDEX`]: the records of each affected package of `eco`, by normalised name.
fn unpack(zip_path: &Path, to: &Path, eco: Ecosystem) -> Result<usize, String> {
    let mut index = String::new();
    let file = fs::File::open(zip_path).map_err(|e| format!("{}: {e}", zip_path.display()))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| e.to_string())?;
    fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    let mut records = 0;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| format!("entry {i}: {e}"))?;
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().to_string();
        let plain = !name.is_empty()
            && !name.contains(['/', '\\'])
            && !name.starts_with('.')
            && name != DOWNLOAD_INFO;
        if !plain {
            return Err(format!("entry {name:?} is not a plain file name"));
        }
        if !name.ends_with(".json") {
            continue;
        }
        let mut bytes = Vec::new();
        (&mut entry)
            .take(MAX_RECORD_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("entry {name:?}: {e}"))?;
        if bytes.len() as u64 > MAX_RECORD_BYTES {
            return Err(format!(
                "entry {name:?} is larger than {MAX_RECORD_BYTES} bytes"
            ));
        }
        let v: Value =
            serde_json::from_slice(&bytes).map_err(|e| format!("entry {name:?}: {e}"))?;
        if v.get("id").and_then(Value::as_str).is_none() {
            return Err(format!("entry {name:?} has no \"id\""));
        }
        let affected = v.get("affected").and_then(Value::as_array);
        for pkg in affected
            .into_iter()
            .flatten()
            .filter_map(|a| a.get("package"))
        {
            let of_eco = pkg.get("ecosystem").and_then(Value::as_str) == Some(eco.osv_name());
            if let (true, Some(n)) = (of_eco, pkg.get("name").and_then(Value::as_str)) {
                let n = eco.normalize_name(n);
                // No lock file names such a package, and it would break the line format.
                if !n.contains(['\t', '\n', '\r']) {
                    index.push_str(&format!("{n}\t{name}\n"));
                }
            }
        }
        let path = to.join(&name);
        fs::write(&path, &bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        records += 1;
    }
    if records == 0 {
        return Err("the archive holds no records".into());
    }
    let path = to.join(INDEX);
    fs::write(&path, index).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(records)
}

/// Makes `<dir>/<ECOSYSTEM>` point at the directory `name` (in `dir`): a new symbolic
/// link renamed over the old one, which is atomic; then the old directory is removed.
/// A `<dir>/<ECOSYSTEM>` that is a real directory (unpacked by hand) is moved aside
/// first.
#[cfg(unix)]
fn swap_in(dir: &Path, eco: Ecosystem, name: &str) -> Result<(), String> {
    let live = dir.join(eco.osv_name());
    let old_target = fs::read_link(&live).ok();
    if old_target.is_none() && fs::symlink_metadata(&live).is_ok_and(|m| m.is_dir()) {
        let aside = dir.join(format!(
            ".{}.by-hand-{}",
            eco.osv_name(),
            std::process::id()
        ));
        fs::rename(&live, &aside).map_err(|e| format!("{}: {e}", live.display()))?;
        let _ = fs::remove_dir_all(&aside);
    }
    let link = dir.join(format!(".{}.link-{}", eco.osv_name(), std::process::id()));
    let _ = fs::remove_file(&link);
    std::os::unix::fs::symlink(name, &link).map_err(|e| format!("{}: {e}", link.display()))?;
    fs::rename(&link, &live).map_err(|e| format!("{}: {e}", live.display()))?;
    if let Some(old) = old_target {
        let old = dir.join(old);
        if old != dir.join(name) {
            let _ = fs::remove_dir_all(old);
        }
    }
    Ok(())
}

/// Without symbolic links: the old directory is moved aside, the new one renamed into
/// place (a lint run in between sees no database and says so), then the old one removed.
#[cfg(not(unix))]
fn swap_in(dir: &Path, eco: Ecosystem, name: &str) -> Result<(), String> {
    let live = dir.join(eco.osv_name());
    let aside = dir.join(format!(".{}.old-{}", eco.osv_name(), std::process::id()));
    let had = fs::rename(&live, &aside).is_ok();
    fs::rename(dir.join(name), &live).map_err(|e| format!("{}: {e}", live.display()))?;
    if had {
        let _ = fs::remove_dir_all(aside);
    }
    Ok(())
}
