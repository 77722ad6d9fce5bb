//! JSON text into [`Node`]s, strictly (no comments, no trailing commas), with positions.

use jsonc_parser::ast::{ObjectPropName, Value};
use jsonc_parser::common::Ranged;
use jsonc_parser::{CollectOptions, CommentCollectionStrategy, ParseOptions};

use writ_policy::nesting::first_deeper_than;

use crate::SyntaxError;
use crate::node::{Key, Kind, LineIndex, Node};

/// The deepest nesting read; deeper documents are refused rather than recursed into.
const MAX_DEPTH: usize = 128;

/// Reads a JSON document. `Ok(None)` for an empty text.
pub(crate) fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    let lines = LineIndex::new(text);
    if let Some(offset) = first_deeper_than(text, MAX_DEPTH, b"[{", b"]}") {
        return Err(SyntaxError {
            pos: lines.pos(offset),
            message: format!("JSON nested deeper than {MAX_DEPTH} levels"),
        });
    }
    let options = ParseOptions {
        allow_comments: false,
        allow_loose_object_property_names: false,
        allow_trailing_commas: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    };
    let collect = CollectOptions {
        comments: CommentCollectionStrategy::Off,
        tokens: false,
    };
    match jsonc_parser::parse_to_ast(text, &collect, &options) {
        Ok(parsed) => Ok(parsed.value.map(|v| convert(&v, &lines))),
        Err(e) => Err(SyntaxError {
            pos: lines.pos(e.range().start),
            message: format!("invalid JSON: {}", e.kind()),
        }),
    }
}

fn convert(value: &Value<'_>, lines: &LineIndex<'_>) -> Node {
    let pos = lines.pos(value.start());
    let kind = match value {
        Value::StringLit(s) => Kind::Str(s.value.to_string()),
        Value::NumberLit(n) => Kind::Num(n.value.to_string()),
        Value::BooleanLit(b) => Kind::Bool(b.value),
        Value::NullKeyword(_) => Kind::Null,
        Value::Array(a) => Kind::Seq(a.elements.iter().map(|e| convert(e, lines)).collect()),
        Value::Object(o) => Kind::Map(
            o.properties
                .iter()
                .map(|p| {
                    let (name, start) = match &p.name {
                        ObjectPropName::String(s) => (s.value.to_string(), s.range.start),
                        ObjectPropName::Word(w) => (w.value.to_string(), w.range.start),
                    };
                    (
                        Key {
                            name,
                            pos: lines.pos(start),
                        },
                        convert(&p.value, lines),
                    )
                })
                .collect(),
        ),
    };
    Node::new(pos, kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Pos;

    #[test]
    fn positions_point_at_values_and_keys() {
        let n = parse("{\n  \"a\": [1, \"x\"]\n}").unwrap().unwrap();
        let (k, v) = &n.entries()[0];
        assert_eq!(k.pos, Pos::new(2, 3));
        assert_eq!(v.pos, Pos::new(2, 8));
    }

    #[test]
    fn errors_carry_line_and_column() {
        let e = parse("{\n  \"a\": 1,\n}").unwrap_err();
        assert_eq!(e.pos, crate::node::Pos::new(2, 9));
        let deep = "[".repeat(500);
        assert!(parse(&deep).unwrap_err().message.contains("deeper"));
    }
}
