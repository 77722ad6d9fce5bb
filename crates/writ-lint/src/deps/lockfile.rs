//! Lock files into (ecosystem, package, version) with positions. Pure: text in, packages
//! out; errors name the line and column. These parse untrusted input: no panics, no
//! unbounded recursion (JSON nesting is capped by the JSON reader, and npm v1's nested
//! `dependencies` are walked with an explicit stack).

use crate::node::{Kind, LineIndex, Node, Pos};
use crate::{json, yaml};

use super::Ecosystem;

/// The lock file formats read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockKind {
    /// pip's `requirements.txt` (and `requirements-*.txt`, `requirements.*.txt`).
    Requirements,
    /// Poetry's `poetry.lock`.
    PoetryLock,
    /// Pipenv's `Pipfile.lock`.
    PipfileLock,
    /// npm's `package-lock.json` (lockfile versions 1, 2, 3) and `npm-shrinkwrap.json`.
    PackageLock,
    /// pnpm's `pnpm-lock.yaml` (5.x, 6.x, 9.x).
    PnpmLock,
    /// Yarn's `yarn.lock` (v1 and berry).
    YarnLock,
    /// Cargo's `Cargo.lock`.
    CargoLock,
    /// Go's `go.sum`.
    GoSum,
}

impl LockKind {
    /// The lock file kind of a file name (the last path component), if it is one.
    pub fn of(file_name: &str) -> Option<LockKind> {
        Some(match file_name {
            "poetry.lock" => LockKind::PoetryLock,
            "Pipfile.lock" => LockKind::PipfileLock,
            "package-lock.json" | "npm-shrinkwrap.json" => LockKind::PackageLock,
            "pnpm-lock.yaml" => LockKind::PnpmLock,
            "yarn.lock" => LockKind::YarnLock,
            "Cargo.lock" => LockKind::CargoLock,
            "go.sum" => LockKind::GoSum,
            n if n.starts_with("requirements")
                && n.ends_with(".txt")
                && matches!(n.as_bytes().get(12), Some(b'.' | b'-' | b'_')) =>
            {
                LockKind::Requirements
            }
            _ => return None,
        })
    }

    /// The ecosystem whose packages the file lists.
    pub fn ecosystem(self) -> Ecosystem {
        match self {
            LockKind::Requirements | LockKind::PoetryLock | LockKind::PipfileLock => {
                Ecosystem::PyPI
            }
            LockKind::PackageLock | LockKind::PnpmLock | LockKind::YarnLock => Ecosystem::Npm,
            LockKind::CargoLock => Ecosystem::CratesIo,
            LockKind::GoSum => Ecosystem::Go,
        }
    }

    /// True for formats with `#` comments, where `# writ:ignore` suppressions can be written.
    pub fn has_comments(self) -> bool {
        !matches!(
            self,
            LockKind::PipfileLock | LockKind::PackageLock | LockKind::GoSum
        )
    }
}

/// One package version a lock file pins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// The name, as written.
    pub name: String,
    /// The version, as written (without `==` or a `v` prefix removed).
    pub version: String,
    /// Where the entry is.
    pub pos: Pos,
}

/// A requirement that does not pin one version (`requests>=2`, `flask`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpinned {
    /// The name, as written.
    pub name: String,
    /// The requirement, as written (without comments and options).
    pub requirement: String,
    /// Where it is.
    pub pos: Pos,
}

/// What a lock file lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockFile {
    /// The format.
    pub kind: LockKind,
    /// The packages, in file order, without duplicates (name and version).
    pub packages: Vec<Package>,
    /// Requirements that pin no version (only `requirements.txt` has them).
    pub unpinned: Vec<Unpinned>,
}

/// A lock file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockError {
    /// Where.
    pub pos: Pos,
    /// What.
    pub message: String,
}

fn err<T>(pos: Pos, message: impl Into<String>) -> Result<T, LockError> {
    Err(LockError {
        pos,
        message: message.into(),
    })
}

