//! YAML (and so JSON) text into a small value tree that keeps where each value starts, so a
//! bad template is reported at its file, line and column.
//!
//! CloudFormation's short intrinsic tags become their long form: `!Ref X` is read as
//! `{"Ref": "X"}`, `!GetAtt A.Arn` as `{"Fn::GetAtt": "A.Arn"}`.

use saphyr_parser::{Event, Parser, ScalarStyle};

/// A 1-based line and column in the parsed text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

/// A value and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the value starts.
    pub pos: Pos,
    /// The value.
    pub value: Value,
}

/// What a [`Node`] holds. Scalars keep their text; numbers and booleans are read by the
/// code that expects them.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`, `~` or nothing.
    Null,
    /// Any scalar, as written (unquoted).
    Scalar(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order.
    Map(Vec<(String, Node)>),
}

impl Node {
    /// The value of a mapping entry.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The scalar text, if this is a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// The entries, if this is a mapping.
    pub fn entries(&self) -> Option<&[(String, Node)]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }
}

/// A YAML syntax error and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// Where the parser stopped.
    pub pos: Pos,
    /// What is wrong.
    pub message: String,
}

/// The deepest nesting accepted.
const MAX_DEPTH: usize = 128;

enum Frame {
    Seq(Pos, Option<String>, Vec<Node>),
    Map(Pos, Option<String>, Vec<(String, Node)>, Option<String>),
}

/// Parses the first document of a YAML stream. Aliases are refused (templates do not need
/// them, and refusing them rules out alias bombs).
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut stack: Vec<Frame> = Vec::new();
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| SyntaxError {
            pos: Pos {
                line: e.marker().line(),
                column: e.marker().col() + 1,
            },
            message: format!("invalid YAML: {}", e.info()),
        })?;
        let pos = Pos {
            line: span.start.line(),
            column: span.start.col() + 1,
        };
        let done = match event {
            Event::Scalar(text, style, _, tag) => {
                let value = if style == ScalarStyle::Plain
                    && tag.is_none()
                    && matches!(&*text, "" | "~" | "null" | "Null" | "NULL")
                {
                    Value::Null
                } else {
                    Value::Scalar(text.to_string())
                };
                Some(wrap(
                    intrinsic(tag.as_deref().map(|t| t.suffix.as_str())),
                    Node { pos, value },
                ))
            }
            Event::SequenceStart(_, tag) | Event::MappingStart(_, tag)
                if stack.len() >= MAX_DEPTH =>
            {
                let _ = tag;
                return Err(SyntaxError {
                    pos,
                    message: format!("nested deeper than {MAX_DEPTH} levels"),
                });
            }
            Event::SequenceStart(_, tag) => {
                let tag = intrinsic(tag.as_deref().map(|t| t.suffix.as_str()));
                stack.push(Frame::Seq(pos, tag, Vec::new()));
                None
            }
            Event::MappingStart(_, tag) => {
                let tag = intrinsic(tag.as_deref().map(|t| t.suffix.as_str()));
                stack.push(Frame::Map(pos, tag, Vec::new(), None));
                None
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq(p, tag, items)) => Some(wrap(
                    tag,
                    Node {
                        pos: p,
                        value: Value::Seq(items),
                    },
                )),
                _ => return Err(unbalanced(pos)),
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map(p, tag, entries, _)) => Some(wrap(
                    tag,
                    Node {
                        pos: p,
                        value: Value::Map(entries),
                    },
                )),
                _ => return Err(unbalanced(pos)),
            },
            Event::Alias(_) => {
                return Err(SyntaxError {
                    pos,
                    message: "YAML aliases are not supported in templates; write the value out"
                        .into(),
                });
            }
            _ => None,
        };
        let Some(node) = done else { continue };
        match stack.last_mut() {
            None => return Ok(node),
            Some(Frame::Seq(_, _, items)) => items.push(node),
            Some(Frame::Map(_, _, entries, key)) => match key.take() {
                Some(k) => entries.push((k, node)),
                None => match node.value {
                    Value::Scalar(k) => *key = Some(k),
                    Value::Null => *key = Some(String::new()),
                    _ => {
                        return Err(SyntaxError {
                            pos: node.pos,
                            message: "a mapping key must be a scalar".into(),
                        });
                    }
                },
            },
        }
    }
    Ok(Node {
        pos: Pos { line: 1, column: 1 },
        value: Value::Null,
    })
}

fn unbalanced(pos: Pos) -> SyntaxError {
    SyntaxError {
        pos,
        message: "invalid YAML: unbalanced collection".into(),
    }
}

/// The long-form key of a short intrinsic tag (`Ref`, `Fn::GetAtt`, ...), if `tag` is one.
fn intrinsic(tag: Option<&str>) -> Option<String> {
    let name = tag?.trim_start_matches('!');
    match name {
        "Ref" | "Condition" => Some(name.to_string()),
        "Sub" | "GetAtt" | "Join" | "If" | "Select" | "Split" | "FindInMap" | "Base64" | "Cidr"
        | "ImportValue" | "GetAZs" | "Equals" | "And" | "Or" | "Not" | "Transform" => {
            Some(format!("Fn::{name}"))
        }
        _ => None,
    }
}

fn wrap(tag: Option<String>, node: Node) -> Node {
    match tag {
        Some(key) => Node {
            pos: node.pos,
            value: Value::Map(vec![(key, node)]),
        },
        None => node,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_tags_become_long_form_and_positions_are_kept() {
        let doc = parse("A:\n  B: !Ref Fn\n  C: [1, 2]\n").unwrap();
        let b = doc.get("A").unwrap().get("B").unwrap();
        assert_eq!(b.get("Ref").unwrap().as_str(), Some("Fn"));
        assert_eq!(b.pos, Pos { line: 2, column: 6 });
    }

    #[test]
    fn json_is_yaml() {
        let doc = parse(r#"{"A": {"B": "x"}}"#).unwrap();
        assert_eq!(doc.get("A").unwrap().get("B").unwrap().as_str(), Some("x"));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse("A: [1, 2\nB: 3\n").unwrap_err();
        assert!(e.pos.line >= 1, "{e:?}");
    }
}
