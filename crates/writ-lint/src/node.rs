//! A format-neutral value tree with source positions.
//!
//! JSON, YAML and the evaluated parts of Terraform are all read into [`Node`]s, so the
//! CloudFormation reader, the policy checks and the rules see one shape whatever the file
//! format was, and every finding can still point at a line and column.

use std::fmt::Write as _;

/// A 1-based line and column (in characters) in the scanned file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    /// Line, from 1.
    pub line: u32,
    /// Column in characters, from 1.
    pub column: u32,
}

impl Pos {
    /// A position from a line and column.
    pub fn new(line: u32, column: u32) -> Pos {
        Pos { line, column }
    }
}

/// A value and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub pos: Pos,
    pub kind: Kind,
}

/// What a [`Node`] holds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    Null,
    Bool(bool),
    /// A number, kept as its text.
    Num(String),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
    /// A value only known at deploy time: a reference, a function call, an interpolation.
    /// `text` describes it for messages; `target` names the thing it refers to
    /// (`aws_iam_role.lambda`, a CloudFormation logical id) when there is one, so two
    /// references to the same resource compare equal.
    Unresolved {
        text: String,
        target: Option<String>,
    },
}

/// A map key and where it is written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Key {
    pub name: String,
    pub pos: Pos,
}

impl Node {
    pub fn new(pos: Pos, kind: Kind) -> Node {
        Node { pos, kind }
    }

    pub fn str(pos: Pos, s: impl Into<String>) -> Node {
        Node::new(pos, Kind::Str(s.into()))
    }

    pub fn unresolved(pos: Pos, text: impl Into<String>, target: Option<String>) -> Node {
        Node::new(
            pos,
            Kind::Unresolved {
                text: text.into(),
                target,
            },
        )
    }

    /// The value of a map entry, matching the key exactly.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map(entries) => entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Follows a path of map keys.
    pub fn at(&self, keys: &[&str]) -> Option<&Node> {
        let mut node = self;
        for k in keys {
            node = node.get(k)?;
        }
        Some(node)
    }