/// Reads a lock file of `kind`.
pub fn parse(kind: LockKind, text: &str) -> Result<LockFile, LockError> {
    let mut packages = Vec::new();
    let mut unpinned = Vec::new();
    match kind {
        LockKind::Requirements => requirements(text, &mut packages, &mut unpinned)?,
        LockKind::PoetryLock => toml_packages(text, kind, &mut packages)?,
        LockKind::CargoLock => toml_packages(text, kind, &mut packages)?,
        LockKind::PipfileLock => pipfile_lock(text, &mut packages)?,
        LockKind::PackageLock => package_lock(text, &mut packages)?,
        LockKind::PnpmLock => pnpm_lock(text, &mut packages)?,
        LockKind::YarnLock => {
            if text.lines().any(|l| l.starts_with("__metadata:")) {
                yarn_berry(text, &mut packages)?
            } else {
                yarn_v1(text, &mut packages)?
            }
        }
        LockKind::GoSum => go_sum(text, &mut packages)?,
    }
    let mut seen = std::collections::HashSet::new();
    packages.retain(|p| seen.insert((p.name.clone(), p.version.clone())));
    Ok(LockFile {
        kind,
        packages,
        unpinned,
    })
}

fn pos_at(line: usize, col: usize) -> Pos {
    Pos::new(
        u32::try_from(line + 1).unwrap_or(u32::MAX),
        u32::try_from(col + 1).unwrap_or(u32::MAX),
    )
}

/// True for a PEP 508 project name.
fn is_pypi_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
}

/// `requirements.txt`: `name[extras]==version ; marker  --hash=...  # comment`, with `\`
/// continuations. Options (`-r`, `-e`, `--index-url`...) and direct references
/// (`name @ https://...`, paths, URLs) pin nothing an advisory can match and are passed
/// over; a requirement with anything other than one `==`/`===` version is unpinned.
fn requirements(
    text: &str,
    packages: &mut Vec<Package>,
    unpinned: &mut Vec<Unpinned>,
) -> Result<(), LockError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let start = i;
        let mut logical = String::new();
        loop {
            let l = lines[i];
            i += 1;
            match l.strip_suffix('\\') {
                Some(rest) if i < lines.len() => {
                    logical.push_str(rest);
                    logical.push(' ');
                }
                Some(rest) => {
                    logical.push_str(rest);
                    break;
                }
                None => {
                    logical.push_str(l);
                    break;
                }
            }
        }
        // Comments: `#` at the start or after whitespace.
        let mut line = logical.as_str();
        if let Some(at) = line
            .char_indices()
            .find(|&(j, c)| c == '#' && (j == 0 || line[..j].ends_with([' ', '\t'])))
            .map(|(j, _)| j)
        {
            line = &line[..at];
        }
        let indent = line.len() - line.trim_start().len();
        let line = line.trim();
        if line.is_empty() || line.starts_with('-') {
            continue;
        }
        // Options after the requirement (`--hash=...`).
        let req = line.split(" --").next().unwrap_or(line).trim();
        let req = req.split(';').next().unwrap_or(req).trim();
        if req.contains("://") || req.starts_with('.') || req.starts_with('/') {
            continue;
        }
        let name_end = req
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
            .unwrap_or(req.len());
        let name = &req[..name_end];
        if !is_pypi_name(name) {
            return err(
                pos_at(start, indent),
                format!(
                    "expected a requirement (`name==version`), found {:?}",
                    req.chars().take(40).collect::<String>()
                ),
            );
        }
        let mut rest = req[name_end..].trim_start();
        if let Some(r) = rest.strip_prefix('[') {
            let Some(close) = r.find(']') else {
                return err(
                    pos_at(start, indent + name_end),
                    "the extras list `[` is not closed by `]`",
                );
            };
            rest = r[close + 1..].trim_start();
        }
        if rest.starts_with('@') {
            continue;
        }
        let pos = pos_at(start, indent);
        let specs: Vec<&str> = rest
            .trim_start_matches('(')
            .trim_end_matches(')')
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let pinned = match specs.as_slice() {
            [one] => one
                .strip_prefix("===")
                .or_else(|| one.strip_prefix("=="))
                .map(str::trim)
                .filter(|v| !v.is_empty() && !v.ends_with(".*")),
            _ => None,
        };
        match pinned {
            Some(version) => packages.push(Package {
                name: name.to_string(),
                version: version.to_string(),
                pos,
            }),
            None => unpinned.push(Unpinned {
                name: name.to_string(),
                requirement: req.to_string(),
                pos,
            }),
        }
    }
    Ok(())
}

