//! Reading declared configuration: TOML and YAML texts into one [`State`], every error
//! naming `file:line:col`. Pure: the texts are given ([`Source`]); [`super::files`] reads
//! them from disk.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde_json::{Map, Number, Value};
use writ_lint::Pos;
use writ_lint::positioned::PositionedValue;
use writ_policy::{ParseOptions, PolicyKind};

use super::model::{Document, FunctionSpec, RotationSpec, SecretSpec, State, policy_value};

/// The format of a configuration file, by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `*.toml`.
    Toml,
    /// `*.yaml`, `*.yml`.
    Yaml,
}

/// A configuration file's text.
#[derive(Debug, Clone)]
pub struct Source {
    /// How errors name it (its path).
    pub shown: String,
    /// Its directory, for the gateway's relative paths.
    pub dir: PathBuf,
    /// Its format.
    pub format: Format,
    /// Its text.
    pub text: String,
}

/// Where something is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The file, as shown.
    pub file: String,
    /// Where in it.
    pub pos: Pos,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.pos.line, self.pos.column)
    }
}

/// The configuration the files declare.
#[derive(Debug, Clone, Default)]
pub struct Declared {
    /// The desired state.
    pub state: State,
    /// Where each function, intention (`SOURCE -> DESTINATION`) and secret is declared.
    pub places: BTreeMap<String, Place>,
    /// The gateway configuration files among the sources, checked against the functions.
    pub gateway_files: Vec<String>,
}

