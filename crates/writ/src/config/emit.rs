//! Writing a [`Document`] as TOML or YAML, for `writ export`.

use serde_json::Value;

use super::model::Document;

/// The document as TOML.
pub fn toml(doc: &Document) -> Result<String, String> {
    toml::to_string_pretty(doc).map_err(|e| format!("the state could not be written as TOML: {e}"))
}

/// The document as YAML: block mappings and sequences, every string double-quoted (with
/// JSON's escapes, which YAML's double-quoted strings share), so no value can read back as
/// anything else.
pub fn yaml(doc: &Document) -> Result<String, String> {
    let value = serde_json::to_value(doc)
        .map_err(|e| format!("the state could not be written as YAML: {e}"))?;
    let mut out = String::new();
    match &value {
        Value::Object(map) if map.is_empty() => out.push_str("{}\n"),
        _ => block(&value, 0, &mut out),
    }
    Ok(out)
}

/// Writes a mapping or sequence at `indent`, each entry on its own lines.
fn block(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                out.push_str(&pad);
                out.push_str(&key_text(key));
                out.push(':');
                after_key(v, indent, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                out.push_str(&pad);
                out.push('-');
                match item {
                    Value::Object(map) if !map.is_empty() => {
                        // The first entry on the dash's line, the rest aligned under it.
                        let mut inner = String::new();
                        block(item, indent + 2, &mut inner);
                        out.push(' ');
                        out.push_str(inner.trim_start_matches(' '));
                    }
                    Value::Array(a) if !a.is_empty() => {
                        out.push('\n');
                        block(item, indent + 2, out);
                    }
                    _ => {
                        out.push(' ');
                        out.push_str(&scalar(item));
                        out.push('\n');
                    }
                }
            }
        }
        _ => {
            out.push_str(&pad);
            out.push_str(&scalar(value));
            out.push('\n');
        }
    }
}

/// Writes what follows `key:`.
fn after_key(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            block(v, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            block(v, indent + 2, out);
        }
        _ => {
            out.push(' ');
            out.push_str(&scalar(v));
            out.push('\n');
        }
    }
}

/// A key, plain when it is a simple word, quoted otherwise.
fn key_text(key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && key.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    let reserved = matches!(
        key.to_ascii_lowercase().as_str(),
        "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
    );
    if plain && !reserved {
        key.to_string()
    } else {
        Value::String(key.to_string()).to_string()
    }
}

/// A scalar (or an empty collection) on one line.
fn scalar(v: &Value) -> String {
    match v {
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::read::{Format, Source, declared};

    #[test]
    fn yaml_and_toml_read_back_as_what_was_written() {
        let doc: Document = serde_json::from_value(json!({
            "functions": [{"name": "orders", "attestation": [{"type": "joinToken"}],
                "x509Ttl": "30m",
                "policies": [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                    "Action": ["secrets:GetSecretValue"], "Resource": "writ:secret/db"}]}]}],
            "intentions": [{"source": "orders", "destination": "payments", "action": "allow",
                "permissions": [{"methods": ["POST"], "pathPrefix": "/pay"}],
                "description": "a \"quoted\" note: yes"}],
            "secrets": [{"name": "db", "description": "true"}]
        }))
        .unwrap();
        let read = |format, text: String| {
            declared(&[Source {
                shown: "x".into(),
                dir: ".".into(),
                format,
                text,
            }])
            .unwrap()
            .state
        };
        let from_yaml = read(Format::Yaml, yaml(&doc).unwrap());
        let from_toml = read(Format::Toml, toml(&doc).unwrap());
        assert_eq!(from_yaml, from_toml);
        assert_eq!(from_yaml.to_document(), doc);
    }
}