/// `poetry.lock` and `Cargo.lock`: TOML with `[[package]]` tables of `name` and
/// `version`. Cargo packages without a crates.io `source` (workspace members, git and path
/// dependencies) and Poetry packages from git, a directory, a file or a URL are not on the
/// registry, so not listed.
fn toml_packages(text: &str, kind: LockKind, packages: &mut Vec<Package>) -> Result<(), LockError> {
    use toml::de::{DeTable, DeValue};
    let lines = LineIndex::new(text);
    let doc = DeTable::parse(text).map_err(|e| LockError {
        pos: lines.pos(e.span().map_or(0, |s| s.start)),
        message: format!("not valid TOML: {}", e.message().trim()),
    })?;
    let Some(list) = doc
        .get_ref()
        .iter()
        .find(|(k, _)| k.get_ref().as_ref() == "package")
        .map(|(_, v)| v)
    else {
        return Ok(());
    };
    let DeValue::Array(items) = list.get_ref() else {
        return err(
            lines.pos(list.span().start),
            "`package` is not an array of tables",
        );
    };
    for item in items {
        let DeValue::Table(t) = item.get_ref() else {
            return err(
                lines.pos(item.span().start),
                "a `package` entry is not a table",
            );
        };
        let field = |name: &str| {
            t.iter()
                .find(|(k, _)| k.get_ref().as_ref() == name)
                .map(|(_, v)| v)
        };
        let string = |name: &str| -> Result<Option<(String, Pos)>, LockError> {
            match field(name) {
                None => Ok(None),
                Some(v) => match v.get_ref() {
                    DeValue::String(s) => Ok(Some((s.to_string(), lines.pos(v.span().start)))),
                    _ => err(
                        lines.pos(v.span().start),
                        format!("`{name}` is not a string"),
                    ),
                },
            }
        };
        let at = lines.pos(item.span().start);
        let Some((name, pos)) = string("name")? else {
            return err(at, "a `[[package]]` has no `name`");
        };
        let Some((version, _)) = string("version")? else {
            return err(at, format!("package {name:?} has no `version`"));
        };
        let registry = match kind {
            LockKind::CargoLock => string("source")?.is_some_and(|(s, _)| {
                (s.starts_with("registry+") || s.starts_with("sparse+")) && s.contains("crates.io")
            }),
            _ => match field("source").map(|s| s.get_ref()) {
                Some(DeValue::Table(s)) => !s.iter().any(|(k, v)| {
                    k.get_ref().as_ref() == "type"
                        && matches!(v.get_ref(), DeValue::String(t) if matches!(t.as_ref(), "git" | "directory" | "file" | "url"))
                }),
                _ => true,
            },
        };
        if registry {
            packages.push(Package { name, version, pos });
        }
    }
    Ok(())
}

fn json_doc(text: &str) -> Result<Node, LockError> {
    match json::parse(text) {
        Ok(Some(doc)) => Ok(doc),
        Ok(None) => err(Pos::new(1, 1), "the file is empty"),
        Err(e) => err(e.pos, format!("not valid JSON: {}", e.message)),
    }
}

/// `Pipfile.lock`: `default` and `develop`, each `{name: {"version": "==1.2.3"}}`.
/// Entries without a version (git, editable, path) are passed over.
fn pipfile_lock(text: &str, packages: &mut Vec<Package>) -> Result<(), LockError> {
    let doc = json_doc(text)?;
    if !matches!(doc.kind, Kind::Map(_)) {
        return err(doc.pos, "expected a JSON object");
    }
    for section in ["default", "develop"] {
        for (k, v) in doc.get(section).map(Node::entries).unwrap_or_default() {
            let Some(version) = v.get("version") else {
                continue;
            };
            let Some(s) = version.as_str() else {
                return err(
                    version.pos,
                    format!("{section}.{}.version is not a string", k.name),
                );
            };
            let Some(pinned) = s.trim().strip_prefix("==") else {
                return err(
                    version.pos,
                    format!("{section}.{}.version {s:?} is not pinned with `==`", k.name),
                );
            };
            packages.push(Package {
                name: k.name.clone(),
                version: pinned.trim().to_string(),
                pos: k.pos,
            });
        }
    }
    Ok(())
}