/// Reads every source into one declared state. All errors are returned, each as
/// `file:line:col: what`.
pub fn declared(sources: &[Source]) -> Result<Declared, Vec<String>> {
    let mut out = Declared::default();
    let mut errors = Vec::new();
    // Gateway files are checked once every function is known.
    let mut gateways: Vec<(&Source, PositionedValue)> = Vec::new();
    for source in sources {
        let read = match source.format {
            Format::Toml => toml_value(&source.text),
            Format::Yaml => {
                writ_lint::positioned::read_yaml(&source.text).map_err(|e| (e.pos, e.message))
            }
        };
        let read = match read {
            Ok(read) => read,
            Err((pos, message)) => {
                errors.push(format!("{}: {message}", place(source, pos)));
                continue;
            }
        };
        if source.format == Format::Toml && is_gateway_config(&read.value) {
            gateways.push((source, read));
            continue;
        }
        let doc: Document = match serde_path_to_error::deserialize(read.value.clone()) {
            Ok(doc) => doc,
            Err(e) => {
                let path = path_text(e.path());
                let message = e.into_inner().to_string();
                let at = locate(&read, &path, &message);
                let shown = if path.is_empty() {
                    String::new()
                } else {
                    format!("{path}: ")
                };
                errors.push(format!("{}: {shown}{message}", place(source, at)));
                continue;
            }
        };
        add(&mut out, source, &read, doc, &mut errors);
    }
    for (source, read) in gateways {
        check_gateway(&out, source, &read, &mut errors);
        out.gateway_files.push(source.shown.clone());
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Adds one file's declarations, checked, to `out`.
fn add(
    out: &mut Declared,
    source: &Source,
    read: &PositionedValue,
    doc: Document,
    errors: &mut Vec<String>,
) {
    let at = |path: &str| place(source, locate(read, path, ""));
    let claim = |out: &mut Declared, key: String, path: &str, errors: &mut Vec<String>| {
        let here = at(path);
        if let Some(first) = out.places.get(&key) {
            errors.push(format!(
                "{here}: {key} is declared again (first at {first})"
            ));
            return false;
        }
        out.places.insert(key, here);
        true
    };
    for (i, f) in doc.functions.into_iter().enumerate() {
        let base = format!("functions[{i}]");
        if let Err(e) = writ_server::service::functions::valid_name(&f.name) {
            errors.push(format!("{}: {e}", at(&format!("{base}.name"))));
            continue;
        }
        let x509_ttl = match &f.x509_ttl {
            Some(text) => match writ_server::duration::parse(text) {
                Ok(d) => Some(writ_server::duration::format(d)),
                Err(e) => {
                    errors.push(format!("{}: x509Ttl: {e}", at(&format!("{base}.x509Ttl"))));
                    continue;
                }
            },
            None => None,
        };
        if f.attestation.is_empty() {
            errors.push(format!(
                "{}: attestation: give at least one rule (or leave it out for join tokens)",
                at(&format!("{base}.attestation"))
            ));
            continue;
        }
        let mut policies = Vec::new();
        let mut bad = false;
        for (j, p) in f.policies.iter().enumerate() {
            let path = format!("{base}.policies[{j}]");
            if let Some(e) = policy_error(p, PolicyKind::Identity) {
                errors.push(format!("{}: {e}", inner_place(source, read, &path, &e)));
                bad = true;
            }
            policies.push(policy_value(p));
        }
        if bad
            || !claim(
                out,
                format!("function {}", f.name),
                &format!("{base}.name"),
                errors,
            )
        {
            continue;
        }
        out.state.functions.insert(
            f.name,
            FunctionSpec {
                attestation: f.attestation,
                x509_ttl,
                policies,
            },
        );
    }
    for (i, it) in doc.intentions.into_iter().enumerate() {
        let base = format!("intentions[{i}]");
        if let Err(e) = it.validate() {
            let path = if e.field.is_empty() {
                base.clone()
            } else {
                format!("{base}.{}", e.field)
            };
            errors.push(format!("{}: {}: {}", at(&path), e.field, e.message));
            continue;
        }
        let key = format!("intention {}", it.label());
        if !claim(out, key, &base, errors) {
            continue;
        }
        out.state
            .intentions
            .insert((it.source.clone(), it.destination.clone()), it);
    }
    for (i, s) in doc.secrets.into_iter().enumerate() {
        let base = format!("secrets[{i}]");
        if s.name.is_empty() || s.name.len() > 512 {
            errors.push(format!(
                "{}: name: a secret's name is 1 to 512 characters",
                at(&format!("{base}.name"))
            ));
            continue;
        }
        if let Some(p) = &s.resource_policy {
            let path = format!("{base}.resourcePolicy");
            if let Some(e) = policy_error(p, PolicyKind::Resource) {
                errors.push(format!("{}: {e}", inner_place(source, read, &path, &e)));
                continue;
            }
        }
        let rotation = match s.rotation {
            Some(r) => match canonical_every(r.every.as_deref()) {
                Ok(every) => Some(RotationSpec {
                    hook: r.hook,
                    every,
                }),
                Err(e) => {
                    errors.push(format!(
                        "{}: rotation.every: {e}",
                        at(&format!("{base}.rotation.every"))
                    ));
                    continue;
                }
            },
            None => None,
        };
        if !claim(
            out,
            format!("secret {}", s.name),
            &format!("{base}.name"),
            errors,
        ) {
            continue;
        }
        out.state.secrets.insert(
            s.name,
            SecretSpec {
                description: s.description,
                resource_policy: s.resource_policy.as_ref().map(policy_value),
                rotation,
            },
        );
    }
}

/// A rotation schedule in canonical form (`720h` is `30d`); `off` and absent are none.
pub fn canonical_every(every: Option<&str>) -> Result<Option<String>, String> {
    match every {
        None | Some("off") => Ok(None),
        Some(text) => {
            writ_server::duration::parse(text).map(|d| Some(writ_server::duration::format(d)))
        }
    }
}

/// The first error of a policy document, as `PATH: message`; none when it is valid.
fn policy_error(given: &Value, kind: PolicyKind) -> Option<String> {
    let text = match given {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    let parsed = writ_policy::parse(&text, &ParseOptions::new(kind));
    let first = parsed.errors().next()?;
    Some(if first.path.is_empty() {
        first.message.clone()
    } else {
        format!("{}: {}", first.path, first.message)
    })
}

/// The place of an error inside a policy at `path` (`PATH: message` from
/// [`policy_error`]): the element it names when the document is written as a table or
/// mapping, else the policy itself.
fn inner_place(source: &Source, read: &PositionedValue, path: &str, error: &str) -> Place {
    let inner = error
        .split_once(": ")
        .map(|(p, _)| p)
        .filter(|p| !p.contains(' '));
    let at = match inner {
        Some(p) if p.starts_with('[') => format!("{path}{p}"),
        Some(p) => format!("{path}.{p}"),
        None => path.to_string(),
    };
    place(source, locate(read, &at, ""))
}

/// Whether a TOML document is the gateway's configuration rather than writ's: it has
/// `[[route]]` tables or a `listen` address (docs/gateway.md).
fn is_gateway_config(value: &Value) -> bool {
    value.get("route").is_some() || value.get("listen").is_some()
}

/// Checks a gateway configuration with the gateway's own reader, and that each route's
/// function is declared.
fn check_gateway(
    declared: &Declared,
    source: &Source,
    read: &PositionedValue,
    errors: &mut Vec<String>,
) {
    let config = match writ_gateway::config::parse(&source.text, &source.shown, &source.dir) {
        Ok(config) => config,
        Err(e) => {
            // The gateway's reader names file:line:col for what it can place; the rest
            // is placed at the file's start.
            if e.starts_with(&format!("{}:", source.shown))
                && e[source.shown.len() + 1..]
                    .split(':')
                    .next()
                    .is_some_and(|n| n.parse::<u32>().is_ok())
            {
                errors.push(e);
            } else {
                let rest = e.strip_prefix(&format!("{}: ", source.shown)).unwrap_or(&e);
                errors.push(format!("{}: {rest}", place(source, Pos::new(1, 1))));
            }
            return;
        }
    };
    for (i, route) in config.routes.iter().enumerate() {
        if !declared.state.functions.contains_key(&route.function) {
            let at = place(source, locate(read, &format!("route[{i}].function"), ""));
            errors.push(format!(
                "{at}: route {:?} sends to function {:?}, which no configuration file declares",
                route.name, route.function
            ));
        }
    }
}

fn place(source: &Source, pos: Pos) -> Place {
    Place {
        file: source.shown.clone(),
        pos,
    }
}

/// A deserializer's path as the position map writes it: `functions[0].name`.
fn path_text(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            serde_path_to_error::Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            serde_path_to_error::Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            _ => {}
        }
    }
    out
}

/// Where the value at `path` starts; for an unknown field (named in `message` between
/// backticks), where that field is; otherwise the nearest enclosing value's place.
fn locate(read: &PositionedValue, path: &str, message: &str) -> Pos {
    if let Some(field) = message
        .strip_prefix("unknown field `")
        .and_then(|m| m.split('`').next())
    {
        let at = if path.is_empty() {
            field.to_string()
        } else {
            format!("{path}.{field}")
        };
        if let Some(pos) = read.positions.get(&at) {
            return *pos;
        }
    }
    let mut path = path.to_string();
    loop {
        if let Some(pos) = read.positions.get(&path) {
            return *pos;
        }
        match path.rfind(['.', '[']) {
            Some(i) => path.truncate(i),
            None if !path.is_empty() => path.clear(),
            None => return Pos::new(1, 1),
        }
    }
}

/// A TOML text as a JSON value with the position of each value. Dates are refused (the
/// configuration holds none).
pub fn toml_value(text: &str) -> Result<PositionedValue, (Pos, String)> {
    let table = toml::de::DeTable::parse(text).map_err(|e| {
        let pos = e.span().map_or(Pos::new(1, 1), |s| position(text, s.start));
        (pos, e.message().to_string())
    })?;
    let lines = LineStarts::new(text);
    let mut positions = BTreeMap::new();
    let span = table.span();
    let value = toml_table(table.get_ref(), String::new(), &lines, text, &mut positions)?;
    positions.insert(String::new(), lines.pos(text, span.start));
    Ok(PositionedValue { value, positions })
}

fn toml_table(
    table: &toml::de::DeTable<'_>,
    path: String,
    lines: &LineStarts,
    text: &str,
    positions: &mut BTreeMap<String, Pos>,
) -> Result<Value, (Pos, String)> {
    let mut map = Map::new();
    for (key, value) in table {
        let at = if path.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{path}.{}", key.get_ref())
        };
        let v = toml_item(value, at, lines, text, positions)?;
        map.insert(key.get_ref().to_string(), v);
    }
    Ok(Value::Object(map))
}

