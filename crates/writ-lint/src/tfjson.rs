//! Terraform JSON syntax (`.tf.json`): rewritten as native HCL, one line per attribute or
//! block, and read by [`crate::terraform`]; each line of the rewrite remembers the position
//! of the JSON key it came from, so findings point into the `.tf.json` file.
//!
//! Terraform tells attributes from nested blocks by the provider schema; without it, an
//! object under one of [`BLOCKS`] (the blocks writ lint reads) is a block and any other is
//! an attribute holding an object. Strings keep their `${...}` and `%{...}`, which mean the
//! same in a quoted HCL string. `"//"` keys (comments) are dropped.

use crate::SyntaxError;
use crate::json;
use crate::node::{Kind, Node, Pos};

/// Nested blocks writ lint reads in resources and data sources.
const BLOCKS: &[&str] = &[
    "environment",
    "tracing_config",
    "dead_letter_config",
    "vpc_config",
    "destination_config",
    "on_failure",
    "cors",
    "cors_configuration",
    "inline_policy",
    "statement",
    "principals",
    "not_principals",
    "condition",
    "egress",
    "ingress",
];

/// The HCL text and, for each of its lines (from 0), the position in the JSON text.
pub(crate) struct Rewritten {
    pub hcl: String,
    pub lines: Vec<Pos>,
}

impl Rewritten {
    /// The JSON position of an HCL position.
    pub(crate) fn map(&self, line: u32) -> Pos {
        let i = usize::try_from(line.saturating_sub(1)).unwrap_or(usize::MAX);
        self.lines
            .get(i)
            .or(self.lines.last())
            .copied()
            .unwrap_or(Pos::new(1, 1))
    }

    fn line(&mut self, pos: Pos, text: &str) {
        self.hcl.push_str(text);
        self.hcl.push('\n');
        // An interpolation may span lines; they all come from this key.
        for _ in 0..=text.matches('\n').count() {
            self.lines.push(pos);
        }
    }
}