/// `package-lock.json`: lockfile v2 and v3 list `packages` by install path
/// (`node_modules/a/node_modules/@s/b`); v1 nests `dependencies`. The root, links and
/// workspace members are not registry packages. An alias (`"name": "real"` in v2,
/// `"version": "npm:real@1.0.0"` in v1) is reported under the real name.
fn package_lock(text: &str, packages: &mut Vec<Package>) -> Result<(), LockError> {
    let doc = json_doc(text)?;
    if !matches!(doc.kind, Kind::Map(_)) {
        return err(doc.pos, "expected a JSON object");
    }
    if let Some(pkgs) = doc.get("packages") {
        for (k, v) in pkgs.entries() {
            let Some(at) = k.name.rfind("node_modules/") else {
                continue;
            };
            if v.get("link").is_some_and(Node::is_true) {
                continue;
            }
            let Some(version) = v.get("version").and_then(Node::as_str) else {
                continue;
            };
            let path_name = &k.name[at + "node_modules/".len()..];
            let name = v
                .get("name")
                .and_then(Node::as_str)
                .unwrap_or(path_name)
                .to_string();
            push_npm(packages, name, version, k.pos);
        }
        return Ok(());
    }
    let mut stack: Vec<&Node> = doc.get("dependencies").into_iter().collect();
    while let Some(deps) = stack.pop() {
        for (k, v) in deps.entries() {
            if let Some(version) = v.get("version").and_then(Node::as_str) {
                push_npm(packages, k.name.clone(), version, k.pos);
            }
            if let Some(d) = v.get("dependencies") {
                stack.push(d);
            }
        }
    }
    packages.sort_by_key(|p| p.pos);
    Ok(())
}

/// Adds an npm package, reading `npm:real@1.2.3` aliases.
fn push_npm(packages: &mut Vec<Package>, name: String, version: &str, pos: Pos) {
    let (name, version) = match version.strip_prefix("npm:") {
        Some(alias) => match split_at_version(alias) {
            Some((n, v)) => (n.to_string(), v.to_string()),
            None => return,
        },
        None => (name, version.to_string()),
    };
    packages.push(Package { name, version, pos });
}

/// `name@version`, where a scoped name starts with `@`.
fn split_at_version(s: &str) -> Option<(&str, &str)> {
    let at = s.get(1..)?.rfind('@')? + 1;
    let (n, v) = (&s[..at], &s[at + 1..]);
    (!n.is_empty() && !v.is_empty()).then_some((n, v))
}

fn yaml_doc(text: &str) -> Result<Option<Node>, LockError> {
    match yaml::parse(text) {
        Ok(docs) => Ok(docs.into_iter().next()),
        Err(e) => err(e.pos, format!("not valid YAML: {}", e.message)),
    }
}

/// `pnpm-lock.yaml`: the keys of `packages`: `/name/1.2.3_peer` (5.x),
/// `/name@1.2.3(peer)` (6.x), `name@1.2.3` (9.x).
fn pnpm_lock(text: &str, packages: &mut Vec<Package>) -> Result<(), LockError> {
    let Some(doc) = yaml_doc(text)? else {
        return Ok(());
    };
    for (k, v) in doc.get("packages").map(Node::entries).unwrap_or_default() {
        let key = k.name.strip_prefix('/').unwrap_or(&k.name);
        let key = key.split('(').next().unwrap_or(key);
        let parsed = if let Some((n, ver)) = split_at_version(key) {
            Some((n.to_string(), ver.to_string()))
        } else {
            key.rsplit_once('/').map(|(n, ver)| {
                (
                    n.to_string(),
                    ver.split('_').next().unwrap_or(ver).to_string(),
                )
            })
        };
        let name = v.get("name").and_then(Node::scalar);
        let version = v.get("version").and_then(Node::scalar);
        let (name, version) = match (parsed, name, version) {
            (_, Some(n), Some(ver)) => (n, ver),
            (Some((n, ver)), _, _) => (n, ver),
            _ => {
                return err(
                    k.pos,
                    format!("package key {:?} names no `name@version`", k.name),
                );
            }
        };
        packages.push(Package {
            name,
            version,
            pos: k.pos,
        });
    }
    Ok(())
}