fn toml_item(
    item: &toml::Spanned<toml::de::DeValue<'_>>,
    path: String,
    lines: &LineStarts,
    text: &str,
    positions: &mut BTreeMap<String, Pos>,
) -> Result<Value, (Pos, String)> {
    use toml::de::DeValue;
    let pos = lines.pos(text, item.span().start);
    let value = match item.get_ref() {
        DeValue::String(s) => Value::String(s.to_string()),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Integer(i) => {
            let digits = i.as_str().replace('_', "");
            let n = i64::from_str_radix(digits.trim_start_matches("+"), i.radix())
                .map_err(|_| (pos, format!("{path}: the integer does not fit in 64 bits")))?;
            Value::Number(n.into())
        }
        DeValue::Float(f) => {
            let n = f
                .as_str()
                .replace('_', "")
                .parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .ok_or_else(|| (pos, format!("{path}: not a finite number")))?;
            Value::Number(n)
        }
        DeValue::Datetime(_) => {
            return Err((
                pos,
                format!("{path}: dates are not part of writ's configuration; write a string"),
            ));
        }
        DeValue::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| toml_item(item, format!("{path}[{i}]"), lines, text, positions))
                .collect::<Result<_, _>>()?,
        ),
        DeValue::Table(table) => toml_table(table, path.clone(), lines, text, positions)?,
    };
    positions.insert(path, pos);
    Ok(value)
}