    pub fn entries(&self) -> &[(Key, Node)] {
        match &self.kind {
            Kind::Map(entries) => entries,
            _ => &[],
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A scalar as text: strings, numbers and booleans.
    pub fn scalar(&self) -> Option<String> {
        match &self.kind {
            Kind::Str(s) => Some(s.clone()),
            Kind::Num(n) => Some(n.clone()),
            Kind::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// True for a boolean true, or the strings `true` / `True`.
    pub fn is_true(&self) -> bool {
        match &self.kind {
            Kind::Bool(b) => *b,
            Kind::Str(s) => s.eq_ignore_ascii_case("true"),
            _ => false,
        }
    }

    pub fn is_unresolved(&self) -> bool {
        matches!(self.kind, Kind::Unresolved { .. })
    }

    /// Elements of a sequence; a single value counts as a one-element list, as IAM and
    /// CloudFormation allow.
    pub fn items(&self) -> Vec<&Node> {
        match &self.kind {
            Kind::Seq(items) => items.iter().collect(),
            Kind::Null => Vec::new(),
            _ => vec![self],
        }
    }

    /// A stable name for what this value refers to: the target of a reference, or the
    /// literal text. Used to tell whether two functions share one role.
    pub fn identity(&self) -> Option<String> {
        match &self.kind {
            Kind::Unresolved { target, text } => Some(target.clone().unwrap_or(text.clone())),
            Kind::Str(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// The node at a writ-policy JSON path such as `Statement[2].Condition` or
    /// `Statement["a b"]`, as far as it can be followed; `self` for the empty path.
    pub fn at_json_path(&self, path: &str) -> &Node {
        let mut node = self;
        let mut rest = path;
        while !rest.is_empty() {
            rest = rest.strip_prefix('.').unwrap_or(rest);
            if let Some(r) = rest.strip_prefix('[') {
                let Some(end) = r.find(']') else { break };
                let inside = &r[..end];
                rest = &r[end + 1..];
                if let Ok(i) = inside.parse::<usize>() {
                    match &node.kind {
                        Kind::Seq(items) => match items.get(i) {
                            Some(n) => node = n,
                            None => break,
                        },
                        // A single statement object stands for a one-element list.
                        _ if i == 0 => {}
                        _ => break,
                    }
                } else {
                    let key = inside.trim_matches('"');
                    match node.get(key) {
                        Some(n) => node = n,
                        None => break,
                    }
                }
            } else {
                let end = rest.find(['.', '[']).unwrap_or(rest.len());
                let key = &rest[..end];
                rest = &rest[end..];
                match node.get(key) {
                    Some(n) => node = n,
                    None => break,
                }
            }
        }
        node
    }

    /// Every key written more than once in one mapping, anywhere in the tree, in
    /// document order of the repeated key.
    pub fn duplicate_keys(&self, out: &mut Vec<Duplicate>) {
        match &self.kind {
            Kind::Seq(items) => items.iter().for_each(|n| n.duplicate_keys(out)),
            Kind::Map(entries) => {
                let n = entries.len();
                if n <= 8 {
                    for j in 1..n {
                        if let Some(i) = (0..j).find(|&i| entries[i].0.name == entries[j].0.name) {
                            out.push(Duplicate::of(&entries[i].0, &entries[j].0));
                        }
                    }
                } else {
                    // Sorting by name keeps large mappings (`Resources`) linear-logarithmic.
                    let mut order: Vec<usize> = (0..n).collect();
                    order.sort_by(|&a, &b| {
                        entries[a].0.name.cmp(&entries[b].0.name).then(a.cmp(&b))
                    });
                    let mut first = 0;
                    for k in 1..n {
                        let (a, b) = (order[first], order[k]);
                        if entries[a].0.name == entries[b].0.name {
                            out.push(Duplicate::of(&entries[a].0, &entries[b].0));
                        } else {
                            first = k;
                        }
                    }
                }
                entries.iter().for_each(|(_, v)| v.duplicate_keys(out));
            }
            _ => {}
        }
    }

    /// True when this node or anything inside it is unresolved.
    pub fn contains_unresolved(&self) -> bool {
        match &self.kind {
            Kind::Unresolved { .. } => true,
            Kind::Seq(items) => items.iter().any(Node::contains_unresolved),
            Kind::Map(entries) => entries.iter().any(|(_, v)| v.contains_unresolved()),
            _ => false,
        }
    }

    /// Writes the value as JSON text. An unresolved value becomes a placeholder that is
    /// well-formed where it stands (an ARN under `Resource`, `service:Action` under
    /// `Action`...), so one reference does not make a whole policy invalid; findings
    /// about placeholders are dropped by the caller.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out, "");
        out
    }

    fn write_json(&self, out: &mut String, element: &str) {
        match &self.kind {
            Kind::Null => out.push_str("null"),
            Kind::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Kind::Num(n) => {
                if is_json_number(n) {
                    out.push_str(n);
                } else {
                    write_json_string(out, n);
                }
            }
            Kind::Str(s) => write_json_string(out, s),
            Kind::Unresolved { .. } => write_json_string(out, placeholder(element)),
            Kind::Seq(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_json(out, element);
                }
                out.push(']');
            }
            Kind::Map(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_json_string(out, &k.name);
                    out.push(':');
                    let inner = match k.name.as_str() {
                        e @ ("Action" | "NotAction" | "Resource" | "NotResource" | "AWS"
                        | "Service" | "Federated" | "CanonicalUser" | "Condition") => e,
                        _ => element,
                    };
                    v.write_json(out, inner);
                }
                out.push('}');
            }
        }
    }
}

/// A key written a second (or later) time in one mapping.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Duplicate {
    /// The key.
    pub name: String,
    /// Where it is first written.
    pub first: Pos,
    /// Where it is written again.
    pub again: Pos,
}

impl Duplicate {
    fn of(first: &Key, again: &Key) -> Duplicate {
        Duplicate {
            name: again.name.clone(),
            first: first.pos,
            again: again.pos,
        }
    }
}

/// A stand-in for a value known only at deploy time, valid for the policy element.
fn placeholder(element: &str) -> &'static str {
    match element {
        "Action" | "NotAction" => "unresolved:Unresolved",
        "Resource" | "NotResource" => "arn:aws:unresolved:us-east-1:000000000000:unresolved",
        "AWS" => "arn:aws:iam::000000000000:root",
        "Service" => "unresolved.amazonaws.com",
        _ => "unresolved",
    }
}

fn is_json_number(n: &str) -> bool {
    let b = n.as_bytes();
    !b.is_empty()
        && (b[0] == b'-' || b[0].is_ascii_digit())
        && n.bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E'))
        && n.bytes().any(|c| c.is_ascii_digit())
        && !n.ends_with(['.', 'e', 'E', '-', '+'])
        && !(b.len() > 1 && b[0] == b'0' && b[1].is_ascii_digit())
        && !n.contains("..")
        && n.matches('.').count() <= 1
        && n.matches(['e', 'E']).count() <= 1
}

fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Maps byte offsets in a text to 1-based lines and character columns.
#[derive(Debug)]
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, line_starts }
    }

    /// The position of a byte offset; offsets past the end or inside a character clamp.
    pub fn pos(&self, offset: usize) -> Pos {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let mut end = offset;
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        let column = self.text[start..end].chars().count() + 1;
        Pos {
            line: u32::try_from(line + 1).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(name: &str) -> Key {
        Key {
            name: name.into(),
            pos: Pos::default(),
        }
    }

    #[test]
    fn json_paths_follow_keys_and_indexes() {
        let st = Node::new(
            Pos::new(3, 5),
            Kind::Map(vec![(k("Effect"), Node::str(Pos::new(4, 7), "Allow"))]),
        );
        let doc = Node::new(
            Pos::new(1, 1),
            Kind::Map(vec![(
                k("Statement"),
                Node::new(Pos::new(2, 1), Kind::Seq(vec![st])),
            )]),
        );
        assert_eq!(doc.at_json_path("Statement[0].Effect").pos, Pos::new(4, 7));
        assert_eq!(doc.at_json_path("Statement[0].Nope").pos, Pos::new(3, 5));
        assert_eq!(doc.at_json_path("").pos, Pos::new(1, 1));
    }

    #[test]
    fn json_output_escapes_and_keeps_numbers_valid() {
        let n = Node::new(
            Pos::default(),
            Kind::Map(vec![
                (
                    k("a\"b"),
                    Node::new(Pos::default(), Kind::Num("1.5".into())),
                ),
                (k("c"), Node::new(Pos::default(), Kind::Num("0x1f".into()))),
                (k("d"), Node::unresolved(Pos::default(), "var.x", None)),
            ]),
        );
        assert_eq!(n.to_json(), r#"{"a\"b":1.5,"c":"0x1f","d":"unresolved"}"#);
    }

    #[test]
    fn line_index_counts_characters() {
        let idx = LineIndex::new("ab\n\u{e9}xy\n");
        assert_eq!(idx.pos(0), Pos::new(1, 1));
        assert_eq!(idx.pos(5), Pos::new(2, 2));
        assert_eq!(idx.pos(99), Pos::new(3, 1));
    }
}