/// Yarn berry's `yarn.lock` (YAML): each entry's `resolution: "name@npm:1.2.3"`. Entries
/// resolved otherwise (`workspace:`, `patch:`, `file:`, git) are not registry packages.
fn yarn_berry(text: &str, packages: &mut Vec<Package>) -> Result<(), LockError> {
    let Some(doc) = yaml_doc(text)? else {
        return Ok(());
    };
    for (k, v) in doc.entries() {
        if k.name == "__metadata" {
            continue;
        }
        let Some(resolution) = v.get("resolution").and_then(Node::as_str) else {
            return err(k.pos, format!("the entry {:?} has no `resolution`", k.name));
        };
        let Some((name, version)) = split_at_version(resolution) else {
            return err(
                k.pos,
                format!("resolution {resolution:?} is not `name@npm:version`"),
            );
        };
        if let Some(version) = version.strip_prefix("npm:") {
            packages.push(Package {
                name: name.to_string(),
                version: version.to_string(),
                pos: k.pos,
            });
        }
    }
    Ok(())
}

/// Yarn v1's own format: unindented `"name@range", name@range2:` headers, each followed
/// by indented fields, one of them `version "1.2.3"`.
fn yarn_v1(text: &str, packages: &mut Vec<Package>) -> Result<(), LockError> {
    let mut current: Option<(String, Pos)> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if !line.starts_with([' ', '\t']) {
            let Some(header) = trimmed.strip_suffix(':') else {
                return err(
                    pos_at(i, 0),
                    "expected an entry header (`name@range:`), a line ending with `:`",
                );
            };
            let first = header
                .split(',')
                .next()
                .unwrap_or(header)
                .trim()
                .trim_matches('"');
            let Some((name, range)) = split_at_version(first) else {
                return err(pos_at(i, 0), format!("{first:?} is not `name@range`"));
            };
            // `alias@npm:real@^1` names the real package.
            let name = match range.strip_prefix("npm:").and_then(split_at_version) {
                Some((real, _)) => real,
                None => name,
            };
            current = Some((name.to_string(), pos_at(i, 0)));
            continue;
        }
        let Some((name, pos)) = &current else {
            return err(pos_at(i, 0), "an indented line before any entry header");
        };
        if let Some(v) = trimmed.strip_prefix("version ") {
            let v = v.trim().trim_matches('"');
            if v.is_empty() {
                return err(
                    pos_at(i, line.len() - line.trim_start().len()),
                    "empty version",
                );
            }
            packages.push(Package {
                name: name.clone(),
                version: v.to_string(),
                pos: *pos,
            });
        }
    }
    Ok(())
}

