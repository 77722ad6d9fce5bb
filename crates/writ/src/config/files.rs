//! Finding and reading configuration files: one file, or the `*.toml`, `*.yaml` and
//! `*.yml` files directly in a directory, in name order.

use std::path::Path;

use super::read::{Format, Source};

/// The format of a file by its extension, if it is a configuration file.
pub fn format_of(path: &Path) -> Option<Format> {
    match path.extension()?.to_str()? {
        "toml" => Some(Format::Toml),
        "yaml" | "yml" => Some(Format::Yaml),
        _ => None,
    }
}

/// Reads the configuration at `path`: the file, or the configuration files in the
/// directory (not its subdirectories), sorted by name.
pub fn load(path: &Path) -> Result<Vec<Source>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut paths = Vec::new();
    if meta.is_dir() {
        let entries = std::fs::read_dir(path).map_err(|e| format!("{}: {e}", path.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", path.display()))?;
            let p = entry.path();
            if p.is_file() && format_of(&p).is_some() {
                paths.push(p);
            }
        }
        paths.sort();
        if paths.is_empty() {
            return Err(format!(
                "{}: no configuration files in it (*.toml, *.yaml, *.yml)",
                path.display()
            ));
        }
    } else {
        if format_of(path).is_none() {
            return Err(format!(
                "{}: a configuration file is *.toml, *.yaml or *.yml",
                path.display()
            ));
        }
        paths.push(path.to_path_buf());
    }
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            Ok(Source {
                shown: p.display().to_string(),
                dir: p.parent().unwrap_or(Path::new(".")).to_path_buf(),
                format: format_of(&p).unwrap_or(Format::Toml),
                text,
            })
        })
        .collect()
}
