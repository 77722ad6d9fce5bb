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

/// The most re-indentations [`parse`] makes before it gives up and reports the error.
const MAX_REPAIRS: usize = 256;

/// Reads every document of a YAML stream.
///
/// `saphyr-parser` follows YAML 1.2 to the letter: the lines of a flow collection (`[ ... ]`,
/// `{ ... }`) and the continuation lines of a quoted scalar must be indented more than the
/// block they sit in. libyaml and PyYAML, and so CloudFormation's users, do not ask for that,
/// and real templates rely on it. Leading spaces on such lines carry no meaning (flow
/// content and folded scalars ignore them), so when the parser stops at one, the lines of
/// the collection or scalar it was reading are indented further and the text is parsed
/// again; the parser itself finds where the collection ends. Positions are mapped back to
/// the original text. A valid file is parsed once; each repair costs one more parse.
pub(crate) fn parse(text: &str) -> Result<Vec<Node>, SyntaxError> {
    let mut padded: Option<String> = None;
    // Spaces added at the start of each line (index: line - 1); empty until a repair.
    let mut pads: Vec<usize> = Vec::new();
    let mut repaired: Vec<(usize, usize)> = Vec::new();
    loop {
        let current = padded.as_deref().unwrap_or(text);
        let failure = match parse_once(current, &pads) {
            Ok(docs) => return Ok(docs),
            Err(f) => f,
        };
        let region = if repaired.len() < MAX_REPAIRS {
            repair_region(current, &failure)
        } else {
            None
        };
        let (start, end_line) = match region {
            Some(Repair::Region(start, end_line)) => (start, end_line),
            Some(Repair::Invalid(at, info)) => {
                return Err(SyntaxError {
                    pos: pos_in(&at, &pads),
                    message: format!("invalid YAML: {info}"),
                });
            }
            None => return Err(failure.error),
        };
        let key = (start.line(), start.col());
        if repaired.contains(&key) {
            return Err(failure.error);
        }
        repaired.push(key);
        if pads.is_empty() {
            pads = vec![0; current.lines().count() + 1];
        }
        let pad = start.col() + 1;
        let mut next = String::with_capacity(current.len() + pad * (end_line - start.line()));
        for (i, line) in current.split_inclusive('\n').enumerate() {
            let n = i + 1;
            if n > start.line() && n <= end_line {
                next.extend(std::iter::repeat_n(' ', pad));
                if let Some(p) = pads.get_mut(i) {
                    *p += pad;
                }
            }
            next.push_str(line);
        }
        padded = Some(next);
    }
}

/// Why one parse failed: the error, in the original text's positions, and what the
/// parser was reading when it stopped.
struct Failure {
    error: SyntaxError,
    /// Where the parser stopped, in the parsed text.
    at: Marker,
    /// The parser's message.
    info: String,
    /// The collections open when it stopped, outermost first, in the parsed text.
    open: Vec<Marker>,
}

/// What to do about a failed parse.
enum Repair {
    /// Indent the lines after `start` up to this line, then parse again.
    Region(Marker, usize),
    /// The collection the parser stopped in is itself invalid: this error, in the parsed
    /// text, says why.
    Invalid(Marker, String),
}

/// The start of the flow collection or quoted scalar whose indentation stopped the
/// parser, and the last line it spans; `None` for any other error.
fn repair_region(text: &str, failure: &Failure) -> Option<Repair> {
    if !failure.info.starts_with("invalid indentation") {
        return None;
    }
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let start = match failure.open.iter().find_map(|m| flow_start(&lines, m)) {
        Some(m) => m,
        None if failure.info.contains("quoted scalar")
            && lines
                .get(failure.at.line().checked_sub(1)?)
                .and_then(|l| l.chars().nth(failure.at.col()))
                .is_some_and(|c| c == '"' || c == '\'') =>
        {
            failure.at
        }
        None => {
            // The parser may stop before it reports the collection it is in (while it
            // still looks for a `:` after it). Try the brackets that open a node between
            // the innermost collection it did report and the error, nearest first.
            let from = failure.open.last().copied().unwrap_or_default();
            return flow_candidates(&lines, from, failure.at)
                .into_iter()
                .take(MAX_CANDIDATES)
                .find_map(|m| match region(text, &lines, m, failure) {
                    Some(Repair::Region(s, e)) => Some(Repair::Region(s, e)),
                    _ => None,
                });
        }
    };
    region(text, &lines, start, failure)
}

