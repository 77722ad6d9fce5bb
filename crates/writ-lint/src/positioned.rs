//! YAML read into JSON values that remember where each value was written, for the parts of
//! writ that read YAML files of their own (`writ plan` and `writ apply` read declared
//! configuration) and must name `file:line:col` in their errors. It is the same reader the
//! linter uses ([`crate::yaml`]), so both accept the same YAML.

use std::collections::BTreeMap;

use serde_json::{Map, Number, Value};

use crate::node::{Kind, Node, Pos};

/// A YAML document as a JSON value, and where each of its values starts.
#[derive(Debug, Clone, PartialEq)]
pub struct PositionedValue {
    /// The document.
    pub value: Value,
    /// Where each value starts, by its path: `""` for the document, `functions[0].name`
    /// for a value in a list in a mapping (keys joined by `.`, list items as `[i]`).
    pub positions: BTreeMap<String, Pos>,
}

/// Why a YAML text could not be read, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// Where.
    pub pos: Pos,
    /// What.
    pub message: String,
}

impl std::fmt::Display for YamlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.pos.line, self.pos.column, self.message)
    }
}

/// Reads a YAML text of exactly one document (an empty text is an empty mapping). A key
/// written twice in one mapping, a second document, and a tag (`!Ref`) are errors: plain
/// data is all a configuration file holds.
pub fn read_yaml(text: &str) -> Result<PositionedValue, YamlError> {
    let docs = crate::yaml::parse(text).map_err(|e| YamlError {
        pos: e.pos,
        message: e.message,
    })?;
    let mut docs = docs.into_iter();
    let Some(doc) = docs.next() else {
        let mut positions = BTreeMap::new();
        positions.insert(String::new(), Pos::new(1, 1));
        return Ok(PositionedValue {
            value: Value::Object(Map::new()),
            positions,
        });
    };
    if let Some(second) = docs.next() {
        return Err(YamlError {
            pos: second.pos,
            message: "a second YAML document: give one document per file".into(),
        });
    }
    let mut duplicates = Vec::new();
    doc.duplicate_keys(&mut duplicates);
    if let Some(d) = duplicates.first() {
        return Err(YamlError {
            pos: d.again,
            message: format!(
                "key {:?} is given again (first at {}:{})",
                d.name, d.first.line, d.first.column
            ),
        });
    }
    let mut positions = BTreeMap::new();
    let value = convert(&doc, String::new(), &mut positions)?;
    Ok(PositionedValue { value, positions })
}

fn convert(
    node: &Node,
    path: String,
    positions: &mut BTreeMap<String, Pos>,
) -> Result<Value, YamlError> {
    let value = match &node.kind {
        Kind::Null => Value::Null,
        Kind::Bool(b) => Value::Bool(*b),
        Kind::Num(text) => number(text).unwrap_or_else(|| Value::String(text.clone())),
        Kind::Str(s) => Value::String(s.clone()),
        Kind::Unresolved { text, .. } => {
            return Err(YamlError {
                pos: node.pos,
                message: format!("{text}: tags are not plain data; write the value itself"),
            });
        }
        Kind::Seq(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| convert(item, format!("{path}[{i}]"), positions))
                .collect::<Result<_, _>>()?,
        ),
        Kind::Map(entries) => {
            let mut map = Map::new();
            for (key, value) in entries {
                // A CloudFormation short tag reads as a one-key mapping of its long form.
                if key.name == "Ref" || key.name.starts_with("Fn::") {
                    return Err(YamlError {
                        pos: key.pos,
                        message: format!(
                            "{}: tags are not plain data; write the value itself",
                            key.name
                        ),
                    });
                }
                let at = if path.is_empty() {
                    key.name.clone()
                } else {
                    format!("{path}.{}", key.name)
                };
                let v = convert(value, at, positions)?;
                map.insert(key.name.clone(), v);
            }
            Value::Object(map)
        }
    };
    positions.insert(path, node.pos);
    Ok(value)
}

/// A YAML number as JSON: an integer, or a finite decimal.
fn number(text: &str) -> Option<Value> {
    if let Ok(i) = text.parse::<i64>() {
        return Some(Value::Number(i.into()));
    }
    text.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_their_positions() {
        let read = read_yaml("functions:\n  - name: orders\n    x509Ttl: 30m\n    n: 3\n").unwrap();
        assert_eq!(read.value["functions"][0]["name"], "orders");
        assert_eq!(read.value["functions"][0]["n"], 3);
        assert_eq!(read.positions["functions[0].name"], Pos::new(2, 11));
        assert_eq!(read.positions["functions[0].x509Ttl"], Pos::new(3, 14));
    }

    #[test]
    fn duplicates_documents_and_tags_are_refused() {
        let e = read_yaml("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(e.pos, Pos::new(3, 1), "{e}");
        assert!(e.message.contains("first at 1:1"), "{e}");
        let e = read_yaml("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(e.pos.line, 3, "{e}");
        let e = read_yaml("a: !Ref Thing\n").unwrap_err();
        assert_eq!(e.pos.line, 1, "{e}");
    }

    #[test]
    fn an_empty_text_is_an_empty_mapping() {
        assert_eq!(read_yaml("").unwrap().value, serde_json::json!({}));
    }
}