/// Rewrites a `.tf.json` file as HCL.
pub(crate) fn rewrite(text: &str) -> Result<Rewritten, SyntaxError> {
    let doc = json::parse(text)?.unwrap_or_else(|| Node::new(Pos::new(1, 1), Kind::Null));
    let mut out = Rewritten {
        hcl: String::with_capacity(text.len()),
        lines: Vec::new(),
    };
    for (kind, v) in doc.entries() {
        match kind.name.as_str() {
            "resource" | "data" => {
                for (ty, names) in v.entries() {
                    for (name, body) in names.entries() {
                        for b in bodies(body) {
                            out.line(
                                name.pos,
                                &format!(
                                    "{} {} {} {{",
                                    kind.name,
                                    quote(&ty.name),
                                    quote(&name.name)
                                ),
                            );
                            block_body(b, &mut out);
                            out.line(name.pos, "}");
                        }
                    }
                }
            }
            "variable" | "module" | "output" => {
                for (name, body) in v.entries() {
                    for b in bodies(body) {
                        out.line(name.pos, &format!("{} {} {{", kind.name, quote(&name.name)));
                        attributes(b, &mut out);
                        out.line(name.pos, "}");
                    }
                }
            }
            "locals" => {
                for b in bodies(v) {
                    out.line(kind.pos, "locals {");
                    attributes(b, &mut out);
                    out.line(kind.pos, "}");
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// A block's bodies: an object, or an array of objects.
fn bodies(n: &Node) -> Vec<&Node> {
    match &n.kind {
        Kind::Seq(items) => items.iter().filter(|i| is_map(i)).collect(),
        Kind::Map(_) => vec![n],
        _ => Vec::new(),
    }
}

fn is_map(n: &Node) -> bool {
    matches!(n.kind, Kind::Map(_))
}

fn block_body(body: &Node, out: &mut Rewritten) {
    for (k, v) in body.entries() {
        if k.name == "//" || !identifier(&k.name) {
            continue;
        }
        let nested = bodies(v);
        if BLOCKS.contains(&k.name.as_str()) && !nested.is_empty() {
            for b in nested {
                out.line(k.pos, &format!("{} {{", k.name));
                block_body(b, out);
                out.line(k.pos, "}");
            }
        } else {
            out.line(k.pos, &format!("{} = {}", k.name, expression(v)));
        }
    }
}

fn attributes(body: &Node, out: &mut Rewritten) {
    for (k, v) in body.entries() {
        if k.name != "//" && identifier(&k.name) {
            out.line(k.pos, &format!("{} = {}", k.name, expression(v)));
        }
    }
}

fn identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A name as a quoted HCL string (the escapes are JSON's).
fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// A JSON string, already unescaped, as a quoted HCL template: the literal parts escaped,
/// the `${...}` and `%{...}` parts written as they are, since they are HCL expressions.
fn template(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if (c == '$' || c == '%') && chars.get(i + 1) == Some(&c) && chars.get(i + 2) == Some(&'{')
        {
            // `$${` and `%%{` are literal `${` and `%{`, as in HCL.
            out.push(c);
            out.push(c);
            out.push('{');
            i += 3;
            continue;
        }
        if (c == '$' || c == '%') && chars.get(i + 1) == Some(&'{') {
            // Copy the expression up to its closing brace, minding nested braces and
            // strings.
            out.push(c);
            out.push('{');
            i += 2;
            let (mut depth, mut in_string) = (1usize, false);
            while i < chars.len() && depth > 0 {
                let d = chars[i];
                if in_string {
                    if d == '\\' && i + 1 < chars.len() {
                        out.push(d);
                        out.push(chars[i + 1]);
                        i += 2;
                        continue;
                    }
                    if d == '"' {
                        in_string = false;
                    }
                } else if d == '"' {
                    in_string = true;
                } else if d == '{' {
                    depth += 1;
                } else if d == '}' {
                    depth -= 1;
                }
                out.push(d);
                i += 1;
            }
            continue;
        }
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
        i += 1;
    }
    out.push('"');
    out
}

/// A JSON value as one line of HCL expression.
fn expression(n: &Node) -> String {
    match &n.kind {
        Kind::Null => "null".into(),
        Kind::Bool(b) => b.to_string(),
        Kind::Num(s) => s.clone(),
        Kind::Str(s) => template(s),
        Kind::Seq(items) => format!(
            "[{}]",
            items.iter().map(expression).collect::<Vec<_>>().join(", ")
        ),
        Kind::Map(entries) => format!(
            "{{ {} }}",
            entries
                .iter()
                .filter(|(k, _)| k.name != "//")
                .map(|(k, v)| format!("{} = {}", quote(&k.name), expression(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Kind::Unresolved { text, .. } => quote(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_blocks_attributes_and_positions() {
        let json = r#"{
  "variable": {"region": {"default": "us-east-1"}},
  "locals": {"name": "api"},
  "resource": {
    "aws_lambda_function": {
      "api": {
        "function_name": "${local.name}",
        "environment": {"variables": {"TABLE": "orders"}},
        "tags": {"team": "payments"}
      }
    }
  }
}"#;
        let r = rewrite(json).unwrap();
        assert!(
            r.hcl.contains("resource \"aws_lambda_function\" \"api\" {"),
            "{}",
            r.hcl
        );
        assert!(
            r.hcl.contains("function_name = \"${local.name}\""),
            "{}",
            r.hcl
        );
        assert!(
            r.hcl
                .contains("environment {\nvariables = { \"TABLE\" = \"orders\" }"),
            "{}",
            r.hcl
        );
        assert!(
            r.hcl.contains("tags = { \"team\" = \"payments\" }"),
            "{}",
            r.hcl
        );
        assert!(
            r.hcl
                .contains("variable \"region\" {\ndefault = \"us-east-1\""),
            "{}",
            r.hcl
        );
        let line = r
            .hcl
            .lines()
            .position(|l| l.starts_with("function_name"))
            .unwrap();
        assert_eq!(r.map(u32::try_from(line + 1).unwrap()), Pos::new(7, 9));
    }

    #[test]
    fn templates_escape_literals_only() {
        assert_eq!(template("a\"b"), r#""a\"b""#);
        assert_eq!(
            template(r#"x ${jsonencode({a = "b}"})} "y""#),
            r#""x ${jsonencode({a = "b}"})} \"y\"""#
        );
        assert_eq!(
            template("$${x} %{ if a }b%{ endif }"),
            "\"$${x} %{ if a }b%{ endif }\""
        );
    }
}