/// The most bracket positions [`repair_region`] tries when the parser did not report the
/// flow collection it stopped in.
const MAX_CANDIDATES: usize = 16;

/// `[` and `{` that open a node (at the start of a line's content, or after `- `, `: `,
/// `? `, `,`, another bracket, a tag or an anchor) after `from` and before `to`, nearest
/// to `to` first. The parser then says whether one is a collection holding `to`.
fn flow_candidates(lines: &[&str], from: Marker, to: Marker) -> Vec<Marker> {
    let mut out = Vec::new();
    let first = from.line().max(1);
    for line_no in (first..=to.line()).rev() {
        let Some(line) = lines.get(line_no - 1) else {
            continue;
        };
        let chars: Vec<char> = line.chars().collect();
        for col in (0..chars.len()).rev() {
            if (line_no == to.line() && col >= to.col())
                || (line_no == from.line() && col < from.col())
                || !matches!(chars[col], '[' | '{')
            {
                continue;
            }
            // Look back over blanks only, then at most one word: linear in the line.
            let mut j = col;
            while j > 0 && matches!(chars[j - 1], ' ' | '\t') {
                j -= 1;
            }
            let spaced = j < col;
            let opens = j == 0
                || matches!(chars[j - 1], ',' | '[' | '{')
                || (spaced
                    && (matches!(chars[j - 1], '-' | ':' | '?') || ends_with_tag(&chars[..j])));
            if opens {
                out.push(Marker::new(0, line_no, col));
            }
            if out.len() >= MAX_CANDIDATES {
                return out;
            }
        }
    }
    out
}

/// True when the last word of `chars` is a tag or an anchor (`!Join`, `&name`).
fn ends_with_tag(chars: &[char]) -> bool {
    let word = chars
        .iter()
        .rposition(|c| c.is_whitespace())
        .map_or(0, |k| k + 1);
    matches!(chars.get(word), Some('!' | '&'))
}

/// The region of the flow collection or quoted scalar starting at `start`: the parser
/// reads it alone and says where it ends, or why it is invalid.
fn region(text: &str, lines: &[&str], start: Marker, failure: &Failure) -> Option<Repair> {
    // The collection or scalar on its own, as a document: no block around it, so no
    // indentation to respect; the parser says where it ends.
    let line_text = lines.get(start.line() - 1)?;
    let byte_col = line_text
        .char_indices()
        .nth(start.col())
        .map_or(line_text.len(), |(b, _)| b);
    let offset: usize = lines[..start.line() - 1]
        .iter()
        .map(|l| l.len())
        .sum::<usize>()
        + byte_col;
    // A position in the part parsed alone, in the parsed text.
    let place = |m: &Marker| {
        let col = if m.line() == 1 {
            m.col() + start.col()
        } else {
            m.col()
        };
        Marker::new(0, start.line() + m.line() - 1, col)
    };
    // The span of an end event can lie a line early; the next token's line cannot.
    let mut depth = 0usize;
    let mut events = Parser::new_from_str(&text[offset..]);
    let mut last = None;
    for item in events.by_ref() {
        let (event, span) = match item {
            Ok(item) => item,
            Err(e) => return Some(Repair::Invalid(place(e.marker()), e.info().to_string())),
        };
        match event {
            Event::SequenceStart(..) | Event::MappingStart(..) => depth += 1,
            Event::SequenceEnd | Event::MappingEnd => depth = depth.checked_sub(1)?,
            Event::Scalar(..) | Event::Alias(_) => {}
            _ => continue,
        }
        if depth == 0 {
            last = Some(span.end.line());
            break;
        }
    }
    let last = last?;
    let next = match events.next() {
        Some(Ok((_, span))) => span.start.line(),
        Some(Err(e)) => e.marker().line(),
        None => last,
    };
    let end_line = start.line() + last.max(next.saturating_sub(1)) - 1;
    let stopped_inside = end_line > start.line() && failure.at.line() <= end_line;
    stopped_inside.then_some(Repair::Region(start, end_line))
}

