//! YAML text into [`Node`]s, with positions and CloudFormation's short intrinsic tags.
//!
//! `!Ref X` becomes `{"Ref": "X"}`, `!GetAtt A.B` becomes `{"Fn::GetAtt": "A.B"}`, and so
//! on for every short form, so the CloudFormation reader only deals with the long form,
//! exactly as it does for JSON templates.

use std::collections::HashMap;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, Tag};

use crate::SyntaxError;
use crate::node::{Key, Kind, Node, Pos};

/// The most nodes a document may expand to through aliases ("billion laughs" guard).
const MAX_NODES: usize = 1_000_000;
/// The deepest nesting accepted.
const MAX_DEPTH: usize = 256;

/// The short-form tags CloudFormation understands; all but `Ref` and `Condition` take the
/// `Fn::` prefix in long form.
const INTRINSICS: &[&str] = &[
    "Ref",
    "Condition",
    "Sub",
    "GetAtt",
    "Join",
    "If",
    "Select",
    "Split",
    "FindInMap",
    "Base64",
    "Cidr",
    "ImportValue",
    "GetAZs",
    "Equals",
    "And",
    "Or",
    "Not",
    "Transform",
    "Length",
    "ToJsonString",
];

enum Frame {
    Seq(Pos, Option<String>, usize, Vec<Node>),
    Map(Pos, Option<String>, usize, Vec<(Key, Node)>, Option<Key>),
}

/// Reads every document of a YAML stream.
pub(crate) fn parse(text: &str) -> Result<Vec<Node>, SyntaxError> {
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut count = 0usize;
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| SyntaxError {
            pos: pos(e.marker()),
            message: format!("invalid YAML: {}", e.info()),
        })?;
        let at = pos(&span.start);
        let is_alias = matches!(event, Event::Alias(_));
        let done = match event {
            Event::Scalar(value, style, anchor, tag) => {
                let node = scalar(at, &value, style, tag.as_deref());
                Some((node, anchor))
            }
            Event::SequenceStart(anchor, tag) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(too_deep(at));
                }
                stack.push(Frame::Seq(
                    at,
                    intrinsic(tag.as_deref()),
                    anchor,
                    Vec::new(),
                ));
                None
            }
            Event::MappingStart(anchor, tag) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(too_deep(at));
                }
                stack.push(Frame::Map(
                    at,
                    intrinsic(tag.as_deref()),
                    anchor,
                    Vec::new(),
                    None,
                ));
                None
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq(p, tag, anchor, items)) => {
                    Some((wrap(tag, Node::new(p, Kind::Seq(items))), anchor))
                }
                _ => return Err(unbalanced(at)),
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map(p, tag, anchor, entries, _)) => {
                    Some((wrap(tag, Node::new(p, Kind::Map(entries))), anchor))
                }
                _ => return Err(unbalanced(at)),
            },
            Event::Alias(id) => {
                let node = anchors.get(&id).cloned().ok_or_else(|| SyntaxError {
                    pos: at,
                    message: "invalid YAML: alias to an unknown anchor".into(),
                })?;
                Some((node, 0))
            }
            _ => None,
        };
        let Some((node, anchor)) = done else { continue };
        count += if is_alias { size(&node) } else { 1 };
        if count > MAX_NODES {
            return Err(SyntaxError {
                pos: at,
                message: format!("YAML expands to more than {MAX_NODES} values (aliases)"),
            });
        }
        if anchor > 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            None => docs.push(node),
            Some(Frame::Seq(_, _, _, items)) => items.push(node),
            Some(Frame::Map(_, _, _, entries, pending)) => match pending.take() {
                None => {
                    let name = node.scalar().unwrap_or_else(|| node.to_json());
                    *pending = Some(Key {
                        name,
                        pos: node.pos,
                    });
                }
                Some(key) => entries.push((key, node)),
            },
        }
    }
    Ok(docs)
}

fn pos(m: &Marker) -> Pos {
    Pos {
        line: u32::try_from(m.line()).unwrap_or(u32::MAX),
        column: u32::try_from(m.col() + 1).unwrap_or(u32::MAX),
    }
}

fn too_deep(at: Pos) -> SyntaxError {
    SyntaxError {
        pos: at,
        message: format!("YAML nested deeper than {MAX_DEPTH} levels"),
    }
}

fn unbalanced(at: Pos) -> SyntaxError {
    SyntaxError {
        pos: at,
        message: "invalid YAML: unbalanced collection".into(),
    }
}

fn size(node: &Node) -> usize {
    match &node.kind {
        Kind::Seq(items) => 1 + items.iter().map(size).sum::<usize>(),
        Kind::Map(entries) => 1 + entries.iter().map(|(_, v)| size(v)).sum::<usize>(),
        _ => 1,
    }
}

/// The long-form key of a CloudFormation short tag, e.g. `Fn::Sub` for `!Sub`.
fn intrinsic(tag: Option<&Tag>) -> Option<String> {
    let tag = tag?;
    if tag.handle != "!" {
        return None;
    }
    let name = INTRINSICS.iter().find(|n| **n == tag.suffix)?;
    Some(match *name {
        "Ref" | "Condition" => (*name).to_string(),
        other => format!("Fn::{other}"),
    })
}

fn wrap(tag: Option<String>, node: Node) -> Node {
    match tag {
        None => node,
        Some(name) => {
            let pos = node.pos;
            Node::new(pos, Kind::Map(vec![(Key { name, pos }, node)]))
        }
    }
}

fn scalar(at: Pos, value: &str, style: ScalarStyle, tag: Option<&Tag>) -> Node {
    if let Some(long) = intrinsic(tag) {
        return wrap(Some(long), Node::str(at, value));
    }
    let explicit_str = tag.is_some_and(|t| t.suffix == "str" || t.suffix.ends_with(":str"));
    if style != ScalarStyle::Plain || explicit_str || tag.is_some() {
        return Node::str(at, value);
    }
    let kind = match value {
        "" | "~" | "null" | "Null" | "NULL" => Kind::Null,
        "true" | "True" | "TRUE" => Kind::Bool(true),
        "false" | "False" | "FALSE" => Kind::Bool(false),
        v if looks_numeric(v) => Kind::Num(v.to_string()),
        v => Kind::Str(v.to_string()),
    };
    Node::new(at, kind)
}

fn looks_numeric(v: &str) -> bool {
    let body = v.strip_prefix(['-', '+']).unwrap_or(v);
    !body.is_empty()
        && body.bytes().next().is_some_and(|b| b.is_ascii_digit())
        && body.parse::<f64>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_tags_become_long_form() {
        let docs = parse("Role: !GetAtt R.Arn\nList: !Join ['', [a, b]]\nName: !Ref X\n").unwrap();
        let d = &docs[0];
        assert_eq!(
            d.at(&["Role", "Fn::GetAtt"]).and_then(Node::as_str),
            Some("R.Arn")
        );
        assert!(d.at(&["List", "Fn::Join"]).is_some());
        assert_eq!(d.at(&["Name", "Ref"]).and_then(Node::as_str), Some("X"));
        assert_eq!(d.get("Name").unwrap().pos, Pos::new(3, 7));
    }

    #[test]
    fn errors_and_alias_bombs_are_reported() {
        let e = parse("a: [1, 2\nb: c\n").unwrap_err();
        assert!(e.message.starts_with("invalid YAML"));
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..8 {
            let prev = if i == 0 {
                "a".to_string()
            } else {
                format!("l{}", i - 1)
            };
            bomb.push_str(&format!("l{i}: &l{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        }
        assert!(parse(&bomb).unwrap_err().message.contains("aliases"));
    }
}