/// `go.sum`: `module version[/go.mod] hash` lines. A module with only a `/go.mod` line
/// was consulted for its requirements, not built, so is not listed.
fn go_sum(text: &str, packages: &mut Vec<Package>) -> Result<(), LockError> {
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [module, version, hash] = fields.as_slice() else {
            return err(
                pos_at(i, 0),
                format!(
                    "expected `module version hash`, found {} field(s)",
                    fields.len()
                ),
            );
        };
        if !hash.starts_with("h1:") && !hash.contains(':') {
            let col = line.find(hash).unwrap_or(0);
            return err(
                pos_at(i, col),
                "the hash is not `algorithm:base64` (`h1:...`)",
            );
        }
        if version.ends_with("/go.mod") {
            continue;
        }
        packages.push(Package {
            name: (*module).to_string(),
            version: (*version).to_string(),
            pos: pos_at(i, 0),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;

    fn names(kind: LockKind, text: &str) -> Vec<(String, String, u32)> {
        parse(kind, text)
            .unwrap_or_else(|e| panic!("{e:?}"))
            .packages
            .into_iter()
            .map(|p| (p.name, p.version, p.pos.line))
            .collect()
    }

    fn t(n: &str, v: &str, l: u32) -> (String, String, u32) {
        (n.into(), v.into(), l)
    }

    const KINDS: [LockKind; 8] = [
        LockKind::Requirements,
        LockKind::PoetryLock,
        LockKind::PipfileLock,
        LockKind::PackageLock,
        LockKind::PnpmLock,
        LockKind::YarnLock,
        LockKind::CargoLock,
        LockKind::GoSum,
    ];

    /// Pieces of every format, for the property test below to splice together.
    const PIECES: &[&str] = &[
        "[[package]]\n",
        "name = \"a\"\n",
        "version = \"1.0\"\n",
        "source = \"registry+crates.io\"\n",
        "{\"packages\": {\"node_modules/a\": {\"version\": \"1\"}}}",
        "{\"dependencies\": {",
        "packages:\n  /a/1.0.0:\n",
        "  a@1.0.0:\n",
        "__metadata:\n",
        "\"a@npm:^1\":\n  resolution: \"a@npm:1.0.0\"\n",
        "a@^1:\n  version \"1.0.0\"\n",
        "x v1.0.0 h1:abc=\n",
        "requests==2.0 \\\n",
        "a[b]>=1 ; x\n",
        "\"default\": {\"r\": {\"version\": \"==1\"}}",
        "é",
        "\t",
        "@",
        "(",
        "#",
        "\n",
    ];

    proptest::proptest! {
        #[test]
        fn parsers_never_panic_and_positions_are_real(
            text in proptest::collection::vec(proptest::sample::select(PIECES), 0..12)
                .prop_map(|v| v.concat()),
            noise in "\\PC{0,40}",
        ) {
            for input in [text.as_str(), noise.as_str()] {
                for kind in KINDS {
                    match parse(kind, input) {
                        Ok(lock) => {
                            for p in &lock.packages {
                                proptest::prop_assert!(!p.name.is_empty() && !p.version.is_empty(), "{:?}", p);
                                proptest::prop_assert!(p.pos.line >= 1 && p.pos.column >= 1);
                            }
                        }
                        Err(e) => proptest::prop_assert!(e.pos.line >= 1 && e.pos.column >= 1, "{:?}", e),
                    }
                }
            }
        }
    }

    #[test]
    fn kinds_by_file_name() {
        assert_eq!(
            LockKind::of("requirements.txt"),
            Some(LockKind::Requirements)
        );
        assert_eq!(
            LockKind::of("requirements-dev.txt"),
            Some(LockKind::Requirements)
        );
        assert_eq!(LockKind::of("requirementsfoo.txt"), None);
        assert_eq!(LockKind::of("Cargo.lock"), Some(LockKind::CargoLock));
        assert_eq!(LockKind::of("package.json"), None);
    }

    #[test]
    fn requirements_pinned_unpinned_and_errors() {
        let text = "# top\nrequests==2.19.1 \\\n    --hash=sha256:abc\nFlask[async] == 0.12 ; python_version < '3.9'  # pinned\n-r other.txt\nurllib3>=1.0\npkg @ https://x/y.whl\nboto3\nzope.interface===5.0\nnumpy==1.*\n";
        let lock = parse(LockKind::Requirements, text).unwrap();
        let got: Vec<_> = lock
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str(), p.pos.line))
            .collect();
        assert_eq!(
            got,
            vec![
                ("requests", "2.19.1", 2),
                ("Flask", "0.12", 4),
                ("zope.interface", "5.0", 9)
            ]
        );
        let un: Vec<_> = lock
            .unpinned
            .iter()
            .map(|u| (u.name.as_str(), u.pos.line))
            .collect();
        assert_eq!(un, vec![("urllib3", 6), ("boto3", 8), ("numpy", 10)]);
        let e = parse(LockKind::Requirements, "ok==1\n  ==2.0\n").unwrap_err();
        assert_eq!((e.pos.line, e.pos.column), (2, 3));
        let e = parse(LockKind::Requirements, "a[x==1\n").unwrap_err();
        assert_eq!(e.pos.line, 1);
    }

    #[test]
    fn cargo_and_poetry_locks() {
        let cargo = "version = 3\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\n\n[[package]]\nname = \"time\"\nversion = \"0.1.43\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n";
        assert_eq!(
            names(LockKind::CargoLock, cargo),
            vec![t("time", "0.1.43", 8)]
        );
        let e = parse(LockKind::CargoLock, "[[package]]\nname = 1\n").unwrap_err();
        assert_eq!((e.pos.line, e.pos.column), (2, 8));
        let e = parse(LockKind::CargoLock, "[[package]\n").unwrap_err();
        assert_eq!(e.pos.line, 1);
        let poetry = "[[package]]\nname = \"requests\"\nversion = \"2.19.1\"\n\n[[package]]\nname = \"mine\"\nversion = \"1.0\"\n[package.source]\ntype = \"git\"\nurl = \"x\"\n";
        assert_eq!(
            names(LockKind::PoetryLock, poetry),
            vec![t("requests", "2.19.1", 2)]
        );
    }

    #[test]
    fn npm_locks_v1_v2_v3() {
        let v3 = r#"{"lockfileVersion": 3, "packages": {
  "": {"name": "app"},
  "node_modules/lodash": {"version": "4.17.15"},
  "node_modules/a/node_modules/@s/b": {"version": "1.0.0"},
  "node_modules/alias": {"name": "minimist", "version": "0.0.8"},
  "node_modules/w": {"resolved": "packages/w", "link": true},
  "packages/w": {"version": "9.9.9"}
}}"#;
        assert_eq!(
            names(LockKind::PackageLock, v3),
            vec![
                t("lodash", "4.17.15", 3),
                t("@s/b", "1.0.0", 4),
                t("minimist", "0.0.8", 5)
            ]
        );
        let v1 = r#"{"lockfileVersion": 1, "dependencies": {
  "lodash": {"version": "4.17.15", "dependencies": {
    "x": {"version": "npm:minimist@0.0.8"}}}
}}"#;
        assert_eq!(
            names(LockKind::PackageLock, v1),
            vec![t("lodash", "4.17.15", 2), t("minimist", "0.0.8", 3)]
        );
        let e = parse(LockKind::PackageLock, "{\n  \"packages\": {,}\n}").unwrap_err();
        assert_eq!(e.pos.line, 2);
    }

    #[test]
    fn pnpm_yarn_go() {
        let pnpm5 = "lockfileVersion: 5.4\npackages:\n  /lodash/4.17.15:\n    resolution: {integrity: x}\n  /@babel/core/7.0.0_abc:\n    dev: true\n";
        assert_eq!(
            names(LockKind::PnpmLock, pnpm5),
            vec![t("lodash", "4.17.15", 3), t("@babel/core", "7.0.0", 5)]
        );
        let pnpm6 = "lockfileVersion: '6.0'\npackages:\n  /lodash@4.17.15:\n    dev: false\n  /@s/p@1.0.0(react@18.0.0):\n    dev: false\n";
        assert_eq!(
            names(LockKind::PnpmLock, pnpm6),
            vec![t("lodash", "4.17.15", 3), t("@s/p", "1.0.0", 5)]
        );
        let pnpm9 = "lockfileVersion: '9.0'\npackages:\n  lodash@4.17.15:\n    resolution: {integrity: x}\n  '@s/p@1.0.0':\n    resolution: {integrity: y}\n";
        assert_eq!(
            names(LockKind::PnpmLock, pnpm9),
            vec![t("lodash", "4.17.15", 3), t("@s/p", "1.0.0", 5)]
        );
        let y1 = "# yarn lockfile v1\n\n\n\"@s/p@^1.0.0\", \"@s/p@^1.0.1\":\n  version \"1.0.2\"\n  resolved \"https://x\"\n\nlodash@^4.17.0:\n  version \"4.17.15\"\n  dependencies:\n    x \"^1\"\n";
        assert_eq!(
            names(LockKind::YarnLock, y1),
            vec![t("@s/p", "1.0.2", 4), t("lodash", "4.17.15", 8)]
        );
        let e = parse(LockKind::YarnLock, "lodash@^4.17.0\n").unwrap_err();
        assert_eq!(e.pos.line, 1);
        let berry = "__metadata:\n  version: 6\n\n\"lodash@npm:^4.17.0\":\n  version: 4.17.15\n  resolution: \"lodash@npm:4.17.15\"\n\n\"app@workspace:.\":\n  version: 0.0.0-use.local\n  resolution: \"app@workspace:.\"\n";
        assert_eq!(
            names(LockKind::YarnLock, berry),
            vec![t("lodash", "4.17.15", 4)]
        );
        let sum = "golang.org/x/text v0.3.6 h1:aaa=\ngolang.org/x/text v0.3.6/go.mod h1:bbb=\ngithub.com/only/mod v1.0.0/go.mod h1:ccc=\n";
        assert_eq!(
            names(LockKind::GoSum, sum),
            vec![t("golang.org/x/text", "v0.3.6", 1)]
        );
        let e = parse(LockKind::GoSum, "a v1\n").unwrap_err();
        assert_eq!((e.pos.line, e.pos.column), (1, 1));
    }
}