/// Where the flow collection opened at `m` starts (its `[` or `{`, after any tag or
/// anchor); `None` when `m` opens a block collection.
fn flow_start(lines: &[&str], m: &Marker) -> Option<Marker> {
    let line = lines.get(m.line().checked_sub(1)?)?;
    let mut chars = line.chars().enumerate().skip(m.col()).peekable();
    while let Some((col, c)) = chars.next() {
        match c {
            '[' | '{' => return Some(Marker::new(0, m.line(), col)),
            ' ' | '\t' => {}
            '!' | '&' => while chars.next_if(|(_, c)| !c.is_whitespace()).is_some() {},
            _ => return None,
        }
    }
    None
}

fn parse_once(text: &str, pads: &[usize]) -> Result<Vec<Node>, Failure> {
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut starts: Vec<Marker> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut count = 0usize;
    let fail = |at: Marker, error: SyntaxError, starts: &[Marker]| Failure {
        info: String::new(),
        at,
        error,
        open: starts.to_vec(),
    };
    for item in Parser::new_from_str(text) {
        let (event, span) = match item {
            Ok(item) => item,
            Err(e) => {
                return Err(Failure {
                    error: SyntaxError {
                        pos: pos_in(e.marker(), pads),
                        message: format!("invalid YAML: {}", e.info()),
                    },
                    at: *e.marker(),
                    info: e.info().to_string(),
                    open: starts,
                });
            }
        };
        let at = pos_in(&span.start, pads);
        let is_alias = matches!(event, Event::Alias(_));
        let done = match event {
            Event::Scalar(value, style, anchor, tag) => {
                let node = scalar(at, &value, style, tag.as_deref());
                Some((node, anchor))
            }
            Event::SequenceStart(anchor, tag) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(fail(span.start, too_deep(at), &starts));
                }
                stack.push(Frame::Seq(
                    at,
                    intrinsic(tag.as_deref()),
                    anchor,
                    Vec::new(),
                ));
                starts.push(span.start);
                None
            }
            Event::MappingStart(anchor, tag) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(fail(span.start, too_deep(at), &starts));
                }
                stack.push(Frame::Map(
                    at,
                    intrinsic(tag.as_deref()),
                    anchor,
                    Vec::new(),
                    None,
                ));
                starts.push(span.start);
                None
            }
            Event::SequenceEnd => {
                starts.pop();
                match stack.pop() {
                    Some(Frame::Seq(p, tag, anchor, items)) => {
                        Some((wrap(tag, Node::new(p, Kind::Seq(items))), anchor))
                    }
                    _ => return Err(fail(span.start, unbalanced(at), &starts)),
                }
            }
            Event::MappingEnd => {
                starts.pop();
                match stack.pop() {
                    Some(Frame::Map(p, tag, anchor, entries, _)) => {
                        Some((wrap(tag, Node::new(p, Kind::Map(entries))), anchor))
                    }
                    _ => return Err(fail(span.start, unbalanced(at), &starts)),
                }
            }
            Event::Alias(id) => match anchors.get(&id) {
                Some(node) => Some((node.clone(), 0)),
                None => {
                    let error = SyntaxError {
                        pos: at,
                        message: "invalid YAML: alias to an unknown anchor".into(),
                    };
                    return Err(fail(span.start, error, &starts));
                }
            },
            _ => None,
        };
        let Some((node, anchor)) = done else { continue };
        count += if is_alias { size(&node) } else { 1 };
        if count > MAX_NODES {
            let error = SyntaxError {
                pos: at,
                message: format!("YAML expands to more than {MAX_NODES} values (aliases)"),
            };
            return Err(fail(span.start, error, &starts));
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

/// A parser position in the original text: `pads` holds the spaces a repair added at the
/// start of each line.
fn pos_in(m: &Marker, pads: &[usize]) -> Pos {
    let added = m
        .line()
        .checked_sub(1)
        .and_then(|i| pads.get(i))
        .copied()
        .unwrap_or(0);
    let col = m.col().saturating_sub(added);
    Pos {
        line: u32::try_from(m.line()).unwrap_or(u32::MAX),
        column: u32::try_from(col + 1).unwrap_or(u32::MAX),
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

    /// The documents as JSON values, for comparing with what PyYAML reads.
    fn as_json(text: &str) -> Result<Vec<serde_json::Value>, SyntaxError> {
        Ok(parse(text)?
            .iter()
            .map(|d| serde_json::from_str(&d.to_json()).unwrap())
            .collect())
    }

    #[test]
    fn yaml_flow_fixtures() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/yaml-flow");
        let mut cases = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            cases += 1;
            let text = std::fs::read_to_string(&path).unwrap();
            let got = as_json(&text);
            match std::fs::read_to_string(path.with_extension("json")) {
                Ok(expected) => {
                    let expected: Vec<serde_json::Value> = serde_json::from_str(&expected).unwrap();
                    let got = got.unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
                    assert_eq!(got, expected, "{}", path.display());
                }
                Err(_) => assert!(got.is_err(), "{} should be rejected", path.display()),
            }
        }
        assert!(cases >= 10, "{cases} cases in {}", dir.display());
    }

    #[test]
    fn repaired_flow_keeps_original_positions() {
        let text = "Statement:\n  - Effect: Allow\n    Action: [\n  \"s3:GetObject\",\n  \"s3:PutObject\"\n]\n    Resource: \"*\"\n";
        let docs = parse(text).unwrap();
        let st = &docs[0].get("Statement").unwrap().items()[0];
        let action = st.get("Action").unwrap().items();
        assert_eq!(action[0].pos, Pos::new(4, 3));
        assert_eq!(action[1].pos, Pos::new(5, 3));
        assert_eq!(st.get("Resource").unwrap().pos, Pos::new(7, 15));
    }

    #[test]
    fn short_tags_survive_a_repaired_flow() {
        let text =
            "R:\n  Value: !Join ['', [\n  'arn:aws:s3:::', !Ref Bucket\n]]\n  Other: !Sub \"x\"\n";
        let docs = parse(text).unwrap();
        let join = docs[0].at(&["R", "Value", "Fn::Join"]).unwrap().items();
        let parts = join[1].items();
        assert_eq!(parts[0].as_str(), Some("arn:aws:s3:::"));
        assert_eq!(parts[1].get("Ref").and_then(Node::as_str), Some("Bucket"));
        assert_eq!(parts[1].pos, Pos::new(3, 20));
        assert_eq!(
            docs[0]
                .at(&["R", "Other", "Fn::Sub"])
                .and_then(Node::as_str),
            Some("x")
        );
    }

    #[test]
    fn a_tagged_flow_in_a_sequence_entry_is_found_before_the_parser_reports_it() {
        let text = "R:\n  - !Join [\n  '', [a, !Ref B]\n]\n  - c\n";
        let docs = parse(text).unwrap();
        let items = docs[0].get("R").unwrap().items();
        let join = items[0].get("Fn::Join").unwrap().items();
        assert_eq!(
            join[1].items()[1].get("Ref").and_then(Node::as_str),
            Some("B")
        );
        assert_eq!(items[1].as_str(), Some("c"));
    }

    #[test]
    fn errors_inside_a_repaired_flow_point_at_the_original_text() {
        let e = parse("a:\n  b: [1,\n2,,\n]\n").unwrap_err();
        assert_eq!(e.pos.line, 3, "{e:?}");
        assert_eq!(e.pos.column, 3, "{e:?}");
    }
}