/// Where each line of a text starts, for byte offsets to line and column.
struct LineStarts(Vec<usize>);

impl LineStarts {
    fn new(text: &str) -> LineStarts {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineStarts(starts)
    }

    /// The 1-based line and column (in characters) of a byte offset.
    fn pos(&self, text: &str, offset: usize) -> Pos {
        let offset = offset.min(text.len());
        let line = self.0.partition_point(|&s| s <= offset);
        let start = self.0[line - 1];
        let column = text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        Pos::new(
            u32::try_from(line).unwrap_or(u32::MAX),
            u32::try_from(column + 1).unwrap_or(u32::MAX),
        )
    }
}

fn position(text: &str, offset: usize) -> Pos {
    LineStarts::new(text).pos(text, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(shown: &str, format: Format, text: &str) -> Source {
        Source {
            shown: shown.into(),
            dir: PathBuf::from("."),
            format,
            text: text.into(),
        }
    }

    #[test]
    fn toml_and_yaml_declare_the_same_state() {
        let toml = source(
            "a.toml",
            Format::Toml,
            r#"
[[functions]]
name = "orders"
x509Ttl = "60m"
policies = ['{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secrets:GetSecretValue","Resource":"writ:secret/db"}]}']

[[intentions]]
source = "orders"
destination = "payments"
action = "allow"
"#,
        );
        let yaml = source(
            "a.yaml",
            Format::Yaml,
            r#"
functions:
  - name: orders
    x509Ttl: 1h
    policies:
      - Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Action: secrets:GetSecretValue
            Resource: writ:secret/db
intentions:
  - source: orders
    destination: payments
    action: allow
"#,
        );
        let a = declared(&[toml]).unwrap();
        let b = declared(&[yaml]).unwrap();
        assert_eq!(a.state, b.state);
        assert_eq!(a.state.functions["orders"].x509_ttl.as_deref(), Some("1h"));
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let toml = source(
            "f.toml",
            Format::Toml,
            "[[functions]]\nname = \"orders\"\nx509Ttl = 5\n",
        );
        let e = declared(&[toml]).unwrap_err();
        assert!(
            e[0].starts_with("f.toml:3:11: functions[0].x509Ttl:"),
            "{e:?}"
        );
        let yaml = source(
            "f.yaml",
            Format::Yaml,
            "functions:\n  - name: orders\n    x509Ttl: soon\n",
        );
        let e = declared(&[yaml]).unwrap_err();
        assert!(e[0].starts_with("f.yaml:3:14: x509Ttl:"), "{e:?}");
        let yaml = source(
            "u.yaml",
            Format::Yaml,
            "functions:\n  - name: a\n    nmae: b\n",
        );
        let e = declared(&[yaml]).unwrap_err();
        assert!(e[0].starts_with("u.yaml:3:11:"), "{e:?}");
        assert!(e[0].contains("nmae"), "{e:?}");
    }

    #[test]
    fn a_declaration_given_twice_names_both_places() {
        let a = source("a.toml", Format::Toml, "[[functions]]\nname = \"orders\"\n");
        let b = source("b.yaml", Format::Yaml, "functions:\n  - name: orders\n");
        let e = declared(&[a, b]).unwrap_err();
        assert_eq!(
            e,
            ["b.yaml:2:11: function orders is declared again (first at a.toml:2:8)"]
        );
    }

    #[test]
    fn a_bad_policy_is_placed_inside_the_document() {
        let yaml = source(
            "p.yaml",
            Format::Yaml,
            "functions:\n  - name: a\n    policies:\n      - Version: \"2012-10-17\"\n        Statement:\n          - Effect: Maybe\n            Action: \"*\"\n            Resource: \"*\"\n",
        );
        let e = declared(&[yaml]).unwrap_err();
        assert!(e[0].starts_with("p.yaml:6:21:"), "{e:?}");
    }
}
